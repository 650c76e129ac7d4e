#!/usr/bin/env bash
# The main job on the embedded default (an OCI image-layout directory, no
# server): make a sample workspace disk (an ext4 filesystem with files in a
# large sparse image), push it, and read it back lazily through the chunk
# store, showing what was fetched and how fast. Then (as root, with FUSE)
# the boot-profile story: mount the image, record the profile of a start-up
# workload that reads files off it, publish the profile next to the image,
# and start cold without and with it, reporting time and bytes for each.
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

if [ "$(id -u)" -ne 0 ] || [ ! -e /dev/fuse ]; then
        echo
        echo "demo: skipping the mount and boot-profile steps (they need root and /dev/fuse)"
        echo "demo: done (work files in $work)"
        exit 0
fi

export HOCUS_BLK_RUN_DIR=$work/run
mnt=$work/mnt
mkdir -p "$mnt"
trap '"$hb" umount --lazy "$mnt" >/dev/null 2>&1 || true' EXIT

# The workspace's start-up: read the configs, the sources of ten modules
# and a few tools, off the mounted image.
workload='cat "$HOCUS_BLK_MOUNT"/etc/*.ini >/dev/null
for d in "$HOCUS_BLK_MOUNT"/project/module0*; do cat "$d"/*.c; done >/dev/null
ls "$HOCUS_BLK_MOUNT"/bin | sort | head -8 | (cd "$HOCUS_BLK_MOUNT"/bin && xargs cat) >/dev/null'

# counter FIELD: a counter of the blockd behind the mount on $mnt.
counter() {
        "$hb" stats --control "$(ls "$HOCUS_BLK_RUN_DIR"/mounts/*/control.sock)" --json |
                python3 -c 'import json,sys; print(json.load(sys.stdin)["exports"][0][sys.argv[1]])' "$1"
}

# cold_start LABEL [MOUNT ARGS...]: mount from an empty chunk store, run the
# workload, report; one line per run goes to $work/results.
cold_start() {
        local label=$1 t0 t1 t2 misses0 misses1
        shift
        rm -rf "$work/cold-cache"
        t0=$(date +%s.%N)
        HOCUS_BLK_CACHE=$work/cold-cache "$hb" mount "$layout:v1" "$mnt" "$@"
        t1=$(date +%s.%N)
        misses0=$(counter cache_misses)
        HOCUS_BLK_MOUNT=$mnt sh -c "$workload"
        t2=$(date +%s.%N)
        misses1=$(counter cache_misses)
        printf '%-16s ready in %5.2f s, workload %5.2f s, %4d reads waited for a fetch, %s fetched (%s by the prefetch)\n' \
                "$label" "$(awk "BEGIN { print $t1 - $t0 }")" "$(awk "BEGIN { print $t2 - $t1 }")" $((misses1 - misses0)) \
                "$(numfmt --to=iec-i --suffix=B "$(counter bytes_fetched)")" \
                "$(numfmt --to=iec-i --suffix=B "$(counter prefetch_bytes)")" | tee -a "$work/results"
        "$hb" umount "$mnt"
}

step "7. Mount it (lazily, read-only; the chunk store is warm from step 4, so nothing is fetched)"
"$hb" mount "$layout:v1" "$mnt"
df -h "$mnt" | tail -1
ls "$mnt"
"$hb" umount "$mnt"

step "8. Record a boot profile: the workspace's start-up workload reads files off the mounted image"
"$hb" record "$layout:v1" --out "$work/boot.prf" --mount -- sh -c "$workload"

step "9. Publish it next to the image (an OCI artifact whose subject is the image's manifest)"
"$hb" profile push "$layout:v1" "$work/boot.prf"

step "10. Cold start without the profile, then with it (each from an empty chunk store)"
: >"$work/results"
cold_start "no profile" --no-profile
cold_start "boot profile"

step "11. Result"
cat "$work/results"
echo "(The layout is on local disk, so a fetch costs little here; over a network every read"
echo " that waits for a fetch costs a round trip. docs/BENCHMARKS.md measures a registry.)"

echo
echo "demo: done (work files in $work)"
