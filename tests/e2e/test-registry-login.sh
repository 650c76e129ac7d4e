#!/usr/bin/env bash
# hocus-blk login/logout and skopeo share the containers auth file both
# ways: skopeo login then hocus-blk push; hocus-blk login then skopeo
# inspect; logout by either. login checks the credentials first (htpasswd
# Basic over TLS, and a Bearer token service), writes 0600 atomically,
# keeps credHelpers. A configured credential helper that is not installed
# is named in the error.
. "$TESTS_DIR/functions.sh"
requires docker-registry curl htpasswd openssl skopeo jq

PASS='s3cr3t-Pa55word'
start_tls_registry reg alice "$PASS"
R=docker://$REGISTRY
export HOME=$T/home XDG_RUNTIME_DIR=$T/run
unset REGISTRY_AUTH_FILE DOCKER_CONFIG XDG_CONFIG_HOME HOCUS_BLK_CREDS
mkdir -p "$HOME" "$XDG_RUNTIME_DIR" "$T/certs"
cp "$CA_FILE" "$T/certs/ca.crt"
AUTH=$XDG_RUNTIME_DIR/containers/auth.json
make_image "$T/a.img" random 2M

# skopeo login, then hocus-blk push and inspect with no credential option.
printf '%s\n' "$PASS" | skopeo login --cert-dir "$T/certs" -u alice --password-stdin "$REGISTRY" >/dev/null ||
        fail "skopeo login"
[ -s "$AUTH" ] || fail "skopeo did not write $AUTH"
timeout 120 "$HOCUS_BLK" push "$T/a.img" "$R/lg/img:v1" --ca-file "$CA_FILE" >/dev/null ||
        fail "push with the credentials skopeo login stored"
skopeo logout "$REGISTRY" >/dev/null || fail "skopeo logout"
expect_fail "requires authentication: pass --creds" timeout 60 "$HOCUS_BLK" inspect "$R/lg/img:v1" --ca-file "$CA_FILE"

# hocus-blk login, then skopeo inspect reads it.
rm -f "$AUTH"
printf '%s\n' "$PASS" | timeout 60 "$HOCUS_BLK" login "$REGISTRY" -u alice --password-stdin --ca-file "$CA_FILE" \
        >"$T/out" || fail "hocus-blk login"
grep -qF "Login Succeeded! ($REGISTRY in $AUTH)" "$T/out" || fail "login said: $(cat "$T/out")"
[ "$(stat -c %a "$AUTH")" = 600 ] || fail "$AUTH has mode $(stat -c %a "$AUTH"), not 600"
[ "$(jq -r --arg r "$REGISTRY" '.auths[$r].auth' "$AUTH" | base64 -d)" = "alice:$PASS" ] ||
        fail "auth.json entry is not base64 alice:PASS: $(cat "$AUTH")"
ls "$XDG_RUNTIME_DIR/containers" | grep -v '^auth.json$' && fail "a temp file is left beside auth.json"
timeout 60 skopeo inspect --raw --cert-dir "$T/certs" "$R/lg/img:v1" >/dev/null ||
        fail "skopeo inspect with the credentials hocus-blk login stored"
timeout 60 "$HOCUS_BLK" inspect "$R/lg/img:v1" --ca-file "$CA_FILE" >/dev/null || fail "inspect after login"

# Without a password on a terminal, login asks for it and does not echo it.
timeout 60 python3 - "$HOCUS_BLK" "$REGISTRY" "$CA_FILE" "$PASS" <<'PY' || fail "login at a terminal prompt"
import os, pty, sys
hb, reg, ca, pw = sys.argv[1:]
pid, fd = pty.fork()
if pid == 0:
    os.execv(hb, [hb, "login", reg, "-u", "alice", "--ca-file", ca])
buf = b""
while b"Password: " not in buf:
    buf += os.read(fd, 100)
os.write(fd, (pw + "\n").encode())
while True:
    try:
        d = os.read(fd, 1000)
    except OSError:
        break
    if not d:
        break
    buf += d
_, st = os.waitpid(pid, 0)
assert os.waitstatus_to_exitcode(st) == 0, buf
assert pw.encode() not in buf, "the password was echoed"
assert b"Login Succeeded!" in buf, buf
PY

# A wrong password is refused before anything is written.
cp "$AUTH" "$T/before.json"
expect_fail "Login to $REGISTRY failed: $REGISTRY: wrong username or password" \
        timeout 60 "$HOCUS_BLK" login "$REGISTRY" -u alice -p wrong --ca-file "$CA_FILE"
cmp -s "$AUTH" "$T/before.json" || fail "a failed login changed $AUTH"
expect_fail "login needs a password: --password-stdin" "$HOCUS_BLK" login "$REGISTRY" -u alice
expect_fail "give --password or --password-stdin, not both" "$HOCUS_BLK" login "$REGISTRY" -u alice -p x --password-stdin

