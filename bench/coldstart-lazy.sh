# bench/coldstart --preset lazy: the lazy engine alone, without root. Sourced
# by bench/coldstart (not run on its own) with the arguments after the
# preset; the harness is bench/lib.sh's (tests/functions.sh).
#
# A synthetic boot (bench/lazy-trace.py: the boot area
# read front to back, then 4-64 KiB reads scattered over a multi-GiB image
# with three 48 MiB bursts) read cold through NBD from blockd, whose
# registry (docker-registry on loopback) sits behind bench/linkem (default
# 1 Gbit/s, 2 ms RTT). Ways of starting, each from an empty chunk store:
#   no-background  demand fetches only (--background off): what the trace
#                  needs, and nothing else
#   no-profile     demand + the background stream (the default)
#   profile        the trace as the boot profile (profile=FILE at attach),
#                  + the background stream
#   repacked       the same profile, pushed with the image (push --profile:
#                  the profile's chunks first in the packs, so the prefetch
#                  is a few large range requests), + the background stream
#   learned        a second cold start: a first one (not timed, profile=auto,
#                  nothing published) learned the trace's first reads, the
#                  chunk store is emptied but its learned/ kept, so blockd
#                  prefetches the learned profile, + the background stream
#   full-pull      `hocus-blk pull` of the whole image first, then the trace
#   warm           every chunk local before the clock starts: the floor
# Per run: boot (s: the trace's reads, from the first to the last; attach
# and blockd's start are not in it but reported), hydrated (s from blockd's
# start until every chunk is local, background modes), fetched at the end
# of the boot (stored bytes) against what the trace needed (raw bytes of
# the distinct chunks it read, and stored bytes = what no-background
# fetched), requests by class at boot end and in all, reads that waited,
# blockd's CPU seconds (utime+stime, /proc/PID/stat, from its start until it
# is stopped) per GiB of stored bytes it fetched.
# The link's floor for the boot: needed stored bytes / rate + one RTT per
# dependent read. Medians of RUNS; the modes take turns within a run, so
# that the load of a shared machine falls on all of them alike.
#
# usage: bench/coldstart --preset lazy [--build DIR] [--quick] [--runs N]
#            [--link DELAY:RATE|direct] [--qd N]
#            [--modes "no-background no-profile profile repacked learned full-pull warm"]
#            [--perf DIR]
#   --perf DIR  run blockd under `perf record --call-graph dwarf` (every
#               thread, from its start) into DIR/perf-MODE-RUN.data
#               (perf report -i FILE --no-children)
# Needs docker-registry, python3 with libnbd's bindings (python3-libnbd).
. "$here/bench/lib.sh"
build=$here/build
size_mib=4096
runs=3
link=1ms:1gbit
modes="no-background no-profile profile repacked full-pull warm"
qd=8
perf_dir=
while [ $# -gt 0 ]; do
        case $1 in
        --build) build=$2; shift 2 ;;
        --quick) size_mib=1024; runs=1; shift ;;
        --runs) runs=$2; shift 2 ;;
        --link) link=$2; shift 2 ;;
        --modes) modes=$2; shift 2 ;;
        --qd) qd=$2; shift 2 ;;
        --perf) perf_dir=$(realpath "$2"); mkdir -p "$perf_dir"; shift 2 ;;
        *) echo "usage: bench/coldstart --preset lazy [--build DIR] [--quick] [--runs N] [--link DELAY:RATE|direct] [--modes ...] [--qd N] [--perf DIR]" >&2; exit 2 ;;
        esac
done
hb=$build/cli/hocus-blk
blockd=$build/blockd/blockd
linkem=$build/bench/linkem
trace_py=$here/bench/lazy-trace.py
requires docker-registry
requires_nbd_python
W=$T

