#!/usr/bin/env bash
# fio's nbd engine (libnbd, queue depth 16): a write-then-verify job on a
# writable export with mixed block sizes, random reads on a read-only one,
# and a verify pass after restarting blockd on the same overlay.
. "$TESTS_DIR/functions.sh"
requires fio nbdcopy
fio --enghelp=nbd >/dev/null 2>&1 || skip "fio has no nbd engine"

truncate -s 32M "$T/disk.img"
head -c 8M /dev/urandom | dd of="$T/disk.img" bs=1M seek=4 conv=notrunc status=none
hb push "$T/disk.img" "oci:$T/layout:v1" >/dev/null

BLOCKD_QUIET=1 start_blockd --nbd-socket "$T/nbd.sock" \
        --export "rw=oci:$T/layout:v1,overlay=$T/rw.ovl" --export "ro=oci:$T/layout:v1"

fio_job() {
        fio --output-format=terse --terse-version=3 --ioengine=nbd --uri="$1" --name=job --size=32M \
                --verify_fatal=1 "${@:2}" >"$T/fio.out" 2>"$T/fio.err" ||
                fail "fio $*: $(cat "$T/fio.err" "$T/fio.out" | tail -5)"
        # terse v3: field 5 is the error count
        [ "$(grep "^3;" "$T/fio.out" | cut -d";" -f5 | head -1)" = 0 ] || fail "fio reported errors: $(cat "$T/fio.out")"
}

fio_job "$(nbd_uri rw)" --rw=randwrite --bsrange=512-128k --iodepth=16 --verify=crc32c --do_verify=1 \
        --verify_backlog=64 --randseed=7
fio_job "$(nbd_uri rw)" --rw=write --bs=1M --iodepth=4 --verify=md5 --do_verify=1 --offset=8M --size=16M
fio_job "$(nbd_uri ro)" --rw=randread --bs=4k --iodepth=16 --number_ios=4000
fio_job "$(nbd_uri ro)" --rw=read --bs=1M --iodepth=4

# The written data survives a restart: verify only.
stop_blockd
BLOCKD_QUIET=1 start_blockd --nbd-socket "$T/nbd.sock" --export "rw=oci:$T/layout:v1,overlay=$T/rw.ovl"
fio_job "$(nbd_uri rw)" --rw=write --bs=1M --iodepth=4 --verify=md5 --verify_only=1 --offset=8M --size=16M
# The read-only export still equals the image.
stop_blockd
BLOCKD_QUIET=1 start_blockd --nbd-socket "$T/nbd.sock" --export "ro=oci:$T/layout:v1"
nbdcopy "$(nbd_uri ro)" "$T/copy.img"
assert_same "$T/disk.img" "$T/copy.img"
stop_blockd
echo ok
