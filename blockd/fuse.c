/* SPDX-License-Identifier: Apache-2.0 */
#define FUSE_USE_VERSION 314
#include "blockd/fuse.h"

#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
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
#include "common/log.h"
#include "common/util.h"

#define DEFAULT_THREADS 8
#define MAX_THREADS 64
#define MAX_IO (1u << 20)               /* largest read or write we ask for */
#define ATTR_TIMEOUT 1.0
#define READ_SEGS 64
#define EXTENTS_BATCH 256
#define UNKNOWN_INO 0xffffffffu          /* readdir: the inode is not known yet */

/* A file the kernel knows (it holds nlookup references to the inode). */
struct node {
        fuse_ino_t ino;
        char *name;
        struct export *e;               /* our reference; NULL once kicked */
        uint64_t nlookup;               /* kernel references */
        unsigned opens;                 /* open handles */
        unsigned clients;               /* of those, counted as export clients */
        struct node *next;
};

struct fusefe {
        struct fusefe_exports x;
        struct fuse_session *se;
        char *dir;
        struct timespec start;
        uid_t uid;
        gid_t gid;
        pthread_mutex_t lock;           /* nodes, next_ino */
        struct node *nodes;
        fuse_ino_t next_ino;
        unsigned n_threads;
        pthread_t threads[MAX_THREADS];
        bool stopping;                  /* atomic */
        bool failed;                    /* atomic: on_failure called */
        void (*on_failure)(void *userdata);
        void *userdata;
        void *zeroes;                   /* MAX_IO zero bytes for holes in replies */
};

static int fail(char *err, size_t errlen, int r, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t errlen, int r, const char *fmt, ...) {
        va_list ap;

        if (err && errlen) {
                va_start(ap, fmt);
                vsnprintf(err, errlen, fmt, ap);
                va_end(ap);
        }
        return r;
}

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

/* --- Nodes (caller holds f->lock) --- */

static struct node *node_by_ino(struct fusefe *f, fuse_ino_t ino) {
        for (struct node *n = f->nodes; n; n = n->next)
                if (n->ino == ino)
                        return n;
        return NULL;
}

/* Unlink and free n; returns its export reference for the caller to drop
 * outside the lock. */
static struct export *node_free(struct fusefe *f, struct node *n) {
        struct export *e = n->e;

        for (struct node **pp = &f->nodes; *pp; pp = &(*pp)->next)
                if (*pp == n) {
                        *pp = n->next;
                        break;
                }
        free(n->name);
        free(n);
        return e;
}

/* A new reference to the node's export, or NULL if it was kicked. */
static struct export *node_export(struct fusefe *f, struct node *n) {
        struct export *e;

        pthread_mutex_lock(&f->lock);
        e = n->e ? export_ref(n->e) : NULL;
        pthread_mutex_unlock(&f->lock);
        return e;
}

static void fill_attr(struct fusefe *f, fuse_ino_t ino, struct export *e, struct stat *st) {
        memset(st, 0, sizeof *st);
        st->st_ino = ino;
        st->st_uid = f->uid;
        st->st_gid = f->gid;
        st->st_atim = st->st_mtim = st->st_ctim = f->start;
        if (!e) {
                st->st_mode = S_IFDIR | 0755;
                st->st_nlink = 2;
                return;
        }
        st->st_mode = S_IFREG | (export_readonly(e) ? 0444 : 0644);
        st->st_nlink = 1;
        st->st_size = (off_t) export_size(e);
        st->st_blksize = export_chunk_size(e);
        st->st_blocks = (blkcnt_t) DIV_ROUND_UP(export_size(e), 512);
}

/* -errno (ours) to a FUSE error reply. */
static void reply_errno(fuse_req_t req, int r) {
        fuse_reply_err(req, r < 0 ? -r : r);
}

/* --- Operations --- */

