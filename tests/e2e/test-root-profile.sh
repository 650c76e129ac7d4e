#!/usr/bin/env bash
# Boot profiles end to end, on a real docker-registry 2.8 (no referrers API:
# the referrers tag schema) and on an OCI layout:
#   record a workload's first reads (hocus-blk record --mount), publish the
#   profile (profile push), and replay cold: blockd finds the profile at
#   attach and prefetches it, so the workload itself fetches nothing (asserted
#   on blockd's counters and fetch log, not on time); without a profile the
#   same workload fetches on demand. A newer profile supersedes an older one;
#   push --profile and repack lay the profile's chunks first (checked in the
#   index) without invalidating the cache; merge; a failing command.
. "$TESTS_DIR/functions.sh"
requires_root
requires mkfs.ext4 docker-registry curl zstd python3 nbdinfo
[ -e /dev/fuse ] || skip "no /dev/fuse"

export TMPDIR=$T/tmp
# The mounts' blockd streams nothing in the background: what a workload
# fetches on demand is what it needed (blockd reads this as --background).
export HOCUS_BLK_BACKGROUND=off
mkdir -p "$TMPDIR" "$T/mnt"
mount_cleanup "$T/mnt"
gen_files "$T/files" 16 4
make_ext4 "$T/ws.img" 256M "$T/files" ws
start_registry reg
REF=docker://$REGISTRY/ws:v1
hb push "$T/ws.img" "$REF" --plain-http >/dev/null

# The two workloads: W1 reads the configs and a few modules, W2 the tools.
W1='cat "$HOCUS_BLK_MOUNT"/etc/* "$HOCUS_BLK_MOUNT"/project/module0[0-3]/* >/dev/null'
W2='cat "$HOCUS_BLK_MOUNT"/bin/* >/dev/null'

# wait_prefetch DIR: until the mount's prefetch is done (bounded).
wait_prefetch() {
        local deadline=$((SECONDS + 60))
        until [ "$(mount_stat "$1" profile_lookup)" = False ] && [ "$(mount_stat "$1" prefetch_active)" = False ] &&
                [ "$(mount_stat "$1" prefetch_done)" = "$(mount_stat "$1" prefetch_queued)" ]; do
                [ "$SECONDS" -lt "$deadline" ] || fail "prefetch did not finish"
                sleep 0.1
        done
}

# replay CACHE WORKLOAD [MOUNT ARGS...]: cold mount from an empty cache,
# wait for the prefetch, run the workload; sets PREFETCHED (chunks the
# prefetch fetched) and DEMAND (the workload's reads that waited for a
# fetch). Not the chunks fetched at demand priority (cache_misses): a
# workload reading on through chunks read ahead at the mount may start
# the next window with nobody waiting (readahead on hits), which fetches
# what the workload never reads.
replay() {
        local cache=$1 work=$2 before
        shift 2
        rm -rf "$cache"
        HOCUS_BLK_CACHE=$cache hb mount "$@" "$T/mnt" --plain-http -D export.fetch=1 >"$T/mount.out"
        wait_prefetch "$T/mnt"
        PREFETCHED=$(mount_stat "$T/mnt" prefetch_fetched)
        before=$(mount_stat "$T/mnt" demand_waits)
        HOCUS_BLK_MOUNT=$T/mnt sh -c "$work"
        DEMAND=$(( $(mount_stat "$T/mnt" demand_waits) - before ))
        cp "$(mount_run_dir "$T/mnt")/blockd.log" "$T/replay.log"
        hb umount "$T/mnt" >/dev/null
}

# --- Record W1 cold --------------------------------------------------------
hb record "$REF" --plain-http --out "$T/w1.prf" --mount -- sh -c "$W1" >"$T/rec.out"
grep -q "^Recorded $REF: [0-9]* ranges" "$T/rec.out" || fail "record said: $(cat "$T/rec.out")"
assert_no_leftovers "after record"
[ -z "$(ls -A "$TMPDIR")" ] || fail "record left its temporary chunk store: $(ls "$TMPDIR")"
hb profile show "$T/w1.prf" | grep -q "ranges" || fail "profile show FILE"

# Without a profile, W1 on a cold mount fetches on demand.
replay "$T/c0" "$W1" "$REF" --no-profile
[ "$PREFETCHED" = 0 ] || fail "--no-profile prefetched $PREFETCHED chunks"
[ "$DEMAND" -gt 0 ] || fail "a cold W1 without a profile never waited for a fetch"
echo "no profile: W1 waited for $DEMAND fetches"

