#!/usr/bin/env bash
# Two builds side by side, same run, same registry, same data: push (to
# the loopback registry), pull (into an empty chunk store) and export (from
# the pulled store, and cold from the registry with --no-cache),
# alternating A and B run by run (A first in even runs, B in odd) so that
# a busy machine slows both alike. For refactors that must not cost
# throughput: build the old tree in another directory, pass both builds.
#
# usage: bench/ab.sh BUILD_A BUILD_B [DATA_MIB] [RUNS]   (default 512 MiB, 5 runs)
# Prints per step the median seconds of A and B and B's throughput relative
# to A's (1.00 = the same; above 1 = B is faster).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/bench/lib.sh"
a=$1
b=$2
mib=${3:-512}
runs=${4:-5}
W=$T

start_registry reg
R=docker://$REGISTRY/bench/ab

echo "generating $mib MiB of mixed data..."
python3 "$here/bench/gen-mixed.py" "$W/disk.img" "$mib" 11
cat "$W/disk.img" >/dev/null
declare -A times
timed() { # NAME CMD...: run, add the seconds to times[NAME]
        local name=$1 t0 t1
        shift
        sync
        t0=$(now)
        "$@" >"$W/out" 2>&1 || { echo "bench: $name failed: $(tail -3 "$W/out")" >&2; exit 1; }
        t1=$(now)
        times[$name]+="$(calc "$t1 - $t0" %.4f) "
}
for ((i = 0; i < runs; i++)); do
        order="a b"
        ((i % 2)) && order="b a"
        for side in $order; do
                hb=${!side}/cli/hocus-blk
                timed "push-$side" "$hb" push "$W/disk.img" "$R:$side$i" --plain-http --quiet
                rm -rf "$W/cache"
                timed "pull-$side" "$hb" pull "$R:$side$i" --plain-http --cache "$W/cache" --quiet
                rm -f "$W/out.img"
                timed "export-warm-$side" "$hb" export "$R:$side$i" "$W/out.img" --plain-http --cache "$W/cache"
                cmp -s "$W/out.img" "$W/disk.img" || { echo "bench: $side exported other bytes" >&2; exit 1; }
                rm -rf "$W/cache" "$W/out.img"
                timed "export-cold-$side" "$hb" export "$R:$side$i" "$W/out.img" --plain-http --no-cache
                rm -f "$W/out.img"
        done
done
printf '\n%s MiB mixed data, %d runs each, A=%s B=%s, load %s\n' "$mib" "$runs" "$a" "$b" "$(loadavg)"
printf '%-14s %9s %9s %9s\n' step "A (s)" "B (s)" "B/A"
for step in push pull export-warm export-cold; do
        ta=$(tr ' ' '\n' <<<"${times[$step-a]}" | grep . | median)
        tb=$(tr ' ' '\n' <<<"${times[$step-b]}" | grep . | median)
        printf '%-14s %9.2f %9.2f %9.2f\n' "$step" "$ta" "$tb" "$(calc "$ta / $tb")"
done
printf 'runs (s): '
for k in "${!times[@]}"; do printf '%s: %s; ' "$k" "${times[$k]}"; done
echo
