#!/usr/bin/env bash
# Delta push through a registry: v2 --base v1 uploads only the new pack
# (counted from push's own report and from the registry's access log); a
# base in another repository of the same registry is mounted, not copied.
. "$TESTS_DIR/functions.sh"
requires docker-registry curl

start_registry reg
R=docker://$REGISTRY
LOG=$T/reg.log

uploads() { grep -c '"PUT /v2/[^ ]*/blobs/uploads/[^ ]*digest=' "$LOG" || true; }

make_image "$T/v1.img" random 64M
timeout 300 "$HOCUS_BLK" push "$T/v1.img" "$R/delta/app:v1" --plain-http --pack-size 4M >"$T/p1.out" || fail "push v1"
grep -q "uploaded     1[0-9] blobs" "$T/p1.out" || fail "v1 should upload its 16 packs and more: $(cat "$T/p1.out")"

cp "$T/v1.img" "$T/v2.img"
head -c 1M /dev/urandom | dd of="$T/v2.img" bs=1M seek=10 conv=notrunc status=none
before=$(uploads)
timeout 300 "$HOCUS_BLK" push "$T/v2.img" "$R/delta/app:v2" --base "$R/delta/app:v1" --plain-http --pack-size 4M \
        >"$T/p2.out" || fail "delta push"
cat "$T/p2.out"
after=$(uploads)
# One new pack and the new index; the config and 15 packs are already there.
grep -q "uploaded     2 blobs" "$T/p2.out" || fail "delta push uploaded more than the new pack and index"
assert_eq "$((after - before))" 2 "blob uploads in the registry's access log"

rm -rf "$T/cache"
timeout 300 "$HOCUS_BLK" export "$R/delta/app:v2" "$T/out.img" --plain-http >/dev/null || fail "export v2"
assert_same "$T/v2.img" "$T/out.img"

# Base in another repository: its packs are mounted (201), not uploaded.
before=$(uploads)
timeout 300 "$HOCUS_BLK" push "$T/v2.img" "$R/delta/other:v2" --base "$R/delta/app:v1" --plain-http --pack-size 4M \
        >"$T/p3.out" || fail "cross-repository delta push"
after=$(uploads)
mounts=$(grep -c '"POST /v2/delta/other/blobs/uploads/?mount=sha256:[0-9a-f]*&from=delta%2Fapp HTTP/1.1" 201' "$LOG" || true)
[ "$mounts" -ge 15 ] || fail "expected 15 mounted packs, saw $mounts: $(grep mount= "$LOG" | head -3)"
[ "$((after - before))" -le 3 ] || fail "cross-repository push uploaded $((after - before)) blobs"
rm -rf "$T/cache" "$T/out.img"
timeout 300 "$HOCUS_BLK" export "$R/delta/other:v2" "$T/out.img" --plain-http >/dev/null || fail "export other:v2"
assert_same "$T/v2.img" "$T/out.img"
echo ok
