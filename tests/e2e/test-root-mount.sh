#!/usr/bin/env bash
# hocus-blk mount / umount: an ext4 image made with mkfs.ext4 -d, a GPT disk
# with two partitions (ext4 and xfs) and an MBR disk (ext4 and btrfs) read
# in user space, a read-write mount over an overlay. Every file's checksum
# matches; umount leaves no mount, loop device, FUSE mount, daemon or run
# directory; a second mount of an image fetches nothing (shared cache).
. "$TESTS_DIR/functions.sh"
requires_root
requires mkfs.ext4 mkfs.xfs mkfs.btrfs sgdisk sfdisk losetup sha256sum python3
[ -e /dev/fuse ] || skip "no /dev/fuse"

MiB=1048576
gen_files "$T/files" 12 1
mkdir "$T/mnt"
mount_cleanup "$T/mnt"

# --- A bare ext4 filesystem ---------------------------------------------
make_ext4 "$T/ext4.img" 256M "$T/files" ws
hb push "$T/ext4.img" "oci:$T/layout:ext4" >/dev/null
hb mount "oci:$T/layout:ext4" "$T/mnt" >"$T/out"
grep -Eq "^Mounted oci:.* on $T/mnt \(ext4, read-only\) in [0-9.]+ s; fetched " "$T/out" || fail "mount said: $(cat "$T/out")"
grep -q " $T/mnt .* ro[, ]" /proc/self/mountinfo || fail "not mounted read-only: $(grep " $T/mnt " /proc/self/mountinfo)"
check_files "$T/mnt" "$T/files.sha256"
# Read-only means read-only.
if touch "$T/mnt/new" 2>/dev/null; then fail "wrote to a read-only mount"; fi
run=$(mount_run_dir "$T/mnt")
[ -S "$run/control.sock" ] && [ -f "$run/fuse/disk" ] || fail "run directory $run incomplete"
first=$(mount_stat "$T/mnt" bytes_fetched)
[ "$first" -gt 0 ] || fail "nothing fetched"
hb umount "$T/mnt" >"$T/out"
grep -q "^Unmounted $T/mnt" "$T/out" || fail "umount said: $(cat "$T/out")"
assert_no_leftovers "after umount"

# Again: the shared cache has every chunk the first mount read.
hb mount "oci:$T/layout:ext4" "$T/mnt" >"$T/out"
check_files "$T/mnt" "$T/files.sha256"
[ "$(mount_stat "$T/mnt" bytes_fetched)" = 0 ] || fail "second mount fetched $(mount_stat "$T/mnt" bytes_fetched) bytes"
[ "$(mount_stat "$T/mnt" cache_misses)" = 0 ] || fail "second mount missed the cache"
hb umount "$T/mnt" >/dev/null
assert_no_leftovers "after the second umount"

# --- A GPT disk: ext4 (partition 1) and xfs (partition 2) ----------------
gen_files "$T/files2" 4 2
truncate -s 700M "$T/gpt.img"
sgdisk -n 1:2048:+100M -t 1:8300 -c 1:boot -n 2:0:0 -t 2:8300 -c 2:data "$T/gpt.img" >/dev/null
read -r s2 n2 < <(sfdisk -J "$T/gpt.img" | python3 -c 'import json,sys; p=json.load(sys.stdin)["partitiontable"]["partitions"][1]; print(p["start"], p["size"])')
make_ext4 "$T/p1.img" 100M "$T/files" boot
truncate -s $((n2 * 512)) "$T/p2.img"
mkfs.xfs -q -L data "$T/p2.img"
xfs_mnt=$T/xfs-src
mkdir "$xfs_mnt"
mount -o loop "$T/p2.img" "$xfs_mnt"
cp -a "$T/files2/." "$xfs_mnt/"
umount "$xfs_mnt"
dd if="$T/p1.img" of="$T/gpt.img" bs=1M seek=1 conv=notrunc,sparse status=none
dd if="$T/p2.img" of="$T/gpt.img" bs=512 seek="$s2" conv=notrunc,sparse status=none
hb push "$T/gpt.img" "oci:$T/layout:gpt" >/dev/null

# Two Linux filesystems: without --partition the choice is ambiguous.
expect_fail "2 partitions with Linux filesystems: choose one with --partition N" hb mount "oci:$T/layout:gpt" "$T/mnt"
grep -q "partition 2: .*xfs" "$T/.err" || fail "the error does not list the partitions: $(cat "$T/.err")"
assert_no_leftovers "after the ambiguous mount"

