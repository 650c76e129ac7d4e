#!/usr/bin/env bash
# mkinitramfs.sh KERNEL_DIR: the VM tests' initramfs for the kernel that
# guest-kernel.sh put in KERNEL_DIR, built once and cached there; prints its
# path. It holds busybox (busybox-static), guest-init.sh as /init, the virtio
# modules and their load order, and guest-io (guest-io.c, linked static). The
# file name carries a hash of those inputs, so a changed init builds anew.
set -euo pipefail
kdir=${1:?usage: mkinitramfs.sh KERNEL_DIR}
here=$(cd "$(dirname "$0")" && pwd)
busybox=${HOCUS_VM_BUSYBOX:-/bin/busybox}
# ldd fails on a static executable (and on a missing one: -x tells them apart).
if [ ! -x "$busybox" ] || ldd "$busybox" >/dev/null 2>&1; then
        echo "mkinitramfs: $busybox is not a static busybox (install busybox-static)" >&2
        exit 77
fi
cc=${CC:-cc}
key=$(cat "$here/guest-init.sh" "$here/guest-io.c" "$kdir/modules/order" "$0" | sha256sum | cut -c1-16)
key=$key-$(sha256sum "$busybox" | cut -c1-8)
out=$kdir/initramfs-$key.cpio.gz
exec 8>"$kdir/.initramfs.lock"
flock 8
if [ -s "$out" ]; then
        echo "$out"
        exit 0
fi
work=$(mktemp -d "$kdir/.initramfs.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/root
mkdir -p "$root"/{bin,dev,proc,sys,tmp,lib/modules}
cp "$busybox" "$root/bin/busybox"
ln -s busybox "$root/bin/sh"
install -m 0755 "$here/guest-init.sh" "$root/init"
cp "$kdir"/modules/* "$root/lib/modules/"
"$cc" -static -O2 -Wall -Werror -o "$root/bin/guest-io" "$here/guest-io.c" 2>"$work/cc.log" ||
        { echo "mkinitramfs: building guest-io failed: $(cat "$work/cc.log")" >&2; exit 1; }
(cd "$root" && find . | LC_ALL=C sort | "$busybox" cpio -o -H newc 2>/dev/null) | gzip -1 >"$work/initramfs.cpio.gz"
mv "$work/initramfs.cpio.gz" "$out"
# Older builds of the initramfs for this kernel go.
for f in "$kdir"/initramfs-*.cpio.gz; do
        [ "$f" = "$out" ] || rm -f "$f"
done
echo "$out"