# --- Publish it: an artifact whose subject is the image ---------------------
hb profile push "$REF" "$T/w1.prf" --plain-http >"$T/push.out"
grep -q "^  artifact     sha256:" "$T/push.out" || fail "profile push said: $(cat "$T/push.out")"
subject=$(sed -n 's/^  subject      sha256:\(.*\)/\1/p' "$T/push.out")
curl -fsS "http://$REGISTRY/v2/ws/tags/list" | grep -q "\"sha256-$subject\"" ||
        fail "no referrers tag for the image: $(curl -fsS "http://$REGISTRY/v2/ws/tags/list")"
hb profile show "$REF" --plain-http | grep -q "from         artifact sha256:" || fail "profile show REF"

# --- Cold replay: the prefetch fetched everything W1 needs, before W1 ------
replay "$T/c1" "$W1" "$REF"
grep -q "boot profile from referrer sha256:" "$T/replay.log" || fail "blockd did not find the published profile"
[ "$PREFETCHED" -gt 0 ] || fail "nothing prefetched"
[ "$DEMAND" = 0 ] || fail "W1 still waited for $DEMAND fetches after the prefetch"
# In the fetch log, the profile's chunks were fetched by the prefetch; the
# chunks fetched on demand (during the mount, racing it) are not W1's.
grep -c "fetch profile chunk" "$T/replay.log" | grep -qx "$PREFETCHED" || fail "fetch log and counters disagree"
grep -q "prefetch done: " "$T/replay.log" || fail "no prefetch summary in the log"
echo "profile: prefetched $PREFETCHED chunks, W1 waited for $DEMAND fetches"

# --- A newer profile wins --------------------------------------------------
hb record "$REF" --plain-http --out "$T/w2.prf" --mount -- sh -c "$W2" >/dev/null
sleep 0.01
hb profile push "$REF" "$T/w2.prf" --plain-http >/dev/null
hb profile show "$REF" --plain-http --all >"$T/show.out"
[ "$(grep -c 'created 20' "$T/show.out")" -ge 3 ] || fail "show --all: $(cat "$T/show.out")"   # 2 listed + the one used
newest=$(sed -n 's/^  \* \(sha256:[0-9a-f]*\),.*(used)$/\1/p' "$T/show.out")
grep -q "from         artifact $newest" "$T/show.out" || fail "the newest profile is not the one used: $(cat "$T/show.out")"
replay "$T/c2" "$W2" "$REF"
[ "$DEMAND" = 0 ] || fail "W2 waited for $DEMAND fetches with its own profile published"

# --- Merge: both workloads -------------------------------------------------
hb profile merge "$T/w1.prf" "$T/w2.prf" --out "$T/both.prf" >/dev/null
python3 - "$T/w1.prf" "$T/w2.prf" "$T/both.prf" <<'PY'
import struct, sys
def count(p):
    b = open(p, "rb").read()
    assert b[:8] == b"HOCUSPRF"
    return struct.unpack_from("<I", b, 20)[0]
assert count(sys.argv[3]) == count(sys.argv[1]) + count(sys.argv[2])
PY
hb record "$REF" --plain-http --out "$T/merged.prf" --merge "$T/w1.prf" --mount -- sh -c "$W2" >/dev/null
hb profile push "$REF" "$T/merged.prf" --plain-http >/dev/null
replay "$T/c3" "$W1; $W2" "$REF"
[ "$DEMAND" = 0 ] || fail "W1+W2 waited for $DEMAND fetches with the merged profile"

# --- push --profile: the profile as a layer, its chunks first ---------------
hb push "$T/ws.img" "docker://$REGISTRY/ws:v2" --plain-http --profile "$T/w1.prf" >/dev/null
replay "$T/c4" "$W1" "docker://$REGISTRY/ws:v2"
grep -q "boot profile from the manifest's profile layer" "$T/replay.log" || fail "the profile layer was not used"
[ "$DEMAND" = 0 ] || fail "W1 waited for $DEMAND fetches with the profile layer"

