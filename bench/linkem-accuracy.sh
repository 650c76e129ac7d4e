#!/usr/bin/env bash
# How close linkem comes to the link it is told to emulate, in the cases
# tests/e2e/test-linkem.sh checks only by physics' lower bounds: each
# figure is printed beside the configured value and their ratio (1.00 is
# exact; a busy machine pushes every ratio up, never down).
#  - delay 5 ms: a kept-alive round trip (median of 20, less the same GET
#    straight to the server) should add 10 ms; a new connection's first
#    byte (median of 5) take 20 ms (handshake RTT + request RTT; the
#    server accepts during the handshake, so its own time mostly hides);
#  - rate: 16 MiB down at 200 Mbit/s (0.671 s), 8 MiB up at 100 Mbit/s
#    (docker-registry's monolithic upload, 0.671 s), 4 x 16 MiB sharing
#    the 200 Mbit/s link (2.684 s);
#  - a stall of 1 s after 64 KiB: the download should take 1 s more.
# For linkem's ceiling (how fast it can go at all), see linkem-ceiling.sh.
#
# usage: bench/linkem-accuracy.sh [--build DIR]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=$here/build
while [ $# -gt 0 ]; do
        case $1 in
        --build) build=$2; shift ;;
        *) echo "usage: $0 [--build DIR]" >&2; exit 2 ;;
        esac
        shift
done
. "$here/bench/lib.sh"
LK=$build/bench/linkem
[ -x "$LK" ] || { echo "linkem not built: $LK (ninja -C $build)" >&2; exit 1; }
for c in curl python3 docker-registry sha256sum; do
        command -v $c >/dev/null || { echo "$c is required" >&2; exit 1; }
done

W=$T

# row WHAT MEASURED EXPECTED UNIT: one line of the report.
row() {
        printf '  %-52s %9.3f %s (configured %.3f, ratio %s)\n' "$1" "$2" "$4" "$3" "$(calc "$2 / $3")"
}

# rtt_ms URL: median of 20 GETs on one kept-alive connection (the first,
# which connects, left out), in ms.
rtt_ms() {
        local args=() i
        for ((i = 0; i <= 20; i++)); do
                args+=(-o /dev/null "$1")
        done
        curl -fsS -w '%{time_total}\n' "${args[@]}" | tail -n +2 | median |
                awk '{ printf "%.3f\n", $1 * 1000 }'
}

# first_ms URL: median first byte of 5 new connections, in ms.
first_ms() {
        local i
        for i in 1 2 3 4 5; do
                curl -fsS -o /dev/null -w '%{time_starttransfer}\n' "$1"
        done | median | awk '{ printf "%.3f\n", $1 * 1000 }'
}

# lateness: how late linkem's timers delivered (its own error, added to
# every delayed byte), from its counters.
lateness() {
        python3 -c 'import json, sys; s = json.load(open(sys.argv[1]))
print("  %-52s %9.1f us mean, %.1f us worst" % ("linkem timer lateness", s["late_us_mean"], s["late_us_max"]))' "$W/linkem.json"
}

# linkem_on ARGS...: (re)start linkem in front of the port in $TARGET.
linkem_on() {
        [ -z "${LINKEM_PID:-}" ] || stop_pid "$LINKEM_PID"
        start_linkem "$LK" "$TARGET" 0ms 0 "$W/linkem.json" "$@"
        LKU=http://127.0.0.1:$LINKEM_PORT
}

mkdir -p "$W/www"
echo hello >"$W/www/small"
head -c $((16 << 20)) /dev/urandom >"$W/www/big"
head -c $((8 << 20)) /dev/urandom >"$W/up"
start_httpd httpd "$W/www"
TARGET=$HTTPD_PORT
echo "linkem accuracy ($(nproc) CPUs, load $(loadavg))"

echo "delay 5 ms each way:"
direct_rtt=$(rtt_ms "http://127.0.0.1:$HTTPD_PORT/small")
direct_first=$(first_ms "http://127.0.0.1:$HTTPD_PORT/small")
linkem_on --delay 5ms
row "round trip added (kept alive, median of 20)" "$(calc "$(rtt_ms "$LKU/small") - $direct_rtt" %.3f)" 10 ms
row "first byte on a new connection (median of 5)" "$(first_ms "$LKU/small")" 20 ms
printf '  %-52s %9.3f ms\n' "(the same straight to the server)" "$direct_first"
linkem_snapshot "$LINKEM_PID" "$W/linkem.json"
lateness

echo "rate:"
linkem_on --rate-down 200mbit --rate-up 100mbit
t=$(curl -fsS -o /dev/null -w '%{time_total}' "$LKU/big")
row "16 MiB down at 200 Mbit/s" "$t" "$(calc "16 * 1048576 * 8 / 200e6" %.6f)" s
start=$(now)
for i in 1 2 3 4; do
        curl -fsS -o /dev/null "$LKU/big" &
done
for j in $(jobs -p); do
        [ "$j" = "$HTTPD_PID" ] || [ "$j" = "$LINKEM_PID" ] || wait "$j"
done
row "4 x 16 MiB down in parallel at 200 Mbit/s" "$(calc "$(now) - $start" %.6f)" "$(calc "64 * 1048576 * 8 / 200e6" %.6f)" s
start_registry reg
TARGET=${REGISTRY#*:}
linkem_on --rate-down 200mbit --rate-up 100mbit
digest=sha256:$(sha256sum "$W/up" | cut -d' ' -f1)
loc=$(curl -fsS -X POST -D - -o /dev/null "$LKU/v2/bench/up/blobs/uploads/" | tr -d '\r' | sed -n 's/^[Ll]ocation: //p')
case $loc in http*) loc=$LKU/${loc#http://*/} ;; *) loc=$LKU$loc ;; esac
case $loc in *\?*) loc="$loc&digest=$digest" ;; *) loc="$loc?digest=$digest" ;; esac
t=$(curl -fsS -X PUT -H 'Content-Type: application/octet-stream' --data-binary "@$W/up" -o /dev/null \
        -w '%{time_total}' "$loc")
row "8 MiB up at 100 Mbit/s" "$t" "$(calc "8 * 1048576 * 8 / 100e6" %.6f)" s

echo "stall:"
TARGET=$HTTPD_PORT
linkem_on
base=$(curl -fsS -o /dev/null -w '%{time_total}' "$LKU/big")
linkem_on --fault stall=1,after=64K
t=$(curl -fsS -o /dev/null -w '%{time_total}' "$LKU/big")
row "time a 1 s stall added to a 16 MiB download" "$(calc "$t - $base" %.6f)" 1 s
