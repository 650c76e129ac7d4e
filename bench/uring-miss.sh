#!/usr/bin/env bash
# Does io_uring pay on the miss path? A cold read of an image through
# blockd (oci: layout source, so the miss path is all local I/O: pack
# reads, chunk store writes, no network to hide behind), counted with
# strace -c -f: how many read/write/fsync-class syscalls the miss path makes
# and the time they take, beside the wall time of the same read without
# strace and the cost of one bare syscall on this machine (perf bench
# syscall basic). io_uring saves at most the per-call entry cost of those
# syscalls (the copying and the device work remain); the figure printed
# last is that bound as a share of the cold read. The same for writing
# the image into an overlay.
#   bash bench/uring-miss.sh [BUILD_DIR] [SIZE_MIB]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
size=${2:-256}
export HOCUS_BLK=$build/cli/hocus-blk
. "$here/bench/lib.sh"
BLOCKD=$build/blockd/blockd
requires strace nbdcopy perf

head -c "$((size * 1048576))" /dev/urandom >"$T/disk.img"
"$HOCUS_BLK" push "$T/disk.img" "oci:$T/l:v1" >/dev/null

# cold_read [WRAPPER...]: blockd serves the image from an empty chunk store
# and nbdcopy reads all of it.
cold_read() {
        rm -rf "$T/cache"
        sync
        "$@" "$BLOCKD" --cache "$T/cache" --background off --export "ws=oci:$T/l:v1" \
                --nbd-socket "$T/nbd.sock" --run 'nbdcopy "$uri" null:' 2>>"$T/blockd.log"
}

# run_case NAME CMD...: wall times (3 runs, median) and one run under
# strace; prints the figures.
per_call=$(perf bench syscall basic --loop 1000000 2>/dev/null | awk '/usecs\/op/ { print $1 }')
run_case() {
        local name=$1 walls=() wall io calls secs total_calls i t0
        shift
        for i in 1 2 3; do
                t0=$(now)
                "$@"
                walls+=("$(calc "$(now) - $t0" %.3f)")
        done
        wall=$(printf '%s\n' "${walls[@]}" | median)
        "$@" strace -f -c -o "$T/strace.txt"
        # The file I/O syscalls io_uring could take over (generously:
        # access checks included, which it has no opcode for).
        io=$(awk '$NF ~ /^(pread64|pwrite64|preadv2?|pwritev2?|read|write|fsync|fdatasync|openat|close|renameat2?|unlinkat|linkat|mkdirat|faccessat2?|fstat|newfstatat|statx|ftruncate|fallocate)$/ {
                calls += ($4 ~ /^[0-9]+$/ ? $4 : $5); secs += $2 } END { printf "%d %.3f", calls, secs }' "$T/strace.txt")
        calls=${io% *}
        secs=${io#* }
        total_calls=$(awk '$NF == "total" { print ($4 ~ /^[0-9]+$/ ? $4 : $3) }' "$T/strace.txt")
        echo "$name: ${walls[*]} s, median $wall s"
        echo "  syscalls (strace -c -f): $total_calls in all; file I/O: $calls calls, $secs s in the kernel (under strace)"
        echo "  io_uring's bound: $calls x $per_call us = $(calc "$calls * $per_call / 1e6" %.3f) s = $(calc "100 * $calls * $per_call / 1e6 / $wall" %.1f)% of it"
        sort -k4 -n -r "$T/strace.txt" | head -12 | sed 's/^/    /'
}

# cold_write [WRAPPER...]: the same image, written whole into a fresh
# overlay (the overlay's write path: pwrite plus its allocation map).
head -c "$((size * 1048576))" /dev/urandom >"$T/new.img"
cold_write() {
        rm -rf "$T/cache" "$T/ov"
        sync
        "$@" "$BLOCKD" --cache "$T/cache" --background off --export "ws=oci:$T/l:v1,overlay=$T/ov" \
                --nbd-socket "$T/nbd.sock" --run "nbdcopy '$T/new.img' \"\$uri\"" 2>>"$T/blockd.log"
}

echo "one bare syscall here (perf bench syscall basic): $per_call us"
run_case "cold read of $size MiB through blockd (oci: source, empty chunk store)" cold_read
run_case "write of $size MiB into a fresh overlay" cold_write
