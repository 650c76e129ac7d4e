#!/usr/bin/env bash
# Build the cold-start benchmark's workspace disk: a sparse raw image with
# one ext4 filesystem (mkfs.ext4 -d: no loop device, no mount) holding
#   /                      Debian bookworm, debootstrap minbase plus python3,
#                          gcc (with libc6-dev, so it links) and git
#   /home/dev/ws/          generated project files (tests/gen-workspace.py:
#                          source text, binaries, small configs)
#   /srv/datasets/*.bin    large incompressible files no start ever reads
# and writes OUT.img.json describing it. bench/workload.sh is the start
# workload that runs programs from it.
#
# The debootstrap tree, its .deb tarball, the project files and the
# datasets are cached (--cache, default $HOCUS_BENCH_CACHE or
# /var/cache/hocus-bench), so a rerun only runs mkfs. Everything but the
# Debian packages is generated from --seed; mkfs gets a fixed UUID, hash
# seed and clock, and inode times are pinned: the same cache gives a
# byte-identical image.
#
# usage: bench/make-workspace.sh OUT.img [--size 100G] [--data-gib N]
#            [--project-mib N] [--quick] [--seed N] [--cache DIR]
#   full (default): 100G sparse, 4 GiB of datasets, 600 MiB of project
#   --quick:        2G sparse, minbase + python3 + git (no gcc), 32 MiB of
#                   datasets and 32 MiB of project (~320 MiB in all)
# Needs root (debootstrap chroots) and debootstrap, mkfs.ext4, openssl.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
suite=bookworm

usage() {
        sed -n '/^# usage:/,/^# Needs/s/^# \{0,1\}//p' "$0" >&2
        exit 2
}

out=
size=
data_gib=
project_mib=
quick=0
seed=1
cache=${HOCUS_BENCH_CACHE:-/var/cache/hocus-bench}
while [ $# -gt 0 ]; do
        case $1 in
        --size) size=$2; shift ;;
        --data-gib) data_gib=$2; shift ;;
        --project-mib) project_mib=$2; shift ;;
        --quick) quick=1 ;;
        --seed) seed=$2; shift ;;
        --cache) cache=$2; shift ;;
        -h|--help) usage ;;
        -*) echo "unknown option $1" >&2; usage ;;
        *) [ -z "$out" ] || usage; out=$1 ;;
        esac
        shift
done
[ -n "$out" ] || usage
if [ "$quick" = 1 ]; then
        : "${size:=2G}" "${data_gib:=0.03125}" "${project_mib:=32}"
        include=python3,git
else
        : "${size:=100G}" "${data_gib:=4}" "${project_mib:=600}"
        include=python3,gcc,libc6-dev,git
fi
data_mib=$(awk -v g="$data_gib" 'BEGIN { printf "%d", g * 1024 }')
[ "$(id -u)" = 0 ] || { echo "make-workspace: needs root (debootstrap)" >&2; exit 1; }
for c in debootstrap mkfs.ext4 debugfs dumpe2fs openssl python3; do
        command -v "$c" >/dev/null || { echo "make-workspace: $c is required (tests/install-deps.sh --bench)" >&2; exit 1; }
done

t0=$SECONDS
step() { printf '[%4ds] %s\n' $((SECONDS - t0)) "$*"; }
mkdir -p "$cache"
work=$(mktemp -d "$cache/work.XXXXXX")
trap 'rm -rf "$work"' EXIT

# --- Debian: the .deb tarball, then the unpacked tree, each built once.
variant=$suite-minbase-$(echo "$include" | tr , -)
tarball=$cache/$variant.debs.tgz
rootfs=$cache/$variant.rootfs
if [ ! -s "$tarball" ]; then
        step "downloading $variant packages from $mirror"
        debootstrap --variant=minbase --include="$include" --make-tarball="$work/debs.tgz" \
                "$suite" "$work/dl" "$mirror" >"$work/debootstrap.log" 2>&1 ||
                { tail -20 "$work/debootstrap.log" >&2; exit 1; }
        mv "$work/debs.tgz" "$tarball"
