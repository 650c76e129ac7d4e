#!/usr/bin/env bash
# Write-behind (blockd/write-behind.h): a fetched chunk's store insert waits
# for an idle CPU, the chunk is served from its verified buffer meanwhile.
#   1. held (no writer: HOCUS_BLK_WRITE_BEHIND_HOLD): reads return the
#      image's bytes, nothing is in the store yet, a second read of every
#      chunk while it is still queued fetches nothing more (each chunk
#      fetched once), and after SIGTERM every fetched chunk is in the store
#      and verifies;
#   2. a second blockd on that store fetches nothing for the same reads;
#   3. the idle writer: reads right, and after SIGTERM every chunk is stored;
#   4. --write-behind off stores inline; a bad size is refused.
. "$TESTS_DIR/functions.sh"
requires docker-registry nbdcopy

CS=262144
truncate -s 24M "$T/ws.img"
head -c 16M /dev/urandom | dd of="$T/ws.img" bs=1M seek=4 conv=notrunc status=none
start_registry reg
R=docker://$REGISTRY/team/ws:v1
hb push --plain-http --chunk-size 256K --compress none "$T/ws.img" "$R" >/dev/null
n=$(chunk_digests "$T/ws.img" $CS | sort -u | wc -l)
[ "$n" = 64 ] || fail "the test image has $n chunks, want 64"

fetch_stat() {
        hb stats --control "$T/control.sock" --json |
                python3 -c 'import json,sys; print(json.load(sys.stdin)["fetch"][sys.argv[1]])' "$1"
}
# Chunks the fetch log says were fetched (runs "3-7,12" counted out).
logged_chunks() {
        python3 - "$1" <<'PY'
import re, sys
n = 0
for line in open(sys.argv[1]):
    m = re.search(r' chunks=(\S+) ', line)
    if not m or ' result=ok' not in line:
        continue
    for part in m.group(1).split(','):
        a, _, b = part.partition('-')
        n += int(b) - int(a) + 1 if b else 1
print(n)
PY
}

# --- 1. held: served from the queue, stored at SIGTERM ----------------------
export HOCUS_BLK_CACHE=$T/cache
HOCUS_BLK_WRITE_BEHIND_HOLD=1 start_blockd --nbd-socket "$T/nbd.sock" --control "$T/control.sock" --plain-http \
        --background off --fetch-log "$T/fetch1.log" --export "ws=$R"
nbdcopy "$(nbd_uri ws)" "$T/out1.img"
assert_same "$T/ws.img" "$T/out1.img"
[ "$(store_entries)" = 0 ] || fail "held: $(store_entries) entries stored before any flush"
[ "$(fetch_stat write_behind_queued)" = "$n" ] || fail "held: $(fetch_stat write_behind_queued) chunks queued, want $n"
[ "$(logged_chunks "$T/fetch1.log")" = "$n" ] || fail "first read: $(logged_chunks "$T/fetch1.log") chunks fetched, want $n"
nbdcopy "$(nbd_uri ws)" "$T/out2.img"
assert_same "$T/ws.img" "$T/out2.img"
[ "$(logged_chunks "$T/fetch1.log")" = "$n" ] || fail "a read of queued chunks fetched again: $(logged_chunks "$T/fetch1.log") chunks, want $n"
[ "$(blockd_stat ws bytes_fetched)" = $((n * CS)) ] || fail "fetched $(blockd_stat ws bytes_fetched) bytes, want $((n * CS))"
hits=$(fetch_stat write_behind_hits)
[ "$hits" -ge "$n" ] || fail "the second read took $hits chunks from the queue, want $n at least"
stop_blockd
[ "$(store_entries)" = "$n" ] || fail "after SIGTERM: $(store_entries) entries, want $n (the queue is flushed at exit)"
hb cache verify >"$T/verify.out" 2>&1 || fail "cache verify: $(cat "$T/verify.out")"

# --- 2. a second blockd on the same store fetches nothing --------------------
start_blockd --nbd-socket "$T/nbd.sock" --control "$T/control.sock" --plain-http \
        --background off --fetch-log "$T/fetch2.log" --export "ws=$R"
nbdcopy "$(nbd_uri ws)" "$T/out3.img"
assert_same "$T/ws.img" "$T/out3.img"
[ "$(blockd_stat ws bytes_fetched)" = 0 ] || fail "the second blockd fetched $(blockd_stat ws bytes_fetched) bytes"
[ ! -s "$T/fetch2.log" ] || fail "the second blockd's fetch log: $(head -3 "$T/fetch2.log")"
stop_blockd

# --- 3. the idle writer ------------------------------------------------------
export HOCUS_BLK_CACHE=$T/cache3
start_blockd --nbd-socket "$T/nbd.sock" --control "$T/control.sock" --plain-http \
        --fetch-log "$T/fetch3.log" --export "ws=$R"
nbdcopy "$(nbd_uri ws)" "$T/out4.img"
assert_same "$T/ws.img" "$T/out4.img"
wait_hydrated ws
[ "$(fetch_stat write_behind_deferred)" -ge 1 ] || fail "nothing was written behind"
stop_blockd
[ "$(store_entries)" = "$n" ] || fail "idle writer, after SIGTERM: $(store_entries) entries, want $n"
[ "$(logged_chunks "$T/fetch3.log")" = "$n" ] || fail "idle writer: $(logged_chunks "$T/fetch3.log") chunks fetched, want $n"

# --- 4. off, and a bad size ---------------------------------------------------
export HOCUS_BLK_CACHE=$T/cache4
start_blockd --nbd-socket "$T/nbd.sock" --control "$T/control.sock" --plain-http --write-behind off \
        --background off --export "ws=$R"
nbdcopy "$(nbd_uri ws)" "$T/out5.img"
assert_same "$T/ws.img" "$T/out5.img"
[ "$(fetch_stat write_behind_deferred)" = 0 ] || fail "--write-behind off deferred $(fetch_stat write_behind_deferred)"
[ "$(store_entries)" = "$n" ] || fail "--write-behind off: $(store_entries) entries while running, want $n"
stop_blockd
if "$BLOCKD" --write-behind 12 --nbd-socket "$T/x.sock" >"$T/bad.out" 2>&1; then
        fail "--write-behind 12 was accepted"
fi
grep -q "write-behind" "$T/bad.out" || fail "--write-behind 12: $(cat "$T/bad.out")"
echo ok
