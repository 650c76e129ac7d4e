#!/usr/bin/env bash
# Restart under a live writer (issue 11): qemu's NBD client with
# reconnect-delay writes and flushes against a writable export (attached
# through the control socket, so every restart restores it from the state
# directory) while blockd is killed with SIGKILL and started again, at least
# 20 times, with requests in flight (and stopped with SIGTERM in every fifth
# cycle, as an upgrade does). The writer must never see an error and
# no write answered before its FLUSH (or with FUA) may be lost
# (tests/helpers/restart-writer.py holds the model and the checks).
. "$TESTS_DIR/functions.sh"
requires qemu-io nbdcopy python3
start_registry registry

make_image "$T/disk.img" zero 8M
hb push --plain-http --chunk-size 256K "$T/disk.img" "docker://$REGISTRY/ws:v1" >/dev/null
CTL=$T/control.sock
SOCK=$T/nbd.sock
verbose=-v
[ -z "${BLOCKD_QUIET:-}" ] || verbose=
blockd_argv=$(python3 -c 'import json, sys; print(json.dumps(sys.argv[1:]))' "$BLOCKD" $verbose \
        --nbd-socket "$SOCK" --control "$CTL" --plain-http)
# Whatever the writer leaves running when it fails.
cleanup_fn "[ -s '$T/blockd.pid' ] && kill -KILL \$(cat '$T/blockd.pid')"
HOCUS_BLK_CONTROL=$CTL python3 "$HELPERS_DIR/restart-writer.py" \
        --blockd "$blockd_argv" --pidfile "$T/blockd.pid" \
        --attach "'$HOCUS_BLK' attach --control '$CTL' ws 'docker://$REGISTRY/ws:v1' --overlay '$T/ws.ovl'" \
        --qemu-opts "driver=nbd,server.type=unix,server.path=$SOCK,export=ws,reconnect-delay=120" \
        --uri "$(nbd_uri ws "$SOCK")" --cycles "${RESTART_CYCLES:-30}" --blocks 64 --seed "${RESTART_SEED:-$RANDOM}" \
        --out "$T" >"$T/result" 2>&1 || fail "$(cat "$T/result"; echo "last requests:"; tail -3 "$T/writer.log")"
cat "$T/result"
grep -q "lost=0" "$T/result" || fail "no result from the writer"
kills=$(sed -n 's/.*kills=\([0-9]*\).*/\1/p' "$T/result")
[ "$kills" -ge 20 ] || fail "only $kills kill -9 cycles"
flushed=$(sed -n 's/.*flushed_writes=\([0-9]*\).*/\1/p' "$T/result")
[ "$flushed" -gt 0 ] || fail "no write was flushed"
