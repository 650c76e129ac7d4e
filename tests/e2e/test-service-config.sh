#!/usr/bin/env bash
# blockd's config file (docs/blockd.conf.md): every [blockd] key blockd
# takes is documented and refuses a bad value with FILE:LINE; a file that
# sets every option is served as it says (a docker:// export needing its
# plain-http, TLS, the metrics, the fetch log, debug flags, FUSE as root)
# and the command line wins over it; SIGHUP adds, removes and changes
# exports while a client of an unchanged export keeps its connection; bad
# files (syntax, unknown section or key, bad value) are refused with the
# line and the reason, at start and on reload, the running daemon untouched.
. "$TESTS_DIR/functions.sh"
requires_nbd_python
requires openssl nbdinfo curl python3

DOC=$TESTS_DIR/../docs/blockd.conf.md
[ -s "$DOC" ] || fail "docs/blockd.conf.md is missing"

# --- Every key: documented, and its value checked through the file. ---
# The long options come from --help; a key the file refuses as "command
# line only" is not a config key. --version makes blockd read the file and
# stop.
"$BLOCKD" --help | grep -oE '^  (-[a-zA-Z], )?--[a-z-]+' | sed 's/.*--//' | sort -u >"$T/options"
[ "$(wc -l <"$T/options")" -ge 20 ] || fail "too few options in --help: $(cat "$T/options")"
keys=()
while read -r opt; do
        printf '# a comment\n[blockd]\n%s = @bad@\n' "$opt" >"$T/one.conf"
        rc=0
        "$BLOCKD" --config "$T/one.conf" --version >"$T/one.out" 2>&1 || rc=$?
        if grep -q "command line only" "$T/one.out"; then
                continue
        fi
        keys+=("$opt")
        grep -q "^\`$opt\`\|^| \`$opt\`" "$DOC" || fail "config key '$opt' is not in docs/blockd.conf.md"
        # A value check refuses @bad@ with the file, the line and the key.
        if [ "$rc" -ne 0 ]; then
                grep -q "$T/one.conf:3: $opt " "$T/one.out" || fail "bad $opt: no FILE:LINE reason: $(cat "$T/one.out")"
        fi
done <"$T/options"
for k in nbd-socket nbd-listen tls tls-cert tls-key tls-ca control fuse metrics fetch-log pidfile cache-max \
        background fetch-timeout threads fd-cache no-sendfile poll-us cache plain-http ca-file creds creds-file authfile \
        verbose debug state-dir control-max-clients metrics-max-clients request-timeout control-idle-timeout \
        scrub-rate; do
        printf '%s\n' "${keys[@]}" | grep -qx -- "$k" || fail "'$k' is not a config key"
done
for k in export record run config help version; do
        printf '%s\n' "${keys[@]}" | grep -qx -- "$k" && fail "'$k' must be command line only"
done
# Values each key's parser refuses, through the file.
bad_value() {
        printf '[blockd]\n# line 2\n%s = %s\n' "$1" "$2" >"$T/bad.conf"
        expect_fail "$T/bad.conf:3: $1 .*$3" "$BLOCKD" --config "$T/bad.conf" --version
}
bad_value threads 0 "1-256"
bad_value fd-cache 8 "16-1000000"
bad_value poll-us x "0-100000"
bad_value cache-max lots "size"
bad_value background maybe "off, on or a rate"
bad_value fetch-timeout 0 "seconds"
bad_value tls sometimes "off, on or require"
bad_value creds nocolon "USER:PASS"
bad_value debug bogus.flag "known debug flag"
bad_value no-sendfile perhaps "true or false"
bad_value plain-http 2 "true or false"
bad_value control-max-clients 0 "1-4096"
bad_value request-timeout never "seconds"
bad_value control-idle-timeout 0 "1-86400"
bad_value scrub-rate fast "bytes/s"
bad_value creds-file "$T/no-such-file" "$T/no-such-file"

# --- Bad files, refused at start with the line and the reason. ---
bad_file() {
        local reason=$1
        shift
        printf '%s\n' "$@" >"$T/bad.conf"
        expect_fail "$reason" "$BLOCKD" --config "$T/bad.conf" --version
}
bad_file "bad.conf:2: expected 'key = value'" "[blockd]" "threads"
bad_file "bad.conf:3: a section header needs its closing" "[blockd]" "threads = 4" "[export ws"
bad_file "bad.conf:2: unknown key 'thread'" "[blockd]" "thread = 4"
bad_file "bad.conf:1: unknown section \[blokd\]" "[blokd]" "threads = 4"
bad_file "bad.conf:1: 'threads' comes before any section" "threads = 4"
bad_file "bad.conf:3: unknown key 'overlai' in \[export ws\]" "[export ws]" "ref = oci:/x:v1" "overlai = /x"
bad_file "bad.conf:1: \[export ws\] has no ref" "[export ws]" "overlay = /x"
bad_file "bad.conf:3: \[export ws\] appears twice" "[export ws]" "ref = oci:/x:v1" "[export ws]" "ref = oci:/y:v1"
bad_file "bad.conf:1: invalid export name 'a/b'" "[export a/b]" "ref = oci:/x:v1"
bad_file "bad.conf:2: unknown key 'export' \(command line only\)" "[blockd]" "export = ws=oci:/x:v1"
bad_file "bad.conf:3: ref given twice" "[export ws]" "ref = oci:/x:v1" "ref = oci:/y:v1"
bad_file "bad.conf:2: line longer than" "[blockd]" "cache = /$(head -c 300 /dev/zero | tr '\0' a)"
expect_fail "$T/nothing.conf: No such file" "$BLOCKD" --config "$T/nothing.conf" --version

