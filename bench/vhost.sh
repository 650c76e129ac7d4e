#!/usr/bin/env bash
# bench/vhost.sh: the same guest reading the same cached image from one
# blockd over vhost-user-blk and over NBD (qemu's NBD client into a
# virtio-blk-pci disk), in one run, rounds interleaved. Inside the guest
# (tests/helpers/guest-io.c, O_DIRECT): one sequential pass in 1 MiB reads,
# then RANDOM_READS 4 KiB reads at fixed pseudo-random offsets. Outside:
# blockd's CPU time (utime + stime from /proc/PID/stat, from the guest's
# start signal after its boot to its power off) per GiB served, each way. Prints medians and ratios (vhost-user over NBD).
#
#   bench/vhost.sh        # or: meson test -C build --benchmark vhost
#
# Environment: HOCUS_BLK, BLOCKD (default ./build/...), SIZE (image, default
# 256M), ROUNDS (default 3), RANDOM_READS (default 20000), KVM=1 to use
# /dev/kvm when there is one (default: TCG), KEEP_T=1 keeps the work
# directory (in ${TMPDIR:-/var/tmp}). Without --vhost-user-blk in this
# blockd, only the NBD figures are printed.
# Caveat: under TCG the guest's CPU is emulated and costs far more than the
# I/O path; the in-guest figures compare the two paths on this machine only.
# blockd's CPU per GiB does not depend on the guest's speed.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export TMPDIR=${TMPDIR:-/var/tmp}
. "$here/lib.sh"
. "$HELPERS_DIR/vm.sh"
BLOCKD=${BLOCKD:-$here/../build/blockd/blockd}
SIZE=${SIZE:-256M}
ROUNDS=${ROUNDS:-3}
RANDOM_READS=${RANDOM_READS:-20000}
for p in nbdcopy python3 "$HOCUS_BLK" "$BLOCKD"; do
        command -v "$p" >/dev/null || { echo "bench: $p is missing" >&2; exit 77; }
done
vm_prepare
accel=tcg
[ "${KVM:-0}" != 1 ] || [ ! -w /dev/kvm ] || accel=kvm
VM_ACCEL=$accel
have_vhost=1
"$BLOCKD" --help 2>&1 | grep -- '--vhost-user-blk' >/dev/null || have_vhost=0

echo "== setup: $SIZE of random data, pushed, pulled into the chunk store; guest: qemu $accel, 1 vCPU"
head -c "$SIZE" /dev/urandom >"$T/raw.img"
"$HOCUS_BLK" push "$T/raw.img" "oci:$T/layout:v1" >/dev/null
"$BLOCKD" --export "ws=oci:$T/layout:v1" --run 'nbdcopy "$uri" null:' 2>"$T/hydrate.log"
vhost_args=()
[ "$have_vhost" = 0 ] || vhost_args=(--vhost-user-blk "$T/vhost")
BLOCKD_QUIET=1 start_blockd --nbd-socket "$T/nbd.sock" --control "$T/control.sock" --state-dir none \
        --background off "${vhost_args[@]}" --export "ws=oci:$T/layout:v1"
VHOST_DIR=$T/vhost

# one_run KIND ROUND: boot the guest on KIND (vhost or nbd); append
# "seq_MiBps rand_iops cpu_s_per_GiB" to $T/KIND.res.
one_run() {
        local kind=$1 round=$2 disk cpu0 cpu1 name=$1_$2 seq rand bytes
        case $kind in
        vhost) disk=$(vm_disk_vhost "$(vhost_sock ws)") ;;
        nbd) disk=$(vm_disk_nbd "$T/nbd.sock" ws ro) ;;
        esac
        vm_start "$name" bench "$disk" "hocus.bench=$RANDOM_READS"
        # blockd's CPU from the guest's go (after its boot) to its power off.
        vm_wait_line "$name" BENCH-READY 1 3600
        cpu0=$(proc_cpu_s "$BLOCKD_PID")
        vm_send "$name" go
        vm_wait "$name" 3600
        cpu1=$(proc_cpu_s "$BLOCKD_PID")
        ! grep -q '^HOCUS-IOERROR' "$T/$name.serial" || fail "$name: $(grep '^HOCUS-IOERROR' "$T/$name.serial")"
        seq=$(vm_line "$name" "BENCH seq")
        rand=$(vm_line "$name" "BENCH rand4k")
        [ -n "$seq" ] && [ -n "$rand" ] || fail "$name printed no figures: $(tail -5 "$T/$name.serial")"
        bytes=$(( $(sed 's/.*bytes=\([0-9]*\).*/\1/' <<<"$seq") + RANDOM_READS * 4096 ))
        awk -v s="$seq" -v r="$rand" -v c0="$cpu0" -v c1="$cpu1" -v b="$bytes" 'BEGIN {
                split(s, a, /[= ]/); split(r, q, /[= ]/)
                printf "%.1f %.0f %.3f\n", a[2] / 1048576 / (a[4] / 1e9), q[2] / (q[4] / 1e9), (c1 - c0) / (b / 1073741824)
        }' >>"$T/$kind.res"
        printf '   round %d %-5s  seq %7.1f MiB/s  rand4k %6.0f IOPS  blockd %.3f CPU-s/GiB\n' \
                "$round" "$kind" $(tail -1 "$T/$kind.res")
}

kinds=(nbd)
[ "$have_vhost" = 0 ] && echo "   (this blockd has no --vhost-user-blk: NBD only)" || kinds=(vhost nbd)
for ((r = 1; r <= ROUNDS; r++)); do
        for k in "${kinds[@]}"; do
                one_run "$k" "$r"
        done
done

med() { awk -v c="$2" '{ print $c }' "$T/$1.res" | median; }
echo "== medians over $ROUNDS rounds ($SIZE image, $RANDOM_READS random 4 KiB reads, qemu $accel)"
for k in "${kinds[@]}"; do
        printf '   %-5s  seq %s MiB/s  rand4k %s IOPS  blockd %s CPU-s/GiB\n' "$k" "$(med "$k" 1)" "$(med "$k" 2)" "$(med "$k" 3)"
done
if [ "$have_vhost" = 1 ]; then
        echo "== vhost-user / NBD: seq $(calc "$(med vhost 1) / $(med nbd 1)")x," \
                "rand4k $(calc "$(med vhost 2) / $(med nbd 2)")x;" \
                "blockd CPU per GiB: NBD / vhost-user $(calc "$(med nbd 3) / ($(med vhost 3) + 0.0001)")x"
fi
echo "== load average: $(loadavg)"
stop_blockd
