#!/usr/bin/env bash
# push -> export is byte-identical for every kind of image, on an OCI
# layout, and holes are skipped (a 100 GiB sparse image pushes in seconds).
. "$TESTS_DIR/functions.sh"

L=oci:$T/layout

roundtrip() {
        local name=$1 img=$2
        shift 2
        hb push "$img" "$L:$name" "$@" >"$T/push-$name.out"
        hb export "$L:$name" "$T/$name.out" >/dev/null
        assert_same "$img" "$T/$name.out"
        # The output is sparse where the image has holes or zero chunks.
        local want have
        have=$(stat -c %s "$T/$name.out")
        want=$(stat -c %s "$img")
        assert_eq "$have" "$want" "size of $name"
}

make_image "$T/empty.img" zero 0
roundtrip empty "$T/empty.img"

# Not a multiple of the chunk size, with a short tail chunk holding data.
head -c 1000003 /dev/urandom >"$T/odd.img"
roundtrip odd "$T/odd.img"
grep -q "4 chunks of 256.0 KiB" "$T/push-odd.out" || fail "odd image chunking: $(cat "$T/push-odd.out")"

make_image "$T/zeros.img" zero 64M
head -c 64M /dev/zero | dd of="$T/zeros.img" conv=notrunc status=none # allocated zeros, not holes
roundtrip zeros "$T/zeros.img"
hb inspect --json "$L:zeros" >"$T/zeros.json"
assert_eq "$(jq .unique_chunks "$T/zeros.json")" 0 "all-zero image stores no chunk"
assert_eq "$(jq .zero_chunks "$T/zeros.json")" 256 "all-zero chunks"
[ "$(stat -c %b "$T/zeros.out")" -lt 100 ] || fail "exported zeros are not sparse"

make_image "$T/random.img" random 48M
roundtrip random "$T/random.img"
hb inspect --json "$L:random" >"$T/random.json"
assert_eq "$(jq .codecs.raw "$T/random.json")" 192 "incompressible chunks are stored raw"

make_image "$T/text.img" text 40M
roundtrip text "$T/text.img"
hb inspect --json "$L:text" >"$T/text.json"
[ "$(jq '.stored_bytes * 10 < .raw_bytes' "$T/text.json")" = true ] || fail "text did not compress: $(cat "$T/text.json")"

make_image "$T/repeated.img" repeated 32M
roundtrip repeated "$T/repeated.img"
hb inspect --json "$L:repeated" >"$T/rep.json"
assert_eq "$(jq .unique_chunks "$T/rep.json")" 4 "a 1 MiB block repeated 32 times dedups to 4 chunks"
assert_eq "$(jq .duplicate_references "$T/rep.json")" 124 "duplicate references"

# Other codecs and chunk sizes.
roundtrip text-lz4 "$T/text.img" --compress lz4 --chunk-size 128K
roundtrip odd-1m "$T/odd.img" --compress none --chunk-size 1M
roundtrip text-z19 "$T/text.img" --compress zstd:19 --chunk-size 4K

# 100 GiB sparse with 400 MiB of data: holes are skipped, so push reads
# exactly the data (bench/push.sh measures how long it takes).
truncate -s 100G "$T/big.img"
for off in 0 1 7 33 70 99; do
        head -c 50M /dev/urandom | dd of="$T/big.img" bs=1M seek=$((off * 1024)) conv=notrunc status=none
done
gen_text "workspace file contents" 100M | dd of="$T/big.img" bs=1M seek=$((50 * 1024)) conv=notrunc status=none
hb push "$T/big.img" "$L:big" >"$T/push-big.out"
grep -Eq "read +400\.0 MiB of data \(holes skipped\)" "$T/push-big.out" ||
        fail "push of a sparse image read more than its data: $(grep "read " "$T/push-big.out")"
hb export "$L:big" "$T/big.out" >/dev/null
assert_same "$T/big.img" "$T/big.out"
[ "$(du -m "$T/big.out" | cut -f1)" -lt 1000 ] || fail "exported 100 GiB image is not sparse"
grep -q "400.0 MiB of data" "$T/push-big.out" || fail "push read more than the data: $(cat "$T/push-big.out")"

# Re-pushing the same image uploads nothing but the (identical) manifest.
hb push "$T/random.img" "$L:random2" >"$T/again.out"
grep -q "uploaded     0 blobs" "$T/again.out" || fail "re-push uploaded blobs: $(cat "$T/again.out")"

# inspect --verify reads every chunk back.
hb inspect --verify "$L:big" | grep -q "every chunk matches" || fail "inspect --verify"
echo "round trips ok"
