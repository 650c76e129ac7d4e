#!/usr/bin/env bash
# The first read of a cold export does not wait for the boot-profile
# lookup (issue 13): with the registry's answer to the lookup held back
# (fault-proxy's hold, released by the test), blockd becomes ready and a
# read returns the image's bytes while the lookup is still unanswered;
# the export counts it (profile_lookup on, nothing prefetched, no
# background fetch yet). Before that read the registry saw one GET /v2/,
# one manifest and one index request, and the read's own range. Once the
# lookup is answered, the published profile is prefetched and the
# background stream starts after it. Orders and counts, not times.
. "$TESTS_DIR/functions.sh"
requires docker-registry curl
requires_nbd_python

CS=262144
head -c 8M /dev/urandom >"$T/disk.img"
start_registry reg
hb push --plain-http --chunk-size 256K --compress none "$T/disk.img" "docker://$REGISTRY/fr/ws:v1" >/dev/null
# A published profile: chunks 4-5.
write_profile "$T/boot.prf" 262144 4:2
hb profile push --plain-http "docker://$REGISTRY/fr/ws:v1" "$T/boot.prf" >/dev/null

# Every lookup request (the referrers API, then its tag fallback) is held
# until $T/release exists.
start_fault_proxy proxy "$REGISTRY" --release "$T/release" \
        --fault "hold:0:GET /v2/fr/ws/referrers/" --fault "hold:0:GET /v2/fr/ws/manifests/sha256-"
REF=docker://$PROXY/fr/ws:v1
export HOCUS_BLK_CACHE=$T/cache
start_blockd --nbd-socket "$T/nbd.sock" --control "$T/control.sock" --plain-http --fetch-log "$T/fetch.log" \
        --export "ws=$REF"
wait_for 60 grep -q " held$" "$PROXY_LOG" || fail "blockd made no lookup request: $(cat "$PROXY_LOG")"

$NBD_PYTHON "$HELPERS_DIR/fetchlog.py" read "$(nbd_uri ws)" "$T/disk.img" 262144 20 || fail "the first read failed"

# The lookup is still held: nothing of it answered, nothing prefetched.
[ "$(grep -c " held$" "$PROXY_LOG")" = 1 ] || fail "the lookup went on: $(cat "$PROXY_LOG")"
grep -E "(referrers|manifests/sha256-).* [0-9]{3} " "$PROXY_LOG" && fail "a lookup request was answered before the release"
grep -E "boot profile" "$T/blockd.log" && fail "the lookup ended (timed out?) before the read"
[ "$(blockd_stat ws profile_lookup)" = True ] || fail "the export does not say its lookup runs"
[ "$(blockd_stat ws prefetch_queued)" = 0 ] || fail "a prefetch started before the lookup was answered"
grep -q " class=demand export=ws chunks=20" "$T/fetch.log" || fail "no demand fetch of chunk 20: $(cat "$T/fetch.log")"
grep -Eq " class=(profile|background) " "$T/fetch.log" && fail "profile or background fetches before the lookup ended"
# The requests before the first read: one ping, the manifest, the index,
# the read's range (and the held lookup).
count() { grep -Ec "$1" "$PROXY_LOG"; }
[ "$(count '^GET /v2/ ')" = 1 ] || fail "$(count '^GET /v2/ ') GET /v2/ requests: $(cat "$PROXY_LOG")"
[ "$(count '^GET /v2/fr/ws/manifests/v1 ')" = 1 ] || fail "manifest requests: $(cat "$PROXY_LOG")"
[ "$(count '^GET /v2/fr/ws/blobs/')" -ge 2 ] || fail "blob requests (index and the read): $(cat "$PROXY_LOG")"
grep -Ev '^GET /v2/ |^GET /v2/fr/ws/manifests/v1 |^GET /v2/fr/ws/blobs/| held$' "$PROXY_LOG" &&
        fail "other requests before the release"

# Released: the lookup ends, the profile is prefetched, then the stream.
touch "$T/release"
looked_up() { [ "$(blockd_stat ws profile_lookup)" = False ]; }
wait_for 60 looked_up || fail "the lookup did not end: $(tail -3 "$T/blockd.log")"
grep -q "Export ws: boot profile from referrer sha256:" "$T/blockd.log" || fail "no profile found: $(grep -i profile "$T/blockd.log")"
wait_for 60 grep -q " class=background " "$T/fetch.log" || fail "the background stream did not start"
python3 - "$T/fetch.log" <<'PY'
import sys
lines = [dict(kv.split("=", 1) for kv in l.split()[1:]) for l in open(sys.argv[1])]
demand = [l for l in lines if l["class"] == "demand"]
prof = [l for l in lines if l["class"] == "profile"]
bg = [l for l in lines if l["class"] == "background"]
assert [l["chunks"] for l in prof] == ["4-5"], prof
assert float(demand[0]["start"]) < min(float(l["start"]) for l in prof), "a profile fetch before the read's"
assert max(float(l["start"]) for l in prof) < min(float(l["start"]) for l in bg), "the stream before the profile"
PY
python3 -c 'import json, sys
e = json.load(sys.stdin)["exports"][0]
assert e["attach_s"] > 0 and e["profile_lookup_s"] > 0 and e["first_read_s"] > 0, e
assert e["attach_connect_s"] + e["attach_manifest_s"] + e["attach_index_s"] <= e["attach_s"], e' \
        < <(hb stats --control "$T/control.sock" --json ws) || fail "the attach breakdown is missing"
stop_blockd
echo ok
