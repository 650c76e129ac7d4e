#!/usr/bin/env bash
# linkem, the link emulator of bench/, in front of a real docker-registry:
# delay (round trips), rate caps each way, a link shared by parallel
# transfers, every fault mode, the stats file, usage errors and a clean
# exit on SIGTERM. Timing checks are only lower bounds that physics
# guarantees (a busy machine makes everything slower, never faster); how
# close linkem comes to its configured delay and rate is a benchmark,
# bench/linkem-accuracy.sh. About 10 s.
. "${TESTS_DIR:-$(dirname "$0")/..}/functions.sh"

LINKEM=${LINKEM:-$BUILD_DIR/bench/linkem}
[ -x "$LINKEM" ] || fail "linkem is not built: $LINKEM"
requires curl jq sha256sum
start_registry

# start_linkem NAME ARGS...: linkem in front of the registry. Sets LK
# (host:port) and LK_PID; a cleanup kills it if the test fails first.
start_linkem() {
        local name=$1
        shift
        "$LINKEM" --connect "$REGISTRY" --port-file "$T/$name.port" --pidfile "$T/$name.pid" \
                "$@" >/dev/null 2>"$T/$name.log" &
        LK_PID=$!
        cleanup_fn "kill $LK_PID; wait $LK_PID"
        wait_for 10 test -s "$T/$name.port" || fail "linkem did not start: $(cat "$T/$name.log")"
        LK=127.0.0.1:$(cat "$T/$name.port")
}

stop_linkem() {
        stop_pid "$LK_PID" linkem
}

# push_blob FILE: upload FILE as a blob of repository test/blobs (the
# registry's monolithic upload) through host:port ${2:-$REGISTRY}; prints
# the digest.
push_blob() {
        local file=$1 via=${2:-$REGISTRY} digest loc
        digest=sha256:$(sha256sum "$file" | cut -d' ' -f1)
        loc=$(curl -fsS -X POST -D - -o /dev/null "http://$via/v2/test/blobs/blobs/uploads/" |
                tr -d '\r' | sed -n 's/^[Ll]ocation: //p')
        case $loc in
        http*) loc=http://$via/${loc#http://*/} ;;
        *) loc=http://$via$loc ;;
        esac
        case $loc in *\?*) loc="$loc&digest=$digest" ;; *) loc="$loc?digest=$digest" ;; esac
        curl -fsS -X PUT -H 'Content-Type: application/octet-stream' --data-binary "@$file" \
                -o /dev/null "$loc" || fail "blob upload through $via failed"
        echo "$digest"
}

# best_ms URL N: the fastest of N GETs on one kept-alive connection (the
# first, which connects, is left out), in ms.
best_ms() {
        local args=() i
        for ((i = 0; i <= $2; i++)); do
                args+=(-o /dev/null "$1")
        done
        curl -fsS -w '%{time_total}\n' "${args[@]}" | tail -n +2 | sort -g |
                awk 'NR == 1 { printf "%.3f\n", $1 * 1000 }'
}

# calc EXPR: floating-point arithmetic.
calc() {
        awk "BEGIN { printf \"%.6g\n\", $* }"
}

# at_least VALUE LOW WHAT: VALUE >= LOW (decimals), a bound physics sets.
at_least() {
        awk -v v="$1" -v lo="$2" 'BEGIN { exit !(v >= lo) }' || fail "$3: $1 < $2"
        echo "ok: $3: $1 >= $2"
}

# wire_s BYTES BITS_PER_S: the least time BYTES take on a line of that rate.
wire_s() {
        calc "$1 * 8 / $2"
}

head -c $((16 << 20)) /dev/urandom >"$T/big"
head -c 4096 /dev/urandom >"$T/small"
big=$(push_blob "$T/big")
small=$(push_blob "$T/small")
blob=v2/test/blobs/blobs

