#!/usr/bin/env bash
# blockd under a service manager, without systemd as PID 1:
# 1. systemd-socket-activate binds the NBD and control sockets and starts
#    blockd on them (LISTEN_FDS, names nbd and control): a client is served,
#    blockd takes the addresses from the passed sockets, and leaves the
#    socket files in place at exit (they belong to the manager).
# 2. tests/helpers/fdstore.py plays systemd's part in a restart: blockd binds
#    its sockets, stores them (FDSTORE=1), and every next blockd gets them
#    back. A client loop connects over and over while blockd restarts
#    (SIGTERM and kill -9), each restart waiting, with blockd down, until
#    an attempt has begun: zero refused connections, every session's bytes
#    right. A restart whose manager drops the fds (no fd store) refuses one,
#    which shows the loop can see a refusal. sd_notify's READY, RELOADING,
#    STOPPING and STATUS arrive, and log lines carry journal priorities
#    when stderr is the journal (JOURNAL_STREAM).
. "$TESTS_DIR/functions.sh"
requires_nbd_python
requires systemd-socket-activate nbdinfo python3

head -c 1M /dev/urandom >"$T/disk.img"
truncate -s 2M "$T/disk.img"
hb push --chunk-size 256K "$T/disk.img" "oci:$T/layout:v1" >/dev/null
hb pull "oci:$T/layout:v1" --quiet        # every chunk local: sessions are short

# --- 1. Socket activation. ---
# It passes no environment but what -E names: blockd's state and cache go on its command line.
systemd-socket-activate -l "$T/nbd.sock" -l "$T/ctl.sock" --fdname=nbd:control -E ASAN_OPTIONS -E UBSAN_OPTIONS \
        "$BLOCKD" -v --config= --cache "$HOCUS_BLK_CACHE" --state-dir "$T/sa-state" --pidfile "$T/sa.pid" \
        --export "ws=oci:$T/layout:v1" \
        >"$T/sa.log" 2>&1 &
SA_PID=$!
cleanup_fn "kill -TERM $SA_PID 2>/dev/null; wait $SA_PID 2>/dev/null"
wait_for 30 test -S "$T/ctl.sock" || fail "systemd-socket-activate did not listen: $(cat "$T/sa.log")"
# The first connection makes systemd-socket-activate exec blockd on the sockets.
nbdinfo "$(nbd_uri ws)" >"$T/info" || fail "not served on the passed socket: $(tail -5 "$T/sa.log")"
grep -q "export-size: $((2 << 20))" "$T/info" || fail "nbdinfo: $(cat "$T/info")"
wait_file 30 "$T/sa.pid" || fail "blockd not ready: $(tail -5 "$T/sa.log")"
grep -q "2 listening sockets passed in" "$T/sa.log" || fail "no passed sockets: $(cat "$T/sa.log")"
hb ls --control "$T/ctl.sock" | grep -q "nbd+unix:///ws?socket=$T/nbd.sock" ||
        fail "the URI does not name the passed socket: $(hb ls --control "$T/ctl.sock")"
stop_pid "$SA_PID" blockd
[ -S "$T/nbd.sock" ] && [ -S "$T/ctl.sock" ] || fail "blockd unlinked sockets it was passed"
rm -f "$T/nbd.sock" "$T/ctl.sock"

# --- 2. Restarts with the fds handed back. ---
D=$T/mgr
mkdir "$D"
mkfifo "$D/cmd"
python3 "$HELPERS_DIR/fdstore.py" --dir "$D" --progress "$T/progress" -- \
        "$BLOCKD" -v --config= --cache "$HOCUS_BLK_CACHE" --nbd-socket "$T/nbd.sock" --control "$T/ctl.sock" \
        --export "ws=oci:$T/layout:v1" >"$T/mgr.out" 2>&1 &
MGR_PID=$!
cleanup_fn "kill $MGR_PID 2>/dev/null; wait $MGR_PID 2>/dev/null"   # it stops its blockd
events() { cat "$D/events" 2>/dev/null; }
count() { events | grep -c -- "$1" || true; }
wait_count() { local i; for i in $(seq 1 1200); do [ "$(count "$1")" -ge "$2" ] && return 0; sleep 0.05; done; return 1; }
wait_count "^READY=1$" 1 || fail "blockd did not report READY=1: $(events; tail -5 "$D/blockd.log")"
[ "$(count "^FDSTORE nbd 1$")" = 1 ] && [ "$(count "^FDSTORE control 1$")" = 1 ] ||
        fail "blockd did not store its sockets: $(events)"
grep -q "^STATUS=Serving 1 export$" "$D/events" || fail "no STATUS: $(events)"

