#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# bench/coldstart's mounts and peers (sourced by it; uses its globals: W,
# PY, CS, L, the registered-cleanup helpers mounts_drop/pids_drop): the
# NBD, qemu FUSE and local loop mounts of a start, the peers' servers, the
# watch on a peer's workload start, and the wait for blockd's hydration.

# loop_mount FILE: FILE on a read-only loop device with direct I/O, its
# ext4 mounted on $W/mnt, read-only, no journal replay. Sets NB_LOOP;
# loop_umount undoes it.
loop_mount() {
        NB_LOOP=$(losetup --find --show --read-only --direct-io=on "$1")
        mounts+=("loop:$NB_LOOP")
        mount -o ro,noload,nosuid,nodev "$NB_LOOP" "$W/mnt"
        mounts+=("$W/mnt")
}
loop_umount() {
        umount "$W/mnt"
        mounts_drop "$W/mnt"
        losetup -d "$NB_LOOP" 2>/dev/null || true
        mounts_drop "loop:$NB_LOOP"
}

# nbd_mount URI: nbdfuse (multi-conn) -> loop_mount: what hocus-blk mount
# does with blockd's FUSE file. Sets NB_LOOP, NB_FUSE_PID.
nbd_mount() {
        rm -f "$W/nbdfuse.pid"
        nbdfuse -r -P "$W/nbdfuse.pid" "$W/nfuse/disk" "$1" >>"$L/nbdfuse.log" 2>&1 &
        NB_FUSE_PID=$!
        mounts+=("fuse:$W/nfuse")
        wait_file 30 "$W/nbdfuse.pid"
        loop_mount "$W/nfuse/disk"
}
nbd_umount() {
        loop_umount
        fusermount3 -u "$W/nfuse"
        wait "$NB_FUSE_PID" 2>/dev/null || true
        mounts_drop "fuse:$W/nfuse"
}

# peer_started: a peer daemon's pidfile is there (30 s at most): NK_PID,
# registered for cleanup.
peer_started() {
        wait_file 30 "$W/peer.pid"
        NK_PID=$(cat "$W/peer.pid")
        pids+=("$NK_PID")
}

# nbdkit_start ARGS...: nbdkit on a Unix socket (it forks; ready at its
# pidfile). Sets NK_PID and NK_URI; nbdkit_stop stops it.
nbdkit_start() {
        rm -f "$W/peer.pid" "$W/peer.sock"
        nbdkit -r --unix "$W/peer.sock" --pidfile "$W/peer.pid" "$@" 2>>"$L/nbdkit.log"
        peer_started
        NK_URI="nbd+unix:///?socket=$W/peer.sock"
}

# qemu_start URL: qemu-storage-daemon with qemu's http driver on URL,
# exported read-only over NBD on the same socket (it daemonizes once its
# export is up, the pidfile written). Sets NK_PID and NK_URI like
# nbdkit_start; nbdkit_stop stops it.
qemu_start() {
        rm -f "$W/peer.pid" "$W/peer.sock"
        qemu-storage-daemon --blockdev "driver=http,url=$1,node-name=raw,read-only=on" \
                --nbd-server "addr.type=unix,addr.path=$W/peer.sock" \
                --export type=nbd,id=raw,node-name=raw,name=,writable=off \
                --pidfile "$W/peer.pid" --daemonize 2>>"$L/qemu.log"
        peer_started
        NK_URI="nbd+unix:///?socket=$W/peer.sock"
}
nbdkit_stop() {
        kill "$NK_PID" 2>/dev/null || true
        while kill -0 "$NK_PID" 2>/dev/null; do sleep 0.02; done
        pids_drop "$NK_PID"
        rm -f "$W/peer.pid"
}

# qemu_mount URL: the image as a qemu user mounts it: qemu-storage-daemon
# with the http driver on URL and its own FUSE export, which mounts itself
# over the regular file $W/qfuse.disk (in qemu 7.2 single-threaded, a read
# waiting in a nested poll), then loop_mount. Sets NK_PID (the daemon:
# HTTP client and FUSE server in one, so all of the peer's CPU) and
# NB_LOOP; NB_FUSE_PID is empty. qemu_umount undoes it.
qemu_mount() {
        rm -f "$W/peer.pid"
        : >"$W/qfuse.disk"
        mounts+=("fuse:$W/qfuse.disk")
        qemu-storage-daemon --blockdev "driver=http,url=$1,node-name=raw,read-only=on" \
                --export "type=fuse,id=raw,node-name=raw,mountpoint=$W/qfuse.disk,writable=off" \
                --pidfile "$W/peer.pid" --daemonize 2>>"$L/qemu.log"
        peer_started
        NB_FUSE_PID=
        loop_mount "$W/qfuse.disk"
}
qemu_umount() {
        loop_umount
        fusermount3 -u "$W/qfuse.disk"
        mounts_drop "fuse:$W/qfuse.disk"
        nbdkit_stop
}

# local_mount: the raw image on a read-only loop device, mounted on $W/mnt
# (the "already on local disk" reference). Sets LOCAL_LOOP.
local_mount() {
        LOCAL_LOOP=$(losetup --find --show --read-only "$W/disk.img")
        mounts+=("loop:$LOCAL_LOOP")
        mount -o ro,noload,nosuid,nodev "$LOCAL_LOOP" "$W/mnt"
        mounts+=("$W/mnt")
}
local_umount() {
        umount "$W/mnt"
        mounts_drop "$W/mnt"
        losetup -d "$LOCAL_LOOP"
        mounts_drop "loop:$LOCAL_LOOP"
}

# wait_hydrated CONTROL: until blockd's background stream is done; prints
# the time (from t0), or "null" after 15 minutes or when blockd stopped
# answering.
wait_hydrated() {
        local i st fails=0
        for ((i = 0; i < 9000; i++)); do
                if "$hb" stats --control "$1" --json >"$W/hstats.json" 2>/dev/null; then
                        fails=0
                        st=$(stats_field "$W/hstats.json" background 2>/dev/null || echo "?")
                        if [ "$st" = done ]; then
                                calc "$(now) - $t0" %.3f
                                return
                        fi
                elif ((++fails > 20)); then
                        break
                fi
                sleep 0.1
        done
        say "  hydration did not finish (background: ${st:-?})"
        echo null
}

# peer_workload: the start on a peer's mount, watched. A peer that has not
# finished it after $peer_stall_s seconds is stalled (qemu 7.2's http
# driver under FUSE at times never answers a read although its transfers
# are done, and then ignores SIGTERM too): SIGKILL ends the peer, which
# fails the reads waiting on FUSE. Sets stalled=true then; ok=false when
# the start failed otherwise.
peer_stall_s=120
peer_workload() {
        local wp wd dp rc=0
        workload "$W/mnt" >"$W/workload.out" &
        wp=$!
        sleep "$peer_stall_s" &
        wd=$!
        wait -n -p dp "$wp" "$wd" || rc=$?
        if [ "$dp" = "$wp" ]; then
                kill "$wd" 2>/dev/null || true
                wait "$wd" 2>/dev/null || true
                [ "$rc" = 0 ] || ok=false
        else
                stalled=true
                kill -9 "$NK_PID" 2>/dev/null || true
                wait "$wp" 2>/dev/null || true
        fi
}
