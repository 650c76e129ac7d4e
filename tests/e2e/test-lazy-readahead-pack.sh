#!/usr/bin/env bash
# Readahead along the packs' own order and for clusters (blockd/readahead.h),
# with no profile: an image repacked in a boot profile's order (hocus-blk
# repack), attached with profile=none, and read in that order one chunk per
# read takes a handful of range requests (each miss reads ahead the chunks
# that follow it in its pack, whatever their logical numbers, over the zero
# chunks the packs leave out), not one per chunk; reads that miss in one
# region in no order fetch the region's rest after the third miss; scattered
# reads read ahead little (bounded waste). Asserted on the fetch log and the
# counters, not on time.
. "$TESTS_DIR/functions.sh"
requires docker-registry curl
requires_nbd_python

CS=262144
# 128 MiB of random data, every 8th of the first 128 chunks zero.
head -c 128M /dev/urandom >"$T/disk.img"
for c in $(seq 7 8 127); do
        dd if=/dev/zero of="$T/disk.img" bs=$CS seek="$c" count=1 conv=notrunc status=none
done
start_registry reg
REF=docker://$REGISTRY/rapack/ws
hb push --plain-http --chunk-size 256K --compress none "$T/disk.img" "$REF:v1" >/dev/null

# The boot order: chunks 0..127 as (37 c) mod 128, one read each.
python3 - "$T/boot.prf" "$T/boot.order" <<'PY'
import struct, sys
cs, order = 262144, [(37 * c) % 128 for c in range(128)]
with open(sys.argv[1], "wb") as f:
    f.write(b"HOCUSPRF" + struct.pack("<IIIIQ", 1, 0, cs, len(order), 0))
    for t, c in enumerate(order):
        f.write(struct.pack("<QII", c * cs, cs, t))
open(sys.argv[2], "w").write(" ".join(map(str, order)))
PY
hb repack --plain-http "$REF:v1" "$REF:repacked" --profile "$T/boot.prf" >"$T/repack.out"
grep -q "112 of the boot profile first" "$T/repack.out" || fail "repack said: $(cat "$T/repack.out")"

export HOCUS_BLK_CACHE=$T/cache
start_blockd --nbd-socket "$T/nbd.sock" --control "$T/control.sock" --plain-http --background off \
        --fetch-log "$T/fetch.log" --export "ws=$REF:repacked,profile=none"

reads() { $NBD_PYTHON "$HELPERS_DIR/fetchlog.py" read "$(nbd_uri ws)" "$T/disk.img" 262144 "$@"; }
# demand_log: "REQUESTS CHUNKS DUPLICATES MAX" of the demand fetches so far.
demand_log() { python3 "$HELPERS_DIR/fetchlog.py" demand "$T/fetch.log"; }
ra() { echo "$(blockd_stat ws readahead_issued) $(blockd_stat ws readahead_used)"; }

# 1. The boot order (pack order): 128 reads, 112 chunks (16 zero).
reads $(cat "$T/boot.order")
read -r req chunks dup _ <<<"$(demand_log)"
read -r issued used <<<"$(ra)"
echo "pack order: $req requests for 112 chunks read ($chunks fetched), read ahead $issued, used $used"
[ "$dup" = 0 ] || fail "$dup chunks fetched twice"
# Without readahead along the pack every chunk is a request of its own
# (112). How many fewer depends on how the reads and the dispatcher
# interleave (16 on an idle machine, 36 with three such tests in parallel
# beside a suite): half proves the windows followed the pack.
[ "$req" -le 56 ] || fail "$req range requests for 112 chunks read in pack order: no readahead along the pack"
[ "$used" -ge $((112 - req)) ] || fail "only $used chunks read ahead were used by $req requests for 112"
[ $((issued - used)) -le 64 ] || fail "$((issued - used)) chunks read ahead and not used: more than a window"

# 2. A cluster: region 400..415 (stored in logical order after the boot's
# chunks, past the window the boot order's stream may have read ahead,
# chunks 128..191, and past the scattered reads below), every chunk once,
# in no order.
reads 409 402 414 405 400 407 413 403 415 406 401 411 404 410 408 412
read -r req2 chunks2 dup2 _ <<<"$(demand_log)"
read -r issued2 used2 <<<"$(ra)"
echo "cluster: $((req2 - req)) requests for 16 chunks, read ahead $((issued2 - issued)), used $((used2 - used))"
[ "$dup2" = 0 ] || fail "$dup2 chunks fetched twice"
[ $((chunks2 - chunks)) -ge 16 ] || fail "the cluster fetched $((chunks2 - chunks)) chunks, read 16"
[ $((req2 - req)) -le 6 ] || fail "$((req2 - req)) range requests for 16 chunks of one region: no cluster readahead"
[ $((used2 - used)) -ge 13 ] || fail "only $((used2 - used)) of the cluster's chunks read ahead were used"

# 3. Scattered reads over chunks 192..383 (a fixed pseudo-random list):
# little read ahead and not used, at most one cluster's worth.
scattered=$(python3 -c '
x, out = 11, []
while len(out) < 24:
    x = (x * 1103515245 + 12345) % 2**31
    c = 192 + (x >> 8) % 192
    if c not in out:
        out.append(c)
print(*out)')
reads $scattered
read -r req3 chunks3 dup3 _ <<<"$(demand_log)"
read -r issued3 used3 <<<"$(ra)"
waste=$(( (issued3 - issued2) - (used3 - used2) ))
echo "scattered: $((req3 - req2)) requests for 24 chunks ($((chunks3 - chunks2)) fetched), read ahead $((issued3 - issued2)), unused $waste"
[ "$dup3" = 0 ] || fail "$dup3 chunks fetched twice"
[ "$waste" -le 16 ] || fail "24 scattered reads read ahead $waste chunks nobody read"
[ $((chunks3 - chunks2)) -le $((24 + 16)) ] || fail "24 scattered reads fetched $((chunks3 - chunks2)) chunks"
stop_blockd
echo ok
