# Shared helpers for end-to-end tests. Source it first thing:
#   . "$TESTS_DIR/functions.sh"
# It makes a temp dir $T, installs one trap that runs every registered
# cleanup (LIFO) on any exit, and provides helpers to start real servers
# on free loopback ports.
set -euo pipefail

: "${HOCUS_BLK:?run through meson test (HOCUS_BLK unset)}"
: "${TESTS_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}"

T=$(mktemp -d "${TMPDIR:-/tmp}/hocus-test.XXXXXX")
export HOCUS_BLK_CACHE=$T/cache
# blockd keeps its export table here (never the host's /var/lib/hocus-blk).
export HOCUS_BLK_STATE_DIR=$T/state
export HOCUS_BLK_NO_PROGRESS=1
_cleanups=()

# Register a command to run at exit (last registered runs first).
cleanup_fn() {
        _cleanups+=("$*")
}

# _kill_tree PID: SIGKILL a process and every descendant, children first
# being listed before the parent dies (so none is orphaned unseen).
_kill_tree() {
        local c
        kill -STOP "$1" 2>/dev/null
        for c in $(pgrep -P "$1"); do
                _kill_tree "$c"
        done
        kill -KILL "$1" 2>/dev/null
}

_run_cleanups() {
        local rc=$? i
        trap - EXIT INT TERM ERR
        set +e
        for ((i = ${#_cleanups[@]} - 1; i >= 0; i--)); do
                eval "${_cleanups[$i]}" >/dev/null 2>&1
        done
        # Whatever the test left running in the background (a client
        # started with &, and its children) goes too.
        for i in $(jobs -p); do
                _kill_tree "$i"
                { wait "$i"; } 2>/dev/null
        done
        if [ -n "${KEEP_T:-}" ] || { [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ] && [ -n "${KEEP_LOGS:-}" ]; }; then
                echo "test state kept in $T" >&2
        else
                rm -rf "$T"
        fi
        exit "$rc"
}
trap _run_cleanups EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fail() {
        echo "FAIL: $*" >&2
        exit 1
}

skip() {
        echo "SKIP: $*" >&2
        exit 77
}

# requires CMD...: skip the test (77) when a program is missing.
requires() {
        local c
        for c in "$@"; do
                command -v "$c" >/dev/null 2>&1 || skip "$c is not installed"
        done
}

requires_root() {
        [ "$(id -u)" -eq 0 ] || skip "needs root"
}

# hb ARGS...: run hocus-blk.
hb() {
        "$HOCUS_BLK" "$@"
}

# expect_fail "message regex" CMD...: CMD must exit non-zero (not by a
# signal) and print a message matching the regex on stderr.
expect_fail() {
        local pattern=$1 rc=0
        shift
        "$@" >"$T/.out" 2>"$T/.err" || rc=$?
        [ "$rc" -ne 0 ] || fail "expected failure, got success: $*"
        [ "$rc" -lt 128 ] || fail "crashed with signal $((rc - 128)): $* ($(cat "$T/.err"))"
        grep -Eq -- "$pattern" "$T/.err" || fail "expected /$pattern/ in stderr of: $*; got: $(cat "$T/.err")"
}

# assert_same A B: files have identical bytes (holes are only compared
# as zeros, never read, so 100 GiB sparse files compare in a moment).
assert_same() {
        local why
        why=$(python3 "$TESTS_DIR/sparse-cmp.py" "$1" "$2") || fail "${why:-$1 and $2 differ}"
}

assert_eq() {
        [ "$1" = "$2" ] || fail "${3:-values differ}: '$1' != '$2'"
}

# free_port: a TCP port on 127.0.0.1 that nothing listens on right now.
free_port() {
        python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# wait_for SECONDS CMD...: poll CMD until it succeeds (readiness probe).
wait_for() {
        local deadline=$((SECONDS + $1))
        shift
        until "$@" >/dev/null 2>&1; do
                [ "$SECONDS" -lt "$deadline" ] || return 1
                sleep 0.05
        done
}

# stop_pid PID [NAME]: SIGTERM and wait; fail the test on an unclean exit.
stop_pid() {
        local pid=$1 name=${2:-process} rc=0 i
        kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || rc=$?; [ "$rc" -eq 0 ] || fail "$name exited with $rc before stop"; return 0; }
        kill -TERM "$pid"
        for i in $(seq 1 1200); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.05
        done
        if kill -0 "$pid" 2>/dev/null; then
                kill -KILL "$pid" 2>/dev/null
                fail "$name did not stop within 60 s of SIGTERM"
        fi
        wait "$pid" 2>/dev/null || rc=$?
        [ "$rc" -eq 0 ] || [ "$rc" -eq 143 ] || fail "$name exited with status $rc after SIGTERM"
}

# start_registry NAME [extra yaml]: start docker-registry on a free port with
# storage in $T/NAME. Sets REGISTRY (host:port) and REGISTRY_PID.
start_registry() {
        requires docker-registry curl
        local name=${1:-registry} port
        port=$(free_port)
        mkdir -p "$T/$name"
        _registry_yaml "$name" "$port" "${2:-}"
        _run_registry "$name" "$port" curl -fsS "http://127.0.0.1:$port/v2/"
}

# gen_text LINE SIZE: SIZE bytes of LINE repeated, on stdout.
gen_text() {
        (set +o pipefail; yes "$1" | head -c "$2")
}

# gen_lines SIZE: SIZE bytes of numbered lines: compressible, never repeating.
gen_lines() {
        (set +o pipefail; seq -f "line %.0f of a file in the workspace source tree" 1 100000000 | head -c "$1")
}

# make_image PATH KIND SIZE: generate a test disk image.
#   zero, random, text, repeated, mixed, sparse (data at a few offsets)
make_image() {
        local path=$1 kind=$2 size=$3
        rm -f "$path"
        truncate -s "$size" "$path"
        case $kind in
        zero) ;;
        random) head -c "$size" /dev/urandom | dd of="$path" conv=notrunc status=none ;;
        text) gen_text "the quick brown fox jumps over the lazy dog $RANDOM" "$size" |
                dd of="$path" conv=notrunc status=none ;;
        repeated)
                head -c 1M /dev/urandom >"$T/.block"
                local i n=$(($(numfmt --from=iec "$size") / 1048576))
                for ((i = 0; i < n; i++)); do
                        dd if="$T/.block" of="$path" bs=1M seek="$i" conv=notrunc status=none
                done ;;
        *) fail "make_image: unknown kind $kind" ;;
        esac
}