fi
if [ ! -e "$rootfs/.complete" ]; then
        step "debootstrap $variant (from the cached tarball)"
        rm -rf "$rootfs"
        debootstrap --variant=minbase --include="$include" --unpack-tarball="$tarball" \
                "$suite" "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 ||
                { tail -20 "$work/debootstrap.log" >&2; exit 1; }
        # What a built image keeps: no package downloads, no apt lists.
        rm -rf "$work/rootfs"/var/cache/apt/archives/*.deb "$work/rootfs"/var/lib/apt/lists/*
        rm -f "$work/rootfs"/var/log/*.log "$work/rootfs"/var/cache/ldconfig/aux-cache
        mv "$work/rootfs" "$rootfs"
        touch "$rootfs/.complete"
fi

# --- Project files and datasets, deterministic from the seed.
project=$cache/project-$project_mib-$seed
if [ ! -e "$project/.complete" ]; then
        step "generating $project_mib MiB of project files (seed $seed)"
        rm -rf "$project"
        python3 "$here/tests/gen-workspace.py" "$work/project" --size "$project_mib" --seed "$seed" >/dev/null
        mv "$work/project" "$project"
        touch "$project/.complete"
fi
data=$cache/data-$data_mib-$seed
if [ ! -e "$data/.complete" ]; then
        step "generating $data_mib MiB of datasets (seed $seed)"
        rm -rf "$data"
        mkdir -p "$work/data"
        left=$data_mib
        i=0
        while [ "$left" -gt 0 ]; do
                n=$((left > 1024 ? 1024 : left))
                # AES-CTR of zeros under a key from the seed: incompressible,
                # reproducible, and GB/s where /dev/urandom is slower.
                (set +o pipefail
                 openssl enc -aes-128-ctr -nosalt -pass "pass:hocus-bench-$seed-$i" \
                        -in /dev/zero 2>/dev/null | head -c $((n << 20)) \
                        >"$work/data/dataset-$(printf %02d $i).bin")
                left=$((left - n))
                i=$((i + 1))
        done
        mv "$work/data" "$data"
        touch "$data/.complete"
fi

# --- The tree, as hard links into the caches (nothing copied), then mkfs.
step "assembling the tree"
tree=$work/tree
cp -al "$rootfs" "$tree"
rm -f "$tree/.complete"
mkdir -p "$tree/home/dev" "$tree/srv"
cp -al "$project" "$tree/home/dev/ws"
rm -f "$tree/home/dev/ws/.complete"
cp -al "$data" "$tree/srv/datasets"
rm -f "$tree/srv/datasets/.complete"
rm -f "$tree/etc/hostname"       # a link into the cache: don't write through it
echo hocus-bench >"$tree/etc/hostname"
touch -h -d @1700000000 "$tree" "$tree/home" "$tree/home/dev" "$tree/home/dev/ws" "$tree/srv" \
        "$tree/srv/datasets" "$tree/etc" \
        "$tree/etc/hostname"

step "mkfs.ext4 -d into a $size sparse image"
rm -f "$out"
# A fixed UUID, directory hash seed and clock make the image reproducible.
uuid=$(printf '%08x-0000-4000-8000-%012x' "$seed" "$seed")
E2FSPROGS_FAKE_TIME=1700000000 mkfs.ext4 -q -F -L hocus-ws -U "$uuid" \
        -E "hash_seed=$uuid,root_owner=0:0" -d "$tree" "$out" "$size"

# mkfs copies each file's ctime and atime, which the hard links above (and
# reads) just changed: pin both, in every inode in use, to the fake clock.
step "pinning inode times"
dumpe2fs "$out" 2>/dev/null | python3 -c '
import re, sys
ipg = None
for line in sys.stdin:
    m = re.match(r"Inodes per group:\s+(\d+)", line)
    if m:
        ipg = int(m.group(1))
    m = re.match(r"Group (\d+):", line)
    if m:
        g = int(m.group(1))
    m = re.match(r"\s+Free inodes: ?(.*)", line)
    if m and ipg:
        free = set()
        for r in filter(None, (x.strip() for x in m.group(1).split(","))):
            a, _, b = r.partition("-")
            free.update(range(int(a), int(b or a) + 1))
        for ino in range(g * ipg + 1, (g + 1) * ipg + 1):
            if ino not in free:
                print("sif <%d> ctime 20231114221320\nsif <%d> atime 20231114221320" % (ino, ino))
' >"$work/times.cmds"
E2FSPROGS_FAKE_TIME=1700000000 debugfs -w -f "$work/times.cmds" "$out" >/dev/null 2>&1

du_bytes() { du -sb "$1" | cut -f1; }
rootfs_b=$(du_bytes "$rootfs")
project_b=$(du_bytes "$project")
data_b=$(du_bytes "$data")
alloc_b=$(($(stat -c %b "$out") * 512))
cat >"$out.json" <<JSON
{
  "image": "$(basename "$out")",
  "size": $(stat -c %s "$out"),
  "allocated": $alloc_b,
  "quick": $([ "$quick" = 1 ] && echo true || echo false),
  "seed": $seed,
  "debian": {"suite": "$suite", "variant": "minbase", "include": "$include", "bytes": $rootfs_b},
  "project": {"path": "/home/dev/ws", "bytes": $project_b},
  "datasets": {"path": "/srv/datasets", "bytes": $data_b},
  "filesystem": {"type": "ext4", "uuid": "$uuid", "label": "hocus-ws"}
}
JSON
step "done: $out: $size sparse, $((alloc_b >> 20)) MiB allocated (Debian $((rootfs_b >> 20)) MiB, project $((project_b >> 20)) MiB, datasets $((data_b >> 20)) MiB); $out.json"
