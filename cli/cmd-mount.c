/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hocus-blk mount REF DIR / hocus-blk umount DIR: inspect an image as a
 * mounted filesystem. A private blockd serves the image as a FUSE file;
 * the filesystem (bare, or in a GPT/MBR partition found in user space) is
 * mounted from a loop device over its byte range. See mount-session.h.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "common/cleanup.h"
#include "common/debug-flags.h"
#include "common/log.h"
#include "common/util.h"
#include "mount-session.h"

static void mount_help(void) {
        printf("Usage: hocus-blk mount REF DIR [OPTIONS]\n\n"
               "Mount the filesystem in image REF on DIR, fetching only what is read. The image\n"
               "may be a bare filesystem or a whole disk with a GPT or MBR partition table (read\n"
               "in user space). Read-only by default, without journal replay (ext4 noload, xfs\n"
               "norecovery, btrfs rescue=nologreplay), nosuid and nodev. A private blockd serves\n"
               "the image; its boot profile, when one is published, is prefetched. Chunks go to\n"
               "the shared chunk store, so a second mount of the image fetches nothing again.\n"
               "Undo with 'hocus-blk umount DIR'. Needs root (loop devices, mount).\n\n"
               "Options:\n"
               "  --partition N        mount partition N (default: the only Linux filesystem)\n"
               "  --rw                 mount read-write; writes go to the overlay (needs --overlay)\n"
               "  --overlay PATH       writable overlay file (created if missing)\n"
               "  --profile FILE       prefetch this boot profile instead of the published one\n"
               "  --no-profile         prefetch nothing\n\n");
        cli_common_help();
}

static void umount_help(void) {
        printf("Usage: hocus-blk umount DIR [--lazy]\n\n"
               "Undo 'hocus-blk mount': unmount the filesystem, detach the loop device, stop the\n"
               "private blockd and remove its run directory.\n\n"
               "Options:\n"
               "  -l, --lazy           detach a filesystem that is still in use (its files then\n"
               "                       fail to read once the daemon is gone)\n"
               "  -v, --verbose        debug logging\n"
               "  -h, --help           show this help\n");
}

enum {
        OPT_PARTITION = 0x3000,
        OPT_RW,
        OPT_OVERLAY,
        OPT_PROFILE,
        OPT_NO_PROFILE,
        OPT_LAZY,
};

/* -v and -D go to the daemon too. */
static int forward_debug(int c, const char *arg, char **fwd, size_t *n, size_t max) {
        if (*n + 2 >= max)
                return 0;
        if (c == 'v') {
                fwd[(*n)++] = (char *) "-v";
        } else if (c == 'D') {
                fwd[(*n)++] = (char *) "-D";
                fwd[(*n)++] = (char *) arg;
        }
        fwd[*n] = NULL;
        return 0;
}

/* DIR as an existing directory's canonical path. */
static int canonical_dir(const char *dir, char *buf) {
        struct stat st;

        if (!realpath(dir, buf))
                return log_error_errno(errno, "Mount point %s: %m", dir);
        if (stat(buf, &st) < 0)
                return log_error_errno(errno, "Mount point %s: %m", dir);
        if (!S_ISDIR(st.st_mode))
                return log_error_errno(ENOTDIR, "Mount point %s is not a directory", dir);
        return 0;
}

/* One mount or umount at a time on this host: an flock on the run base
 * directory (which stays; the run directories under it go). Mounts are
 * short; a second one waits. Returns the fd holding the lock. */
static int lock_run_base(void) {
        char base[512];
        int fd, r;

        r = msession_run_base(base, sizeof base);
        if (r < 0)
                return log_error_errno(r, "No run directory for hocus-blk (set $HOCUS_BLK_RUN_DIR)");
        r = mkdir_p(base, 0755);
        if (r < 0)
                return log_error_errno(r, "Cannot create %s: %m", base);
        fd = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return log_error_errno(errno, "Cannot open %s: %m", base);
        if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
                log_info("Waiting for another hocus-blk mount or umount to finish");
                if (flock(fd, LOCK_EX) < 0) {
                        r = -errno;
                        close(fd);
                        return log_error_errno(r, "Cannot lock %s: %m", base);
                }
        }
        return fd;
}

