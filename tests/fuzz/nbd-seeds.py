#!/usr/bin/env python3
"""Write the seed corpus of fuzz-nbd (tests/fuzz/corpus/nbd): what real
clients send, from the first byte. Exports: "ro", "rw" (with an overlay),
"" (the default). Run from anywhere; it rewrites the directory."""
import os
import struct

IHAVEOPT = 0x49484156454F5054
EXPORT_NAME, ABORT, LIST, STARTTLS, INFO, GO, SR, LIST_META, SET_META = 1, 2, 3, 5, 6, 7, 8, 9, 10
READ, WRITE, DISC, FLUSH, TRIM, CACHE, WZ, BS = 0, 1, 2, 3, 4, 5, 6, 7
FUA, NO_HOLE, DF, REQ_ONE, FAST_ZERO = 1, 2, 4, 8, 16


def flags(f=3):
    return struct.pack(">I", f)


def opt(o, data=b""):
    return struct.pack(">QII", IHAVEOPT, o, len(data)) + data


def go(name, infos=(), o=GO):
    n = name.encode()
    return opt(o, struct.pack(">I", len(n)) + n + struct.pack(">H", len(infos)) +
               b"".join(struct.pack(">H", i) for i in infos))


def meta(o, name, queries):
    n = name.encode()
    q = b"".join(struct.pack(">I", len(x)) + x.encode() for x in queries)
    return opt(o, struct.pack(">I", len(n)) + n + struct.pack(">I", len(queries)) + q)


def rq(typ, off, ln, handle=1, f=0, payload=b""):
    return struct.pack(">IHHQQI", 0x25609513, f, typ, handle, off, ln) + payload


seeds = {
    "flags-only": flags(),
    "no-zeroes-flag-only": flags(2),
    "go-read": flags() + go("ro") + rq(READ, 0, 4096) + rq(READ, 65536, 131072, 2) + rq(DISC, 0, 0),
    "go-default": flags() + go("", (0, 1, 2, 3)) + rq(READ, 4096, 512) + rq(DISC, 0, 0),
    "info-list-abort": flags() + opt(LIST) + go("ro", (0, 1, 2, 3), INFO) + go("nope", (), INFO) + opt(ABORT),
    "export-name": flags() + opt(EXPORT_NAME, b"ro") + rq(READ, 0, 1024) + rq(CACHE, 0, 65536, 2) + rq(DISC, 0, 0),
    "export-name-oldstyle": flags(0) + opt(EXPORT_NAME, b"rw") + rq(READ, 0, 512) + rq(DISC, 0, 0),
    "structured-rw": flags() + opt(SR) + meta(LIST_META, "rw", ["base:"]) +
        meta(SET_META, "rw", ["base:allocation"]) + go("rw") +
        rq(WRITE, 4096, 8, 1, FUA, b"abcdefgh") + rq(READ, 0, 65536, 2) + rq(READ, 0, 8192, 3, DF) +
        rq(BS, 0, 1 << 20, 4) + rq(BS, 0, 1 << 20, 5, REQ_ONE) + rq(TRIM, 8192, 4096, 6) +
        rq(WZ, 16384, 4096, 7, NO_HOLE) + rq(WZ, 0, 65536, 8, FAST_ZERO) + rq(FLUSH, 0, 0, 9) + rq(DISC, 0, 0),
    "structured-ro": flags() + opt(SR) + meta(SET_META, "ro", ["base:allocation", "qemu:dirty-bitmap:x"]) +
        go("ro") + rq(READ, 0, 1 << 20, 1) + rq(BS, 0, 3 << 20, 2) + rq(WRITE, 0, 4, 3, 0, b"nope") +
        rq(READ, 1 << 40, 4096, 4) + rq(99, 0, 0, 5) + rq(DISC, 0, 0),
    "starttls-refused": flags() + opt(STARTTLS) + opt(SR, b"x") + go("rw") + rq(READ, 0, 4096) + rq(DISC, 0, 0),
    "pipelined": flags() + go("rw") + b"".join(rq(READ, i * 4096, 4096, i) for i in range(32)) +
        rq(WRITE, 0, 512, 99, 0, bytes(512)) + rq(DISC, 0, 0),
}

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "nbd")
os.makedirs(out, exist_ok=True)
for f in os.listdir(out):
    os.unlink(os.path.join(out, f))
for name, data in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
print(f"{len(seeds)} seeds in {out}")
