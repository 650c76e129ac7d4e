#!/usr/bin/env bash
# Pull throughput: `hocus-blk pull` hydrating an empty chunk store from a
# loopback docker-registry, side by side (same run, same registry) with
# curl fetching the same pack blobs, 16 in parallel:
#   curl-null   to /dev/null (the transfer alone)
#   curl-files  to files, then sha256sum of each (what a container image
#               pull does: download and verify; no decompression)
# pull does more than either: it decompresses every chunk, hashes it and
# writes it into the store (the raw bytes, ~3x the stored ones here);
# `pull --no-store` fetches the same ranges and drops them: the registry
# path alone, comparable with curl-null.
# Prints the times, the ratios curl_time / pull_time (aim >= 0.9) and the
# HTTP requests each made. Each runs RUNS times; the median counts.
#
# usage: bench/pull.sh [BUILD_DIR] [DATA_MIB] [RUNS]   (default 768 MiB, 3 runs)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/bench/lib.sh"
build=${1:-$here/build}
mib=${2:-768}
runs=${3:-3}
hb=$build/cli/hocus-blk
W=$T

start_registry reg
port=${REGISTRY#*:}
R=docker://$REGISTRY/bench/pull:v1

# Mixed data in 16 MiB segments: random, numbered text lines, sparse-ish
# blocks (zero pages with a few bytes), in rotation.
echo "generating $mib MiB of mixed data..."
python3 "$here/bench/gen-mixed.py" "$W/disk.img" "$mib" 7
"$hb" push "$W/disk.img" "$R" --plain-http --quiet >/dev/null
"$hb" inspect "$R" --plain-http --json >"$W/inspect.json"
mapfile -t packs < <(jq -r '.packs[].digest' "$W/inspect.json")
stored=$(jq '[.packs[].size] | add' "$W/inspect.json")
cargs=()
for d in "${packs[@]}"; do
        cargs+=(-o /dev/null "http://127.0.0.1:$port/v2/bench/pull/blobs/$d")
done
echo "image: $mib MiB raw, ${#packs[@]} packs, $((stored / 1048576)) MiB stored"

curl_times=() files_times=() pull_times=() fetch_times=()
fargs=()
for ((k = 0; k < ${#packs[@]}; k++)); do
        fargs+=(-o "$W/blobs/$k" "http://127.0.0.1:$port/v2/bench/pull/blobs/${packs[$k]}")
done
for ((i = 0; i < runs; i++)); do
        t0=$(now)
        curl -fsS --no-progress-meter --parallel --parallel-max 16 "${cargs[@]}"
        t1=$(now)
        curl_times+=("$(calc "$t1 - $t0" %.4f)")

        rm -rf "$W/blobs"
        mkdir -p "$W/blobs"
        sync
        t0=$(now)
        curl -fsS --no-progress-meter --parallel --parallel-max 16 "${fargs[@]}"
        sha256sum "$W"/blobs/* >/dev/null
        t1=$(now)
        files_times+=("$(calc "$t1 - $t0" %.4f)")
        rm -rf "$W/blobs"

        rm -rf "$W/cache"
        sync
        t0=$(now)
        "$hb" pull "$R" --plain-http --cache "$W/cache" >"$W/pull.out"
        t1=$(now)
        pull_times+=("$(calc "$t1 - $t0" %.4f)")

        rm -rf "$W/cache"
        t0=$(now)
        "$hb" pull "$R" --plain-http --cache "$W/cache" --no-store >/dev/null
        t1=$(now)
        fetch_times+=("$(calc "$t1 - $t0" %.4f)")
done
ct=$(printf '%s\n' "${curl_times[@]}" | median)
ft=$(printf '%s\n' "${files_times[@]}" | median)
pt=$(printf '%s\n' "${pull_times[@]}" | median)
nt=$(printf '%s\n' "${fetch_times[@]}" | median)
cat "$W/pull.out"
requests=$(sed -n 's/.*http *\([0-9]*\) requests.*/\1/p' "$W/pull.out")
printf '\ncurl  (%d blobs, parallel 16, to /dev/null):  %6.2f s  %7.1f MiB/s  %d requests\n' \
        "${#packs[@]}" "$ct" "$(calc "$stored / 1048576 / $ct")" "${#packs[@]}"
printf 'curl  (to files, then sha256sum):            %6.2f s  %7.1f MiB/s  %d requests\n' \
        "$ft" "$(calc "$stored / 1048576 / $ft")" "${#packs[@]}"
printf 'pull  (decompress + verify + store):         %6.2f s  %7.1f MiB/s  %s requests\n' \
        "$pt" "$(calc "$stored / 1048576 / $pt")" "$requests"
printf 'pull --no-store (the registry path alone): %6.2f s  %7.1f MiB/s  %s requests\n' \
        "$nt" "$(calc "$stored / 1048576 / $nt")" "$requests"
printf 'ratio curl-null / pull --no-store: %.2f   curl-null / pull: %.2f   curl-files / pull: %.2f\n' \
        "$(calc "$ct / $nt")" "$(calc "$ct / $pt")" "$(calc "$ft / $pt")"
printf 'runs (s): curl-null %s; curl-files %s; pull %s; pull --no-store %s\n' "${curl_times[*]}" \
        "${files_times[*]}" "${pull_times[*]}" "${fetch_times[*]}"
