#!/usr/bin/env bash
# Measure the link emulator itself, so that nobody reads a figure that
# linkem, not the product, limited:
#  - its ceiling: throughput of one HTTP GET with no cap and no delay,
#    through linkem vs straight over loopback (curl from bench/httpd.py,
#    which serves with sendfile), and the latency it adds at delay 0;
#  - its accuracy: at --rate 1gbit --delay 1ms a 512 MiB GET should take
#    4 x delay + size/rate = 4.299 s (handshake RTT, request, first byte)
#    and a small request's round trip 2 ms; 8 parallel GETs share the link;
#    the 10gbit/0.25ms profile likewise, unless the ceiling is below it;
#  - with --tbf (root): the kernel's token bucket (tbf on a veth into a
#    network namespace) at the same rates, to compare rate accuracy.
# Every timing is the best of --reps runs: the machine is shared, and
# noise only ever makes a run slower.
#
# usage: bench/linkem-ceiling.sh [--build DIR] [--reps N] [--size MiB]
#                                [--tbf] [--quick] [--csv FILE]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/bench/lib.sh"
build=$here/build
reps=5
size=2048
tbf=0
csv=
while [ $# -gt 0 ]; do
        case $1 in
        --build) build=$2; shift ;;
        --reps) reps=$2; shift ;;
        --size) size=$2; shift ;;
        --tbf) tbf=1 ;;
        --quick) reps=2; size=512 ;;
        --csv) csv=$2; shift ;;
        *) echo "usage: $0 [--build DIR] [--reps N] [--size MiB] [--tbf] [--quick] [--csv FILE]" >&2; exit 2 ;;
        esac
        shift
done
LK=$build/bench/linkem
[ -x "$LK" ] || { echo "linkem not built: $LK (ninja -C $build)" >&2; exit 1; }
for c in curl python3 openssl awk; do
        command -v $c >/dev/null || { echo "$c is required" >&2; exit 1; }
done

W=$T

# serve_www [BIND] [NETNS]: bench/httpd.py serving $W/www, in a network
# namespace when given; sets HTTP_PORT.
serve_www() {
        local bind=${1:-127.0.0.1} pf=$W/httpd.$RANDOM.port pid
        ${2:+ip netns exec "$2"} python3 "$here/bench/httpd.py" "$W/www" --bind "$bind" --port-file "$pf" &
        pid=$!
        cleanup_fn "kill $pid; wait $pid"
        wait_file 30 "$pf" || fail "httpd.py did not start"
        HTTP_PORT=$(cat "$pf")
}

# linkem_up ARGS...: linkem with ARGS, counters to $W/stats.json; sets
# LK_PORT and LK_PID. linkem_down stops it (failing on an unclean exit).
linkem_up() {
        local pf=$W/linkem.$RANDOM.port
        rm -f "$W/stats.json"
        "$LK" --port-file "$pf" --stats "$W/stats.json" "$@" >/dev/null 2>>"$W/linkem.log" &
        LK_PID=$!
        cleanup_fn "kill $LK_PID; wait $LK_PID"
        wait_file 30 "$pf" || fail "linkem did not start: $(tail -3 "$W/linkem.log")"
        LK_PORT=$(cat "$pf")
}

linkem_down() {
        stop_pid "$LK_PID" linkem
}

# report_lateness: how late linkem's timers delivered, over its whole run
# (its own error, added to every delayed byte).
report_lateness() {
        python3 -c 'import json, sys; s = json.load(open(sys.argv[1]))
print("  %-44s %10.1f us mean, %.1f us worst" % ("linkem timer lateness", s["late_us_mean"], s["late_us_max"]))' "$W/stats.json"
}

# get_time URL BYTES: seconds for one GET (fails on a short body).
get_time() {
        local out
        out=$(curl -sS -o /dev/null -w '%{size_download} %{time_total}' "$1")
        [ "${out% *}" = "$2" ] || { echo "short transfer from $1: $out" >&2; exit 1; }
        echo "${out#* }"
}

