#!/usr/bin/env bash
# A VM (qemu TCG, tests/helpers/vm.sh) takes its disk from blockd over
# vhost-user-blk: the guest reads the whole disk and prints the source image's
# sha256, cold (every chunk a demand fetch from the registry) and warm (the
# registry stopped; two vCPUs on two virtqueues); a read-only export refuses
# the guest's write (VIRTIO_BLK_F_RO); a guest that writes a pattern to a
# writable export, syncs and powers off: the pattern is in the overlay after a
# blockd restart (read back over NBD); an export attached through the control
# socket with --vhost-user serves a guest too.
. "$TESTS_DIR/functions.sh"
. "$HELPERS_DIR/vm.sh"
requires nbdcopy
requires_vhost
vm_prepare
start_registry registry

make_image "$T/disk.img" random 24M
want=$(sha256sum <"$T/disk.img" | cut -d' ' -f1)
REF=docker://$REGISTRY/ws:v1
hb push --plain-http --chunk-size 256K "$T/disk.img" "$REF" >/dev/null
CTL=$T/control.sock
# --background off: the cold guest's reads are the only fetches.
ARGS=(--nbd-socket "$T/nbd.sock" --control "$CTL" --plain-http --background off)
start_blockd "${ARGS[@]}" --vhost-user-blk "$VHOST_DIR" \
        --export "ws=$REF" --export "rw=$REF,overlay=$T/rw.ovl,vhost-user=$T/rw.vhost"
[ -S "$T/rw.vhost" ] || fail "no socket at the export's vhost-user=$T/rw.vhost"
WS=$(vhost_sock ws)

# Cold: nothing is cached yet.
[ "$(store_entries)" -eq 0 ] || fail "the chunk store is not empty before the cold guest"
vm_start cold read "$(vm_disk_vhost "$WS")"
vm_wait cold
assert_eq "$(vm_guest_sum cold)" "$want" "cold guest's checksum"
[ "$(store_entries)" -gt 0 ] || fail "the cold guest's reads fetched nothing"

# hocus-blk attach --vhost-user: the socket appears, a guest reads the image.
hb attach --control "$CTL" att "$REF" --vhost-user "$T/att.vhost" >/dev/null
[ -S "$T/att.vhost" ] || fail "attach --vhost-user made no socket at $T/att.vhost"
vm_start attached read "$(vm_disk_vhost "$T/att.vhost")"
vm_wait attached
assert_eq "$(vm_guest_sum attached)" "$want" "the attached export's guest's checksum"

# Warm: the registry is gone; every byte comes from the chunk store. Two
# vCPUs, two queues.
kill "$REGISTRY_PID"
wait "$REGISTRY_PID" 2>/dev/null || true
VM_SMP=2 vm_start warm read "$(vm_disk_vhost "$WS" 2)"
vm_wait warm
assert_eq "$(vm_guest_sum warm)" "$want" "warm guest's checksum"

# A read-only export: the guest sees a read-only disk and its write fails.
vm_start rowriter write "$(vm_disk_vhost "$WS")" hocus.write=1:1:ro
vm_wait rowriter
grep -q '^HOCUS-IOERROR write' "$T/rowriter.serial" ||
        fail "a write to a read-only export did not fail: $(grep '^HOCUS-' "$T/rowriter.serial")"

# Writes: 2 MiB of a pattern at 5 MiB, fsync (a FLUSH), sync, power off.
vm_start writer write "$(vm_disk_vhost "$T/rw.vhost")" hocus.write=5:2:vhost$$
vm_wait writer
! grep -q '^HOCUS-IOERROR' "$T/writer.serial" || fail "writer: $(grep '^HOCUS-IOERROR' "$T/writer.serial")"
gen_text "hocus-blk vm write vhost$$" 2M >"$T/pattern"
assert_eq "$(vm_line writer WROTE)" "$(sha256sum <"$T/pattern" | cut -d' ' -f1)" "the writer's read-back"
stop_blockd
start_blockd "${ARGS[@]}" --export "rw=$REF,overlay=$T/rw.ovl"
nbdcopy "$(nbd_uri rw "$T/nbd.sock")" "$T/after.img"
cp "$T/disk.img" "$T/expect.img"
dd if="$T/pattern" of="$T/expect.img" bs=1M seek=5 conv=notrunc status=none
assert_same "$T/after.img" "$T/expect.img"

stop_blockd