# ---- registries with TLS and auth, token service, fault proxy -------------
HELPERS_DIR=$TESTS_DIR/helpers

# wait_file SECONDS PATH: wait until PATH exists (a helper's port file).
wait_file() {
        wait_for "$1" test -s "$2"
}

# make_test_ca: a throwaway CA and a server certificate for 127.0.0.1 and
# localhost, in $T/tls: ca.pem, server.pem, server.key. Sets CA_FILE.
make_test_ca() {
        requires openssl
        local d=$T/tls
        mkdir -p "$d"
        CA_FILE=$d/ca.pem
        [ -s "$CA_FILE" ] && return 0
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
                -subj "/CN=hocus-blk test CA" -keyout "$d/ca.key" -out "$d/ca.pem" \
                -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=127.0.0.1" \
                -keyout "$d/server.key" -out "$d/server.csr" 2>/dev/null
        printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >"$d/ext"
        openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial -days 2 \
                -extfile "$d/ext" -out "$d/server.pem" 2>/dev/null
}

# _run_registry NAME PORT PROBE...: start docker-registry with $T/NAME.yml;
# PROBE (a command) must succeed once it answers.
_run_registry() {
        local name=$1 port=$2
        shift 2
        docker-registry serve "$T/$name.yml" >"$T/$name.log" 2>&1 &
        REGISTRY_PID=$!
        cleanup_fn "kill $REGISTRY_PID; wait $REGISTRY_PID"
        REGISTRY=127.0.0.1:$port
        wait_for 20 "$@" || fail "registry $name did not start: $(tail -5 "$T/$name.log")"
}

