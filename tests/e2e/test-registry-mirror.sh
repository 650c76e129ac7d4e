#!/usr/bin/env bash
# Registry mirrors from containers-registries.conf(5): a docker-registry
# as a pull-through cache (proxy.remoteurl) of a second one, listed in
# $CONTAINERS_REGISTRIES_CONF. Reads go through the mirror (its access log,
# inspect -v, the export's mirror_reads), pushes to the origin; when the
# mirror stops while blockd serves, the reads carry on from the origin with
# the right bytes and the mirror is skipped once (counted, logged once). A
# mirror that serves wrong bytes is caught by the digests, put aside, and
# the origin serves; a blocked prefix is refused.
. "$TESTS_DIR/functions.sh"
requires docker-registry curl nbdcopy python3
requires_nbd_python
# One failure puts a mirror aside for the whole test: counts are exact.
export HOCUS_BLK_MIRROR_BACKOFF=3600

start_registry origin
ORIGIN=$REGISTRY
start_registry mirror "proxy:
  remoteurl: http://$ORIGIN"
MIRROR=$REGISTRY
MIRROR_PID=$REGISTRY_PID

conf() {        # conf MIRROR-LOCATION [extra registry keys]
        cat >"$T/registries.conf" <<CONF
# hocus-blk test: the origin's "mirrored" namespace is read through $1
unqualified-search-registries = ["docker.io"]

[[registry]]
prefix = "$ORIGIN/mirrored"
location = "$ORIGIN/mirrored"
${2:-}

[[registry.mirror]]
location = "$1"

[[registry]]
prefix = "$ORIGIN/forbidden"
blocked = true
CONF
}
conf "$MIRROR/mirrored"
export CONTAINERS_REGISTRIES_CONF=$T/registries.conf
REF=docker://$ORIGIN/mirrored/ws:v1

truncate -s 12M "$T/disk.img"
head -c 3M /dev/urandom | dd of="$T/disk.img" bs=1M seek=1 conv=notrunc status=none
head -c 3M /dev/urandom | dd of="$T/disk.img" bs=1M seek=8 conv=notrunc status=none
hb push --plain-http --chunk-size 256K --pack-size 1M "$T/disk.img" "$REF" >/dev/null || fail "push"
# Only reads go to mirrors (a pull-through cache refuses pushes anyway).
if grep -Eq '"(PUT|POST|PATCH) /v2/' "$T/mirror.log"; then fail "the push went to the mirror"; fi
grep -Eq '"PUT /v2/mirrored/ws/manifests/v1' "$T/origin.log" || fail "the push did not reach the origin"

# inspect -v names the mirror for what it read; export reads every blob through it.
hb inspect -v --plain-http "$REF" >"$T/inspect.out" 2>"$T/inspect.log" || fail "inspect: $(tail -3 "$T/inspect.log")"
grep -Eq "^  index .*$MIRROR/mirrored/ws \(mirror\)$" "$T/inspect.out" || fail "inspect -v: $(cat "$T/inspect.out")"
hb export --plain-http --no-cache "$REF" "$T/out.img" >/dev/null || fail "export through the mirror"
assert_same "$T/disk.img" "$T/out.img"
pack=$(hb inspect --json --plain-http "$REF" | python3 -c 'import json,sys; print(json.load(sys.stdin)["packs"][0]["digest"])')
grep -q "GET /v2/mirrored/ws/blobs/$pack" "$T/mirror.log" || fail "the packs did not come through the mirror"

# blockd reads half through the mirror, then the mirror stops.
export HOCUS_BLK_CACHE=$T/cache
start_blockd --nbd-socket "$T/nbd.sock" --control "$T/control.sock" --plain-http --background off \
        --export "ws=$REF"
