# Shared shell helpers for the benchmark scripts under bench/. Source it:
#   . "$here/bench/lib.sh"
# It defines functions only (no traps, no set -e changes): the script that
# sources it owns its cleanup. Servers started here are appended to the
# caller's `pids` array (declare `pids=()` first) so that one cleanup can
# stop them all; each start_* also sets variables naming what it started.

# now: wall-clock seconds with nanoseconds.
now() { date +%s.%N; }

# calc EXPR [FORMAT]: floating-point arithmetic (default two decimals).
calc() { awk "BEGIN { printf \"${2:-%.2f}\", $1 }"; }

# median: the median of the numbers on stdin, one per line (the lower one
# of the middle two for an even count).
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }'; }

# free_port: a TCP port on 127.0.0.1 that was free a moment ago.
free_port() {
        python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

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

# wait_file FILE [SECONDS]: until FILE exists and is not empty (a server's
# port or pid file: its readiness), at most SECONDS (default 30); 1 if not.
wait_file() {
        local i n=$(( ${2:-30} * 50 ))
        for ((i = 0; i < n; i++)); do
                [ -s "$1" ] && return 0
                sleep 0.02
        done
        echo "bench: timed out waiting for $1" >&2
        return 1
}

# stop_pid PID: SIGTERM and wait; 0 when it exited (whatever its status).
stop_pid() {
        kill "$1" 2>/dev/null || return 0
        wait "$1" 2>/dev/null || true
}

# stop_pids: stop every server in the caller's `pids` array (the cleanup
# the scripts share): all are signalled first, then waited for.
stop_pids() {
        local p
        for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
        for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
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

# start_registry DIR: docker-registry on a free 127.0.0.1 port, storage in
# DIR/reg, its access log (one line per request) in DIR/reg.log. Sets
# REG_PORT and REG_PID.
start_registry() {
        local dir=$1 i
        REG_PORT=$(free_port)
        cat >"$dir/reg.yml" <<YAML
version: 0.1
log:
  level: error
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: $dir/reg
http:
  addr: 127.0.0.1:$REG_PORT
YAML
        docker-registry serve "$dir/reg.yml" >>"$dir/reg.log" 2>&1 &
        REG_PID=$!
        pids+=("$REG_PID")
        for ((i = 0; i < 250; i++)); do
                curl -fsS "http://127.0.0.1:$REG_PORT/v2/" >/dev/null 2>&1 && return 0
                kill -0 "$REG_PID" 2>/dev/null || break
                sleep 0.02
        done
        echo "bench: docker-registry did not start: $(tail -3 "$dir/reg.log")" >&2
        return 1
}

# start_httpd DIR WWW: bench/httpd.py serving WWW (Range, sendfile), one
# log line per request in DIR/httpd.log. Sets HTTPD_PORT and HTTPD_PID.
start_httpd() {
        local dir=$1 www=$2 lib_dir
        lib_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
        rm -f "$dir/httpd.port"
        python3 "$lib_dir/httpd.py" "$www" --port-file "$dir/httpd.port" --log "$dir/httpd.log" &
        HTTPD_PID=$!
        pids+=("$HTTPD_PID")
        wait_file "$dir/httpd.port" 10
        HTTPD_PORT=$(cat "$dir/httpd.port")
}

# start_linkem LINKEM TARGET_PORT DELAY RATE STATS [ARGS...]: linkem in
# front of 127.0.0.1:TARGET_PORT, counters to STATS at exit and on SIGUSR1.
# Sets LINKEM_PORT and LINKEM_PID.
start_linkem() {
        local bin=$1 target=$2 delay=$3 rate=$4 stats=$5 pf
        shift 5
        pf=$(mktemp -u "${TMPDIR:-/tmp}/linkem.port.XXXXXX")
        "$bin" --connect "127.0.0.1:$target" --delay "$delay" --rate "$rate" --port-file "$pf" \
                --stats "$stats" "$@" >/dev/null 2>>"${stats%.json}.log" &
        LINKEM_PID=$!
        pids+=("$LINKEM_PID")
        wait_file "$pf" 10
        LINKEM_PORT=$(cat "$pf")
        rm -f "$pf"
}

# linkem_snapshot PID STATS: have linkem rewrite STATS now (SIGUSR1) and
# wait until it has.
linkem_snapshot() {
        rm -f "$2"
        kill -USR1 "$1"
        wait_file "$2" 5
}
