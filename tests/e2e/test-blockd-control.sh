#!/usr/bin/env bash
# The control socket: hocus-blk attach/detach/ls/stats against a running
# blockd, stats checked against exactly what the test read, detach with a
# client connected, metrics on the control socket and on --metrics, errors.
. "$TESTS_DIR/functions.sh"
requires_nbd_python
requires python3 curl nbdinfo

# Random data at [1M, 3M) so every chunk there is unique and stored raw.
truncate -s 8M "$T/disk.img"
head -c 2M /dev/urandom | dd of="$T/disk.img" bs=1M seek=1 conv=notrunc status=none
hb push --chunk-size 256K "$T/disk.img" "oci:$T/layout:v1" >/dev/null
export HOCUS_BLK_CACHE=$T/blockd-cache          # a cold cache
CTL=$T/control.sock
MPORT=$(free_port)
# --background off: the counters below count what the reads fetch.
start_blockd --nbd-socket "$T/nbd.sock" --control "$CTL" --metrics "127.0.0.1:$MPORT" --background off
[ "$(stat -c %a "$CTL")" = 600 ] || fail "control socket mode is $(stat -c %a "$CTL")"

hb ls --control "$CTL" >"$T/ls"
[ "$(wc -l <"$T/ls")" -eq 1 ] || fail "ls of an empty blockd: $(cat "$T/ls")"

# attach (a relative oci: path is resolved by the CLI) and ls.
(cd "$T" && hb attach --control "$CTL" ws oci:layout:v1) >"$T/attach"
grep -q "Attached ws (8.0 MiB, read-only): nbd+unix:///ws?socket=$T/nbd.sock" "$T/attach" || fail "attach: $(cat "$T/attach")"
hb ls --control "$CTL" --json | python3 -c '
import json, sys
e = json.load(sys.stdin)
assert len(e) == 1 and e[0]["name"] == "ws" and e[0]["readonly"] and e[0]["size"] == 8 << 20, e
assert e[0]["ref"].startswith("oci:/"), e
assert e[0]["manifest"].startswith("sha256:"), e'
hb ls --control "$CTL" | grep -q "^ws .*read-only"

# Reads of exactly known ranges; the counters must match.
cat >"$T/read.py" <<'PY'
import sys, nbd
h = nbd.NBD()
h.connect_uri(sys.argv[1])
for a in sys.argv[2:]:
    off, ln = map(int, a.split("+"))
    h.pread(ln, off)
h.shutdown()
PY
MiB=1048576
$NBD_PYTHON "$T/read.py" "$(nbd_uri ws)" "$MiB+$MiB"            # 4 chunks, all missing
[ "$(blockd_stat ws reads)" = 1 ] || fail "reads: $(blockd_stat ws reads)"
[ "$(blockd_stat ws bytes_read)" = $MiB ] || fail "bytes_read: $(blockd_stat ws bytes_read)"
[ "$(blockd_stat ws cache_misses)" = 4 ] || fail "misses: $(blockd_stat ws cache_misses)"
[ "$(blockd_stat ws cache_hits)" = 0 ] || fail "hits: $(blockd_stat ws cache_hits)"
[ "$(blockd_stat ws bytes_fetched)" = $MiB ] || fail "fetched: $(blockd_stat ws bytes_fetched)"
$NBD_PYTHON "$T/read.py" "$(nbd_uri ws)" "$MiB+$MiB" "0+4096" "$((6 * MiB))+$MiB"   # cached, then zero chunks
[ "$(blockd_stat ws reads)" = 4 ] || fail "reads: $(blockd_stat ws reads)"
[ "$(blockd_stat ws cache_hits)" = 4 ] || fail "hits after a re-read: $(blockd_stat ws cache_hits)"
[ "$(blockd_stat ws cache_misses)" = 4 ] || fail "misses after a re-read: $(blockd_stat ws cache_misses)"
[ "$(blockd_stat ws bytes_read)" = $((3 * MiB + 4096)) ] || fail "bytes_read: $(blockd_stat ws bytes_read)"
hb stats --control "$CTL" ws | grep -q "4 hits, 4 misses (50.0% hits), 1.0 MiB fetched" || fail "stats text: $(hb stats --control "$CTL" ws)"

