#!/usr/bin/env bash
# A registry with TLS from a test CA and htpasswd Basic auth: works with
# --ca-file and credentials from every supported place; clear failures for
# a wrong password, no credentials, an untrusted certificate, and the
# wrong protocol. No secret ever appears in a verbose log.
. "$TESTS_DIR/functions.sh"
requires docker-registry curl htpasswd openssl

PASS='s3cr3t-Pa55word'
start_tls_registry reg alice "$PASS"
R=docker://$REGISTRY
export HOME=$T/home XDG_RUNTIME_DIR=$T/run
unset REGISTRY_AUTH_FILE DOCKER_CONFIG XDG_CONFIG_HOME
mkdir -p "$HOME" "$XDG_RUNTIME_DIR"

make_image "$T/a.img" random 6M
timeout 120 "$HOCUS_BLK" push -v "$T/a.img" "$R/tls/img:v1" --ca-file "$CA_FILE" --creds "alice:$PASS" \
        >"$T/push.out" 2>"$T/push.log" || fail "push over TLS with Basic auth: $(tail -3 "$T/push.log")"
timeout 120 "$HOCUS_BLK" export -v "$R/tls/img:v1" "$T/out.img" --ca-file "$CA_FILE" --creds "alice:$PASS" \
        >/dev/null 2>"$T/export.log" || fail "export over TLS"
assert_same "$T/a.img" "$T/out.img"
rm -f "$T/out.img"

# Nothing secret in verbose logs: neither the password nor its base64.
b64=$(printf 'alice:%s' "$PASS" | base64)
for f in "$T/push.log" "$T/export.log" "$T/push.out"; do
        if grep -qF "$PASS" "$f"; then fail "password in $f"; fi
        if grep -qF "$b64" "$f"; then fail "base64 credentials in $f"; fi
done
grep -q "http: GET" "$T/export.log" || fail "the verbose log has no HTTP lines (test is vacuous)"

expect_fail "wrong username or password" timeout 60 "$HOCUS_BLK" inspect "$R/tls/img:v1" --ca-file "$CA_FILE" --creds alice:nope
if grep -qF nope "$T/.err"; then fail "wrong password echoed"; fi
expect_fail "requires authentication: pass --creds" timeout 60 "$HOCUS_BLK" inspect "$R/tls/img:v1" --ca-file "$CA_FILE"
expect_fail "certificate of 127.0.0.1:[0-9]+ is not trusted.*--ca-file" \
        timeout 60 "$HOCUS_BLK" inspect "$R/tls/img:v1" --creds "alice:$PASS"
expect_fail "speaks HTTPS, not plain HTTP: drop --plain-http" \
        timeout 60 "$HOCUS_BLK" inspect "$R/tls/img:v1" --plain-http --creds "alice:$PASS"

# Credentials from files. containers auth.json in $XDG_RUNTIME_DIR:
mkdir -p "$XDG_RUNTIME_DIR/containers"
printf '{"auths":{"%s":{"auth":"%s"}}}\n' "$REGISTRY" "$b64" >"$XDG_RUNTIME_DIR/containers/auth.json"
timeout 60 "$HOCUS_BLK" inspect "$R/tls/img:v1" --ca-file "$CA_FILE" >/dev/null || fail "auth.json in XDG_RUNTIME_DIR"
rm -r "$XDG_RUNTIME_DIR/containers"
# ~/.config/containers/auth.json with a repository-scoped key winning over the host key:
mkdir -p "$HOME/.config/containers"
printf '{"auths":{"%s":{"auth":"%s"},"%s/tls":{"auth":"%s"}}}\n' "$REGISTRY" "$(printf 'alice:bad' | base64)" \
        "$REGISTRY" "$b64" >"$HOME/.config/containers/auth.json"
timeout 60 "$HOCUS_BLK" inspect "$R/tls/img:v1" --ca-file "$CA_FILE" >/dev/null || fail "namespace-scoped auth.json key"
rm -r "$HOME/.config/containers"
# --authfile and $REGISTRY_AUTH_FILE:
printf '{"auths":{"https://%s/v1/":{"auth":"%s"}}}\n' "$REGISTRY" "$b64" >"$T/explicit.json"
timeout 60 "$HOCUS_BLK" inspect "$R/tls/img:v1" --ca-file "$CA_FILE" --authfile "$T/explicit.json" >/dev/null ||
        fail "--authfile with a legacy URL key"
REGISTRY_AUTH_FILE=$T/explicit.json timeout 60 "$HOCUS_BLK" inspect "$R/tls/img:v1" --ca-file "$CA_FILE" >/dev/null ||
        fail "REGISTRY_AUTH_FILE"
# $DOCKER_CONFIG/config.json with a credential helper (and a wrong stored auth it must not use):
mkdir -p "$T/docker" "$T/bin"
cat >"$T/bin/docker-credential-hocustest" <<HELPER
#!/bin/sh
[ "\$1" = get ] || exit 1
read -r server
echo "\$server" >>"$T/helper.calls"
[ "\$server" = "$REGISTRY" ] || { echo "credentials not found in native keychain"; exit 1; }
printf '{"ServerURL":"%s","Username":"alice","Secret":"%s"}\n' "\$server" '$PASS'
HELPER
chmod +x "$T/bin/docker-credential-hocustest"
printf '{"auths":{"%s":{"auth":"%s"}},"credHelpers":{"%s":"hocustest"}}\n' "$REGISTRY" "$(printf 'alice:bad' | base64)" \
        "$REGISTRY" >"$T/docker/config.json"
PATH=$T/bin:$PATH DOCKER_CONFIG=$T/docker timeout 60 "$HOCUS_BLK" inspect -v "$R/tls/img:v1" --ca-file "$CA_FILE" \
        >/dev/null 2>"$T/helper.log" || fail "credential helper: $(tail -3 "$T/helper.log")"
grep -qx "$REGISTRY" "$T/helper.calls" || fail "the credential helper was not asked"
if grep -qF "$PASS" "$T/helper.log"; then fail "password from the helper in the log"; fi
# credsStore as the default helper:
printf '{"credsStore":"hocustest"}\n' >"$T/docker/config.json"
PATH=$T/bin:$PATH DOCKER_CONFIG=$T/docker timeout 60 "$HOCUS_BLK" inspect "$R/tls/img:v1" --ca-file "$CA_FILE" \
        >/dev/null || fail "credsStore"
# ~/.docker/config.json:
mkdir -p "$HOME/.docker"
printf '{"auths":{"%s":{"auth":"%s"}}}\n' "$REGISTRY" "$b64" >"$HOME/.docker/config.json"
timeout 60 "$HOCUS_BLK" inspect "$R/tls/img:v1" --ca-file "$CA_FILE" >/dev/null || fail "~/.docker/config.json"

# HTTP/2 is negotiated over TLS: pull reports it.
timeout 120 "$HOCUS_BLK" pull "$R/tls/img:v1" --ca-file "$CA_FILE" >"$T/pull.out" || fail "pull over TLS"
grep -q "HTTP/2" "$T/pull.out" || fail "pull over TLS did not use HTTP/2: $(cat "$T/pull.out")"
echo ok
