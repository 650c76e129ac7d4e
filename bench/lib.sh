# Shared shell helpers for the benchmark scripts under bench/. Source it
# first thing (after setting TMPDIR, for a scratch directory elsewhere):
#   . "$here/bench/lib.sh"
# Servers, free ports, waits and cleanup are the test harness's,
# tests/functions.sh, sourced here and behaving as in the tests: $T is the
# run's scratch directory, removed at exit (kept with KEEP_T=1, or on a
# failure with KEEP_LOGS=1); cleanup_fn registers what the one EXIT trap
# undoes (last first); start_registry NAME, wait_for, wait_file SECONDS
# FILE, stop_pid (fails the run on an unclean exit), free_port, fail and
# skip. Every start_* here registers its own cleanup too. A script adds
# its own with cleanup_fn and installs no trap of its own.
# What is here is only what benchmarks need beyond that: timing and load
# figures, linkem's syntax, bench/httpd.py and linkem as servers.

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TESTS_DIR=$(cd "$BENCH_DIR/../tests" && pwd)
# The harness wants the CLI's path; scripts with --build use their own.
export HOCUS_BLK=${HOCUS_BLK:-$BENCH_DIR/../build/cli/hocus-blk}
# shellcheck source=../tests/functions.sh
. "$TESTS_DIR/functions.sh"

# now: wall-clock seconds with nanoseconds.
now() { date +%s.%N; }

# calc EXPR [FORMAT]: floating-point arithmetic (default two decimals).
calc() { awk "BEGIN { printf \"${2:-%.2f}\", $1 }"; }

# median: the median of the numbers on stdin, one per line (the lower one
# of the middle two for an even count).
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }'; }

# loadavg: the 1-, 5- and 15-minute load averages, space-separated.
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

# cpu_stall_us: microseconds some task waited for a CPU since boot
# (/proc/pressure/cpu "some"; 0 without PSI). Over an interval, the share
# of time a benchmark competed for the CPUs.
cpu_stall_us() {
        sed -n 's/^some .*total=\([0-9]*\).*/\1/p' /proc/pressure/cpu 2>/dev/null || echo 0
}

# proc_cpu_s PID: CPU seconds (user + system, all threads) PID has used; 0
# when it is gone.
proc_cpu_s() {
        awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.3f\n", ($12 + $13) / hz }' \
                "/proc/$1/stat" 2>/dev/null || echo 0
}

# machine_busy_s: CPU seconds all CPUs spent busy since boot (not idle, not
# waiting for I/O).
machine_busy_s() {
        awk -v hz="$(getconf CLK_TCK)" '$1 == "cpu" { printf "%.3f\n", ($2 + $3 + $4 + $7 + $8 + $9) / hz }' /proc/stat
}

# rate_bps RATE: linkem's rate syntax (1gbit, 500mbit, 10g) in bits/s.
rate_bps() {
        python3 -c 'import re, sys
m = re.fullmatch(r"([0-9.]+)([kmg]?)(bit|b)?", sys.argv[1].lower())
if not m: sys.exit("bad rate " + sys.argv[1])
print(int(float(m.group(1)) * {"": 1, "k": 1e3, "m": 1e6, "g": 1e9}[m.group(2)]))' "$1"
}

# delay_s DELAY: linkem's delay syntax (1ms, 250us, 0.25ms, 1s) in seconds.
delay_s() {
        python3 -c 'import re, sys
m = re.fullmatch(r"([0-9.]+)(us|ms|s)", sys.argv[1])
if not m: sys.exit("bad delay " + sys.argv[1])
print(float(m.group(1)) * {"us": 1e-6, "ms": 1e-3, "s": 1}[m.group(2)])' "$1"
}

# start_httpd NAME WWW: bench/httpd.py serving WWW (Range, sendfile), one
# log line per request in $T/NAME.log. Sets HTTPD_PORT, HTTPD_PID and
# HTTPD_LOG; the exit cleanup stops it.
start_httpd() {
        local name=$1 www=$2
        HTTPD_LOG=$T/$name.log
        rm -f "$T/$name.port"
        python3 "$BENCH_DIR/httpd.py" "$www" --port-file "$T/$name.port" --log "$HTTPD_LOG" &
        HTTPD_PID=$!
        cleanup_fn "kill $HTTPD_PID; wait $HTTPD_PID"
        wait_file 30 "$T/$name.port" || fail "httpd.py did not start"
        HTTPD_PORT=$(cat "$T/$name.port")
}

# start_linkem LINKEM TARGET_PORT DELAY RATE STATS [ARGS...]: linkem in
# front of 127.0.0.1:TARGET_PORT, counters to STATS at exit and on SIGUSR1,
# its log beside them (STATS without .json, .log). Sets LINKEM_PORT and
# LINKEM_PID; stop it with stop_pid (the exit cleanup does otherwise).
start_linkem() {
        local bin=$1 target=$2 delay=$3 rate=$4 stats=$5 pf=$T/linkem.port
        shift 5
        rm -f "$pf"
        "$bin" --connect "127.0.0.1:$target" --delay "$delay" --rate "$rate" --port-file "$pf" \
                --stats "$stats" "$@" >/dev/null 2>>"${stats%.json}.log" &
        LINKEM_PID=$!
        cleanup_fn "kill $LINKEM_PID; wait $LINKEM_PID"
        wait_file 30 "$pf" || fail "linkem did not start: $(tail -3 "${stats%.json}.log")"
        LINKEM_PORT=$(cat "$pf")
}

# linkem_snapshot PID STATS: have linkem rewrite STATS now (SIGUSR1) and
# wait until it has.
linkem_snapshot() {
        rm -f "$2"
        kill -USR1 "$1"
        wait_file 30 "$2" || fail "linkem did not write $2"
}
