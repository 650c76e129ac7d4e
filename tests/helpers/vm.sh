# VM helpers for the tests and benchmarks that boot a guest (qemu TCG, a
# Debian kernel and a busybox initramfs; see guest-kernel.sh, mkinitramfs.sh
# and guest-init.sh beside this file). Source it after functions.sh:
#   . "$HELPERS_DIR/vm.sh"
#   vm_prepare                       # skips (77) when qemu or the kernel is missing
#   vm_start g1 read "$(vm_disk_nbd "$T/nbd.sock" ws)"
#   vm_wait g1
#   sum=$(vm_line g1 SHA256)
# The kernel and initramfs are cached in $HOCUS_VM_CACHE (default
# ~/.cache/hocus-blk/vm), shared by every build directory and run.

HOCUS_VM_CACHE=${HOCUS_VM_CACHE:-${XDG_CACHE_HOME:-${HOME:-/var/tmp}/.cache}/hocus-blk/vm}
# Guest memory: a shared memfd, as vhost-user needs (the same for NBD, so
# that every guest is the same machine).
VM_MEM=256M
# vCPUs: the guest's virtio-blk uses min(queues, vCPUs) queues.
VM_SMP=${VM_SMP:-1}
# tcg (the tests: no host needs KVM) or kvm (bench/vhost.sh KVM=1).
VM_ACCEL=${VM_ACCEL:-tcg}

# vm_prepare: set VM_KERNEL and VM_INITRD, fetching and building them once.
vm_prepare() {
        requires qemu-system-x86_64 apt-get dpkg-deb modinfo
        local kdir rc=0
        kdir=$(bash "$HELPERS_DIR/guest-kernel.sh" "$HOCUS_VM_CACHE" 2>"$T/.vmprep") || rc=$?
        [ "$rc" -ne 77 ] || skip "no guest kernel: $(cat "$T/.vmprep")"
        [ "$rc" -eq 0 ] || fail "guest-kernel.sh: $(cat "$T/.vmprep")"
        VM_INITRD=$(bash "$HELPERS_DIR/mkinitramfs.sh" "$kdir" 2>"$T/.vmprep") || rc=$?
        [ "$rc" -ne 77 ] || skip "no initramfs: $(cat "$T/.vmprep")"
        [ "$rc" -eq 0 ] || fail "mkinitramfs.sh: $(cat "$T/.vmprep")"
        VM_KERNEL=$kdir/vmlinuz
}

# vm_disk_nbd SOCKET EXPORT [ro]: qemu arguments for a virtio-blk disk that
# qemu's NBD client takes from an export on a Unix socket (read-only: ro).
vm_disk_nbd() {
        local ro=off
        [ "${3:-}" != ro ] || ro=on
        echo "-blockdev driver=nbd,server.type=unix,server.path=$1,export=$2,node-name=disk0,read-only=$ro" \
                "-device virtio-blk-pci,drive=disk0"
}

# vm_disk_vhost SOCKET [QUEUES]: qemu arguments for a vhost-user-blk disk on a
# vhost-user socket; the chardev reconnects a second after the backend goes.
vm_disk_vhost() {
        echo "-chardev socket,id=vhost0,path=$1,reconnect=1" \
                "-device vhost-user-blk-pci,chardev=vhost0,num-queues=${2:-1}"
}

# vm_start NAME MODE DISK_ARGS [KERNEL_ARGS...]: boot a guest in the
# background; its serial console goes to $T/NAME.serial and qemu's own output
# to $T/NAME.qemu. A second serial port (the guest's ttyS1) listens on
# $T/NAME.gate (see vm_gate). Sets VM_PID. The cleanup kills qemu if the test
# has not waited for it.
vm_start() {
        local name=$1 mode=$2 disk=$3
        shift 3
        : >"$T/$name.serial"
        # shellcheck disable=SC2086 # DISK_ARGS is a list of arguments
        qemu-system-x86_64 -machine "q35,accel=$VM_ACCEL" -cpu max -smp "$VM_SMP" -m "$VM_MEM" \
                -object "memory-backend-memfd,id=mem,size=$VM_MEM,share=on" -numa node,memdev=mem \
                -nodefaults -no-user-config -display none -no-reboot \
                -kernel "$VM_KERNEL" -initrd "$VM_INITRD" \
                -append "console=ttyS0 panic=-1 quiet hocus.mode=$mode $*" \
                -serial "file:$T/$name.serial" \
                -chardev "socket,id=gate,path=$T/$name.gate,server=on,wait=off" -serial chardev:gate \
                $disk >"$T/$name.qemu" 2>&1 &
        VM_PID=$!
        eval "VM_PID_$name=$VM_PID"
        cleanup_fn "kill -KILL $VM_PID 2>/dev/null; wait $VM_PID 2>/dev/null"
}