# --- The registry, the image, the trace, the link -----------------------------
start_registry reg
port=${REGISTRY#*:}
echo "bench/coldstart --preset lazy: generating a $size_mib MiB image and its boot trace..." >&2
python3 "$trace_py" image "$W/disk.img" "$size_mib"
python3 "$trace_py" trace "$W/disk.img" "$size_mib" "$W/boot.trace"
python3 "$trace_py" profile "$W/boot.trace" "$W/boot.prf"
"$hb" push --plain-http --quiet "$W/disk.img" "docker://127.0.0.1:$port/bench/lazy:v1" >/dev/null
"$hb" push --plain-http --quiet "$W/disk.img" "docker://127.0.0.1:$port/bench/lazy:repacked" --profile "$W/boot.prf" >/dev/null
"$hb" inspect --plain-http --json "docker://127.0.0.1:$port/bench/lazy:v1" >"$W/inspect.json"
rm -f "$W/disk.img"     # only the registry's copy is needed from here on
if [ "$link" = direct ]; then
        url=127.0.0.1:$port
        rate_bps=0
        rtt_ms=0
else
        start_linkem "$linkem" "$port" "${link%%:*}" "${link#*:}" "$W/linkem.json"
        url=127.0.0.1:$LINKEM_PORT
        rate_bps=$(rate_bps "${link#*:}")
        rtt_ms=$(calc "2000 * $(delay_s "${link%%:*}")" %.3f)
fi
REF=docker://$url/bench/lazy:v1
REF_REPACKED=docker://$url/bench/lazy:repacked

# --- One run -------------------------------------------------------------------
# run MODE N: prints one line of key=value results.
field() {        # stat FIELD: from the last stats snapshot
        python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["exports"][0][sys.argv[2]])' "$W/stats.json" "$1"
}
# learn_first CACHE: a cold start that learns the trace's first reads (kept
# in CACHE/learned at exit), then an empty chunk store beside them.
learn_first() {
        "$blockd" --cache "$1" --plain-http --state-dir none --nbd-socket "$W/nbd.sock" --control "$W/control.sock" \
                --pidfile "$W/blockd.pid" --background off --export "ws=$REF" >"$W/learn.log" 2>&1 &
        local bpid=$!
        wait_file 60 "$W/blockd.pid" || fail "blockd did not start: $(tail -3 "$W/learn.log")"
        "$NBD_PYTHON" "$trace_py" replay "nbd+unix:///ws?socket=$W/nbd.sock" "$W/boot.trace" "$qd" >/dev/null
        stop_pid "$bpid" blockd
        grep -q "learned its first reads" "$W/learn.log" || fail "the first start learned nothing: $(tail -3 "$W/learn.log")"
        rm -rf "$1/chunks" "$W/blockd.pid"
}
run() {
        local mode=$1 n=$2 cache=$W/cache.$1.$2 flags=() t0 t_ready boot hydrated=- pull_s=-
        rm -rf "$cache"
        case $mode in
        no-background) flags=(--background off) ;;
        profile) flags=(--export "ws=$REF,profile=$W/boot.prf") ;;
        repacked) flags=(--export "ws=$REF_REPACKED,profile=auto") ;;
        full-pull)
                t0=$(date +%s.%N)
                HOCUS_BLK_CACHE=$cache "$hb" pull --plain-http --quiet "$REF"
                pull_s=$(python3 -c "import sys; print('%.2f' % ($(date +%s.%N) - $t0))")
                ;;
        warm) HOCUS_BLK_CACHE=$cache "$hb" pull --plain-http --quiet "$REF" ;;
        learned)
                learn_first "$cache"
                flags=(--export "ws=$REF,profile=auto")
                ;;
        esac
        [ "$mode" = profile ] || [ "$mode" = repacked ] || [ "$mode" = learned ] || flags+=(--export "ws=$REF,profile=none")
        rm -f "$W/blockd.pid" "$W/fetch.log"
        t0=$(date +%s.%N)
        local wrap=()
        [ -z "$perf_dir" ] || wrap=(perf record -q -F 999 --call-graph dwarf,16384 -o "$perf_dir/perf-$mode-$n.data" --)
        "${wrap[@]}" "$blockd" --cache "$cache" --plain-http --state-dir none --nbd-socket "$W/nbd.sock" --control "$W/control.sock" \
                --pidfile "$W/blockd.pid" --fetch-log "$W/fetch.log" "${flags[@]}" >"$W/blockd.log" 2>&1 &
        local bpid=$!
        cleanup_fn "kill $bpid; wait $bpid"
        wait_file 60 "$W/blockd.pid" || fail "blockd did not start: $(tail -3 "$W/blockd.log")"
        t_ready=$(python3 -c "print('%.3f' % ($(date +%s.%N) - $t0))")
        read -r boot _ _ < <("$NBD_PYTHON" "$trace_py" replay "nbd+unix:///ws?socket=$W/nbd.sock" "$W/boot.trace" "$qd")
        "$hb" stats --control "$W/control.sock" --json >"$W/stats.json"
        local at_boot_fetched at_boot_req needed waits wait_s
        at_boot_fetched=$(field bytes_fetched)
        at_boot_req="$(field demand_requests)/$(field profile_requests)/$(field background_requests)"
        needed=$(field bytes_needed)
        waits=$(field demand_waits)
        wait_s=$(field demand_wait_s)
        if [ "$mode" = no-profile ] || [ "$mode" = profile ] || [ "$mode" = repacked ]; then
                for _ in $(seq 12000); do
                        "$hb" stats --control "$W/control.sock" --json >"$W/stats.json"
                        [ "$(field background)" = done ] && break
                        sleep 0.05
                done
                hydrated=$(python3 -c "print('%.2f' % ($(date +%s.%N) - $t0))")
        fi
        "$hb" stats --control "$W/control.sock" --json >"$W/stats.json"
        local cpu
        if [ -n "$perf_dir" ]; then
                # bpid is perf's: stop blockd, and perf ends with it.
                local dpid
                dpid=$(cat "$W/blockd.pid")
                cpu=$(proc_cpu_s "$dpid")
                kill "$dpid"
                wait "$bpid" || true
        else
                cpu=$(proc_cpu_s "$bpid")
                stop_pid "$bpid" blockd
        fi
        echo "mode=$mode run=$n ready=$t_ready boot=$boot hydrated=$hydrated pull=$pull_s fetched_at_boot=$at_boot_fetched" \
             "requests_at_boot=$at_boot_req needed_raw=$needed waits=$waits wait_s=$wait_s" \
             "cpu=$cpu fetched_total=$(field bytes_fetched) requests_total=$(($(field demand_requests) + $(field profile_requests) + $(field background_requests)))" \
             "demand_bytes_at_boot=$(python3 -c 'import sys; print(sum(int(l.split("bytes=")[1].split()[0]) for l in open(sys.argv[1]) if " class=demand " in l))' "$W/fetch.log")"
        rm -rf "$cache"
}