static void op_init(void *userdata, struct fuse_conn_info *conn) {
        /* Every write comes to us at once: no write-back cache to lose. */
        conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
        if (conn->capable & FUSE_CAP_SPLICE_WRITE)
                conn->want |= FUSE_CAP_SPLICE_WRITE;
        conn->max_write = MAX_IO;
        conn->max_readahead = MAX_IO;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name) {
        struct fusefe *f = fuse_req_userdata(req);
        struct fuse_entry_param ep = { .attr_timeout = ATTR_TIMEOUT, .entry_timeout = ATTR_TIMEOUT, .generation = 1 };
        struct export *e, *extra = NULL;
        struct node *n;

        if (parent != FUSE_ROOT_ID) {
                fuse_reply_err(req, ENOTDIR);
                return;
        }
        if (!export_name_valid(name) || !(e = f->x.get(f->x.userdata, name))) {
                fuse_reply_err(req, ENOENT);
                return;
        }
        pthread_mutex_lock(&f->lock);
        for (n = f->nodes; n; n = n->next)
                if (n->e == e)
                        break;
        if (n) {
                extra = e;              /* the node holds one already */
        } else {
                n = calloc(1, sizeof *n);
                if (!n || !(n->name = strdup(name))) {
                        free(n);
                        pthread_mutex_unlock(&f->lock);
                        export_unref(e);
                        fuse_reply_err(req, ENOMEM);
                        return;
                }
                n->ino = f->next_ino++;
                n->e = e;
                n->next = f->nodes;
                f->nodes = n;
        }
        n->nlookup++;
        ep.ino = n->ino;
        fill_attr(f, n->ino, n->e, &ep.attr);
        pthread_mutex_unlock(&f->lock);
        export_unref(extra);
        if (fuse_reply_entry(req, &ep) == -ENOENT) {
                /* The lookup was interrupted: the kernel holds no reference. */
                struct export *drop = NULL;
                pthread_mutex_lock(&f->lock);
                if (--n->nlookup == 0 && n->opens == 0)
                        drop = node_free(f, n);
                pthread_mutex_unlock(&f->lock);
                export_unref(drop);
        }
}

static void forget_one(struct fusefe *f, fuse_ino_t ino, uint64_t nlookup) {
        struct export *drop = NULL;
        struct node *n;

        pthread_mutex_lock(&f->lock);
        n = node_by_ino(f, ino);
        if (n) {
                n->nlookup = nlookup >= n->nlookup ? 0 : n->nlookup - nlookup;
                if (n->nlookup == 0 && n->opens == 0)
                        drop = node_free(f, n);
        }
        pthread_mutex_unlock(&f->lock);
        export_unref(drop);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
        forget_one(fuse_req_userdata(req), ino, nlookup);
        fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets) {
        for (size_t i = 0; i < count; i++)
                forget_one(fuse_req_userdata(req), forgets[i].ino, forgets[i].nlookup);
        fuse_reply_none(req);
}

/* The export behind ino with a new reference, or NULL (reply sent). */
static struct export *ino_export(fuse_req_t req, fuse_ino_t ino) {
        struct fusefe *f = fuse_req_userdata(req);
        struct export *e = NULL;
        struct node *n;

        pthread_mutex_lock(&f->lock);
        n = node_by_ino(f, ino);
        if (n && n->e)
                e = export_ref(n->e);
        pthread_mutex_unlock(&f->lock);
        if (!e)
                fuse_reply_err(req, ENOENT);
        return e;
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
        struct fusefe *f = fuse_req_userdata(req);
        struct export *e = NULL;
        struct stat st;

