/* SPDX-License-Identifier: Apache-2.0 */
/* The FUSE frontend's life cycle: session, worker threads, mount and
 * unmount, exports coming and going. The operations are in fuse-ops.c. */
#include "blockd/fuse-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>
#include "common/cleanup.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"


/* libfuse's own messages go to our log. */
static void fuse_log_to_ours(enum fuse_log_level level, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
static void fuse_log_to_ours(enum fuse_log_level level, const char *fmt, va_list ap) {
        int lvl = level <= FUSE_LOG_ERR ? LOG_LVL_ERR : level == FUSE_LOG_WARNING ? LOG_LVL_WARNING
                  : level <= FUSE_LOG_INFO ? LOG_LVL_INFO : LOG_LVL_DEBUG;
        char msg[512];
        size_t n;

        if (lvl > log_get_level())
                return;
        vsnprintf(msg, sizeof msg, fmt, ap);
        n = strlen(msg);
        while (n && msg[n - 1] == '\n')
                msg[--n] = 0;
        log_full_errno(lvl, 0, "fuse: %s", msg);
}

/* --- Workers --- */

static void free_fuse_buf(void *p) {
        struct fuse_buf *b = p;
        free(b->mem);
        b->mem = NULL;
}

/* One of the pool: take a request, run it, repeat. Cancellation (by
 * fusefe_stop) is allowed only while waiting for a request. */
static void *worker(void *arg) {
        struct fusefe *f = arg;
        struct fuse_buf buf = { .mem = NULL };
        volatile int r = 0;     /* survives the cancellation handler's setjmp */

        pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
        pthread_cleanup_push(free_fuse_buf, &buf);
        while (!fuse_session_exited(f->se)) {
                pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
                int got = fuse_session_receive_buf(f->se, &buf);
                pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
                if (got == -EINTR || got == -EAGAIN)
                        continue;
                r = got;
                if (got <= 0)
                        break;
                fuse_session_process_buf(f->se, &buf);
        }
        pthread_cleanup_pop(1);
        if (!__atomic_load_n(&f->stopping, __ATOMIC_ACQUIRE) && !__atomic_exchange_n(&f->failed, true, __ATOMIC_ACQ_REL)) {
                if (r < 0)
                        log_error_errno(r, "FUSE %s: reading requests failed: %m", f->dir);
                else
                        log_error("FUSE %s: the file system was unmounted from outside", f->dir);
                fuse_session_exit(f->se);
                if (f->on_failure)
                        f->on_failure(f->userdata);
        }
        return NULL;
}

/* The kernel reads a FUSE file ahead 128 KiB at a time by default; a
 * loop device or a VMM reading an image does better with larger reads.
 * Best effort (needs root). */
static void set_readahead(const char *dir) {
        char path[128], val[32];
        struct stat st;
        int n;

        if (stat(dir, &st) < 0)
                return;
        snprintf(path, sizeof path, "/sys/class/bdi/%u:%u/read_ahead_kb", major(st.st_dev), minor(st.st_dev));
        n = snprintf(val, sizeof val, "%u\n", MAX_IO / 1024);
        {
                _cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
                if (fd < 0 || write_all(fd, val, (size_t) n) < 0)
                        log_debug("fuse: cannot set %s", path);
        }
}

int fusefe_start(const struct fusefe_config *cfg, const struct fusefe_exports *x, struct fusefe **ret, char *err,
                 size_t errlen) {
        char opts[256];
        char *argv[] = { (char *) "blockd", (char *) "-o", opts, NULL };
        struct fuse_args args = FUSE_ARGS_INIT(3, argv);
        struct fusefe *f;
        struct stat st;
        unsigned threads = cfg->threads ? cfg->threads : DEFAULT_THREADS;
        int r = -EAGAIN;

        if (stat(cfg->dir, &st) < 0)
                return err_set(err, errlen, -errno, "%s: %s", cfg->dir, strerror(errno));
        if (!S_ISDIR(st.st_mode))
                return err_set(err, errlen, -ENOTDIR, "%s is not a directory", cfg->dir);
        f = calloc(1, sizeof *f);
        if (!f)
                return -ENOMEM;
        f->x = *x;
        f->on_failure = cfg->on_failure;
        f->userdata = cfg->userdata;
        f->uid = getuid();
        f->gid = getgid();
        f->next_ino = FUSE_ROOT_ID + 1;
        clock_gettime(CLOCK_REALTIME, &f->start);
        pthread_mutex_init(&f->lock, NULL);
        f->dir = realpath(cfg->dir, NULL);
        f->zeroes = calloc(1, MAX_IO);
        if (!f->dir || !f->zeroes) {
                r = -ENOMEM;
                goto fail;
        }
        fuse_set_log_func(fuse_log_to_ours);
        /* allow_other: root mounts it for others (a VMM user, a loop device). */
        snprintf(opts, sizeof opts, "fsname=hocus-blk,subtype=hocus-blk,default_permissions%s",
                 geteuid() == 0 ? ",allow_other" : "");
        f->se = fuse_session_new(&args, &fusefe_ops, sizeof fusefe_ops, f);
        fuse_opt_free_args(&args);
        if (!f->se) {
                r = err_set(err, errlen, -EIO, "cannot start a FUSE session (see the log)");
                goto fail;
        }
        if (fuse_session_mount(f->se, f->dir) != 0) {
                r = err_set(err, errlen, -EIO, "cannot mount FUSE on %s (is /dev/fuse there? see the log)", f->dir);
                fuse_session_destroy(f->se);
                f->se = NULL;
                goto fail;
        }
        for (; f->n_threads < MIN(threads, (unsigned) MAX_THREADS); f->n_threads++) {
                r = -pthread_create(&f->threads[f->n_threads], NULL, worker, f);
                if (r < 0)
                        break;
        }
        if (f->n_threads == 0) {
                err_set(err, errlen, r, "cannot start FUSE threads: %s", strerror(-r));
                fuse_session_unmount(f->se);
                fuse_session_destroy(f->se);
                f->se = NULL;
                goto fail;
        }
        set_readahead(f->dir);
        log_info("FUSE on %s (%u threads)", f->dir, f->n_threads);
        *ret = f;
        return 0;
fail:
        pthread_mutex_destroy(&f->lock);
        free(f->zeroes);
        free(f->dir);
        free(f);
        return r;
}

void fusefe_stop(struct fusefe *f) {
        if (!f)
                return;
        __atomic_store_n(&f->stopping, true, __ATOMIC_RELEASE);
        fuse_session_exit(f->se);
        for (unsigned i = 0; i < f->n_threads; i++)
                pthread_cancel(f->threads[i]);
        for (unsigned i = 0; i < f->n_threads; i++)
                pthread_join(f->threads[i], NULL);
        /* Closes the device first (which ends the connection, so a loop
         * device on one of our files cannot hang), then unmounts, lazily
         * when that file is still in use. */
        fuse_session_unmount(f->se);
        fuse_session_destroy(f->se);
        while (f->nodes) {
                struct node *n = f->nodes;
                if (n->e)
                        for (; n->clients; n->clients--)
                                export_client_remove(n->e);
                export_unref(fusefe_node_free(f, n));
        }
        log_info("FUSE on %s stopped", f->dir);
        pthread_mutex_destroy(&f->lock);
        free(f->zeroes);
        free(f->dir);
        free(f);
}

void fusefe_kick_export(struct fusefe *f, struct export *e, bool hard) {
        struct export *drop[16];
        char *names[16];
        unsigned n_drop = 0, n_names = 0;

        if (!f)
                return;
        pthread_mutex_lock(&f->lock);
        for (struct node *n = f->nodes; n; n = n->next) {
                if (n->e != e)
                        continue;
                if (n_names < ARRAY_SIZE(names))
                        names[n_names++] = strdup(n->name);
                if (n->opens && !hard)
                        continue;
                for (; n->clients; n->clients--)
                        export_client_remove(e);
                if (n_drop < ARRAY_SIZE(drop)) {
                        drop[n_drop++] = n->e;
                        n->e = NULL;
                }
        }
        pthread_mutex_unlock(&f->lock);
        for (unsigned i = 0; i < n_names; i++) {
                if (names[i])
                        (void) fuse_lowlevel_notify_inval_entry(f->se, FUSE_ROOT_ID, names[i], strlen(names[i]));
                free(names[i]);
        }
        for (unsigned i = 0; i < n_drop; i++)
                export_unref(drop[i]);
}

const char *fusefe_dir(const struct fusefe *f) {
        return f->dir;
}
