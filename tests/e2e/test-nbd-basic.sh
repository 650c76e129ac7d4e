#!/usr/bin/env bash
# blockd serves an oci: image over NBD to real clients: nbdinfo (info,
# --list, --map with holes), nbdcopy, qemu-img compare/convert; over a Unix
# socket and TCP; captive mode (--run) passes the command's exit status.
. "$TESTS_DIR/functions.sh"
requires nbdinfo nbdcopy qemu-img python3

# 40 MiB: data at 1 MiB (random, 3 MiB) and 20 MiB (text, 2 MiB + 100 bytes),
# zeroes elsewhere, so the map has holes at chunk granularity.
truncate -s 40M "$T/disk.img"
head -c 3M /dev/urandom | dd of="$T/disk.img" bs=1M seek=1 conv=notrunc status=none
{ yes "hocus pocus $RANDOM" || true; } | head -c $((2 * 1048576 + 100)) | dd of="$T/disk.img" bs=1M seek=20 conv=notrunc status=none
hb push "$T/disk.img" "oci:$T/layout:v1" >/dev/null

start_blockd --nbd-socket "$T/nbd.sock" --nbd-listen 127.0.0.1:0 \
        --export "ws=oci:$T/layout:v1" --export "other=oci:$T/layout:v1"
URI=$(nbd_uri ws)

# Info: size, read-only, structured replies, base:allocation.
nbdinfo "$URI" >"$T/info"
grep -q "export-size: 41943040" "$T/info" || fail "wrong size: $(cat "$T/info")"
grep -q "is_read_only: true" "$T/info" || fail "not read-only without an overlay"
grep -q "base:allocation" "$T/info" || fail "no base:allocation"
grep -q "structured" "$T/info" || fail "no structured replies"
grep -q "can_multi_conn: true" "$T/info" || fail "no multi-conn"
# Exit status 2 means false for --can/--is.
rc=0; nbdinfo --can write "$URI" || rc=$?
[ "$rc" -eq 2 ] || fail "read-only export claims to be writable ($rc)"

# --list shows both exports with their references.
nbdinfo --list "nbd+unix:///?socket=$T/nbd.sock" >"$T/list"
grep -q 'export="ws"' "$T/list" && grep -q 'export="other"' "$T/list" || fail "list: $(cat "$T/list")"
grep -q "description: oci:$T/layout:v1" "$T/list" || fail "no description in list"

# --map: holes where the image is zero, data where it is not.
nbdinfo --map --json "$URI" >"$T/map.json"
python3 - "$T/map.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
def state(off):
    for e in m:
        if e["offset"] <= off < e["offset"] + e["length"]:
            return e["type"]
    raise SystemExit(f"offset {off} not covered")
MiB = 1 << 20
assert sum(e["length"] for e in m) == 40 * MiB, m
assert state(0) == 3 and state(MiB - 1) == 3, m            # hole,zero
assert state(MiB) == 0 and state(4 * MiB - 1) == 0, m      # data
assert state(10 * MiB) == 3, m
assert state(20 * MiB) == 0 and state(22 * MiB + 99) == 0, m
assert state(30 * MiB) == 3, m
PY

# Byte-identical copies through every client.
nbdcopy "$URI" "$T/copy.img"
assert_same "$T/disk.img" "$T/copy.img"
nbdcopy --connections=4 --requests=16 "$URI" "$T/copy4.img"
assert_same "$T/disk.img" "$T/copy4.img"
qemu-img compare -f raw "$T/disk.img" "$URI"
qemu-img convert -O raw "$URI" "$T/convert.img"
assert_same "$T/disk.img" "$T/convert.img"
qemu-img convert -O qcow2 "$URI" "$T/convert.qcow2"
qemu-img compare -f raw -F qcow2 "$T/disk.img" "$T/convert.qcow2"

# The same export over TCP (the port blockd picked is in its log).
PORT=$(sed -n 's/.*NBD on tcp:127.0.0.1:\([0-9]*\).*/\1/p' "$T/blockd.log" | head -1)
[ -n "$PORT" ] || fail "no TCP port in the log"
nbdcopy "nbd://127.0.0.1:$PORT/other" "$T/tcp.img"
assert_same "$T/disk.img" "$T/tcp.img"

# An unknown export is refused; the server carries on.
expect_fail "" nbdinfo "$(nbd_uri nope)"
nbdinfo --size "$URI" | grep -qx 41943040

stop_blockd
[ ! -e "$T/nbd.sock" ] || fail "socket left behind"
[ ! -e "$T/blockd.pid" ] || fail "pidfile left behind"

# Captive mode: $uri is the first export's URI; the command's status is ours.
"$BLOCKD" --export "ws=oci:$T/layout:v1" --nbd-socket "$T/cap.sock" \
        --run 'nbdcopy "$uri" "'"$T"'/captive.img" && test "$uri" = "nbd+unix:///ws?socket='"$T"'/cap.sock"' \
        2>>"$T/blockd.log"
assert_same "$T/disk.img" "$T/captive.img"
rc=0; "$BLOCKD" --export "ws=oci:$T/layout:v1" --run 'exit 7' 2>>"$T/blockd.log" || rc=$?
[ "$rc" -eq 7 ] || fail "captive mode returned $rc, want 7"
# Without a listener, --run makes a private socket and removes it.
"$BLOCKD" --export "ws=oci:$T/layout:v1" --run 'case "$uri" in nbd+unix:///ws?socket=/*) nbdinfo --size "$uri";; *) exit 9;; esac' \
        2>>"$T/blockd.log" | grep -qx 41943040
echo "ok"
