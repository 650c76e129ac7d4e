#!/usr/bin/env bash
# NBD over TLS (NBD_OPT_STARTTLS) with X.509 certificates from a test CA made
# here with openssl: --tls=require refuses plain option haggling, --tls=on
# serves both, --tls-ca demands client certificates, a client that does not
# trust the server's CA gets nothing.
. "$TESTS_DIR/functions.sh"
requires openssl nbdinfo nbdcopy python3

C=$T/pki
mkdir -p "$C/client" "$C/anon" "$C/wrong"
cat >"$C/server.ext" <<'EXT'
subjectAltName = DNS:localhost, IP:127.0.0.1
extendedKeyUsage = serverAuth
EXT
cat >"$C/client.ext" <<'EXT'
extendedKeyUsage = clientAuth
EXT
ossl() { openssl "$@" 2>>"$C/openssl.log"; }
ossl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=hocus test CA" \
        -keyout "$C/ca-key.pem" -out "$C/ca-cert.pem"
ossl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=localhost" \
        -keyout "$C/server-key.pem" -out "$C/server.csr"
ossl x509 -req -in "$C/server.csr" -CA "$C/ca-cert.pem" -CAkey "$C/ca-key.pem" -CAcreateserial -days 2 \
        -extfile "$C/server.ext" -out "$C/server-cert.pem"
ossl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=test client" \
        -keyout "$C/client/client-key.pem" -out "$C/client.csr"
ossl x509 -req -in "$C/client.csr" -CA "$C/ca-cert.pem" -CAkey "$C/ca-key.pem" -CAcreateserial -days 2 \
        -extfile "$C/client.ext" -out "$C/client/client-cert.pem"
cp "$C/ca-cert.pem" "$C/client/ca-cert.pem"
cp "$C/ca-cert.pem" "$C/anon/ca-cert.pem"
# A CA the server's certificate does not chain to.
ossl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=other CA" \
        -keyout "$C/wrong/ca-key.pem" -out "$C/wrong/ca-cert.pem"
rm "$C/wrong/ca-key.pem"

head -c 2M /dev/urandom >"$T/disk.img"
truncate -s 5M "$T/disk.img"
hb push "$T/disk.img" "oci:$T/layout:v1" >/dev/null

TLS=(--tls-cert "$C/server-cert.pem" --tls-key "$C/server-key.pem")
PORT=$(free_port)
tls_uri() { echo "nbds://127.0.0.1:$PORT/ws?tls-certificates=$1"; }

# --tls=require
start_blockd --nbd-listen "127.0.0.1:$PORT" --export "ws=oci:$T/layout:v1,overlay=$T/ws.ovl" --tls=require "${TLS[@]}"
nbdinfo "$(tls_uri "$C/anon")" >"$T/info"
grep -q "with TLS" "$T/info" || fail "no TLS: $(cat "$T/info")"
nbdcopy "$(tls_uri "$C/anon")" "$T/copy.img"
assert_same "$T/disk.img" "$T/copy.img"
# Writes over TLS.
nbdcopy "$T/disk.img" "$(tls_uri "$C/anon")"
expect_fail "" nbdinfo "nbd://127.0.0.1:$PORT/ws"
expect_fail "" nbdinfo "$(tls_uri "$C/wrong")"
python3 - "$PORT" <<'PY'
import socket, struct, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=120)
assert s.recv(18)[:8] == b"NBDMAGIC"
s.sendall(struct.pack(">I", 1))
IHAVEOPT = 0x49484156454F5054
for o in (3, 8, 7, 0x999):          # LIST, STRUCTURED_REPLY, GO, unknown
    s.sendall(struct.pack(">QII", IHAVEOPT, o, 0))
    magic, opt, typ, ln = struct.unpack(">QIII", s.recv(20))
    s.recv(ln) if ln else None
    assert typ == 0x80000005, (o, hex(typ))       # NBD_REP_ERR_TLS_REQD
s.sendall(struct.pack(">QII", IHAVEOPT, 1, 2) + b"ws")   # EXPORT_NAME without TLS
assert s.recv(100) == b"", "EXPORT_NAME without TLS was not refused"
PY
nbdinfo --size "$(tls_uri "$C/anon")" | grep -qx 5242880
stop_blockd

# --tls=on: plain and TLS clients both served.
start_blockd --nbd-listen "127.0.0.1:$PORT" --export "ws=oci:$T/layout:v1" --tls=on "${TLS[@]}"
nbdinfo "nbd://127.0.0.1:$PORT/ws" | grep -q "without TLS"
nbdinfo "$(tls_uri "$C/anon")" | grep -q "with TLS"
stop_blockd

# --tls-ca: client certificates required.
start_blockd --nbd-listen "127.0.0.1:$PORT" --export "ws=oci:$T/layout:v1" --tls=require "${TLS[@]}" \
        --tls-ca "$C/ca-cert.pem"
nbdcopy "$(tls_uri "$C/client")" "$T/copy2.img"
assert_same "$T/disk.img" "$T/copy2.img"
expect_fail "" nbdinfo "$(tls_uri "$C/anon")"
nbdinfo --size "$(tls_uri "$C/client")" | grep -qx 5242880
stop_blockd

# Bad configuration is refused at startup.
expect_fail "needs --tls-cert" "$BLOCKD" --tls=on --export "ws=oci:$T/layout:v1" --run true
expect_fail "does not match|cannot load" "$BLOCKD" --tls=on --tls-cert "$C/server-cert.pem" \
        --tls-key "$C/client/client-key.pem" --export "ws=oci:$T/layout:v1" --run true
echo ok