        if (ino != FUSE_ROOT_ID && !(e = ino_export(req, ino)))
                return;
        fill_attr(f, ino, e, &st);
        export_unref(e);
        fuse_reply_attr(req, &st, ATTR_TIMEOUT);
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set, struct fuse_file_info *fi) {
        struct fusefe *f = fuse_req_userdata(req);
        struct export *e;
        struct stat st;

        if (ino == FUSE_ROOT_ID) {
                fuse_reply_err(req, EPERM);
                return;
        }
        if (!(e = ino_export(req, ino)))
                return;
        /* The size is the export's; owner, mode and times are not ours to
         * change (the request succeeds without effect, like on a vfat). */
        if ((to_set & FUSE_SET_ATTR_SIZE) && (uint64_t) attr->st_size != export_size(e)) {
                fuse_reply_err(req, export_readonly(e) ? EROFS : EPERM);
                export_unref(e);
                return;
        }
        fill_attr(f, ino, e, &st);
        export_unref(e);
        fuse_reply_attr(req, &st, ATTR_TIMEOUT);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
        struct fusefe *f = fuse_req_userdata(req);
        struct node *n;
        bool ro;

        pthread_mutex_lock(&f->lock);
        n = node_by_ino(f, ino);
        if (!n || !n->e) {
                pthread_mutex_unlock(&f->lock);
                fuse_reply_err(req, ino == FUSE_ROOT_ID ? EISDIR : ENOENT);
                return;
        }
        ro = export_readonly(n->e);
        if (ro && (fi->flags & O_ACCMODE) != O_RDONLY) {
                pthread_mutex_unlock(&f->lock);
                fuse_reply_err(req, EROFS);
                return;
        }
        /* The size is the export's: O_TRUNC cannot be honoured. */
        if (fi->flags & O_TRUNC) {
                pthread_mutex_unlock(&f->lock);
                fuse_reply_err(req, ro ? EROFS : EPERM);
                return;
        }
        n->opens++;
        n->clients++;
        export_client_add(n->e);
        pthread_mutex_unlock(&f->lock);
        fi->fh = (uintptr_t) n;
        /* Read-only content never changes: keep the page cache. Writable
         * files are also written through NBD: drop it on open. */
        fi->keep_cache = ro;
        fi->noflush = ro;
        if (fuse_reply_open(req, fi) == -ENOENT) {
                /* Interrupted: no release will come. */
                struct export *drop = NULL;
                pthread_mutex_lock(&f->lock);
                n->opens--;
                if (n->clients && n->e) {
                        n->clients--;
                        export_client_remove(n->e);
                }
                if (n->nlookup == 0 && n->opens == 0)
                        drop = node_free(f, n);
                pthread_mutex_unlock(&f->lock);
                export_unref(drop);
        }
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
        struct fusefe *f = fuse_req_userdata(req);
        struct node *n = (struct node *) (uintptr_t) fi->fh;
        struct export *drop = NULL;

        pthread_mutex_lock(&f->lock);
        n->opens--;
        if (n->clients && n->e) {
                n->clients--;
                export_client_remove(n->e);
        }
        if (n->nlookup == 0 && n->opens == 0)
                drop = node_free(f, n);
        pthread_mutex_unlock(&f->lock);
        export_unref(drop);
        fuse_reply_err(req, 0);
}

/* Reply with segments where the read fits one batch (cached chunks go out
 * from their store entries, spliced when the kernel allows); else copy. */
static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
        struct fusefe *f = fuse_req_userdata(req);
        struct export *e = node_export(f, (struct node *) (uintptr_t) fi->fh);
        struct export_seg segs[READ_SEGS];
        struct export_read rd;
        _cleanup_free_ struct fuse_bufvec *bv = NULL;
        _cleanup_free_ uint8_t *buf = NULL;
        uint64_t esize, len, done = 0;
        int n, r;

        if (!e) {
                fuse_reply_err(req, EIO);
                return;
        }
        esize = export_size(e);
        if (off < 0 || (uint64_t) off >= esize || size == 0) {
                fuse_reply_buf(req, NULL, 0);
                goto out;
        }
        len = MIN((uint64_t) size, esize - (uint64_t) off);
        r = export_read_start(e, (uint64_t) off, len, &rd);
        if (r < 0) {
                reply_errno(req, r);
                goto out;
        }
        n = export_read_next(&rd, segs, READ_SEGS);
        if (n < 0) {
                reply_errno(req, n);
                goto out;
        }
        if (rd.off == rd.end) {
                bool fits = true;

                for (int i = 0; i < n; i++)
                        fits &= segs[i].kind != EXPORT_SEG_ZERO || segs[i].len <= MAX_IO;
                bv = fits ? calloc(1, sizeof *bv + (size_t) MAX(n, 1) * sizeof(struct fuse_buf)) : NULL;
                if (bv) {
                        bv->count = (size_t) n;
                        for (int i = 0; i < n; i++) {
                                struct fuse_buf *b = &bv->buf[i];

                                b->size = segs[i].len;
                                if (segs[i].kind == EXPORT_SEG_FD) {
                                        b->flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK | FUSE_BUF_FD_RETRY;
                                        b->fd = segs[i].fd;
                                        b->pos = (off_t) segs[i].fd_off;
                                } else {
                                        b->mem = segs[i].kind == EXPORT_SEG_MEM ? (void *) segs[i].mem : f->zeroes;
                                }
                        }
                        r = fuse_reply_data(req, bv, 0);
                        if (r < 0 && r != -ENOENT)
                                log_debug("fuse: reply to a read of %s failed: %s", export_name(e), strerror(-r));
                        export_read_done(&rd, segs, (unsigned) n);
                        goto out;
                }
        }
        /* Many pieces (a fragmented overlay): copy them into one buffer. */
        buf = malloc(len);
        if (!buf) {
                export_read_done(&rd, segs, (unsigned) n);
                fuse_reply_err(req, ENOMEM);
                goto out;
        }
        for (;;) {
                r = 0;
                for (int i = 0; i < n && r >= 0; i++) {
                        r = export_seg_copy(&segs[i], buf + done, 0, segs[i].len);
                        done += segs[i].len;
                }
                export_read_done(&rd, segs, (unsigned) n);
                if (r < 0) {
                        reply_errno(req, r);
                        goto out;
                }
                if (rd.off == rd.end)
                        break;
                n = export_read_next(&rd, segs, READ_SEGS);
                if (n < 0) {
                        reply_errno(req, n);
                        goto out;
                }
        }
        fuse_reply_buf(req, (const char *) buf, len);