# --- repack: packs rewritten in profile order, cache still valid -----------
hb push "$T/ws.img" "oci:$T/layout:v1" >/dev/null
hb profile push "oci:$T/layout:v1" "$T/w2.prf" >/dev/null
hb inspect "oci:$T/layout:v1" >/dev/null || fail "the tagged image is not found next to its profile"
hb repack "oci:$T/layout:v1" "oci:$T/layout:repacked" >"$T/repack.out"
grep -q "of the boot profile first" "$T/repack.out" || fail "repack said: $(cat "$T/repack.out")"
HOCUS_BLK_CACHE=$T/c5 hb export "oci:$T/layout:repacked" "$T/repacked.img" >/dev/null
assert_same "$T/ws.img" "$T/repacked.img"
# Every chunk of the original is in the cache now: the repacked image needs none.
HOCUS_BLK_CACHE=$T/c5 hb export "oci:$T/layout:v1" "$T/again.img" >"$T/export.out"
HOCUS_BLK_CACHE=$T/c5 hb mount "oci:$T/layout:repacked" "$T/mnt" --no-profile >/dev/null
HOCUS_BLK_MOUNT=$T/mnt sh -c "$W1; $W2"
[ "$(mount_stat "$T/mnt" bytes_fetched)" = 0 ] || fail "the repacked image fetched chunks the cache holds"
hb umount "$T/mnt" >/dev/null
# The index: the profile's chunks are the first ones in pack order.
python3 - "$T/layout" repacked "$T/w2.prf" <<'PY'
import json, struct, subprocess, sys
lay, tag, prf = sys.argv[1:4]
def blob(d):
    return open(f"{lay}/blobs/sha256/{d.split(':')[1]}", "rb").read()
idx = json.load(open(f"{lay}/index.json"))
m = next(e for e in idx["manifests"] if e.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag)
man = json.loads(blob(m["digest"]))
assert man["layers"][-1]["mediaType"] == "application/vnd.hocus.blk.profile.v1", man["layers"][-1]
ib = blob(man["layers"][0]["digest"])
size, csize, npacks, nchunks = struct.unpack_from("<QIII", ib, 16)
nmap = struct.unpack_from("<Q", ib, 56)[0]
body = subprocess.run(["zstd", "-dc"], input=ib[64:], capture_output=True, check=True).stdout
chunks = [struct.unpack_from("<QII I", body, 40 * npacks + 56 * i + 32) for i in range(nchunks)]
cmap = struct.unpack_from(f"<{nmap}I", body, 40 * npacks + 56 * nchunks)
p = open(prf, "rb").read()
order, seen = [], set()
for i in range(struct.unpack_from("<I", p, 20)[0]):
    off, ln, _ = struct.unpack_from("<QII", p, 32 + 16 * i)
    for c in range(off // csize, (off + ln - 1) // csize + 1):
        if c < nmap and cmap[c] != 0xFFFFFFFF and cmap[c] not in seen:
            seen.add(cmap[c]); order.append(cmap[c])
# (pack, offset) of the profile's unique chunks, in profile order, must be
# the first positions of the packs, ascending.
pos = [(chunks[k][3], chunks[k][0]) for k in order]
layout = sorted((c[3], c[0]) for c in chunks)
assert pos == layout[:len(pos)], (pos[:5], layout[:5])
print(f"repack: {len(order)} profile chunks first of {nchunks}")
PY

# --- record without --mount: $uri (NBD) and $HOCUS_BLK_FILE for a VM ------
hb record "$REF" --plain-http --out "$T/vm.prf" -- sh -c '
        [ -z "${HOCUS_BLK_MOUNT:-}" ] || exit 9
        [ "$(nbdinfo --size "$uri")" = 268435456 ] || exit 10
        dd if="$HOCUS_BLK_FILE" of=/dev/null bs=1M count=4 status=none' >/dev/null ||
        fail "record without --mount"
python3 - "$T/vm.prf" <<'PY'
import struct, sys
b = open(sys.argv[1], "rb").read()
n = struct.unpack_from("<I", b, 20)[0]
covered = set()
for i in range(n):
    off, ln, _ = struct.unpack_from("<QII", b, 32 + 16 * i)
    covered.update(range(off // 4096, (off + ln) // 4096))
assert set(range(0, 1024)) <= covered, "the first 4 MiB read through the file are not in the profile"
PY

# --- record: a failing command still saves, and cleans up; a bad ref -------
rc=0
hb record "$REF" --plain-http --out "$T/fail.prf" --mount -- sh -c "$W1; exit 3" >/dev/null 2>&1 || rc=$?
[ "$rc" -ne 0 ] || fail "record of a failing command succeeded"
[ -s "$T/fail.prf" ] || fail "the profile of a failing command was not saved"
assert_no_leftovers "after a failing record"
expect_fail "no such image" hb record "docker://$REGISTRY/ws:nope" --plain-http --out "$T/x.prf" -- true
assert_no_leftovers "after a record of a bad reference"
[ -z "$(ls -A "$TMPDIR")" ] || fail "record left temporary chunk stores: $(ls "$TMPDIR")"
echo ok