# _registry_yaml NAME PORT EXTRA: the common config.
_registry_yaml() {
        cat >"$T/$1.yml" <<YAML
version: 0.1
log:
  level: warn
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: $T/$1/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$2
$3
YAML
}

# start_tls_registry NAME USER PASS: docker-registry over TLS (certificate
# from make_test_ca) with htpasswd Basic auth for USER:PASS. Sets REGISTRY,
# REGISTRY_PID and CA_FILE.
start_tls_registry() {
        requires docker-registry curl htpasswd
        local name=$1 port
        make_test_ca
        port=$(free_port)
        mkdir -p "$T/$name"
        htpasswd -Bbn "$2" "$3" >"$T/$name.htpasswd" 2>/dev/null
        _registry_yaml "$name" "$port" "  tls:
    certificate: $T/tls/server.pem
    key: $T/tls/server.key
auth:
  htpasswd:
    realm: hocus-test
    path: $T/$name.htpasswd"
        _run_registry "$name" "$port" curl -sS -o /dev/null --cacert "$CA_FILE" "https://127.0.0.1:$port/v2/"
}

# start_token_registry NAME [token-server args...]: a Bearer token service
# (helpers/token-server.py, RS256 JWTs signed with a test key) and a plain
# HTTP docker-registry that trusts it. Sets REGISTRY, REGISTRY_PID, TOKEN_LOG
# and TOKEN_URL.
start_token_registry() {
        requires docker-registry curl python3 openssl
        local name=$1 port tport
        shift
        mkdir -p "$T/$name"
        openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=hocus-blk token issuer" \
                -keyout "$T/$name.token.key" -out "$T/$name.token.pem" 2>/dev/null
        TOKEN_LOG=$T/$name.tokens
        : >"$TOKEN_LOG"
        python3 "$HELPERS_DIR/token-server.py" --key "$T/$name.token.key" --cert "$T/$name.token.pem" \
                --port-file "$T/$name.token.port" --log "$TOKEN_LOG" "$@" >"$T/$name.token.out" 2>&1 &
        local tpid=$!
        cleanup_fn "kill $tpid; wait $tpid"
        wait_file 10 "$T/$name.token.port" || fail "token service did not start: $(cat "$T/$name.token.out")"
        tport=$(cat "$T/$name.token.port")
        TOKEN_URL=http://127.0.0.1:$tport/token
        port=$(free_port)
        _registry_yaml "$name" "$port" "auth:
  token:
    realm: $TOKEN_URL
    service: hocus-test-registry
    issuer: hocus-test-issuer
    rootcertbundle: $T/$name.token.pem"
        _run_registry "$name" "$port" curl -sS -o /dev/null "http://127.0.0.1:$port/v2/"
}

# start_fault_proxy NAME UPSTREAM [fault-proxy args...]: helpers/fault-proxy.py
# in front of UPSTREAM (host:port). Sets PROXY (host:port), PROXY_PID and
# PROXY_LOG.
start_fault_proxy() {
        requires python3
        local name=$1 upstream=$2
        shift 2
        PROXY_LOG=$T/$name.log
        : >"$PROXY_LOG"
        python3 "$HELPERS_DIR/fault-proxy.py" --upstream "$upstream" --port-file "$T/$name.port" \
                --log "$PROXY_LOG" "$@" >"$T/$name.out" 2>&1 &
        PROXY_PID=$!
        cleanup_fn "kill $PROXY_PID; wait $PROXY_PID"
        wait_file 10 "$T/$name.port" || fail "fault proxy did not start: $(cat "$T/$name.out")"
        PROXY=127.0.0.1:$(cat "$T/$name.port")
}

# Under -Db_sanitize, make every sanitizer report an abort (exit >= 128),
# so that expect_fail cannot mistake a report for the expected failure.
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:abort_on_error=1:print_stacktrace=1}