out:
        export_unref(e);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *data, size_t size, off_t off,
                     struct fuse_file_info *fi) {
        struct fusefe *f = fuse_req_userdata(req);
        struct export *e = node_export(f, (struct node *) (uintptr_t) fi->fh);
        uint64_t esize;
        size_t n;
        int r;

        if (!e) {
                fuse_reply_err(req, EIO);
                return;
        }
        esize = export_size(e);
        if (off < 0 || (uint64_t) off >= esize) {
                fuse_reply_err(req, size ? ENOSPC : 0);
                goto out;
        }
        /* A write across the end is cut short there, as on a block device. */
        n = (size_t) MIN((uint64_t) size, esize - (uint64_t) off);
        r = export_pwrite(e, data, n, (uint64_t) off, 0);
        if (r < 0)
                reply_errno(req, r);
        else
                fuse_reply_write(req, n);
out:
        export_unref(e);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
        fuse_reply_err(req, 0);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi) {
        struct fusefe *f = fuse_req_userdata(req);
        struct export *e = node_export(f, (struct node *) (uintptr_t) fi->fh);
        int r;

        if (!e) {
                fuse_reply_err(req, EIO);
                return;
        }
        r = export_flush(e);
        export_unref(e);
        reply_errno(req, r < 0 ? r : 0);
}

static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t length,
                         struct fuse_file_info *fi) {
        struct fusefe *f = fuse_req_userdata(req);
        struct export *e = node_export(f, (struct node *) (uintptr_t) fi->fh);
        uint64_t esize, len;
        int r;

        if (!e) {
                fuse_reply_err(req, EIO);
                return;
        }
        esize = export_size(e);
        if (off < 0 || length <= 0) {
                r = -EINVAL;
        } else if (export_readonly(e)) {
                r = -EROFS;
        } else if ((uint64_t) off >= esize) {
                r = (mode & FALLOC_FL_KEEP_SIZE) ? 0 : -ENOSPC;
        } else {
                len = MIN((uint64_t) length, esize - (uint64_t) off);
                if (mode == (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE))
                        r = export_trim(e, (uint64_t) off, len, 0);
                else if ((mode & ~FALLOC_FL_KEEP_SIZE) == FALLOC_FL_ZERO_RANGE)
                        r = export_zero(e, (uint64_t) off, len, 0);
                else if ((mode & ~FALLOC_FL_KEEP_SIZE) == 0)
                        r = 0;  /* allocate: every byte of the file exists already */
                else
                        r = -EOPNOTSUPP;
        }
        export_unref(e);
        reply_errno(req, r < 0 ? r : 0);
}

