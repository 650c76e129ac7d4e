#!/usr/bin/env bash
# Clear messages and non-zero exits: unknown tag, registry not listening,
# a registry that stops mid-transfer (then the pull resumes), a container
# image that is not a hocus-blk image, a blob whose bytes do not match its
# digest. Also: a pull interrupted with SIGINT resumes.
. "$TESTS_DIR/functions.sh"
requires docker-registry curl python3 skopeo jq

export HOCUS_BLK_HTTP_ATTEMPTS=3
start_registry reg
R=docker://$REGISTRY

make_image "$T/a.img" random 32M
timeout 120 "$HOCUS_BLK" push "$T/a.img" "$R/err/img:v1" --plain-http --pack-size 4M >/dev/null || fail "push"

expect_fail "no such image \(unknown tag or digest\)" timeout 60 "$HOCUS_BLK" inspect "$R/err/img:nope" --plain-http
expect_fail "no such image" timeout 60 "$HOCUS_BLK" pull "$R/err/other:v1" --plain-http
port=$(free_port)
expect_fail "cannot connect to 127.0.0.1:$port: connection refused .*is the registry running" \
        timeout 60 "$HOCUS_BLK" pull "docker://127.0.0.1:$port/err/img:v1" --plain-http

# The registry stops in the middle of a pull (the proxy is the registry
# as the client sees it): a bounded failure, then a pull resumes.
start_fault_proxy proxy "$REGISTRY" --rate 3000000
"$HOCUS_BLK" pull "docker://$PROXY/err/img:v1" --plain-http --jobs 2 --range-size 1M >"$T/p1.out" 2>"$T/p1.err" &
pull=$!
wait_for 30 test -d "$T/cache/chunks" || fail "the pull stored nothing"
wait_for 30 sh -c "[ \$(find '$T/cache/chunks' -type f | wc -l) -ge 8 ]" || fail "the pull stored too little"
kill -TERM "$PROXY_PID"
wait "$PROXY_PID" 2>/dev/null || true
# Connections are refused from now on: the pull must give up (a generous
# bound catches a hang), with a clear message.
wait_for 120 sh -c "! kill -0 $pull" || fail "the pull did not give up with the registry gone"
rc=0
wait "$pull" || rc=$?
[ "$rc" -ne 0 ] && [ "$rc" -lt 128 ] || fail "pull through a dying registry exited $rc"
grep -Eq "Pull of .* failed: .*(connection refused|connection lost).*run pull again to resume" "$T/p1.err" ||
        fail "unclear message: $(cat "$T/p1.err")"
timeout 120 "$HOCUS_BLK" pull "$R/err/img:v1" --plain-http >"$T/p2.out" || fail "resumed pull"
grep -Eq "stored, ([89]|[1-9][0-9]+) already cached" "$T/p2.out" || fail "the resumed pull did not reuse chunks: $(cat "$T/p2.out")"

# A pull killed with SIGINT resumes too.
rm -rf "$T/cache"
start_fault_proxy proxy2 "$REGISTRY" --rate 3000000
"$HOCUS_BLK" pull "docker://$PROXY/err/img:v1" --plain-http --jobs 2 --range-size 1M >/dev/null 2>&1 &
pull=$!
wait_for 30 sh -c "[ \$(find '$T/cache/chunks' -type f 2>/dev/null | wc -l) -ge 8 ]" || fail "the pull stored too little"
kill -INT "$pull"
wait "$pull" 2>/dev/null || true
timeout 120 "$HOCUS_BLK" pull "$R/err/img:v1" --plain-http >"$T/p3.out" || fail "pull after SIGINT"
grep -Eq "stored, ([89]|[1-9][0-9]+) already cached" "$T/p3.out" || fail "no resume after SIGINT: $(cat "$T/p3.out")"
timeout 60 "$HOCUS_BLK" cache verify >/dev/null || fail "the chunk store holds a bad entry after interrupted pulls"
timeout 120 "$HOCUS_BLK" export "$R/err/img:v1" "$T/out.img" --plain-http >"$T/e.out"
grep -q "fetched 0 B" "$T/e.out" || fail "export after pulls fetched data"
assert_same "$T/a.img" "$T/out.img"

# A normal container image (OCI image manifest and a docker v2 manifest).
mkdir -p "$T/ctr/rootfs/etc" "$T/ctr/layout/blobs/sha256"
echo hello >"$T/ctr/rootfs/etc/motd"
tar -C "$T/ctr/rootfs" -czf "$T/ctr/layer.tgz" .
blob() { local h; h=$(sha256sum "$1" | cut -d' ' -f1); cp "$1" "$T/ctr/layout/blobs/sha256/$h"; echo "$h"; }
layer=$(blob "$T/ctr/layer.tgz")
diffid=$(gzip -dc "$T/ctr/layer.tgz" | sha256sum | cut -d' ' -f1)
printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"config":{}}' \
        "$diffid" >"$T/ctr/config.json"
config=$(blob "$T/ctr/config.json")
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%d}]}' \
        "$config" "$(stat -c %s "$T/ctr/config.json")" "$layer" "$(stat -c %s "$T/ctr/layer.tgz")" >"$T/ctr/manifest.json"
manifest=$(blob "$T/ctr/manifest.json")
printf '{"imageLayoutVersion":"1.0.0"}' >"$T/ctr/layout/oci-layout"
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%d,"annotations":{"org.opencontainers.image.ref.name":"v1"}}]}' \
        "$manifest" "$(stat -c %s "$T/ctr/manifest.json")" >"$T/ctr/layout/index.json"
timeout 60 skopeo copy --quiet --dest-tls-verify=false "oci:$T/ctr/layout:v1" "$R/err/ctr:oci" || fail "skopeo copy (OCI)"
timeout 60 skopeo copy --quiet --dest-tls-verify=false --format v2s2 "oci:$T/ctr/layout:v1" "$R/err/ctr:docker" ||
        fail "skopeo copy (docker v2)"
expect_fail "not a hocus-blk image: artifactType is missing" timeout 60 "$HOCUS_BLK" pull "$R/err/ctr:oci" --plain-http
expect_fail "not a hocus-blk image: the manifest is application/vnd.docker.distribution.manifest.v2\+json" \
        timeout 60 "$HOCUS_BLK" export "$R/err/ctr:docker" "$T/x.img" --plain-http

# A blob whose bytes do not match its digest: flip bytes inside a pack in
# the registry's own storage. Nothing unverified reaches the store or DEST.
pack=$(timeout 60 "$HOCUS_BLK" inspect "$R/err/img:v1" --plain-http --json | jq -r '.packs[2].digest')
data=$T/reg/data/docker/registry/v2/blobs/sha256/${pack:7:2}/${pack#sha256:}/data
[ -f "$data" ] || fail "pack blob not found at $data"
printf 'CORRUPTED' | dd of="$data" bs=1 seek=100000 conv=notrunc status=none
rm -rf "$T/cache"
expect_fail "Pull of .* failed: chunk sha256:[0-9a-f]+ in pack $pack does not match its digest" \
        timeout 120 "$HOCUS_BLK" pull "$R/err/img:v1" --plain-http
timeout 60 "$HOCUS_BLK" cache verify >/dev/null || fail "a corrupt chunk reached the store"
rm -f "$T/out.img"
expect_fail "does not match its digest: refusing to write unverified data" \
        timeout 120 "$HOCUS_BLK" export "$R/err/img:v1" "$T/out.img" --plain-http --no-cache
[ ! -e "$T/out.img" ] || fail "export left a DEST behind"
echo ok
