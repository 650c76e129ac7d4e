#!/usr/bin/env bash
# The Bearer token flow against a token service the test runs: scopes are
# checked (a pull-only user cannot push), tokens are reused while valid,
# renewed when they expire, and renewed on a 401 for a token the client
# still believed valid. No token or password appears in verbose logs.
. "$TESTS_DIR/functions.sh"
requires docker-registry curl python3 openssl

start_token_registry reg --user writer:wpass:pull,push --user reader:rpass:pull
R=docker://$REGISTRY

make_image "$T/a.img" random 24M
timeout 120 "$HOCUS_BLK" push -v "$T/a.img" "$R/tok/img:v1" --plain-http --creds writer:wpass --pack-size 2M \
        >/dev/null 2>"$T/push.log" || fail "push with a push-scoped token: $(tail -3 "$T/push.log")"
grep -q "token writer repository:tok/img:pull,push" "$TOKEN_LOG" || fail "no push-scoped token was asked for"
pushes=$(grep -c '^token ' "$TOKEN_LOG")
requests=$(grep -c 'http: ' "$T/push.log")
echo "push: $requests HTTP requests, $pushes tokens"
[ "$pushes" -le 2 ] || fail "the push fetched $pushes tokens: no reuse"

# A reader pulls; one token serves every request.
: >"$TOKEN_LOG"
timeout 120 "$HOCUS_BLK" pull -v "$R/tok/img:v1" --plain-http --creds reader:rpass --range-size 1M \
        >"$T/pull.out" 2>"$T/pull.log" || fail "pull as reader: $(tail -3 "$T/pull.log")"
assert_eq "$(grep -c '^token ' "$TOKEN_LOG")" 1 "tokens fetched for one pull"
rm -rf "$T/cache"
timeout 120 "$HOCUS_BLK" export "$R/tok/img:v1" "$T/out.img" --plain-http --creds reader:rpass >/dev/null ||
        fail "export as reader"
assert_same "$T/a.img" "$T/out.img"

# Secrets stay out of the logs: passwords and every token issued so far.
for log in "$T/push.log" "$T/pull.log"; do
        if grep -qE 'wpass|rpass' "$log"; then fail "password in $log"; fi
        awk '$1 == "token" { print $4 }' "$T/reg.tokens" | while read -r tok; do
                if grep -qF "${tok##*.}" "$log"; then fail "a token signature in $log"; fi
                if grep -qF "$tok" "$log"; then fail "a token in $log"; fi
        done
done

# Scope check: the reader's token has no push; the push fails clearly.
expect_fail "did not grant|access to .* denied|insufficient_scope|authentication failed" \
        timeout 120 "$HOCUS_BLK" push "$T/a.img" "$R/tok/img:v2" --plain-http --creds reader:rpass
# Wrong password and no credentials at all.
expect_fail "token service .* refused the credentials from --creds" \
        timeout 60 "$HOCUS_BLK" inspect "$R/tok/img:v1" --plain-http --creds reader:wrong
if grep -q wrong "$T/.err"; then fail "the wrong password was echoed"; fi
expect_fail "anonymous access.*--creds USER:PASS" \
        timeout 60 "$HOCUS_BLK" inspect "$R/tok/img:v1" --plain-http

# Expiry: 2-second tokens, a pull slowed to several seconds by a proxy:
# the client renews before they run out.
start_token_registry reg2 --user reader:rpass:pull --jwt-lifetime 3
cp -a "$T/reg/data" "$T/reg2/"
start_fault_proxy proxy "$REGISTRY" --rate 2000000
rm -rf "$T/cache"
: >"$TOKEN_LOG"
R2=docker://$PROXY
start=$SECONDS
timeout 120 "$HOCUS_BLK" pull "$R2/tok/img:v1" --plain-http --creds reader:rpass --jobs 2 --range-size 1M \
        >"$T/slow.out" 2>"$T/slow.log" || fail "slow pull with short tokens: $(tail -3 "$T/slow.log")"
took=$((SECONDS - start))
n=$(grep -c '^token ' "$TOKEN_LOG")
echo "slow pull: $took s, $n tokens"
[ "$took" -ge 4 ] || fail "the slow pull was not slow ($took s): the expiry test is vacuous"
[ "$n" -ge 2 ] || fail "tokens were not renewed over a $took s pull with 3 s tokens"

# Renewal on 401: the service claims 300 s but the JWT expires within
# seconds (docker-registry allows 60 s of clock skew, hence exp = now - 57),
# so the registry refuses tokens the client still trusts.
stop_pid "$PROXY_PID" proxy
start_token_registry reg3 --user reader:rpass:pull --jwt-lifetime -57 --expires-in 300
cp -a "$T/reg/data" "$T/reg3/"
start_fault_proxy proxy3 "$REGISTRY" --rate 2000000
rm -rf "$T/cache"
: >"$TOKEN_LOG"
start=$SECONDS
timeout 120 "$HOCUS_BLK" pull -D registry.auth=1 "docker://$PROXY/tok/img:v1" --plain-http --creds reader:rpass \
        --jobs 2 --range-size 1M >"$T/renew.out" 2>"$T/renew.log" || fail "pull with tokens refused on expiry: $(tail -3 "$T/renew.log")"
took=$((SECONDS - start))
n=$(grep -c '^token ' "$TOKEN_LOG")
refused=$(grep -c ' 401 auth=yes' "$PROXY_LOG" || true)
echo "renewal: $took s, $n tokens, $refused requests refused with 401"
[ "$refused" -ge 1 ] || fail "no token was refused: the renewal test is vacuous ($took s)"
[ "$n" -ge 2 ] || fail "no new token after a 401"
rm -f "$T/out.img"
timeout 120 "$HOCUS_BLK" export "docker://$PROXY/tok/img:v1" "$T/out.img" --plain-http --creds reader:rpass >/dev/null
assert_same "$T/a.img" "$T/out.img"
echo ok
