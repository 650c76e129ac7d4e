#!/usr/bin/env bash
# Demand isolation (issue 13), the scavenger both ways, with blockd
# fetching through bench/linkem from docker-registry.
# First nothing else wants the link (1 Gbit/s, 2 ms RTT, no profile, no
# reads): the stream's bound grows beyond one range, so that it hydrates
# at the link's rate rather than one range at a time; the fetch log shows
# ranges sent with two ranges (512 KiB) or more of background already in
# flight (before its probing, the bound was the throughput it allowed
# itself x the round trip of small requests: about one range).
# Then (100 Mbit/s, 2 ms RTT) a boot profile of one long
# run and the background stream on, reads of chunks far ahead of the
# stream are fetched at once while the stream is in flight, and the fetch
# log and counters show the bounds:
# - profile and background ranges are at most 1 MiB (a demand read
#   overtakes them), where the run would make 4 MiB ones;
# - every background range fit the scavenger's bound when it was sent,
#   (cut to what the bound had left, one chunk at least), so that the
#   background bytes in flight when a demand range was sent (summed from
#   the log's intervals) were within the bound of the last background
#   range then in flight plus a chunk, and at most 2 MiB (half a range before:
#   10 ms of this link, a range and a chunk are 1.4 MiB at most);
# - the demand ranges never waited for a connection: fewer requests were
#   in flight than the registry's 16 connections (curl does not pipeline
#   HTTP/1.1, so each went out on a connection with nothing outstanding);
# - the scavenger shrank (held to one range) while demand was recent: the
#   background ranges sent while a demand range was in flight or had
#   ended less than half a second before (demand is recent for 1 s) had a
#   bound of one range (256 KiB: on this link a range is its least).
# Orders, counts and bytes only; the reads are bounded in number.
. "$TESTS_DIR/functions.sh"
requires docker-registry curl
requires_nbd_python
LINKEM=${LINKEM:-$BUILD_DIR/bench/linkem}
[ -x "$LINKEM" ] || fail "linkem is not built: $LINKEM"

CS=262144
head -c 128M /dev/urandom >"$T/disk.img"
start_registry reg
hb push --plain-http --chunk-size 256K --compress none "$T/disk.img" "docker://$REGISTRY/scav/ws:v1" >/dev/null
"$LINKEM" --connect "$REGISTRY" --delay 1ms --rate 100mbit --port-file "$T/linkem.port" \
        >/dev/null 2>"$T/linkem.log" &
LK_PID=$!
cleanup_fn "kill $LK_PID; wait $LK_PID"
wait_for 10 test -s "$T/linkem.port" || fail "linkem did not start: $(cat "$T/linkem.log")"
REF=docker://127.0.0.1:$(cat "$T/linkem.port")/scav/ws:v1

# Nothing else wants the link: the stream alone, to the end.
"$LINKEM" --connect "$REGISTRY" --delay 1ms --rate 1gbit --port-file "$T/linkem-fast.port" \
        >/dev/null 2>"$T/linkem-fast.log" &
LKF_PID=$!
cleanup_fn "kill $LKF_PID; wait $LKF_PID"
wait_for 10 test -s "$T/linkem-fast.port" || fail "linkem did not start: $(cat "$T/linkem-fast.log")"
HOCUS_BLK_CACHE=$T/cache-idle start_blockd --nbd-socket "$T/nbd-idle.sock" --control "$T/control-idle.sock" \
        --plain-http --fetch-log "$T/fetch-idle.log" \
        --export "ws=docker://127.0.0.1:$(cat "$T/linkem-fast.port")/scav/ws:v1"
bg_done() { [ "$(blockd_stat ws background "$T/control-idle.sock")" = done ]; }
wait_for 300 bg_done || fail "the stream did not finish: $(blockd_stat ws background "$T/control-idle.sock")"
stop_blockd
python3 - "$T/fetch-idle.log" <<'PY'
import sys
R = 262144
lines = [dict(kv.split("=", 1) for kv in l.split()[1:]) for l in open(sys.argv[1])]
bg = [l for l in lines if l["class"] == "background"]
assert bg and len(bg) == len(lines), "not the stream alone: %d of %d requests" % (len(bg), len(lines))
for l in bg:
    assert int(l["bg_ahead"]) < int(l["bg_budget"]), "a background range sent with its bound reached: %s" % l
deep = [l for l in bg if int(l["bg_ahead"]) >= 2 * R]
print("stream alone: %d ranges, %d sent with 512 KiB or more ahead, bound up to %d" % (
    len(bg), len(deep), max(int(l["bg_budget"]) for l in bg)))
assert len(deep) >= 5, "the stream kept less than three ranges in flight with the link to itself: " \
    "%d ranges sent with two ranges ahead, bound up to %d" % (len(deep), max(int(l["bg_budget"]) for l in bg))
PY