/* SEEK_DATA / SEEK_HOLE from the allocation status. */
static void op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence, struct fuse_file_info *fi) {
        struct fusefe *f = fuse_req_userdata(req);
        struct export *e = node_export(f, (struct node *) (uintptr_t) fi->fh);
        struct export_extent ex[EXTENTS_BATCH];
        uint64_t esize, pos;
        int n;

        if (!e) {
                fuse_reply_err(req, EIO);
                return;
        }
        esize = export_size(e);
        if (whence != SEEK_DATA && whence != SEEK_HOLE) {
                fuse_reply_err(req, EINVAL);
                goto out;
        }
        if (off < 0 || (uint64_t) off >= esize) {
                fuse_reply_err(req, ENXIO);
                goto out;
        }
        pos = (uint64_t) off;
        while (pos < esize) {
                n = export_extents(e, pos, esize - pos, ex, EXTENTS_BATCH);
                if (n <= 0) {
                        reply_errno(req, n < 0 ? n : -EIO);
                        goto out;
                }
                for (int i = 0; i < n; i++) {
                        bool hole = ex[i].flags & EXPORT_STATE_HOLE;

                        if (hole == (whence == SEEK_HOLE)) {
                                fuse_reply_lseek(req, (off_t) pos);
                                goto out;
                        }
                        pos += ex[i].len;
                }
        }
        /* No data after off: ENXIO; no hole: the end of the file. */
        if (whence == SEEK_DATA)
                fuse_reply_err(req, ENXIO);
        else
                fuse_reply_lseek(req, (off_t) esize);
out:
        export_unref(e);
}

/* readdir: entries are numbered 1.. in listing order; a call returns those
 * after off that fit in size. */
struct dir_ctx {
        fuse_req_t req;
        char *buf;
        size_t len, size;
        off_t skip, index;
        bool full;
};

static void dir_add(struct dir_ctx *d, const char *name, fuse_ino_t ino, mode_t mode) {
        struct stat st = { .st_ino = ino, .st_mode = mode };
        size_t need;

        d->index++;
        if (d->full || d->index <= d->skip)
                return;
        need = fuse_add_direntry(d->req, d->buf + d->len, d->size - d->len, name, &st, d->index);
        if (need > d->size - d->len) {
                d->full = true;
                return;
        }
        d->len += need;
}

static void dir_add_export(struct export *e, void *ctx) {
        dir_add(ctx, export_name(e), UNKNOWN_INO, S_IFREG);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
        struct fusefe *f = fuse_req_userdata(req);
        struct dir_ctx d = { .req = req, .size = size, .skip = off };

        if (ino != FUSE_ROOT_ID) {
                fuse_reply_err(req, ENOTDIR);
                return;
        }
        d.buf = malloc(MAX(size, (size_t) 1));
        if (!d.buf) {
                fuse_reply_err(req, ENOMEM);
                return;
        }
        dir_add(&d, ".", FUSE_ROOT_ID, S_IFDIR);
        dir_add(&d, "..", FUSE_ROOT_ID, S_IFDIR);
        f->x.for_each(f->x.userdata, dir_add_export, &d);
        fuse_reply_buf(req, d.buf, d.len);
        free(d.buf);
}

static const struct fuse_lowlevel_ops fusefe_ops = {
        .init = op_init,
        .lookup = op_lookup,
        .forget = op_forget,
        .forget_multi = op_forget_multi,
        .getattr = op_getattr,
        .setattr = op_setattr,
        .open = op_open,
        .release = op_release,
        .read = op_read,
        .write = op_write,
        .flush = op_flush,
        .fsync = op_fsync,
        .fallocate = op_fallocate,
        .lseek = op_lseek,
        .readdir = op_readdir,
};

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
                return fail(err, errlen, -errno, "%s: %s", cfg->dir, strerror(errno));
        if (!S_ISDIR(st.st_mode))
                return fail(err, errlen, -ENOTDIR, "%s is not a directory", cfg->dir);
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
                r = fail(err, errlen, -EIO, "cannot start a FUSE session (see the log)");
                goto fail;
        }
        if (fuse_session_mount(f->se, f->dir) != 0) {
                r = fail(err, errlen, -EIO, "cannot mount FUSE on %s (is /dev/fuse there? see the log)", f->dir);
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
                fail(err, errlen, r, "cannot start FUSE threads: %s", strerror(-r));
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
                export_unref(node_free(f, n));
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
