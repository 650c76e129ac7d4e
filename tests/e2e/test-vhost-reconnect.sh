#!/usr/bin/env bash
# vhost-user-blk and the fetch path, with a raw VMM (tests/helpers/vhostraw.py)
# so that the order of events is the test's, not a guest's:
# - a guest read of data the registry never delivers completes with
#   VIRTIO_BLK_S_IOERR at --fetch-timeout, and does not hang;
# - inflight tracking: a read taken off the ring and waiting on a stalled
#   fetch when blockd is killed (SIGKILL) is carried out by the next blockd
#   once the VMM reconnects with its inflight region, without the guest
#   offering it again, and the bytes are the image's.
. "$TESTS_DIR/functions.sh"
requires python3
start_registry registry
make_image "$T/disk.img" random 4M
hb push --plain-http --chunk-size 256K "$T/disk.img" "docker://$REGISTRY/ws:v1" >/dev/null
# Every blob GET but the index's and manifest's stalls: packs never arrive.
PACKS=$(hb inspect --plain-http --json "docker://$REGISTRY/ws:v1" |
        python3 -c 'import json,sys; print("|".join(p["digest"] for p in json.load(sys.stdin)["packs"]))')
start_fault_proxy stall "$REGISTRY" --fault "stall:0:GET /v2/ws/blobs/($PACKS)" --release "$T/release"
VH=$T/vhost
ARGS=(--control "$T/control.sock" --plain-http --background off --state-dir none --vhost-user-blk "$VH")
start_blockd "${ARGS[@]}" --fetch-timeout 2 --export "ws=docker://$PROXY/ws:v1"

PYTHONPATH=$HELPERS_DIR python3 - "$VH/ws.sock" "$T" <<'PY' >"$T/vmm.out" 2>&1 &
import os, sys, time
from vhostraw import *
sock, T = sys.argv[1:]
image = open(f"{T}/disk.img", "rb").read()

def wait_for(cond, what, timeout=120):
    end = time.monotonic() + timeout          # a hang detector
    while not cond():
        assert time.monotonic() < end, f"never: {what}"
        time.sleep(0.05)

v = Vmm(sock).setup(inflight=True)
st, _ = v.request(T_IN, 0, 4096)
assert st == S_IOERR, f"a read the registry never delivers: status {st}"
print("timeout: IOERR", flush=True)

open(f"{T}/step1", "w").write("1")            # the shell restarts blockd (timeout 30 s)
wait_for(lambda: os.path.exists(f"{T}/go1"), "blockd restarted")
v.reconnect(sock).setup(inflight=True)
v.start(T_IN, 64, 8192)
wait_for(lambda: v.inflight_pending(0), "the read is in flight")
open(f"{T}/step2", "w").write("2")            # the shell kills blockd, starts one on the registry
wait_for(lambda: os.path.exists(f"{T}/go2"), "blockd restarted again")
v.reconnect(sock).setup(inflight=True)
st, data = v.finish(8192)
assert st == S_OK and data == image[64 * 512:64 * 512 + 8192], f"resubmitted read: status {st}"
assert not v.inflight_pending(0), "the completed read is still marked in flight"
assert v.avail_idx == 2, "the read was offered again"
print("resubmitted: OK", flush=True)
v.close()
PY
VMM=$!
cleanup_fn "kill $VMM 2>/dev/null"
wait_file 120 "$T/step1" || fail "the VMM did not get to step 1: $(cat "$T/vmm.out")"
grep -q "timeout: IOERR" "$T/vmm.out" || fail "no IOERR: $(cat "$T/vmm.out")"
kill9_blockd
start_blockd "${ARGS[@]}" --export "ws=docker://$PROXY/ws:v1"
touch "$T/go1"
wait_file 120 "$T/step2" || fail "the VMM did not get to step 2: $(cat "$T/vmm.out")"
kill9_blockd
start_blockd "${ARGS[@]}" --export "ws=docker://$REGISTRY/ws:v1"
touch "$T/go2"
wait "$VMM" || fail "VMM: $(cat "$T/vmm.out"); blockd: $(grep -v ' debug: ' "$T/blockd.log" | tail -5)"
grep -q "resubmitted: OK" "$T/vmm.out" || fail "$(cat "$T/vmm.out")"
grep -q "requests in flight at the last disconnect carried out" "$T/blockd.log" || fail "blockd did not resubmit"
touch "$T/release"
stop_blockd
