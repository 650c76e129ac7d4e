#!/usr/bin/env bash
# A writable export (overlay) against a model: random qemu-io writes (aligned
# and not), write-zeroes (with and without NO_HOLE), discards and flushes go to
# both the export and a plain copy of the image; they must read back the same,
# after reconnecting, and after restarting blockd on the same overlay.
. "$TESTS_DIR/functions.sh"
requires qemu-io qemu-img nbdcopy nbdinfo python3

truncate -s 16M "$T/disk.img"
head -c 5M /dev/urandom | dd of="$T/disk.img" bs=1M seek=2 conv=notrunc status=none
head -c 1M /dev/urandom | dd of="$T/disk.img" bs=1M seek=12 conv=notrunc status=none
hb push --chunk-size 64K "$T/disk.img" "oci:$T/layout:v1" >/dev/null
cp "$T/disk.img" "$T/model.img"

start_blockd --nbd-socket "$T/nbd.sock" --export "ws=oci:$T/layout:v1,overlay=$T/ws.ovl"
URI=$(nbd_uri ws)
nbdinfo "$URI" | grep -q "is_read_only: false" || fail "export with an overlay is read-only"
nbdinfo "$URI" | grep -q "can_fua: true" || fail "no FUA"

SEED=${SEED:-$RANDOM}
echo "seed $SEED"
python3 - "$SEED" >"$T/ops" <<'PY'
import random, sys
rnd = random.Random(int(sys.argv[1]))
size = 16 << 20
for batch in range(6):
    ops = []
    for _ in range(40):
        kind = rnd.choice(["w", "w", "w", "wa", "z", "zu", "d", "f"])
        off = rnd.randrange(size)
        ln = rnd.randrange(1, 300 * 1024)
        if kind in ("wa", "d"):          # 4 KiB aligned
            off = off // 4096 * 4096
            ln = max(4096, ln // 4096 * 4096)
        ln = min(ln, size - off)
        if kind in ("w", "wa"):
            ops.append(f"write -P {rnd.randrange(1, 256)} {off} {ln}")
        elif kind == "z":
            ops.append(f"write -z {off} {ln}")
        elif kind == "zu":
            ops.append(f"write -z -u {off} {ln}")
        elif kind == "d":
            ops.append(f"discard {off} {ln}")
        else:
            ops.append("flush")
    print("\t".join(ops))
PY

# Each line is one qemu-io session (one connection) on both targets.
while IFS=$'\t' read -r -a ops; do
        args=()
        for op in "${ops[@]}"; do args+=(-c "$op"); done
        qemu-io -f raw "$URI" "${args[@]}" >/dev/null
        qemu-io -f raw "$T/model.img" "${args[@]}" >/dev/null
        qemu-img compare -f raw -F raw "$T/model.img" "$URI" >/dev/null ||
                fail "export differs from the model after: ${ops[*]}"
done <"$T/ops"

nbdcopy "$URI" "$T/out.img"
assert_same "$T/model.img" "$T/out.img"

# A discarded, aligned range reads as zero and is reported as a hole.
qemu-io -f raw "$URI" -c "discard 8M 1M" -c "read -P 0 8M 1M" >/dev/null
qemu-io -f raw "$T/model.img" -c "discard 8M 1M" >/dev/null
nbdinfo --map --json "$URI" | python3 -c '
import json, sys
m = json.load(sys.stdin)
e = [x for x in m if x["offset"] <= 8 << 20 < x["offset"] + x["length"]][0]
assert e["type"] == 3, e'

# Restart on the same overlay: everything is still there.
stop_blockd
start_blockd --nbd-socket "$T/nbd.sock" --export "ws=oci:$T/layout:v1,overlay=$T/ws.ovl"
qemu-img compare -f raw -F raw "$T/model.img" "$URI"

# While blockd holds the overlay, nobody else may open it.
expect_fail "in use" "$BLOCKD" --export "x=oci:$T/layout:v1,overlay=$T/ws.ovl" --run true
stop_blockd
# An overlay belongs to one image.
head -c 1M /dev/urandom >"$T/other.img"
hb push "$T/other.img" "oci:$T/layout:other" >/dev/null
expect_fail "belongs to image" "$BLOCKD" --export "x=oci:$T/layout:other,overlay=$T/ws.ovl" --run true
echo ok