# best_of N CMD...: the smallest number that N runs of CMD print.
best_of() {
        local n=$1 i
        shift
        for ((i = 0; i < n; i++)); do
                "$@"
        done | sort -g | head -1
}

# parallel_time N URL BYTES: seconds until N concurrent GETs all finish.
parallel_time() {
        local n=$1 url=$2 bytes=$3 i start gets=()
        start=$(date +%s.%N)
        for ((i = 0; i < n; i++)); do
                get_time "$url" "$bytes" >/dev/null &
                gets+=($!)
        done
        for i in "${gets[@]}"; do
                wait "$i"
        done
        num "$(date +%s.%N) - $start"
}

# rtt_ms URL N: median time of N small GETs on one keep-alive connection
# (the first, which also connects, is left out), in ms.
rtt_ms() {
        local args=() i
        for ((i = 0; i <= $2; i++)); do
                args+=(-o /dev/null "$1")
        done
        curl -sS -w '%{time_total}\n' "${args[@]}" | tail -n +2 | sort -g |
                awk '{ v[NR] = $1 } END { printf "%.3f\n", v[int((NR + 1) / 2)] * 1000 }'
}

# num EXPR: floating-point arithmetic, 4 significant digits.
num() { calc "$*" '%.4g\n'; }
gbit() { num "$1 * 8 / $2 / 1e9"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f\n", a / b }'; }

# report NAME MEASURED EXPECTED UNIT: one line, and one CSV row.
report() {
        local r=
        [ -n "$3" ] && r="($(ratio "$2" "$3")x)"
        printf '  %-44s %10s %-7s expected %-9s %s\n' "$1" "$2" "$4" "${3:--}" "$r"
        [ -z "$csv" ] || echo "\"$1\",$2,${3:-},$4" >>"$csv"
}

[ -z "$csv" ] || echo "metric,measured,expected,unit" >"$csv"
mkdir -p "$W/www"
bytes=$((size << 20))
small=$((512 << 20))
echo "generating test blobs ($size MiB and 512 MiB of incompressible data)"
(set +o pipefail; openssl enc -aes-128-ctr -nosalt -pass pass:linkem -in /dev/zero 2>/dev/null |
        head -c "$bytes" >"$W/www/big")
head -c "$small" "$W/www/big" >"$W/www/b512"
head -c $((64 << 20)) "$W/www/big" >"$W/www/b64"
echo ok >"$W/www/small"
serve_www
H=$HTTP_PORT

echo "linkem ceiling and accuracy: best of $reps; $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "ceiling: one GET of $size MiB, no cap, no delay"
t_direct=$(best_of "$reps" get_time "http://127.0.0.1:$H/big" "$bytes")
report "direct loopback (Gbit/s)" "$(gbit "$bytes" "$t_direct")" "" "Gbit/s"
linkem_up --connect "127.0.0.1:$H"
t_splice=$(best_of "$reps" get_time "http://127.0.0.1:$LK_PORT/big" "$bytes")
ceiling=$(gbit "$bytes" "$t_splice")
report "through linkem, splice (Gbit/s)" "$ceiling" "$(gbit "$bytes" "$t_direct")" "Gbit/s"
rtt_direct=$(best_of "$reps" rtt_ms "http://127.0.0.1:$H/small" 50)
rtt_lk=$(best_of "$reps" rtt_ms "http://127.0.0.1:$LK_PORT/small" 50)
linkem_down
linkem_up --connect "127.0.0.1:$H" --copy
t_copy=$(best_of "$reps" get_time "http://127.0.0.1:$LK_PORT/big" "$bytes")
report "through linkem --copy (Gbit/s)" "$(gbit "$bytes" "$t_copy")" "$(gbit "$bytes" "$t_direct")" "Gbit/s"
linkem_down
echo "latency added at delay 0: median small GET on a kept-alive connection"
report "direct loopback (ms)" "$rtt_direct" "" "ms"
report "through linkem (ms)" "$rtt_lk" "$rtt_direct" "ms"

echo "accuracy: --rate 1gbit --delay 1ms"
linkem_up --connect "127.0.0.1:$H" --rate 1gbit --delay 1ms
t=$(best_of "$reps" get_time "http://127.0.0.1:$LK_PORT/b512" "$small")
report "one 512 MiB GET (s)" "$t" "$(num "0.004 + $small * 8 / 1000000000")" "s"
t=$(best_of "$reps" rtt_ms "http://127.0.0.1:$LK_PORT/small" 20)
report "small GET round trip (ms)" "$t" "$(num "2 + $rtt_direct")" "ms"
t=$(best_of "$reps" parallel_time 8 "http://127.0.0.1:$LK_PORT/b64" $((64 << 20)))
report "8 parallel 64 MiB GETs share it (s)" "$t" "$(num "0.004 + 8 * 64 * 1048576 * 8 / 1000000000")" "s"
linkem_down
report_lateness

echo "accuracy: --rate 10gbit --delay 0.25ms"
linkem_up --connect "127.0.0.1:$H" --rate 10gbit --delay 0.25ms
t=$(best_of "$reps" get_time "http://127.0.0.1:$LK_PORT/big" "$bytes")
report "one $size MiB GET (s)" "$t" "$(num "0.001 + $bytes * 8 / 10000000000")" "s"
report "  as a rate (Gbit/s)" "$(gbit "$bytes" "$t")" "10" "Gbit/s"
t=$(best_of "$reps" rtt_ms "http://127.0.0.1:$LK_PORT/small" 20)
report "small GET round trip (ms)" "$t" "$(num "0.5 + $rtt_direct")" "ms"
linkem_down
report_lateness
if awk -v c="$ceiling" 'BEGIN { exit !(c < 10.5) }'; then
        echo "  note: the uncapped ceiling ($ceiling Gbit/s) is near or below 10 Gbit/s on this"
        echo "        machine; a 10gbit profile measures the emulator as much as the product."
fi

if [ "$tbf" = 1 ]; then
        [ "$(id -u)" = 0 ] || { echo "--tbf needs root" >&2; exit 1; }
        netns=lkceil$$
        echo "tbf: kernel token bucket on a veth into network namespace $netns"
        ip netns add "$netns"
        cleanup_fn "ip netns del $netns"
        ip link add "lkc$$a" type veth peer name "lkc$$b" netns "$netns"
        ip addr add 10.231.0.1/24 dev "lkc$$a"
        ip link set "lkc$$a" up
        ip -n "$netns" addr add 10.231.0.2/24 dev "lkc$$b"
        ip -n "$netns" link set "lkc$$b" up
        ip -n "$netns" link set lo up
        serve_www 10.231.0.2 "$netns"
        url=http://10.231.0.2:$HTTP_PORT
        t=$(best_of "$reps" get_time "$url/big" "$bytes")
        report "veth, no qdisc (Gbit/s)" "$(gbit "$bytes" "$t")" "" "Gbit/s"
        for rate in 10 1; do
                burst=$((rate * 1000000000 / 8 / 1000))  # 1 ms of line time
                [ "$burst" -ge 262144 ] || burst=262144
                ip netns exec "$netns" tc qdisc replace dev "lkc$$b" root tbf rate "${rate}gbit" burst "$burst" limit $((4 * burst))
                f=big b=$bytes
                [ "$rate" = 1 ] && { f=b512; b=$small; }
                t=$(best_of "$reps" get_time "$url/$f" "$b")
                report "tbf ${rate}gbit, one GET (Gbit/s)" "$(gbit "$b" "$t")" "$rate" "Gbit/s"
                linkem_up --connect "127.0.0.1:$H" --rate "${rate}gbit"
                t=$(best_of "$reps" get_time "http://127.0.0.1:$LK_PORT/$f" "$b")
                report "linkem ${rate}gbit, one GET (Gbit/s)" "$(gbit "$b" "$t")" "$rate" "Gbit/s"
                linkem_down
        done
fi
