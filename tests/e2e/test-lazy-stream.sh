#!/usr/bin/env bash
# The lazy engine end to end on a real docker-registry: a cold export read
# through NBD while the background stream runs is byte-identical to the
# source; `hocus-blk pull` beside the running blockd (same chunk store) is
# safe; the stream hydrates the export fully by itself; then the registry
# can go and every byte still reads, with nothing fetched. Also the fetch
# log and the counters agree, and the metrics show the lazy engine.
. "$TESTS_DIR/functions.sh"
requires docker-registry curl nbdcopy

# 40 MiB: data regions with holes between them (256 KiB chunks, zstd).
truncate -s 40M "$T/disk.img"
head -c 6M /dev/urandom | dd of="$T/disk.img" bs=1M seek=1 conv=notrunc status=none
gen_lines 5M | dd of="$T/disk.img" bs=1M seek=12 conv=notrunc status=none
head -c 8M /dev/urandom | dd of="$T/disk.img" bs=1M seek=24 conv=notrunc status=none
start_registry reg
REG_PID=$REGISTRY_PID
REF=docker://$REGISTRY/lazy/ws:v1
hb push --plain-http --chunk-size 256K "$T/disk.img" "$REF" >/dev/null

export HOCUS_BLK_CACHE=$T/cache
# A rate cap (4 MiB/s) so that the copy runs while the stream does.
start_blockd --nbd-socket "$T/nbd.sock" --control "$T/control.sock" --plain-http --background 4M \
        --fetch-log "$T/fetch.log" --export "ws=$REF"

# A cold read while the background stream runs, and `hocus-blk pull` of
# the same image into the same store at the same time: the copy is
# byte-identical, the store holds only verified entries.
hb pull --plain-http --quiet "$REF" &
pull_pid=$!
nbdcopy "$(nbd_uri ws)" "$T/out.img"
assert_same "$T/disk.img" "$T/out.img"
wait "$pull_pid" || fail "pull beside blockd failed"
hb cache verify >/dev/null || fail "cache verify after pull beside blockd"
[ "$(blockd_stat ws background_requests)" -gt 0 ] || fail "the background stream did not run during the copy"

# The stream finishes by itself (it finds what pull stored).
wait_hydrated ws
[ "$(blockd_stat ws hydrated_bytes)" = "$(blockd_stat ws image_bytes)" ] || fail "hydrated $(blockd_stat ws hydrated_bytes) of $(blockd_stat ws image_bytes)"
python3 -c 'import json,sys; e=json.load(sys.stdin)["exports"][0]; assert e["hydration_pct"] == 100.0, e' \
        < <(hb stats --control "$T/control.sock" --json ws)
unique=$(chunk_digests "$T/disk.img" 262144 | sort -u | wc -l)
[ "$(store_entries)" = "$unique" ] || fail "store has $(store_entries) entries, the image $unique unique chunks"

# The fetch log has one line per request, the counters agree with it.
requests=$(($(blockd_stat ws demand_requests) + $(blockd_stat ws profile_requests) + $(blockd_stat ws background_requests)))
[ "$(grep -c '^fetch ' "$T/fetch.log")" = "$requests" ] || fail "fetch log $(grep -c '^fetch ' "$T/fetch.log") lines, $requests requests"
[ "$(grep -c ' class=demand ' "$T/fetch.log")" = "$(blockd_stat ws demand_requests)" ] || fail "demand lines"
sum=$(awk '{ for (i = 2; i <= NF; i++) if ($i ~ /^bytes=/) { sub("bytes=", "", $i); s += $i } } END { print s + 0 }' "$T/fetch.log")
[ "$sum" = "$(blockd_stat ws bytes_fetched)" ] || fail "fetch log bytes $sum, counter $(blockd_stat ws bytes_fetched)"
# Demand fetches coalesce the chunks of a read: fewer requests than chunks.
[ "$(blockd_stat ws demand_requests)" -le "$(blockd_stat ws cache_misses)" ] || fail "more demand requests than chunks"

# Metrics show it.
curl -fsS --unix-socket "$T/control.sock" http://blockd/metrics >"$T/metrics"
grep -q '^hocus_blk_export_hydration_ratio{export="ws"} 1.000000$' "$T/metrics" || fail "hydration metric: $(grep hydration "$T/metrics")"
grep -q '^hocus_blk_export_fetch_requests_total{export="ws",class="background"} [1-9]' "$T/metrics" || fail "no background requests in the metrics"
grep -q '^hocus_blk_fetch_window [0-9]' "$T/metrics" || fail "no fetch window metric"
hb stats --control "$T/control.sock" ws >"$T/stats.txt"
grep -q "hydrated     100.0% " "$T/stats.txt" || fail "stats text: $(cat "$T/stats.txt")"
grep -q "background done" "$T/stats.txt" || fail "stats text: $(cat "$T/stats.txt")"

# The registry goes: every byte still reads, nothing is fetched.
fetched=$(blockd_stat ws bytes_fetched)
kill "$REG_PID"
wait "$REG_PID" 2>/dev/null || true
rm -f "$T/out.img"
nbdcopy "$(nbd_uri ws)" "$T/out.img"
assert_same "$T/disk.img" "$T/out.img"
[ "$(blockd_stat ws bytes_fetched)" = "$fetched" ] || fail "fetched more with the registry gone"
[ "$(blockd_stat ws errors)" = 0 ] || fail "errors: $(blockd_stat ws errors)"
stop_blockd
echo ok
