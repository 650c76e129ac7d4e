#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Compare two files byte for byte, fast on sparse files: only the union
of their data regions (SEEK_DATA/SEEK_HOLE) is read; holes read as zeros.
Exit 0 when identical, 1 with the first differing offset otherwise."""
import os
import sys


def data_regions(fd, size):
    pos = 0
    while pos < size:
        try:
            start = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError:
            return
        end = min(os.lseek(fd, start, os.SEEK_HOLE), size)
        yield start, end
        pos = end


def merged(a, b):
    regions = sorted(list(a) + list(b))
    out = []
    for s, e in regions:
        if out and s <= out[-1][1]:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return out


def main():
    pa, pb = sys.argv[1], sys.argv[2]
    fa, fb = os.open(pa, os.O_RDONLY), os.open(pb, os.O_RDONLY)
    sa, sb = os.fstat(fa).st_size, os.fstat(fb).st_size
    if sa != sb:
        print(f"{pa} is {sa} bytes, {pb} is {sb}")
        return 1
    for s, e in merged(data_regions(fa, sa), data_regions(fb, sb)):
        off = s
        while off < e:
            n = min(8 << 20, e - off)
            x, y = os.pread(fa, n, off), os.pread(fb, n, off)
            if x != y:
                i = next(i for i in range(min(len(x), len(y))) if x[i] != y[i]) if len(x) == len(y) else 0
                print(f"{pa} and {pb} differ at byte {off + i}")
                return 1
            off += n
    return 0


if __name__ == "__main__":
    sys.exit(main())
