#!/usr/bin/env bash
# Registry TLS the way skopeo finds it: a docker-registry with a test CA
# that requires a client certificate; hocus-blk finds the CA and the client
# certificate in certs.d/HOST:PORT ($HOCUS_BLK_CERTS_D standing in for
# /etc/containers/certs.d) or in --cert-dir, takes $SSL_CERT_FILE, and
# --tls-verify=false; skopeo --cert-dir reads the same directory and the
# two copy each other's images. Clear failures without the CA, without
# the client certificate, and for a key without its certificate.
. "$TESTS_DIR/functions.sh"
requires docker-registry curl openssl skopeo

make_test_ca
d=$T/tls
# A client certificate from the same CA.
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=hocus-blk test client" \
        -keyout "$d/client.key" -out "$d/client.csr" 2>/dev/null
printf 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n' >"$d/client.ext"
openssl x509 -req -in "$d/client.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial -days 2 \
        -extfile "$d/client.ext" -out "$d/client.cert" 2>/dev/null
port=$(free_port)
mkdir -p "$T/reg"
_registry_yaml reg "$port" "  tls:
    certificate: $d/server.pem
    key: $d/server.key
    clientcas:
      - $d/ca.pem"
_run_registry reg "$port" curl -sS -o /dev/null --cacert "$CA_FILE" --cert "$d/client.cert" --key "$d/client.key" \
        "https://127.0.0.1:$port/v2/"
R=docker://$REGISTRY
unset SSL_CERT_FILE SSL_CERT_DIR

# certs.d/HOST:PORT with ca.crt, client.cert, client.key (the layout of
# containers-certs.d(5) and docker's certs.d).
full=$T/certs.d/$REGISTRY
mkdir -p "$full"
cp "$CA_FILE" "$full/ca.crt"
cp "$d/client.cert" "$d/client.key" "$full/"
export HOCUS_BLK_CERTS_D=$T/empty.d:$T/certs.d

make_image "$T/a.img" random 5M
timeout 120 "$HOCUS_BLK" push "$T/a.img" "$R/certs/img:v1" >/dev/null 2>"$T/push.log" ||
        fail "push with certs.d: $(tail -3 "$T/push.log")"
timeout 120 "$HOCUS_BLK" export "$R/certs/img:v1" "$T/out.img" --no-cache >/dev/null || fail "export with certs.d"
assert_same "$T/a.img" "$T/out.img"
rm -f "$T/out.img"

# skopeo reads the same directory: it sees our image, and copies it.
timeout 60 skopeo inspect --raw --cert-dir "$full" "$R/certs/img:v1" >"$T/raw.json" || fail "skopeo inspect --cert-dir"
grep -q application/vnd.hocus.blk.image.v1 "$T/raw.json" || fail "skopeo did not read our manifest"
timeout 120 skopeo copy --quiet --src-cert-dir "$full" --dest-cert-dir "$full" "$R/certs/img:v1" "$R/certs/copy:v1" ||
        fail "skopeo copy with --cert-dir"
# And --cert-dir here is skopeo's: the files directly in DIR.
HOCUS_BLK_CERTS_D=$T/empty.d timeout 120 "$HOCUS_BLK" export "$R/certs/copy:v1" "$T/out.img" --no-cache --cert-dir "$full" \
        >/dev/null || fail "export of skopeo's copy with --cert-dir"
assert_same "$T/a.img" "$T/out.img"
rm -f "$T/out.img"

# Without the client certificate the registry refuses the handshake.
noclient=$T/noclient.d/$REGISTRY
mkdir -p "$noclient"
cp "$CA_FILE" "$noclient/ca.crt"
HOCUS_BLK_CERTS_D=$T/noclient.d expect_fail "client certificate.*$REGISTRY" \
        timeout 60 "$HOCUS_BLK" inspect "$R/certs/img:v1"
# Without the CA: not trusted, and the message says where a CA goes.
client=$T/client.d/$REGISTRY
mkdir -p "$client"
cp "$d/client.cert" "$d/client.key" "$client/"
HOCUS_BLK_CERTS_D=$T/client.d expect_fail "certificate of $REGISTRY is not trusted.*certs.d/$REGISTRY/ca.crt.*--tls-verify=false" \
        timeout 60 "$HOCUS_BLK" inspect "$R/certs/img:v1"
# ... which $SSL_CERT_FILE, --ca-file or --tls-verify=false fix.
HOCUS_BLK_CERTS_D=$T/client.d SSL_CERT_FILE=$CA_FILE timeout 60 "$HOCUS_BLK" inspect "$R/certs/img:v1" >/dev/null ||
        fail "SSL_CERT_FILE"
HOCUS_BLK_CERTS_D=$T/client.d timeout 60 "$HOCUS_BLK" inspect "$R/certs/img:v1" --ca-file "$CA_FILE" >/dev/null ||
        fail "--ca-file"
HOCUS_BLK_CERTS_D=$T/client.d timeout 60 "$HOCUS_BLK" inspect "$R/certs/img:v1" --tls-verify=false >/dev/null ||
        fail "--tls-verify=false"
expect_fail "tls-verify.*wants true or false" "$HOCUS_BLK" inspect "$R/certs/img:v1" --tls-verify=maybe
# A key without its certificate is a mistake worth saying.
rm "$client/client.cert"
HOCUS_BLK_CERTS_D=$T/client.d expect_fail "client.key has no .*client.cert beside it" \
        timeout 60 "$HOCUS_BLK" inspect "$R/certs/img:v1" --tls-verify=false

# registries.conf insecure = true for a mirror: a LAN cache without TLS in
# front of this TLS registry is spoken to in plain HTTP (containers/image
# does the same), while the origin keeps its certificates.
ORIGIN=$REGISTRY
start_registry lanmirror
timeout 120 "$HOCUS_BLK" push --plain-http "$T/a.img" "docker://$REGISTRY/certs/img:v1" >/dev/null || fail "push to the mirror"
cat >"$T/registries.conf" <<CONF
[[registry]]
prefix = "$ORIGIN/certs"
[[registry.mirror]]
location = "$REGISTRY/certs"
insecure = true
CONF
CONTAINERS_REGISTRIES_CONF=$T/registries.conf timeout 60 "$HOCUS_BLK" inspect -v "$R/certs/img:v1" \
        >"$T/inspect.out" 2>"$T/inspect.log" || fail "inspect with an insecure mirror: $(tail -3 "$T/inspect.log")"
grep -Eq "^  index .* $REGISTRY/certs/img \(mirror\)$" "$T/inspect.out" || fail "not read from the mirror: $(cat "$T/inspect.out")"
grep -q "insecure mirror $REGISTRY/certs speaks no TLS" "$T/inspect.log" || fail "no plain HTTP fallback"
echo ok
