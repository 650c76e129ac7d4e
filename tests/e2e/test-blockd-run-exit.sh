#!/usr/bin/env bash
# blockd --run, many times over: the daemon's exit is the command's exit,
# whatever the command left behind. Three commands: qemu-io reads back what
# an overlay holds (exit 0); a command that exits 3 without connecting; and
# (every other run) one that exits 5 while three clients it started in the
# background are reading. Every run must exit with the command's status,
# remove its pidfile and log no assertion or sanitizer report. The last one
# made blockd abort in sched_free ('!s->exports', exit 134) in 5 of 60 runs
# before a closing connection dropped its export ahead of leaving the
# server's list (c2d69ee, 73b340c). Every 5th run starts with a cold cache,
# so the background stream is under way at exit. RUN_LOOPS bounds the count
# (default 120, 45 under ASan).
. "$TESTS_DIR/functions.sh"
requires qemu-io

loops=${RUN_LOOPS:-120}
# grep reads all of it: with -q, ldd may die of SIGPIPE and pipefail says "not ASan"
if ldd "$BLOCKD" 2>/dev/null | grep libasan >/dev/null; then
        loops=${RUN_LOOPS:-45}
fi

truncate -s 8M "$T/disk.img"
head -c 2M /dev/urandom | dd of="$T/disk.img" bs=1M seek=1 conv=notrunc status=none
hb push --chunk-size 256K "$T/disk.img" "oci:$T/layout:v1" >/dev/null
export HOCUS_BLK_CACHE=$T/cache
EXPORT="rw=oci:$T/layout:v1,overlay=$T/rw.ovl"
"$BLOCKD" --export "$EXPORT" \
        --run 'qemu-io -f raw "$uri" -c "write -P 0x5a 4096 8192" -c "write -P 0x77 65536 4096" -c flush' \
        >/dev/null 2>"$T/blockd.log" || fail "priming the overlay: $(tail -5 "$T/blockd.log")"

unclean=0
for i in $(seq 1 "$loops"); do
        [ $((i % 5)) -ne 0 ] || rm -rf "$T/cache"
        case $((i % 4)) in
        0)      want=0 cmd='qemu-io -f raw "$uri" -c "read -P 0x77 65536 4096" -c "read -P 0x5a 4096 8192"' ;;
        1)      want=3 cmd='exit 3' ;;
        *)      want=5 cmd='for k in 1 2 3; do
                        qemu-io -f raw "$uri" -c "read 0 8M" -c "read 0 8M" -c "read 0 8M" >/dev/null 2>&1 </dev/null &
                done
                qemu-io -f raw "$uri" -c "read -P 0x77 65536 4096" >/dev/null; exit 5' ;;
        esac
        rc=0
        "$BLOCKD" --pidfile "$T/blockd.pid" --export "$EXPORT" --run "$cmd" >/dev/null 2>"$T/blockd.log" || rc=$?
        if [ "$rc" -ne "$want" ] || [ -e "$T/blockd.pid" ] || grep -qE "Assertion|Sanitizer|runtime error" "$T/blockd.log"; then
                unclean=$((unclean + 1))
                echo "run $i: exit $rc, wanted $want; pidfile $([ -e "$T/blockd.pid" ] && echo left || echo removed)" >&2
                grep -E "Assertion|Sanitizer|runtime error|error" "$T/blockd.log" | head -5 >&2
                rm -f "$T/blockd.pid"
        fi
done
[ "$unclean" -eq 0 ] || fail "$unclean of $loops --run exits unclean (above)"
echo "$loops of $loops --run exits clean"
