#!/usr/bin/env bash
# Error messages a user reads, verbatim: a damaged or incomplete OCI layout
# (truncated or missing index.json, an unknown tag, a manifest blob gone, a
# push into a damaged layout, a push --base that names no image), profile
# files that are missing or are not profiles, record --help listing --cache
# once, and blockd's --nbd-listen with a host name, a wildcard address
# (never printed as a URI to connect to) and a name that does not resolve.
. "$TESTS_DIR/functions.sh"
requires jq

# expect_msg LINE CMD...: CMD fails (not by a signal) and its stderr ends
# with exactly LINE.
expect_msg() {
        local want=$1 rc=0
        shift
        "$@" >"$T/.out" 2>"$T/.err" || rc=$?
        [ "$rc" -ne 0 ] || fail "expected failure, got success: $*"
        [ "$rc" -lt 128 ] || fail "crashed with signal $((rc - 128)): $*"
        [ "$(tail -n 1 "$T/.err")" = "$want" ] || fail "$*: expected
  $want
got
  $(cat "$T/.err")"
}

make_image "$T/a.img" random 2M
hb push "$T/a.img" "oci:$T/l:v1" >/dev/null
cp -r "$T/l" "$T/d"

# push --base: the error says it is the base that cannot be used.
expect_msg "hocus-blk: error: --base 'oci:$T/nowhere:v1': cannot open it: no such directory" \
        hb push "$T/a.img" "oci:$T/b:v1" --base "oci:$T/nowhere:v1"
expect_msg "hocus-blk: error: --base 'oci:$T/l:v9': no such image: nothing is tagged 'v9' in $T/l (its tags: v1)" \
        hb push "$T/a.img" "oci:$T/b:v1" --base "oci:$T/l:v9"
expect_msg "hocus-blk: error: --base 'bad ref!': invalid reference: 'bad ref!' is not a reference: use oci:DIR[:TAG] or docker://HOST[:PORT]/REPO[:TAG|@sha256:HEX]" \
        hb push "$T/a.img" "oci:$T/b:v1" --base 'bad ref!'

head -c 50 "$T/l/index.json" >"$T/d/index.json"
expect_msg "hocus-blk: error: oci:$T/d:v1: $T/d/index.json is truncated: not valid JSON (unexpected end of data)" \
        hb inspect "oci:$T/d:v1"
expect_msg "hocus-blk: error: Push to 'oci:$T/d:v2' failed: $T/d/index.json is truncated: not valid JSON (unexpected end of data)" \
        hb push "$T/a.img" "oci:$T/d:v2"
echo '{"schemaVersion":2}' >"$T/d/index.json"
expect_msg "hocus-blk: error: oci:$T/d:v1: $T/d/index.json is not an OCI image index (no \"manifests\" array)" \
        hb export "oci:$T/d:v1" "$T/out.img"
rm "$T/d/index.json"
expect_msg "hocus-blk: error: oci:$T/d:v1: not an OCI layout: $T/d/index.json missing" hb pull "oci:$T/d:v1"

expect_msg "hocus-blk: error: oci:$T/l:nope: no such image: nothing is tagged 'nope' in $T/l (its tags: v1)" \
        hb inspect "oci:$T/l:nope"
cp "$T/l/index.json" "$T/d/index.json"
m=$(jq -r '.manifests[0].digest' "$T/l/index.json")
rm "$T/d/blobs/sha256/${m#sha256:}"
expect_msg "hocus-blk: error: oci:$T/d:v1: $T/d/index.json names manifest $m, but $T/d/blobs/sha256/${m#sha256:} is missing" \
        hb inspect "oci:$T/d:v1"

expect_msg "hocus-blk: error: Cannot open 'oci:$T/a.img:v1': not a directory (an OCI image layout is one)" \
        hb inspect "oci:$T/a.img:v1"

expect_msg "hocus-blk: error: Cannot read the profile '$T/none.prf': No such file or directory (and it is no image reference)" \
        hb profile show "$T/none.prf"