static void describe_fs(const struct msession *s, char *buf, size_t len) {
        const char *table = !strcmp(s->pttype, "dos") ? "an MBR" : !strcmp(s->pttype, "gpt") ? "a GPT" : s->pttype;

        if (s->partition)
                snprintf(buf, len, "%s, partition %d of %s disk", s->fstype, s->partition, table);
        else
                snprintf(buf, len, "%s", s->fstype);
}

int cmd_mount(int argc, char **argv) {
        static const struct option options[] = {
                { "partition", required_argument, NULL, OPT_PARTITION },
                { "rw", no_argument, NULL, OPT_RW },
                { "overlay", required_argument, NULL, OPT_OVERLAY },
                { "profile", required_argument, NULL, OPT_PROFILE },
                { "no-profile", no_argument, NULL, OPT_NO_PROFILE },
                { NULL, 0, NULL, 0 },
        };
        const char *overlay = NULL, *profile = NULL;
        char dir[PATH_MAX], err[4096], profile_abs[PATH_MAX], what[128], a[32];
        char *fwd[32] = { NULL };
        size_t n_fwd = 0;
        struct msession s;
        struct msession_daemon d = { 0 };
        _cleanup_close_ int lock = -EBADF;
        bool rw = false;
        int partition = 0, c, r;
        uint64_t t0, fetched = 0, misses = 0, queued = 0;
        double secs;

        while ((c = cli_getopt(argc, argv, COMMON_SHORT_OPTIONS, cli_options(options))) >= 0) {
                switch (c) {
                case OPT_PARTITION: {
                        char *end;
                        long v = strtol(optarg, &end, 10);
                        if (*end || v < 1 || v > 4096)
                                return cli_usage_error("mount", "--partition wants a partition number, not '%s'", optarg);
                        partition = (int) v;
                        break;
                }
                case OPT_RW:
                        rw = true;
                        break;
                case OPT_OVERLAY:
                        overlay = optarg;
                        break;
                case OPT_PROFILE:
                        profile = optarg;
                        break;
                case OPT_NO_PROFILE:
                        profile = "none";
                        break;
                default:
                        forward_debug(c, optarg, fwd, &n_fwd, ARRAY_SIZE(fwd));
                        r = cli_other_option("mount", c, optarg, mount_help);
                        if (r <= 0)
                                return r;
                }
        }
        if (argc - optind != 2)
                return cli_usage_error("mount", "mount takes REF and DIR");
        if (rw != !!overlay)
                return cli_usage_error("mount", rw ? "--rw needs --overlay PATH (writes go there, never to the image)"
                                                   : "--overlay needs --rw");
        if (geteuid() != 0)
                return log_error_errno(EPERM, "hocus-blk mount needs root (it sets up a loop device and mounts)");
        r = canonical_dir(argv[optind + 1], dir);
        if (r < 0)
                return r;
        if (path_is_mountpoint(dir))
                return log_error_errno(EBUSY, "%s is already a mount point (busy); unmount it first", dir);
        if (profile && strcmp(profile, "none") != 0) {
                if (!realpath(profile, profile_abs))
                        return log_error_errno(errno, "Profile %s: %m", profile);
                profile = profile_abs;
        }
        r = msession_init_mount(&s, dir, argv[optind], overlay);
        if (r < 0)
                return log_error_errno(r, "No run directory for hocus-blk (set $HOCUS_BLK_RUN_DIR)");
        lock = lock_run_base();
        if (lock < 0)
                return lock;

        msession_block_signals();
        {
                /* Leftovers of a mount that died (the daemon or the machine):
                 * clean them up, unless that mount is still alive. */
                struct msession old;
                if (msession_load(&old, dir) == 0) {
                        if (old.pid > 0 && kill(old.pid, 0) == 0 && !old.fs_mounted)
                                log_warning("Cleaning up an earlier, unfinished mount of %s", dir);
                        else
                                log_debug("Cleaning up the leftovers of an earlier mount of %s", dir);
                        r = msession_teardown(&old, false, err, sizeof err);
                        if (r < 0)
                                return log_error_errno(r, "Cannot clean up an earlier mount of %s: %s", dir, err);
                }
        }

        t0 = now_ns();
        d.cache_dir = cli_cache_dir();
        d.profile = profile;
        d.blockd_args = fwd;
        r = msession_start(&s, &d, err, sizeof err);
        if (r < 0) {
                log_error_errno(r, "Cannot serve %s: %s", argv[optind], err);
                goto undo;
        }
        if (msession_interrupted()) {
                r = log_error_errno(EINTR, "Interrupted");
                goto undo;
        }
        log_debug("blockd pid %d, control socket %s, image file %s", (int) s.pid, s.control, s.file);
        r = msession_save(&s);
        if (r < 0) {
                log_error_errno(r, "Cannot write %s: %m", s.state);
                goto undo;
        }
        r = msession_mount_fs(&s, partition, err, sizeof err);
        if (r < 0) {
                log_error_errno(r, "Cannot mount %s: %s", argv[optind], err);
                goto undo;
        }
        if (msession_interrupted()) {
                r = log_error_errno(EINTR, "Interrupted");
                goto undo;
        }
        secs = (double) (now_ns() - t0) / 1e9;
        (void) msession_stat(&s, "bytes_fetched", &fetched);
        (void) msession_stat(&s, "cache_misses", &misses);
        (void) msession_stat(&s, "prefetch_queued", &queued);
        describe_fs(&s, what, sizeof what);
        printf("Mounted %s on %s (%s, %s) in %.2f s; fetched %s (%llu chunks on demand)%s\n", argv[optind], dir, what,
               s.readonly ? "read-only" : "read-write", secs, format_size(fetched, a, sizeof a),
               (unsigned long long) misses, queued ? "; prefetching the boot profile" : "");
        return 0;
undo: {
        char err2[1024];
        if (msession_teardown(&s, false, err2, sizeof err2) < 0)
                log_error("Cleaning up after the failed mount: %s", err2);
}
        return r;
}

