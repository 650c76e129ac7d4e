#!/usr/bin/env bash
# Bad input: a clear message, a non-zero exit, never a crash, and nothing
# half-written left looking complete.
. "$TESTS_DIR/functions.sh"

L=oci:$T/layout
make_image "$T/ok.img" random 8M
hb push "$T/ok.img" "$L:ok" >/dev/null

# Missing, unreadable and unsuitable sources.
expect_fail "Cannot open source image .*No such file" hb push "$T/missing.img" "$L:x"
cp "$T/ok.img" "$T/locked.img"
chmod 000 "$T/locked.img"
if [ "$(id -u)" -ne 0 ]; then
        expect_fail "Permission denied" hb push "$T/locked.img" "$L:x"
else
        # root reads anything; use a path through a non-directory instead
        expect_fail "Cannot open source image .*Not a directory" hb push "$T/ok.img/sub" "$L:x"
fi
expect_fail "is a directory" hb push "$T" "$L:x"
expect_fail "neither a regular file nor a block device" hb push /dev/null "$L:x"

# References of the wrong form.
expect_fail "is not a reference" hb push "$T/ok.img" "$T/layout"
expect_fail "invalid tag" hb inspect "$L:-bad"
expect_fail "is not a reference" hb export "layout:ok" "$T/out"
expect_fail "not an OCI image layout" hb inspect "oci:$T:ok"
expect_fail "no such directory" hb inspect "oci:$T/nowhere:ok"
expect_fail "Cannot push to a digest" hb push "$T/ok.img" "$L@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

# A missing tag.
expect_fail "no such image" hb inspect "$L:nope"
expect_fail "no such image" hb export "$L:nope" "$T/out"
[ ! -e "$T/out" ] || fail "failed export left $T/out"

# Usage errors exit 2 with a pointer to --help.
rc=0; hb push "$T/ok.img" >/dev/null 2>&1 || rc=$?
assert_eq "$rc" 2 "usage error exit status"
expect_fail "see 'hocus-blk push --help'" hb push "$T/ok.img"
expect_fail "--chunk-size wants a power of two" hb push "$T/ok.img" "$L:x" --chunk-size 3000
expect_fail "--compress wants" hb push "$T/ok.img" "$L:x" --compress gzip
expect_fail "Unknown command" hb frobnicate
# Unknown debug flags are refused, naming the known ones; so are bad values.
expect_fail "--debug wants a known debug flag, not 'registry.htp' \\(known: registry.http, .*nbd.requests" hb inspect -D registry.htp "$L:ok"
expect_fail "--debug wants NAME=N with N 0-1000, not 'registry.http=on'" hb inspect -D registry.http=on "$L:ok"
grep -q "^ *registry.http: " <<<"$(hb inspect --help)" || fail "hocus-blk --help does not list the debug flags"
if [ -n "${BLOCKD:-}" ]; then
        expect_fail "--debug wants a known debug flag, not 'nbd.request' \\(known: " "$BLOCKD" -D nbd.request --nbd-socket "$T/never.sock"
        grep -q "^ *nbd.requests: " <<<"$("$BLOCKD" --help)" || fail "blockd --help does not list the debug flags"
        # The limits a host operator sets: bad values refused, naming the option.
        expect_fail "--scrub-rate wants a rate in bytes/s such as 4M, or 0 \\(off\\), not 'fast'" \
                "$BLOCKD" --scrub-rate fast --nbd-socket "$T/never.sock"
        expect_fail "--scrub-rate wants .* not '-1'" "$BLOCKD" --scrub-rate -1 --nbd-socket "$T/never.sock"
        expect_fail "--control-idle-timeout wants 1-86400, not '0'" \
                "$BLOCKD" --control-idle-timeout 0 --nbd-socket "$T/never.sock"
        expect_fail "--control-idle-timeout wants 1-86400, not '5m'" \
                "$BLOCKD" --control-idle-timeout 5m --nbd-socket "$T/never.sock"
        grep -q -- "--scrub-rate SIZE|0 [^-]*default 4M" <<<"$("$BLOCKD" --help | tr -s '\n ' '  ')" ||
                fail "blockd --help does not give --scrub-rate's default"
        grep -q -- "--control-idle-timeout SECONDS [^-]*(default 300)" <<<"$("$BLOCKD" --help | tr -s '\n ' '  ')" ||
                fail "blockd --help does not give --control-idle-timeout's default"
fi

