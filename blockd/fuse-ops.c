/* SPDX-License-Identifier: Apache-2.0 */
/* The FUSE frontend's operations: one regular file per export. */
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
#include "common/log.h"
#include "common/util.h"

/* --- Nodes (caller holds f->lock) --- */

static struct node *node_by_ino(struct fusefe *f, fuse_ino_t ino) {
        for (struct node *n = f->nodes; n; n = n->next)
                if (n->ino == ino)
                        return n;
        return NULL;
}

/* Unlink and free n; returns its export reference for the caller to drop
 * outside the lock. */
struct export *fusefe_node_free(struct fusefe *f, struct node *n) {
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
                        drop = fusefe_node_free(f, n);
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
                        drop = fusefe_node_free(f, n);
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

/* One open of n ends (a release, or an open the kernel never saw). */
static void node_close(struct fusefe *f, struct node *n) {
        struct export *drop = NULL;

        pthread_mutex_lock(&f->lock);
        n->opens--;
        if (n->clients && n->e) {
                n->clients--;
                export_client_remove(n->e);
        }
        if (n->nlookup == 0 && n->opens == 0)
                drop = fusefe_node_free(f, n);
        pthread_mutex_unlock(&f->lock);
        export_unref(drop);
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
        if (fuse_reply_open(req, fi) == -ENOENT)
                node_close(f, n);       /* interrupted: no release will come */
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
        node_close(fuse_req_userdata(req), (struct node *) (uintptr_t) fi->fh);
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

const struct fuse_lowlevel_ops fusefe_ops = {
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

