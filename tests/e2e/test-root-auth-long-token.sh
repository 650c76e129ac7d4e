#!/usr/bin/env bash
# A cloud-sized credential (a 2,700-byte access token as the password, as
# ECR, GAR and ACR hand out) goes through push, mount and record against a
# registry whose token service checks it byte for byte: mount and record
# used to drop credentials longer than 700 bytes and go anonymous.
. "$TESTS_DIR/functions.sh"
requires_root
requires python3 sha256sum
[ -e /dev/fuse ] || skip "no /dev/fuse"

TOK=$(head -c 3000 /dev/urandom | base64 -w0 | tr -d '+/=' | head -c 2700)
[ "${#TOK}" -eq 2700 ] || fail "token is ${#TOK} bytes"
start_token_registry reg --user "oauth2accesstoken:$TOK:pull,push"
printf 'oauth2accesstoken:%s\n' "$TOK" >"$T/creds"
chmod 600 "$T/creds"
export HOME=$T/home XDG_RUNTIME_DIR=$T/run
unset REGISTRY_AUTH_FILE DOCKER_CONFIG XDG_CONFIG_HOME HOCUS_BLK_CREDS
mkdir -p "$HOME" "$XDG_RUNTIME_DIR"
REF=docker://$REGISTRY/cloud/ws:v1

gen_files "$T/files" 6 1
make_ext4 "$T/ext4.img" 64M "$T/files" ws
hb push "$T/ext4.img" "$REF" --plain-http --creds-file "$T/creds" >/dev/null || fail "push with the long token"
grep -q "^token oauth2accesstoken repository:cloud/ws:pull,push" "$TOKEN_LOG" ||
        fail "the token service issued no push token to the long credential: $(cut -c1-80 "$TOKEN_LOG")"
# Anonymous access gets nothing here: a dropped credential fails the mount.
expect_fail "did not grant repository:cloud/ws:pull to anonymous access" hb inspect "$REF" --plain-http

mkdir "$T/mnt"
mount_cleanup "$T/mnt"
: >"$TOKEN_LOG"
hb mount "$REF" "$T/mnt" --plain-http --cache "$T/cache" --creds-file "$T/creds" >"$T/out" 2>&1 ||
        fail "mount with a 2,700-byte credential: $(cat "$T/out")"
check_files "$T/mnt" "$T/files.sha256"
hb umount "$T/mnt" >/dev/null
grep -q "^token oauth2accesstoken repository:cloud/ws:pull" "$TOKEN_LOG" ||
        fail "blockd under mount did not authenticate with the long credential"

: >"$TOKEN_LOG"
hb record "$REF" --plain-http --creds-file "$T/creds" --out "$T/p.prf" -- \
        sh -c 'head -c 1M "$HOCUS_BLK_FILE" >/dev/null' >"$T/out" 2>&1 ||
        fail "record with a 2,700-byte credential: $(cat "$T/out")"
[ -s "$T/p.prf" ] || fail "record saved no profile"
grep -q "^token oauth2accesstoken repository:cloud/ws:pull" "$TOKEN_LOG" ||
        fail "blockd under record did not authenticate with the long credential"
# The credential stays out of the logs.
for f in "$T/out"; do
        if grep -qF "$TOK" "$f"; then fail "the token is in $f"; fi
done
echo ok
