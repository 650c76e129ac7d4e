#!/usr/bin/env bash
# Build the libFuzzer targets with clang and run each for SECONDS (default
# 20), starting from seeds made by the real encoder and those kept in
# tests/fuzz/corpus/NAME. Fails on any crash.
# usage: tests/fuzz/run.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-20}
command -v clang >/dev/null || { echo "fuzz: clang not installed, skipping"; exit 0; }
if [ ! -f build-fuzz/build.ninja ]; then
        CC=clang meson setup build-fuzz -Dfuzz=true -Db_lundef=false >/dev/null
fi
ninja -C build-fuzz tests/fuzz/fuzz-blkindex tests/fuzz/fuzz-profile tests/fuzz/fuzz-manifest tests/fuzz/fuzz-regconf tests/fuzz/fuzz-ctlproto \
        tests/fuzz/fuzz-nbd tests/fuzz/fuzz-vhost >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Seeds: a real image's index, profile and manifest.
ninja -C build-fuzz cli/hocus-blk >/dev/null
head -c 3000000 /dev/urandom >"$work/img"
HOCUS_BLK_NO_PROGRESS=1 build-fuzz/cli/hocus-blk push "$work/img" "oci:$work/l:v1" --chunk-size 64K >/dev/null
mkdir -p "$work/seed-blkindex" "$work/seed-profile" "$work/seed-manifest"
for b in "$work"/l/blobs/sha256/*; do
        case "$(head -c 8 "$b")" in
        HOCUSIDX) cp "$b" "$work/seed-blkindex/" ;;
        \{*) cp "$b" "$work/seed-manifest/" ;;
        esac
done
printf 'HOCUSPRF\001\000\000\000\000\000\000\000\000\000\001\000\001\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\020\000\000\000\000\000\000' >"$work/seed-profile/p"
# Seeds kept in the tree (tests/fuzz/corpus/NAME), copied: libFuzzer adds
# what it finds to its first corpus directory.
for d in tests/fuzz/corpus/*/; do
        t=$(basename "$d")
        mkdir -p "$work/seed-$t"
        cp "$d"* "$work/seed-$t/"
done
# fuzz-nbd serves this image as its exports.
export FUZZ_NBD_REF=oci:$work/l:v1
for t in blkindex profile manifest regconf ctlproto nbd vhost; do
        echo "fuzz-$t: ${secs}s"
        TMPDIR=$work build-fuzz/tests/fuzz/fuzz-$t -max_total_time="$secs" -timeout=60 -max_len=65536 -print_final_stats=0 \
                "$work/seed-$t" 2>"$work/fuzz-$t.log" || { tail -40 "$work/fuzz-$t.log"; exit 1; }
        grep -E '^#[0-9]+ +DONE' "$work/fuzz-$t.log" || tail -1 "$work/fuzz-$t.log"
done
