#!/usr/bin/env bash
# Learned profiles: a cold attach of an image with no published profile
# learns its first reads and keeps them in the chunk store's directory at
# detach; the next cold start (an empty chunk store) prefetches them in
# that order before any read, so those reads fetch nothing; a published
# profile takes precedence over the learned one; profile=none neither uses
# nor learns one; `hocus-blk profile push REF --learned` publishes the
# learned profile merged with the published one; --learn-window 0 learns
# nothing. Counts, not times.
. "$TESTS_DIR/functions.sh"
requires docker-registry curl
requires_nbd_python

CS=262144
truncate -s 64M "$T/disk.img"
head -c 64M /dev/urandom | dd of="$T/disk.img" conv=notrunc status=none
start_registry reg
REF=docker://$REGISTRY/learn/ws:v1
hb push --plain-http --chunk-size 256K --compress none "$T/disk.img" "$REF" >/dev/null
export HOCUS_BLK_CACHE=$T/cache

# read.py URI IMAGE CHUNK[+N]...: read those chunks in that order, one
# read each, and check the bytes.
cat >"$T/read.py" <<'PY'
import sys, nbd
cs = 262144
h = nbd.NBD()
h.connect_uri(sys.argv[1])
img = open(sys.argv[2], "rb").read()
for spec in sys.argv[3:]:
    c, _, n = spec.partition("+")
    off, ln = int(c) * cs, (int(n or 0) + 1) * cs
    assert h.pread(ln, off) == img[off:off + ln], spec
