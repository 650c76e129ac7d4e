#!/usr/bin/env bash
# Delta push: v2 = v1 with 1% of its chunks changed, pushed with --base v1,
# adds under 2% of v1's stored bytes; both export byte-identical. A base in
# another layout has its packs copied so the new layout is self-contained.
. "$TESTS_DIR/functions.sh"

L=oci:$T/layout
# 400 chunks of 256 KiB with mixed content (half random, half text).
make_image "$T/v1.img" random 50M
gen_lines 50M | dd of="$T/v1.img" bs=1M seek=50 conv=notrunc status=none
hb push "$T/v1.img" "$L:v1" >/dev/null
v1_stored=$(hb inspect --json "$L:v1" | jq .stored_bytes)

# Change 4 of 400 chunks (1%): two random, two text.
cp --sparse=always "$T/v1.img" "$T/v2.img"
for c in 17 123 251 377; do
        head -c 4096 /dev/urandom | dd of="$T/v2.img" bs=4096 seek=$((c * 64 + 3)) conv=notrunc status=none
done
before=$(du -sb "$T/layout/blobs" | cut -f1)
hb push "$T/v2.img" "$L:v2" --base "$L:v1" >"$T/push-v2.out"
after=$(du -sb "$T/layout/blobs" | cut -f1)
added=$((after - before))
echo "v1 stored $v1_stored bytes; the delta push added $added bytes"
[ $((added * 100)) -lt $((v1_stored * 2)) ] || fail "delta added $added bytes, not under 2% of $v1_stored"
grep -q "396 from base" "$T/push-v2.out" || fail "expected 396 chunks from the base: $(cat "$T/push-v2.out")"

hb export "$L:v2" "$T/v2.out" >/dev/null
assert_same "$T/v2.img" "$T/v2.out"
hb export "$L:v1" "$T/v1.out" >/dev/null
assert_same "$T/v1.img" "$T/v1.out"

# A base in another layout: the packs it shares are copied over, so the new
# layout exports on its own even after the base layout is gone.
hb push "$T/v2.img" "oci:$T/other:v2" --base "$L:v1" >/dev/null
mv "$T/layout" "$T/layout.gone"
hb export "oci:$T/other:v2" "$T/other.out" --no-cache >/dev/null
assert_same "$T/v2.img" "$T/other.out"
mv "$T/layout.gone" "$T/layout"

# A base with another chunk size is refused (nothing could be shared).
expect_fail "differs from the base" hb push "$T/v2.img" "$L:v3" --base "$L:v1" --chunk-size 128K
echo "delta ok"