# The client loop: sessions one after another until told to stop (bounded).
$NBD_PYTHON - "$(nbd_uri ws)" "$T/disk.img" "$T/progress" "$T/stop-client" <<'PY' &
import errno, os, sys, nbd
uri, img, progress, stop = sys.argv[1:]
want = open(img, "rb").read(1 << 20)
out = open(progress, "a", buffering=1)
for k in range(1, 200001):
    if os.path.exists(stop):
        break
    out.write("start %d\n" % k)
    h = nbd.NBD()
    try:
        h.connect_uri(uri)
        off = (k * 65536) % (1 << 20)
        ok = h.pread(65536, off) == want[off:off + 65536]
        h.shutdown()
        out.write(("ok %d\n" if ok else "error %d wrong bytes\n") % k)
    except nbd.Error as e:
        refused = e.errnum in (errno.ECONNREFUSED, errno.ENOENT)
        out.write("%s %d %s\n" % ("refused" if refused else "error", k, e.string.replace("\n", " ")))
    del h
PY
CLIENT=$!
cleanup_fn "touch $T/stop-client; kill $CLIENT 2>/dev/null"
oks() { local n; n=$(grep -c "^ok " "$T/progress" 2>/dev/null) || true; echo "${n:-0}"; }
wait_oks() { local n=$(( $(oks) + $1 )) i; for i in $(seq 1 1200); do [ "$(oks)" -ge "$n" ] && return 0; sleep 0.05; done; return 1; }
mgr() { local n; n=$(count "^done $1$"); echo "$1" >"$D/cmd"; wait_count "^done $1$" $((n + 1)) || fail "$1 did not finish: $(events | tail -5)"; }

wait_oks 5 || fail "the client loop is not served: $(tail -3 "$T/progress")"
CYCLES=6
for i in $(seq 1 $CYCLES); do
        if [ $((i % 2)) = 1 ]; then mgr "restart TERM"; else mgr "restart KILL"; fi
        wait_oks 5 || fail "no sessions after restart $i: $(tail -3 "$T/progress")"
done
grep -q timeout "$D/events" && fail "the manager timed out: $(grep timeout "$D/events")"
[ "$(count "^gap-attempt ")" = $CYCLES ] || fail "not every restart had a connection begun while blockd was down: $(events)"
[ "$(count "^start .* fds 2$")" = $CYCLES ] || fail "not every restart got both sockets back: $(events)"
[ "$(count "^FDSTORE ")" = 2 ] || fail "sockets stored again after being handed back: $(events)"
[ "$(count "^STOPPING=1$")" -ge $((CYCLES / 2)) ] || fail "no STOPPING=1 on SIGTERM: $(events)"
REFUSED=$(grep -c "^refused " "$T/progress" || true)
[ "$REFUSED" = 0 ] || fail "$REFUSED connections refused across restarts: $(grep "^refused " "$T/progress" | head -3)"
grep -q "^error .*wrong bytes" "$T/progress" && fail "a session read wrong bytes"
ok_restarts=$(oks)

# A reload: RELOADING=1, then READY=1.
mgr hup
grep -q "^RELOADING=1$" "$D/events" || fail "no RELOADING=1: $(events)"

# Journal priorities: stderr is the "journal" (JOURNAL_STREAM names it).
grep -q "^<6>Ready: 1 exports" "$D/blockd.log" || fail "no <6> on info lines: $(tail -3 "$D/blockd.log")"
grep -q "^<7>" "$D/blockd.log" || fail "no <7> on debug lines"
grep -Eqv "^<[0-7]>" "$D/blockd.log" && fail "a line without a priority: $(grep -Ev "^<[0-7]>" "$D/blockd.log" | head -2)"

# Without the fd store, a restart refuses connections: the loop sees it.
mgr drop-restart
[ "$(count "^gap-refusal ")" = 1 ] || fail "no refusal seen without the fd store: $(events)"
wait_oks 5 || fail "no sessions after the last restart"

touch "$T/stop-client"
wait "$CLIENT" || fail "the client loop failed"
echo stop >"$D/cmd"
wait "$MGR_PID" || fail "the manager failed: $(tail -5 "$T/mgr.out")"
[ "$(grep -c "^exit pid .* status 0$" "$D/events")" -ge $((CYCLES / 2 + 1)) ] || fail "blockd exited uncleanly on SIGTERM: $(events)"
echo "restarts: $CYCLES, sessions served: $ok_restarts, refused: $REFUSED, sessions cut by a restart: $(grep -c "^error " "$T/progress" || true)"
grep "^error " "$T/progress" | head -10
