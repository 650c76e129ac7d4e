#!/usr/bin/env bash
# --json everywhere: push, inspect, pull, export, repack, profile show,
# cache stats (and record, as root with FUSE). jq parses every document,
# which is the whole of stdout (progress and logs go to stderr), keys are
# snake_case, and values agree across commands. The chunk store's
# directory has a quote, a double quote and a backslash in its name.
. "$TESTS_DIR/functions.sh"
requires jq python3

export HOCUS_BLK_CACHE="$T/ca'ch\"e\\dir"
L=oci:$T/layout
make_image "$T/a.img" random 8M

# json FILE: stdout of a --json command must be one JSON document whose
# keys (at every depth) are snake_case.
json() {
        jq -e 'type == "object"' "$1" >/dev/null || fail "$1 is not a JSON object: $(cat "$1")"
        local bad
        bad=$(jq -r '[paths | .[] | strings | select(test("^[a-z][a-z0-9_]*$") | not)] | unique | join(" ")' "$1")
        [ -z "$bad" ] || fail "keys not in snake_case in $1: $bad"
}

hb push "$T/a.img" "$L:v1" --chunk-size 64K --json >"$T/push.json" 2>"$T/push.err"
json "$T/push.json"
digest=$(jq -r .manifest_digest "$T/push.json")
[[ $digest == sha256:* ]] || fail "push: manifest_digest '$digest'"
assert_eq "$(jq .image_size "$T/push.json")" $((8 << 20)) "push: image_size"
assert_eq "$(jq .chunk_size "$T/push.json")" 65536 "push: chunk_size"
assert_eq "$(jq .chunks "$T/push.json")" 128 "push: chunks"
assert_eq "$(jq -r .reference "$T/push.json")" "$L:v1" "push: reference"

hb inspect "$L:v1" --json >"$T/inspect.json"
json "$T/inspect.json"
assert_eq "$(jq -r .manifest_digest "$T/inspect.json")" "$digest" "inspect and push agree on the manifest"
assert_eq "$(jq .unique_chunks "$T/inspect.json")" "$(jq .unique_chunks "$T/push.json")" "unique_chunks"
hb inspect "$L:v1" --json --chunks >"$T/chunks.json"
json "$T/chunks.json"
assert_eq "$(jq '.chunk_table | length' "$T/chunks.json")" "$(jq .unique_chunks "$T/push.json")" "chunk_table"

hb pull "$L:v1" --json >"$T/pull.json"
json "$T/pull.json"
assert_eq "$(jq .fetched_chunks "$T/pull.json")" "$(jq .unique_chunks "$T/push.json")" "pull: fetched_chunks"
assert_eq "$(jq .cached_chunks "$T/pull.json")" 0 "pull: cached_chunks"
assert_eq "$(jq .stored "$T/pull.json")" true "pull: stored"

hb export "$L:v1" "$T/out.img" --json >"$T/export.json"
json "$T/export.json"
assert_same "$T/a.img" "$T/out.img"
assert_eq "$(jq .image_size "$T/export.json")" $((8 << 20)) "export: image_size"
assert_eq "$(jq .fetched_chunks "$T/export.json")" 0 "export after pull fetches nothing"
assert_eq "$(jq -r .destination "$T/export.json")" "$T/out.img" "export: destination"

hb cache stats --json >"$T/stats.json"
json "$T/stats.json"
assert_eq "$(jq -r .dir "$T/stats.json")" "$HOCUS_BLK_CACHE" "cache stats: dir with quotes"
assert_eq "$(jq .entries "$T/stats.json")" "$(jq .unique_chunks "$T/push.json")" "cache stats: entries"
jq -e '.disk_bytes >= .bytes' "$T/stats.json" >/dev/null || fail "cache stats: disk_bytes < bytes"

hb cache verify --json >"$T/verify.json"
json "$T/verify.json"
assert_eq "$(jq .corrupt_entries "$T/verify.json")" 0 "cache verify: corrupt_entries"
assert_eq "$(jq .entries "$T/verify.json")" "$(jq .unique_chunks "$T/push.json")" "cache verify: entries"
hb cache gc --max-size 0 --json >"$T/gc.json"
json "$T/gc.json"
assert_eq "$(jq .evicted_entries "$T/gc.json")" "$(jq .unique_chunks "$T/push.json")" "cache gc: evicted_entries"
assert_eq "$(jq .entries "$T/gc.json")" 0 "cache gc: entries left"
hb pull "$L:v1" >/dev/null

