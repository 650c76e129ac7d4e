#!/usr/bin/env bash
# Errors of a full disk, a read-only filesystem and a directory the user
# may not write, verbatim: pull names the chunk store and the errno (and
# does not advise running it again, which would fail the same way), export
# names its destination and leaves nothing behind, push names the file of
# the layout it could not write.
# Small tmpfs mounts stand in for full and read-only disks.
. "$TESTS_DIR/functions.sh"
requires_root
requires setpriv

expect_msg() {
        local want=$1 rc=0
        shift
        "$@" >"$T/.out" 2>"$T/.err" || rc=$?
        [ "$rc" -ne 0 ] || fail "expected failure, got success: $*"
        [ "$rc" -lt 128 ] || fail "crashed with signal $((rc - 128)): $*"
        [[ "$(tail -n 1 "$T/.err")" =~ ^$want$ ]] || fail "$*: expected /$want/, got: $(cat "$T/.err")"
        grep -q 'run pull again' "$T/.err" && fail "$*: advises to run pull again: $(cat "$T/.err")"
        return 0
}

head -c 6M /dev/urandom >"$T/a.img"
hb push "$T/a.img" "oci:$T/l:v1" --chunk-size 256K >/dev/null
mkdir "$T/full" "$T/ro"
mount -t tmpfs -o size=1M tmpfs "$T/full"
cleanup_fn umount -l "$T/full"
mount -t tmpfs -o size=16M tmpfs "$T/ro"
cleanup_fn umount -l "$T/ro"

expect_msg "hocus-blk: error: Pull of 'oci:$T/l:v1' failed: cannot write to the chunk store '$T/full/cache': No space left on device \([0-9]+ of 24 chunks stored\)" \
        hb pull "oci:$T/l:v1" --cache "$T/full/cache"
rm -rf "$T/full/cache"
expect_msg "hocus-blk: error: Export of 'oci:$T/l:v1' failed: cannot write '$T/full/out.img': No space left on device" \
        hb export "oci:$T/l:v1" "$T/full/out.img" --no-cache
[ -z "$(ls -A "$T/full")" ] || fail "a failed export left $(ls -A "$T/full")"
expect_msg "hocus-blk: error: Push to 'oci:$T/full/l:v1' failed: cannot write a blob into '$T/full/l/blobs/sha256': No space left on device" \
        hb push "$T/a.img" "oci:$T/full/l:v1"
rm -rf "${T:?}/full/"*

hb cache stats --cache "$T/ro/cache" >/dev/null     # an empty store
mount -o remount,ro "$T/ro"
expect_msg "hocus-blk: error: Pull of 'oci:$T/l:v1' failed: cannot write to the chunk store '$T/ro/cache': Read-only file system \(0 of 24 chunks stored\)" \
        hb pull "oci:$T/l:v1" --cache "$T/ro/cache"
expect_msg "hocus-blk: error: Cannot write '$T/ro/out.img': Read-only file system" \
        hb export "oci:$T/l:v1" "$T/ro/out.img" --no-cache

# Another user's directories (root would write anyway: run as nobody).
chmod 755 "$T"
mkdir "$T/mine"
hb cache stats --cache "$T/mine/cache" >/dev/null
nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
expect_msg "hocus-blk: error: Pull of 'oci:$T/l:v1' failed: cannot write to the chunk store '$T/mine/cache': Permission denied \(0 of 24 chunks stored\)" \
        nobody "$HOCUS_BLK" pull "oci:$T/l:v1" --cache "$T/mine/cache"
expect_msg "hocus-blk: error: Cannot open the chunk store '$T/mine/new': Permission denied" \
        nobody "$HOCUS_BLK" pull "oci:$T/l:v1" --cache "$T/mine/new"
expect_msg "hocus-blk: error: Cannot write '$T/mine/out.img': Permission denied" \
        nobody "$HOCUS_BLK" export "oci:$T/l:v1" "$T/mine/out.img" --no-cache
expect_msg "hocus-blk: error: Cannot open 'oci:$T/mine/l:v1': Permission denied" \
        nobody "$HOCUS_BLK" push "$T/a.img" "oci:$T/mine/l:v1"
echo ok
