#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Read blockd's fetch log (--fetch-log: one "fetch key=value..." line per
range request) and chunks of an NBD export, for the e2e tests.

  fetchlog.py demand LOG     "REQUESTS CHUNKS DUPLICATES MAX": the demand
                             fetches that succeeded, the logical chunks they
                             brought, how many of those came twice, the
                             highest (-1: none)
  fetchlog.py profile LOG    the chunks of each profile fetch, in start order
  fetchlog.py read URI IMAGE CHUNK_SIZE CHUNK...
                             read each chunk through NBD (libnbd's python)
                             and check it against IMAGE's bytes
"""
import sys


def lines(path):
    return [dict(kv.split("=", 1) for kv in l.split()[1:]) for l in open(path)]


def chunks(spec):
    for part in spec.split(","):
        a, _, b = part.partition("-")
        yield from range(int(a), int(b or a) + 1)


def demand(path):
    seen, dup, req = set(), 0, 0
    for f in lines(path):
        if f["class"] != "demand" or f["result"] != "ok":
            continue
        req += 1
        for c in chunks(f["chunks"]):
            dup += c in seen
            seen.add(c)
    print(req, len(seen), dup, max(seen) if seen else -1)


def profile(path):
    print(" ".join(f["chunks"] for f in sorted(lines(path), key=lambda f: float(f["start"]))
                   if f["class"] == "profile" and f["result"] == "ok"))


def read(uri, image, cs, wanted):
    import nbd
    h = nbd.NBD()
    h.connect_uri(uri)
    with open(image, "rb") as img:
        for c in wanted:
            img.seek(c * cs)
            assert h.pread(cs, c * cs) == img.read(cs), c
    h.shutdown()


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "demand":
        demand(args[0])
    elif cmd == "profile":
        profile(args[0])
    elif cmd == "read":
        read(args[0], args[1], int(args[2]), [int(c) for c in args[3:]])
    else:
        sys.exit(f"fetchlog.py: unknown command {cmd}")