echo "# bench/coldstart --preset lazy: image $size_mib MiB ($(python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print("%.0f MiB stored in %d unique chunks of %d KiB" % (j["stored_bytes"] / 2**20, j["unique_chunks"], j["chunk_size"] // 1024))' "$W/inspect.json")), trace $(wc -l <"$W/boot.trace") reads ($(awk '{s += $2} END {printf "%.0f MiB", s / 1048576}' "$W/boot.trace")), link $link, QD $qd, $(nproc) CPUs, load $(cut -d' ' -f1 /proc/loadavg)"
for n in $(seq "$runs"); do
        for mode in $modes; do
                run "$mode" "$n" >>"$W/results"
                tail -1 "$W/results"
        done
done

# --- Medians and ratios -------------------------------------------------------
python3 - "$W/results" "$rate_bps" "$rtt_ms" <<'PY'
import statistics, sys
rows = [dict(kv.split("=", 1) for kv in l.split()) for l in open(sys.argv[1])]
rate, rtt = float(sys.argv[2]), float(sys.argv[3]) / 1000
def med(mode, key):
    v = [float(r[key]) for r in rows if r["mode"] == mode and r[key] not in ("-", "")]
    return statistics.median(v) if v else None
modes = list(dict.fromkeys(r["mode"] for r in rows))
needed_stored = med("no-background", "demand_bytes_at_boot")
print()
print("| start | boot s | hydrated s | pull s | fetched at boot | needed (raw) | requests at boot d/p/b | reads waited | wait s "
      "| blockd CPU s | CPU-s/GiB fetched |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for m in modes:
    r = [x for x in rows if x["mode"] == m][0]
    f = lambda k, fmt="%.2f": (fmt % med(m, k)) if med(m, k) is not None else "-"
    per_gib = [float(x["cpu"]) / (float(x["fetched_total"]) / 2**30) for x in rows
               if x["mode"] == m and float(x["fetched_total"]) > 0]
    print("| %s | %s | %s | %s | %.0f MiB | %.0f MiB | %s | %s | %s | %s | %s |" % (
        m, f("boot"), f("hydrated"), f("pull"), med(m, "fetched_at_boot") / 2**20, med(m, "needed_raw") / 2**20,
        r["requests_at_boot"], f("waits", "%.0f"), f("wait_s"), f("cpu"),
        "%.2f" % statistics.median(per_gib) if per_gib else "-"))
if needed_stored and rate:
    floor = needed_stored * 8 / rate
    print()
    print("link floor for the boot: %.0f MiB stored needed / %s bit/s = %.2f s (+ round trips of %.1f ms)" % (
        needed_stored / 2**20, "%.0e" % rate, floor, rtt * 1000))
    for m in modes:
        b = med(m, "boot")
        if b and m not in ("warm", "full-pull"):
            print("  %-14s boot %.2f s = %.2fx the floor" % (m, b, b / floor))
fp, pr = med("full-pull", "pull"), med("profile", "boot")
if fp and pr:
    print("full pull %.2f s (+ boot %.2f s) vs profile boot %.2f s: %.1fx" % (fp, med("full-pull", "boot"), pr, (fp + med("full-pull", "boot")) / pr))
PY
exit 0
