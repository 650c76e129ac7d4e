#!/usr/bin/env bash
# Hostile and stuck clients of the control socket and of --metrics: a
# control client that never reads its answers, metrics clients that send
# their request a byte at a time, 40 idle control connections (more than
# the 32 allowed), a full house of half-sent requests, an attach that
# waits on a registry that never answers, invalid UTF-8 and forged log
# lines, an idle client past --control-idle-timeout. Through all of it
# `hocus-blk ls` and a scrape answer (or are refused with a reason, never
# killed by SIGPIPE), and SIGTERM stops
# blockd with every one of those clients still there and flushes the
# overlay.
. "$TESTS_DIR/functions.sh"
requires_nbd_python
requires python3 curl qemu-io

truncate -s 8M "$T/disk.img"
head -c 1M /dev/urandom | dd of="$T/disk.img" bs=1M seek=1 conv=notrunc status=none
hb push --chunk-size 256K "$T/disk.img" "oci:$T/layout:v1" >/dev/null
CTL=$T/control.sock
MPORT=$(free_port)
# A short request timeout so that slow clients are cut soon; the caps as
# shipped for control, a small one for metrics.
start_blockd --nbd-socket "$T/nbd.sock" --control "$CTL" --metrics "127.0.0.1:$MPORT" \
        --request-timeout 2 --metrics-max-clients 2 --background off \
        --export "ws=oci:$T/layout:v1,overlay=$T/ws.ovl"

cat >"$T/client.py" <<'PY'
import json, os, select, socket, sys, time

mode, ready = sys.argv[1], sys.argv[2]

def say(text):
    with open(ready + ".tmp", "w") as f:
        f.write(text + "\n")
    os.rename(ready + ".tmp", ready)

def unix():
    s = socket.socket(socket.AF_UNIX)
    s.connect(os.environ["CTL"])
    return s

def hung_up(s, timeout):
    """Poll (not read) for the server closing the connection."""
    p = select.poll()
    p.register(s, select.POLLHUP | select.POLLRDHUP | select.POLLERR)
    return bool(p.poll(timeout * 1000))

if mode == "idle":
    # N connections that never send: the server must close some to make room.
    n = int(sys.argv[3])
    conns = [unix() for _ in range(n)]
    say("connected")
    while True:
        time.sleep(3600)

elif mode == "idle-one":
    # One connection that never sends: is it closed (within a generous
    # bound, far above any idle timeout the test sets)?
    s = unix()
    say("connected")
    print("closed" if hung_up(s, 120) else "still connected")

elif mode == "busy":
    # N connections, each in the middle of a request that never ends.
    n = int(sys.argv[3])
    conns = [unix() for _ in range(n)]
    for s in conns:
        s.sendall(b'{"cmd":')
    say("sent")
    while True:
        time.sleep(3600)

elif mode == "nonreader":
    # Ask for the metrics text again and again; never read an answer.
    s = unix()
    s.setblocking(False)
    sent = 0
    try:
        for _ in range(4000):
            s.send(b'{"cmd":"metrics"}\n')
            sent += 1
    except BlockingIOError:
        pass
    say(f"sent {sent}")
    # Cut within the request timeout of the answer that does not fit.
    print("dropped" if hung_up(s, 120) else "still connected")

elif mode == "dribble":
    # An HTTP request head one byte at a time, never finished: 200 bytes,
    # each sent 0.25 s apart (50 s in all, far more than the timeout).
    s = socket.create_connection(("127.0.0.1", int(sys.argv[3])))
    head = (b"GET /metrics HTTP/1.1\r\nX-Slow: " + b"a" * 200)[:200]
    sent = 0
    for b in head:
        try:
            s.send(bytes([b]))
        except (BrokenPipeError, ConnectionResetError):
            break
        sent += 1
        if sent == 1:
            say("dribbling")
        if hung_up(s, 0.25):
            break
    print(f"{sent} of {len(head)}")

