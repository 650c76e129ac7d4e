#!/usr/bin/env bash
# Install every Debian package that the build, the tests and the benchmarks
# need. Idempotent: packages already present are left alone, and apt-get
# update runs only when something is missing.
set -euo pipefail

build_pkgs=(
        gcc clang meson ninja-build pkg-config
        libssl-dev libzstd-dev liblz4-dev libcurl4-openssl-dev
        libfuse3-dev libnbd-dev libjson-c-dev libblkid-dev libfdisk-dev
        libinih-dev libsystemd-dev
)
test_pkgs=(
        openssl ca-certificates curl zstd python3 jq
        docker-registry skopeo apache2-utils
        libnbd-bin python3-libnbd nbdkit qemu-utils fio
        qemu-system-x86 qemu-block-extra busybox-static
        fuse3 e2fsprogs xfsprogs btrfs-progs fdisk gdisk util-linux
        iproute2 procps psmisc kmod systemd
        man-db groff-base zsh
)
bench_pkgs=(
        gnuplot-nox debootstrap hyperfine time strace linux-perf
)

want=("${build_pkgs[@]}" "${test_pkgs[@]}")
if [ "${1:-}" = "--bench" ] || [ "${1:-}" = "--all" ]; then
        want+=("${bench_pkgs[@]}")
fi

missing=()
for p in "${want[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed'; then
                missing+=("$p")
        fi
done

if [ ${#missing[@]} -eq 0 ]; then
        echo "install-deps: all ${#want[@]} packages present"
        exit 0
fi

SUDO=
if [ "$(id -u)" -ne 0 ]; then
        SUDO=sudo
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# docker-registry's package starts a system service on port 5000; the tests
# start their own registries on free ports, so keep the packaged one off.
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
if command -v systemctl >/dev/null 2>&1 && systemctl is-active -q docker-registry 2>/dev/null; then
        $SUDO systemctl disable --now docker-registry >/dev/null 2>&1 || true
fi
echo "install-deps: done"
