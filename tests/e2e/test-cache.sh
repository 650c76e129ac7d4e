#!/usr/bin/env bash
# The chunk store through the CLI: two exports filling it at once, a
# corrupted entry found by `cache verify` and never served, gc bounds.
. "$TESTS_DIR/functions.sh"

L=oci:$T/layout
make_image "$T/a.img" random 40M
hb push "$T/a.img" "$L:a" >/dev/null
unique=$(hb inspect --json "$L:a" | jq .unique_chunks)

# Two processes fill the same store with the same chunks at once.
hb export "$L:a" "$T/x1" --threads 3 >/dev/null &
p1=$!
hb export "$L:a" "$T/x2" --threads 3 >/dev/null &
p2=$!
wait $p1 || fail "first concurrent export failed"
wait $p2 || fail "second concurrent export failed"
assert_same "$T/a.img" "$T/x1"
assert_same "$T/a.img" "$T/x2"
hb cache stats --json >"$T/stats.json"
assert_eq "$(jq .entries "$T/stats.json")" "$unique" "entries after concurrent fills"
hb cache verify | grep -q "0 corrupt" || fail "fresh store does not verify"

# Corrupt one entry: verify reports and removes it (exit 1), and an export
# afterwards refetches it and is still identical.
entry=$(find "$T/cache/chunks" -type f -print -quit)
printf 'X' | dd of="$entry" bs=1 seek=1000 conv=notrunc status=none
expect_fail "Corrupt entry .*content does not match" hb cache verify
[ ! -e "$entry" ] || fail "corrupt entry was not removed"
hb cache verify >/dev/null
hb export "$L:a" "$T/x2b" >/dev/null # refills the removed entry
# Corrupt another and export without verifying first: never served.
entry=$(find "$T/cache/chunks" -type f -print -quit)
printf 'Y' | dd of="$entry" bs=1 seek=5 conv=notrunc status=none
hb export "$L:a" "$T/x3" >"$T/x3.out"
assert_same "$T/a.img" "$T/x3"
grep -q "fetched 256.0 KiB (1 chunks)" "$T/x3.out" || fail "corrupt entry was not refetched: $(cat "$T/x3.out")"

# gc evicts down to the bound.
hb cache gc --max-size 10M >/dev/null
bytes=$(hb cache stats --json | jq .bytes)
[ "$bytes" -le $((10 << 20)) ] || fail "gc left $bytes bytes"
expect_fail "gc needs --max-size" hb cache gc
expect_fail "unknown cache command" hb cache frobnicate
echo "cache ok"
