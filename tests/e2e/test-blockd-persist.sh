#!/usr/bin/env bash
# Persisted exports and offline start (issue 11): an export attached through
# the control socket survives kill -9 (ls shows it, reads are byte-identical);
# with the registry stopped, blockd still starts, serves what is cached and
# fails an uncached read with EIO, and fetches again by itself once the
# registry is back; an export never seen is reported as failed and retried;
# a tag pushed anew never changes a running export until attach --update;
# detach forgets it; two daemons cannot share a state directory.
. "$TESTS_DIR/functions.sh"
requires qemu-io nbdcopy python3
start_registry registry
REG_YML=$T/registry.yml

MiB=1048576
make_image "$T/disk.img" random 8M
make_image "$T/disk2.img" random 8M
make_image "$T/other.img" random 2M
hb push --plain-http --chunk-size 256K "$T/disk.img" "docker://$REGISTRY/ws:v1" >/dev/null
hb push --plain-http --chunk-size 256K "$T/other.img" "docker://$REGISTRY/other:v1" >/dev/null
REF=docker://$REGISTRY/ws:v1
CTL=$T/control.sock
# --background off: only what the test reads is fetched, so [4M, 8M) stays
# uncached until the registry is back.
BLOCKD_ARGS=(--nbd-socket "$T/nbd.sock" --control "$CTL" --plain-http --background off --fetch-timeout 2)

# read_range NAME OFF LEN: the export's bytes as qemu-io's hex dump, into
# $T/got; fails with qemu-io's message on stderr.
read_range() {
        timeout 120 qemu-io -r --image-opts "driver=nbd,server.type=unix,server.path=$T/nbd.sock,export=$1" \
                -c "read -v $2 $3" >"$T/got.raw" 2>&1 || { cat "$T/got.raw" >&2; return 1; }
        if grep -q "failed" "$T/got.raw"; then
                grep failed "$T/got.raw" >&2
                return 1
        fi
        grep -E '^[0-9a-f]{8}:' "$T/got.raw" >"$T/got"
}
# assert_range NAME FILE OFF LEN: the export's bytes there are FILE's.
assert_range() {
        read_range "$1" "$3" "$4" || fail "reading $1 [$3, +$4) failed"
        qemu-io -r -f raw -c "read -v $3 $4" "$2" | grep -E '^[0-9a-f]{8}:' >"$T/want"
        cmp -s "$T/got" "$T/want" || fail "$1 [$3, +$4) differs from $2"
}
# ls_field NAME FIELD: one field of ls --json.
ls_field() {
        hb ls --control "$CTL" --json | python3 -c '
import json, sys
for e in json.load(sys.stdin):
    if e["name"] == sys.argv[1]:
        print(e.get(sys.argv[2]))
        break
else:
    print("absent")' "$1" "$2"
}
assert_whole() {
        rm -f "$T/whole.img"
        nbdcopy "$(nbd_uri "$1")" "$T/whole.img" || fail "nbdcopy of $1 failed"
        assert_same "$T/whole.img" "$2"
}

# 1. Attach through the control socket; read the first MiB (cached from now on).
start_blockd "${BLOCKD_ARGS[@]}"
hb attach --control "$CTL" ws "$REF" >/dev/null
PIN=$(ls_field ws manifest)
[[ $PIN == sha256:* ]] || fail "ls shows no pinned manifest: $PIN"
[ "$(ls_field ws state)" = online ] || fail "state after attach: $(ls_field ws state)"
# control CMD...: one control request (JSON from key=value pairs).
control() {
        python3 - "$CTL" "$@" <<'PY'
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall((json.dumps(dict(a.split("=", 1) for a in sys.argv[2:])) + "\n").encode())
r = json.loads(s.makefile().readline())
assert r.get("ok"), r
PY
}
# Record what the first read touches as the image's boot profile, publish
# it, and attach again: blockd finds it and keeps it locally.
control cmd=record name=ws action=start
assert_range ws "$T/disk.img" 0 $MiB
control cmd=record name=ws action=stop path="$T/boot.prf"
hb profile push "$REF" "$T/boot.prf" --plain-http >/dev/null
hb detach --control "$CTL" ws
hb attach --control "$CTL" ws "$REF" >/dev/null
[ "$(ls_field ws manifest)" = "$PIN" ] || fail "attach again: another manifest"
[ -s "$T/state/exports.json" ] || fail "no state file after attach"
wait_profile_lookup ws "$CTL"
grep -q '"profile_blob"' "$T/state/exports.json" || fail "the profile found is not in the state: $(cat "$T/state/exports.json")"

# 2. kill -9 and start again: the export is back, pinned, byte-identical.
kill9_blockd
start_blockd "${BLOCKD_ARGS[@]}"
[ "$(ls_field ws manifest)" = "$PIN" ] || fail "after kill -9: ls shows $(ls_field ws manifest), not $PIN"
hb ls --control "$CTL" | grep -q "^ws .*read-only.*online" || fail "ls after restart: $(hb ls --control "$CTL")"
assert_range ws "$T/disk.img" 0 $MiB
assert_range ws "$T/disk.img" $MiB $MiB

