#!/usr/bin/env bash
# blockd --fuse: every export as a regular file. Reads (lazy, byte-identical,
# sparse-aware through SEEK_DATA/SEEK_HOLE), read-only semantics, writes
# into an overlay (fsync, punch hole, zero range, fixed size), a loop device
# over the file, exports attached and detached through the control socket,
# a slow fetch that does not hold up other reads, and a clean exit on
# SIGTERM even with a loop device still on one of the files.
. "$TESTS_DIR/functions.sh"
requires_root
requires losetup fallocate python3 curl docker-registry
[ -e /dev/fuse ] || skip "no /dev/fuse"

# 64 MiB: random data at 1 MiB (3 MiB), text at 20 MiB, zeroes elsewhere.
truncate -s 64M "$T/disk.img"
head -c 3M /dev/urandom | dd of="$T/disk.img" bs=1M seek=1 conv=notrunc status=none
gen_lines $((2 * 1048576 + 100)) | dd of="$T/disk.img" bs=1M seek=20 conv=notrunc status=none
hb push "$T/disk.img" "oci:$T/layout:v1" >/dev/null

mkdir "$T/fuse"
# --background off: nothing is fetched but what is read (asserted below).
start_blockd --fuse "$T/fuse" --control "$T/control.sock" --background off \
        --export "ro=oci:$T/layout:v1" --export "rw=oci:$T/layout:v1,overlay=$T/rw.ovl"
cleanup_fn "umount -l '$T/fuse'"

# The directory lists both; sizes and modes follow the exports.
[ "$(ls "$T/fuse" | tr '\n' ' ')" = "ro rw " ] || fail "listing: $(ls -la "$T/fuse")"
[ "$(stat -c '%s %A' "$T/fuse/ro")" = "67108864 -r--r--r--" ] || fail "ro: $(stat -c '%s %A' "$T/fuse/ro")"
[ "$(stat -c '%s %A' "$T/fuse/rw")" = "67108864 -rw-r--r--" ] || fail "rw: $(stat -c '%s %A' "$T/fuse/rw")"
hb ls --control "$T/control.sock" --json |
        python3 -c 'import json,sys; d=json.load(sys.stdin); f=[e.get("file") for e in (d["exports"] if isinstance(d, dict) else d)]; assert sys.argv[1] in f, f' "$T/fuse/ro" ||
        fail "ls does not show the FUSE file"

# Lazy reads: nothing fetched until read; then byte-identical. SEEK_DATA
# finds the first data at 1 MiB (holes are not read at all).
[ "$(blockd_stat ro bytes_fetched)" = 0 ] || fail "fetched before any read"
python3 - "$T/fuse/ro" <<'PY'
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
assert os.lseek(fd, 0, os.SEEK_DATA) == 1 << 20, os.lseek(fd, 0, os.SEEK_DATA)
assert os.lseek(fd, 1 << 20, os.SEEK_HOLE) == 4 << 20
PY
assert_same "$T/disk.img" "$T/fuse/ro"
cmp "$T/disk.img" "$T/fuse/ro" || fail "plain cmp differs"
[ "$(blockd_stat ro bytes_fetched)" -gt 0 ] || fail "nothing fetched"
# Reads at and past the end are short, not errors.
[ "$(tail -c 100 "$T/fuse/ro" | wc -c)" = 100 ] || fail "tail"
[ "$(dd if="$T/fuse/ro" bs=1M skip=64 count=1 status=none | wc -c)" = 0 ] || fail "read past the end"

# Read-only: no write, no truncate, no punch.
if echo x | dd of="$T/fuse/ro" conv=notrunc status=none 2>/dev/null; then fail "wrote to a read-only export"; fi
if truncate -s 1M "$T/fuse/ro" 2>/dev/null; then fail "truncated a read-only export"; fi

# Writable: writes land in the overlay, reads merge.
cp "$T/disk.img" "$T/expect.img"
head -c 1M /dev/urandom >"$T/patch"
dd if="$T/patch" of="$T/fuse/rw" bs=1M seek=10 conv=notrunc,fsync status=none
dd if="$T/patch" of="$T/expect.img" bs=1M seek=10 conv=notrunc status=none
printf 'unaligned' | dd of="$T/fuse/rw" bs=1 seek=$((20 * 1048576 + 7)) conv=notrunc status=none
printf 'unaligned' | dd of="$T/expect.img" bs=1 seek=$((20 * 1048576 + 7)) conv=notrunc status=none
fallocate -p -o $((2 * 1048576)) -l 1M "$T/fuse/rw"
dd if=/dev/zero of="$T/expect.img" bs=1M seek=2 count=1 conv=notrunc status=none
fallocate -z -o $((21 * 1048576)) -l 4096 "$T/fuse/rw"
dd if=/dev/zero of="$T/expect.img" bs=4096 seek=$((21 * 256)) count=1 conv=notrunc status=none
sync "$T/fuse/rw"
cmp "$T/expect.img" "$T/fuse/rw" || fail "writable export differs from the expected image"
cmp "$T/disk.img" "$T/fuse/ro" || fail "writes leaked into the read-only export"
[ "$(blockd_stat rw flushes)" -gt 0 ] || fail "fsync did not flush the overlay"
# The size is fixed: a write at the end fails, truncation to another size fails.
if printf x | dd of="$T/fuse/rw" bs=1 seek=$((64 * 1048576)) conv=notrunc status=none 2>/dev/null; then
        fail "wrote past the end"
