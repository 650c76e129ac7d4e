#!/usr/bin/env bash
# Cold mount plus a real start-up workload, from a docker-registry on
# loopback (directly, and through bench/linkem emulating a network link),
# with and without a boot profile, against a full `hocus-blk pull` first.
#
# The image (default): bench/make-workspace.sh's workspace, Debian bookworm
# (python3, gcc, git) with 600 MiB of project files and 4 GiB of datasets
# no start reads, ext4 on a 100 GiB sparse disk; the workload is
# bench/workload.sh: bash, dpkg-query, python3 imports and a sqlite job, a
# gcc compile, a git commit and project reads, all programs started from
# the mounted image with chroot. --quick: the small workspace (2 GiB, no
# gcc). --synthetic: no debootstrap (no network): generated files and a
# static program (bench/mount-startup.c) run with chroot.
#
# Each way of starting runs RUNS times from an empty chunk store; medians:
#   ready    `hocus-blk mount` returned: blockd started, the image attached
#            (manifest, index, and the profile looked up), the filesystem
#            found and mounted; for full-pull, the pull is included
#   done     the workload finished (ready + the workload)
#   fetched  bytes fetched from the registry when the workload finished
#   waits    chunk reads the workload had to wait for (demand fetches)
#   GETs     blob GETs the registry served (its access log)
# Ways of starting:
#   no-profile  mount --no-profile: everything on demand
#   profile     the published profile (a referrer of the image) prefetched
#               from attach on
#   repacked    `hocus-blk repack`: the profile's chunks first in the packs,
#               the profile as the manifest's layer
#   full-pull   `hocus-blk pull` of the whole image, then mount --no-profile
#   warm        every chunk in the store already (pulled before the clock
#               starts): the workload's own floor
#
# usage: bench/mount.sh [--build DIR] [--quick|--synthetic] [--runs N]
#                       [--links "direct 5ms:1gbit"] [--starts "no-profile ..."]
# LINKS: "direct" (loopback) or DELAY:RATE for linkem (RTT = 2 x DELAY).
# Needs root, /dev/fuse, docker-registry; the workspace image needs what
# bench/make-workspace.sh needs (its cache makes reruns quick).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/bench/lib.sh"
build=$here/build
mode=full
runs=3
links="direct 5ms:1gbit"
starts="no-profile profile repacked full-pull warm"
while [ $# -gt 0 ]; do
        case $1 in
        --build) build=$2; shift ;;
        --quick) mode=quick ;;
        --synthetic) mode=synthetic ;;
        --runs) runs=$2; shift ;;
        --links) links=$2; shift ;;
        --starts) starts=$2; shift ;;
        *) sed -n '/^# usage:/,/^# Needs/s/^# \{0,1\}//p' "$0" >&2; exit 2 ;;
        esac
        shift
done
build=$(realpath "$build")
hb=$build/cli/hocus-blk
linkem=$build/bench/linkem
[ "$(id -u)" -eq 0 ] || { echo "bench/mount: needs root" >&2; exit 77; }
[ -e /dev/fuse ] || { echo "bench/mount: needs /dev/fuse" >&2; exit 77; }
[ -x "$hb" ] || { echo "bench/mount: $hb is not built" >&2; exit 1; }
W=$(mktemp -d /var/tmp/bench-mount.XXXXXX)
export HOCUS_BLK_RUN_DIR=$W/run HOCUS_BLK_NO_PROGRESS=1
[ -x "$build/blockd/blockd" ] && export HOCUS_BLK_BLOCKD=$build/blockd/blockd
pids=()
cleanup() {
        set +e
        "$hb" umount --lazy "$W/mnt" >/dev/null 2>&1
        stop_pids
        rm -rf "$W"
}
trap cleanup EXIT
mkdir -p "$W/mnt"


# --- The image and its workload ---------------------------------------------
case $mode in
full | quick)
        opt=()
        [ "$mode" = quick ] && opt=(--quick)
        bash "$here/bench/make-workspace.sh" "$W/disk.img" "${opt[@]}" | tail -1
        workload() { bash "$here/bench/workload.sh" "$1" >/dev/null 2>"$W/workload.err"; }
        ;;
synthetic)
        python3 "$here/tests/gen-workspace.py" "$W/files" --size 400 --dataset 1024 >/dev/null
        mkdir -p "$W/files/usr/bin"
        cc -static -O2 -o "$W/files/usr/bin/startup" "$here/bench/mount-startup.c"
        mkfs.ext4 -q -F -L workspace -d "$W/files" "$W/disk.img" 20G
        workload() { chroot "$1" /usr/bin/startup >/dev/null; }
        ;;