# --creds-file, --authfile and $REGISTRY_AUTH_FILE.
printf 'alice:%s\n' "$PASS" >"$T/creds"
timeout 60 "$HOCUS_BLK" login "$REGISTRY/lg" --creds-file "$T/creds" --ca-file "$CA_FILE" --authfile "$T/a.json" \
        >/dev/null || fail "login --creds-file --authfile"
jq -e --arg r "$REGISTRY/lg" '.auths[$r].auth' "$T/a.json" >/dev/null || fail "no $REGISTRY/lg entry in --authfile"
REGISTRY_AUTH_FILE=$T/env.json timeout 60 "$HOCUS_BLK" login "$REGISTRY" --creds-file "$T/creds" \
        --ca-file "$CA_FILE" >/dev/null || fail "login with REGISTRY_AUTH_FILE"
[ -s "$T/env.json" ] || fail "login ignored REGISTRY_AUTH_FILE"
REGISTRY_AUTH_FILE=$T/env.json timeout 60 skopeo inspect --raw --cert-dir "$T/certs" "$R/lg/img:v1" >/dev/null ||
        fail "skopeo with REGISTRY_AUTH_FILE written by hocus-blk login"

# logout: skopeo no longer gets in; a second logout says so.
timeout 60 "$HOCUS_BLK" logout "$REGISTRY" >"$T/out" || fail "logout"
grep -qF "Removed the credentials for $REGISTRY from $AUTH" "$T/out" || fail "logout said: $(cat "$T/out")"
if timeout 60 skopeo inspect --raw --cert-dir "$T/certs" "$R/lg/img:v1" >/dev/null 2>&1; then
        fail "skopeo still got in after hocus-blk logout"
fi
expect_fail "Not logged in to $REGISTRY: $AUTH has no entry for $REGISTRY" "$HOCUS_BLK" logout "$REGISTRY"
# logout --all empties auths and keeps credHelpers; skopeo reads the result.
printf '{"auths":{"a.example":{"auth":"eDp5"},"b.example":{"auth":"eDp5"}},"credHelpers":{"c.example":"pass"}}\n' >"$AUTH"
timeout 60 "$HOCUS_BLK" logout --all >/dev/null || fail "logout --all"
[ "$(jq -c .auths "$AUTH")" = "{}" ] || fail "logout --all left $(jq -c .auths "$AUTH")"
[ "$(jq -r '.credHelpers["c.example"]' "$AUTH")" = pass ] || fail "logout --all dropped credHelpers"
# login where a helper is configured for the registry: it would be ignored, so refuse.
printf '{"credHelpers":{"%s":"hocusmissing"}}\n' "$REGISTRY" >"$AUTH"
expect_fail "configures credential helper docker-credential-hocusmissing for $REGISTRY" \
        timeout 60 "$HOCUS_BLK" login "$REGISTRY" --creds-file "$T/creds" --ca-file "$CA_FILE"

# A configured helper that is not installed is named (Basic auth).
expect_fail "^hocus-blk: error: Cannot open '$R/lg/img:v1': $REGISTRY requires authentication: credential helper docker-credential-hocusmissing not found in PATH \(configured in $AUTH\)$" \
        timeout 60 "$HOCUS_BLK" inspect "$R/lg/img:v1" --ca-file "$CA_FILE"
printf '{"credsStore":"hocusgone"}\n' >"$AUTH"
expect_fail "credential helper docker-credential-hocusgone not found in PATH \(configured in $AUTH\)" \
        timeout 60 "$HOCUS_BLK" inspect "$R/lg/img:v1" --ca-file "$CA_FILE"
rm -f "$AUTH"

# A Bearer token registry: login asks the token service (no scope) with the
# credentials, and a wrong password is refused there.
start_token_registry tok --user bob:bpass:pull,push
timeout 60 "$HOCUS_BLK" login "$REGISTRY" -u bob -p bpass --plain-http >/dev/null || fail "login to a token registry"
grep -q "^token bob - " "$TOKEN_LOG" || fail "login did not ask the token service: $(cut -c1-60 "$TOKEN_LOG")"
timeout 120 "$HOCUS_BLK" push "$T/a.img" "docker://$REGISTRY/lg/img:v1" --plain-http >/dev/null ||
        fail "push to the token registry after login"
expect_fail "Login to $REGISTRY failed: .*token service .* refused the credentials" \
        timeout 60 "$HOCUS_BLK" login "$REGISTRY" -u bob -p wrong --plain-http
printf '{"credHelpers":{"%s":"hocusmissing"}}\n' "$REGISTRY" >"$AUTH"
expect_fail "$REGISTRY requires authentication: credential helper docker-credential-hocusmissing not found in PATH \(configured in $AUTH\)" \
        timeout 60 "$HOCUS_BLK" inspect "docker://$REGISTRY/lg/img:v1" --plain-http
echo ok