hb mount "oci:$T/layout:gpt" "$T/mnt" --partition 1 >"$T/out"
grep -q "(ext4, partition 1 of a GPT disk, read-only)" "$T/out" || fail "mount said: $(cat "$T/out")"
check_files "$T/mnt" "$T/files.sha256"
hb umount "$T/mnt" >/dev/null
hb mount "oci:$T/layout:gpt" "$T/mnt" --partition 2 >"$T/out"
grep -q "(xfs, partition 2 of a GPT disk, read-only)" "$T/out" || fail "mount said: $(cat "$T/out")"
check_files "$T/mnt" "$T/files2.sha256"
hb umount "$T/mnt" >/dev/null
assert_no_leftovers "after the GPT mounts"

# --- An MBR disk: swap (1), ext4 (2), btrfs (5, a logical partition) -----
truncate -s 500M "$T/mbr.img"
sfdisk -q "$T/mbr.img" <<'EOF'
label: dos
start=2048, size=16MiB, type=82
size=100MiB, type=83
type=5
size=200MiB, type=83
EOF
sfdisk -J "$T/mbr.img" | python3 -c '
import json, sys
for p in json.load(sys.stdin)["partitiontable"]["partitions"]:
    print(p["node"][-1], p["start"], p["size"])' >"$T/mbr.parts"
read -r _ s_ext n_ext < <(sed -n 2p "$T/mbr.parts")
read -r _ s_btr n_btr < <(sed -n 4p "$T/mbr.parts")
truncate -s $((n_btr * 512)) "$T/pb.img"
unstale mkfs.btrfs -q -L btr --rootdir "$T/files2" "$T/pb.img" >"$T/.mkfs" 2>&1 ||
        fail "mkfs.btrfs --rootdir failed: $(cat "$T/.mkfs")"
make_ext4 "$T/pe.img" $((n_ext / 2))K "$T/files" mbr
dd if="$T/pe.img" of="$T/mbr.img" bs=512 seek="$s_ext" conv=notrunc,sparse status=none
dd if="$T/pb.img" of="$T/mbr.img" bs=512 seek="$s_btr" conv=notrunc,sparse status=none
hb push "$T/mbr.img" "oci:$T/layout:mbr" >/dev/null
hb mount "oci:$T/layout:mbr" "$T/mnt" --partition 2 >"$T/out"
grep -q "(ext4, partition 2 of an MBR disk, read-only)" "$T/out" || fail "mount said: $(cat "$T/out")"
check_files "$T/mnt" "$T/files.sha256"
hb umount "$T/mnt" >/dev/null
hb mount "oci:$T/layout:mbr" "$T/mnt" --partition 5 >"$T/out"
grep -q "(btrfs, partition 5 of an MBR disk, read-only)" "$T/out" || fail "mount said: $(cat "$T/out")"
check_files "$T/mnt" "$T/files2.sha256"
hb umount "$T/mnt" >/dev/null
assert_no_leftovers "after the MBR mounts"

# --- Read-write over an overlay; the image stays as it was ----------------
hb mount "oci:$T/layout:ext4" "$T/mnt" --rw --overlay "$T/ws.ovl" >"$T/out"
grep -q "(ext4, read-write)" "$T/out" || fail "mount said: $(cat "$T/out")"
echo "written through the overlay" >"$T/mnt/new-file"
rm -f "$T/mnt/etc/"conf*.ini
hb umount "$T/mnt" >/dev/null
assert_no_leftovers "after the rw umount"
[ -s "$T/ws.ovl" ] || fail "the overlay is empty"
hb mount "oci:$T/layout:ext4" "$T/mnt" --rw --overlay "$T/ws.ovl" >/dev/null
[ "$(cat "$T/mnt/new-file")" = "written through the overlay" ] || fail "the write did not persist in the overlay"
[ -z "$(ls "$T/mnt/etc/" 2>/dev/null | grep conf || true)" ] || fail "the delete did not persist"
hb umount "$T/mnt" >/dev/null
hb mount "oci:$T/layout:ext4" "$T/mnt" >/dev/null
[ ! -e "$T/mnt/new-file" ] || fail "the image itself changed"
check_files "$T/mnt" "$T/files.sha256"
hb umount "$T/mnt" >/dev/null
assert_no_leftovers "at the end"
echo ok
