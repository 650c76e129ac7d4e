#!/usr/bin/env bash
# Demand never waits behind the background stream: with the stream going
# (rate-capped so that it cannot finish first), a read of a chunk far
# ahead of it is fetched at once, and the fetch log shows the order: the
# demand fetch ended before the stream reached that chunk, and the stream
# never fetched it. A boot profile given at attach is fetched before the
# stream, in the profile's order. Asserted on the log's order, not on time.
. "$TESTS_DIR/functions.sh"
requires docker-registry curl nbdcopy
requires_nbd_python

CS=262144
truncate -s 64M "$T/disk.img"
head -c 64M /dev/urandom | dd of="$T/disk.img" conv=notrunc status=none
start_registry reg
REF=docker://$REGISTRY/prio/ws:v1
hb push --plain-http --chunk-size 256K --compress none "$T/disk.img" "$REF" >/dev/null

# A boot profile: chunks 200-203, then 10, then 100-101 (logical order
# scrambled on purpose), as a profile file of byte ranges.
write_profile "$T/boot.prf" 262144 200:4 10:1 100:2
hb profile show "$T/boot.prf" >/dev/null || fail "the test's profile file is not a profile"

export HOCUS_BLK_CACHE=$T/cache
start_blockd --nbd-socket "$T/nbd.sock" --control "$T/control.sock" --plain-http --background 1M \
        --fetch-log "$T/fetch.log" --export "ws=$REF,profile=$T/boot.prf"

# The profile first, in its order, before the stream's first request.
deadline=$((SECONDS + 120))
until [ "$(grep -c ' class=background ' "$T/fetch.log")" -ge 2 ]; do
        [ "$SECONDS" -lt "$deadline" ] || fail "the background stream did not start: $(cat "$T/fetch.log")"
        sleep 0.1
done
python3 - "$T/fetch.log" <<'PY'
import sys
lines = [dict(kv.split("=", 1) for kv in l.split()[1:]) for l in open(sys.argv[1])]
prof = [l for l in lines if l["class"] == "profile"]
assert [l["chunks"] for l in sorted(prof, key=lambda l: float(l["start"]))] == ["200-203", "10", "100-101"], prof
first_bg = min(float(l["start"]) for l in lines if l["class"] == "background")
assert all(float(l["start"]) < first_bg for l in prof), "the stream started before the profile"
PY

# A read far ahead of the stream (chunk 250) is fetched at once.
cat >"$T/read.py" <<'PY'
import sys, nbd
h = nbd.NBD()
h.connect_uri(sys.argv[1])
off = int(sys.argv[3])
expect = open(sys.argv[2], "rb").read()[off:off + 65536]
assert h.pread(65536, off) == expect
h.shutdown()
PY
$NBD_PYTHON "$T/read.py" "$(nbd_uri ws)" "$T/disk.img" $((250 * CS + 4096))
[ "$(blockd_stat ws background)" = running ] || fail "the stream is not running any more: $(blockd_stat ws background)"
# Stop blockd: requests still in flight end (cancelled) and are logged too.
stop_blockd
fetch_log_check "$T/fetch.log" 250
grep -q ' class=demand export=ws chunks=250 ' "$T/fetch.log" || fail "the demand fetch fetched more than its read"
echo ok
