#!/usr/bin/env bash
# SIGTERM with requests in flight (an upgrade under a live client): blockd
# carries out and answers every request it has read, and leaves the rest
# unanswered when it closes the connection; it never answers one with an
# error (NBD_ESHUTDOWN was, and qemu's client hands a server's error reply
# to the guest as an I/O error instead of resending the request after it
# reconnects; test-blockd-restart-writes saw it as "write failed: Cannot
# send after transport endpoint shutdown"). 64 writes in flight, 8 rounds.
. "$TESTS_DIR/functions.sh"
requires_nbd_python
start_registry registry

make_image "$T/disk.img" zero 8M
hb push --plain-http --chunk-size 256K "$T/disk.img" "docker://$REGISTRY/ws:v1" >/dev/null
SOCK=$T/nbd.sock
for round in 1 2 3 4 5 6 7 8; do
        start_blockd --nbd-socket "$SOCK" --control "$T/control.sock" --plain-http
        [ "$round" -gt 1 ] || hb attach --control "$T/control.sock" ws "docker://$REGISTRY/ws:v1" \
                --overlay "$T/ws.ovl" >/dev/null
        BLOCKD_PID=$BLOCKD_PID "$NBD_PYTHON" - "$(nbd_uri ws "$SOCK")" "$round" >>"$T/rounds" <<'PY'
import os, signal, sys
import nbd
h = nbd.NBD()
h.connect_uri(sys.argv[1])
buf = bytes([int(sys.argv[2])]) * 4096
cookies = [h.aio_pwrite(buf, i * 4096) for i in range(64)]
os.kill(int(os.environ["BLOCKD_PID"]), signal.SIGTERM)
try:
    while h.aio_in_flight() > 0:
        h.poll(-1)
except nbd.Error:
    pass                                # the connection closed
answered = unanswered = 0
for c in cookies:
    try:
        answered += h.aio_command_completed(c)
    except nbd.Error as e:
        if e.errno != "ENOTCONN":       # not "closed before the reply"
            print(f"error reply: {e}")
        unanswered += 1
print(f"answered={answered} unanswered={unanswered}")
PY
        stop_blockd
done
cat "$T/rounds"
! grep "error reply" "$T/rounds" || fail "blockd answered a request with an error on SIGTERM"
[ "$(grep -c '^answered=' "$T/rounds")" -eq 8 ] || fail "not every round reported"
