#!/usr/bin/env python3
# registry-ranges.py HOST:PORT PATH N SIZE [newconn]: N range GETs of SIZE
# bytes at spread 4 KiB-aligned offsets of a 64 MiB blob, over one
# keep-alive HTTP/1.1 connection (or a new one per request with newconn).
# Every answer must be a 206 of SIZE bytes. Used by bench/registry-cpu.sh.
import http.client, sys, random
hostport, path, n, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
newconn = len(sys.argv) > 5 and sys.argv[5] == "newconn"
blob = 64 << 20
h, p = hostport.split(":")
rnd = random.Random(1)
c = None
for i in range(n):
    if c is None or newconn:
        if c: c.close()
        c = http.client.HTTPConnection(h, int(p))
    off = rnd.randrange(0, blob - size) & ~4095
    c.request("GET", path, headers={"Range": "bytes=%d-%d" % (off, off + size - 1)})
    r = c.getresponse()
    d = r.read()
    assert r.status == 206 and len(d) == size, (r.status, len(d))
