#!/bin/bash
# bench/registry-cpu.sh [--requests N] [--perf SECONDS]: docker-registry's
# CPU per range request, by range size and connection reuse, in isolation.
# A registry as the bench and the tests start it (tests/functions.sh
# start_registry: filesystem storage, log level warn, access log on), a
# 64 MiB random blob laid into its storage as bench/coldstart lays the raw
# image (a hard link and the repository's layer link), then N range GETs
# per size at spread 4 KiB-aligned offsets from bench/registry-ranges.py
# (one keep-alive HTTP/1.1 connection, or a new connection per request),
# the registry's utime+stime read from /proc before and after. --perf
# SECONDS: also `perf record -g` the registry during 4 KiB requests for
# that long and print where its CPU goes, symbolized from the stripped
# binary's .gopclntab (bench/gopclntab-sym.py). docs/BENCHMARKS.md, "Where
# the registry's CPU goes", has the figures and what they mean.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/bench/lib.sh"
n=300 perf_s=0
while [ $# -gt 0 ]; do
        case $1 in
        --requests) n=$2; shift 2 ;;
        --perf) perf_s=$2; shift 2 ;;
        *) echo "usage: $0 [--requests N] [--perf SECONDS]" >&2; exit 2 ;;
        esac
done
requires docker-registry python3
start_registry reg
blob=$T/blob
head -c 64M /dev/urandom >"$blob"
dg=$(sha256sum "$blob" | cut -d' ' -f1)
v2=$T/reg/data/docker/registry/v2
mkdir -p "$v2/blobs/sha256/${dg:0:2}/$dg" "$v2/repositories/bench/raw/_layers/sha256/$dg"
ln "$blob" "$v2/blobs/sha256/${dg:0:2}/$dg/data"
printf 'sha256:%s' "$dg" >"$v2/repositories/bench/raw/_layers/sha256/$dg/link"
path=/v2/bench/raw/blobs/sha256:$dg
ranges() { python3 "$here/bench/registry-ranges.py" "$REGISTRY" "$path" "$@"; }
ticks() { awk '{ print $14 + $15 }' "/proc/$REGISTRY_PID/stat"; }
hz=$(getconf CLK_TCK)
# measure SIZE [newconn]: one line, the registry's CPU ms per request.
measure() {
        ranges 20 "$@" # warm the page cache and the registry's heap
        local a b
        a=$(ticks)
        ranges "$n" "$@"
        b=$(ticks)
        printf '%-9s %-10s %4d requests %6s ms CPU per request\n' "$1" "${2:-keepalive}" "$n" \
                "$(calc "($b - $a) * 1000 / $hz / $n")"
}
echo "docker-registry $(docker-registry --version | awk '{print $NF}'), load $(loadavg)"
for size in 4096 65536 262144 1048576 4194304 8388608 16777216; do
        measure "$size"
done
measure 262144 newconn
if [ "$perf_s" != 0 ]; then
        requires perf
        perf record -g -o "$T/perf.data" -p "$REGISTRY_PID" -- sleep "$perf_s" >/dev/null 2>&1 &
        pp=$!
        sleep 0.5
        while kill -0 "$pp" 2>/dev/null; do ranges 50 4096; done
        wait "$pp" || true
        perf script -i "$T/perf.data" 2>/dev/null | python3 "$here/bench/gopclntab-sym.py" "$(command -v docker-registry)"
fi
