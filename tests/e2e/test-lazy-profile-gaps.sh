#!/usr/bin/env bash
# Profile ranges read through small gaps of the pack: an image pushed in
# logical order (not repacked) whose boot profile reads every other chunk
# is prefetched in fewer range requests than the profile has runs, the
# chunks in the gaps arrive with them (verified and stored: later reads of
# them fetch nothing) and every byte served is the image's. With
# --background off only a tiny gap (a chunk that compresses to a few
# bytes) is read through, never one of a whole chunk. Counts, not times.
. "$TESTS_DIR/functions.sh"
requires docker-registry curl
requires_nbd_python

CS=65536
# 32 MiB of random chunks (stored raw: 64 KiB each), but chunk 19: zeros
# and one byte, which compresses to a few bytes.
python3 - "$T/disk.img" <<'PY'
import os, sys
cs = 65536
img = bytearray(os.urandom(512 * cs))
img[19 * cs:20 * cs] = b"\1" + bytes(cs - 1)
open(sys.argv[1], "wb").write(img)
PY
start_registry reg
REF=docker://$REGISTRY/gaps/ws:v1
hb push --plain-http --chunk-size 64K "$T/disk.img" "$REF" >/dev/null

# The profile, in this order: every other chunk of 10-20 (gaps of one
# 64 KiB chunk: 11, 13, 15, 17; and the tiny 19), 102, 300 (far from
# everything: 1.2 MiB and more), 100 (gap 101). Read one run at a time,
# 9 range requests.
python3 - "$T/boot.prf" <<'PY'
import struct, sys
cs = 65536
chunks = [14, 10, 18, 12, 20, 16, 102, 300, 100]
body = b"".join(struct.pack("<QII", c * cs, cs, t) for t, c in enumerate(chunks))
hdr = b"HOCUSPRF" + struct.pack("<IIIIQ", 1, 0, cs, len(chunks), 0)   # docs/FORMAT.md section 6
open(sys.argv[1], "wb").write(hdr + body)
PY
export HOCUS_BLK_CACHE=$T/cache

# profile_lines LOG: the chunks of each profile fetch, in start order.
profile_lines() { python3 "$HELPERS_DIR/fetchlog.py" profile "$1"; }
prefetch_ended() { [ "$(blockd_stat ws prefetch_queued)" = 9 ] && [ "$(blockd_stat ws prefetch_active)" = False ]; }
start() {       # start LOG BACKGROUND: a blockd with an empty chunk store
        rm -rf "$T/cache"
        start_blockd --nbd-socket "$T/nbd.sock" --control "$T/control.sock" --plain-http --background "$2" \
                --fetch-log "$1" --export "ws=$REF,profile=$T/boot.prf"
        wait_for 120 prefetch_ended || fail "the prefetch did not end: $(tail -3 "$T/blockd.log")"
}

# 1. The background stream on (rate-capped: it barely moves): the gaps
# are read through, 3 requests instead of 9.
start "$T/fetch1.log" 64K
got=$(profile_lines "$T/fetch1.log")
echo "profile fetches: $got"
[ "$(blockd_stat ws profile_requests)" -lt 9 ] ||
        fail "$(blockd_stat ws profile_requests) profile requests, as many as without reading through gaps: $got"
[ "$got" = "10-20 100-102 300" ] || fail "the profile fetched '$got', not '10-20 100-102 300'"
[ "$(blockd_stat ws prefetch_gap_chunks)" = 6 ] || fail "$(blockd_stat ws prefetch_gap_chunks) gap chunks, not 6"
[ "$(blockd_stat ws prefetch_gap_waste_bytes)" = 0 ] || fail "gap bytes wasted: $(blockd_stat ws prefetch_gap_waste_bytes)"
# The gap chunks are stored, verified: reading them and the profile's
# fetches nothing, and the bytes are the image's.
$NBD_PYTHON "$HELPERS_DIR/fetchlog.py" read "$(nbd_uri ws)" "$T/disk.img" 65536 $(seq 10 20) 100 101 102 300
[ "$(blockd_stat ws cache_misses)" = 0 ] || fail "$(blockd_stat ws cache_misses) chunks fetched on demand after the prefetch"
stop_blockd
! grep -q ' class=demand ' "$T/fetch1.log" || fail "demand fetches: $(grep ' class=demand ' "$T/fetch1.log")"

# 2. --background off: no gap of a whole chunk is read through, only the
# tiny one (19, between 18 and 20).
start "$T/fetch2.log" off
got=$(profile_lines "$T/fetch2.log")
echo "profile fetches without the background stream: $got"
[ "$got" = "14 10 18-20 12 16 102 300 100" ] || fail "the profile fetched '$got', not '14 10 18-20 12 16 102 300 100'"
[ "$(blockd_stat ws prefetch_gap_chunks)" = 1 ] || fail "$(blockd_stat ws prefetch_gap_chunks) gap chunks, not 1 (19)"
$NBD_PYTHON "$HELPERS_DIR/fetchlog.py" read "$(nbd_uri ws)" "$T/disk.img" 65536 10 12 14 16 18 19 20 100 102 300
[ "$(blockd_stat ws cache_misses)" = 0 ] || fail "$(blockd_stat ws cache_misses) chunks fetched on demand after the prefetch"
# A chunk in a large gap was not fetched: reading it is a miss.
$NBD_PYTHON "$HELPERS_DIR/fetchlog.py" read "$(nbd_uri ws)" "$T/disk.img" 65536 11
[ "$(blockd_stat ws cache_misses)" = 1 ] || fail "chunk 11 was fetched before it was read"
stop_blockd
echo ok