# A profile of chunks 3 and 10-11.
write_profile "$T/boot.prf" 65536 3:1 10:2
hb profile show "$T/boot.prf" --json >"$T/show-file.json"
json "$T/show-file.json"
assert_eq "$(jq .ranges "$T/show-file.json")" 2 "profile show FILE: ranges"
assert_eq "$(jq .bytes "$T/show-file.json")" $((3 * 65536)) "profile show FILE: bytes"
hb profile show "$L:v1" --json >"$T/show-none.json"
json "$T/show-none.json"
assert_eq "$(jq .origin "$T/show-none.json")" null "profile show: no profile yet"
hb profile push "$L:v1" "$T/boot.prf" >/dev/null
hb profile show "$L:v1" --all --json >"$T/show.json"
json "$T/show.json"
assert_eq "$(jq -r .origin "$T/show.json")" artifact "profile show: origin"
assert_eq "$(jq .prefetch_chunks "$T/show.json")" 3 "profile show: prefetch_chunks"
assert_eq "$(jq '.published | length' "$T/show.json")" 1 "profile show --all: published"
assert_eq "$(jq '.published[0].used' "$T/show.json")" true "profile show --all: used"

hb repack "$L:v1" "$L:v2" --json >"$T/repack.json"
json "$T/repack.json"
assert_eq "$(jq .profile_chunks "$T/repack.json")" 3 "repack: profile_chunks"
assert_eq "$(jq .chunks "$T/repack.json")" "$(jq .unique_chunks "$T/push.json")" "repack: chunks"
assert_eq "$(jq -r .manifest_digest "$T/repack.json")" "$(hb inspect "$L:v2" --json | jq -r .manifest_digest)" \
        "repack: manifest_digest"

# The commands that ask a running blockd: attach, ls (an array), stats.
if [ -n "${BLOCKD:-}" ]; then
        start_blockd --cache "$T/bcache" --control "$T/control.sock" --nbd-socket "$T/nbd.sock" --background off
        hb attach ws "$L:v1" --control "$T/control.sock" --json >"$T/attach.json"
        json "$T/attach.json"
        hb ls --control "$T/control.sock" --json >"$T/ls.json"
        jq -e 'type == "array" and length == 1 and .[0].name == "ws"' "$T/ls.json" >/dev/null || fail "ls --json: $(cat "$T/ls.json")"
        jq '{ls: .}' "$T/ls.json" >"$T/ls-obj.json"
        json "$T/ls-obj.json"
        hb stats --control "$T/control.sock" --json >"$T/stats-blockd.json"
        json "$T/stats-blockd.json"
        assert_eq "$(jq -r '.exports[0].name' "$T/stats-blockd.json")" ws "stats --json: the export"
        # An export with a vhost-user-blk socket: ls names it (vhost_user);
        # one without has no such key.
        hb attach vh "$L:v1" --vhost-user "$T/vh.sock" --control "$T/control.sock" >/dev/null
        [ -S "$T/vh.sock" ] || fail "no vhost-user socket at $T/vh.sock"
        hb ls --control "$T/control.sock" --json >"$T/ls2.json"
        assert_eq "$(jq -r '.[] | select(.name == "vh") | .vhost_user' "$T/ls2.json")" "$T/vh.sock" "ls --json: vhost_user"
        assert_eq "$(jq -r '.[] | select(.name == "ws") | has("vhost_user")' "$T/ls2.json")" false \
                "ls --json: no vhost_user without a socket"
        hb ls --control "$T/control.sock" >"$T/ls2.txt"
        grep -qF "vhost-user: $T/vh.sock" "$T/ls2.txt" || fail "ls shows no vhost-user socket: $(cat "$T/ls2.txt")"
        [ "$(grep -c "vhost-user:" "$T/ls2.txt")" = 1 ] || fail "ls shows a vhost-user socket for ws: $(cat "$T/ls2.txt")"
fi

# record: root, FUSE and blockd; COMMAND's own stdout goes to stderr.
if [ "$(id -u)" -eq 0 ] && [ -e /dev/fuse ] && [ -n "${BLOCKD:-}" ]; then
        export TMPDIR=$T/tmp
        mkdir -p "$TMPDIR"
        hb record "$L:v1" --out "$T/rec.prf" --json -- \
                sh -c 'echo noise; dd if="$HOCUS_BLK_FILE" bs=64K skip=5 count=2 status=none >/dev/null' \
                >"$T/record.json" 2>"$T/record.err"
        json "$T/record.json"
        grep -qx noise "$T/record.err" || fail "record: COMMAND's stdout did not go to stderr"
        assert_eq "$(jq .command_status "$T/record.json")" 0 "record: command_status"
        jq -e '.ranges >= 1 and .bytes >= 131072' "$T/record.json" >/dev/null || fail "record: $(cat "$T/record.json")"
        assert_eq "$(jq -r .profile "$T/record.json")" "$T/rec.prf" "record: profile"
        echo "record --json checked"
fi
echo "ok"
