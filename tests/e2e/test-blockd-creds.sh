#!/usr/bin/env bash
# Registry credentials for blockd without showing them to every local user:
# --creds still works but its value is gone from /proc/PID/cmdline (ps);
# --creds-file and $HOCUS_BLK_CREDS (the ways to prefer) work against
# docker-registry with htpasswd over TLS; bad files fail clearly; no
# secret in a verbose log.
. "$TESTS_DIR/functions.sh"
requires docker-registry curl htpasswd openssl nbdcopy

PASS='s3cr3t-Pa55word'
start_tls_registry reg alice "$PASS"
R=docker://$REGISTRY
export HOME=$T/home XDG_RUNTIME_DIR=$T/run
unset REGISTRY_AUTH_FILE DOCKER_CONFIG XDG_CONFIG_HOME HOCUS_BLK_CREDS
mkdir -p "$HOME" "$XDG_RUNTIME_DIR"
make_image "$T/a.img" random 3M
printf 'alice:%s\n' "$PASS" >"$T/creds"
chmod 600 "$T/creds"
timeout 120 "$HOCUS_BLK" push "$T/a.img" "$R/c/img:v1" --ca-file "$CA_FILE" --creds-file "$T/creds" >/dev/null ||
        fail "push with --creds-file"

# serve_and_check WHAT ARGS...: blockd attaches the image at start (which
# needs the credentials) and serves it byte for byte; its command line as
# ps shows it has no password.
serve_and_check() {
        local what=$1
        shift
        rm -rf "$T/cache" "$T/out.img"
        start_blockd --nbd-socket "$T/nbd.sock" --ca-file "$CA_FILE" --export "ws=$R/c/img:v1" "$@"
        tr '\0' ' ' <"/proc/$BLOCKD_PID/cmdline" >"$T/cmdline"
        grep -q -- "--export ws=" "$T/cmdline" || fail "$what: cmdline not read: $(cat "$T/cmdline")"
        if grep -qF "$PASS" "$T/cmdline"; then fail "$what: the password is in /proc/PID/cmdline"; fi
        if ps -o args= -p "$BLOCKD_PID" | grep -qF "$PASS"; then fail "$what: the password is in ps"; fi
        nbdcopy "$(nbd_uri ws)" "$T/out.img" || fail "$what: reading the export"
        assert_same "$T/a.img" "$T/out.img"
        stop_blockd
}

serve_and_check "--creds" --creds "alice:$PASS"
grep -q -- "--creds x" "$T/cmdline" || fail "--creds is not shown blanked: $(cat "$T/cmdline")"
serve_and_check "--creds=" "--creds=alice:$PASS"
serve_and_check "--creds-file" --creds-file "$T/creds"
HOCUS_BLK_CREDS="alice:$PASS" serve_and_check "\$HOCUS_BLK_CREDS"
# --creds-file wins over the environment.
HOCUS_BLK_CREDS="alice:wrong" serve_and_check "--creds-file over \$HOCUS_BLK_CREDS" --creds-file "$T/creds"

# Nothing secret in the verbose log (blockd logs every HTTP request).
b64=$(printf 'alice:%s' "$PASS" | base64)
grep -q "http: GET" "$T/blockd.log" || fail "the verbose log has no HTTP lines (test is vacuous)"
if grep -qF "$PASS" "$T/blockd.log"; then fail "password in blockd's log"; fi
if grep -qF "$b64" "$T/blockd.log"; then fail "base64 credentials in blockd's log"; fi

# Wrong or unusable credentials: clear failures.
printf 'alice:wrong\n' >"$T/bad"
expect_fail "wrong username or password|authentication" timeout 60 "$BLOCKD" --ca-file "$CA_FILE" --creds-file "$T/bad" \
        --export "ws=$R/c/img:v1" --run true
expect_fail "--creds-file.*cannot read $T/nope" "$BLOCKD" --creds-file "$T/nope" --run true --export x=oci:/x
printf 'no colon here\n' >"$T/nocolon"
expect_fail "--creds-file.*does not hold USER:PASS" "$BLOCKD" --creds-file "$T/nocolon" --run true --export x=oci:/x
# The CLI takes the same options.
timeout 60 "$HOCUS_BLK" inspect "$R/c/img:v1" --ca-file "$CA_FILE" --creds-file "$T/creds" >/dev/null ||
        fail "hocus-blk inspect --creds-file"
HOCUS_BLK_CREDS="alice:$PASS" timeout 60 "$HOCUS_BLK" inspect "$R/c/img:v1" --ca-file "$CA_FILE" >/dev/null ||
        fail "hocus-blk inspect with \$HOCUS_BLK_CREDS"
echo ok