elif mode == "silent":
    # A "registry" that accepts connections and never answers.
    l = socket.socket()
    l.bind(("127.0.0.1", 0))
    l.listen(16)
    with open(sys.argv[3], "w") as f:
        f.write(str(l.getsockname()[1]))
    conns = []
    while True:
        c, _ = l.accept()
        conns.append(c)
        say("accepted")

elif mode == "raw":
    # Raw request lines (bytes, from JSON-escaped arguments); print each
    # answer, which must be one line of UTF-8 JSON.
    s = unix()
    f = s.makefile("rwb")
    for arg in sys.argv[3:]:
        f.write(arg.encode("utf-8", "surrogateescape") + b"\n")
        f.flush()
        line = f.readline()
        answer = json.loads(line.decode("utf-8"))     # strict: raises on invalid UTF-8
        print(json.dumps(answer))
PY
export CTL

# 40 idle control connections (the cap is 32): ls still answers, since the
# connections idle longest are closed to make room.
python3 "$T/client.py" idle "$T/idle.ready" 40 &
IDLE=$!
cleanup_fn "kill $IDLE 2>/dev/null"
wait_file 30 "$T/idle.ready" || fail "the idle clients did not connect"
hb ls --control "$CTL" >"$T/ls" 2>"$T/ls.err" || fail "ls with 40 idle clients failed ($?): $(cat "$T/ls.err")"
grep -q "^ws " "$T/ls" || fail "ls: $(cat "$T/ls")"
for i in 1 2 3; do
        hb ls --control "$CTL" >/dev/null || fail "ls $i with idle clients"
done

# A control client that never reads its answers: dropped once an answer
# does not fit and the request timeout passes; ls meanwhile answers.
python3 "$T/client.py" nonreader "$T/nonreader.ready" >"$T/nonreader.out" &
NONREADER=$!
cleanup_fn "kill $NONREADER 2>/dev/null"
wait_file 30 "$T/nonreader.ready" || fail "the non-reading client did not send"
hb ls --control "$CTL" >/dev/null || fail "ls beside a non-reading client"
wait "$NONREADER" || true
grep -qx dropped "$T/nonreader.out" || fail "the non-reading client was not dropped: $(cat "$T/nonreader.out")"

# A metrics client that dribbles its request: a scrape answers beside it,
# and the dribbler is cut long before it has sent its 200 bytes.
python3 "$T/client.py" dribble "$T/dribble.ready" "$MPORT" >"$T/dribble.out" &
DRIBBLE=$!
cleanup_fn "kill $DRIBBLE 2>/dev/null"
wait_file 30 "$T/dribble.ready" || fail "the dribbling client did not start"
curl -fsS --max-time 30 "http://127.0.0.1:$MPORT/metrics" >"$T/metrics" || fail "no scrape beside a dribbling client"
grep -q '^hocus_blk_exports 1$' "$T/metrics" || fail "scrape: $(head -3 "$T/metrics")"
wait "$DRIBBLE"
sent=$(cut -d' ' -f1 "$T/dribble.out")
[ "$sent" -lt 200 ] || fail "the dribbling metrics client was never cut: $(cat "$T/dribble.out")"
# Metrics over the control socket dribbled: cut too (a short read, no hang).
python3 - "$CTL" <<'PY' || fail "a dribbled GET on the control socket was not cut"
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.settimeout(0.25)
for i in range(200):
    try:
        s.send(b"GET /metrics HTTP/1.0\r\n"[i:i + 1] if i < 23 else b"a")
        if s.recv(1) == b"":
            sys.exit(0)
    except socket.timeout:
        continue
    except (BrokenPipeError, ConnectionResetError):
        sys.exit(0)
sys.exit(1)
PY

