#!/usr/bin/env bash
# guest-kernel.sh CACHE_DIR: make sure CACHE_DIR holds a Debian amd64 kernel
# for the VM tests, and print the directory that has it:
#   DIR/vmlinuz        the bzImage
#   DIR/modules/*.ko   the virtio modules a disk needs, in load order
#                      (DIR/modules/order lists them)
#   DIR/version        the kernel release (6.1.0-NN-amd64)
# The kernel comes from the linux-image package that Debian's linux-image-amd64
# depends on, fetched with `apt-get download` and unpacked with dpkg-deb -x;
# nothing is installed on the host. Debian builds virtio, virtio_pci and
# virtio_blk as modules (CONFIG_VIRTIO_PCI=m, CONFIG_VIRTIO_BLK=m), so the
# guest's init loads them from its initramfs. HOCUS_VM_KERNEL_PKG names another
# package (e.g. linux-image-6.1.0-57-amd64). Exit 77 when the package cannot be
# fetched (no apt lists, no network), so a test that needs it skips.
set -euo pipefail
cache=${1:?usage: guest-kernel.sh CACHE_DIR}
mkdir -p "$cache"
exec 8>"$cache/.kernel.lock"
flock 8

pkg=${HOCUS_VM_KERNEL_PKG:-}
if [ -z "$pkg" ]; then
        pkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
                sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-amd64\)$/\1/p' | head -1)
fi
if [ -z "$pkg" ]; then
        # No apt lists: take whatever kernel an earlier run cached.
        dir=$(ls -d "$cache"/linux-image-*-amd64 2>/dev/null | tail -1)
        [ -n "$dir" ] && [ -s "$dir/vmlinuz" ] && { echo "$dir"; exit 0; }
        echo "guest-kernel: cannot tell which kernel linux-image-amd64 depends on (run apt-get update)" >&2
        exit 77
fi
dir=$cache/$pkg
if [ -s "$dir/vmlinuz" ] && [ -f "$dir/modules/order" ]; then
        echo "$dir"
        exit 0
fi

work=$(mktemp -d "$cache/.fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT
# apt-get drops privileges to _apt for downloads when it can; a directory it
# may write keeps it from warning about an unsandboxed download.
chmod 0777 "$work"
if ! (cd "$work" && apt-get download -q "$pkg" >apt.log 2>&1); then
        echo "guest-kernel: apt-get download $pkg failed: $(tail -2 "$work/apt.log")" >&2
        exit 77
fi
dpkg-deb -x "$work"/"$pkg"_*.deb "$work/x"
release=${pkg#linux-image-}
moddir=$work/x/lib/modules/$release
[ -d "$moddir" ] || { echo "guest-kernel: $pkg has no lib/modules/$release" >&2; exit 1; }
mkdir -p "$work/out/modules"
cp "$work/x/boot/vmlinuz-$release" "$work/out/vmlinuz"
echo "$release" >"$work/out/version"

# Load order: every module after the modules it depends on (modinfo's
# depends field; the package ships no modules.dep, depmod makes it at install).
declare -A seen=()
order=()
add_module() {
        local name=$1 path dep
        [ -z "${seen[$name]:-}" ] || return 0
        seen[$name]=1
        path=$(find "$moddir/kernel" -name "$name.ko" -o -name "$name.ko.xz" | head -1)
        if [ -z "$path" ]; then
                # Built in (=y) on this kernel: nothing to load.
                grep -q "/$name.ko" "$moddir/modules.builtin" 2>/dev/null ||
                        { echo "guest-kernel: $release has no module $name" >&2; exit 1; }
                return 0
        fi
        for dep in $(modinfo -F depends "$path" | tr , ' '); do
                add_module "$dep"
        done
        case $path in
        *.xz) xz -dc "$path" >"$work/out/modules/$name.ko" ;;
        *) cp "$path" "$work/out/modules/$name.ko" ;;
        esac
        order+=("$name")
}
for m in virtio_pci virtio_blk; do
        add_module "$m"
done
printf '%s\n' "${order[@]}" >"$work/out/modules/order"
rm -rf "$dir"
mv "$work/out" "$dir"
echo "$dir"