# 3. The registry goes away, then blockd dies. It starts anyway, with an
# export it has never seen (failed, retried) beside the restored one.
kill "$REGISTRY_PID"
wait "$REGISTRY_PID" 2>/dev/null || true
kill9_blockd
start_blockd "${BLOCKD_ARGS[@]}" --export "fresh=docker://$REGISTRY/other:v1"
[ "$(ls_field ws state)" = offline ] || fail "state with the registry down: $(ls_field ws state)"
wait_profile_lookup ws "$CTL"
grep -q "Export ws: boot profile from the local copy of sha256:" "$T/blockd.log" ||
        fail "the profile was not found locally with the registry down"
[ "$(ls_field ws manifest)" = "$PIN" ] || fail "offline: ls shows $(ls_field ws manifest), not $PIN"
[ "$(ls_field fresh state)" = failed ] || fail "an export never seen, registry down: $(ls_field fresh state)"
ls_field fresh error | grep -qi "refused\|registry" || fail "failed export without a reason: $(ls_field fresh error)"
hb ls --control "$CTL" | grep -q "failed: " || fail "ls does not say why: $(hb ls --control "$CTL")"
# Cached ranges read; an uncached one fails with EIO (after --fetch-timeout).
assert_range ws "$T/disk.img" 0 $((2 * MiB))
if read_range ws $((6 * MiB)) 262144 >/dev/null 2>"$T/eio"; then
        fail "an uncached read succeeded with the registry down"
fi
grep -q "Input/output error" "$T/eio" || fail "uncached read failed, but not with EIO: $(cat "$T/eio")"
assert_range ws "$T/disk.img" 0 $MiB                     # still serving

# 4. The registry comes back on the same port: reads of uncached ranges
# succeed again without a restart, and the failed export attaches.
docker-registry serve "$REG_YML" >>"$T/registry.log" 2>&1 &
REGISTRY_PID=$!
cleanup_fn "kill $REGISTRY_PID; wait $REGISTRY_PID"
wait_for 20 curl -fsS "http://$REGISTRY/v2/" || fail "registry did not restart"
deadline=$((SECONDS + 120))
until read_range ws $((6 * MiB)) 262144 >/dev/null 2>&1; do
        [ "$SECONDS" -lt "$deadline" ] || fail "reads still fail 120 s after the registry came back"
        sleep 0.5
done
assert_range ws "$T/disk.img" $((6 * MiB)) $((2 * MiB))
[ "$(ls_field ws state)" = online ] || fail "state once the registry is back: $(ls_field ws state)"
deadline=$((SECONDS + 120))
until [ "$(ls_field fresh state)" = online ]; do
        [ "$SECONDS" -lt "$deadline" ] || fail "export fresh not attached 120 s after the registry came back"
        sleep 0.5
done
assert_whole fresh "$T/other.img"
assert_whole ws "$T/disk.img"

# 5. A tag pushed anew: the running export stays on its manifest, across a
# restart too, until attach --update.
hb push --plain-http --chunk-size 256K "$T/disk2.img" "docker://$REGISTRY/ws:v1" >/dev/null
assert_whole ws "$T/disk.img"
kill9_blockd
start_blockd "${BLOCKD_ARGS[@]}"
[ "$(ls_field ws manifest)" = "$PIN" ] || fail "the moved tag changed the pin across a restart"
assert_whole ws "$T/disk.img"
[ "$(ls_field fresh state)" = absent ] || fail "a command-line export no longer given was restored"
hb attach --control "$CTL" --update ws >"$T/update"
grep -q "ws updated to sha256:" "$T/update" || fail "attach --update: $(cat "$T/update")"
PIN2=$(ls_field ws manifest)
[ "$PIN2" != "$PIN" ] || fail "attach --update kept the old manifest"
assert_whole ws "$T/disk2.img"
hb attach --control "$CTL" --update ws | grep -q "unchanged" || fail "a second --update changed something"
kill9_blockd
start_blockd "${BLOCKD_ARGS[@]}"
[ "$(ls_field ws manifest)" = "$PIN2" ] || fail "the update did not survive a restart"
assert_whole ws "$T/disk2.img"
# A writable export is not updated (its overlay holds writes against the old image).
hb attach --control "$CTL" rw "$REF" --overlay "$T/rw.ovl" >/dev/null
expect_fail "is writable" hb attach --control "$CTL" --update rw

# 6. Two daemons never share a state directory.
expect_fail "in use by another blockd" "$BLOCKD" --state-dir "$T/state" --nbd-socket "$T/other.sock" \
        --control "$T/other.ctl"

# 7. detach forgets the export: gone after the next restart.
hb detach --control "$CTL" ws
hb detach --control "$CTL" rw
kill9_blockd
start_blockd "${BLOCKD_ARGS[@]}"
[ "$(ls_field ws state)" = absent ] || fail "a detached export came back"
[ "$(ls_field rw state)" = absent ] || fail "a detached export came back"

# 8. A corrupt state file is refused with what to do, and nothing is lost.
stop_blockd
printf '{"version":1,"exports":[{"name":' >"$T/state/exports.json"
expect_fail "exports.json is corrupt.*move it away" "$BLOCKD" "${BLOCKD_ARGS[@]}"
echo "persist: ok"