expect_msg "hocus-blk: error: $T/a.img: not a hocus-blk profile (bad magic or too short)" \
        hb profile push "oci:$T/l:v1" "$T/a.img"
expect_msg "hocus-blk: error: Bad profile $T/a.img: not a hocus-blk profile (bad magic or too short)" \
        hb repack "oci:$T/l:v1" --profile "$T/a.img"
expect_msg "hocus-blk: error: --profile: $T/a.img: not a hocus-blk profile (bad magic or too short)" \
        hb push "$T/a.img" "oci:$T/l:v3" --profile "$T/a.img"

assert_eq "$(hb record --help | grep -c -- '--cache')" 2 "record --help: --cache in the description and once as an option"
assert_eq "$(hb record --help | grep -c -- '^  --cache')" 1 "record --help: --cache listed once"

if [ -n "${BLOCKD:-}" ] && command -v nbdinfo >/dev/null; then
        run_blockd() {
                "$BLOCKD" --cache "$T/cache" --state-dir none --control none --export "ws=oci:$T/l:v1" \
                        --background off "$@"
        }
        # A host name resolves.
        run_blockd --nbd-listen localhost:0 --run 'nbdinfo --size "$uri" && echo "$uri"' >"$T/uri" 2>"$T/log" ||
                fail "--nbd-listen localhost:0: $(cat "$T/log")"
        assert_eq "$(head -n 1 "$T/uri")" $((2 << 20)) "the export's size over localhost"
        grep -Eq '^nbd://localhost:[0-9]+/ws$' <(tail -n 1 "$T/uri") || fail "uri with localhost: $(cat "$T/uri")"
        # A wildcard address: $uri and the log name loopback.
        run_blockd --nbd-listen 0.0.0.0:0 --run 'nbdinfo --size "$uri" && echo "$uri"' >"$T/uri" 2>"$T/log" ||
                fail "--nbd-listen 0.0.0.0:0: $(cat "$T/log")"
        port=$(sed -n 's|^nbd://127\.0\.0\.1:\([0-9]*\)/ws$|\1|p' "$T/uri")
        [ -n "$port" ] || fail "a wildcard listener's \$uri: $(cat "$T/uri")"
        grep -qF "info: NBD on TCP port $port of all addresses (from this host: nbd://127.0.0.1:$port/NAME)" "$T/log" ||
                fail "log of a wildcard listener: $(grep NBD "$T/log")"
        grep -q 'nbd://0\.0\.0\.0' "$T/log" "$T/uri" && fail "0.0.0.0 printed as an address to connect to"
        # A name that does not resolve.
        rc=0
        run_blockd --nbd-listen nosuchhost.invalid:0 --run true 2>"$T/log" || rc=$?
        [ "$rc" -ne 0 ] && [ "$rc" -lt 128 ] || fail "--nbd-listen nosuchhost.invalid: status $rc"
        grep -qF "error: Cannot listen on nosuchhost.invalid:0: the host name does not resolve" "$T/log" ||
                fail "unresolvable --nbd-listen: $(cat "$T/log")"
        # No port; an overlay where none can be made.
        rc=0
        run_blockd --nbd-listen 127.0.0.1 --run true 2>"$T/log" || rc=$?
        [ "$rc" -eq 2 ] || fail "--nbd-listen without a port: status $rc"
        grep -qF "error: --nbd-listen wants HOST:PORT or [IPV6]:PORT (e.g. 127.0.0.1:10809; port 0 picks one), not '127.0.0.1' (see 'blockd --help')" \
                "$T/log" || fail "--nbd-listen without a port: $(cat "$T/log")"
        "$BLOCKD" --cache "$T/cache" --state-dir none --control none --nbd-socket "$T/nbd.sock" \
                --export "ws=oci:$T/l:v1,overlay=$T/nodir/ws.ovl" --run true 2>"$T/log" && fail "an overlay in a missing directory"
        grep -qF "error: Cannot attach export ws: cannot create the overlay '$T/nodir/ws.ovl': No such file or directory" "$T/log" ||
                fail "overlay in a missing directory: $(cat "$T/log")"
fi
echo ok
