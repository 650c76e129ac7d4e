/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A private blockd serving one image as a FUSE file, and what is stacked
 * on it: a loop device over the filesystem's byte range of that file and
 * the filesystem mounted from the loop device. Shared by `hocus-blk mount`
 * / `umount` and `hocus-blk record`.
 *
 * Everything lives in a run directory (mode 0700):
 *
 *   RUN/state.json     what was set up (dir, ref, pid, loop device, ...)
 *   RUN/blockd.pid     written by blockd when it is ready
 *   RUN/control.sock   blockd's control socket
 *   RUN/nbd.sock       its NBD socket (record only)
 *   RUN/fuse/          the FUSE mount: RUN/fuse/disk is the image
 *   RUN/blockd.log     blockd's log
 *   RUN/auth.json      --creds, passed on as an auth file (0600)
 *
 * For a mount, RUN is BASE/mounts/<first 16 hex of sha256(DIR)>, BASE being
 * $HOCUS_BLK_RUN_DIR, else /run/hocus-blk as root, else
 * $XDG_RUNTIME_DIR/hocus-blk; so umount finds it from DIR alone.
 *
 * msession_teardown() undoes whatever exists, in reverse order, and is
 * what every failure path calls: nothing is left behind (no filesystem
 * mount, loop device, FUSE mount, daemon or run directory).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <json-c/json.h>

#define MSESSION_EXPORT "disk"

struct msession {
        char run[512];
        char dir[4096];                 /* filesystem mount point, "" if none */
        char ref[4096];
        char overlay[4096];             /* "" = read-only */
        char control[600], pidfile[600], fuse_dir[600], file[600], log[600], state[600], auth[600], nbd[600];
        pid_t pid;                      /* blockd, 0 if not started */
        bool pid_is_child;              /* we must reap it */
        char loop[64];                  /* "/dev/loopN" or "" */
        bool fs_mounted;
        char fstype[32];
        char pttype[16];
        int partition;                  /* 0: the whole image */
        uint64_t offset, size;
        bool readonly;
        double started;                 /* wall clock, for the state file */
};

/* What the daemon is started with. */
struct msession_daemon {
        const char *cache_dir;
        const char *profile;            /* NULL (auto), "none" or a file */
        bool nbd;                       /* also an NBD socket */
        bool record;                    /* record the export's profile from the start */
        char **blockd_args;             /* extra args (-v, -D ...), NULL-terminated, may be NULL */
};

/* The run base directory (see above). */
int msession_run_base(char *buf, size_t len);

/* Initialise s for a mount on dir (absolute, canonical); run is derived. */
int msession_init_mount(struct msession *s, const char *dir, const char *ref, const char *overlay);
/* Initialise s for a record session in a fresh run directory. */
int msession_init_private(struct msession *s, const char *ref, const char *overlay);

/* Create the run directory and start blockd; waits until it is ready.
 * err gets blockd's own reason when it failed to start. */
int msession_start(struct msession *s, const struct msession_daemon *d, char *err, size_t errlen);

/* Probe the FUSE file, attach a loop device over the chosen filesystem
 * and mount it on s->dir (read-only unless the session has an overlay).
 * partition: 0 = choose. err gets a reason. */
int msession_mount_fs(struct msession *s, int partition, char *err, size_t errlen);

/* Per-export counters from the daemon ("bytes_fetched", ...); 0 if absent. */
int msession_stat(struct msession *s, const char *field, uint64_t *ret);
/* A control request: cmd, with "name":"disk" added to req (taken; NULL
 * for none). Checks "ok"; ret (optional) gets the response. */
int msession_call(struct msession *s, const char *cmd, struct json_object *req, struct json_object **ret, char *err,
                  size_t errlen);

int msession_save(struct msession *s);
/* Load the state of the mount on dir: -ENOENT when there is none. */
int msession_load(struct msession *s, const char *dir);

/* Undo everything s knows about. lazy: detach a busy filesystem instead
 * of failing with -EBUSY. Stops at -EBUSY (the filesystem is in use, so
 * the daemon must stay); otherwise goes on and returns the first error. */
int msession_teardown(struct msession *s, bool lazy, char *err, size_t errlen);

/* Is path a mount point (per /proc/self/mountinfo)? */
bool path_is_mountpoint(const char *path);

/* Block SIGINT/SIGTERM/SIGHUP while setting up (so a ^C cannot leave half
 * a mount); msession_interrupted() says whether one came meanwhile. */
void msession_block_signals(void);
bool msession_interrupted(void);
