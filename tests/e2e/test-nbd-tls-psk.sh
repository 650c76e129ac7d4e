#!/usr/bin/env bash
# NBD TLS the nbdkit/qemu way: --tls-psk FILE (psktool's IDENTITY:HEXKEY
# lines) with libnbd's nbds://IDENTITY@...?tls-psk-file= (GnuTLS against
# OpenSSL, TLS 1.3 external PSK), reads and writes byte for byte; a wrong key,
# an unknown identity and a plain client are refused. --tls-certificates DIR
# (ca-cert.pem, server-cert.pem, server-key.pem) serves like --tls-cert and
# --tls-key. Bad option combinations and files fail with what to do.
. "$TESTS_DIR/functions.sh"
requires openssl nbdinfo nbdcopy

# psktool's format; psktool itself where installed.
if command -v psktool >/dev/null; then
        psktool -u alice -p "$T/keys.psk" >/dev/null
        psktool -u alice -p "$T/wrong.psk" >/dev/null
else
        printf 'alice:%s\n' "$(openssl rand -hex 32)" >"$T/keys.psk"
        printf 'alice:%s\n' "$(openssl rand -hex 32)" >"$T/wrong.psk"
fi
printf 'carol:%s\n' "$(openssl rand -hex 32)" >>"$T/keys.psk"

head -c 3M /dev/urandom >"$T/disk.img"
truncate -s 5M "$T/disk.img"
hb push "$T/disk.img" "oci:$T/layout:v1" >/dev/null
PORT=$(free_port)
psk_uri() { echo "nbds://$1@127.0.0.1:$PORT/ws?tls-psk-file=$2"; }

start_blockd --nbd-listen "127.0.0.1:$PORT" --export "ws=oci:$T/layout:v1,overlay=$T/ws.ovl" \
        --tls=require --tls-psk "$T/keys.psk"
nbdinfo "$(psk_uri alice "$T/keys.psk")" >"$T/info" || fail "nbdinfo with the PSK"
grep -q "with TLS" "$T/info" || fail "no TLS: $(cat "$T/info")"
nbdcopy "$(psk_uri carol "$T/keys.psk")" "$T/copy.img"
assert_same "$T/disk.img" "$T/copy.img"
# Writes over PSK, read back.
head -c 5M /dev/urandom >"$T/new.img"
nbdcopy "$T/new.img" "$(psk_uri alice "$T/keys.psk")"
nbdcopy "$(psk_uri alice "$T/keys.psk")" "$T/back.img"
assert_same "$T/new.img" "$T/back.img"
# Refused: a wrong key, an identity not in the file, no TLS.
expect_fail "gnutls_handshake" nbdinfo "$(psk_uri alice "$T/wrong.psk")"
grep -q "TLS handshake failed: .*binder does not verify (a wrong pre-shared key for the client's identity)" \
        "$T/blockd.log" || fail "the wrong key was not refused by blockd, or not said so: $(grep TLS "$T/blockd.log")"
printf 'mallory:%s\n' "$(openssl rand -hex 32)" >"$T/mallory.psk"
expect_fail "gnutls_handshake" nbdinfo "$(psk_uri mallory "$T/mallory.psk")"
grep -q "TLS handshake failed: the client's PSK identity is not in the --tls-psk file" "$T/blockd.log" ||
        fail "blockd did not say the identity is unknown: $(grep TLS "$T/blockd.log")"
expect_fail "" nbdinfo "nbd://127.0.0.1:$PORT/ws"
# Still serving after the refusals.
nbdinfo --size "$(psk_uri alice "$T/keys.psk")" | grep -qx 5242880 || fail "blockd stopped serving after refusals"
stop_blockd

# --tls-certificates DIR: nbdkit's layout.
C=$T/pki
mkdir -p "$C" "$T/anon"
ossl() { openssl "$@" 2>>"$T/openssl.log"; }
ossl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=hocus test CA" \
        -keyout "$T/ca-key.pem" -out "$C/ca-cert.pem"
printf 'subjectAltName = DNS:localhost, IP:127.0.0.1\nextendedKeyUsage = serverAuth\n' >"$T/server.ext"
ossl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=localhost" \
        -keyout "$C/server-key.pem" -out "$T/server.csr"
ossl x509 -req -in "$T/server.csr" -CA "$C/ca-cert.pem" -CAkey "$T/ca-key.pem" -CAcreateserial -days 2 \
        -extfile "$T/server.ext" -out "$C/server-cert.pem"
cp "$C/ca-cert.pem" "$T/anon/ca-cert.pem"
start_blockd --nbd-listen "127.0.0.1:$PORT" --export "ws=oci:$T/layout:v1" --tls=require --tls-certificates "$C"
nbdcopy "nbds://127.0.0.1:$PORT/ws?tls-certificates=$T/anon" "$T/copy2.img"
assert_same "$T/disk.img" "$T/copy2.img"
expect_fail "" nbdinfo "nbd://127.0.0.1:$PORT/ws"
stop_blockd

# Bad combinations and files.
X=(--export "ws=oci:$T/layout:v1" --run true --nbd-socket "$T/x.sock")
expect_fail "cannot read TLS PSK file '$T/nope.psk'" "$BLOCKD" "${X[@]}" --tls=require --tls-psk "$T/nope.psk"
printf 'alice:%s\nbob 00ff\n' "$(openssl rand -hex 32)" >"$T/bad.psk"
expect_fail "$T/bad.psk line 2: not IDENTITY:HEXKEY" "$BLOCKD" "${X[@]}" --tls=require --tls-psk "$T/bad.psk"
printf 'alice:abc\n' >"$T/odd.psk"
expect_fail "$T/odd.psk line 1: the key of 'alice' is not an even number of hex digits" \
        "$BLOCKD" "${X[@]}" --tls=require --tls-psk "$T/odd.psk"
expect_fail "tls-psk replaces certificates" "$BLOCKD" "${X[@]}" --tls=require --tls-psk "$T/keys.psk" \
        --tls-cert "$C/server-cert.pem"
expect_fail "tls-psk takes effect with --tls=on or --tls=require" "$BLOCKD" "${X[@]}" --tls-psk "$T/keys.psk"
mkdir "$T/empty"
expect_fail "tls-certificates $T/empty: cannot read $T/empty/server-cert.pem" \
        "$BLOCKD" "${X[@]}" --tls=on --tls-certificates "$T/empty"
expect_fail "tls=require needs --tls-cert and --tls-key, --tls-certificates DIR or --tls-psk FILE" \
        "$BLOCKD" "${X[@]}" --tls=require
echo ok
