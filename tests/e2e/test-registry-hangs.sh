#!/usr/bin/env bash
# Registries that hang or cut replies short, at attach time: a server that
# accepts connections and never answers makes an attach fail within the
# fetch timeout (it used to block ~150 s, logging nothing), after saying
# what it waits for, with an error naming the host and the timeout; a
# registry whose blob replies are cut short is reported as such ("closed
# the reply after N of M bytes"), at attach time and when a read fails.
. "$TESTS_DIR/functions.sh"
requires docker-registry nbdcopy

# --- A silent server.
python3 "$TESTS_DIR/helpers/silent-server.py" --port-file "$T/silent.port" >"$T/silent.out" 2>&1 &
silent_pid=$!
cleanup_fn "kill $silent_pid; wait $silent_pid"
wait_file 10 "$T/silent.port" || fail "silent server did not start: $(cat "$T/silent.out")"
SILENT=127.0.0.1:$(cat "$T/silent.port")

export HOCUS_BLK_CACHE=$T/cache
start_blockd --nbd-socket "$T/nbd.sock" --control "$T/control.sock" --plain-http --fetch-timeout 3 \
        --state-dir "$T/state"
# timeout: only a hang detector (the old attach took ~150 s); the bound
# that matters is the fetch timeout the message names.
expect_fail "$SILENT did not answer GET /v2/ within 3 s" \
        timeout 120 "$HOCUS_BLK" attach --control "$T/control.sock" ws "docker://$SILENT/hang/ws:v1"
grep -q "Waiting for $SILENT (GET /v2/)" "$T/blockd.log" || fail "nothing logged while waiting: $(tail -n 20 "$T/blockd.log")"
hb ls --control "$T/control.sock" | grep -q "^ws " && fail "the failed attach left an export"

# --- A registry whose blob replies are cut short, behind the fault proxy.
head -c 3M /dev/urandom >"$T/disk.img"
start_registry reg
hb push --plain-http --chunk-size 256K "$T/disk.img" "docker://$REGISTRY/cut/ws:v1" >/dev/null
start_fault_proxy cut "$REGISTRY" --fault 'truncate:0:GET /v2/cut/ws/blobs/.*'
expect_fail "$PROXY: the registry closed the reply to blob sha256:[0-9a-f]+ .* after [0-9]+ of [0-9]+ bytes" \
        timeout 120 "$HOCUS_BLK" attach --control "$T/control.sock" cut "docker://$PROXY/cut/ws:v1"
grep -q "truncate" "$PROXY_LOG" || fail "the proxy cut nothing: $(cat "$PROXY_LOG")"
grep -q "did not deliver it within the fetch timeout" "$T/blockd.log" && fail "a cut reply reported as a timeout"

# Only the pack's replies cut short: the attach works, a read fails within
# the fetch timeout and says what the last attempt met.
PACK=$(hb inspect --plain-http --json "docker://$REGISTRY/cut/ws:v1" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["packs"][0]["digest"])')
start_fault_proxy cutpack "$REGISTRY" --fault "truncate:0:GET /v2/cut/ws/blobs/$PACK"
hb attach --control "$T/control.sock" pk "docker://$PROXY/cut/ws:v1" >/dev/null
timeout 120 nbdcopy "$(nbd_uri pk)" "$T/out.img" 2>/dev/null && fail "a read through cut replies succeeded"
grep -q "Export pk: read of chunk .*within the fetch timeout; the last attempt: $PROXY: the registry closed the reply to blob $PACK .* after [0-9]* of [0-9]* bytes" \
        "$T/blockd.log" || fail "read failure not explained: $(grep "Export pk" "$T/blockd.log" | tail -n 3)"
stop_blockd
echo ok