echo "== usage errors"
expect_fail "connect HOST:PORT is required" "$LINKEM"
expect_fail "Invalid rate '10gbps'" "$LINKEM" --connect "$REGISTRY" --rate 10gbps
expect_fail "Invalid delay '5'" "$LINKEM" --connect "$REGISTRY" --delay 5
expect_fail "Invalid fault 'flip-at=x'" "$LINKEM" --connect "$REGISTRY" --fault flip-at=x

echo "== delay: --delay 5ms is a 10 ms round trip; a new connection pays one more"
mkdir -p "$T/www"
echo hello >"$T/www/small"
python3 "$TESTS_DIR/../bench/httpd.py" "$T/www" --port-file "$T/httpd.port" &
HTTPD_PID=$!
cleanup_fn "kill $HTTPD_PID; wait $HTTPD_PID"
wait_for 10 test -s "$T/httpd.port" || fail "httpd.py did not start"
HTTPD=127.0.0.1:$(cat "$T/httpd.port")
start_linkem delay --connect "$HTTPD" --delay 5ms --stats "$T/delay.json"
# A request goes up and its answer comes down: 2 x 5 ms at the least, on
# every request (the fastest of 20 included).
at_least "$(best_ms "http://$LK/small" 20)" 10 "kept-alive round trip, fastest of 20 (ms)"
# A new connection also pays the handshake's round trip first.
first=$(for i in 1 2 3 4 5; do
        curl -fsS -o /dev/null -w '%{time_starttransfer}\n' "http://$LK/small"
done | sort -g | head -1)
at_least "$(calc "$first * 1000")" 20 "first byte on a new connection, fastest of 5 (ms)"
stop_linkem
jq -e '.connections == 6 and .bytes_down > 100 and .faults_fired == 0' \
        "$T/delay.json" >/dev/null || fail "unexpected stats: $(cat "$T/delay.json")"
[ ! -e "$T/delay.pid" ] || fail "pidfile left behind after SIGTERM"
start_linkem delay2 --delay 5ms
curl -fsS "http://$LK/$blob/$big" | cmp - "$T/big" || fail "data changed through linkem"
stop_linkem

echo "== rate: 16 MiB at --rate-down 200mbit take 0.67 s at least; uploads at --rate-up 100mbit"
start_linkem rate --rate-down 200mbit --rate-up 100mbit --stats "$T/rate.json"
t=$(curl -fsS -o "$T/r1" -w '%{time_total}' "http://$LK/$blob/$big")
cmp "$T/r1" "$T/big" || fail "data changed by the rate cap"
at_least "$t" "$(wire_s $((16 << 20)) 200e6)" "16 MiB download at 200 Mbit/s (s)"
head -c $((8 << 20)) /dev/urandom >"$T/up"
start=$(date +%s.%N)
up=$(push_blob "$T/up" "$LK")
at_least "$(calc "$(date +%s.%N) - $start")" "$(wire_s $((8 << 20)) 100e6)" "8 MiB upload at 100 Mbit/s (s)"
curl -fsS "http://$REGISTRY/$blob/$up" | cmp - "$T/up" || fail "upload changed through linkem"
echo "== rate: four parallel downloads share the link"
start=$(date +%s.%N)
pids=()
for i in 1 2 3 4; do
        curl -fsS -o "$T/par$i" "http://$LK/$blob/$big" &
        pids+=($!)
done
for p in "${pids[@]}"; do
        wait "$p" || fail "a parallel download failed"
done
# One line for all four: the link, not each connection, has the rate.
at_least "$(calc "$(date +%s.%N) - $start")" "$(wire_s $((64 << 20)) 200e6)" "4 x 16 MiB in parallel at 200 Mbit/s (s)"
for i in 1 2 3 4; do
        cmp "$T/par$i" "$T/big" || fail "parallel download $i differs"
