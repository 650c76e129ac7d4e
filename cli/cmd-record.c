/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hocus-blk record REF --out PROFILE -- COMMAND...: record a boot profile.
 * A private blockd serves REF cold (from an empty temporary chunk store,
 * so every read is a first read and the timings are a cold start's) over
 * NBD and as a FUSE file, optionally with the filesystem mounted; it
 * records which chunks are read first, and when, from the moment the
 * image is attached. COMMAND runs with the image reachable:
 *
 *   $uri              the NBD URI (nbd+unix:///disk?socket=...), e.g. for a VM
 *   $HOCUS_BLK_FILE   the image as a file (FUSE)
 *   $HOCUS_BLK_MOUNT  the mounted filesystem (with --mount)
 *
 * When COMMAND exits the profile is saved (merged with --merge FILE) and
 * everything is torn down.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "chunkstore/profile.h"
#include "cli.h"
#include "json-out.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"
#include "mount-session.h"

static void help(void) {
        printf("Usage: hocus-blk record REF --out PROFILE [OPTIONS] -- COMMAND [ARGS...]\n\n"
               "Record a boot profile of image REF: serve it cold, run COMMAND against it, and\n"
               "save the order (and time) in which chunks were first read. COMMAND gets:\n"
               "  $uri              the image's NBD URI (boot a VM from it)\n"
               "  $HOCUS_BLK_FILE   the image as a file\n"
               "  $HOCUS_BLK_MOUNT  the mounted filesystem (with --mount)\n"
               "Publish the result with 'hocus-blk profile push REF PROFILE', or lay an image\n"
               "out in its order with 'hocus-blk push --profile' or 'hocus-blk repack'.\n"
               "The image is served from an empty temporary chunk store, so that every read is\n"
               "a cold one; with --cache DIR that store is used instead and kept (reads are\n"
               "still recorded, but their timings are warm ones).\n\n"
               "Options:\n"
               "  --out PROFILE        where to save the profile (required)\n"
               "  --mount              mount the image's filesystem (read-only) for COMMAND\n"
               "  --partition N        with --mount: which partition\n"
               "  --merge FILE         merge with an earlier profile (e.g. other boots)\n"
               "  --json               print the result as a JSON object (COMMAND's standard\n"
               "                       output then goes to standard error)\n\n");
        cli_common_help();
}

enum {
        OPT_OUT = 0x3200,
        OPT_MOUNT,
        OPT_PARTITION,
        OPT_MERGE,
        OPT_JSON,
};

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        if (flag == FTW_DP)
                (void) rmdir(path);
        else
                (void) unlink(path);
        return 0;
}

/* Remove a temporary chunk store (not crossing into other filesystems). */
static void remove_tree(const char *dir) {
        (void) nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

/* Run argv with the session in its environment; returns its exit status
 * (128 + signal when killed). */
static int run_command(struct msession *s, char **argv, bool mounted, bool stdout_to_stderr) {
        char uri[1200];
        int status;
        pid_t pid;

        snprintf(uri, sizeof uri, "nbd+unix:///%s?socket=%s", MSESSION_EXPORT, s->nbd);
        pid = fork();
        if (pid < 0)
                return log_error_errno(errno, "fork: %m");
        if (pid == 0) {
                sigset_t none;

                sigemptyset(&none);
                setenv("uri", uri, 1);
                setenv("HOCUS_BLK_FILE", s->file, 1);
                setenv("HOCUS_BLK_CONTROL", s->control, 1);
                if (mounted)
                        setenv("HOCUS_BLK_MOUNT", s->dir, 1);
                else
                        unsetenv("HOCUS_BLK_MOUNT");
                sigprocmask(SIG_SETMASK, &none, NULL);
                /* With --json our stdout holds the document alone. */
                if (stdout_to_stderr && dup2(STDERR_FILENO, STDOUT_FILENO) < 0)
                        _exit(127);
                execvp(argv[0], argv);
                fprintf(stderr, "hocus-blk: cannot run %s: %s\n", argv[0], strerror(errno));
                _exit(127);
        }
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return log_error_errno(errno, "waitpid: %m");
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* The recorded profile (blockd writes it into the run directory), merged. */
static int save_profile(struct msession *s, const char *merge, const char *out, struct profile **ret) {
        char err[512], path[700];
        struct json_object *req = json_object_new_object();
        struct profile *rec = NULL, *old = NULL, *m = NULL;
        _cleanup_free_ void *buf = NULL;
        size_t len;
        int r;

        snprintf(path, sizeof path, "%s/recording.prf", s->run);
        json_object_object_add(req, "action", json_object_new_string("stop"));
        json_object_object_add(req, "path", json_object_new_string(path));
        r = msession_call(s, "record", req, NULL, err, sizeof err);
        if (r < 0)
                return log_error_errno(r, "Cannot get the recording from blockd: %s", err);
        r = profile_load(path, &rec, err, sizeof err);
        if (r < 0)
                return log_error_errno(r, "Cannot read the recording: %s", err);
        if (merge) {
                const struct profile *two[2];
                r = profile_load(merge, &old, err, sizeof err);
                if (r < 0) {
                        log_error_errno(r, "--merge: %s", err);
                        goto out;
                }
                two[0] = old;
                two[1] = rec;
                r = profile_merge(two, 2, &m);
                if (r < 0) {
                        log_error_errno(r, "Cannot merge with %s: %m", merge);
                        goto out;
                }
        }
        r = profile_encode(m ? m : rec, &buf, &len);
        if (r >= 0)
                r = write_file_atomic(AT_FDCWD, out, buf, len, 0644);
        if (r < 0) {
                log_error_errno(r, "Cannot write %s: %m", out);
                goto out;
        }
        *ret = m ? TAKE_PTR(m) : TAKE_PTR(rec);
out:
        profile_free(rec);
        profile_free(old);
        profile_free(m);
        return r;
}

int cmd_record(int argc, char **argv) {
        static const struct option options[] = {
                { "out", required_argument, NULL, OPT_OUT },
                { "mount", no_argument, NULL, OPT_MOUNT },
                { "partition", required_argument, NULL, OPT_PARTITION },
                { "merge", required_argument, NULL, OPT_MERGE },
                { "json", no_argument, NULL, OPT_JSON },
                { NULL, 0, NULL, 0 },
        };
        const char *out = NULL, *merge = NULL;
        char tmp_cache[PATH_MAX] = "", err[4096], a[32];
        char *fwd[32] = { NULL };
        size_t n_fwd = 0;
        struct msession s;
        struct msession_daemon d = { 0 };
        struct profile *p = NULL;
        bool mount_fs = false, have_session = false, json = false;
        int partition = 0, c, r, status = 0, dd;
        uint64_t t0, fetched = 0;

        /* Our options end at "--"; COMMAND's are its own. */
        for (dd = 1; dd < argc && strcmp(argv[dd], "--") != 0; dd++)
                ;
        while ((c = cli_getopt(dd, argv, COMMON_SHORT_OPTIONS, cli_options(options))) >= 0) {
                switch (c) {
                case OPT_OUT:
                        out = optarg;
                        break;
                case OPT_MOUNT:
                        mount_fs = true;
                        break;
                case OPT_PARTITION:
                        partition = atoi(optarg);
                        if (partition < 1)
                                return cli_usage_error("record", "--partition wants a partition number");
                        break;
                case OPT_MERGE:
                        merge = optarg;
                        break;
                case OPT_JSON:
                        json = true;
                        break;
                default:
                        if (c == 'v' && n_fwd + 1 < ARRAY_SIZE(fwd))
                                fwd[n_fwd++] = (char *) "-v";
                        else if (c == 'D' && n_fwd + 2 < ARRAY_SIZE(fwd)) {
                                fwd[n_fwd++] = (char *) "-D";
                                fwd[n_fwd++] = optarg;
                        }
                        r = cli_other_option("record", c, optarg, help);
                        if (r <= 0)
                                return r;
                }
        }
        if (dd - optind != 1 || dd + 1 >= argc)
                return cli_usage_error("record", "record takes REF and, after --, a COMMAND");
        if (!out)
                return cli_usage_error("record", "record needs --out PROFILE");
        if (geteuid() != 0)
                return log_error_errno(EPERM, "hocus-blk record needs root (FUSE with allow_other, loop mounts)");
        if (merge && access(merge, R_OK) < 0)
                return log_error_errno(errno, "--merge %s: %m", merge);

        r = msession_init_private(&s, argv[optind], NULL);
        if (r < 0)
                return log_error_errno(r, "No run directory for hocus-blk (set $HOCUS_BLK_RUN_DIR)");
        msession_block_signals();
        if (!arg_common.cache_dir) {
                const char *t = getenv("TMPDIR");
                snprintf(tmp_cache, sizeof tmp_cache, "%s/hocus-blk-record.XXXXXX", t && *t ? t : "/var/tmp");
                if (!mkdtemp(tmp_cache))
                        return log_error_errno(errno, "Cannot create a temporary chunk store: %m");
        }
        d.cache_dir = tmp_cache[0] ? tmp_cache : cli_cache_dir();
        d.profile = "none";     /* a prefetch would make reads look warm */
        if (n_fwd + 2 < ARRAY_SIZE(fwd)) {
                /* So would the background stream. */
                fwd[n_fwd++] = (char *) "--background";
                fwd[n_fwd++] = (char *) "off";
        }
        d.nbd = true;
        d.record = true;
        d.blockd_args = fwd;
        t0 = now_ns();
        have_session = true;
        r = msession_start(&s, &d, err, sizeof err);
        if (r < 0) {
                log_error_errno(r, "Cannot serve %s: %s", argv[optind], err);
                goto out;
        }
        if (mount_fs) {
                snprintf(s.dir, sizeof s.dir, "%s/mnt", s.run);
                if (mkdir(s.dir, 0755) < 0) {
                        r = log_error_errno(errno, "Cannot create %s: %m", s.dir);
                        goto out;
                }
                r = msession_mount_fs(&s, partition, err, sizeof err);
                if (r < 0) {
                        log_error_errno(r, "Cannot mount %s: %s", argv[optind], err);
                        goto out;
                }
        }
        if (msession_interrupted()) {
                r = log_error_errno(EINTR, "Interrupted");
                goto out;
        }
        log_info("Recording %s: running %s", argv[optind], argv[dd + 1]);
        status = run_command(&s, argv + dd + 1, mount_fs, json);
        if (status < 0) {
                r = status;
                goto out;
        }
        (void) msession_stat(&s, "bytes_fetched", &fetched);
        r = save_profile(&s, merge, out, &p);
        if (r < 0)
                goto out;
        {
                uint32_t t_max = 0;
                uint64_t bytes = 0;
                for (uint32_t i = 0; i < p->count; i++) {
                        t_max = MAX(t_max, p->entries[i].t_ms);
                        bytes += p->entries[i].length;
                }
                if (json) {
                        struct json_object *o = json_object_new_object();

                        json_add_str(o, "reference", argv[optind]);
                        json_add_str(o, "profile", out);
                        json_add_u64(o, "ranges", p->count);
                        json_add_u64(o, "bytes", bytes);
                        json_add_double(o, "first_reads_seconds", t_max / 1000.0);
                        json_add_u64(o, "fetched_bytes", fetched);
                        json_add_double(o, "seconds", (double) (now_ns() - t0) / 1e9);
                        json_add_u64(o, "command_status", (uint64_t) status);
                        cli_json_print(o, false);
                } else
                        printf("Recorded %s: %u ranges, %s first read over %.1f s (%s fetched cold in %.1f s); saved to %s\n",
                               argv[optind], p->count, format_size(bytes, a, sizeof a), t_max / 1000.0,
                               format_size(fetched, err, 32), (double) (now_ns() - t0) / 1e9, out);
        }
        if (status != 0) {
                log_warning("The command exited with status %d: the profile may be incomplete", status);
                r = -ECHILD;
        }
out:
        if (have_session) {
                char err2[1024];
                if (msession_teardown(&s, false, err2, sizeof err2) < 0) {
                        log_error("Cleaning up: %s", err2);
                        if (r >= 0)
                                r = -EIO;
                }
        }
        if (tmp_cache[0])
                remove_tree(tmp_cache);
        profile_free(p);
        return r;
}
