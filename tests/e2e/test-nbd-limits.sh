#!/usr/bin/env bash
# Clients that hold on to what they can: a handshake dribbled one byte at a
# time (the deadline is for the whole handshake, not per read), one process
# opening more connections than a peer may (--nbd-peer-connections), and
# clients that ask for large reads and never read the replies (their data in
# flight is bounded by --nbd-conn-buffer: blockd's peak RSS stays under a
# bound made of the limits). Other clients are served meanwhile, and the stop
# completes with the bad clients still connected.
. "$TESTS_DIR/functions.sh"
requires python3 nbdinfo nbdcopy

mib=$((1 << 20))
head -c 64M /dev/urandom >"$T/a.img"
hb push "$T/a.img" "oci:$T/layout:a" >/dev/null
start_blockd --nbd-socket "$T/nbd.sock" --control "$T/control.sock" --export "a=oci:$T/layout:a" \
        --nbd-handshake-timeout 2 --nbd-peer-connections 8 --nbd-conn-buffer 32M --nbd-buffer-total 256M
# Everything local first: the reads below measure buffering, not fetching.
wait_for 120 sh -c "grep -q 'Export a: fully hydrated' '$T/blockd.log'" || fail "export a did not hydrate"

cat >"$T/bad.py" <<'PY'
import os, select, socket, struct, sys, time
sys.path.insert(0, os.environ["HELPERS_DIR"])
import nbdraw

sock, mode = sys.argv[1], sys.argv[2]

if mode == "dribble":
    # A valid option header that announces 1000 bytes of data, then the
    # data one byte every 0.5 s: each read gets a byte long before any
    # per-read timeout, so only a deadline for the whole handshake ends it.
    s = nbdraw.connect(sock, timeout=0.5)
    nbdraw.greet(s)
    s.sendall(struct.pack(">QII", nbdraw.IHAVEOPT, 3, 1000))
    for sent in range(60):
        try:
            s.send(b"x")
        except (BrokenPipeError, ConnectionResetError):
            print(f"disconnected after {sent} bytes"); sys.exit(0)
        try:
            if s.recv(1) == b"":
                print(f"disconnected after {sent + 1} bytes"); sys.exit(0)
        except socket.timeout:
            pass
        except ConnectionResetError:
            print(f"disconnected after {sent + 1} bytes"); sys.exit(0)
    sys.exit("FAIL: the dribbling client was still connected after 60 bytes (30 s)")

if mode == "many":
    # One process, more connections than a peer may open: the ones past the
    # limit are closed at once, before any greeting.
    limit, extra = int(sys.argv[3]), 4
    socks = [nbdraw.connect(sock, timeout=30) for _ in range(limit + extra)]
    greeted = 0
    for s in socks:
        try:
            g = s.recv(18)
        except ConnectionResetError:
            g = b""
        greeted += len(g) > 0
    print(f"{greeted} of {len(socks)} greeted")
    sys.exit(0 if greeted == limit else f"FAIL: {greeted} connections greeted, the limit is {limit}")

if mode == "hog":
    # 16 reads of 32 MiB each (simple replies: blockd copies the data to
    # reply), never reading a byte back, until blockd hangs up.
    s, size = nbdraw.handshake(sock, "a")
    for i in range(16):
        nbdraw.request(s, nbdraw.CMD_READ, (i * (32 << 20)) % (size - (32 << 20) + 1), 32 << 20, handle=i + 1)
    # The replies have started (so the requests were parsed).
    select.select([s], [], [], 60)
    print("hogging", flush=True)
    # Until blockd closes the connection (POLLHUP), at most 10 minutes.
    p = select.poll()
    p.register(s, 0)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if p.poll(1000):
            break
    sys.exit(0)
PY
bad() {
        HELPERS_DIR=$HELPERS_DIR python3 -S "$T/bad.py" "$T/nbd.sock" "$@"
}

