#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The lazy engine benchmark's image, boot trace and replay client.

  lazy-trace.py image PATH SIZE_MIB        a sparse image: a boot area and
                                           data regions (random and text)
  lazy-trace.py trace PATH SIZE_MIB OUT    the boot trace over that image:
                                           "offset length" per line
  lazy-trace.py profile TRACE OUT          the trace as a boot profile
                                           (docs/FORMAT.md section 6)
  lazy-trace.py replay URI TRACE [QD]      read the trace through NBD (libnbd),
                                           QD reads in flight (default 8), in
                                           order; prints seconds and bytes

Everything is deterministic (seeded): the same SIZE_MIB gives the same
image layout and the same trace. The trace is shaped like a boot: the boot
area read front to back in 256 KiB to 1 MiB reads, then 4 to 64 KiB reads
scattered over the data (a few per region touched), with three bursts that
read a 48 MiB stretch of one region (a large program or dataset loaded).
"""
import os
import random
import struct
import sys
import time

MiB = 1 << 20


def layout(size_mib):
    """(offset, length, kind) of the data, in MiB units scaled to the size."""
    rng = random.Random(7)
    scale = size_mib / 4096
    boot = (8 * MiB, int(96 * MiB * max(scale, 0.5)) // MiB * MiB, "mixed")
    regions = [boot]
    n = max(8, int(40 * scale))
    slots = list(range(boot[0] + boot[1] + 8 * MiB, size_mib * MiB - 40 * MiB, 48 * MiB))
    rng.shuffle(slots)
    for i, off in enumerate(sorted(slots[:n])):
        ln = rng.choice([8, 16, 24, 32]) * MiB
        regions.append((off, ln, "random" if i % 2 else "text"))
    return regions


def write_image(path, size_mib):
    rng = random.Random(11)
    line = 0
    with open(path, "wb") as f:
        f.truncate(size_mib * MiB)
        for off, ln, kind in layout(size_mib):
            f.seek(off)
            left = ln
            while left > 0:
                n = min(left, 4 * MiB)
                k = kind if kind != "mixed" else ("random" if (off + ln - left) // (4 * MiB) % 2 else "text")
                if k == "random":
                    b = rng.randbytes(n)
                else:
                    s = []
                    size = 0
                    while size < n:
                        t = "%012d usr/lib/python3/dist-packages/module_%d.py: def f(x): return x * %d\n" % (
                            line, line % 977, line % 31)
                        s.append(t)
                        size += len(t)
                        line += 1
                    b = "".join(s).encode()[:n]
                f.write(b)
                left -= n


def make_trace(size_mib):
    rng = random.Random(13)
    regs = layout(size_mib)
    boot, data = regs[0], regs[1:]
    out = []
    off = boot[0]
    end = boot[0] + min(boot[1], 64 * MiB)
    while off < end:
        ln = min(rng.choice([256, 512, 1024]) * 1024, end - off)
        out.append((off, ln))
        off += ln
    n_scattered = max(150, int(600 * size_mib / 4096))
    bursts = set(rng.sample(range(n_scattered), 3))
    for k in range(n_scattered):
        o, l, _ = rng.choice(data)
        if k in bursts:
            ln = min(48 * MiB, l)
            start = o + (rng.randrange(0, (l - ln) // MiB + 1)) * MiB
            p = start
            while p < start + ln:
                out.append((p, 128 * 1024))
                p += 128 * 1024
            continue
        ln = rng.choice([4, 8, 16, 32, 64]) * 1024
        p = o + rng.randrange(0, (l - ln) // 4096) * 4096
        out.append((p, ln))
    return out


def write_profile(trace_path, out):
    entries = [tuple(map(int, l.split())) for l in open(trace_path)]
    body = b"".join(struct.pack("<QII", off, ln, i) for i, (off, ln) in enumerate(entries))
    hdr = b"HOCUSPRF" + struct.pack("<IIIIQ", 1, 0, 262144, len(entries), 0)
    with open(out, "wb") as f:
        f.write(hdr + body)


def replay(uri, trace_path, qd):
    import nbd
    entries = [tuple(map(int, l.split())) for l in open(trace_path)]
    h = nbd.NBD()
    h.connect_uri(uri)
    inflight = {}
    t0 = time.monotonic()
    i = 0
    total = 0
    while i < len(entries) or inflight:
        while i < len(entries) and len(inflight) < qd:
            off, ln = entries[i]
            buf = nbd.Buffer(ln)
            cookie = h.aio_pread(buf, off)
            inflight[cookie] = buf
            total += ln
            i += 1
        h.poll(-1)
        for c in list(inflight):
            if h.aio_command_completed(c):
                del inflight[c]
    secs = time.monotonic() - t0
    h.shutdown()
    print("%.3f %d %d" % (secs, total, len(entries)))


def main():
    cmd = sys.argv[1]
    if cmd == "image":
        write_image(sys.argv[2], int(sys.argv[3]))
    elif cmd == "trace":
        with open(sys.argv[4], "w") as f:
            for off, ln in make_trace(int(sys.argv[3])):
                f.write("%d %d\n" % (off, ln))
    elif cmd == "profile":
        write_profile(sys.argv[2], sys.argv[3])
    elif cmd == "replay":
        replay(sys.argv[2], sys.argv[3], int(sys.argv[4]) if len(sys.argv) > 4 else 8)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