# Invalid UTF-8 is refused with EILSEQ, and every answer is UTF-8 JSON;
# strings with newlines cannot forge log lines.
python3 "$T/client.py" raw "$T/raw.ready" \
        "$(printf '{"cmd":"attach","name":"x","ref":"\xff\xfe"}')" \
        "{\"cmd\":\"x$(printf '\xc3\xa9%.0s' $(seq 40))\"}" \
        '{"cmd":"attach","name":"bad\nFORGED-LINE info: hello","ref":"oci:/nonexistent\nFORGED-LINE ref"}' \
        '{"cmd":"ping"}' >"$T/raw.out" || fail "an answer was not UTF-8 JSON: $(cat "$T/raw.out")"
sed -n 1p "$T/raw.out" | grep -q '"errno": "EILSEQ"' || fail "invalid UTF-8: $(sed -n 1p "$T/raw.out")"
sed -n 2p "$T/raw.out" | grep -q "unknown command" || fail "long command: $(sed -n 2p "$T/raw.out")"
sed -n 3p "$T/raw.out" | grep -q '"ok": false' || fail "bad name: $(sed -n 3p "$T/raw.out")"
sed -n 4p "$T/raw.out" | grep -q '"ok": true' || fail "ping: $(sed -n 4p "$T/raw.out")"
grep -q 'FORGED-LINE' "$T/blockd.log" || fail "the bad attach was not logged (test is vacuous)"
if grep -q '^FORGED-LINE' "$T/blockd.log"; then fail "a control string forged a log line"; fi

# Full houses (another blockd, whose request timeout outlasts the test, so
# nothing is cut by time): with every control slot busy (a client that
# does not read, three mid-request), ls is refused with a reason (not
# killed by SIGPIPE); with every metrics slot taken by a dribbler, a
# scrape answers: the dribbler that has taken longest makes room.
mkdir -p "$T/b"
MPORT2=$(free_port)
"$BLOCKD" --control "$T/b/control.sock" --control-max-clients 4 --metrics "127.0.0.1:$MPORT2" \
        --metrics-max-clients 2 --request-timeout 3600 --pidfile "$T/b/pid" --cache "$T/b/cache" >>"$T/b.log" 2>&1 &
B=$!
cleanup_fn "kill $B 2>/dev/null"
wait_file 30 "$T/b/pid" || fail "the second blockd did not start: $(tail -3 "$T/b.log")"
CTL=$T/b/control.sock python3 "$T/client.py" nonreader "$T/nonreader2.ready" >"$T/nonreader2.out" &
NONREADER2=$!
cleanup_fn "kill $NONREADER2 2>/dev/null"
wait_file 30 "$T/nonreader2.ready" || fail "the second non-reading client did not send"
CTL=$T/b/control.sock python3 "$T/client.py" busy "$T/busy.ready" 3 &
BUSY=$!
cleanup_fn "kill $BUSY 2>/dev/null"
python3 "$T/client.py" dribble "$T/d1.ready" "$MPORT2" >"$T/d1.out" &
D1=$!
cleanup_fn "kill $D1 2>/dev/null"
wait_file 30 "$T/d1.ready" || fail "the first dribbler did not start"
python3 "$T/client.py" dribble "$T/d2.ready" "$MPORT2" >"$T/d2.out" &
D2=$!
cleanup_fn "kill $D2 2>/dev/null"
wait_file 30 "$T/busy.ready" || fail "the busy clients did not connect"
wait_file 30 "$T/d2.ready" || fail "the second dribbler did not start"
expect_fail "4 control clients, all busy.*--control-max-clients" hb ls --control "$T/b/control.sock"
curl -fsS --max-time 60 "http://127.0.0.1:$MPORT2/metrics" >"$T/metrics2" || fail "no scrape with the metrics slots full"
grep -q '^hocus_blk_exports 0$' "$T/metrics2" || fail "scrape: $(head -3 "$T/metrics2")"
wait "$D1"
[ "$(cut -d' ' -f1 "$T/d1.out")" -lt 200 ] || fail "the older dribbler was not closed: $(cat "$T/d1.out")"
# ... and it stops at once with them all mid-request, and cuts them.
stop_pid "$B" "blockd with every control and metrics client mid-request"
wait "$D2"
[ "$(cut -d' ' -f1 "$T/d2.out")" -lt 200 ] || fail "the stop did not cut the dribbler: $(cat "$T/d2.out")"
wait "$NONREADER2" || true
grep -qx dropped "$T/nonreader2.out" || fail "the stop did not cut the non-reading client: $(cat "$T/nonreader2.out")"
kill "$BUSY" 2>/dev/null || true