# --- A file that sets every option. ---
head -c 1M /dev/urandom >"$T/disk.img"
truncate -s 4M "$T/disk.img"
hb push --chunk-size 256K "$T/disk.img" "oci:$T/layout:v1" >/dev/null
start_registry
hb push --plain-http --chunk-size 256K "$T/disk.img" "docker://$REGISTRY/ws:v1" >/dev/null
make_test_ca
printf '{"auths":{}}\n' >"$T/auth.json"
NPORT=$(free_port)
MPORT=$(free_port)
FUSE=
if [ "$(id -u)" -eq 0 ] && [ -e /dev/fuse ] && command -v fusermount3 >/dev/null; then
        mkdir -p "$T/fuse"
        FUSE="fuse = $T/fuse"
fi
cat >"$T/all.conf" <<EOF
# Every [blockd] key (docs/blockd.conf.md); the command line wins.
[blockd]
nbd-socket = $T/from-file.sock          ; the command line's --nbd-socket wins
nbd-listen = 127.0.0.1:$NPORT
tls = on
tls-cert = $T/tls/server.pem
tls-key = $T/tls/server.key
control = $T/ctl.sock
metrics = 127.0.0.1:$MPORT
fetch-log = $T/fetch.log
cache = $T/file-cache
cache-max = 1G
background = off
fetch-timeout = 20
threads = 8
fd-cache = 64
no-sendfile = true
poll-us = 0
plain-http = yes
ca-file = $CA_FILE
authfile = $T/auth.json
creds = user:secret
state-dir = $T/file-state
control-max-clients = 4
metrics-max-clients = 2
request-timeout = 20
verbose = true
debug = nbd.requests
$FUSE

[export reg]
ref = docker://$REGISTRY/ws:v1
profile = none

[export rw]
ref = oci:$T/layout:v1
overlay = $T/rw.ovl
EOF
start_blockd --config "$T/all.conf" --nbd-socket "$T/nbd.sock"
[ ! -e "$T/from-file.sock" ] || fail "the file's nbd-socket was used although the command line gave one"
nbdinfo "$(nbd_uri reg)" | grep -q "export-size: $((4 << 20))" || fail "docker:// export (plain-http) not served"
nbdcopy "$(nbd_uri reg)" "$T/reg.img"
assert_same "$T/disk.img" "$T/reg.img"
mkdir -p "$T/tls-client"
cp "$CA_FILE" "$T/tls-client/ca-cert.pem"
nbdinfo "nbds://127.0.0.1:$NPORT/rw?tls-certificates=$T/tls-client" >"$T/tls.info"
grep -q "with TLS" "$T/tls.info" || fail "no TLS on the file's nbd-listen: $(cat "$T/tls.info")"
hb ls --control "$T/ctl.sock" | grep -q "^rw .*writable" || fail "ls over the file's control socket"
curl -fsS "http://127.0.0.1:$MPORT/metrics" >"$T/metrics"
grep -q '^hocus_blk_exports 2$' "$T/metrics" || fail "metrics on the file's port"
[ -s "$T/fetch.log" ] || fail "fetch-log is empty after a cold read"
[ -n "$(ls -A "$T/file-state")" ] || fail "nothing in the file's state-dir"
[ -n "$(find "$T/file-cache" -type f -path '*chunks*' | head -1)" ] || fail "nothing in the file's cache dir"
[ "$(hb stats --control "$T/ctl.sock" --json reg | python3 -c 'import json,sys; print(json.load(sys.stdin)["exports"][0]["background"])')" = off ] ||
        fail "background = off not applied"
grep -q " debug: " "$T/blockd.log" || fail "verbose = true not applied"
grep -q "user:secret\|secret" "$T/blockd.log" && fail "credentials appear in the log"
if [ -n "$FUSE" ]; then
        cmp -n $((4 << 20)) "$T/fuse/reg" "$T/disk.img" || fail "FUSE file differs"
fi
stop_blockd

# --- Reload: exports added, removed and changed; nothing else disturbed. ---
cat >"$T/r.conf" <<EOF
[blockd]
nbd-socket = $T/r.sock
control = $T/r-ctl.sock
background = off

[export keep]
ref = oci:$T/layout:v1

[export gone]
ref = oci:$T/layout:v1

