/* SPDX-License-Identifier: Apache-2.0 */
#include "mount-session.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "blockd/ctlproto/client.h"
#include "chunkstore/digest.h"
#include "cli.h"
#include "common/cleanup.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "loopdev.h"
#include "partition.h"
#include "registry-client/ref.h"

#ifndef HOCUS_SBINDIR
#define HOCUS_SBINDIR "/usr/local/sbin"
#endif

#define READY_TIMEOUT_S 120
#define STOP_TIMEOUT_S 60
#define LOOP_CLEAR_MS 5000

/* snprintf whose truncation (of over-long paths) is checked by the
 * callers that care, not by the compiler. */
static void strf(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void strf(char *buf, size_t len, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(buf, len, fmt, ap);
        va_end(ap);
}

/* --- Signals --- */

static sigset_t blocked;

void msession_block_signals(void) {
        sigemptyset(&blocked);
        sigaddset(&blocked, SIGINT);
        sigaddset(&blocked, SIGTERM);
        sigaddset(&blocked, SIGHUP);
        sigprocmask(SIG_BLOCK, &blocked, NULL);
}

bool msession_interrupted(void) {
        sigset_t pending;

        if (sigpending(&pending) < 0)
                return false;
        return sigismember(&pending, SIGINT) || sigismember(&pending, SIGTERM) || sigismember(&pending, SIGHUP);
}

/* --- Paths --- */

int msession_run_base(char *buf, size_t len) {
        const char *e = getenv("HOCUS_BLK_RUN_DIR");

        if (e && *e) {
                snprintf(buf, len, "%s", e);
                return 0;
        }
        if (geteuid() == 0) {
                snprintf(buf, len, "/run/hocus-blk");
                return 0;
        }
        e = getenv("XDG_RUNTIME_DIR");
        if (!e || !*e)
                return -ENOENT;
        snprintf(buf, len, "%s/hocus-blk", e);
        return 0;
}

/* oci:DIR with DIR made absolute (the daemon runs in /). */
static void absolute_ref(const char *ref, char *buf, size_t len) {
        char cwd[PATH_MAX];

        if (strncmp(ref, "oci:", 4) != 0 || ref[4] == '/' || !getcwd(cwd, sizeof cwd))
                strf(buf, len, "%s", ref);
        else
                strf(buf, len, "oci:%s/%s", cwd, ref + 4);
}

static void absolute_path(const char *path, char *buf, size_t len) {
        char cwd[PATH_MAX];

        if (path[0] == '/' || !getcwd(cwd, sizeof cwd))
                strf(buf, len, "%s", path);
        else
                strf(buf, len, "%s/%s", cwd, path);
}

static void set_paths(struct msession *s) {
        strf(s->control, sizeof s->control, "%s/control.sock", s->run);
        strf(s->pidfile, sizeof s->pidfile, "%s/blockd.pid", s->run);
        strf(s->fuse_dir, sizeof s->fuse_dir, "%s/fuse", s->run);
        strf(s->file, sizeof s->file, "%s/fuse/%s", s->run, MSESSION_EXPORT);
        strf(s->log, sizeof s->log, "%s/blockd.log", s->run);
        strf(s->state, sizeof s->state, "%s/state.json", s->run);
        strf(s->auth, sizeof s->auth, "%s/auth.json", s->run);
        strf(s->nbd, sizeof s->nbd, "%s/nbd.sock", s->run);
}

static int init_common(struct msession *s, const char *ref, const char *overlay) {
        memset(s, 0, sizeof *s);
        if (ref)
                absolute_ref(ref, s->ref, sizeof s->ref);
        if (overlay)
                absolute_path(overlay, s->overlay, sizeof s->overlay);
        s->readonly = !overlay;
        return 0;
}

int msession_init_mount(struct msession *s, const char *dir, const char *ref, const char *overlay) {
        char base[256], hex[DIGEST_HEX_LEN + 1];
        struct digest d;
        int r;

        init_common(s, ref, overlay);
        r = msession_run_base(base, sizeof base);
        if (r < 0)
                return r;
        strf(s->dir, sizeof s->dir, "%s", dir);
        digest_compute(dir, strlen(dir), &d);
        digest_to_hex(&d, hex);
        strf(s->run, sizeof s->run, "%s/mounts/%.16s", base, hex);
        set_paths(s);
        return 0;
}

int msession_init_private(struct msession *s, const char *ref, const char *overlay) {
        char base[256];
        int r;

        init_common(s, ref, overlay);
        r = msession_run_base(base, sizeof base);
        if (r < 0)
                return r;
        strf(s->run, sizeof s->run, "%s/sessions/%d", base, (int) getpid());
        set_paths(s);
        return 0;
}

/* --- Mount table --- */

/* Undo mountinfo's octal escapes (\040 for a space) in place. */
static void unescape(char *s) {
        char *o = s;

        for (; *s; s++) {
                if (s[0] == '\\' && s[1] >= '0' && s[1] <= '7' && s[2] >= '0' && s[2] <= '7' && s[3] >= '0' &&
                    s[3] <= '7') {
                        *o++ = (char) ((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
                        s += 3;
                } else {
                        *o++ = *s;
                }
        }
        *o = 0;
}

bool path_is_mountpoint(const char *path) {
        _cleanup_fclose_ FILE *f = fopen("/proc/self/mountinfo", "re");
        char line[8192];

        if (!f)
                return false;
        while (fgets(line, sizeof line, f)) {
                char *save = NULL, *tok = strtok_r(line, " ", &save);
                for (int i = 0; tok && i < 4; i++)
                        tok = strtok_r(NULL, " ", &save);
                if (!tok)
                        continue;
                unescape(tok);
                if (!strcmp(tok, path))
                        return true;
        }
        return false;
}

/* --- The daemon --- */

/* blockd: $HOCUS_BLK_BLOCKD, next to us (build tree or install), PATH. */
static void find_blockd(char *buf, size_t len) {
        const char *e = getenv("HOCUS_BLK_BLOCKD");
        char self[PATH_MAX], cand[PATH_MAX + 64];
        ssize_t n;

        if (e && *e) {
                /* The daemon starts in /: a relative path would not resolve. */
                if (!strchr(e, '/') || !realpath(e, self))
                        strf(buf, len, "%s", e);
                else
                        strf(buf, len, "%s", self);
                return;
        }
        n = readlink("/proc/self/exe", self, sizeof self - 1);
        if (n > 0) {
                static const char *const rel[] = { "/../blockd/blockd", "/blockd", "/../sbin/blockd" };
                char *slash;

                self[n] = 0;
                slash = strrchr(self, '/');
                if (slash)
                        *slash = 0;
                for (size_t i = 0; i < ARRAY_SIZE(rel); i++) {
                        strf(cand, sizeof cand, "%s%s", self, rel[i]);
                        if (access(cand, X_OK) == 0) {
                                strf(buf, len, "%s", cand);
                                return;
                        }
                }
        }
        strf(cand, sizeof cand, "%s/blockd", HOCUS_SBINDIR);
        strf(buf, len, "%s", access(cand, X_OK) == 0 ? cand : "blockd");
}

/* --creds for the daemon: an auth.json only it can read, not argv. Any
 * length: what the registry takes is the only limit (cloud tokens run to
 * kilobytes). */
static int write_auth(struct msession *s) {
        const char *creds = arg_common.source.creds;
        struct json_object *root = NULL, *auths, *entry;
        struct image_ref *ref = NULL;
        _cleanup_free_ unsigned char *b64 = NULL;
        size_t n, b64_len;
        const char *text;
        int r;

        if (!creds)
                return 0;
        r = image_ref_parse(s->ref, &ref, NULL, 0);
        if (r < 0)
                return r;
        if (!ref->registry) {
                image_ref_free(ref);
                return 0;
        }
        n = strlen(creds);
        b64_len = 4 * ((n + 2) / 3);
        b64 = malloc(b64_len + 1);
        root = json_object_new_object();
        auths = json_object_new_object();
        entry = json_object_new_object();
        if (!b64 || !root || !auths || !entry || n > INT_MAX) {
                json_object_put(root);
                json_object_put(auths);
                json_object_put(entry);
                image_ref_free(ref);
                return -ENOMEM;
        }
        EVP_EncodeBlock(b64, (const unsigned char *) creds, (int) n);
        json_object_object_add(entry, "auth", json_object_new_string((const char *) b64));
        json_object_object_add(auths, ref->registry, entry);
        json_object_object_add(root, "auths", auths);
        image_ref_free(ref);
        text = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        r = text ? write_file_atomic(AT_FDCWD, s->auth, text, strlen(text), 0600) : -ENOMEM;
        explicit_bzero(b64, b64_len);
        if (text)
                explicit_bzero((char *) text, strlen(text));
        json_object_put(root);
        return r;
}

/* The last error line of blockd's log, without its timestamp. */
static void log_reason(const struct msession *s, char *buf, size_t len) {
        _cleanup_free_ char *text = NULL;
        char *line, *save = NULL, *last = NULL;

        buf[0] = 0;
        if (read_file_all(AT_FDCWD, s->log, 1 << 20, &text, NULL) < 0)
                return;
        for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
                if (strstr(line, " error: ") || !strncmp(line, "blockd: ", 8))
                        last = line;
        if (last) {
                char *msg = strstr(last, " error: ") ? strstr(last, " error: ") + strlen(" error: ") : last;
                char *at = strstr(msg, " @");          /* debug builds add the function */
                if (at)
                        *at = 0;
                snprintf(buf, len, "%s", msg);
        }
}

/* A /proc file (whose size stat reports as 0), up to len - 1 bytes. */
static ssize_t read_proc(const char *path, char *buf, size_t len) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        ssize_t n;

        if (fd < 0)
                return -errno;
        n = read_full(fd, buf, len - 1);
        if (n < 0)
                return n;
        buf[n] = 0;
        return n;
}

static bool pid_alive(pid_t pid) {
        char path[64], st[512];
        _cleanup_fclose_ FILE *f = NULL;
        char *p;

        if (pid <= 0 || kill(pid, 0) < 0)
                return false;
        /* A zombie has exited; whoever reaps it is not us. */
        snprintf(path, sizeof path, "/proc/%d/stat", (int) pid);
        f = fopen(path, "re");
        if (!f || !fgets(st, sizeof st, f))
                return false;
        p = strrchr(st, ')');
        return !(p && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X'));
}

/* Is pid the blockd of this session (and not a recycled pid)? */
static bool pid_is_ours(const struct msession *s) {
        char path[64], cmd[16384];
        ssize_t n;

        snprintf(path, sizeof path, "/proc/%d/cmdline", (int) s->pid);
        n = read_proc(path, cmd, sizeof cmd);
        if (n <= 0)
                return false;
        for (ssize_t i = 0; i + 1 < n; i++)
                if (!cmd[i])
                        cmd[i] = ' ';
        return strstr(cmd, s->control) != NULL;
}

int msession_start(struct msession *s, const struct msession_daemon *d, char *err, size_t errlen) {
        char blockd[PATH_MAX], export_arg[9000], record_arg[1200];
        const char *argv[64];
        size_t n = 0;
        _cleanup_close_ int logfd = -EBADF;
        uint64_t deadline;
        pid_t pid;
        int r;

        r = mkdir_p(s->run, 0700);
        if (r < 0)
                return err_set(err, errlen, r, "cannot create %s: %s", s->run, strerror(-r));
        if (mkdir(s->fuse_dir, 0700) < 0 && errno != EEXIST)
                return err_set(err, errlen, -errno, "cannot create %s: %m", s->fuse_dir);
        r = write_auth(s);
        if (r < 0)
                return err_set(err, errlen, r, "cannot write credentials for blockd: %s", strerror(-r));
        find_blockd(blockd, sizeof blockd);
        snprintf(export_arg, sizeof export_arg, "%s=%s%s%s%s%s", MSESSION_EXPORT, s->ref,
                 s->overlay[0] ? ",overlay=" : "", s->overlay, d->profile ? ",profile=" : "",
                 d->profile ? d->profile : "");
        argv[n++] = blockd;
        argv[n++] = "--config=";        /* a private daemon: not the host's exports */
        argv[n++] = "--cache";
        argv[n++] = d->cache_dir;
        argv[n++] = "--control";
        argv[n++] = s->control;
        argv[n++] = "--pidfile";
        argv[n++] = s->pidfile;
        argv[n++] = "--state-dir";      /* a private session: nothing to restore */
        argv[n++] = "none";
        argv[n++] = "--fuse";
        argv[n++] = s->fuse_dir;
        argv[n++] = "--export";
        argv[n++] = export_arg;
        if (d->nbd) {
                argv[n++] = "--nbd-socket";
                argv[n++] = s->nbd;
        }
        if (d->record) {
                snprintf(record_arg, sizeof record_arg, "%s=%s/recording.prf", MSESSION_EXPORT, s->run);
                argv[n++] = "--record";
                argv[n++] = record_arg;
        }
        if (arg_common.source.plain_http)
                argv[n++] = "--plain-http";
        if (arg_common.source.ca_file) {
                argv[n++] = "--ca-file";
                argv[n++] = arg_common.source.ca_file;
        }
        if (arg_common.source.cert_dir) {
                argv[n++] = "--cert-dir";
                argv[n++] = arg_common.source.cert_dir;
        }
        if (arg_common.source.tls_no_verify) {
                argv[n++] = "--tls-verify";
                argv[n++] = "false";
        }
        if (arg_common.source.creds) {
                argv[n++] = "--authfile";
                argv[n++] = s->auth;
        } else if (arg_common.source.auth_file) {
                argv[n++] = "--authfile";
                argv[n++] = arg_common.source.auth_file;
        }
        for (size_t i = 0; d->blockd_args && d->blockd_args[i] && n < ARRAY_SIZE(argv) - 1; i++)
                argv[n++] = d->blockd_args[i];
        argv[n] = NULL;

        logfd = open(s->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (logfd < 0)
                return err_set(err, errlen, -errno, "cannot create %s: %m", s->log);
        (void) unlink(s->pidfile);
        log_debug("Starting %s for %s", blockd, s->ref);
        pid = fork();
        if (pid < 0)
                return err_set(err, errlen, -errno, "fork: %m");
        if (pid == 0) {
                /* The daemon: its own session (a ^C at the terminal is not
                 * for it), default signals, stdio to the log, in /. */
                sigset_t none;
                int null = open("/dev/null", O_RDONLY);

                sigemptyset(&none);
                sigprocmask(SIG_SETMASK, &none, NULL);
                setsid();
                if (null >= 0)
                        dup2(null, 0);
                dup2(logfd, 1);
                dup2(logfd, 2);
                if (chdir("/") < 0)
                        _exit(127);
                execvp(blockd, (char **) argv);
                dprintf(2, "blockd: cannot run %s: %s\n", blockd, strerror(errno));
                _exit(127);
        }
        s->pid = pid;
        s->pid_is_child = true;
        deadline = now_ns() + READY_TIMEOUT_S * 1000000000ull;
        for (;;) {
                struct stat st;
                int status;
                pid_t p;

                if (stat(s->pidfile, &st) == 0 && st.st_size > 0)
                        return 0;
                p = waitpid(pid, &status, WNOHANG);
                if (p == pid) {
                        char why[512];
                        s->pid = 0;
                        s->pid_is_child = false;
                        log_reason(s, why, sizeof why);
                        return err_set(err, errlen, -EIO, "%s", why[0] ? why : "blockd exited during startup (see its log)");
                }
                if (now_ns() >= deadline)
                        return err_set(err, errlen, -ETIMEDOUT, "blockd did not become ready within %d s", READY_TIMEOUT_S);
                if (msession_interrupted())
                        return err_set(err, errlen, -EINTR, "interrupted");
                usleep(10 * 1000);
        }
}

/* --- Talking to it --- */

int msession_call(struct msession *s, const char *cmd, struct json_object *req, struct json_object **ret, char *err,
                  size_t errlen) {
        struct json_object *resp = NULL, *ok, *msg;
        int r;

        if (!req)
                req = json_object_new_object();
        json_object_object_add(req, "cmd", json_object_new_string(cmd));
        json_object_object_add(req, "name", json_object_new_string(MSESSION_EXPORT));
        r = control_call(s->control, req, &resp, err, errlen);
        json_object_put(req);
        if (r < 0)
                return r;
        if (!json_object_object_get_ex(resp, "ok", &ok) || !json_object_get_boolean(ok)) {
                r = err_set(err, errlen, -EIO, "%s",
                            json_object_object_get_ex(resp, "error", &msg) ? json_object_get_string(msg) : "refused");
                json_object_put(resp);
                return r;
        }
        if (ret)
                *ret = resp;
        else
                json_object_put(resp);
        return 0;
}

int msession_stat(struct msession *s, const char *field, uint64_t *ret) {
        struct json_object *resp, *arr, *v;
        char err[256];
        int r;

        r = msession_call(s, "stats", NULL, &resp, err, sizeof err);
        if (r < 0)
                return r;
        *ret = 0;
        if (json_object_object_get_ex(resp, "exports", &arr) && json_object_array_length(arr) > 0 &&
            json_object_object_get_ex(json_object_array_get_idx(arr, 0), field, &v))
                *ret = (uint64_t) json_object_get_int64(v);
        json_object_put(resp);
        return 0;
}

/* --- Filesystem --- */

/* Mount options to try, most careful first: read-only mounts must not
 * replay a journal (nothing may be written to the image). */
static const char *const *mount_options(const char *fstype, bool readonly) {
        static const char *const ext_ro[] = { "noload", NULL };
        static const char *const xfs_ro[] = { "norecovery", NULL };
        static const char *const btrfs_ro[] = { "rescue=nologreplay", "nologreplay", NULL };
        static const char *const plain[] = { "", NULL };

        if (!readonly)
                return plain;
        if (!strcmp(fstype, "ext4") || !strcmp(fstype, "ext3") || !strcmp(fstype, "ext2"))
                return ext_ro;
        if (!strcmp(fstype, "xfs"))
                return xfs_ro;
        if (!strcmp(fstype, "btrfs"))
                return btrfs_ro;
        return plain;
}

int msession_mount_fs(struct msession *s, int partition, char *err, size_t errlen) {
        struct disk_layout layout = { 0 };
        const struct part *p = NULL;
        const char *const *opts;
        _cleanup_close_ int fd = -EBADF, lfd = -EBADF;
        char why[1024], table[2048];
        struct stat st;
        int r = 0;

        fd = open(s->file, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || fstat(fd, &st) < 0)
                return err_set(err, errlen, -errno, "cannot open the image file %s: %m", s->file);
        r = disk_probe(fd, (uint64_t) st.st_size, &layout, why, sizeof why);
        if (r < 0)
                return err_set(err, errlen, r, "%s", why);
        disk_describe(&layout, table, sizeof table);
        r = disk_choose(&layout, partition, &p, why, sizeof why);
        if (r < 0) {
                err_set(err, errlen, r, "%s; the image holds:\n%s", why, table);
                goto out;
        }
        if (!p->fstype[0]) {
                if (p->number)
                        r = err_set(err, errlen, -EMEDIUMTYPE, "no filesystem found in partition %d; the image holds:\n%s",
                                    p->number, table);
                else
                        r = err_set(err, errlen, -EMEDIUMTYPE,
                                    "no filesystem found on the image (neither a filesystem nor a partition table)");
                goto out;
        }
        if (!fstype_is_linux(p->fstype) && strcmp(p->fstype, "vfat") != 0 && strcmp(p->fstype, "iso9660") != 0) {
                r = err_set(err, errlen, -EMEDIUMTYPE, "cannot mount %s %s: not a filesystem hocus-blk mounts%s%s",
                            p->number ? "partition with" : "an image with", p->fstype, p->number ? "; the image holds:\n" : "",
                            p->number ? table : "");
                goto out;
        }
        snprintf(s->fstype, sizeof s->fstype, "%s", p->fstype);
        snprintf(s->pttype, sizeof s->pttype, "%s", layout.pttype);
        s->partition = p->number;
        s->offset = p->offset;
        s->size = p->number ? p->size : 0;

        lfd = loop_attach(s->file, s->offset, s->size, s->readonly, true, s->loop, sizeof s->loop);
        if (lfd < 0) {
                s->loop[0] = 0;
                r = err_set(err, errlen, lfd, "cannot set up a loop device over %s: %s", s->file, strerror(-lfd));
                goto out;
        }
        (void) msession_save(s);
        opts = mount_options(s->fstype, s->readonly);
        r = -EINVAL;
        for (size_t i = 0; opts[i]; i++) {
                unsigned long flags = MS_NOSUID | MS_NODEV | (s->readonly ? MS_RDONLY : 0);

                if (mount(s->loop, s->dir, s->fstype, flags, opts[i][0] ? opts[i] : NULL) == 0) {
                        r = 0;
                        log_debug("Mounted %s (%s) on %s with '%s'", s->loop, s->fstype, s->dir, opts[i]);
                        break;
                }
                r = -errno;
                log_debug("mount %s -t %s -o %s%s: %m", s->loop, s->fstype, s->readonly ? "ro," : "", opts[i]);
                if (r != -EINVAL)
                        break;
        }
        if (r < 0) {
                err_set(err, errlen, r, "mounting the %s filesystem%s on %s failed: %s%s", s->fstype,
                        s->partition ? " of the partition" : "", s->dir, strerror(-r),
                        r == -EINVAL || r == -EUCLEAN ? " (the kernel log, dmesg, may say more)" : "");
                goto out;
        }
        s->fs_mounted = true;
        (void) msession_save(s);
out:
        disk_layout_done(&layout);
        /* The filesystem holds the loop device now; with AUTOCLEAR, closing
         * our fd after a failed mount detaches it. */
        return r;
}

/* --- State --- */

int msession_save(struct msession *s) {
        struct json_object *o = json_object_new_object();
        const char *text;
        int r;

        json_object_object_add(o, "dir", json_object_new_string(s->dir));
        json_object_object_add(o, "ref", json_object_new_string(s->ref));
        json_object_object_add(o, "overlay", s->overlay[0] ? json_object_new_string(s->overlay) : NULL);
        json_object_object_add(o, "pid", json_object_new_int(s->pid));
        json_object_object_add(o, "loop", s->loop[0] ? json_object_new_string(s->loop) : NULL);
        json_object_object_add(o, "fs_mounted", json_object_new_boolean(s->fs_mounted));
        json_object_object_add(o, "fstype", json_object_new_string(s->fstype));
        json_object_object_add(o, "pttype", json_object_new_string(s->pttype));
        json_object_object_add(o, "partition", json_object_new_int(s->partition));
        json_object_object_add(o, "offset", json_object_new_int64((int64_t) s->offset));
        json_object_object_add(o, "size", json_object_new_int64((int64_t) s->size));
        json_object_object_add(o, "readonly", json_object_new_boolean(s->readonly));
        text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
        r = write_file_atomic(AT_FDCWD, s->state, text, strlen(text), 0600);
        json_object_put(o);
        return r;
}

static void get_str(struct json_object *o, const char *key, char *buf, size_t len) {
        struct json_object *v;

        buf[0] = 0;
        if (json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string))
                snprintf(buf, len, "%s", json_object_get_string(v));
}

int msession_load(struct msession *s, const char *dir) {
        _cleanup_free_ char *text = NULL;
        struct json_object *o, *v;
        struct stat st;
        int r;

        r = msession_init_mount(s, dir, NULL, NULL);
        if (r < 0)
                return r;
        if (stat(s->run, &st) < 0)
                return -ENOENT;
        r = read_file_all(AT_FDCWD, s->state, 1 << 20, &text, NULL);
        if (r == -ENOENT) {
                /* Started, but died before it wrote its state: clean up
                 * what the run directory shows. */
                _cleanup_free_ char *pid = NULL;
                if (read_file_all(AT_FDCWD, s->pidfile, 64, &pid, NULL) == 0)
                        s->pid = atoi(pid);
                return 0;
        }
        if (r < 0)
                return r;
        o = json_tokener_parse(text);
        if (!o)
                return -EBADMSG;
        get_str(o, "ref", s->ref, sizeof s->ref);
        get_str(o, "overlay", s->overlay, sizeof s->overlay);
        get_str(o, "loop", s->loop, sizeof s->loop);
        get_str(o, "fstype", s->fstype, sizeof s->fstype);
        get_str(o, "pttype", s->pttype, sizeof s->pttype);
        if (json_object_object_get_ex(o, "pid", &v))
                s->pid = json_object_get_int(v);
        if (json_object_object_get_ex(o, "fs_mounted", &v))
                s->fs_mounted = json_object_get_boolean(v);
        if (json_object_object_get_ex(o, "partition", &v))
                s->partition = json_object_get_int(v);
        if (json_object_object_get_ex(o, "readonly", &v))
                s->readonly = json_object_get_boolean(v);
        json_object_put(o);
        return 0;
}

/* --- Teardown --- */

static int stop_daemon(struct msession *s, char *err, size_t errlen) {
        uint64_t deadline;
        int status;

        if (s->pid <= 0)
                return 0;
        if (!s->pid_is_child && (!pid_alive(s->pid) || !pid_is_ours(s))) {
                s->pid = 0;
                return 0;
        }
        (void) kill(s->pid, SIGTERM);
        deadline = now_ns() + STOP_TIMEOUT_S * 1000000000ull;
        for (;;) {
                if (s->pid_is_child) {
                        pid_t p = waitpid(s->pid, &status, WNOHANG);
                        if (p == s->pid || (p < 0 && errno == ECHILD))
                                break;
                } else if (!pid_alive(s->pid)) {
                        break;
                }
                if (now_ns() >= deadline) {
                        log_warning("blockd (pid %d) did not stop within %d s; killing it", (int) s->pid, STOP_TIMEOUT_S);
                        (void) kill(s->pid, SIGKILL);
                        if (s->pid_is_child)
                                (void) waitpid(s->pid, &status, 0);
                        else
                                while (pid_alive(s->pid))
                                        usleep(10 * 1000);
                        s->pid = 0;
                        return err_set(err, errlen, -ETIMEDOUT, "blockd did not stop; killed it");
                }
                usleep(5 * 1000);
        }
        s->pid = 0;
        s->pid_is_child = false;
        return 0;
}

static void remove_run_dir(struct msession *s) {
        const char *files[] = { s->state, s->pidfile, s->control, s->nbd, s->auth, s->log };
        char rec[600];

        for (size_t i = 0; i < ARRAY_SIZE(files); i++)
                (void) unlink(files[i]);
        strf(rec, sizeof rec, "%s/recording.prf", s->run);
        (void) unlink(rec);
        (void) rmdir(s->fuse_dir);
        /* A mount point of our own (record --mount) lives in the run dir. */
        if (s->dir[0] && !strncmp(s->dir, s->run, strlen(s->run)) && s->dir[strlen(s->run)] == '/')
                (void) rmdir(s->dir);
        if (rmdir(s->run) < 0 && errno != ENOENT)
                log_warning("Cannot remove %s: %m", s->run);
        else {
                /* The parent (mounts/, sessions/) goes when it is empty. */
                char parent[600], *slash;
                strf(parent, sizeof parent, "%s", s->run);
                slash = strrchr(parent, '/');
                if (slash) {
                        *slash = 0;
                        (void) rmdir(parent);
                }
        }
}

int msession_teardown(struct msession *s, bool lazy, char *err, size_t errlen) {
        int r, ret = 0;

        if (s->fs_mounted || (s->dir[0] && s->loop[0] && path_is_mountpoint(s->dir))) {
                if (umount2(s->dir, lazy ? MNT_DETACH : 0) < 0 && errno != EINVAL && errno != ENOENT) {
                        r = -errno;
                        if (r == -EBUSY)
                                return err_set(err, errlen, r, "%s is busy (a process uses it; see fuser -m %s), or use --lazy",
                                               s->dir, s->dir);
                        ret = err_set(err, errlen, r, "cannot unmount %s: %s", s->dir, strerror(-r));
                }
                s->fs_mounted = false;
        }
        if (s->loop[0]) {
                r = loop_detach(s->loop, s->file, LOOP_CLEAR_MS);
                if (r < 0 && ret == 0)
                        ret = err_set(err, errlen, r, "cannot detach %s: %s", s->loop, strerror(-r));
                if (r >= 0)
                        s->loop[0] = 0;
        }
        r = stop_daemon(s, err, errlen);
        if (r < 0 && ret == 0)
                ret = r;
        /* blockd unmounts its FUSE directory when it stops; if it died. */
        if (path_is_mountpoint(s->fuse_dir) && umount2(s->fuse_dir, MNT_DETACH) < 0 && ret == 0)
                ret = err_set(err, errlen, -errno, "cannot unmount %s: %m", s->fuse_dir);
        if (!path_is_mountpoint(s->fuse_dir))
                remove_run_dir(s);
        return ret;
}
