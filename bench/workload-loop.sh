#!/usr/bin/env bash
# Run the start workload (bench/workload.sh) against a local copy of a
# workspace image through a read-only loop mount: the "everything is
# already on local disk" reference, and a measure of how many bytes of the
# image a start reads (the loop device's own counters, mount included).
#
# usage: bench/workload-loop.sh IMAGE [--cold]
#   --cold   drop the page cache first, so every read reaches the image
# Prints the workload's lines, then "image reads: N bytes in K requests
# (mount and workload)" and the wall time. Needs root (loop, mount).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
img=
cold=0
for a in "$@"; do
        case $a in
        --cold) cold=1 ;;
        -*) echo "usage: $0 IMAGE [--cold]" >&2; exit 2 ;;
        *) img=$a ;;
        esac
done
[ -n "$img" ] || { echo "usage: $0 IMAGE [--cold]" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "workload-loop: needs root (loop device, mount)" >&2; exit 1; }

mnt=$(mktemp -d /tmp/workload-loop.XXXXXX)
loop=
cleanup() {
        set +e
        mountpoint -q "$mnt" && umount "$mnt"
        [ -z "$loop" ] || losetup -d "$loop"
        rmdir "$mnt"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

loop=$(losetup --find --show --read-only "$img")
dev=$(basename "$loop")
[ "$cold" = 0 ] || { sync; echo 3 >/proc/sys/vm/drop_caches; }
# The counters of a loop device outlive its attachments: take a baseline.
read -r ios0 _ sectors0 _ <"/sys/block/$dev/stat"
t0=$(date +%s%N)
mount -o ro "$loop" "$mnt"
bash "$here/workload.sh" "$mnt"
t1=$(date +%s%N)
read -r ios1 _ sectors1 _ <"/sys/block/$dev/stat"
echo "image reads: $(((sectors1 - sectors0) * 512)) bytes in $((ios1 - ios0)) requests (mount and workload)"
echo "wall time: $(((t1 - t0) / 1000000)) ms (mount and workload)"