# vm_wait NAME [SECONDS]: wait until the guest has powered off. SECONDS
# (default 300) only detects a hang: the guest is killed and the test fails.
# Fails too when qemu exits with an error.
vm_wait() {
        local name=$1 pid rc=0 deadline=$((SECONDS + ${2:-300}))
        pid=$(eval "echo \$VM_PID_$name")
        while kill -0 "$pid" 2>/dev/null; do
                if [ "$SECONDS" -ge "$deadline" ]; then
                        kill -KILL "$pid" 2>/dev/null
                        wait "$pid" 2>/dev/null
                        fail "guest $name hung: $(tail -5 "$T/$name.serial")"
                fi
                sleep 0.2
        done
        wait "$pid" || rc=$?
        [ "$rc" -eq 0 ] || fail "qemu ($name) exited with $rc: $(tail -5 "$T/$name.qemu")"
        grep -q '^HOCUS-DONE' "$T/$name.serial" ||
                fail "guest $name did not finish: $(tail -15 "$T/$name.serial")"
}

# vm_line NAME KEY: the rest of the guest's first "HOCUS-KEY ..." line.
vm_line() {
        sed -n "s/^HOCUS-$2 //p" "$T/$1.serial" | tr -d '\r' | head -1
}

# vm_count NAME KEY: how many "HOCUS-KEY" lines the guest has printed so far.
vm_count() {
        grep -c "^HOCUS-$2\b" "$T/$1.serial" || true
}

# vm_wait_line NAME KEY [N] [SECONDS]: until the guest has printed N (default
# 1) "HOCUS-KEY" lines; fails if qemu exits first (or after SECONDS, default
# 300, a hang).
vm_wait_line() {
        local name=$1 key=$2 n=${3:-1} deadline=$((SECONDS + ${4:-300})) pid
        pid=$(eval "echo \$VM_PID_$name")
        until [ "$(vm_count "$name" "$key")" -ge "$n" ]; do
                kill -0 "$pid" 2>/dev/null || fail "guest $name stopped before $n HOCUS-$key: $(tail -5 "$T/$name.serial")"
                [ "$SECONDS" -lt "$deadline" ] || fail "guest $name hung before $n HOCUS-$key: $(tail -5 "$T/$name.serial")"
                sleep 0.1
        done
}

# vm_gate NAME: tell the guest's loop mode to stop, by a line on its ttyS1
# (sent again until the guest has powered off: a line that arrives while the
# guest has the port closed may be dropped).
vm_gate() {
        local name=$1 pid
        pid=$(eval "echo \$VM_PID_$name")
        python3 - "$T/$name.gate" "$pid" <<'PY'
import os, socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
pid = int(sys.argv[2])
while True:
    try:
        os.kill(pid, 0)
        s.sendall(b"stop\n")
    except OSError:  # qemu gone (no such process, or the socket closed)
        break
    time.sleep(0.2)
PY
}

# requires_vhost: skip unless this blockd serves vhost-user-blk; set
# VHOST_DIR (for --vhost-user-blk) to $T/vhost.
requires_vhost() {
        "$BLOCKD" --help 2>&1 | grep -- '--vhost-user-blk' >/dev/null || skip "this blockd has no --vhost-user-blk"
        VHOST_DIR=$T/vhost
}

# vhost_sock NAME: the vhost-user socket of export NAME in $VHOST_DIR.
vhost_sock() {
        local p
        for p in "$VHOST_DIR/$1.sock" "$VHOST_DIR/$1"; do
                [ -S "$p" ] && { echo "$p"; return 0; }
        done
        fail "no vhost-user socket for export $1 in $VHOST_DIR: $(ls -la "$VHOST_DIR" 2>&1)"
}

# vm_send NAME LINE: one line to the guest's ttyS1 (for a guest that has the
# port open and waits for it, like hocus.mode=bench).
vm_send() {
        python3 - "$T/$1.gate" "$2" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode() + b"\n")
PY
}

# vm_guest_sum NAME: the guest's whole-disk sha256; fails on a read error.
vm_guest_sum() {
        ! grep -q '^HOCUS-IOERROR' "$T/$1.serial" || fail "guest $1: $(grep '^HOCUS-IOERROR' "$T/$1.serial")"
        local s
        s=$(vm_line "$1" SHA256)
        [ -n "$s" ] || fail "guest $1 printed no checksum: $(tail -10 "$T/$1.serial")"
        echo "$s"
}
