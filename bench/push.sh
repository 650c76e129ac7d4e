#!/usr/bin/env bash
# Push throughput against zstd -3 over the same non-zero bytes, same thread
# count, same run; and the time to push a 100 GiB sparse image holding that
# data (holes are skipped, so it should take seconds, not minutes).
#
# usage: bench/push.sh [BUILD_DIR] [DATA_GIB]     (default 4 GiB of mixed data)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
gib=${2:-4}
hb=$build/cli/hocus-blk
threads=$(nproc)
W=$(mktemp -d /tmp/bench-push.XXXXXX)
trap 'rm -rf "$W"' EXIT
export HOCUS_BLK_NO_PROGRESS=1

# Mixed data in 64 MiB segments: random (incompressible), numbered text
# lines (compressible, never repeating) and zero-filled regions with a few
# non-zero bytes, in rotation.
echo "generating $gib GiB of mixed data..."
python3 - "$W/data.bin" "$gib" <<'PY'
import os, random, sys
path, gib = sys.argv[1], int(sys.argv[2])
rng = random.Random(42)
seg = 64 << 20
line_no = 0
with open(path, "wb") as f:
    for i in range(gib * 16):
        kind = i % 3
        if kind == 0:
            f.write(rng.randbytes(seg))
        elif kind == 1:
            parts, n = [], 0
            while n < seg:
                s = "".join(f"{line_no + k:012d} static int chunk_read(struct export *e, uint64_t off);\n" for k in range(1000))
                line_no += 1000
                parts.append(s)
                n += len(s)
            f.write("".join(parts).encode()[:seg])
        else:
            b = bytearray(seg)
            for k in range(0, seg, 4096):
                b[k] = rng.randrange(1, 256)
            f.write(bytes(b))
PY
truncate -s 100G "$W/sparse.img"
# Scatter the data through the sparse image in 256 MiB pieces.
pieces=$((gib * 4))
for ((p = 0; p < pieces; p++)); do
        dd if="$W/data.bin" of="$W/sparse.img" bs=64M skip=$((p * 4)) count=4 \
                seek=$((p * 96 + 17)) conv=notrunc status=none
done
cat "$W/data.bin" >/dev/null # both runs read from the page cache

bytes=$(stat -c %s "$W/data.bin")
now() { date +%s.%N; }
# Every run starts with no dirty pages (sync), so one run's write-back does
# not land in the next one's time. push makes its output durable (syncfs
# before the tag is written); zstd is timed both without and with an fsync
# of its output, and the ratio uses the durable one (the same work).
best_zstd=; best_zstd_sync=; best_flat=; best_sparse=
for run in 1 2 3; do
        sync
        t0=$(now)
        zstd -q -3 -T"$threads" -f "$W/data.bin" -o "$W/data.zst"
        t1=$(now)
        sync -d "$W/data.zst"
        t2=$(now)
        zsize=$(stat -c %s "$W/data.zst")
        rm -f "$W/data.zst"
        sync
        t3=$(now)
        "$hb" push "$W/data.bin" "oci:$W/layout-flat:v1" --threads "$threads" >"$W/push-flat.out"
        t4=$(now)
        rm -rf "$W/layout-flat" "$W/layout"
        sync
        t5=$(now)
        "$hb" push "$W/sparse.img" "oci:$W/layout:v1" --threads "$threads" >"$W/push.out"
        t6=$(now)
        stored=$(du -sb "$W/layout/blobs" | cut -f1)
        min() { if [ -z "$1" ] || [ "$(echo "$2 < $1" | bc -l)" = 1 ]; then echo "$2"; else echo "$1"; fi; }
        best_zstd=$(min "$best_zstd" "$(echo "$t1 - $t0" | bc -l)")
        best_zstd_sync=$(min "$best_zstd_sync" "$(echo "$t2 - $t0" | bc -l)")
        best_flat=$(min "$best_flat" "$(echo "$t4 - $t3" | bc -l)")
        best_sparse=$(min "$best_sparse" "$(echo "$t6 - $t5" | bc -l)")
done
row() {
        printf '%-52s %7.2f s %6.0f MB/s %s\n' "$1" "$2" "$(echo "$bytes / 1000000 / $2" | bc -l)" "${3:-}"
}
printf '\nmachine: %s, %s CPUs; %s threads for both; best of 3 runs; %s GiB of mixed data\n' \
        "$(uname -m)" "$(nproc)" "$threads" "$gib"
row "zstd -3 -T$threads, output in the page cache" "$best_zstd" "(output $((zsize >> 20)) MiB)"
row "zstd -3 -T$threads, output fsynced" "$best_zstd_sync"
row "hocus-blk push, the data as a flat file" "$best_flat"
row "hocus-blk push, 100 GiB sparse image with the data" "$best_sparse" "(output $((stored >> 20)) MiB)"
printf 'ratio push/zstd throughput (both durable): %.2f flat, %.2f sparse; against zstd without fsync: %.2f, %.2f; aim >= 0.8\n' \
        "$(echo "$best_zstd_sync / $best_flat" | bc -l)" "$(echo "$best_zstd_sync / $best_sparse" | bc -l)" \
        "$(echo "$best_zstd / $best_flat" | bc -l)" "$(echo "$best_zstd / $best_sparse" | bc -l)"
