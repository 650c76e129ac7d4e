#!/usr/bin/env bash
# A hocus-blk mount that fails undoes everything it started: bad references,
# an image without a filesystem, an unknown filesystem, a busy or missing
# mount point, a partition that does not exist or holds nothing. After each:
# no mount, loop device, FUSE mount, blockd or run directory. Also: umount of
# something hocus-blk did not mount, a busy mount, a daemon that died.
. "$TESTS_DIR/functions.sh"
requires_root
requires mkfs.ext4 sgdisk losetup python3
[ -e /dev/fuse ] || skip "no /dev/fuse"

gen_files "$T/files" 2 3
make_ext4 "$T/ext4.img" 64M "$T/files"
hb push "$T/ext4.img" "oci:$T/layout:ext4" >/dev/null
mkdir "$T/mnt"
mount_cleanup "$T/mnt"

# blockd_dies PID: kill -9 a mount's daemon and wait until it is gone.
blockd_dies() {
        kill -9 "$1"
        wait_for 60 sh -c "! kill -0 $1 2>/dev/null" || fail "blockd $1 outlived kill -9"
}

# Bad references: no such tag, no such layout, not a reference, a registry
# that is not there.
expect_fail "no such image" hb mount "oci:$T/layout:nope" "$T/mnt"
assert_no_leftovers "unknown tag"
expect_fail "Cannot serve" hb mount "oci:$T/nowhere:v1" "$T/mnt"
assert_no_leftovers "missing layout"
expect_fail "Invalid reference|not a reference|unknown transport" hb mount "nonsense" "$T/mnt"
assert_no_leftovers "malformed reference"
HOCUS_BLK_HTTP_ATTEMPTS=1 expect_fail "Cannot serve" hb mount "docker://127.0.0.1:1/ws:v1" "$T/mnt" --plain-http
assert_no_leftovers "registry down"

# No filesystem at all, and one hocus-blk does not mount (swap).
truncate -s 16M "$T/random.img"
head -c 4M /dev/urandom | dd of="$T/random.img" conv=notrunc status=none
hb push "$T/random.img" "oci:$T/layout:random" >/dev/null
expect_fail "no filesystem found" hb mount "oci:$T/layout:random" "$T/mnt"
assert_no_leftovers "no filesystem"
truncate -s 16M "$T/swap.img"
mkswap "$T/swap.img" >/dev/null
hb push "$T/swap.img" "oci:$T/layout:swap" >/dev/null
expect_fail "cannot mount an image with swap" hb mount "oci:$T/layout:swap" "$T/mnt"
assert_no_leftovers "swap"

# A filesystem the kernel refuses (a corrupted ext4 superblock that blkid
# still recognises): the mount(2) failure is reported and undone.
cp "$T/ext4.img" "$T/bad.img"
printf '\xff\xff\xff\xff' | dd of="$T/bad.img" bs=1 seek=$((1024 + 4)) conv=notrunc status=none   # s_blocks_count
printf '\xff\xff\xff\xff' | dd of="$T/bad.img" bs=1 seek=$((1024 + 24)) conv=notrunc status=none  # s_log_block_size
hb push "$T/bad.img" "oci:$T/layout:bad" >/dev/null
expect_fail "mounting the ext4 filesystem on $T/mnt failed|no filesystem found" hb mount "oci:$T/layout:bad" "$T/mnt"
assert_no_leftovers "kernel refused the filesystem"

# Mount points: missing, not a directory, busy (already a mount point).
expect_fail "No such file or directory" hb mount "oci:$T/layout:ext4" "$T/missing"
: >"$T/plainfile"
expect_fail "not a directory" hb mount "oci:$T/layout:ext4" "$T/plainfile"
mkdir "$T/busy"
mount -t tmpfs none "$T/busy"
cleanup_fn "umount -l '$T/busy'"
expect_fail "already a mount point" hb mount "oci:$T/layout:ext4" "$T/busy"
umount "$T/busy"
grep -q " $T/busy " /proc/self/mountinfo && fail "the busy mount point was touched"
assert_no_leftovers "mount points"

# Partitions: none in a bare filesystem, out of range, empty.
expect_fail "has no partition table" hb mount "oci:$T/layout:ext4" "$T/mnt" --partition 1
assert_no_leftovers "--partition on a bare filesystem"
truncate -s 200M "$T/gpt.img"
sgdisk -n 1:2048:+64M -t 1:8300 -n 2:0:0 -t 2:8300 "$T/gpt.img" >/dev/null
dd if="$T/ext4.img" of="$T/gpt.img" bs=1M seek=1 conv=notrunc,sparse status=none
hb push "$T/gpt.img" "oci:$T/layout:gpt" >/dev/null
expect_fail "has no partition 7" hb mount "oci:$T/layout:gpt" "$T/mnt" --partition 7
assert_no_leftovers "no such partition"
expect_fail "no filesystem found in partition 2" hb mount "oci:$T/layout:gpt" "$T/mnt" --partition 2
assert_no_leftovers "empty partition"
expect_fail "wants a partition number" hb mount "oci:$T/layout:gpt" "$T/mnt" --partition zero
# The only Linux filesystem is chosen by itself.
hb mount "oci:$T/layout:gpt" "$T/mnt" >"$T/out"
grep -q "partition 1 of a GPT disk" "$T/out" || fail "mount said: $(cat "$T/out")"
check_files "$T/mnt" "$T/files.sha256"

# umount: busy (a process has its cwd there) fails and keeps everything;
# --lazy detaches it.
(cd "$T/mnt" && exec sleep 600) &
holder=$!
cleanup_fn "kill $holder"
holder_inside() {
        [ "$(readlink "/proc/$holder/cwd" 2>/dev/null)" = "$T/mnt" ]
}
wait_for 60 holder_inside || fail "the holder did not enter the mount"
expect_fail "is busy" hb umount "$T/mnt"
check_files "$T/mnt" "$T/files.sha256"
kill "$holder"; wait "$holder" 2>/dev/null || true
hb umount "$T/mnt" >/dev/null
assert_no_leftovers "after umount"

# umount of what hocus-blk did not mount.
expect_fail "is not mounted" hb umount "$T/mnt"
mount -t tmpfs none "$T/busy"
expect_fail "is not a hocus-blk mount" hb umount "$T/busy"
umount "$T/busy"

# The daemon dies under a mount: umount still cleans everything up.
hb mount "oci:$T/layout:ext4" "$T/mnt" >/dev/null
run=$(mount_run_dir "$T/mnt")
blockd_dies "$(cat "$run/blockd.pid")"
hb umount --lazy "$T/mnt" >/dev/null || fail "umount after the daemon died failed"
assert_no_leftovers "after the daemon died"

# A stale run directory (a mount whose daemon died before umount) does not
# block the next mount of the same directory.
hb mount "oci:$T/layout:ext4" "$T/mnt" >/dev/null
run=$(mount_run_dir "$T/mnt")
blockd_dies "$(cat "$run/blockd.pid")"
umount -l "$T/mnt"
hb mount "oci:$T/layout:ext4" "$T/mnt" >/dev/null || fail "mount over a stale run directory failed"
check_files "$T/mnt" "$T/files.sha256"
hb umount "$T/mnt" >/dev/null
assert_no_leftovers "at the end"
echo ok
