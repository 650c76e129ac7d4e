#!/usr/bin/env bash
# A cold attach does not wait for GET /v2/ (issue 13): with the registry's
# answer to the ping held back (fault-proxy's hold, released by the test),
# blockd attaches (the manifest and index requests go out beside the
# ping), becomes ready, and a read returns the image's bytes while the
# ping is still unanswered. The manifest and index are kept locally
# without an fsync on the way (synced after the attach). Once the ping is
# answered the export says online. Then a registry that is not there: the
# export fails with the ping's sentence, as when the ping went first.
# Orders and counts, not times.
. "$TESTS_DIR/functions.sh"
requires docker-registry curl
requires_nbd_python

CS=262144
head -c 4M /dev/urandom >"$T/disk.img"
start_registry reg
hb push --plain-http --chunk-size 256K --compress none "$T/disk.img" "docker://$REGISTRY/fp/ws:v1" >/dev/null

# Every GET /v2/ is held until $T/release exists.
start_fault_proxy proxy "$REGISTRY" --release "$T/release" --fault 'hold:0:^GET /v2/$'
export HOCUS_BLK_CACHE=$T/cache
start_blockd --nbd-socket "$T/nbd.sock" --control "$T/control.sock" --plain-http \
        --export "ws=docker://$PROXY/fp/ws:v1"
grep -q "^GET /v2/ - held$" "$PROXY_LOG" || fail "no ping held: $(cat "$PROXY_LOG")"

$NBD_PYTHON "$HELPERS_DIR/fetchlog.py" read "$(nbd_uri ws)" "$T/disk.img" 262144 5 || fail "the first read failed"

# The ping is still held: nothing answered it, yet the manifest, the
# index and the read's range were.
grep -Eq "^GET /v2/ [0-9]{3} " "$PROXY_LOG" && fail "the ping was answered before the release: $(cat "$PROXY_LOG")"
grep -Eq "^GET /v2/fp/ws/manifests/v1 200 " "$PROXY_LOG" || fail "no manifest request: $(cat "$PROXY_LOG")"
[ "$(grep -Ec '^GET /v2/fp/ws/blobs/.* 20[06] ' "$PROXY_LOG")" -ge 2 ] ||
        fail "blob requests (index and the read): $(cat "$PROXY_LOG")"
# Kept locally, not synced on the way to the first byte.
[ "$(grep -c "meta: stored .*, not yet synced)" "$T/blockd.log")" = 2 ] ||
        fail "the manifest and index were not kept unsynced: $(grep "meta:" "$T/blockd.log")"
[ "$(find "$T/cache/meta" -type f | wc -l)" -ge 2 ] || fail "no local metadata"

# Released: the ping is answered and the export is online.
touch "$T/release"
hb ls --control "$T/control.sock" | grep -q "^ws .*online" || fail "ls after the release: $(hb ls --control "$T/control.sock")"
grep -Eq "^GET /v2/ 200 " "$PROXY_LOG" || fail "the ping was not answered: $(cat "$PROXY_LOG")"
grep -q "unreachable" "$T/blockd.log" && fail "the registry was reported unreachable: $(grep unreachable "$T/blockd.log")"
stop_blockd

# Nothing listening: the export fails with the ping's sentence.
port=$(free_port)
start_blockd --nbd-socket "$T/nbd2.sock" --control "$T/control2.sock" --plain-http \
        --export "gone=docker://127.0.0.1:$port/fp/ws:v1"
hb ls --control "$T/control2.sock" | grep -q "connection refused; is the registry running" ||
        fail "unclear reason: $(hb ls --control "$T/control2.sock")"
grep -Eq "after [0-9]+ attempts" "$T/blockd.log" && fail "requests were retried with the registry down: $(grep attempts "$T/blockd.log")"
stop_blockd
echo ok
