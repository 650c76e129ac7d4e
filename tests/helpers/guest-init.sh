#!/bin/sh
# /init of the VM tests' initramfs (busybox sh; see mkinitramfs.sh). It loads
# the virtio modules, waits for /dev/vda, does what the kernel command line's
# hocus.mode= says, prints the result on the serial console (ttyS0) as lines
# that start with "HOCUS-", and powers the VM off. The host reads the lines
# from qemu's serial log:
#   hocus.mode=read      HOCUS-SHA256 <hex> of the whole of /dev/vda
#   hocus.mode=write hocus.write=OFF_MIB:LEN_MIB:TAG
#                        writes LEN_MIB MiB of the line "hocus-blk vm write TAG"
#                        repeated at OFF_MIB MiB, fsyncs, syncs, then
#                        HOCUS-WROTE <hex> (the range as read back)
#   hocus.mode=loop      HOCUS-PASS <n> <hex> for each whole-disk read, again
#                        and again until a line arrives on ttyS1 (the gate)
#   hocus.mode=bench hocus.bench=RANDOM_READS
#                        HOCUS-BENCH-READY, then once a line arrives on ttyS1
#                        HOCUS-BENCH lines from /bin/guest-io (sequential and
#                        4 KiB random O_DIRECT reads)
# A failed read or write prints HOCUS-IOERROR <what>; every mode ends with
# HOCUS-DONE and a power off.
export PATH=/bin
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec >/dev/ttyS0 2>&1

say() {
        echo "$*"
}
finish() {
        say "HOCUS-DONE"
        sync
        poweroff -f
        sleep 60
}

for m in $(cat /lib/modules/order); do
        insmod "/lib/modules/$m.ko" || say "HOCUS-IOERROR insmod $m"
done
mode=read
write=
bench=20000
for arg in $(cat /proc/cmdline); do
        case $arg in
        hocus.mode=*) mode=${arg#hocus.mode=} ;;
        hocus.write=*) write=${arg#hocus.write=} ;;
        hocus.bench=*) bench=${arg#hocus.bench=} ;;
        esac
done
i=0
while [ ! -b /dev/vda ] && [ $i -lt 600 ]; do
        usleep 100000
        i=$((i + 1))
done
[ -b /dev/vda ] || { say "HOCUS-IOERROR no /dev/vda"; finish; }
say "HOCUS-DISK $(blockdev --getsize64 /dev/vda)"

# sum_disk: the sha256 of /dev/vda, or nothing on a read error.
sum_disk() {
        sha256sum /dev/vda >/tmp/sum 2>/tmp/sum.err || { say "HOCUS-IOERROR read: $(cat /tmp/sum.err)"; return 1; }
        set -- $(cat /tmp/sum)
        echo "$1"
}

case $mode in
read)
        say "HOCUS-READING"
        s=$(sum_disk) && say "HOCUS-SHA256 $s"
        ;;
write)
        off=${write%%:*}
        rest=${write#*:}
        len=${rest%%:*}
        tag=${rest#*:}
        yes "hocus-blk vm write $tag" | head -c $((len * 1048576)) >/tmp/pattern
        if dd if=/tmp/pattern of=/dev/vda bs=1048576 seek="$off" conv=notrunc,fsync 2>/tmp/dd.err; then
                sync
                echo 3 >/proc/sys/vm/drop_caches
                set -- $(dd if=/dev/vda bs=1048576 skip="$off" count="$len" 2>/dev/null | sha256sum)
                say "HOCUS-WROTE $1"
        else
                say "HOCUS-IOERROR write: $(cat /tmp/dd.err)"
        fi
        ;;
loop)
        say "HOCUS-READING"
        n=0
        while :; do
                n=$((n + 1))
                echo 3 >/proc/sys/vm/drop_caches
                s=$(sum_disk) || break
                say "HOCUS-PASS $n $s"
                if read -t 0.01 line </dev/ttyS1 && [ -n "$line" ]; then
                        break
                fi
        done
        ;;
bench)
        # Wait for the host's go on ttyS1 (opened before saying so, so that
        # the line cannot arrive while the port is closed): the host reads
        # blockd's CPU time then, after the boot.
        exec 3</dev/ttyS1
        say "HOCUS-BENCH-READY"
        read -r line <&3
        guest-io /dev/vda "$bench" || say "HOCUS-IOERROR guest-io failed"
        ;;
*)
        say "HOCUS-IOERROR unknown hocus.mode=$mode"
        ;;
esac
finish