done
stop_linkem
jq -e '.connections == 7 and .bytes_down > 5 * 16777216' \
        "$T/rate.json" >/dev/null || fail "unexpected stats: $(cat "$T/rate.json")"

echo "== fault reset-after: the client sees a reset after exactly N bytes"
start_linkem reset --fault reset-after=5000
rc=0
curl -sS -o "$T/out" -D "$T/hdr" "http://$LK/$blob/$big" 2>"$T/err" || rc=$?
assert_eq "$rc" 56 "curl exit status after a reset"
grep -q "reset by peer" "$T/err" || fail "no reset: $(cat "$T/err")"
assert_eq "$(($(stat -c %s "$T/out") + $(stat -c %s "$T/hdr")))" 5000 "bytes before the reset"
stop_linkem

echo "== fault flip-at,conn=2: only the second connection sees one flipped byte"
start_linkem flip --fault flip-at=100000,conn=2 --stats "$T/flip.json"
curl -fsS -o "$T/f1" "http://$LK/$blob/$big"
curl -fsS -o "$T/f2" -D "$T/h2" "http://$LK/$blob/$big"
curl -fsS -o "$T/f3" "http://$LK/$blob/$big"
cmp -s "$T/f1" "$T/big" || fail "connection 1 was changed"
cmp -s "$T/f3" "$T/big" || fail "connection 3 was changed"
off=$((100000 - $(stat -c %s "$T/h2") + 1))
assert_eq "$(cmp -l "$T/f2" "$T/big" | awk '{ print $1 }' | tr '\n' ' ')" "$off " "flipped byte (1-based body offset)"
stop_linkem
jq -e '.faults_fired == 1 and .connections == 3' "$T/flip.json" >/dev/null ||
        fail "unexpected stats: $(cat "$T/flip.json")"

echo "== fault stall: 1 s after 64 KiB, then the rest; stall=inf stops at 64 KiB"
start_linkem stall --fault stall=1,after=64K
t=$(curl -fsS -o "$T/s1" -w '%{time_total}' "http://$LK/$blob/$big")
at_least "$t" 1 "download with a 1 s stall (s)"
cmp "$T/s1" "$T/big" || fail "data changed by a stall"
stop_linkem
start_linkem stallinf --fault stall=inf,after=64K
curl -sS -N -i -o "$T/si" "http://$LK/$blob/$big" 2>/dev/null &
curl_pid=$!
cleanup_fn "kill $curl_pid"
# The response stream (-i: headers and body, -N: unbuffered) stops at
# exactly 64 KiB, and the download never ends.
stream_bytes() {
        stat -c %s "$T/si" 2>/dev/null || echo 0
}
stalled() {
        [ "$(stream_bytes)" -ge 65536 ] || ! kill -0 "$curl_pid" 2>/dev/null
}
wait_for 60 stalled || fail "the first 64 KiB did not arrive: $(stream_bytes) bytes"
sleep 0.3
kill -0 "$curl_pid" 2>/dev/null || fail "the download ended through an endless stall"
assert_eq "$(stream_bytes)" 65536 "bytes received before the stall"
kill "$curl_pid"
wait "$curl_pid" 2>/dev/null || true
stop_linkem

echo "== fault refuse: connection refused; refuse,conn=1: the first is reset"
start_linkem refuse --fault refuse
rc=0
curl -sS -o /dev/null "http://$LK/v2/" 2>"$T/err" || rc=$?
assert_eq "$rc" 7 "curl exit status when refused"
stop_linkem
start_linkem refuse1 --fault refuse,conn=1
rc=0
curl -sS -o /dev/null "http://$LK/v2/" 2>/dev/null || rc=$?
# The RST may beat curl's connect check (7) or its first read (56).
[ "$rc" = 7 ] || [ "$rc" = 56 ] || fail "curl exit status when reset at accept: $rc"
curl -fsS -o /dev/null "http://$LK/v2/" || fail "the second connection was refused too"
stop_linkem
echo "PASS"
