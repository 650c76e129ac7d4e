#!/usr/bin/env bash
# push -> export through a real docker-registry (plain HTTP on 127.0.0.1),
# byte-identical, for every image kind; pull hydrates the store so that a
# later export fetches nothing.
. "$TESTS_DIR/functions.sh"
requires docker-registry curl python3

start_registry reg
R=docker://$REGISTRY

roundtrip() {
        local name=$1 file=$2
        timeout 300 "$HOCUS_BLK" push "$file" "$R/rt/$name:v1" --plain-http --pack-size 8M >"$T/push.out" ||
                fail "push of $name failed"
        rm -rf "$T/cache"
        timeout 300 "$HOCUS_BLK" export "$R/rt/$name:v1" "$T/out.img" --plain-http >"$T/export.out" ||
                fail "export of $name failed"
        if [ "$(stat -c %s "$file")" -gt $((1 << 30)) ]; then
                assert_same "$file" "$T/out.img"
        else
                assert_same "$file" "$T/out.img"
        fi
        rm -f "$T/out.img"
}

truncate -s 0 "$T/empty.img"
roundtrip empty "$T/empty.img"

make_image "$T/odd.img" random 3M
head -c 12345 /dev/urandom >>"$T/odd.img"     # not a multiple of the chunk size
roundtrip odd "$T/odd.img"

make_image "$T/zero.img" zero 64M
roundtrip zero "$T/zero.img"

make_image "$T/random.img" random 48M
roundtrip random "$T/random.img"

# A 48 MiB pack (default --pack-size) goes up in PATCHes of 16 MiB.
timeout 300 "$HOCUS_BLK" push "$T/random.img" "$R/rt/bigpack:v1" --plain-http >/dev/null || fail "push of a big pack"
patches=$(grep -c '"PATCH /v2/rt/bigpack/blobs/uploads/' "$T/reg.log" || true)
[ "$patches" -ge 3 ] || fail "expected chunked uploads (PATCH), saw $patches"
rm -rf "$T/cache"
timeout 300 "$HOCUS_BLK" export "$R/rt/bigpack:v1" "$T/out.img" --plain-http >/dev/null || fail "export bigpack"
assert_same "$T/random.img" "$T/out.img"
rm -f "$T/out.img"

make_image "$T/text.img" text 48M
roundtrip text "$T/text.img"

make_image "$T/repeated.img" repeated 32M
roundtrip repeated "$T/repeated.img"
grep -q "duplicate" "$T/push.out" || fail "push output lacks the dedup line"

# 100 GiB sparse with a few hundred MiB of data at several offsets.
truncate -s 100G "$T/sparse.img"
for spec in 0:random 1G:text 50G:random 99G:text; do
        off=${spec%%:*} kind=${spec#*:}
        make_image "$T/part.img" "$kind" 64M
        dd if="$T/part.img" of="$T/sparse.img" bs=1M seek=$(($(numfmt --from=iec "$off") / 1048576)) conv=notrunc status=none
done
head -c 1000 /dev/urandom | dd of="$T/sparse.img" bs=1 seek=$((100 * 1024 * 1024 * 1024 - 1000)) conv=notrunc status=none
rm -f "$T/part.img"
start=$SECONDS
roundtrip sparse "$T/sparse.img"
echo "sparse 100 GiB round trip: $((SECONDS - start)) s"

# pull hydrates the store: a second pull and an export fetch no chunk.
rm -rf "$T/cache"
timeout 300 "$HOCUS_BLK" pull "$R/rt/random:v1" --plain-http >"$T/pull.out" || fail "pull failed"
cat "$T/pull.out"
grep -Eq "^Pulled .*: [1-9][0-9]* chunks .* stored, 0 already cached" "$T/pull.out" || fail "unexpected pull output"
grep -Eq "http +[0-9]+ requests" "$T/pull.out" || fail "pull does not report requests"
timeout 300 "$HOCUS_BLK" pull "$R/rt/random:v1" --plain-http >"$T/pull2.out" || fail "second pull failed"
grep -Eq ": 0 chunks \(0 B\) stored, [1-9][0-9]* already cached" "$T/pull2.out" || fail "second pull fetched again: $(cat "$T/pull2.out")"
timeout 300 "$HOCUS_BLK" export "$R/rt/random:v1" "$T/out.img" --plain-http >"$T/export.out"
grep -q "fetched 0 B (0 chunks)" "$T/export.out" || fail "export after pull fetched chunks: $(cat "$T/export.out")"
assert_same "$T/random.img" "$T/out.img"

# pull by digest, and inspect works against the registry.
digest=$(timeout 60 "$HOCUS_BLK" inspect "$R/rt/random:v1" --plain-http --json | jq -r .manifest_digest)
[[ "$digest" == sha256:* ]] || fail "inspect --json gave no manifest digest"
if true; then
        timeout 300 "$HOCUS_BLK" pull "$R/rt/random@$digest" --plain-http >/dev/null || fail "pull by digest failed"
fi
pull_help=$("$HOCUS_BLK" pull --help)
grep -q "resumes" <<<"$pull_help" || fail "pull --help does not mention resuming"
echo "ok"
