#!/usr/bin/env bash
# Measure the trade-offs that choose the default chunk size (128K..1M) on a
# sample workspace disk: push throughput, stored bytes, index size, the size
# of a delta push after a realistic change (files rewritten in place by
# debugfs, as a running VM would), and read amplification of a start-up
# workload (the chunks that hold 10% of the files, read cold).
#
# usage: bench/chunk-size.sh [BUILD_DIR]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
hb=$build/cli/hocus-blk
W=$(mktemp -d /tmp/bench-chunk.XXXXXX)
trap 'rm -rf "$W"' EXIT
export HOCUS_BLK_NO_PROGRESS=1

echo "workspace: 600 MiB of files in ext4 on a 20 GiB sparse disk"
python3 "$here/tests/gen-workspace.py" "$W/files" --size 600 --seed 7 >/dev/null
mkfs.ext4 -q -F -d "$W/files" "$W/v1.img" 20G

# v2: 5% of the files rewritten and 20 MiB of new files, written in place
# by debugfs (the filesystem allocator places them, as in a running VM).
cp --sparse=always "$W/v1.img" "$W/v2.img"
python3 "$here/tests/gen-workspace.py" "$W/new" --size 20 --seed 99 >/dev/null
{
        find "$W/files" -type f | sort | awk 'NR % 20 == 0' | while read -r f; do
                rel=${f#"$W/files"}
                echo "rm $rel"
                echo "write $f $rel"
        done
        echo "mkdir /new"
        find "$W/new" -type f | sort | while read -r f; do
                echo "write $f /new/$(basename "$f")"
        done
} >"$W/debugfs.cmds"
debugfs -w -f "$W/debugfs.cmds" "$W/v2.img" >/dev/null 2>&1

# Start-up workload: 10% of the files (every 10th), by physical block list.
find "$W/files" -type f | sort | awk 'NR % 10 == 3' | sed "s|^$W/files||" >"$W/boot.files"
sed 's/^/blocks /' "$W/boot.files" | debugfs -f - "$W/v1.img" 2>/dev/null |
        grep -v '^debugfs' | tr ' ' '\n' | grep -E '^[0-9]+$' >"$W/boot.blocks"

printf '\n%-6s %10s %12s %10s %12s %12s %14s\n' chunk "push MB/s" "stored MiB" "index KiB" "delta MiB" "boot needs" "boot fetches"
for cs in 128K 256K 512K 1M; do
        rm -rf "$W/layout"
        start=$(date +%s.%N)
        "$hb" push "$W/v1.img" "oci:$W/layout:v1" --chunk-size "$cs" >"$W/push.out"
        end=$(date +%s.%N)
        data=$(awk '/read/ {print $2, $3}' "$W/push.out" | numfmt --from=iec --suffix=iB 2>/dev/null || true)
        hb_json=$("$hb" inspect --json "oci:$W/layout:v1")
        stored=$(jq .stored_bytes <<<"$hb_json")
        idx=$(jq .index_size <<<"$hb_json")
        raw=$(jq .raw_bytes <<<"$hb_json")
        before=$(du -sb "$W/layout/blobs" | cut -f1)
        "$hb" push "$W/v2.img" "oci:$W/layout:v2" --base "oci:$W/layout:v1" >/dev/null
        after=$(du -sb "$W/layout/blobs" | cut -f1)
        # Read amplification: stored bytes of the chunks holding the boot blocks.
        amp=$(python3 - "$W/boot.blocks" "$cs" "$W/layout" <<'PY'
import json, sys, subprocess
blocks = [int(x) for x in open(sys.argv[1]) if x.strip()]
cs = {"128K": 131072, "256K": 262144, "512K": 524288, "1M": 1048576}[sys.argv[2]]
chunks = sorted({b * 4096 // cs for b in blocks})
print(len(blocks) * 4096, len(chunks) * cs)
PY
)
        need=${amp% *}
        fetch=${amp#* }
        printf '%-6s %10.0f %12.1f %10.1f %12.1f %12.1f %14.1f\n' "$cs" \
                "$(echo "$raw / 1048576 / ($end - $start)" | bc -l)" \
                "$(echo "$stored / 1048576" | bc -l)" "$(echo "$idx / 1024" | bc -l)" \
                "$(echo "($after - $before) / 1048576" | bc -l)" \
                "$(echo "$need / 1048576" | bc -l)" "$(echo "$fetch / 1048576" | bc -l)"
done
