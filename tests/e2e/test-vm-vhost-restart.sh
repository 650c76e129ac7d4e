#!/usr/bin/env bash
# blockd restarts under a VM that reads its disk over vhost-user-blk (issue
# 14): qemu's vhost-user-blk chardev reconnects (reconnect=1) and the guest
# goes on reading. The guest reads its whole disk again and again (hocus.mode=
# loop), printing each pass's sha256, while blockd is killed with SIGKILL and
# started again, then stopped with SIGTERM and started again (an upgrade); the
# export was attached through the control socket, so each start restores it
# and its socket from the state directory. Every pass must be the source
# image's checksum, and at least one whole pass must follow each restart (the
# inflight-tracking protocol feature resubmits what was in flight at the
# kill; without it the guest's I/O would hang and the hang detector fails the
# test). A VMM killed mid-read leaves blockd serving the next one; a stopped
# blockd leaves no socket behind.
. "$TESTS_DIR/functions.sh"
. "$HELPERS_DIR/vm.sh"
requires_vhost
vm_prepare
start_registry registry

make_image "$T/disk.img" random 24M
want=$(sha256sum <"$T/disk.img" | cut -d' ' -f1)
REF=docker://$REGISTRY/ws:v1
hb push --plain-http --chunk-size 256K "$T/disk.img" "$REF" >/dev/null
CTL=$T/control.sock
ARGS=(--nbd-socket "$T/nbd.sock" --control "$CTL" --plain-http)
start_blockd "${ARGS[@]}"
hb attach --control "$CTL" ws "$REF" --vhost-user "$T/ws.vhost" >/dev/null
[ -S "$T/ws.vhost" ] || fail "attach --vhost-user made no socket at $T/ws.vhost"

vm_start reader loop "$(vm_disk_vhost "$T/ws.vhost")"
vm_wait_line reader PASS 1 300

# SIGKILL while the guest reads (it reads without pause between passes).
kill9_blockd
n=$(vm_count reader PASS)
start_blockd "${ARGS[@]}"
[ -S "$T/ws.vhost" ] || fail "the restored export has no socket at $T/ws.vhost"
vm_wait_line reader PASS $((n + 2)) 300

# SIGTERM (an upgrade) while the guest reads.
stop_blockd
n=$(vm_count reader PASS)
start_blockd "${ARGS[@]}"
vm_wait_line reader PASS $((n + 2)) 300

vm_gate reader
vm_wait reader 300
! grep -q '^HOCUS-IOERROR' "$T/reader.serial" || fail "reader: $(grep '^HOCUS-IOERROR' "$T/reader.serial")"
bad=$(sed -n 's/^HOCUS-PASS \([0-9]*\) \([0-9a-f]*\).*/\1 \2/p' "$T/reader.serial" | awk -v w="$want" '$2 != w')
[ -z "$bad" ] || fail "passes with another checksum than the image's $want: $bad"
echo "reader: $(vm_count reader PASS) whole-disk passes, all $want"

# A VMM that vanishes mid-read: blockd goes on serving the next guest.
vm_start gone loop "$(vm_disk_vhost "$T/ws.vhost")"
vm_wait_line gone PASS 1 300
kill -KILL "$VM_PID_gone"
wait "$VM_PID_gone" 2>/dev/null || true
kill -0 "$BLOCKD_PID" 2>/dev/null || fail "blockd died with the VMM: $(tail -5 "$T/blockd.log")"
vm_start after read "$(vm_disk_vhost "$T/ws.vhost")"
vm_wait after 300
assert_eq "$(vm_guest_sum after)" "$want" "the checksum of the guest after a vanished one"

stop_blockd
[ ! -e "$T/ws.vhost" ] || fail "blockd left its vhost-user socket $T/ws.vhost behind"