esac
export here W          # for the workload run inside `hocus-blk record`

start_registry "$W" || exit 1
port=$REG_PORT
R=127.0.0.1:$port/bench/ws
echo "== push to a loopback docker-registry"
"$hb" push "$W/disk.img" "docker://$R:v1" --plain-http | sed -n '/^  \(image\|new data\)/p'
stored=$("$hb" inspect "docker://$R:v1" --plain-http --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["storedBytes"])')

echo "== record the start-up's boot profile (cold), publish it, repack"
"$hb" record "docker://$R:v1" --plain-http --out "$W/boot.prf" --mount -- \
        bash -c "$(declare -f workload); workload \"\$HOCUS_BLK_MOUNT\""
"$hb" profile push "docker://$R:v1" "$W/boot.prf" --plain-http | sed -n '/prefetch/p'
"$hb" repack "docker://$R:v1" "docker://$R:repacked" --plain-http | sed -n '/^  chunks/p'

# counter FIELD: from the blockd behind the mount.
counter() {
        "$hb" stats --control "$(ls "$HOCUS_BLK_RUN_DIR"/mounts/*/control.sock)" --json |
                python3 -c 'import json,sys; print(json.load(sys.stdin)["exports"][0][sys.argv[1]])' "$1"
}
blob_gets() { grep -c '"GET /v2/bench/ws/blobs/' "$W/reg.log" || true; }

# one START URL: one cold start; prints "ready done fetched waits gets".
one() {
        local start=$1 url=$2 t0 t1 t2 tag=v1 args=() m0 m1 g0 fetched
        rm -rf "$W/cache"
        case $start in
        no-profile | full-pull | warm) args=(--no-profile) ;;
        repacked) tag=repacked ;;
        esac
        [ "$start" != warm ] || HOCUS_BLK_CACHE=$W/cache "$hb" pull "docker://$url:$tag" --plain-http >/dev/null
        sync
        echo 3 >/proc/sys/vm/drop_caches
        g0=$(blob_gets)
        t0=$(now)
        [ "$start" != full-pull ] || HOCUS_BLK_CACHE=$W/cache "$hb" pull "docker://$url:$tag" --plain-http >/dev/null
        HOCUS_BLK_CACHE=$W/cache "$hb" mount "docker://$url:$tag" "$W/mnt" --plain-http "${args[@]}" >/dev/null
        t1=$(now)
        m0=$(counter cache_misses)
        workload "$W/mnt"
        t2=$(now)
        m1=$(counter cache_misses)
        fetched=$(counter bytes_fetched)
        [ "$start" != full-pull ] || fetched=$stored
        [ "$start" != warm ] || fetched=0
        "$hb" umount "$W/mnt" >/dev/null
        echo "$(calc "$t1 - $t0") $(calc "$t2 - $t0") $fetched $((m1 - m0)) $(($(blob_gets) - g0))"
}

printf '\n%-13s %-11s %8s %8s %12s %6s %6s\n' link start ready_s done_s fetched_MiB waits GETs
for link in $links; do
        url=$R
        if [ "$link" != direct ]; then
                [ -x "$linkem" ] || { echo "bench/mount: $linkem is not built" >&2; exit 1; }
                rm -f "$W/linkem.port"
                "$linkem" --connect "127.0.0.1:$port" --delay "${link%%:*}" --rate "${link#*:}" \
                        --port-file "$W/linkem.port" >"$W/linkem.log" 2>&1 &
                lpid=$!
                pids+=($lpid)
                for _ in $(seq 100); do [ -s "$W/linkem.port" ] && break; sleep 0.1; done
                url=127.0.0.1:$(cat "$W/linkem.port")/bench/ws
        fi
        for start in $starts; do
                : >"$W/runs"
                for ((i = 0; i < runs; i++)); do one "$start" "$url" >>"$W/runs"; done
                printf '%-13s %-11s %8s %8s %12s %6s %6s\n' "$link" "$start" \
                        "$(cut -d' ' -f1 "$W/runs" | median)" "$(cut -d' ' -f2 "$W/runs" | median)" \
                        "$(calc "$(cut -d' ' -f3 "$W/runs" | median) / 1048576")" \
                        "$(cut -d' ' -f4 "$W/runs" | median)" "$(cut -d' ' -f5 "$W/runs" | median)"
        done
        if [ "$link" != direct ]; then
                kill "$lpid" 2>/dev/null || true
                wait "$lpid" 2>/dev/null || true
        fi
done
printf '\nimage: %s MiB stored; profile: %s\n' "$(calc "$stored / 1048576")" \
        "$("$hb" profile show "$W/boot.prf" | sed -n 's/^  ranges *//p')"
