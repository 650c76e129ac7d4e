#!/usr/bin/env bash
# Readahead for demand misses (blockd/readahead.h), with no profile: one
# client reading 64 chunks in order, one chunk per read, makes far fewer
# range requests than chunks (the window grows on a sequential stream),
# fetches every chunk once, and the chunks read ahead are used by the
# later reads; then reads at scattered places read nothing ahead (the
# window does not grow on random reads, and no region is read often enough
# to be a cluster) and fetch exactly the chunks they read. Pack order and
# clusters: test-lazy-readahead-pack.sh. Asserted on the fetch log and the counters, not on time.
. "$TESTS_DIR/functions.sh"
requires docker-registry curl
requires_nbd_python

truncate -s 64M "$T/disk.img"
head -c 64M /dev/urandom | dd of="$T/disk.img" conv=notrunc status=none
start_registry reg
REF=docker://$REGISTRY/ra/ws:v1
hb push --plain-http --chunk-size 256K --compress none "$T/disk.img" "$REF" >/dev/null
export HOCUS_BLK_CACHE=$T/cache
start_blockd --nbd-socket "$T/nbd.sock" --control "$T/control.sock" --plain-http --background off \
        --fetch-log "$T/fetch.log" --export "ws=$REF,profile=none"

reads() { $NBD_PYTHON "$HELPERS_DIR/fetchlog.py" read "$(nbd_uri ws)" "$T/disk.img" 262144 "$@"; }
# demand_log: "REQUESTS CHUNKS DUPLICATES MAX" of the demand fetches so far.
demand_log() { python3 "$HELPERS_DIR/fetchlog.py" demand "$T/fetch.log"; }

# 1. In order: chunks 0..63, one read each, one at a time.
reads $(seq 0 63)
read -r req chunks dup max <<<"$(demand_log)"
issued=$(blockd_stat ws readahead_issued)
used=$(blockd_stat ws readahead_used)
wasted=$(blockd_stat ws readahead_wasted)
echo "sequential: $req requests for $chunks chunks (up to $max), read ahead $issued, used $used, unused $wasted"
[ "$dup" = 0 ] || fail "$dup chunks fetched twice"
[ "$req" -le 16 ] || fail "$req range requests for 64 chunks read in order: no readahead"
[ "$issued" -gt 0 ] || fail "nothing read ahead"
[ $((chunks)) = $((64 + wasted)) ] || fail "fetched $chunks chunks: not the 64 read plus the $wasted read ahead and unused"
[ "$wasted" -le 64 ] || fail "$wasted chunks read ahead and not used: more than a window"
[ $((used + wasted)) = "$issued" ] || fail "read ahead $issued, used $used, unused $wasted: do not add up"
# The chunks read ahead before chunk 64 were used: only the last window's part past 63 is not.
[ "$used" -ge $((64 - req)) ] || fail "only $used chunks read ahead were used by $req requests for 64"

# 2. Scattered single-chunk reads, 5 or more chunks apart, past anything
# read ahead, at most two in any 16-chunk region (a third would make it a
# cluster): nothing more is read ahead, each read fetches its chunk only.
scattered="202 161 241 177 209 170 250 186 225 193 98 234 129 154 114 218 138 107 145 123"
reads $scattered
read -r req2 chunks2 dup2 _ <<<"$(demand_log)"
[ "$(blockd_stat ws readahead_issued)" = "$issued" ] || fail "random reads read ahead: $(blockd_stat ws readahead_issued) - $issued"
[ "$dup2" = 0 ] || fail "$dup2 chunks fetched twice"
[ $((chunks2 - chunks)) = 20 ] || fail "20 scattered reads fetched $((chunks2 - chunks)) chunks"
[ $((req2 - req)) = 20 ] || fail "20 scattered reads made $((req2 - req)) requests"
hb stats --control "$T/control.sock" ws | grep -q "readahead" || fail "hocus-blk stats does not show readahead"
stop_blockd
echo ok
