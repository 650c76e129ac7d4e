#!/usr/bin/env bash
# The shared cache: exports of v1 and v2 of a workspace (v2 = v1 with a few
# chunks changed, pushed with --base) store each shared chunk once, and a
# chunk fetched for one export serves the other:
#   1. v1 hydrates; v2 attached afterwards fetches exactly the chunks v1 did
#      not have (bytes and requests counted), and the store holds the union;
#   2. cold, both at once: one fetch per digest across the two exports (the
#      bytes both fetched add up to the union's, never more);
#   3. --cache-max below the image: background fetching stops short of the
#      bound, reads evict, every read still returns the right bytes, and
#      the store stays within the bound.
. "$TESTS_DIR/functions.sh"
requires docker-registry curl nbdcopy

CS=262144
truncate -s 32M "$T/v1.img"
head -c 20M /dev/urandom | dd of="$T/v1.img" bs=1M seek=2 conv=notrunc status=none
cp "$T/v1.img" "$T/v2.img"
# v2: three single chunks changed, and a run of four.
for c in 9 30 61; do
        head -c 4096 /dev/urandom | dd of="$T/v2.img" bs=4096 seek=$((c * 64 + 3)) conv=notrunc status=none
done
head -c 1M /dev/urandom | dd of="$T/v2.img" bs=$CS seek=40 conv=notrunc status=none

start_registry reg
R1=docker://$REGISTRY/team/ws:v1
R2=docker://$REGISTRY/team/ws:v2
hb push --plain-http --chunk-size 256K --compress none "$T/v1.img" "$R1" >/dev/null
hb push --plain-http --chunk-size 256K --compress none "$T/v2.img" "$R2" --base "$R1" >"$T/push2.out"

chunk_digests "$T/v1.img" $CS | sort -u >"$T/d1"
chunk_digests "$T/v2.img" $CS | sort -u >"$T/d2"
n1=$(wc -l <"$T/d1")
union=$(sort -u "$T/d1" "$T/d2" | wc -l)
only2=$(comm -13 "$T/d1" "$T/d2" | wc -l)
[ "$only2" = 7 ] || fail "the test image: $only2 chunks only in v2"

# --- 1. v1 first, then v2 ---------------------------------------------------
export HOCUS_BLK_CACHE=$T/cache1
start_blockd --nbd-socket "$T/nbd.sock" --control "$T/control.sock" --plain-http --fetch-log "$T/fetch1.log" \
        --export "v1=$R1"
wait_hydrated v1
[ "$(store_entries)" = "$n1" ] || fail "v1: $(store_entries) entries, want $n1"
hb attach --control "$T/control.sock" v2 "$R2" >/dev/null
wait_hydrated v2
[ "$(store_entries)" = "$union" ] || fail "v1+v2: $(store_entries) entries, want $union (shared chunks stored once)"
# v2 fetched exactly its own 7 chunks (stored raw: 7 x 256 KiB), in fewer
# requests than chunks (adjacent ones in its pack go together).
[ "$(blockd_stat v2 bytes_fetched)" = $((only2 * CS)) ] || fail "v2 fetched $(blockd_stat v2 bytes_fetched) bytes, want $((only2 * CS))"
req2=$(($(blockd_stat v2 demand_requests) + $(blockd_stat v2 background_requests)))
[ "$req2" -ge 1 ] && [ "$req2" -le "$only2" ] || fail "v2 made $req2 requests for $only2 chunks"
grep -c ' export=v2 ' "$T/fetch1.log" | grep -qx "$req2" || fail "fetch log: $(grep -c ' export=v2 ' "$T/fetch1.log") lines for v2"
nbdcopy "$(nbd_uri v2)" "$T/out2.img"
assert_same "$T/v2.img" "$T/out2.img"
nbdcopy "$(nbd_uri v1)" "$T/out1.img"
assert_same "$T/v1.img" "$T/out1.img"
[ "$(blockd_stat v2 bytes_fetched)" = $((only2 * CS)) ] || fail "reading v2 fetched more"
stop_blockd

# --- 2. both cold at once: one fetch per digest ------------------------------
export HOCUS_BLK_CACHE=$T/cache2
start_blockd --nbd-socket "$T/nbd.sock" --control "$T/control.sock" --plain-http \
        --export "v1=$R1" --export "v2=$R2"
nbdcopy "$(nbd_uri v2)" "$T/out2.img" &
copy=$!
nbdcopy "$(nbd_uri v1)" "$T/out1.img"
wait "$copy" || fail "nbdcopy of v2"
assert_same "$T/v1.img" "$T/out1.img"
assert_same "$T/v2.img" "$T/out2.img"
wait_hydrated v1
wait_hydrated v2
[ "$(store_entries)" = "$union" ] || fail "both: $(store_entries) entries, want $union"
total=$(($(blockd_stat v1 bytes_fetched) + $(blockd_stat v2 bytes_fetched)))
[ "$total" = $((union * CS)) ] || fail "both fetched $total bytes, the union is $((union * CS)): a chunk was fetched twice"
stop_blockd

# --- 3. a bound below the image ----------------------------------------------
export HOCUS_BLK_CACHE=$T/cache3
MAX=$((12 * 1048576))
start_blockd --nbd-socket "$T/nbd.sock" --control "$T/control.sock" --plain-http --cache-max $MAX \
        --export "v1=$R1"
# The stream stops short of the bound by itself.
deadline=$((SECONDS + 120))
until [ "$(blockd_stat v1 background)" = cache-full ]; do
        [ "$SECONDS" -lt "$deadline" ] || fail "background did not stop at the bound: $(blockd_stat v1 background)"
        sleep 0.1
done
bytes=$(hb cache stats --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["bytes"])')
[ "$bytes" -le $MAX ] || fail "background filled the store past the bound: $bytes"
# Reads of everything, twice, with two readers at once: right bytes, and
# the store within its bound after each (eviction under reads in progress).
for round in 1 2; do
        nbdcopy "$(nbd_uri v1)" "$T/a.img" &
        copy=$!
        nbdcopy "$(nbd_uri v1)" "$T/b.img"
        wait "$copy" || fail "nbdcopy under eviction"
        assert_same "$T/v1.img" "$T/a.img"
        assert_same "$T/v1.img" "$T/b.img"
        bytes=$(hb cache stats --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["bytes"])')
        [ "$bytes" -le $MAX ] || fail "round $round: the store holds $bytes bytes, over --cache-max $MAX"
        rm -f "$T/a.img" "$T/b.img"
done
[ "$(blockd_stat v1 errors)" = 0 ] || fail "errors under eviction: $(blockd_stat v1 errors)"
stop_blockd
echo ok