# Damage the blobs behind a copy of the image. Find them from the manifest.
damage_copy() {
        rm -rf "$T/bad"
        cp -a "$T/layout" "$T/bad"
        manifest=$(jq -r '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"]=="ok") | .digest' "$T/bad/index.json")
        index=$(jq -r '.layers[0].digest' "$T/bad/blobs/sha256/${manifest#sha256:}")
        pack=$(jq -r '.layers[1].digest' "$T/bad/blobs/sha256/${manifest#sha256:}")
        INDEX=$T/bad/blobs/sha256/${index#sha256:}
        PACK=$T/bad/blobs/sha256/${pack#sha256:}
        chmod u+w "$INDEX" "$PACK"
}

# A truncated index (its digest no longer matches).
damage_copy
truncate -s 40 "$INDEX"
expect_fail "index blob: its bytes do not match its digest" hb inspect "oci:$T/bad:ok"

# An index whose fields point outside the pack, re-hashed so that the
# digest matches and only the decoder can catch it.
damage_copy
python3 - "$T/bad" "$manifest" <<'PY'
import hashlib, json, os, struct, subprocess, sys
root, mdigest = sys.argv[1], sys.argv[2]
blob = lambda d: os.path.join(root, "blobs/sha256", d.split(":")[1])
m = json.load(open(blob(mdigest)))
idx = open(blob(m["layers"][0]["digest"]), "rb").read()
hdr, body = bytearray(idx[:64]), idx[64:]
raw = subprocess.run(["zstd", "-dc"], input=body, capture_output=True, check=True).stdout
raw = bytearray(raw)
n_packs = struct.unpack_from("<I", hdr, 28)[0]
# first chunk's offset := far past the end of its pack
struct.pack_into("<Q", raw, n_packs * 40 + 32, 1 << 40)
body = subprocess.run(["zstd", "-q", "-c"], input=bytes(raw), capture_output=True, check=True).stdout
struct.pack_into("<Q", hdr, 40, len(body))
new = bytes(hdr) + body
d = hashlib.sha256(new).hexdigest()
open(os.path.join(root, "blobs/sha256", d), "wb").write(new)
m["layers"][0]["digest"] = "sha256:" + d
m["layers"][0]["size"] = len(new)
mb = json.dumps(m).encode()
md = hashlib.sha256(mb).hexdigest()
open(os.path.join(root, "blobs/sha256", md), "wb").write(mb)
ix = json.load(open(os.path.join(root, "index.json")))
for e in ix["manifests"]:
    if e.get("annotations", {}).get("org.opencontainers.image.ref.name") == "ok":
        e["digest"], e["size"] = "sha256:" + md, len(mb)
json.dump(ix, open(os.path.join(root, "index.json"), "w"))
PY
expect_fail "malformed index: .*outside pack" hb inspect "oci:$T/bad:ok"
expect_fail "malformed index" hb export "oci:$T/bad:ok" "$T/out"
[ ! -e "$T/out" ] || fail "failed export left $T/out"

# A pack whose bytes do not match its digest: never served.
damage_copy
printf 'garbage' | dd of="$PACK" bs=1 seek=4096 conv=notrunc status=none
expect_fail "does not match its digest" hb export "oci:$T/bad:ok" "$T/out" --no-cache
[ ! -e "$T/out" ] || fail "failed export left $T/out"
ls "$T" | grep -q '^out' && fail "failed export left a temp file: $(ls "$T")"
expect_fail "chunks failed verification" hb inspect --verify "oci:$T/bad:ok"

# A push that fails part-way leaves no tag.
damage_copy
chmod -R a-w "$T/bad/blobs" 2>/dev/null
if [ "$(id -u)" -ne 0 ]; then
        expect_fail "Push to .* failed" hb push "$T/ok.img" "oci:$T/bad:new"
fi
# kill -9 mid-push: the tag never appears, the layout stays readable.
make_image "$T/big.img" random 200M
"$HOCUS_BLK" push "$T/big.img" "$L:killed" --compress zstd:12 --threads 1 &   # not hb: $! must be the push itself
pid=$!
# Killed once it has read a few MiB of the image (200 MiB through zstd:12
# on one thread take seconds), so mid-push whatever the machine's speed.
pushing() {
        [ "$(sed -n 's/^rchar: //p' "/proc/$pid/io" 2>/dev/null || echo 0)" -ge $((4 << 20)) ] ||
                ! kill -0 $pid 2>/dev/null
}
wait_for 120 pushing || fail "the push read nothing"
kill -9 $pid 2>/dev/null || fail "the push ended before it could be killed"
wait $pid 2>/dev/null || true
expect_fail "no such image" hb inspect "$L:killed"
hb inspect --verify "$L:ok" >/dev/null
ls -A "$T/layout/blobs/sha256" | grep -q '^\.blob' && echo "note: temp blobs of the killed push remain (not named by any manifest)"
echo "bad input ok"
