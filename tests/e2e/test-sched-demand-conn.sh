#!/usr/bin/env bash
# Demand reads on connections that carry nothing else (issue 13): blockd
# fetches from docker-registry over TLS, where HTTP/2 multiplexes every
# request of a connection pool onto one TCP connection, through
# bench/linkem (100 Mbit/s, 2 ms RTT), with a boot profile and the
# background stream on. A bounded series of reads of chunks far ahead of
# the stream runs while background ranges are in flight. The fetch log
# (one line per range, with the local port of its connection) shows:
# - HTTP/2 was negotiated (else one connection per request would pass
#   the test by itself);
# - no demand range went out on a connection (local port) that a profile
#   or background range used; every demand range on a demand connection;
# - demand ranges were fetched while background ranges were in flight;
# - the demand connection was the one the attach opened (one demand
#   connection in all: the first read paid no handshake).
# The bytes read are the image's. Orders, counts and bytes only.
. "$TESTS_DIR/functions.sh"
requires docker-registry curl htpasswd openssl
requires_nbd_python
LINKEM=${LINKEM:-$BUILD_DIR/bench/linkem}
[ -x "$LINKEM" ] || fail "linkem is not built: $LINKEM"

CS=262144
head -c 128M /dev/urandom >"$T/disk.img"
start_tls_registry reg hocus dem4nd-pa55
AUTH=(--ca-file "$CA_FILE" --creds hocus:dem4nd-pa55)
hb push "${AUTH[@]}" --chunk-size 256K --compress none "$T/disk.img" "docker://$REGISTRY/dc/ws:v1" >/dev/null
"$LINKEM" --connect "$REGISTRY" --delay 1ms --rate 100mbit --port-file "$T/linkem.port" \
        >/dev/null 2>"$T/linkem.log" &
LK_PID=$!
cleanup_fn "kill $LK_PID; wait $LK_PID"
wait_for 10 test -s "$T/linkem.port" || fail "linkem did not start: $(cat "$T/linkem.log")"
REF=docker://127.0.0.1:$(cat "$T/linkem.port")/dc/ws:v1

# The profile: chunks 20-59, one run of 10 MiB in one pack.
write_profile "$T/boot.prf" 262144 20:40

export HOCUS_BLK_CACHE=$T/cache
start_blockd --nbd-socket "$T/nbd.sock" --control "$T/control.sock" "${AUTH[@]}" \
        --fetch-log "$T/fetch.log" --export "ws=$REF,profile=$T/boot.prf"
wait_for 120 grep -q ' class=background ' "$T/fetch.log" || fail "the background stream did not start: $(cat "$T/fetch.log")"

# 16 reads of chunks far ahead of the stream (from the last one down),
# one at a time, each checked against the image, and each sent once
# background ranges are in flight again (the stream yields to demand, so
# it has to come back between reads): polls bounded in number.
cat >"$T/read.py" <<'PY'
import json, subprocess, sys, nbd
uri, img, hb, control = sys.argv[1:5]
cs = 262144
h = nbd.NBD()
h.connect_uri(uri)
data = open(img, "rb")
def bg_inflight():
    st = json.loads(subprocess.run([hb, "stats", "--control", control, "--json"], check=True,
                                   capture_output=True, text=True).stdout)["fetch"]
    return st["inflight_background"]
for n in range(16):
    for _ in range(500):
        if bg_inflight():
            break
    k = 511 - 2 * n
    data.seek(k * cs + 4096)
    assert h.pread(8192, k * cs + 4096) == data.read(8192), "chunk %d read wrong bytes" % k
PY
$NBD_PYTHON "$T/read.py" "$(nbd_uri ws)" "$T/disk.img" "$HOCUS_BLK" "$T/control.sock" || fail "the reads failed"
[ "$(blockd_stat ws background)" = running ] || fail "the stream ended before the reads did: the test shows nothing"
conns=$(blockd_stat ws http_connections)
demand_conns=$(blockd_stat ws http_demand_connections)
stop_blockd
fetch_log_check "$T/fetch.log" 511

python3 - "$T/fetch.log" "$conns" "$demand_conns" <<'PY'
import sys
conns, demand_conns = int(sys.argv[2]), int(sys.argv[3])
lines = [dict(kv.split("=", 1) for kv in l.split()[1:]) for l in open(sys.argv[1])]
ok = [l for l in lines if l["result"] == "ok"]
for l in ok:
    assert "conn" in l, "a range without its connection in the fetch log: %s" % l
    l["lane"], l["port"] = l["conn"].split(":")
    l["start"], l["end"] = float(l["start"]), float(l["end"])
demand = [l for l in ok if l["class"] == "demand"]
other = [l for l in ok if l["class"] != "demand"]
bg = [l for l in ok if l["class"] == "background"]
assert len(demand) >= 4 and bg and any(l["class"] == "profile" for l in ok), \
    "too few ranges: %d demand, %d background" % (len(demand), len(bg))
protos = {l["proto"] for l in ok}
assert protos == {"HTTP/2"}, "HTTP/2 was not negotiated for every range: %s" % protos
dports = {l["port"] for l in demand}
oports = {l["port"] for l in other}
assert not dports & oports, "demand ranges used connections that prefetches used: ports %s" % sorted(dports & oports)
for l in demand:
    assert l["lane"] == "demand", "a demand range on a shared connection: %s" % l
for l in other:
    assert l["lane"] == "shared", "a %s range on a demand connection: %s" % (l["class"], l)
# Not vacuous: demand ranges went out while background ones were in flight.
overlapped = [d for d in demand if any(b["start"] < d["start"] < b["end"] for b in bg)]
assert len(overlapped) >= 4, "only %d demand ranges overlapped background ones" % len(overlapped)
# The one demand connection is the attach's (it fetched the manifest and
# index): no demand read paid a new connection.
assert len(dports) == 1 and demand_conns == 1, "demand connections: %d (ports %s)" % (demand_conns, sorted(dports))
assert conns >= demand_conns + len(oports), (conns, demand_conns, oports)
print("HTTP/2; %d demand ranges on port %s (%d while background was in flight), %d prefetch ranges on ports %s; "
      "connections %d, demand %d" % (len(demand), min(dports), len(overlapped), len(other), sorted(oports),
                                     conns, demand_conns))
PY
echo ok