fi
if truncate -s 1M "$T/fuse/rw" 2>/dev/null; then fail "truncated a fixed-size export"; fi
truncate -s 64M "$T/fuse/rw" || fail "truncate to the same size must succeed"

# A loop device over the FUSE file reads the same bytes.
# (At exit, detach only a device still on our file: the number may be
# another process's by then.)
cleanup_fn "losetup -n -O NAME -j '$T/fuse/ro' | xargs -r -n1 losetup -d"
loop=$(losetup -f --show -r "$T/fuse/ro")
cmp "$T/disk.img" "$loop" || fail "loop device over the FUSE file differs"
[ "$(blockd_stat ro clients)" = 1 ] || fail "the loop device is not counted as a client"
losetup -d "$loop"

# Exports attached through the control socket appear; detached ones go.
hb attach extra "oci:$T/layout:v1" --control "$T/control.sock" >/dev/null
cmp "$T/disk.img" "$T/fuse/extra" || fail "attached export differs"
hb detach extra --control "$T/control.sock" >/dev/null
[ ! -e "$T/fuse/extra" ] || fail "detached export still has a file"

# SIGTERM with a loop device still on a file: blockd exits cleanly and the
# FUSE mount is gone (the loop device then fails reads the page cache
# cannot answer).
loop=$(losetup -f --show -r "$T/fuse/ro")
stop_blockd
grep -q " $T/fuse " /proc/self/mountinfo && fail "FUSE mount left after SIGTERM"
losetup -d "$loop"

# A slow fetch blocks only its reader: behind a proxy that stalls the
# first GET of one pack until the test releases it, a read of another pack
# completes while the stalled read is still waiting; then the stall ends
# (the connection closes), the retry serves the stalled read.
start_registry reg
truncate -s 8M "$T/two.img"
head -c 1M /dev/urandom | dd of="$T/two.img" bs=1M seek=0 conv=notrunc status=none
head -c 1M /dev/urandom | dd of="$T/two.img" bs=1M seek=4 conv=notrunc status=none
hb push "$T/two.img" "docker://$REGISTRY/two:v1" --plain-http --compress none --pack-size 1M >/dev/null
first_pack=$(hb inspect "docker://$REGISTRY/two:v1" --plain-http --json |
        python3 -c 'import json,sys; m=json.load(sys.stdin); assert len(m["packs"]) == 2, m; print(m["packs"][0]["digest"])') ||
        fail "expected two packs"
start_fault_proxy proxy "$REGISTRY" --fault "stall:1:GET /v2/two/blobs/$first_pack" --release "$T/release"
rm -rf "$T/cache"
# The stall and fetch timeouts are far beyond any wait here: only the
# release ends the stall.
HOCUS_BLK_HTTP_STALL_TIMEOUT=600 start_blockd --fuse "$T/fuse" --control "$T/control.sock" --plain-http --background off \
        --fetch-timeout 600 --export "two=docker://$PROXY/two:v1"
dd if="$T/fuse/two" of="$T/slow.out" bs=64K count=1 iflag=direct status=none &
slow=$!
cleanup_fn "touch $T/release; kill $slow"
wait_for 120 grep -q "GET /v2/two/blobs/$first_pack .* stall" "$PROXY_LOG" ||
        fail "the read of the first pack never met the stall (is the fault on the right pack?)"
timeout 120 dd if="$T/fuse/two" of="$T/fast.out" bs=64K skip=64 count=1 iflag=direct status=none ||
        fail "a read of another pack waited for the stalled one"
kill -0 "$slow" 2>/dev/null || fail "the stalled read finished before its stall was released"
touch "$T/release"
wait "$slow" || fail "the stalled read failed after the retry"
cmp -n 65536 "$T/two.img" "$T/slow.out" || fail "stalled read returned wrong bytes"
cmp -n 65536 <(dd if="$T/two.img" bs=64K skip=64 count=1 status=none) "$T/fast.out" || fail "fast read returned wrong bytes"
stop_blockd
echo ok
