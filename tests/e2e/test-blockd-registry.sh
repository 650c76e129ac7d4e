#!/usr/bin/env bash
# Exports from a real docker-registry on 127.0.0.1: plain HTTP from the
# command line, TLS with Basic auth attached through the control socket.
# Chunks are fetched on first read (stats count them), served from the
# store afterwards, and keep being served when the registry is gone; what
# was never fetched then fails with EIO instead of hanging. Credentials
# never reach the log.
. "$TESTS_DIR/functions.sh"
requires docker-registry curl nbdcopy qemu-img
requires_nbd_python

truncate -s 12M "$T/disk.img"
head -c 3M /dev/urandom | dd of="$T/disk.img" bs=1M seek=1 conv=notrunc status=none
head -c 2M /dev/urandom | dd of="$T/disk.img" bs=1M seek=8 conv=notrunc status=none

start_registry reg
PLAIN=$REGISTRY
PLAIN_PID=$REGISTRY_PID
hb push --plain-http --chunk-size 256K "$T/disk.img" "docker://$PLAIN/team/ws:v1" >/dev/null
start_tls_registry secure hocus s3cr3t-pa55
hb push --ca-file "$CA_FILE" --creds hocus:s3cr3t-pa55 "$T/disk.img" "docker://$REGISTRY/team/ws:v1" >/dev/null

export HOCUS_BLK_CACHE=$T/blockd-cache
start_blockd --nbd-socket "$T/nbd.sock" --control "$T/control.sock" --plain-http --background off \
        --export "ws=docker://$PLAIN/team/ws:v1"

# First read: 20 data chunks fetched; the second read fetches nothing
# (--background off: what is fetched is what the reads need).
nbdcopy "$(nbd_uri ws)" "$T/out.img"
assert_same "$T/disk.img" "$T/out.img"
[ "$(blockd_stat ws cache_misses)" = 20 ] || fail "misses: $(blockd_stat ws cache_misses)"
fetched=$(blockd_stat ws bytes_fetched)
[ "$fetched" -ge $((5 * 1048576)) ] || fail "fetched only $fetched bytes"
qemu-img compare -f raw "$T/disk.img" "$(nbd_uri ws)"
[ "$(blockd_stat ws cache_misses)" = 20 ] || fail "a cached read fetched again"
[ "$(blockd_stat ws bytes_fetched)" = "$fetched" ] || fail "bytes fetched grew on a cached read"

# An export from the TLS registry with credentials, through the control socket
# (blockd's --plain-http does not apply to it: it speaks TLS to that one).
stop_blockd
start_blockd --nbd-socket "$T/nbd.sock" --control "$T/control.sock" --ca-file "$CA_FILE" \
        --creds hocus:s3cr3t-pa55
hb attach --control "$T/control.sock" --overlay "$T/sec.ovl" sec "docker://$REGISTRY/team/ws:v1" >/dev/null
qemu-img compare -f raw "$T/disk.img" "$(nbd_uri sec)"
grep -q "s3cr3t-pa55" "$T/blockd.log" && fail "the password appears in blockd's log"
stop_blockd

# The registry goes away: what is cached keeps being served; what is not
# fails with an error, promptly, and blockd carries on.
rm -rf "$T/blockd-cache"
start_blockd --nbd-socket "$T/nbd.sock" --control "$T/control.sock" --plain-http --background off --fetch-timeout 5 \
        --export "ws=docker://$PLAIN/team/ws:v1"
cat >"$T/read.py" <<'PY'
import sys, nbd
h = nbd.NBD()
h.connect_uri(sys.argv[1])
expect = open(sys.argv[2], "rb").read()
mode = sys.argv[3]
MiB = 1 << 20
if mode == "warm":
    assert h.pread(MiB, MiB) == expect[MiB:2 * MiB]
else:
    assert h.pread(MiB, MiB) == expect[MiB:2 * MiB], "cached range not served"
    try:
        h.pread(MiB, 8 * MiB)
        sys.exit("uncached read succeeded without a registry")
    except nbd.Error as e:
        assert e.errnum in (5, None) or "Input/output" in str(e), e
    assert h.pread(4096, 0) == bytes(4096)
PY
$NBD_PYTHON "$T/read.py" "$(nbd_uri ws)" "$T/disk.img" warm
kill "$PLAIN_PID"
wait "$PLAIN_PID" 2>/dev/null || true
# It fails, within a generous bound that only catches a hang.
timeout 300 $NBD_PYTHON "$T/read.py" "$(nbd_uri ws)" "$T/disk.img" gone ||
        fail "the uncached read did not fail cleanly with the registry gone"
[ "$(blockd_stat ws errors)" -ge 1 ] || fail "the failed read was not counted"
nbdinfo --size "$(nbd_uri ws)" | grep -qx 12582912
stop_blockd
echo ok