# The profile: chunks 20-59, one run of 10 MiB in one pack.
write_profile "$T/boot.prf" 262144 20:40

export HOCUS_BLK_CACHE=$T/cache
start_blockd --nbd-socket "$T/nbd.sock" --control "$T/control.sock" --plain-http \
        --fetch-log "$T/fetch.log" --export "ws=$REF,profile=$T/boot.prf"
wait_for 120 grep -q ' class=background ' "$T/fetch.log" || fail "the background stream did not start: $(cat "$T/fetch.log")"

# Reads of chunks far ahead of the stream (from the last one down), one
# at a time, until the scavenger has shrunk for them and 4 demand ranges
# went out: 64 at most.
cat >"$T/read.py" <<'PY'
import json, subprocess, sys, nbd
uri, img, hb, control = sys.argv[1:5]
cs = 262144
h = nbd.NBD()
h.connect_uri(uri)
data = open(img, "rb")
for n in range(64):
    k = 511 - n
    data.seek(k * cs + 4096)
    assert h.pread(4096, k * cs + 4096) == data.read(4096), "chunk %d read wrong bytes" % k
    full = json.loads(subprocess.run([hb, "stats", "--control", control, "--json"], check=True,
                                     capture_output=True, text=True).stdout)
    st = full["fetch"]
    # Readahead may fetch several of these chunks in one demand range.
    if st["bg_shrinks"] > 0 and full["exports"][0]["demand_requests"] >= 4:
        break
print("%d reads, fetch counters %s" % (n + 1, {k: st[k] for k in ("bg_shrinks", "bg_budget", "demand_bg_ahead_max", "delays")}))
assert st["bg_shrinks"] > 0, "the scavenger never shrank while demand was recent: %s" % st
PY
$NBD_PYTHON "$T/read.py" "$(nbd_uri ws)" "$T/disk.img" "$HOCUS_BLK" "$T/control.sock" || fail "the reads failed"
[ "$(blockd_stat ws background)" = running ] || fail "the stream ended before the reads did: the test shows nothing"
stop_blockd
fetch_log_check "$T/fetch.log" 511

python3 - "$T/fetch.log" <<'PY'
import sys
MIB = 1 << 20
lines = [dict(kv.split("=", 1) for kv in l.split()[1:]) for l in open(sys.argv[1])]
for l in lines:
    for k in ("bytes", "bg_ahead", "bg_budget"):
        l[k] = int(l[k])
    l["start"], l["end"] = float(l["start"]), float(l["end"])
prof = [l for l in lines if l["class"] == "profile"]
bg = [l for l in lines if l["class"] == "background"]
demand = [l for l in lines if l["class"] == "demand" and l["result"] == "ok"]
assert len(prof) >= 10 and max(l["bytes"] for l in prof) <= MIB, \
    "profile ranges above 1 MiB or too few: %s" % [l["bytes"] for l in prof]
assert max(l["bytes"] for l in bg) <= MIB, "a background range above 1 MiB"
# A range starts while its class is below the bound, and is cut to what
# the bound has left, one chunk at least.
for l in bg:
    assert l["bg_ahead"] < l["bg_budget"], "a background range sent with its bound reached: %s" % l
    assert l["bg_ahead"] + l["bytes"] <= l["bg_budget"] or l["bytes"] <= 262144, "a background range beyond its bound: %s" % l
assert len(demand) >= 4, "fewer than 4 demand fetches"
for d in demand:
    live = [l for l in lines if l is not d and l["start"] < d["start"] < l["end"]]
    assert len(live) + 1 <= 16, "a demand range waited for a connection: %d requests in flight" % (len(live) + 1)
    live_bg = [l for l in live if l["class"] == "background"]
    ahead = sum(l["bytes"] for l in live_bg)
    assert ahead <= d["bg_ahead"] or not live_bg, (ahead, d)
    if live_bg:
        last = max(live_bg, key=lambda l: l["start"])
        assert ahead <= last["bg_budget"] + 262144, "background in flight beyond its bound: %d > %d" % (ahead, last["bg_budget"])
    assert d["bg_ahead"] <= 2 * MIB, "%d background bytes in flight when a demand range went out" % d["bg_ahead"]
recent = [l for l in bg if any(d["start"] <= l["start"] <= d["end"] + 0.5 for d in demand)]
assert recent, "no background range went out while demand was recent: the test shows nothing"
for l in recent:
    assert l["bg_budget"] == 262144, "a background range sent while demand was recent with a bound of %d: %s" % (
        l["bg_budget"], l)
print("profile ranges %d (largest %d), background %d (largest %d, %d while demand was recent), demand %d: "
      "background in flight at their start at most %d bytes" % (
    len(prof), max(l["bytes"] for l in prof), len(bg), max(l["bytes"] for l in bg), len(recent), len(demand),
    max(d["bg_ahead"] for d in demand)))
PY
echo ok
