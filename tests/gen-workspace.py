#!/usr/bin/env python3
"""Generate a deterministic sample workspace tree: source files (text,
compressible), small config files, a few binaries (incompressible) and a
large 'dataset' file that a start-up workload never reads.

usage: gen-workspace.py DIR [--size MiB] [--seed N] [--dataset MiB]
"""
import argparse
import os
import random

WORDS = ("int return struct static const void char uint64_t if else for while "
         "buffer chunk export overlay fetch registry digest index cache node "
         "server client request reply error status offset length size").split()


def text_file(rng, size):
    lines = []
    n = 0
    while n < size:
        indent = "    " * rng.randint(0, 3)
        line = indent + " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 12))) + ";\n"
        lines.append(line)
        n += len(line)
    return "".join(lines)[:size].encode()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--size", type=int, default=200, help="MiB of files in total (approximate)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--dataset", type=int, default=0, help="MiB of a never-read dataset file")
    a = ap.parse_args()
    rng = random.Random(a.seed)
    budget = a.size << 20
    written = 0
    nfile = 0
    # 60% source text, 25% binaries, 15% small configs
    while written < budget:
        kind = rng.random()
        d = os.path.join(a.dir, "project", f"module{nfile % 40:02d}")
        if kind < 0.60:
            size = rng.randint(2 << 10, 256 << 10)
            path = os.path.join(d, f"file{nfile}.c")
            data = text_file(rng, size)
        elif kind < 0.85:
            size = rng.randint(64 << 10, 4 << 20)
            path = os.path.join(a.dir, "bin", f"tool{nfile}")
            data = rng.randbytes(size)
        else:
            size = rng.randint(100, 4 << 10)
            path = os.path.join(a.dir, "etc", f"conf{nfile}.ini")
            data = text_file(rng, size)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        written += len(data)
        nfile += 1
    if a.dataset:
        os.makedirs(os.path.join(a.dir, "data"), exist_ok=True)
        with open(os.path.join(a.dir, "data", "dataset.bin"), "wb") as f:
            for _ in range(a.dataset):
                f.write(rng.randbytes(1 << 20))
    print(f"{nfile} files, {written >> 20} MiB")


if __name__ == "__main__":
    main()
