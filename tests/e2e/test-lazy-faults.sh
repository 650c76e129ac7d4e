#!/usr/bin/env bash
# Faults in the lazy engine, against a real docker-registry:
#   - the registry stops: cached ranges keep being served; an uncached read
#     fails with EIO at --fetch-timeout (it does not hang); the registry
#     comes back (same port, same storage): reads succeed again;
#   - the background stream, cut off by a registry that went away, resumes
#     by itself when it returns and hydrates the export fully;
#   - a proxy flips a byte in a pack's response: that chunk is fetched
#     again and the client sees the right bytes (never the flipped ones).
. "$TESTS_DIR/functions.sh"
requires docker-registry curl nbdcopy python3
requires_nbd_python

CS=262144
truncate -s 16M "$T/disk.img"
head -c 14M /dev/urandom | dd of="$T/disk.img" bs=1M seek=1 conv=notrunc status=none
start_registry reg
REG_PID=$REGISTRY_PID
REF=docker://$REGISTRY/faults/ws:v1
hb push --plain-http --chunk-size 256K --compress none "$T/disk.img" "$REF" >/dev/null

# restart_registry: docker-registry again on the same address and storage.
restart_registry() {
        docker-registry serve "$T/reg.yml" >>"$T/reg.log" 2>&1 &
        REG_PID=$!
        cleanup_fn "kill $REG_PID; wait $REG_PID"
        wait_for 20 curl -fsS "http://$REGISTRY/v2/" || fail "registry did not restart"
}
stop_registry() {
        kill "$REG_PID"
        wait "$REG_PID" 2>/dev/null || true
}

cat >"$T/read.py" <<'PY'
# read.py URI IMAGE OFF LEN [fail]: read, compare; "fail": expect EIO.
import sys, nbd
h = nbd.NBD()
h.connect_uri(sys.argv[1])
off, ln = int(sys.argv[3]), int(sys.argv[4])
expect = open(sys.argv[2], "rb").read()[off:off + ln]
if len(sys.argv) > 5:
    try:
        h.pread(ln, off)
        sys.exit("the read succeeded without a registry")
    except nbd.Error as e:
        assert e.errnum == 5, e    # EIO
else:
    assert h.pread(ln, off) == expect, "wrong bytes"
h.shutdown()
PY
rd() {
        timeout 60 "$NBD_PYTHON" "$T/read.py" "$(nbd_uri ws)" "$T/disk.img" "$@"
}

# --- The registry stops and comes back ---------------------------------------
export HOCUS_BLK_CACHE=$T/cache1
export HOCUS_BLK_HTTP_ATTEMPTS=2
start_blockd --nbd-socket "$T/nbd.sock" --control "$T/control.sock" --plain-http --background off \
        --fetch-timeout 2 --export "ws=$REF"
rd $((1 << 20)) $((2 << 20))                    # cached from now on
stop_registry
rd $((1 << 20)) $((2 << 20))                    # cached: served
rc=0
rd $((8 << 20)) 65536 fail || rc=$?
[ "$rc" = 0 ] || fail "the uncached read did not end in EIO (status $rc; 124: it hung)"
[ "$(blockd_stat ws demand_failures)" -ge 1 ] || fail "the failed read was not counted"
[ "$(blockd_stat ws errors)" -ge 1 ] || fail "the failed request was not counted"
rd $((1 << 20)) $((2 << 20))                    # still served
restart_registry
rd $((8 << 20)) 65536                           # fetched again
rd $((12 << 20)) $((1 << 20))
nbdcopy "$(nbd_uri ws)" "$T/out.img"
assert_same "$T/disk.img" "$T/out.img"
stop_blockd

# --- The background stream resumes by itself ---------------------------------
export HOCUS_BLK_CACHE=$T/cache2
start_blockd --nbd-socket "$T/nbd.sock" --control "$T/control.sock" --plain-http --background 1M \
        --fetch-timeout 2 --export "ws=$REF"
deadline=$((SECONDS + 120))
until [ "$(blockd_stat ws background_requests)" -ge 2 ]; do
        [ "$SECONDS" -lt "$deadline" ] || fail "the stream did not start"
        sleep 0.1
done
stop_registry
deadline=$((SECONDS + 120))
until [ "$(blockd_stat ws fetch_errors)" -ge 1 ]; do
        [ "$SECONDS" -lt "$deadline" ] || fail "no fetch failed with the registry gone"
        sleep 0.1
done
[ "$(blockd_stat ws background)" != done ] || fail "hydrated before the registry went (the test needs it slower)"
restart_registry
wait_hydrated ws
nbdcopy "$(nbd_uri ws)" "$T/out.img"
assert_same "$T/disk.img" "$T/out.img"
stop_blockd

# --- A flipped byte ------------------------------------------------------------
pack=$(hb inspect --plain-http --json "$REF" | python3 -c 'import json,sys; print(json.load(sys.stdin)["packs"][0]["digest"])')
start_fault_proxy proxy "$REGISTRY" --fault "flip:1:GET /v2/faults/ws/blobs/$pack"
export HOCUS_BLK_CACHE=$T/cache3
start_blockd --nbd-socket "$T/nbd.sock" --control "$T/control.sock" --plain-http --background off \
        --fetch-log "$T/fetch.log" --export "ws=docker://$PROXY/faults/ws:v1"
nbdcopy "$(nbd_uri ws)" "$T/out.img"
assert_same "$T/disk.img" "$T/out.img"
grep -q "flip" "$PROXY_LOG" || fail "the proxy flipped nothing: $(cat "$PROXY_LOG")"
[ "$(blockd_stat ws digest_mismatches)" = 1 ] || fail "mismatches: $(blockd_stat ws digest_mismatches)"
bad=$(sed -n 's/.* bad=\([0-9]*\).*/\1/p' "$T/fetch.log")
[ -n "$bad" ] || fail "no bad chunk in the fetch log: $(cat "$T/fetch.log")"
# That chunk was fetched again, after the bad fetch, successfully.
python3 - "$T/fetch.log" "$bad" <<'PY'
import sys
lines = [dict(kv.split("=", 1) for kv in l.split()[1:]) for l in open(sys.argv[1])]
bad = int(sys.argv[2])
def has(l, c):
    for part in l["chunks"].split(","):
        a, _, b = part.partition("-")
        if int(a) <= c <= int(b or a):
            return True
    return False
first = [l for l in lines if "bad" in l]
again = [l for l in lines if "bad" not in l and has(l, bad) and float(l["start"]) >= float(first[0]["end"])]
assert len(first) == 1 and again and again[0]["result"] == "ok", lines
PY
hb cache verify >/dev/null || fail "the store holds a bad entry"
stop_blockd
echo ok
