#!/usr/bin/env bash
# A chunk store on a small filesystem (tmpfs) that the image does not fit.
# Without --cache-max: the stream fills the disk, says "full" once, stops
# fetching (bytes fetched stay put while it waits), reads still return the
# right bytes (served without storing), and freed space lets the stream go
# on. With --cache-max: the filesystem never holds more than the bound
# (evicted entries are closed, not kept allocated by open fds), and a whole
# read of the image is byte-identical.
. "$TESTS_DIR/functions.sh"
requires_root
requires docker-registry nbdcopy mount umount df

MiB=$((1 << 20))
# 64 MiB of incompressible data in 256 KiB chunks (stored as is); the
# stream is capped at 16 MiB/s so that what it has in flight when the disk
# fills is small beside the image.
head -c 64M /dev/urandom >"$T/disk.img"
start_registry reg
REF=docker://$REGISTRY/full/ws:v1
hb push --plain-http --chunk-size 256K "$T/disk.img" "$REF" >/dev/null

mkdir "$T/small"
mount -t tmpfs -o size=32M tmpfs "$T/small" || skip "cannot mount a tmpfs"
cleanup_fn "umount -l '$T/small'"
used() { df --output=used -B1 "$T/small" | tail -n 1 | tr -d ' '; }
fetch_stat() {
        hb stats --control "$T/control.sock" --json |
                python3 -c 'import json,sys; print(json.load(sys.stdin)["fetch"][sys.argv[1]])' "$1"
}
# wait_log N REGEX: until blockd.log has at least N lines matching.
wait_log() {
        local deadline=$((SECONDS + 60))
        until [ "$(grep -c -- "$2" "$T/blockd.log")" -ge "$1" ]; do
                [ "$SECONDS" -lt "$deadline" ] || fail "no '$2' in the log (x$1): $(tail -n 20 "$T/blockd.log")"
                sleep 0.1
        done
}
# settled: the stream waits and nothing of it is in flight.
settled() {
        local deadline=$((SECONDS + 60))
        until [ "$(blockd_stat ws background)" = cache-full ] && [ "$(fetch_stat inflight_background)" = 0 ]; do
                [ "$SECONDS" -lt "$deadline" ] || fail "the stream did not settle: $(blockd_stat ws background)"
                sleep 0.1
        done
}

# --- No bound: the disk fills. 12 MiB of it is someone else's file.
head -c 12M /dev/zero >"$T/small/filler"
start_blockd --cache "$T/small/cache" --nbd-socket "$T/nbd.sock" --control "$T/control.sock" --plain-http \
        --background 16M --export "ws=$REF"
wait_log 1 "Chunk store .* is full"
settled
fetched=$(blockd_stat ws bytes_fetched)
# The old stream refetched what it could not store, a pass a second.
sleep 3
[ "$(blockd_stat ws bytes_fetched)" = "$fetched" ] || fail "fetched $fetched, then $(blockd_stat ws bytes_fetched) while full"
[ "$fetched" -lt $((64 * MiB)) ] || fail "fetched $fetched bytes for a 64 MiB image that does not fit"
[ "$(grep -c "Chunk store .* is full" "$T/blockd.log")" = 1 ] || fail "full said $(grep -c "Chunk store .* is full" "$T/blockd.log") times"
[ "$(grep -c "cannot store chunk" "$T/blockd.log")" = 0 ] || fail "a warning per chunk: $(grep -c "cannot store chunk" "$T/blockd.log")"
[ "$(blockd_stat ws cache_full_events)" = 1 ] || fail "cache_full_events $(blockd_stat ws cache_full_events)"
hb stats --control "$T/control.sock" ws | grep -q "1 times full" || fail "stats text: $(hb stats --control "$T/control.sock" ws)"
metrics=$(curl -fsS --unix-socket "$T/control.sock" http://blockd/metrics) || fail "GET /metrics failed"
grep -q '^hocus_blk_export_cache_full_events_total{export="ws"} 1$' <<<"$metrics" || fail "no cache-full metric"

# Reads still work: what is not stored is served from the fetched bytes.
nbdcopy "$(nbd_uri ws)" "$T/out.img"
assert_same "$T/disk.img" "$T/out.img"
rm -f "$T/out.img"
[ "$(blockd_stat ws errors)" = 0 ] || fail "read errors while full: $(blockd_stat ws errors)"

# Space comes back: the stream goes on, fills the disk again, says so once more.
hydrated=$(blockd_stat ws hydrated_bytes)
rm "$T/small/filler"
wait_log 1 "Chunk store .* has room again"
wait_log 2 "Chunk store .* is full"
settled
[ "$(blockd_stat ws hydrated_bytes)" -gt "$hydrated" ] || fail "nothing stored after space was freed"
stop_blockd

# --- A bound of 16 MiB on the same filesystem: never more than that on
# it, while a whole read goes through the cache (evicting as it goes).
rm -rf "$T/small/cache" "$T/blockd.log"
start_blockd --cache "$T/small/cache" --cache-max 16M --nbd-socket "$T/nbd.sock" --control "$T/control.sock" \
        --plain-http --export "ws=$REF"
: >"$T/used.log"
(
        while [ ! -e "$T/stop-sampling" ]; do
                used >>"$T/used.log"
                sleep 0.02
        done
) &
sampler=$!
cleanup_fn "touch '$T/stop-sampling'; wait $sampler"
nbdcopy "$(nbd_uri ws)" "$T/out.img"
touch "$T/stop-sampling"
wait "$sampler"
assert_same "$T/disk.img" "$T/out.img"
max=$(sort -n "$T/used.log" | tail -n 1)
samples=$(wc -l <"$T/used.log")
# The bound, plus what the decoders have in hand (a few chunks being written).
[ "$max" -le $((16 * MiB + 2 * MiB)) ] || fail "the filesystem held $max bytes under --cache-max 16M ($samples samples)"
[ "$(grep -c "No space left" "$T/blockd.log")" = 0 ] || fail "ENOSPC under --cache-max"
[ "$(grep -c "Chunk store .* is full" "$T/blockd.log")" = 0 ] || fail "the disk filled under --cache-max"
stop_blockd
echo "ok (max used $max bytes in $samples samples)"
