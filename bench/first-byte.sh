#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Time to the first byte of a cold export while the background stream is
# in flight (issue 13, demand isolation). docker-registry on loopback
# behind bench/linkem (default 1 Gbit/s, 2 ms RTT); an image of random
# bytes (what the link carries is what the registry stores) in 256 KiB
# chunks; blockd from an empty chunk store, --background on, no profile
# (--profile: a published one of 64 single chunks across the image, looked
# up at attach).
# Per run:
#   attach   s from blockd's start until its NBD export answers (the
#            manifest and index transfer)
#   first    ms of the first 4 KiB read, issued at once after attach
#            (the stream may already be starting)
#   ttfb     ms from blockd's start to that read's bytes: attach + first
#   blockd's own breakdown (hocus-blk stats --json), in ms: a_reg (GET
#   /v2/), a_man (manifest), a_idx (index fetched, verified, decoded),
#   a_all (the attach whole; the rest of attach is process start and
#   listeners), fr (the attach's start to the first read's bytes), lk
#   (the attach's end to the profile lookup's end; -1 without one)
#   stream   ms of a 4 KiB read of a chunk far ahead of the stream,
#            issued once the stream has fetched STREAM_MIB
#   stream-n the same, 8 serial reads, each its own chunk: the median
# and the RTTs these are worth. The goal: a read within 3 round trips,
# whatever is in flight. Medians of RUNS. --tls: the registry speaks TLS
# (Basic auth), so curl negotiates HTTP/2 and multiplexes each connection
# pool onto one connection (where demand and prefetch would share one
# connection without blockd's demand connections).
#
# usage: bench/first-byte.sh [--build DIR] [--runs N] [--link DELAY:RATE]
#            [--size MIB] [--stream-mib MIB] [--profile] [--tls]
here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/bench/lib.sh"
build=$here/build
runs=5
link=1ms:1gbit
size_mib=1024
stream_mib=64
profile=none
tls=
while [ $# -gt 0 ]; do
        case $1 in
        --build) build=$2; shift 2 ;;
        --runs) runs=$2; shift 2 ;;
        --link) link=$2; shift 2 ;;
        --size) size_mib=$2; shift 2 ;;
        --stream-mib) stream_mib=$2; shift 2 ;;
        --profile) profile=auto; shift ;;
        --tls) tls=1; shift ;;
        *) echo "usage: bench/first-byte.sh [--build DIR] [--runs N] [--link DELAY:RATE] [--size MIB] [--stream-mib MIB] [--profile] [--tls]" >&2; exit 2 ;;
        esac
done
for v in "$runs" "$size_mib" "$stream_mib"; do
        case $v in
        '' | *[!0-9]* | 0) echo "bench/first-byte.sh: --runs, --size and --stream-mib take positive integers, not '$v'" >&2; exit 2 ;;
        esac
done
# The reads (reads.py): the first at the middle plus 17 chunks; the nine
# far ahead of the stream at size - (37k + 5) chunks, k = 1..9, so the
# farthest from the end is 338 chunks (84.5 MiB) before it, and all must
# lie beyond the first STREAM_MIB the stream fetches: the image must be
# larger than STREAM_MIB + 84.5 MiB.
min_mib=$((stream_mib + 338 * 256 / 1024 + 1))
if [ "$size_mib" -lt "$min_mib" ]; then
        echo "bench/first-byte.sh: --size $size_mib is too small for --stream-mib $stream_mib: its reads of a chunk" \
                "ahead of the stream lie up to 84.5 MiB before the image's end, beyond the first $stream_mib MiB;" \
                "give --size $min_mib or more (or a smaller --stream-mib)" >&2
        exit 2
fi
hb=$build/cli/hocus-blk
blockd=${BLOCKD_BIN:-$build/blockd/blockd}
requires docker-registry
requires_nbd_python

if [ -n "$tls" ]; then
        start_tls_registry reg bench b3nch-pa55
        access=(--ca-file "$CA_FILE" --creds bench:b3nch-pa55)
else
        start_registry reg
        access=(--plain-http)