# 1. The dribbling client is cut off at the deadline; others are served meanwhile.
bad dribble >"$T/dribble.out" 2>&1 &
dpid=$!
cleanup_fn "kill $dpid"
[ "$(nbdinfo --size "$(nbd_uri a)")" = $((64 * mib)) ] || fail "nbdinfo beside the dribbling client"
wait "$dpid" || fail "dribble: $(cat "$T/dribble.out")"
grep -q "handshake not finished after 2 s" "$T/blockd.log" || fail "the handshake deadline was not logged"

# 2. One process gets --nbd-peer-connections connections; another is served.
bad many 8 >"$T/many.out" 2>&1 &
mpid=$!
cleanup_fn "kill $mpid"
wait "$mpid" || fail "many: $(cat "$T/many.out")"
grep -q "refusing connections: 8 connections open from one peer" "$T/blockd.log" ||
        fail "the refusal was not logged"
[ "$(nbdinfo --size "$(nbd_uri a)")" = $((64 * mib)) ] || fail "nbdinfo after the refused connections"

# 3. Clients that never read: bounded memory, others served, a stop that completes.
rss() {
        awk -v k="$2:" '$1 == k { printf "%.0f\n", $2 * 1024 }' "/proc/$1/status"
}
base=$(rss "$BLOCKD_PID" VmRSS)
hogs=4
for ((i = 0; i < hogs; i++)); do
        bad hog >"$T/hog$i.out" 2>&1 &
        eval "hog$i=\$!"
        cleanup_fn "kill $!"
done
for ((i = 0; i < hogs; i++)); do
        wait_file 60 "$T/hog$i.out" || fail "hog $i did not start"
done
# A well-behaved client reads the whole export meanwhile.
nbdcopy "$(nbd_uri a)" "$T/a.out"
assert_same "$T/a.img" "$T/a.out"
peak=$(rss "$BLOCKD_PID" VmHWM)
# What the limits allow: each hog's data in flight (--nbd-conn-buffer), the
# well-behaved client's (nbdcopy keeps up to 64 x 256 KiB in flight on each
# of its connections), and room for allocator slack and worker buffers kept
# for reuse (2 MiB per thread).
bound=$((base + hogs * 32 * mib + 4 * 16 * mib + 96 * mib))
echo "blockd RSS: $((base / mib)) MiB before, peak $((peak / mib)) MiB with $hogs clients not reading (bound $((bound / mib)) MiB)"
[ "$peak" -le "$bound" ] || fail "blockd's peak RSS $((peak / mib)) MiB exceeds $((bound / mib)) MiB"

# The stop completes (the hogs' replies are abandoned after the grace period).
kill -TERM "$BLOCKD_PID"
for ((n = 0; n < 2400; n++)); do
        kill -0 "$BLOCKD_PID" 2>/dev/null || break
        sleep 0.05
done
kill -0 "$BLOCKD_PID" 2>/dev/null && fail "blockd did not stop with clients not reading"
rc=0
wait "$BLOCKD_PID" || rc=$?
[ "$rc" -eq 0 ] || fail "blockd exited $rc"
[ ! -e "$T/blockd.pid" ] || fail "the pidfile was left behind"

# 4. Budgets smaller than the requests: each runs alone, and everything
# completes (reads and writes on four connections at once).
start_blockd --nbd-socket "$T/nbd.sock" --control "$T/control.sock" \
        --export "w=oci:$T/layout:a,overlay=$T/w.ovl" --nbd-conn-buffer 128K --nbd-buffer-total 256K
head -c 64M /dev/urandom >"$T/new.img"
nbdcopy --connections=4 --requests=16 --request-size=1048576 "$T/new.img" "$(nbd_uri w)"
nbdcopy --connections=4 --requests=16 --request-size=1048576 "$(nbd_uri w)" "$T/w.out"
assert_same "$T/new.img" "$T/w.out"
stop_blockd
echo ok
