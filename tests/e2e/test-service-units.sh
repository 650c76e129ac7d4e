#!/usr/bin/env bash
# The systemd units meson installs (systemd/blockd.service, blockd.socket):
# installed, accepted by `systemd-analyze verify` without a single warning
# (a copy with a misspelt key is flagged, so the check can fail), a
# sandbox whose exposure `systemd-analyze security` rates at most 3.0, and
# the settings a restart without downtime rests on.
. "$TESTS_DIR/functions.sh"
requires systemd-analyze meson
: "${BUILD_DIR:?run through meson test (BUILD_DIR unset)}"

meson install -C "$BUILD_DIR" --no-rebuild --destdir "$T/root" >"$T/install.log" 2>&1 ||
        fail "meson install failed: $(tail -5 "$T/install.log")"
service=$(find "$T/root" -path '*/lib/systemd/system/blockd.service')
socket=$(find "$T/root" -path '*/lib/systemd/system/blockd.socket')
[ -n "$service" ] && [ -n "$socket" ] || fail "units not installed: $(find "$T/root" -name 'blockd*')"
exec_start=$(sed -n 's/^ExecStart=//p' "$service")
[ -x "$T/root$exec_start" ] || fail "ExecStart=$exec_start is not the installed blockd"

# verify needs the binary at its path: the copies point at the installed one.
mkdir "$T/units"
sed "s|^ExecStart=.*|ExecStart=$T/root$exec_start|" "$service" >"$T/units/blockd.service"
cp "$socket" "$T/units/blockd.socket"
verify() {
        (cd "$1" && systemd-analyze verify --man=no ./blockd.service ./blockd.socket) >"$T/verify.out" 2>&1
}
verify "$T/units" || fail "systemd-analyze verify failed: $(cat "$T/verify.out")"
[ ! -s "$T/verify.out" ] || fail "systemd-analyze verify warns: $(cat "$T/verify.out")"
mkdir "$T/bad"
sed 's/^ProtectSystem=/ProtectSystm=/' "$T/units/blockd.service" >"$T/bad/blockd.service"
cp "$socket" "$T/bad/"
verify "$T/bad" || true
grep -q "Unknown key 'ProtectSystm'" "$T/verify.out" || fail "a misspelt key went unnoticed: $(cat "$T/verify.out")"

(cd "$T/units" && systemd-analyze security --offline=yes --threshold=30 ./blockd.service) >"$T/security.out" 2>&1 ||
        fail "sandbox exposure above 3.0: $(tail -3 "$T/security.out")"

# What a restart without downtime needs (README, "Running as a service").
key() { grep -qx "$2" "$1" || fail "$(basename "$1") lacks $2"; }
key "$service" "Type=notify"
key "$service" "KillMode=mixed"
key "$service" "ExecReload=/bin/kill -HUP \$MAINPID"
key "$service" "FileDescriptorStoreMax=16"
key "$service" "RuntimeDirectoryPreserve=yes"
key "$service" "Requires=blockd.socket"
key "$socket" "ListenStream=/run/hocus-blk/nbd.sock"
key "$socket" "FileDescriptorName=nbd"