# start_blockd [ARGS...]: start $BLOCKD with a pidfile in $T and wait until it
# is ready (the pidfile appears once every socket listens). Logs go to
# $T/blockd.log (debug on unless BLOCKD_QUIET=1). Sets BLOCKD_PID. The
# cleanup stops it if the test has not (stop_blockd checks the exit status).
start_blockd() {
        : "${BLOCKD:?run through meson test (BLOCKD unset)}"
        local pidfile=$T/blockd.pid verbose=-v
        [ -z "${BLOCKD_QUIET:-}" ] || verbose=
        rm -f "$pidfile"
        # Never the host's default control socket: the test's own, unless given.
        HOCUS_BLK_CONTROL=${HOCUS_BLK_CONTROL:-$T/control.sock} \
                "$BLOCKD" $verbose --pidfile "$pidfile" "$@" >>"$T/blockd.log" 2>&1 &
        BLOCKD_PID=$!
        cleanup_fn "kill -TERM $BLOCKD_PID 2>/dev/null; wait $BLOCKD_PID 2>/dev/null"
        local deadline=$((SECONDS + 120))
        until [ -s "$pidfile" ]; do
                if ! kill -0 "$BLOCKD_PID" 2>/dev/null; then
                        wait "$BLOCKD_PID" 2>/dev/null || true
                        fail "blockd exited during startup: $(tail -5 "$T/blockd.log")"
                fi
                [ "$SECONDS" -lt "$deadline" ] || fail "blockd did not become ready: $(tail -5 "$T/blockd.log")"
                sleep 0.02
        done
}

# stop_blockd: SIGTERM, wait, fail the test unless blockd exits cleanly.
stop_blockd() {
        stop_pid "$BLOCKD_PID" blockd
}

# kill9_blockd: simulate a crash.
kill9_blockd() {
        kill -KILL "$BLOCKD_PID" 2>/dev/null || true
        wait "$BLOCKD_PID" 2>/dev/null || true
}

# nbd_uri NAME [SOCKET]: the URI of an export on a blockd Unix socket.
nbd_uri() {
        echo "nbd+unix:///$1?socket=${2:-$T/nbd.sock}"
}

# blockd_stat NAME FIELD [CONTROL]: one per-export counter via hocus-blk stats --json.
blockd_stat() {
        hb stats --control "${3:-$T/control.sock}" --json "$1" |
                python3 -c 'import json,sys; print(json.load(sys.stdin)["exports"][0][sys.argv[1]])' "$2"
}

# wait_profile_lookup NAME [CONTROL]: until blockd has looked for export
# NAME's boot profile (it looks after the attach, while the export serves).
wait_profile_lookup() {
        wait_for 120 _profile_looked_up "$1" "${2:-}" || fail "export $1: the profile lookup did not end"
}

_profile_looked_up() {
        [ "$(blockd_stat "$1" profile_lookup "$2")" = False ]
}

# requires_nbd_python: set NBD_PYTHON to a python3 that has libnbd's
# bindings (Debian: python3-libnbd, which also provides nbdsh); skip if none.
requires_nbd_python() {
        local p
        for p in python3 /usr/bin/python3; do
                if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import nbd' 2>/dev/null; then
                        NBD_PYTHON=$p
                        return 0
                fi
        done
        skip "libnbd's python bindings (python3-libnbd) are not installed"
}

# ---- hocus-blk mount / record: run dirs, images, leftovers -----------------

# Mounts and record sessions keep their state under $T/run, and hocus-blk
# starts the blockd of this build.
export HOCUS_BLK_RUN_DIR=$T/run
[ -z "${BLOCKD:-}" ] || export HOCUS_BLK_BLOCKD=$BLOCKD

# mount_cleanup DIR: at exit, undo a hocus-blk mount on DIR if the test
# has not (lazily, so a failed test cannot hang the cleanup).
mount_cleanup() {
        cleanup_fn "hb umount --lazy '$1' || umount -l '$1'"
}

