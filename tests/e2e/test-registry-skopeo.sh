#!/usr/bin/env bash
# Interop with skopeo: it reads our manifest, and copies of our image
# (to another repository, to an OCI layout) export byte-identical.
. "$TESTS_DIR/functions.sh"
requires docker-registry curl skopeo jq

start_registry reg
R=docker://$REGISTRY

make_image "$T/a.img" text 24M
head -c 3M /dev/urandom >>"$T/a.img"
timeout 300 "$HOCUS_BLK" push "$T/a.img" "$R/sk/img:v1" --plain-http --pack-size 4M >/dev/null || fail "push"

timeout 60 skopeo inspect --raw --tls-verify=false "$R/sk/img:v1" >"$T/raw.json" || fail "skopeo inspect --raw"
assert_eq "$(jq -r .artifactType "$T/raw.json")" application/vnd.hocus.blk.image.v1 "artifactType"
assert_eq "$(jq -r .config.mediaType "$T/raw.json")" application/vnd.oci.empty.v1+json "config media type"
assert_eq "$(jq -r '.layers[0].mediaType' "$T/raw.json")" application/vnd.hocus.blk.index.v1 "first layer"

timeout 120 skopeo copy --quiet --src-tls-verify=false --dest-tls-verify=false "$R/sk/img:v1" "$R/sk/copy:v1" ||
        fail "skopeo copy to another repository"
timeout 60 skopeo inspect --raw --tls-verify=false "$R/sk/copy:v1" | cmp -s - "$T/raw.json" ||
        fail "the copy's manifest differs"
timeout 300 "$HOCUS_BLK" export "$R/sk/copy:v1" "$T/out1.img" --plain-http --no-cache >/dev/null || fail "export of the copy"
assert_same "$T/a.img" "$T/out1.img"

timeout 120 skopeo copy --quiet --src-tls-verify=false "$R/sk/img:v1" "oci:$T/layout:v1" || fail "skopeo copy to oci:"
timeout 300 "$HOCUS_BLK" export "oci:$T/layout:v1" "$T/out2.img" --no-cache >/dev/null || fail "export of the oci: copy"
assert_same "$T/a.img" "$T/out2.img"

# And back: an oci: layout pushed by hocus-blk, copied into the registry.
timeout 300 "$HOCUS_BLK" push "$T/a.img" "oci:$T/ours:v2" >/dev/null || fail "push to oci:"
timeout 120 skopeo copy --quiet --dest-tls-verify=false "oci:$T/ours:v2" "$R/sk/fromoci:v2" || fail "skopeo copy oci: -> registry"
timeout 300 "$HOCUS_BLK" export "$R/sk/fromoci:v2" "$T/out3.img" --plain-http --no-cache >/dev/null || fail "export"
assert_same "$T/a.img" "$T/out3.img"
echo ok
