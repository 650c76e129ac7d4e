#!/usr/bin/env bash
# SIGTERM with clients connected, many times over: clients reading, idle
# after the handshake, and in the middle of it. Every stop must exit 0,
# remove the pidfile and leave no process behind, and every client must be
# disconnected (EOF), not left hanging. The shutdown once raced a closing
# connection that still held its export (sched_free's assertion, exit 134,
# in 10-30% of stops). STOP_LOOPS bounds the count (default 150, 60 under ASan).
. "$TESTS_DIR/functions.sh"
requires python3

loops=${STOP_LOOPS:-150}
# grep reads all of it: with -q, ldd may die of SIGPIPE and pipefail says "not ASan"
if ldd "$BLOCKD" 2>/dev/null | grep libasan >/dev/null; then
        loops=${STOP_LOOPS:-60}
fi

head -c 3M /dev/urandom >"$T/a.img"
head -c 1M /dev/urandom >"$T/b.img"
hb push "$T/a.img" "oci:$T/layout:a" >/dev/null
hb push "$T/b.img" "oci:$T/layout:b" >/dev/null

# One driver process for the whole loop (a Python start per iteration
# costs more than the stop it tests).
cat >"$T/stops.py" <<'PY'
# LOOPS times: start blockd, connect two readers (one per export), an idle
# client and one stuck in the handshake, SIGTERM blockd. The stop must exit
# 0, remove the pidfile, and disconnect every client (EOF), all within a
# generous bound (a hang fails here, not at the suite's timeout).
import os, random, signal, subprocess, sys, threading, time
sys.path.insert(0, os.environ["HELPERS_DIR"])
import nbdraw

T, blockd, loops = sys.argv[1], sys.argv[2], int(sys.argv[3])
sock, pidfile = f"{T}/nbd.sock", f"{T}/blockd.pid"
BOUND = 60


def wait_until(cond, what):
    end = time.monotonic() + BOUND
    while not cond():
        if time.monotonic() > end:
            sys.exit(f"FAIL: {what} within {BOUND} s")
        time.sleep(0.01)


def clients(up, errors):
    def reader(name):
        s, size = nbdraw.handshake(sock, name, timeout=BOUND)
        nbdraw.read(s, 0, 4096)
        up.wait()
        try:
            while True:
                nbdraw.read(s, random.randrange(0, size - 65536) & ~4095, 65536)
        except (EOFError, ConnectionResetError, BrokenPipeError):
            pass
        except nbdraw.NbdError:
            # An error reply while the export goes away, then the end.
            if not nbdraw.closed(s):
                errors.append(f"reader {name} was not disconnected")

    def idle():
        s, _ = nbdraw.handshake(sock, "a", timeout=BOUND)
        up.wait()
        if not nbdraw.closed(s):
            errors.append("idle client was not disconnected")

    def greeting_only():
        s = nbdraw.connect(sock, timeout=BOUND)
        nbdraw.recvn(s, 18)
        up.wait()
        if not nbdraw.closed(s):
            errors.append("client in the handshake was not disconnected")

    ts = [threading.Thread(target=f, args=a) for f, a in
          ((reader, ("a",)), (reader, ("b",)), (idle, ()), (greeting_only, ()))]
    for t in ts:
        t.start()
    return ts


unclean = 0
for i in range(1, loops + 1):
    with open(f"{T}/blockd.log", "w") as log:
        p = subprocess.Popen([blockd, "--pidfile", pidfile, "--nbd-socket", sock, "--control", f"{T}/control.sock",
                              "--export", f"a=oci:{T}/layout:a",
                              "--export", f"b=oci:{T}/layout:b,overlay={T}/b.ovl"], stdout=log, stderr=log)
    try:
        wait_until(lambda: os.path.exists(pidfile) or p.poll() is not None, f"iteration {i}: blockd did not start")
        if p.poll() is not None:
            sys.exit(f"FAIL: iteration {i}: blockd exited {p.returncode} at start: "
                     + open(f"{T}/blockd.log").read()[-500:])
        up, errors = threading.Barrier(5, timeout=BOUND), []
        ts = clients(up, errors)
        up.wait()
        p.send_signal(signal.SIGTERM)
        try:
            rc = p.wait(BOUND)
        except subprocess.TimeoutExpired:
            sys.exit(f"FAIL: iteration {i}: blockd did not stop within {BOUND} s of SIGTERM")
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    for t in ts:
        t.join(BOUND)
        if t.is_alive():
            sys.exit(f"FAIL: iteration {i}: a client was left connected")
    if errors:
        sys.exit(f"FAIL: iteration {i}: " + "; ".join(errors))
    if rc != 0 or os.path.exists(pidfile):
        unclean += 1
        why = [l for l in open(f"{T}/blockd.log") if any(w in l for w in ("Assertion", "error", "Sanitizer"))]
        print(f"iteration {i}: blockd exited {rc}, pidfile {'left' if os.path.exists(pidfile) else 'removed'}",
              "".join(why[:5]), file=sys.stderr)
        if os.path.exists(pidfile):
            os.unlink(pidfile)
print(f"{loops - unclean}/{loops} stops clean")
sys.exit(1 if unclean else 0)
PY
HELPERS_DIR=$HELPERS_DIR python3 -S "$T/stops.py" "$T" "$BLOCKD" "$loops" || fail "unclean stops (above)"
