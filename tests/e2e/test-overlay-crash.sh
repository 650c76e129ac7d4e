#!/usr/bin/env bash
# Durability of the overlay: kill -9 blockd after an acknowledged FLUSH (and
# after FUA writes, and after a flush on another connection), restart it on
# the same overlay: every flushed write is there, and the unflushed writes
# left every 4 KiB block either as it was or as they made it: no neighbour is
# ever damaged.
. "$TESTS_DIR/functions.sh"
requires_nbd_python
requires python3

truncate -s 8M "$T/disk.img"
head -c 3M /dev/urandom | dd of="$T/disk.img" bs=1M seek=1 conv=notrunc status=none
hb push --chunk-size 64K "$T/disk.img" "oci:$T/layout:v1" >/dev/null

cat >"$T/crash.py" <<'PY'
# Usage: crash.py MODE URI IMAGE STATE PID
#   MODE=write: apply flushed writes A, unflushed writes B, kill -9 PID;
#               save the expected old (flushed) and new images in STATE.*
#   MODE=check: read the export and compare with STATE.old / STATE.new.
import os, random, signal, sys
import nbd

mode, uri, image, state = sys.argv[1:5]
BS = 4096
size = os.path.getsize(image)

def connect():
    h = nbd.NBD()
    h.connect_uri(uri)
    return h

if mode == "write":
    pid = int(sys.argv[5])
    rnd = random.Random(int(os.environ.get("SEED", "1")))
    model = bytearray(open(image, "rb").read())
    h, h2 = connect(), connect()
    assert h.can_flush() and h.can_fua() and h.can_multi_conn()

    def write(handle, off, data, flags=0):
        handle.pwrite(data, off, flags)
        model[off:off + len(data)] = data

    # A: aligned and unaligned writes, a trim and a zeroing, then FLUSH.
    for _ in range(60):
        off, ln = rnd.randrange(size - 70000), rnd.randrange(1, 70000)
        if rnd.random() < 0.3:
            off, ln = off // BS * BS, max(BS, ln // BS * BS)
        write(h, off, os.urandom(ln))
    h.trim(64 * 1024, 5 * 1024 * 1024)
    model[5 * 1024 * 1024:5 * 1024 * 1024 + 64 * 1024] = bytes(64 * 1024)
    h.zero(10000, 2 * 1024 * 1024)
    model[2 * 1024 * 1024:2 * 1024 * 1024 + 10000] = bytes(10000)
    h.flush()
    # A FUA write is durable on its own.
    write(h, 6 * 1024 * 1024 + 100, b"F" * 5000, nbd.CMD_FLAG_FUA)
    # A write on one connection, flushed through another (multi-conn).
    write(h, 7 * 1024 * 1024 + 7, b"M" * 9000)
    h2.flush()
    old = bytes(model)

    # B: unflushed, small and unaligned, next to and inside earlier writes.
    for _ in range(40):
        off, ln = rnd.randrange(size - 3000), rnd.randrange(1, 3000)
        write(h, off, os.urandom(ln))
    h.trim(128 * 1024, 3 * 1024 * 1024)
    model[3 * 1024 * 1024:3 * 1024 * 1024 + 128 * 1024] = bytes(128 * 1024)
    open(state + ".old", "wb").write(old)
    open(state + ".new", "wb").write(bytes(model))
    os.kill(pid, signal.SIGKILL)
    sys.exit(0)

old = open(state + ".old", "rb").read()
new = open(state + ".new", "rb").read()
h = connect()
got = bytearray()
for off in range(0, size, 1 << 20):
    got += h.pread(min(1 << 20, size - off), off)
bad = 0
for b in range(0, size, BS):
    blk = got[b:b + BS]
    if blk != old[b:b + BS] and blk != new[b:b + BS]:
        bad += 1
        if bad < 5:
            print(f"block at {b}: neither its flushed nor its latest content", file=sys.stderr)
# Nothing flushed may be lost: blocks B did not touch must equal old.
for b in range(0, size, BS):
    if old[b:b + BS] == new[b:b + BS] and got[b:b + BS] != old[b:b + BS]:
        bad += 1
        print(f"block at {b}: flushed data lost", file=sys.stderr)
        break
assert bad == 0, f"{bad} damaged blocks"
print("check ok")
PY

for round in 1 2 3; do
        rm -f "$T/ws.ovl"
        start_blockd --nbd-socket "$T/nbd.sock" --export "ws=oci:$T/layout:v1,overlay=$T/ws.ovl"
        SEED=$round $NBD_PYTHON "$T/crash.py" write "$(nbd_uri ws)" "$T/disk.img" "$T/state" "$BLOCKD_PID"
        kill9_blockd
        start_blockd --nbd-socket "$T/nbd.sock" --export "ws=oci:$T/layout:v1,overlay=$T/ws.ovl"
        $NBD_PYTHON "$T/crash.py" check "$(nbd_uri ws)" "$T/disk.img" "$T/state"
        stop_blockd
done
echo ok