fi
port=${REGISTRY#*:}
head -c $((size_mib << 20)) /dev/urandom >"$T/disk.img"
"$hb" push "${access[@]}" --quiet --chunk-size 256K "$T/disk.img" "docker://127.0.0.1:$port/bench/fb:v1" >/dev/null
rm -f "$T/disk.img"
if [ "$profile" = auto ]; then
        python3 - "$T/boot.prf" $((size_mib << 20)) <<'PY'
import struct, sys
cs, size = 262144, int(sys.argv[2])
ranges = [((size // cs) * k // 64 * cs, cs) for k in range(64)]
body = b"".join(struct.pack("<QII", off, ln, i) for i, (off, ln) in enumerate(ranges))
open(sys.argv[1], "wb").write(b"HOCUSPRF" + struct.pack("<IIIIQ", 1, 0, cs, len(ranges), 0) + body)
PY
        "$hb" profile push "${access[@]}" "docker://127.0.0.1:$port/bench/fb:v1" "$T/boot.prf" >/dev/null
fi
start_linkem "$build/bench/linkem" "$port" "${link%%:*}" "${link#*:}" "$T/linkem.json"
REF=docker://127.0.0.1:$LINKEM_PORT/bench/fb:v1
rtt_ms=$(calc "2000 * $(delay_s "${link%%:*}")" %.3f)

cat >"$T/reads.py" <<'PY'
import os, sys, time, nbd
uri, log, stream_bytes, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
cs = 262144
h = nbd.NBD()
t0 = time.monotonic()
while True:
    try:
        h.connect_uri(uri)
        break
    except nbd.Error:
        if time.monotonic() - t0 > 60:
            raise
        time.sleep(0.005)
        h = nbd.NBD()
attach = time.monotonic() - float(os.environ["T_START"])
def timed(off):
    t = time.monotonic()
    h.pread(4096, off)
    return (time.monotonic() - t) * 1000
first = timed(size // 2 + 17 * cs)
def bg_bytes():
    n = 0
    for l in open(log):
        if " class=background " in l:
            n += int(l.split(" bytes=")[1].split()[0])
    return n
deadline = time.monotonic() + 120
while bg_bytes() < stream_bytes and time.monotonic() < deadline:
    time.sleep(0.01)
# Far ahead of the stream: the last quarter of the image.
stream = [timed(size - (k * 37 + 5) * cs) for k in range(1, 10)]
print("attach=%.3f first=%.2f ttfb=%.1f stream=%.2f stream_n=%.2f" % (
    attach, first, attach * 1000 + first, stream[0], sorted(stream[1:])[len(stream[1:]) // 2]))
h.shutdown()
PY

echo "# bench/first-byte.sh: image $size_mib MiB random, 256 KiB chunks, profile $profile, link $link (RTT $rtt_ms ms)${tls:+, TLS}, stream in flight after $stream_mib MiB, $(nproc) CPUs, load $(loadavg)"
for n in $(seq "$runs"); do
        rm -rf "$T/cache" "$T/fetch.log" "$T/blockd.pid"
        : >"$T/fetch.log"
        export T_START
        T_START=$(python3 -c 'import time; print(time.monotonic())')
        "$blockd" --cache "$T/cache" "${access[@]}" --state-dir none --nbd-socket "$T/nbd.sock" \
                --control "$T/control.sock" --pidfile "$T/blockd.pid" --fetch-log "$T/fetch.log" \
                --export "ws=$REF,profile=$profile" >"$T/blockd.log" 2>&1 &
        bpid=$!
        line=$("$NBD_PYTHON" "$T/reads.py" "nbd+unix:///ws?socket=$T/nbd.sock" "$T/fetch.log" \
                $((stream_mib << 20)) $((size_mib << 20))) || fail "the reads failed: $(tail -3 "$T/blockd.log")"
        fetch=$("$hb" stats --control "$T/control.sock" --json | python3 -c 'import json, sys
j = json.load(sys.stdin)
f, e = j["fetch"], j["exports"][0]
for k in ("bg_budget", "bg_shrinks", "delays", "delays_forgiven", "demand_bg_ahead_max"):
    f.setdefault(k, -1)         # a blockd from before the scavenger (or the CPU stall filter)
ms = lambda k: e[k] * 1e3 if k in e else -1     # a blockd from before the breakdown
print("a_reg=%.1f a_man=%.1f a_idx=%.1f a_all=%.1f fr=%.1f lk=%.1f" % (
    ms("attach_connect_s"), ms("attach_manifest_s"), ms("attach_index_s"), ms("attach_s"), ms("first_read_s"),
    ms("profile_lookup_s") if e.get("profile_lookup_s") else -1), end=" ")
print("bw=%.0fMB/s rtt=%.2fms bg_budget=%d bg_shrinks=%d delays=%d forgiven=%d demand_bg_ahead_max=%d" % (
    f["bandwidth"] / 1e6, f["rtt_s"] * 1e3, f["bg_budget"], f["bg_shrinks"], f["delays"],
    f["delays_forgiven"], f["demand_bg_ahead_max"]))')
        kill "$bpid"; wait "$bpid" || true
        echo "run=$n $line $fetch" | tee -a "$T/results"
done
python3 - "$T/results" "$rtt_ms" <<'PY'
import statistics, sys
rows = [dict(kv.split("=", 1) for kv in l.split()) for l in open(sys.argv[1])]
rtt = float(sys.argv[2])
for k, unit in (("attach", "s"), ("first", "ms"), ("ttfb", "ms"), ("stream", "ms"), ("stream_n", "ms"),
                ("a_reg", "ms"), ("a_man", "ms"), ("a_idx", "ms"), ("a_all", "ms"), ("fr", "ms"), ("lk", "ms")):
    v = statistics.median(float(r[k]) for r in rows)
    extra = " = %.1f RTT" % (v / rtt) if unit == "ms" and rtt else ""
    print("%-9s median %.3f %s%s" % (k, v, unit, extra))
PY
