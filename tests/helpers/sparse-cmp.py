#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""sparse-cmp A B: exit 0 when two (sparse) files are byte-identical.

Only the data extents of either file (SEEK_DATA/SEEK_HOLE) are read: a
range that is a hole in both files is zeros in both.
"""
import os
import sys


def extents(fd, size):
    out, off = [], 0
    while off < size:
        try:
            start = os.lseek(fd, off, os.SEEK_DATA)
        except OSError:
            break
        end = os.lseek(fd, start, os.SEEK_HOLE)
        out.append((start, end))
        off = end
    return out


def main():
    a, b = (os.open(p, os.O_RDONLY) for p in sys.argv[1:3])
    size = os.fstat(a).st_size
    if size != os.fstat(b).st_size:
        print("sizes differ: %d != %d" % (size, os.fstat(b).st_size), file=sys.stderr)
        return 1
    ranges = sorted(extents(a, size) + extents(b, size))
    merged = []
    for s, e in ranges:
        if merged and s <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    for s, e in merged:
        off = s
        while off < e:
            n = min(8 << 20, e - off)
            if os.pread(a, n, off) != os.pread(b, n, off):
                print("differ in [%d, %d)" % (off, off + n), file=sys.stderr)
                return 1
            off += n
    return 0


if __name__ == "__main__":
    sys.exit(main())
