#!/usr/bin/env python3
"""Mixed benchmark data in 16 MiB segments, in rotation: random bytes,
numbered text lines (compressible, distinct), and sparse-ish blocks (zero
pages with one byte set each). Deterministic for a given seed.

usage: bench/gen-mixed.py PATH MIB SEED
"""
import random
import sys


def main():
    path, mib, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    rng = random.Random(seed)
    seg = 16 << 20
    n = 0
    with open(path, "wb") as f:
        for i in range(mib // 16):
            kind = i % 3
            if kind == 0:
                f.write(rng.randbytes(seg))
            elif kind == 1:
                lines = seg // 60 + 1
                s = "".join(f"{n + k:012d} static int chunk_read(struct export *e, uint64_t off);\n"
                            for k in range(lines))
                n += lines
                f.write(s.encode()[:seg])
            else:
                b = bytearray(seg)
                for k in range(0, seg, 4096):
                    b[k] = rng.randrange(1, 256)
                f.write(bytes(b))


if __name__ == "__main__":
    main()