# make_ext4 PATH SIZE FILES_DIR [LABEL]: an ext4 filesystem image with the
# files of FILES_DIR (mkfs.ext4 -d), sparse.
make_ext4() {
        requires mkfs.ext4
        rm -f "$1"
        mkfs.ext4 -q -F -L "${4:-hocus}" -d "$3" "$1" "$2" >/dev/null 2>&1 || fail "mkfs.ext4 -d $3 failed"
}

# unstale CMD...: run CMD in a private mount namespace from which every mount
# that cannot be stat'ed (a FUSE mount whose daemon is gone, left by anything
# on the host) is detached. mkfs.btrfs refuses to run at all while such a
# mount exists ("cannot check mount status"); the host's mounts stay as they are.
unstale() {
        unshare -m --propagation private bash -c '
                while read -r _ m _; do
                        m=$(printf "%b" "$m")
                        stat -- "$m" >/dev/null 2>&1 || umount -l -- "$m" 2>/dev/null || true
                done </proc/self/mounts
                exec "$@"' unstale "$@"
}

# gen_files DIR MiB [SEED]: a workspace tree (tests/gen-workspace.py) and
# DIR.sha256, the checksums of every file in it (relative paths).
gen_files() {
        python3 "$TESTS_DIR/gen-workspace.py" "$1" --size "$2" --seed "${3:-1}" >/dev/null
        (cd "$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum) >"$1.sha256"
}

# check_files MOUNT SUMS: every file's checksum matches.
check_files() {
        (cd "$1" && sha256sum --quiet -c "$2") >"$T/.sumcheck" 2>&1 ||
                fail "checksums differ under $1: $(head -5 "$T/.sumcheck")"
}

# mount_run_dir DIR: the run directory of the hocus-blk mount on DIR.
mount_run_dir() {
        local d want
        want=$(realpath "$1")
        for d in "$HOCUS_BLK_RUN_DIR"/mounts/*/; do
                [ -f "$d/state.json" ] || continue
                if [ "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["dir"])' "$d/state.json")" = "$want" ]; then
                        echo "${d%/}"
                        return 0
                fi
        done
        return 1
}

# mount_stat DIR FIELD: one counter of the blockd behind a hocus-blk mount.
mount_stat() {
        local run
        run=$(mount_run_dir "$1") || fail "no hocus-blk mount on $1"
        blockd_stat disk "$2" "$run/control.sock"
}

# assert_no_leftovers: nothing a mount or record set up under $T remains:
# no filesystem or FUSE mount, loop device, blockd, or run directory.
assert_no_leftovers() {
        local what=${1:-}
        if grep -q " $T" /proc/self/mountinfo; then
                fail "mounts left behind${what:+ ($what)}: $(grep " $T" /proc/self/mountinfo)"
        fi
        if losetup -a | grep -q "$T"; then
                fail "loop devices left behind${what:+ ($what)}: $(losetup -a | grep "$T")"
        fi
        if pgrep -f "blockd.*$HOCUS_BLK_RUN_DIR" >/dev/null; then
                fail "blockd left running${what:+ ($what)}: $(pgrep -af "blockd.*$HOCUS_BLK_RUN_DIR")"
        fi
        if [ -d "$HOCUS_BLK_RUN_DIR" ] && [ -n "$(ls -A "$HOCUS_BLK_RUN_DIR")" ]; then
                fail "run directories left behind${what:+ ($what)}: $(find "$HOCUS_BLK_RUN_DIR" | head)"
        fi
}

# ---- the lazy engine: hydration, the chunk store, the fetch log -----------

# wait_hydrated NAME [CONTROL] [SECONDS]: until blockd's background stream
# has every chunk of export NAME local and blockd's write-behind queue is
# empty (every fetched chunk in the store; bounded; default 120 s).
wait_hydrated() {
        local control=${2:-$T/control.sock} deadline=$((SECONDS + ${3:-120}))
        wait_for "${3:-120}" _hydrated "$1" "$control" ||
                fail "export $1 not hydrated (background $(blockd_stat "$1" background "$control"), $(blockd_stat "$1" hydration_pct "$control")%)"
        # ... and stored: a chunk whose insert is written behind is local first.
        wait_for $((deadline - SECONDS)) _write_behind_empty "$control" ||
                fail "export $1: $(_write_behind_queued "$control") chunks still wait for their store insert"
}

_hydrated() {
        [ "$(blockd_stat "$1" background "$2")" = done ]
}

_write_behind_queued() {
        hb stats --control "$1" --json |
                python3 -c 'import json,sys; print(json.load(sys.stdin)["fetch"]["write_behind_queued"])'
}

_write_behind_empty() {
        [ "$(_write_behind_queued "$1")" = 0 ]
}

# write_profile FILE CHUNK_SIZE FIRST:COUNT...: a boot profile file
# (docs/FORMAT.md section 6) with one entry a run of COUNT chunks from
# chunk FIRST, in the order given (entry n's time: n).
write_profile() {
        python3 - "$@" <<'PY'
import struct, sys
path, cs = sys.argv[1], int(sys.argv[2])
runs = [tuple(map(int, r.split(":"))) for r in sys.argv[3:]]
body = b"".join(struct.pack("<QII", first * cs, count * cs, t) for t, (first, count) in enumerate(runs))
open(path, "wb").write(b"HOCUSPRF" + struct.pack("<IIIIQ", 1, 0, cs, len(runs), 0) + body)
PY
}

# store_entries [CACHE]: the number of entries in a chunk store.
store_entries() {
        hb cache stats --cache "${1:-$HOCUS_BLK_CACHE}" --json |
                python3 -c 'import json,sys; print(json.load(sys.stdin)["entries"])'
}

# chunk_digests IMAGE CHUNK_SIZE: the SHA-256 of every non-zero chunk of a
# raw image, one per line, unsorted and with repeats (as the index sees them).
chunk_digests() {
        python3 - "$1" "$2" <<'PY'
import hashlib, sys
path, cs = sys.argv[1], int(sys.argv[2])
zero = bytes(cs)
with open(path, "rb") as f:
    while True:
        b = f.read(cs)
        if not b:
            break
        if b != zero[:len(b)]:
            print(hashlib.sha256(b).hexdigest())
PY
}

# fetch_log_check LOG CHUNK: the fetch log shows a demand fetch of logical
# chunk CHUNK that ended before the background stream reached it: no
# background fetch contains CHUNK, and none that started before the demand
# fetch ended was at or past it. Prints the demand fetch's line.
fetch_log_check() {
        python3 - "$1" "$2" <<'PY'
import sys
log, want = sys.argv[1], int(sys.argv[2])
def chunks(spec):
    out = []
    for part in spec.split(","):
        if part == "...":
            continue
        a, _, b = part.partition("-")
        out += range(int(a), int(b or a) + 1)
    return out
lines = []
for line in open(log):
    f = dict(kv.split("=", 1) for kv in line.split()[1:])
    f["chunks"] = chunks(f["chunks"])
    lines.append(f)
demand = [f for f in lines if f["class"] == "demand" and want in f["chunks"] and f["result"] == "ok"]
assert demand, "no demand fetch of chunk %d in the log" % want
end = float(demand[0]["end"])
for f in lines:
    if f["class"] != "background":
        continue
    assert want not in f["chunks"], "the background stream fetched chunk %d too: %s" % (want, f)
    if float(f["start"]) < end:
        assert max(f["chunks"]) < want, "background was at chunk %d before the demand fetch of %d ended" % (max(f["chunks"]), want)
print("demand fetch of chunk %d: start %s end %s; background before it ended: up to chunk %d" % (
    want, demand[0]["start"], demand[0]["end"],
    max([max(f["chunks"]) for f in lines if f["class"] == "background" and float(f["start"]) < end] or [-1])))
PY
}
