#!/usr/bin/env bash
# The main job on the embedded default (an OCI image-layout directory, no
# server): make a sample workspace disk (an ext4 filesystem with files in a
# large sparse image), push it, and read it back lazily through the chunk
# store, showing what was fetched and how fast.
#
# usage: cli/demo.sh [BUILD_DIR]      (work files go to $DEMO_DIR, default /tmp/hocus-demo)
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
hb=$build/cli/hocus-blk
work=${DEMO_DIR:-/tmp/hocus-demo}
disk_size=${DEMO_DISK_SIZE:-100G}
files_mib=${DEMO_FILES_MIB:-300}

[ -x "$hb" ] || { echo "demo: $hb is not built" >&2; exit 1; }
rm -rf "$work"
mkdir -p "$work"
export HOCUS_BLK_CACHE=$work/cache
layout=oci:$work/layout

step() { printf '\n== %s\n' "$*"; }

step "1. A sample workspace: $files_mib MiB of files in an ext4 filesystem on a $disk_size sparse disk"
python3 "$here/tests/gen-workspace.py" "$work/files" --size "$files_mib"
mkfs.ext4 -q -F -L workspace -d "$work/files" "$work/disk.img" "$disk_size"
printf 'disk.img: %s apparent, %s allocated\n' "$(du -h --apparent-size "$work/disk.img" | cut -f1)" \
        "$(du -h "$work/disk.img" | cut -f1)"

step "2. Push it to the OCI image layout $layout:v1 (holes are skipped, chunks deduplicated and compressed)"
"$hb" push "$work/disk.img" "$layout:v1"

step "3. What the image holds"
"$hb" inspect "$layout:v1" | grep -v '^  sha256'

step "4. Read it back cold, through the chunk store (every chunk fetched, verified, cached)"
"$hb" export "$layout:v1" "$work/readback.img"

step "5. Read it again warm: nothing is fetched, every chunk comes from the local store"
"$hb" export "$layout:v1" "$work/readback2.img"

step "6. Check: the read-back image is byte-identical to the original"
python3 "$here/tests/sparse-cmp.py" "$work/disk.img" "$work/readback.img"
echo "identical: $work/disk.img == $work/readback.img"
"$hb" cache stats

echo
echo "demo: done (work files in $work)"