[export change]
ref = oci:$T/layout:v1
EOF
: >"$T/blockd.log"
start_blockd --config "$T/r.conf" --export "cmd=oci:$T/layout:v1"
hb attach --control "$T/r-ctl.sock" ctl "oci:$T/layout:v1" >/dev/null
names() { hb ls --control "$T/r-ctl.sock" --json | python3 -c 'import json,sys; print(" ".join(sorted(e["name"] for e in json.load(sys.stdin))))'; }
assert_eq "$(names)" "change cmd ctl gone keep" "exports at start"
reloads() { grep -c "Reloaded \|Reload refused" "$T/blockd.log" || true; }
reloaded_since() { [ "$(reloads)" -gt "$1" ]; }

# A client of "keep" holds one connection across every reload below.
mkfifo "$T/cmd" "$T/ack"
$NBD_PYTHON - "$(nbd_uri keep "$T/r.sock")" "$T/cmd" "$T/ack" "$T/disk.img" <<'PY' &
import sys, nbd
h = nbd.NBD()
h.connect_uri(sys.argv[1])
want = open(sys.argv[4], "rb").read(1 << 20)
with open(sys.argv[2]) as cmd, open(sys.argv[3], "w") as ack:
    for line in cmd:
        ok = h.pread(1 << 20, 0) == want
        ack.write("ok\n" if ok else "bad\n")
        ack.flush()
h.shutdown()
PY
CLIENT=$!
cleanup_fn "kill $CLIENT 2>/dev/null"
exec 7>"$T/cmd" 8<"$T/ack"
client_read() { echo read >&7; read -r a <&8; assert_eq "$a" ok "the held connection's read"; }
client_read

n=$(reloads)
cat >"$T/r.conf" <<EOF
[blockd]
nbd-socket = $T/r.sock
control = $T/r-ctl.sock
background = on

[export keep]
ref = oci:$T/layout:v1

[export change]
ref = oci:$T/layout:v1
overlay = $T/change.ovl

[export new]
ref = oci:$T/layout:v1

[export cmd]
ref = oci:$T/nothing:v1
EOF
kill -HUP "$BLOCKD_PID"
wait_for 30 reloaded_since "$n" || fail "no reload logged"
assert_eq "$(names)" "change cmd ctl keep new" "exports after the reload"
hb ls --control "$T/r-ctl.sock" | grep -q "^change .*writable" || fail "changed export not reattached with its overlay"
grep -q "settings in $T/r.conf changed; they take effect at the next start" "$T/blockd.log" || fail "no notice for [blockd] changes"
nbdinfo "$(nbd_uri new "$T/r.sock")" >/dev/null
client_read

# Bad files on reload: refused with the line and the reason, nothing changes.
cp "$T/r.conf" "$T/good.conf"
for bad in "[export x]|ref = oci:/x:v1|colour = red" "[blockd]|threads = 0" "[blockd|x = 1" "[export y]|overlay = /y"; do
        n=$(reloads)
        tr '|' '\n' <<<"$bad" >"$T/r.conf"
        kill -HUP "$BLOCKD_PID"
        wait_for 30 reloaded_since "$n" || fail "no reload logged"
        last=$(grep "Reloaded \|Reload refused" "$T/blockd.log" | tail -1)
        grep -q "Reload refused, nothing changed: $T/r.conf:[0-9]*: " <<<"$last" ||
                fail "bad reload not refused with FILE:LINE: $last"
        assert_eq "$(names)" "change cmd ctl keep new" "exports after a refused reload"
        client_read
done
grep -q "r.conf:3: unknown key 'colour'" "$T/blockd.log" || fail "unknown key reason"
grep -q "r.conf:2: threads wants 1-256" "$T/blockd.log" || fail "bad value reason"
grep -q "r.conf:1: a section header needs its closing" "$T/blockd.log" || fail "syntax reason"
grep -q "r.conf:1: \[export y\] has no ref" "$T/blockd.log" || fail "no-ref reason"

# Back to a file without "new": it goes, the rest stay.
python3 - "$T/good.conf" "$T/r.conf" <<'PY'
import sys
text = open(sys.argv[1]).read()
open(sys.argv[2], "w").write(text.replace("[export new]\nref = ", "# [export new]\n# ref = "))
PY
n=$(reloads)
kill -HUP "$BLOCKD_PID"
wait_for 30 reloaded_since "$n" || fail "no reload logged"
assert_eq "$(names)" "change cmd ctl keep" "exports after removing new"
client_read
exec 7>&- 8<&-
wait "$CLIENT" || fail "the held client failed"

# The state directory keeps what the file gave as the file's: an export a
# reload added and the file no longer names is not restored at the next
# start, while one attached over the control socket is.
cp "$T/r.conf" "$T/before.conf"
printf '\n[export later]\nref = oci:%s/layout:v1\n' "$T" >>"$T/r.conf"
n=$(reloads)
kill -HUP "$BLOCKD_PID"
wait_for 30 reloaded_since "$n" || fail "no reload logged"
assert_eq "$(names)" "change cmd ctl keep later" "exports after adding later"
stop_blockd
cp "$T/before.conf" "$T/r.conf"
start_blockd --config "$T/r.conf" --export "cmd=oci:$T/layout:v1"
assert_eq "$(names)" "change cmd ctl keep" "exports restored after a restart"
grep -q "Export later (from the config) is no longer given: not restored" "$T/blockd.log" ||
        fail "later was not dropped as the config's"
stop_blockd