# --control-idle-timeout: an idle control client is closed once it has
# sent nothing that long (another blockd, 1 s); ls answers before and after.
mkdir -p "$T/c"
"$BLOCKD" --control "$T/c/control.sock" --control-idle-timeout 1 --pidfile "$T/c/pid" --cache "$T/c/cache" \
        >>"$T/c.log" 2>&1 &
C=$!
cleanup_fn "kill $C 2>/dev/null"
wait_file 30 "$T/c/pid" || fail "the third blockd did not start: $(tail -3 "$T/c.log")"
CTL=$T/c/control.sock python3 "$T/client.py" idle-one "$T/idle1.ready" >"$T/idle1.out" &
IDLE1=$!
cleanup_fn "kill $IDLE1 2>/dev/null"
wait_file 30 "$T/idle1.ready" || fail "the idle client did not connect"
hb ls --control "$T/c/control.sock" >/dev/null || fail "ls beside an idle client"
wait "$IDLE1" || true
grep -qx closed "$T/idle1.out" || fail "--control-idle-timeout 1 did not close an idle client: $(cat "$T/idle1.out")"
hb ls --control "$T/c/control.sock" >/dev/null || fail "ls after the idle client was closed"
stop_pid "$C" "blockd with --control-idle-timeout"

# An attach that waits on a registry that never answers: a running
# request, which stop abandons after the request timeout.
python3 "$T/client.py" silent "$T/silent.ready" "$T/silent.port" &
SILENT=$!
cleanup_fn "kill $SILENT 2>/dev/null"
wait_file 30 "$T/silent.port" || fail "the silent registry did not start"
hb attach --control "$CTL" stuck "docker://127.0.0.1:$(cat "$T/silent.port")/r:v1" >"$T/attach.out" 2>"$T/attach.err" &
ATTACH=$!
cleanup_fn "kill $ATTACH 2>/dev/null"
wait_file 30 "$T/silent.ready" || fail "the attach never reached the registry"

# A write that nobody flushed: the stop must flush it.
$NBD_PYTHON - "$(nbd_uri ws)" <<'PY'
import sys, nbd
h = nbd.NBD()
h.connect_uri(sys.argv[1])
h.pwrite(b"\x6b" * 8192, 3 * 1048576)
h.shutdown()
PY

# SIGTERM with the idle clients and the waiting attach still there: a
# clean, prompt stop.
stop_blockd
rc=0
wait "$ATTACH" || rc=$?
[ "$rc" -ne 0 ] && [ "$rc" -lt 128 ] || fail "the waiting attach exited with $rc: $(cat "$T/attach.err")"
grep -q "blockd" "$T/attach.err" || fail "the waiting attach said nothing useful: $(cat "$T/attach.err")"
grep -q "abandoned the control requests still running" "$T/blockd.log" || fail "the stop did not abandon the attach"

# The overlay was flushed at stop: the write is there after a restart.
"$BLOCKD" --export "ws=oci:$T/layout:v1,overlay=$T/ws.ovl" --cache "$T/cache2" \
        --run 'qemu-io -f raw "$uri" -c "read -P 0x6b 3145728 8192"' >"$T/verify.out" 2>>"$T/blockd.log" ||
        fail "the unflushed write was lost at stop: $(cat "$T/verify.out")"
echo ok