h.shutdown()
PY
reads() { $NBD_PYTHON "$T/read.py" "$(nbd_uri ws)" "$T/disk.img" "$@"; }
# fetched CLASS LOG: the chunks fetched at that class, in start order.
fetched() {
        python3 - "$1" "$2" <<'PY'
import sys
lines = [dict(kv.split("=", 1) for kv in l.split()[1:]) for l in open(sys.argv[2])]
print(" ".join(l["chunks"] for l in sorted(lines, key=lambda l: float(l["start"])) if l["class"] == sys.argv[1]))
PY
}
prefetch_ended() { [ "$(blockd_stat ws prefetch_active)" = False ]; }
prefetch_settled() {
        wait_profile_lookup ws
        wait_for 120 prefetch_ended || fail "the prefetch did not end: $(tail -3 "$T/blockd.log")"
}
start() {       # start LOG [EXPORT OPTIONS [BLOCKD OPTIONS...]]: a blockd with an empty chunk store
        local log=$1 opts=${2:-}
        shift $(($# < 2 ? $# : 2))
        rm -rf "$T/cache/chunks"
        start_blockd --nbd-socket "$T/nbd.sock" --control "$T/control.sock" --plain-http --background off \
                --fetch-log "$log" --export "ws=$REF$opts" "$@"
}

# 1. A cold attach, nothing published: nothing prefetched, the first reads learned.
start "$T/fetch1.log"
wait_profile_lookup ws
grep -q "none learned yet" "$T/blockd.log" || fail "the first attach found a profile: $(grep -i profile "$T/blockd.log")"
reads 200 10 100+1
[ "$(blockd_stat ws learning)" = True ] || fail "the attach is not learning"
[ "$(blockd_stat ws learned_entries)" = 3 ] || fail "learned $(blockd_stat ws learned_entries) entries, not 3"
[ "$(blockd_stat ws prefetch_fetched)" = 0 ] || fail "something was prefetched"
hb detach --control "$T/control.sock" ws >/dev/null
grep -q "Export ws: learned its first reads (3 ranges)" "$T/blockd.log" || fail "the detach kept nothing: $(tail -3 "$T/blockd.log")"
[ "$(ls "$T/cache/learned" | wc -l)" = 1 ] || fail "no learned profile in the cache directory: $(ls -R "$T/cache")"
stop_blockd

# 2. The next cold start prefetches it, in its order, before the first
# read; then those reads are all store hits.
start "$T/fetch2.log"
prefetch_settled
[ "$(blockd_stat ws prefetch_learned)" = True ] || fail "the prefetch is not the learned profile"
[ "$(blockd_stat ws prefetch_fetched)" = 4 ] || fail "prefetched $(blockd_stat ws prefetch_fetched) chunks, not 4"
got=$(fetched profile "$T/fetch2.log")
[ "$got" = "200 10 100-101" ] || fail "the learned prefetch fetched '$got', not '200 10 100-101'"
[ -z "$(fetched demand "$T/fetch2.log")" ] || fail "demand fetches before any read"
reads 200 10 100+1
[ "$(blockd_stat ws cache_misses)" = 0 ] || fail "$(blockd_stat ws cache_misses) misses after the learned prefetch"
[ -z "$(fetched demand "$T/fetch2.log")" ] || fail "the reads fetched: $(fetched demand "$T/fetch2.log")"
stop_blockd

# 3. profile=none: no prefetch, no learning.
start "$T/fetch3.log" ",profile=none"
reads 30
[ "$(blockd_stat ws learning)" = False ] || fail "profile=none learns"
[ "$(blockd_stat ws prefetch_queued)" = 0 ] || fail "profile=none prefetched"
stop_blockd
[ "$(fetched profile "$T/fetch3.log")" = "" ] || fail "profile=none fetched at profile class"

# 4. A published profile wins over the learned one.
write_profile "$T/boot.prf" 262144 50:2
hb profile push --plain-http "$REF" "$T/boot.prf" >/dev/null
start "$T/fetch4.log"
prefetch_settled
[ "$(blockd_stat ws prefetch_learned)" = False ] || fail "the learned profile was used over the published one"
got=$(fetched profile "$T/fetch4.log")
[ "$got" = "50-51" ] || fail "the published prefetch fetched '$got', not '50-51'"
stop_blockd

# 5. profile push --learned: the learned ranges merged with the published one.
hb profile push --plain-http "$REF" --learned >"$T/push.out" || fail "profile push --learned failed"
grep -q "Merged the profile learned here" "$T/push.out" || fail "push --learned did not merge: $(cat "$T/push.out")"
hb profile show --plain-http "$REF" >"$T/show.out"
grep -q "ranges       4," "$T/show.out" || fail "the published profile is not the merge of 1 + 3 ranges: $(cat "$T/show.out")"
hb profile show --plain-http --all "$REF" >"$T/all.out"
[ "$(grep -Ec "^  [* ] sha256:" "$T/all.out")" = 2 ] || fail "profile show --all does not list two profiles: $(cat "$T/all.out")"
start "$T/fetch5.log"
prefetch_settled
[ "$(blockd_stat ws prefetch_fetched)" = 6 ] || fail "the merged profile prefetched $(blockd_stat ws prefetch_fetched) chunks, not 6"
stop_blockd

# 6. --learn-window 0: a cold attach learns nothing (the reads that
# learned 3 entries in 1, and one more), and keeps the profile learned before.
learned=$(cat "$T/cache/learned/"* | md5sum)
start "$T/fetch6.log" "" --learn-window 0
reads 200 10 100+1 30
[ "$(blockd_stat ws learning)" = False ] || fail "--learn-window 0 learns"
[ "$(blockd_stat ws learned_entries)" = 0 ] || fail "--learn-window 0 learned $(blockd_stat ws learned_entries) entries"
stop_blockd
[ "$(cat "$T/cache/learned/"* | md5sum)" = "$learned" ] || fail "--learn-window 0 changed the profile learned before"
expect_fail "learn-window.*wants seconds" "$BLOCKD" --learn-window -1 --version
expect_fail "learn-window.*wants seconds" "$BLOCKD" --learn-window 1x --version

# Bad input: push --learned for an image this cache never learned.
expect_fail "No profile learned" hb profile push --plain-http --cache "$T/other-cache" "$REF" --learned
expect_fail "takes REF only" hb profile push --plain-http "$REF" "$T/boot.prf" --learned
echo ok