int cmd_umount(int argc, char **argv) {
        static const struct option options[] = {
                { "lazy", no_argument, NULL, OPT_LAZY },
                { "help", no_argument, NULL, 'h' },
                { "verbose", no_argument, NULL, 'v' },
                { NULL, 0, NULL, 0 },
        };
        char dir[PATH_MAX], err[1024];
        _cleanup_close_ int lock = -EBADF;
        struct msession s;
        bool lazy = false;
        int c, r;

        while ((c = cli_getopt(argc, argv, "hvl", options)) >= 0) {
                switch (c) {
                case OPT_LAZY:
                case 'l':
                        lazy = true;
                        break;
                case 'h':
                        umount_help();
                        return 0;
                case 'v':
                        log_set_level(LOG_LVL_DEBUG);
                        debug_flags_set_default(1);
                        break;
                default:
                        return cli_usage_error("umount", "unknown option");
                }
        }
        if (argc - optind != 1)
                return cli_usage_error("umount", "umount takes DIR");
        if (geteuid() != 0)
                return log_error_errno(EPERM, "hocus-blk umount needs root");
        r = canonical_dir(argv[optind], dir);
        if (r < 0)
                return r;
        lock = lock_run_base();
        if (lock < 0)
                return lock;
        msession_block_signals();
        r = msession_load(&s, dir);
        if (r == -ENOENT)
                return log_error_errno(r, path_is_mountpoint(dir) ? "%s is not a hocus-blk mount" : "%s is not mounted",
                                       dir);
        if (r < 0)
                return log_error_errno(r, "Cannot read the state of the mount on %s: %m", dir);
        r = msession_teardown(&s, lazy, err, sizeof err);
        if (r < 0)
                return log_error_errno(r, "Cannot unmount %s: %s", dir, err);
        printf("Unmounted %s\n", dir);
        return 0;
}
