#!/usr/bin/env bash
# blockd's vhost-user-blk backend against a hostile VMM/guest driver
# (tests/helpers/vhostraw.py, a raw frontend over a memfd): good requests
# read the image's bytes and GET_ID names the export; a read past the end
# and a write to a read-only export complete with IOERR; a descriptor chain
# that loops and a buffer outside guest memory stop that queue only (logged,
# no completion, blockd alive), while another export and a new connection to
# the same socket are served; a malformed message and a VMM that vanishes
# with a request in flight are disconnected and cleaned up.
. "$TESTS_DIR/functions.sh"
requires python3
make_image "$T/disk.img" random 4M
REF=oci:$T/layout:v1
hb push --chunk-size 256K "$T/disk.img" "$REF" >/dev/null
VH=$T/vhost
start_blockd --control "$T/control.sock" --vhost-user-blk "$VH" --export "a=$REF" \
        --export "b=$REF,overlay=$T/b.ovl"
[ -S "$VH/a.sock" ] && [ -S "$VH/b.sock" ] || fail "no vhost-user sockets in $VH: $(ls -la "$VH")"

PYTHONPATH=$HELPERS_DIR python3 - "$VH" "$T/disk.img" "$T/blockd.log" <<'PY' || fail "vhost hostile checks failed; blockd: $(grep -v " debug: " "$T/blockd.log" | tail -8)"
import os, struct, sys, time
from vhostraw import *
vh, img, log = sys.argv[1:]
image = open(img, "rb").read()

def log_has(text, timeout=60):
    """Wait for blockd to log text (a hang detector)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if text in open(log).read():
            return
        time.sleep(0.05)
    raise AssertionError(f"blockd never logged {text!r}")

# Good requests; config space; read-only export.
a = Vmm(f"{vh}/a.sock").setup()
cfg = a.config()
assert struct.unpack_from("<Q", cfg, 0)[0] == len(image) // 512, "capacity"
assert a.features & F_BLK_RO, "export a is read-only: VIRTIO_BLK_F_RO"
st, data = a.request(T_IN, 2048, 8192)
assert st == S_OK and data == image[2048 * 512:2048 * 512 + 8192], "read of sector 2048"
st, data = a.request(T_GET_ID, 0, 20)
assert st == S_OK and data.rstrip(b"\0") == b"a", f"GET_ID {data!r}"
st, _ = a.request(T_IN, len(image) // 512 - 1, 1024)
assert st == S_IOERR, f"read past the end: status {st}"
st, _ = a.request(T_OUT, 0, payload=b"x" * 512)
assert st == S_IOERR, f"write to a read-only export: status {st}"
st, _ = a.request(99, 0)
assert st == S_UNSUPP, f"unknown request type: status {st}"

# A chain that loops: the queue stops, nothing completes.
before = a.used_idx()
a.desc(0, DATA, 16, DESC_NEXT, 1)
a.desc(1, DATA + 0x100, 1, DESC_NEXT, 0)
a.offer(0)
log_has("queue 0 stopped, the guest broke its rules: descriptor chain loops")
assert a.used_idx() == before, "a looping chain completed"

# The other export is served meanwhile, and writes there.
b = Vmm(f"{vh}/b.sock").setup()
assert not b.features & F_BLK_RO
st, _ = b.request(T_OUT, 8, payload=b"w" * 4096)
assert st == S_OK, f"write to b: status {st}"
st, data = b.request(T_IN, 8, 4096)
assert st == S_OK and data == b"w" * 4096, "b reads back its write"

# The same socket serves the next VMM after this one goes.
a.close()
log_has("vhost-user a: VMM disconnected")
a = Vmm(f"{vh}/a.sock").setup()
a.desc(0, MEM + 4096, 16, DESC_NEXT, 1)         # outside guest memory
a.desc(1, DATA + 0x100, 1, DESC_WRITE)
a.offer(0)
log_has("buffer outside guest memory")
a.close()

# A malformed message (9 memory regions): disconnected.
a = Vmm(f"{vh}/a.sock")
a.send(SET_MEM_TABLE, struct.pack("<II", 9, 0) + bytes(32 * 9))
assert a.closed(), "blockd kept a VMM that sent 9 regions"
a.close()

# A VMM that vanishes with a request in flight; the next one is served.
a = Vmm(f"{vh}/a.sock").setup()
a.poke(DATA, struct.pack("<IIQ", T_IN, 0, 0))
a.desc(0, DATA, 16, DESC_NEXT, 1)
a.desc(1, DATA + 0x1000, 65536, DESC_NEXT | DESC_WRITE, 2)
a.desc(2, DATA + 0x100, 1, DESC_WRITE)
a.offer(0)
a.close()
a = Vmm(f"{vh}/a.sock").setup()
st, data = a.request(T_IN, 0, 4096)
assert st == S_OK and data == image[:4096], "read after a vanished VMM"
a.close()
b.close()
print("vhost hostile checks passed")
PY
kill -0 "$BLOCKD_PID" || fail "blockd died"
stop_blockd
[ ! -e "$VH/a.sock" ] || fail "blockd left $VH/a.sock behind"
