#!/usr/bin/env bash
# Cold mount plus a real workload, with and without a boot profile, from a
# loopback docker-registry (optionally behind a proxy adding latency to
# every request, to stand in for a network link), against a full pull.
#
# The image: a workspace of FILES_MIB MiB of generated files plus a dataset
# of DATASET_MIB MiB (random) that nobody reads at start-up, in ext4 on a 20 GiB sparse disk, with a
# static program /usr/bin/startup (bench/mount-startup.c). The workload is
# that program, started from the mounted image with chroot: it reads the
# configs, ten of forty modules' sources and eight tools.
#
# For each link (LATENCIES, ms per request) and each way of starting, RUNS
# times from an empty chunk store, the medians of:
#   ready    `hocus-blk mount` returned (blockd started, image attached,
#            filesystem found and mounted)
#   done     the workload finished (ready + the workload)
#   fetched  bytes fetched from the registry when the workload finished
#   waits    chunk reads the workload had to wait for (demand fetches)
#   GETs     requests the registry saw (through the proxy; 0 ms: not counted)
# Ways of starting:
#   no-profile  mount --no-profile: everything on demand
#   profile     the published profile (a referrer) prefetched at attach
#   repacked    `hocus-blk repack`: profile chunks first in the packs, the
#               profile as a layer
#   full-pull   `hocus-blk pull` of the whole image first, then mount
#
# usage: bench/mount.sh [BUILD_DIR] [FILES_MIB] [RUNS] [LATENCIES] [DATASET_MIB]
#        (defaults: build, 400, 3, "0 5", 1024); needs root, /dev/fuse,
#        docker-registry, mkfs.ext4, a C compiler with static libc.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=$(realpath "${1:-$here/build}")
files_mib=${2:-400}
runs=${3:-3}
latencies=${4:-0 5}
dataset_mib=${5:-1024}
hb=$build/cli/hocus-blk
[ "$(id -u)" -eq 0 ] || { echo "bench/mount: needs root" >&2; exit 77; }
[ -x "$hb" ] || { echo "bench/mount: $hb is not built" >&2; exit 1; }
W=$(mktemp -d /var/tmp/bench-mount.XXXXXX)
export HOCUS_BLK_RUN_DIR=$W/run HOCUS_BLK_NO_PROGRESS=1
[ -x "$build/blockd/blockd" ] && export HOCUS_BLK_BLOCKD=$build/blockd/blockd
pids=()
cleanup() {
        "$hb" umount --lazy "$W/mnt" >/dev/null 2>&1 || true
        for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
        rm -rf "$W"
}
trap cleanup EXIT
mkdir -p "$W/mnt"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }
calc() { awk "BEGIN { printf \"%.2f\", $1 }"; }
median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

port=$(free_port)
cat >"$W/reg.yml" <<YAML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $W/reg
http:
  addr: 127.0.0.1:$port
YAML
docker-registry serve "$W/reg.yml" >"$W/reg.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && break; sleep 0.1; done

echo "== the image: $files_mib MiB of files + a $dataset_mib MiB dataset in ext4 on a 20 GiB sparse disk"
python3 "$here/tests/gen-workspace.py" "$W/files" --size "$files_mib" --dataset "$dataset_mib"
mkdir -p "$W/files/usr/bin"
cc -static -O2 -o "$W/files/usr/bin/startup" "$here/bench/mount-startup.c"
mkfs.ext4 -q -F -L workspace -d "$W/files" "$W/disk.img" 20G
R=127.0.0.1:$port/bench/ws
"$hb" push "$W/disk.img" "docker://$R:v1" --plain-http | sed -n 's/^  \(image\|new data\)/  \1/p'
stored=$("$hb" inspect "docker://$R:v1" --plain-http --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["storedBytes"])')

echo "== record the start-up's profile, publish it, repack"
"$hb" record "docker://$R:v1" --plain-http --out "$W/boot.prf" --mount -- \
        sh -c 'chroot "$HOCUS_BLK_MOUNT" /usr/bin/startup'
"$hb" profile push "docker://$R:v1" "$W/boot.prf" --plain-http | sed -n '/prefetch/p'
"$hb" repack "docker://$R:v1" "docker://$R:repacked" --plain-http | sed -n '/chunks/p'

# counter FIELD: from the blockd behind the mount.
counter() {
        "$hb" stats --control "$(ls "$HOCUS_BLK_RUN_DIR"/mounts/*/control.sock)" --json |
                python3 -c 'import json,sys; print(json.load(sys.stdin)["exports"][0][sys.argv[1]])' "$1"
}

# one MODE URL: one cold start; prints "ready done fetched waits gets".
one() {
        local mode=$1 url=$2 t0 t1 t2 tag=v1 args=() m0 m1 g0 fetched
        rm -rf "$W/cache"
        case $mode in
        no-profile) args=(--no-profile) ;;
        repacked) tag=repacked ;;
        esac
        g0=$( [ -f "$W/proxy.log" ] && wc -l <"$W/proxy.log" || echo 0)
        sync
        echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
        t0=$(now)
        if [ "$mode" = full-pull ]; then
                HOCUS_BLK_CACHE=$W/cache "$hb" pull "docker://$url:$tag" --plain-http >/dev/null
                args=(--no-profile)
        fi
        HOCUS_BLK_CACHE=$W/cache "$hb" mount "docker://$url:$tag" "$W/mnt" --plain-http "${args[@]}" >/dev/null
        t1=$(now)
        m0=$(counter cache_misses)
        chroot "$W/mnt" /usr/bin/startup >/dev/null
        t2=$(now)
        m1=$(counter cache_misses)
        fetched=$(counter bytes_fetched)
        if [ "$mode" = full-pull ]; then fetched=$stored; fi
        "$hb" umount "$W/mnt" >/dev/null
        echo "$(calc "$t1 - $t0") $(calc "$t2 - $t0") $fetched $((m1 - m0)) $(( $( [ -f "$W/proxy.log" ] && wc -l <"$W/proxy.log" || echo 0) - g0 ))"
}

printf '\n%-8s %-11s %8s %8s %11s %6s %6s\n' link start ready_s done_s fetched_MiB waits GETs
for lat in $latencies; do
        url=$R
        rm -f "$W/proxy.log"
        if [ "$lat" -gt 0 ]; then
                python3 "$here/tests/helpers/fault-proxy.py" --upstream "127.0.0.1:$port" --latency "$lat" \
                        --port-file "$W/proxy.port" --log "$W/proxy.log" >"$W/proxy.out" 2>&1 &
                pids+=($!)
                for _ in $(seq 100); do [ -s "$W/proxy.port" ] && break; sleep 0.1; done
                url=127.0.0.1:$(cat "$W/proxy.port")/bench/ws
        fi
        for mode in no-profile profile repacked full-pull; do
                : >"$W/runs"
                for ((i = 0; i < runs; i++)); do one "$mode" "$url" >>"$W/runs"; done
                printf '%-8s %-11s %8s %8s %11s %6s %6s\n' "${lat}ms" "$mode" \
                        "$(cut -d' ' -f1 "$W/runs" | median)" "$(cut -d' ' -f2 "$W/runs" | median)" \
                        "$(calc "$(cut -d' ' -f3 "$W/runs" | median) / 1048576")" \
                        "$(cut -d' ' -f4 "$W/runs" | median)" "$(cut -d' ' -f5 "$W/runs" | median)"
        done
        rm -f "$W/proxy.port"
done
printf '\nimage: %s MiB stored; profile: %s\n' "$(calc "$stored / 1048576")" \
        "$("$hb" profile show "$W/boot.prf" | sed -n 's/^  ranges *//p')"