# Metrics on the control socket (HTTP over the Unix socket) and on --metrics.
curl -fsS --unix-socket "$CTL" http://blockd/metrics >"$T/metrics"
grep -qx "hocus_blk_export_read_bytes_total{export=\"ws\"} $((3 * MiB + 4096))" "$T/metrics" || fail "metrics: $(grep read_bytes "$T/metrics")"
grep -qx 'hocus_blk_export_cache_misses_total{export="ws"} 4' "$T/metrics"
curl -fsS "http://127.0.0.1:$MPORT/metrics" >"$T/metrics2"
grep -q '^hocus_blk_exports 1$' "$T/metrics2" || fail "metrics over --metrics: $(head -5 "$T/metrics2")"
[ "$(curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:$MPORT/nope")" = 404 ] || fail "no 404 for /nope"

# A writable export; write counters.
hb attach --control "$CTL" --overlay "$T/rw.ovl" rw "oci:$T/layout:v1" | grep -q "writable"
qemu-io -f raw "$(nbd_uri rw)" -c "write -P 0x5a 4096 8192" -c flush >/dev/null
[ "$(blockd_stat rw writes)" = 1 ] && [ "$(blockd_stat rw bytes_written)" = 8192 ] || fail "write counters"
[ "$(blockd_stat rw overlay_data_bytes)" = 8192 ] || fail "overlay bytes: $(blockd_stat rw overlay_data_bytes)"

# Errors come back with reasons and non-zero exits.
expect_fail "already exists" hb attach --control "$CTL" ws "oci:$T/layout:v1"
expect_fail "invalid export name" hb attach --control "$CTL" "bad name" "oci:$T/layout:v1"
expect_fail "no such|cannot open|No such" hb attach --control "$CTL" x "oci:$T/nope:v1"
expect_fail "no export named 'nope'" hb detach --control "$CTL" nope
expect_fail "in use" hb attach --control "$CTL" --overlay "$T/rw.ovl" rw2 "oci:$T/layout:v1"
expect_fail "cannot reach blockd" hb ls --control "$T/nothing.sock"
python3 - "$CTL" <<'PY'
import json, socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
f = s.makefile("rw")
for line in ["not json", '{"cmd":"frobnicate"}', '{"cmd":"attach"}', '{"cmd":"ping"}']:
    f.write(line + "\n"); f.flush()
    r = json.loads(f.readline())
    assert r["ok"] == (line == '{"cmd":"ping"}'), (line, r)
PY

# Detach with a client connected: the client is sent away, the overlay is
# flushed and closed, and can be attached again at once.
cat >"$T/hold.py" <<'PY'
import sys, time, nbd
h = nbd.NBD()
h.connect_uri(sys.argv[1])
h.pread(4096, 0)
open(sys.argv[2], "w").write("connected")
deadline = time.time() + 120
while time.time() < deadline:
    try:
        h.pread(4096, 0)
    except nbd.Error:
        sys.exit(0)            # disconnected, as it should be
    time.sleep(0.02)
sys.exit("still connected after detach")
PY
$NBD_PYTHON "$T/hold.py" "$(nbd_uri rw)" "$T/held" &
HOLD=$!
cleanup_fn "kill $HOLD 2>/dev/null"
wait_for 20 test -e "$T/held" || fail "client did not connect"
[ "$(blockd_stat rw clients)" = 1 ] || fail "clients: $(blockd_stat rw clients)"
hb detach --control "$CTL" rw | grep -qx "Detached rw"
wait "$HOLD" || fail "the client was not disconnected by detach"
hb ls --control "$CTL" --json | python3 -c 'import json,sys; assert [e["name"] for e in json.load(sys.stdin)] == ["ws"]'
expect_fail "" nbdinfo "$(nbd_uri rw)"
hb attach --control "$CTL" --overlay "$T/rw.ovl" rw "oci:$T/layout:v1" >/dev/null
qemu-io -f raw "$(nbd_uri rw)" -c "read -P 0x5a 4096 8192" >/dev/null || fail "overlay data lost across detach/attach"

# SIGTERM: clean exit, sockets removed, the overlay flushed.
qemu-io -f raw "$(nbd_uri rw)" -c "write -P 0x77 65536 4096" >/dev/null
stop_blockd
[ ! -e "$CTL" ] && [ ! -e "$T/nbd.sock" ] || fail "sockets left behind"
"$BLOCKD" --export "rw=oci:$T/layout:v1,overlay=$T/rw.ovl" \
        --run 'qemu-io -f raw "$uri" -c "read -P 0x77 65536 4096" -c "read -P 0x5a 4096 8192"' >/dev/null 2>>"$T/blockd.log"
echo ok
