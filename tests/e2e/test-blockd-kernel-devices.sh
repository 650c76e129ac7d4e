#!/usr/bin/env bash
# blockd says once at start whether the kernel offers NBD (/dev/nbdN) and
# ublk, and the line matches what /sys, /dev and modprobe -n say; attach
# --help and docs/KERNEL-DEVICES.md say how to bridge an export to each.
. "$TESTS_DIR/functions.sh"

# state MODULE NODE: what the kernel offers, by the tools' own view.
state() {
        if [ -e "/sys/module/$1" ] || [ -e "$2" ]; then
                echo loaded
        elif command -v modprobe >/dev/null && modprobe -n -q "$1" 2>/dev/null; then
                echo "loadable (modprobe $1)"
        else
                echo absent
        fi
}
want="Kernel block devices: nbd $(state nbd /dev/nbd0), ublk $(state ublk_drv /dev/ublk-control)"
echo "expect: $want"

head -c 1M /dev/urandom >"$T/a.img"
hb push "$T/a.img" "oci:$T/l:v1" >/dev/null
start_blockd --nbd-socket "$T/nbd.sock" --export "ws=oci:$T/l:v1"
stop_blockd
n=$(grep -c "Kernel block devices:" "$T/blockd.log")
[ "$n" -eq 1 ] || fail "the kernel line is logged $n times, not once: $(cat "$T/blockd.log")"
grep -qF "$want (to bridge an export to one: docs/KERNEL-DEVICES.md)" "$T/blockd.log" ||
        fail "blockd's kernel line differs from /sys: $(grep "Kernel block devices" "$T/blockd.log")"

"$HOCUS_BLK" attach --help >"$T/help"
for w in "nbd-client -unix SOCKET -N NAME /dev/nbd0 -timeout 30 -persist" "nbdublk -" docs/KERNEL-DEVICES.md; do
        grep -qF -- "$w" "$T/help" || fail "attach --help does not mention '$w'"
done
doc=$TESTS_DIR/../docs/KERNEL-DEVICES.md
for w in "nbd-client" "-timeout" "-persist" "NBD_ATTR_DEAD_CONN_TIMEOUT" "nbdublk" "has no reconnect" "$(echo "$want" | cut -c1-28)"; do
        grep -qF -- "$w" "$doc" || fail "docs/KERNEL-DEVICES.md does not mention '$w'"
done
echo ok
