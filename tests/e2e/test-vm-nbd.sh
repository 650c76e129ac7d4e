#!/usr/bin/env bash
# A VM boots (qemu TCG, a Debian kernel, a busybox initramfs: tests/helpers/
# vm.sh) with its virtio-blk disk taken from a blockd export over NBD, reads
# the whole disk and prints its sha256: the source image's, cold (every chunk
# a demand fetch from the registry) and warm (all from the chunk store, the
# registry stopped). A guest that writes a pattern to a writable export, syncs
# and powers off: the pattern is in the overlay after a blockd restart.
. "$TESTS_DIR/functions.sh"
. "$HELPERS_DIR/vm.sh"
requires nbdcopy
vm_prepare
start_registry registry

make_image "$T/disk.img" random 24M
want=$(sha256sum <"$T/disk.img" | cut -d' ' -f1)
REF=docker://$REGISTRY/ws:v1
hb push --plain-http --chunk-size 256K "$T/disk.img" "$REF" >/dev/null
SOCK=$T/nbd.sock
# --background off: the cold guest's reads are the only fetches.
start_blockd --nbd-socket "$SOCK" --control "$T/control.sock" --plain-http --background off \
        --export "ws=$REF" --export "rw=$REF,overlay=$T/rw.ovl"

# Cold: nothing is cached yet.
[ "$(store_entries)" -eq 0 ] || fail "the chunk store is not empty before the cold guest"
vm_start cold read "$(vm_disk_nbd "$SOCK" ws ro)"
vm_wait cold
assert_eq "$(vm_guest_sum cold)" "$want" "cold guest's checksum"
# (Fetched, not stored: a store insert may still wait for an idle CPU, write-behind.)
[ "$(blockd_stat ws bytes_fetched)" -gt 0 ] || fail "the cold guest's reads fetched nothing"

# Warm: the registry is gone; every byte comes from the chunk store.
kill "$REGISTRY_PID"
wait "$REGISTRY_PID" 2>/dev/null || true
vm_start warm read "$(vm_disk_nbd "$SOCK" ws ro)"
vm_wait warm
assert_eq "$(vm_guest_sum warm)" "$want" "warm guest's checksum"

# Writes: 2 MiB of a pattern at 5 MiB, fsync, sync, power off.
vm_start writer write "$(vm_disk_nbd "$SOCK" rw)" hocus.write=5:2:nbd$$
vm_wait writer
! grep -q '^HOCUS-IOERROR' "$T/writer.serial" || fail "writer: $(grep '^HOCUS-IOERROR' "$T/writer.serial")"
gen_text "hocus-blk vm write nbd$$" 2M >"$T/pattern"
assert_eq "$(vm_line writer WROTE)" "$(sha256sum <"$T/pattern" | cut -d' ' -f1)" "the writer's read-back"
stop_blockd
start_blockd --nbd-socket "$SOCK" --control "$T/control.sock" --plain-http --background off \
        --export "rw=$REF,overlay=$T/rw.ovl"
nbdcopy "$(nbd_uri rw "$SOCK")" "$T/after.img"
cp "$T/disk.img" "$T/expect.img"
dd if="$T/pattern" of="$T/expect.img" bs=1M seek=5 conv=notrunc status=none
assert_same "$T/after.img" "$T/expect.img"
