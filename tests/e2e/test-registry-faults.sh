#!/usr/bin/env bash
# Transient faults from a proxy in front of the registry: 500, 503, 429
# (Retry-After), resets, truncated and stalled bodies are retried and the
# image still comes out byte-identical; a server that ignores Range is
# read through; redirects to a storage backend never carry the registry's
# Authorization header; a fault that does not go away fails in bounded
# time with a clear message.
. "$TESTS_DIR/functions.sh"
requires docker-registry curl python3

start_registry reg
R=docker://$REGISTRY
make_image "$T/a.img" text 16M
head -c 8M /dev/urandom >>"$T/a.img"
timeout 120 "$HOCUS_BLK" push "$T/a.img" "$R/f/img:v1" --plain-http --pack-size 2M >/dev/null || fail "push"

check_pull() {
        local name=$1
        shift
        rm -rf "$T/cache" "$T/out.img"
        timeout 120 "$@" >"$T/$name.out" 2>"$T/$name.err" || fail "$name: $(tail -3 "$T/$name.err")"
        timeout 120 "$HOCUS_BLK" export "$R/f/img:v1" "$T/out.img" --plain-http >"$T/$name.export" ||
                fail "$name: export"
        grep -q "fetched 0 B" "$T/$name.export" || fail "$name: pull left chunks behind"
        assert_same "$T/a.img" "$T/out.img"
}

start_fault_proxy proxy "$REGISTRY" --fault 500:2:/blobs/ --fault 503:1:/manifests/ --fault 429:1:/blobs/ \
        --fault reset:2:/blobs/ --fault truncate:1:/blobs/
check_pull faults env HOCUS_BLK_HTTP_ATTEMPTS=8 "$HOCUS_BLK" pull "docker://$PROXY/f/img:v1" --plain-http --range-size 1M
cat "$T/faults.out"
retries=$(sed -n 's/.*requests (\([0-9]*\) retries).*/\1/p' "$T/faults.out")
[ "${retries:-0}" -ge 5 ] || fail "expected at least 5 retries (curl itself retries a reset on a reused connection), saw '${retries}'"
for kind in "500 auth=no fault" "503 auth=no fault" "429 auth=no fault" "reset" "truncate"; do
        grep -q "$kind" "$PROXY_LOG" || fail "fault '$kind' was not injected"
done
stop_pid "$PROXY_PID" proxy

# A stalled body (silent for an hour): the stall timeout aborts it and the
# retry succeeds, so the pull ends (check_pull's generous timeout would
# catch a hang), no sooner than the 2 s the stall timeout waits.
start_fault_proxy stall "$REGISTRY" --fault stall:1:/blobs/
start=$SECONDS
check_pull stall env HOCUS_BLK_HTTP_STALL_TIMEOUT=2 "$HOCUS_BLK" pull "docker://$PROXY/f/img:v1" --plain-http
[ $((SECONDS - start)) -ge 2 ] || fail "the stall was cut short: $((SECONDS - start)) s"
grep -q "(1 retries)" "$T/stall.out" || fail "the stall was not retried: $(cat "$T/stall.out")"
stop_pid "$PROXY_PID" stall

# A server that ignores Range and answers 200: read through to the offset.
start_fault_proxy norange "$REGISTRY" --ignore-range /blobs/
check_pull norange "$HOCUS_BLK" pull "docker://$PROXY/f/img:v1" --plain-http
grep -q "GET /v2/f/img/blobs/sha256:[0-9a-f]* 200" "$PROXY_LOG" || fail "no 200 answer to a range (test is vacuous)"
stop_pid "$PROXY_PID" norange

# A fault that stays: the pull gives up after a count of attempts (its
# message says so; the timeout only catches a hang), with the status.
start_fault_proxy broken "$REGISTRY" --fault 500:0:/blobs/
rm -rf "$T/cache"
expect_fail "answered HTTP 500 \(after 3 attempts\)" env HOCUS_BLK_HTTP_ATTEMPTS=3 \
        timeout 120 "$HOCUS_BLK" pull "docker://$PROXY/f/img:v1" --plain-http
stop_pid "$PROXY_PID" broken

# Redirects to a storage backend: behind a Bearer registry, blob GETs are
# sent to another port; Authorization must not follow them there.
start_token_registry tokreg --user u:p:pull,push
start_fault_proxy redir "$REGISTRY" --redirect-blobs
timeout 120 "$HOCUS_BLK" push "$T/a.img" "docker://$PROXY/f/img:v1" --plain-http --creds u:p --pack-size 2M \
        >/dev/null || fail "push through the redirecting proxy"
rm -rf "$T/cache" "$T/out.img"
timeout 120 "$HOCUS_BLK" export "docker://$PROXY/f/img:v1" "$T/out.img" --plain-http --creds u:p >/dev/null ||
        fail "export through redirects"
assert_same "$T/a.img" "$T/out.img"
grep -q "307 auth=yes redirect" "$PROXY_LOG" || fail "no redirect happened (test is vacuous)"
grep -q "^storage GET" "$PROXY_LOG" || fail "the storage backend saw no request"
if grep -q "^storage .* auth=yes" "$PROXY_LOG"; then fail "Authorization was sent to the storage backend"; fi
echo ok