cat >"$T/read.py" <<'PY'
import sys, nbd
h = nbd.NBD()
h.connect_uri(sys.argv[1])
want = open(sys.argv[2], "rb").read()
off, n = int(sys.argv[3]) << 20, int(sys.argv[4]) << 20
assert h.pread(n, off) == want[off:off + n], "bytes differ"
PY
"$NBD_PYTHON" "$T/read.py" "$(nbd_uri ws)" "$T/disk.img" 0 4 || fail "first half"
reads=$(blockd_stat ws mirror_reads)
[ "$reads" -gt 0 ] || fail "blockd read nothing through the mirror"
assert_eq "$(blockd_stat ws mirror_skips)" 0 "skips before the mirror stopped"
stop_pid "$MIRROR_PID" mirror
nbdcopy "$(nbd_uri ws)" "$T/out2.img" || fail "read after the mirror stopped"
assert_same "$T/disk.img" "$T/out2.img"
assert_eq "$(blockd_stat ws mirror_skips)" 1 "skips after the mirror stopped"
assert_eq "$(blockd_stat ws mirror_reads)" "$reads" "mirror reads after it stopped"
assert_eq "$(grep -c "Mirror $MIRROR/mirrored of $ORIGIN failed" "$T/blockd.log")" 1 "warnings about the stopped mirror"
metrics=$(curl -fsS --unix-socket "$T/control.sock" http://blockd/metrics) || fail "GET /metrics failed"
grep -q '^hocus_blk_export_mirror_skips_total{export="ws"} 1$' <<<"$metrics" || fail "no mirror skips metric"
stop_blockd

# A mirror that serves wrong bytes of a pack: the chunk digests catch them,
# the mirror is put aside, the origin serves.
start_fault_proxy badmirror "$ORIGIN" --fault "flip:0:GET /v2/mirrored/ws/blobs/$pack"
conf "$PROXY/mirrored"
rm -rf "$T/cache"
start_blockd --nbd-socket "$T/nbd.sock" --control "$T/control.sock" --plain-http --background off \
        --export "ws=$REF"
nbdcopy "$(nbd_uri ws)" "$T/out3.img" || fail "read with a mirror serving wrong bytes"
assert_same "$T/disk.img" "$T/out3.img"
grep -q "flip" "$PROXY_LOG" || fail "the bad mirror was never asked (test is vacuous)"
assert_eq "$(blockd_stat ws mirror_skips)" 1 "skips of the bad mirror"
[ "$(blockd_stat ws digest_mismatches)" -ge 1 ] || fail "no digest mismatch counted"
grep -q "Mirror $PROXY/mirrored of $ORIGIN served bytes of $pack that do not match" "$T/blockd.log" ||
        fail "the bad mirror was not named"
stop_blockd
# The same for pull and export (the bulk engine reads the range again).
hb export --plain-http --no-cache "$REF" "$T/out5.img" >/dev/null 2>"$T/export5.log" ||
        fail "export with a mirror serving wrong bytes: $(tail -3 "$T/export5.log")"
assert_same "$T/disk.img" "$T/out5.img"
grep -q "served bytes of $pack that do not match" "$T/export5.log" || fail "export: the bad mirror was not named"

# Whole blobs (the index) verified by the same check: every blob flipped.
start_fault_proxy badmirror2 "$ORIGIN" --fault "flip:0:GET /v2/mirrored/ws/blobs/.*"
conf "$PROXY/mirrored"
hb inspect -v --plain-http "$REF" >"$T/inspect2.out" 2>"$T/inspect2.log" || fail "inspect past a bad mirror"
grep -Eq "^  index .*$ORIGIN/mirrored/ws$" "$T/inspect2.out" || fail "index not from the origin: $(cat "$T/inspect2.out")"
grep -q "served bytes of .* that do not match their digest" "$T/inspect2.log" || fail "no warning about the bad mirror"
hb export --plain-http --no-cache "$REF" "$T/out4.img" >/dev/null 2>"$T/export4.log" || fail "export past a bad mirror"
assert_same "$T/disk.img" "$T/out4.img"

# pull-from-mirror = "digest-only": the manifest by tag comes from the origin.
: >"$PROXY_LOG"
sed -i "s|^location = \"$PROXY/mirrored\"|&\npull-from-mirror = \"digest-only\"|" "$T/registries.conf"
hb inspect --plain-http "$REF" >/dev/null || fail "inspect with a digest-only mirror"
if grep -q "GET /v2/mirrored/ws/manifests/v1" "$PROXY_LOG"; then fail "a digest-only mirror was asked for a tag"; fi

# blocked = true.
expect_fail "is blocked in $T/registries.conf" hb inspect --plain-http "docker://$ORIGIN/forbidden/x:v1"
echo ok
