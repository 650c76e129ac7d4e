#!/usr/bin/env bash
# Readahead for demand misses (blockd/readahead.h), with no profile: one
# client reading 128 chunks in order, one chunk per read, makes far fewer
# range requests than chunks (the window grows on a sequential stream),
# fetches every chunk once, and the chunks read ahead are used by the
# later reads; hits at the stream's marker read the next window ahead
# (readahead on hits), so that only the first reads wait for chunks
# nobody asked for yet (demand_cold_waits: one at every window's end when
# only misses read ahead, 7 or more here); then reads at scattered places
# read nothing ahead (the
# window does not grow on random reads, and no region is read often enough
# to be a cluster) and fetch exactly the chunks they read. Pack order and
# clusters: test-lazy-readahead-pack.sh. Asserted on the fetch log and the counters, not on time.
. "$TESTS_DIR/functions.sh"
requires docker-registry curl
requires_nbd_python

truncate -s 96M "$T/disk.img"
head -c 96M /dev/urandom | dd of="$T/disk.img" conv=notrunc status=none
start_registry reg
REF=docker://$REGISTRY/ra/ws:v1
hb push --plain-http --chunk-size 256K --compress none "$T/disk.img" "$REF" >/dev/null
export HOCUS_BLK_CACHE=$T/cache
start_blockd --nbd-socket "$T/nbd.sock" --control "$T/control.sock" --plain-http --background off \
        --fetch-log "$T/fetch.log" --export "ws=$REF,profile=none"

reads() { $NBD_PYTHON "$HELPERS_DIR/fetchlog.py" read "$(nbd_uri ws)" "$T/disk.img" 262144 "$@"; }
# demand_log: "REQUESTS CHUNKS DUPLICATES MAX" of the demand fetches so far.
demand_log() { python3 "$HELPERS_DIR/fetchlog.py" demand "$T/fetch.log"; }

# 1. In order: chunks 0..127, one read each, one at a time.
reads $(seq 0 127)
read -r req chunks dup max <<<"$(demand_log)"
issued=$(blockd_stat ws readahead_issued)
used=$(blockd_stat ws readahead_used)
wasted=$(blockd_stat ws readahead_wasted)
async=$(blockd_stat ws readahead_async)
waits=$(blockd_stat ws demand_waits)
cold=$(blockd_stat ws demand_cold_waits)
echo "sequential: $req requests for $chunks chunks (up to $max), read ahead $issued, used $used, unused $wasted;" \
        "$async windows started by hits; $waits reads waited, $cold for chunks not asked for yet"
[ "$dup" = 0 ] || fail "$dup chunks fetched twice"
[ "$req" -le 32 ] || fail "$req range requests for 128 chunks read in order: no readahead"
[ "$issued" -gt 0 ] || fail "nothing read ahead"
[ $((chunks)) = $((128 + wasted)) ] || fail "fetched $chunks chunks: not the 128 read plus the $wasted read ahead and unused"
[ "$wasted" -le 64 ] || fail "$wasted chunks read ahead and not used: more than a window"
[ $((used + wasted)) = "$issued" ] || fail "read ahead $issued, used $used, unused $wasted: do not add up"
# The chunks read ahead before chunk 128 were used: only the last window's part past 127 is not.
[ "$used" -ge $((128 - req)) ] || fail "only $used chunks read ahead were used by $req requests for 128"
# Readahead on hits: the first two reads start the stream; after that a
# read waits at most for a chunk in flight, never for one nobody asked for
# (one more allowed: a marker hit that found no room, demand queued).
# Miss-only readahead waits cold at every window's end: 0, 1, 4, 9, 18, 35,
# 68 and more with windows capped by the link's room.
[ "$async" -ge 2 ] || fail "$async readahead windows started by hits on a sequential read"
[ "$cold" -le 3 ] || fail "$cold of 128 sequential reads waited for a chunk nobody had asked for yet"

# 2. Scattered single-chunk reads, 5 or more chunks apart, past anything
# read ahead (at most a window of 64 past 127), at most two in any
# 16-chunk region (a third would make it a cluster): nothing more is read
# ahead, each read fetches its chunk only.
scattered="330 273 369 289 337 282 378 298 353 305 257 362 321 266 346 314"
reads $scattered
read -r req2 chunks2 dup2 _ <<<"$(demand_log)"
[ "$(blockd_stat ws readahead_issued)" = "$issued" ] || fail "random reads read ahead: $(blockd_stat ws readahead_issued) - $issued"
[ "$dup2" = 0 ] || fail "$dup2 chunks fetched twice"
[ $((chunks2 - chunks)) = 16 ] || fail "16 scattered reads fetched $((chunks2 - chunks)) chunks"
[ $((req2 - req)) = 16 ] || fail "16 scattered reads made $((req2 - req)) requests"
hb stats --control "$T/control.sock" ws | grep -q "readahead" || fail "hocus-blk stats does not show readahead"
stop_blockd
echo ok
