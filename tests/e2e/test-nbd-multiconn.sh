#!/usr/bin/env bash
# Several connections to one writable export (CAN_MULTI_CONN): nbdcopy with 4
# connections writes the whole export, parallel writers on their own
# connections are covered by a FLUSH sent on yet another connection; after
# kill -9 and a restart everything is there.
. "$TESTS_DIR/functions.sh"
requires_nbd_python
requires nbdcopy

truncate -s 24M "$T/disk.img"
head -c 6M /dev/urandom | dd of="$T/disk.img" bs=1M seek=3 conv=notrunc status=none
hb push "$T/disk.img" "oci:$T/layout:v1" >/dev/null
head -c 24M /dev/urandom >"$T/new.img"
truncate -s 24M "$T/new.img"
dd if=/dev/zero of="$T/new.img" bs=1M seek=10 count=4 conv=notrunc status=none

EXPORT="ws=oci:$T/layout:v1,overlay=$T/ws.ovl"
start_blockd --nbd-socket "$T/nbd.sock" --export "$EXPORT"
nbdcopy --flush --connections=4 --requests=16 "$T/new.img" "$(nbd_uri ws)"
kill9_blockd
start_blockd --nbd-socket "$T/nbd.sock" --export "$EXPORT"
nbdcopy --connections=4 "$(nbd_uri ws)" "$T/out.img"
assert_same "$T/new.img" "$T/out.img"

cat >"$T/parallel.py" <<'PY'
import os, random, sys, threading, nbd
uri, expect = sys.argv[1], sys.argv[2]
size = 24 << 20
model = bytearray(open(sys.argv[3], "rb").read())
def writer(i):
    h = nbd.NBD(); h.connect_uri(uri)
    rnd = random.Random(i)
    stripe = size // 4
    for _ in range(200):
        off = i * stripe + rnd.randrange(stripe - 70000)
        data = os.urandom(rnd.randrange(1, 70000))
        h.pwrite(data, off)
        model[off:off + len(data)] = data
    # no flush here: the flush below, on another connection, covers us
threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
[t.start() for t in threads]
[t.join() for t in threads]
h = nbd.NBD(); h.connect_uri(uri); h.flush()
open(expect, "wb").write(model)
PY
$NBD_PYTHON "$T/parallel.py" "$(nbd_uri ws)" "$T/expect.img" "$T/new.img"
kill9_blockd
start_blockd --nbd-socket "$T/nbd.sock" --export "$EXPORT"
nbdcopy "$(nbd_uri ws)" "$T/out2.img"
assert_same "$T/expect.img" "$T/out2.img"
stop_blockd
echo ok
