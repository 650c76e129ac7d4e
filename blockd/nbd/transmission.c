/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The transmission phase: checking a request against the negotiated
 * flags, executing it on the export and sending its reply (simple or
 * structured). Host errors become wire errors in nbdsrv_errno_to_nbd()
 * (codec.c) only.
 *
 * Reads with structured replies are streamed: the export resolves the
 * range into segments (zeroes, cached chunk files, the overlay file, or
 * memory after a miss); zero runs become NBD_REPLY_TYPE_OFFSET_HOLE, data
 * runs NBD_REPLY_TYPE_OFFSET_DATA. File pieces of 64 KiB or more that
 * are in the page cache go out with sendfile(2) on plain sockets (no copy
 * through user space); the rest, and everything over TLS, is copied and
 * written. Each chunk is written whole under the connection's write lock;
 * chunks of different replies may interleave, which the protocol allows.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/debug-flags.h"
#include "common/log.h"
#include "conn.h"
#include "nbd-protocol.h"

#define MAX_EXTENTS 1024u
#define FAST_SMALL (64u << 10)          /* fast reads up to this size are batched */
#define SENDFILE_MIN (64u << 10)        /* smaller pieces are copied: cheaper than sendfile */

static const uint8_t zeroes[65536];

void worker_free_buffers(struct worker *w) {
        nbdsrv_budget_put(w);
        free(w->buf);
        free(w->batch);
        w->buf = w->batch = NULL;
        w->cap = w->batch_len = 0;
}

int worker_buf(struct worker *w, size_t len) {
        uint8_t *p;

        if (len <= w->cap)
                return 0;
        p = realloc(w->buf, len);
        if (!p)
                return -ENOMEM;
        w->buf = p;
        w->cap = len;
        return 0;
}

/* Write a whole message under the write lock. A failed write kills the
 * connection (the stream is out of sync). */
static int send_msg(struct conn *c, struct iovec *iov, int n) {
        int r;

        pthread_mutex_lock(&c->write_lock);
        r = nbdsrv_io_writev(&c->io, iov, n, 0);
        pthread_mutex_unlock(&c->write_lock);
        if (r < 0)
                conn_set_dead(c, true);
        return r;
}

static int reply_simple(struct conn *c, uint64_t handle, uint32_t err, const void *data, size_t len) {
        uint8_t h[NBD_SIMPLE_REPLY_SIZE];
        struct iovec iov[2] = { { h, sizeof h }, { (void *) data, len } };

        nbdsrv_encode_simple_reply(h, err, handle);
        return send_msg(c, iov, len ? 2 : 1);
}

/* An error reply: structured (with a message, and an offset for reads)
 * when negotiated, simple otherwise. */
static int reply_error(struct conn *c, const struct nbdsrv_request *rq, int r, bool with_offset, uint64_t off,
                       const char *msg) {
        uint32_t err = nbdsrv_errno_to_nbd(r);
        uint8_t h[NBD_CHUNK_HEADER_SIZE], p[6], o[8];
        size_t ml = msg ? MIN(strlen(msg), (size_t) 1024) : 0;
        struct iovec iov[4] = { { h, sizeof h }, { p, sizeof p }, { (void *) msg, ml }, { o, sizeof o } };

        if (err == 0)
                err = NBD_EIO;
        if (debug_nbd_requests)
                log_debug("nbd: client %llu: %s %llu+%u failed: %s (%s)", (unsigned long long) c->id,
                          nbdsrv_cmd_name(rq->type), (unsigned long long) rq->offset, rq->length, strerror(-r),
                          msg ? msg : "");
        if (!c->structured)
                return reply_simple(c, rq->handle, err, NULL, 0);
        nbdsrv_encode_chunk_header(h, NBD_REPLY_FLAG_DONE,
                                   with_offset ? NBD_REPLY_TYPE_ERROR_OFFSET : NBD_REPLY_TYPE_ERROR, rq->handle,
                                   (uint32_t) (6 + ml + (with_offset ? 8 : 0)));
        nbd_put32(p, err);
        nbd_put16(p + 4, (uint16_t) ml);
        nbd_put64(o, off);
        return send_msg(c, iov, with_offset ? 4 : 3);
}

static int reply_ok(struct conn *c, const struct nbdsrv_request *rq) {
        return reply_simple(c, rq->handle, 0, NULL, 0);
}

/* Reply to a non-read request from its result. */
static int reply_result(struct conn *c, const struct nbdsrv_request *rq, int r) {
        char msg[128];

        if (r >= 0)
                return reply_ok(c, rq);
        snprintf(msg, sizeof msg, "%s: %s", nbdsrv_cmd_name(rq->type), strerror(-r));
        return reply_error(c, rq, r, false, 0, msg);
}

/* --- READ --- */

/* The whole range into w->buf, then one reply: simple replies, and
 * structured ones with NBD_CMD_FLAG_DF (one content chunk). */
static int read_whole(struct worker *w, const struct nbdsrv_request *rq, struct export_read *rd) {
        struct conn *c = w->c;
        uint8_t *p;
        int n, r = 0;

        r = worker_buf(w, rq->length);
        if (r < 0)
                return reply_error(c, rq, r, false, 0, "out of memory");
        p = w->buf;
        while (rd->off < rd->end) {
                uint64_t at = rd->off;

                n = export_read_next(rd, w->segs, WORKER_SEGS);
                if (n < 0) {
                        r = n;
                        break;
                }
                for (int i = 0; i < n && r >= 0; i++) {
                        r = export_seg_copy(&w->segs[i], p, 0, w->segs[i].len);
                        if (r < 0)
                                rd->err_off = at;
                        at += w->segs[i].len;
                        p += w->segs[i].len;
                }
                export_read_done(rd, w->segs, (unsigned) n);
                if (r < 0)
                        break;
        }
        if (r < 0) {
                char msg[160];
                snprintf(msg, sizeof msg, "read failed at offset %llu: %s", (unsigned long long) rd->err_off,
                         strerror(-r));
                log_warning("nbd: client %llu: export %s: %s", (unsigned long long) c->id, export_name(c->exp), msg);
                return reply_error(c, rq, r, c->structured, rd->err_off, msg);
        }
        if (!c->structured)
                return reply_simple(c, rq->handle, 0, w->buf, rq->length);
        {
                uint8_t h[NBD_CHUNK_HEADER_SIZE + 8];
                struct iovec iov[2] = { { h, sizeof h }, { w->buf, rq->length } };

                if (rq->length == 0) {
                        nbdsrv_encode_chunk_header(h, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_NONE, rq->handle, 0);
                        iov[0].iov_len = NBD_CHUNK_HEADER_SIZE;
                        return send_msg(c, iov, 1);
                }
                nbdsrv_encode_chunk_header(h, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_OFFSET_DATA, rq->handle,
                                           rq->length + 8);
                nbd_put64(h + NBD_CHUNK_HEADER_SIZE, rq->offset);
                return send_msg(c, iov, 2);
        }
}

/* One reply chunk of a streamed read: a hole, or data made of segments
 * [first, last). */
struct plan {
        bool hole;
        uint64_t off, len;
        unsigned first, last;
        uint8_t hdr[NBD_CHUNK_HEADER_SIZE + 12];
        size_t hdr_len;
};

static unsigned make_plan(const struct nbdsrv_request *rq, const struct export_seg *segs, unsigned n, uint64_t off,
                          bool done, struct plan *plan) {
        unsigned np = 0;

        for (unsigned i = 0; i < n;) {
                struct plan *p = &plan[np++];

                p->off = off;
                p->first = i;
                if (segs[i].kind == EXPORT_SEG_ZERO) {
                        p->hole = true;
                        p->len = segs[i].len;
                        i++;
                } else {
                        p->hole = false;
                        p->len = 0;
                        while (i < n && segs[i].kind != EXPORT_SEG_ZERO)
                                p->len += segs[i++].len;
                }
                p->last = i;
                off += p->len;
        }
        for (unsigned k = 0; k < np; k++) {
                struct plan *p = &plan[k];
                uint16_t flags = done && k == np - 1 ? NBD_REPLY_FLAG_DONE : 0;

                if (p->hole) {
                        nbdsrv_encode_chunk_header(p->hdr, flags, NBD_REPLY_TYPE_OFFSET_HOLE, rq->handle, 12);
                        nbd_put64(p->hdr + NBD_CHUNK_HEADER_SIZE, p->off);
                        nbd_put32(p->hdr + NBD_CHUNK_HEADER_SIZE + 8, (uint32_t) p->len);
                        p->hdr_len = NBD_CHUNK_HEADER_SIZE + 12;
                } else {
                        nbdsrv_encode_chunk_header(p->hdr, flags, NBD_REPLY_TYPE_OFFSET_DATA, rq->handle,
                                                   (uint32_t) (p->len + 8));
                        nbd_put64(p->hdr + NBD_CHUNK_HEADER_SIZE, p->off);
                        p->hdr_len = NBD_CHUNK_HEADER_SIZE + 8;
                }
        }
        return np;
}

static bool is_socket_error(int r) {
        return r == -EPIPE || r == -ECONNRESET || r == -ENOTCONN || r == -ESHUTDOWN || r == -ETIMEDOUT ||
               r == -EAGAIN;
}

/* Pad the rest of a data chunk with zeroes after a failed source read. */
static int pad(struct conn *c, uint64_t len) {
        while (len) {
                struct iovec iov = { (void *) zeroes, MIN(len, sizeof zeroes) };
                int r = nbdsrv_io_writev(&c->io, &iov, 1, 1);
                if (r < 0)
                        return r;
                len -= MIN(len, sizeof zeroes);
        }
        return 0;
}

#ifndef __NR_cachestat
#define __NR_cachestat 451      /* Linux 6.5; the same number on every architecture */
#endif

/* Is [off, off+len) of fd in the page cache? 1 yes, 0 no (or unknown:
 * kernels before 6.5 have no cachestat). */
static int range_cached(int fd, uint64_t off, uint64_t len) {
        struct {
                uint64_t off, len;
        } range = { off, len };
        struct {
                uint64_t nr_cache, nr_dirty, nr_writeback, nr_evicted, nr_recently_evicted;
        } cs;
        static bool unsupported;
        uint64_t pages = DIV_ROUND_UP(off + len, 4096) - off / 4096;

        if (unsupported)
                return 0;
        if (syscall(__NR_cachestat, fd, &range, &cs, 0) < 0) {
                if (errno == ENOSYS)
                        unsupported = true;
                return 0;
        }
        return cs.nr_cache >= pages;
}

enum how {
        HOW_MEM,                /* memory segment, sent as it is */
        HOW_COPIED,             /* read into w->buf before the lock */
        HOW_SENDFILE,           /* large and in the page cache: sendfile under the lock */
};

/* The error chunk that ends a reply whose source failed at `at`. */
static int send_error_offset(struct conn *c, const struct nbdsrv_request *rq, int err, uint64_t at) {
        uint8_t h[NBD_CHUNK_HEADER_SIZE], e[6], o[8];
        char msg[96];
        int ml = snprintf(msg, sizeof msg, "read failed at offset %llu", (unsigned long long) at);
        struct iovec ev[4] = { { h, sizeof h }, { e, sizeof e }, { msg, (size_t) ml }, { o, sizeof o } };

        log_warning("nbd: client %llu: export %s: %s: %s", (unsigned long long) c->id, export_name(c->exp), msg,
                    strerror(-err));
        nbdsrv_encode_chunk_header(h, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_ERROR_OFFSET, rq->handle,
                                   (uint32_t) (6 + ml + 8));
        nbd_put32(e, nbdsrv_errno_to_nbd(err) ? nbdsrv_errno_to_nbd(err) : NBD_EIO);
        nbd_put16(e + 4, (uint16_t) ml);
        nbd_put64(o, at);
        return nbdsrv_io_writev(&c->io, ev, 4, 0);
}

/*
 * Send one batch of a structured read reply (the chunks in plan, over
 * w->segs). File data is read before the write lock is taken, so a read
 * from the disk never holds up the connection's other replies; only large
 * pieces already in the page cache go out with sendfile under the lock.
 * nowait: read nothing from the disk (the fast path): -EWOULDBLOCK, and
 * nothing was sent. Returns 0; 1 if the reply ended with an error chunk;
 * -EWOULDBLOCK; or another -errno when the connection is dead.
 */
static int send_batch(struct worker *w, const struct nbdsrv_request *rq, struct plan *plan, unsigned np,
                      bool nowait) {
        struct conn *c = w->c;
        const struct export_seg *segs = w->segs;
        const bool sendfile_ok = c->srv->cfg.use_sendfile && !nbdsrv_io_is_tls(&c->io);
        uint8_t how[WORKER_SEGS];
        uint64_t where[WORKER_SEGS], need = 0, used = 0, err_off = 0;
        struct iovec iov[2 * WORKER_SEGS + 2];
        unsigned failed = np, ni = 0;
        int r, err = 0;

        /* 1. Decide how each piece goes out; read what is copied. */
        for (unsigned k = 0; k < np; k++)
                for (unsigned i = plan[k].first; i < plan[k].last && !plan[k].hole; i++) {
                        const struct export_seg *sg = &segs[i];

                        if (sg->kind == EXPORT_SEG_MEM) {
                                how[i] = HOW_MEM;
                        } else if (sendfile_ok && sg->len >= SENDFILE_MIN && range_cached(sg->fd, sg->fd_off, sg->len)) {
                                how[i] = HOW_SENDFILE;
                        } else {
                                how[i] = HOW_COPIED;
                                need += sg->len;
                        }
                }
        r = worker_buf(w, need);
        if (r < 0) {
                if (nowait)
                        return -EWOULDBLOCK;
                r = reply_error(c, rq, r, true, plan[0].off, "out of memory");
                return r < 0 ? r : 1;
        }
        for (unsigned k = 0; k < np && failed == np; k++) {
                uint64_t at = plan[k].off;

                for (unsigned i = plan[k].first; i < plan[k].last && !plan[k].hole; i++) {
                        if (how[i] == HOW_COPIED) {
                                r = nowait ? export_seg_copy_nowait(&segs[i], w->buf + used, 0, segs[i].len)
                                           : export_seg_copy(&segs[i], w->buf + used, 0, segs[i].len);
                                if (r == -EWOULDBLOCK && nowait)
                                        return r;
                                if (r < 0) {
                                        failed = k;
                                        err = r;
                                        err_off = at;
                                        break;
                                }
                                where[i] = used;
                                used += segs[i].len;
                        }
                        at += segs[i].len;
                }
        }

        /* 2. Send the chunks that are complete, under the lock. */
        pthread_mutex_lock(&c->write_lock);
        for (unsigned k = 0; k < failed && r >= 0; k++) {
                uint64_t at = plan[k].off, left = plan[k].len;

                iov[ni++] = (struct iovec) { plan[k].hdr, plan[k].hdr_len };
                for (unsigned i = plan[k].first; i < plan[k].last && !plan[k].hole; i++) {
                        const struct export_seg *sg = &segs[i];

                        if (how[i] == HOW_MEM) {
                                iov[ni++] = (struct iovec) { (void *) sg->mem, sg->len };
                        } else if (how[i] == HOW_COPIED) {
                                iov[ni++] = (struct iovec) { w->buf + where[i], sg->len };
                        } else {
                                r = nbdsrv_io_writev(&c->io, iov, (int) ni, 1);
                                ni = 0;
                                if (r >= 0)
                                        r = nbdsrv_io_sendfile(&c->io, sg->fd, sg->fd_off, sg->len);
                                if (r < 0 && !is_socket_error(r)) {
                                        /* The chunk promised `left` more bytes: how many went out
                                         * is unknown, so pad them all, then say why. */
                                        int serr = r;

                                        r = pad(c, left);
                                        if (r >= 0)
                                                r = send_error_offset(c, rq, serr, at);
                                        pthread_mutex_unlock(&c->write_lock);
                                        if (r < 0)
                                                conn_set_dead(c, true);
                                        return r < 0 ? r : 1;
                                }
                                if (r < 0)
                                        break;
                        }
                        at += sg->len;
                        left -= sg->len;
                }
        }
        if (r >= 0 && ni)
                r = nbdsrv_io_writev(&c->io, iov, (int) ni, failed < np);
        if (r >= 0 && failed < np)
                r = send_error_offset(c, rq, err, err_off);
        pthread_mutex_unlock(&c->write_lock);
        if (r < 0) {
                conn_set_dead(c, true);
                return r;
        }
        return failed < np ? 1 : 0;
}

static int read_chunks(struct worker *w, const struct nbdsrv_request *rq, struct export_read *rd) {
        struct conn *c = w->c;
        struct plan plan[WORKER_SEGS];

        for (;;) {
                uint64_t at = rd->off;
                unsigned np;
                bool done;
                int n, r;

                n = export_read_next(rd, w->segs, WORKER_SEGS);
                if (n < 0) {
                        char msg[160];
                        snprintf(msg, sizeof msg, "read failed at offset %llu: %s", (unsigned long long) rd->err_off,
                                 strerror(-n));
                        log_warning("nbd: client %llu: export %s: %s", (unsigned long long) c->id,
                                    export_name(c->exp), msg);
                        return reply_error(c, rq, n, true, rd->err_off, msg);
                }
                done = rd->off == rd->end;
                if (n == 0) {
                        uint8_t h[NBD_CHUNK_HEADER_SIZE];
                        struct iovec iov = { h, sizeof h };
                        nbdsrv_encode_chunk_header(h, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_NONE, rq->handle, 0);
                        return send_msg(c, &iov, 1);
                }
                np = make_plan(rq, w->segs, (unsigned) n, at, done, plan);
                r = send_batch(w, rq, plan, np, false);
                export_read_done(rd, w->segs, (unsigned) n);
                if (r != 0 || done)
                        return r < 0 ? r : 0;
        }
}

static int do_read(struct worker *w, const struct nbdsrv_request *rq, const struct export_read *pending) {
        struct conn *c = w->c;
        struct export_read rd;
        int r;

        if (pending) {
                /* Started by the fast path, which found something to wait for. */
                rd = *pending;
                rd.flags &= ~EXPORT_READ_NOWAIT;
        } else {
                r = export_read_start(c->exp, rq->offset, rq->length, &rd);
                if (r < 0)
                        return reply_error(c, rq, r, false, 0, "read beyond the end of the export");
        }
        if (!c->structured || (rq->flags & NBD_CMD_FLAG_DF))
                return read_whole(w, rq, &rd);
        return read_chunks(w, rq, &rd);
}

/* --- BLOCK_STATUS --- */

static int do_block_status(struct worker *w, const struct nbdsrv_request *rq) {
        struct conn *c = w->c;
        unsigned max = rq->flags & NBD_CMD_FLAG_REQ_ONE ? 1 : MAX_EXTENTS;
        struct export_extent *ext;
        uint8_t h[NBD_CHUNK_HEADER_SIZE + 4];
        struct iovec iov[2];
        int n, r;

        r = worker_buf(w, MAX_EXTENTS * (sizeof *ext + 8));
        if (r < 0)
                return reply_error(c, rq, r, false, 0, "out of memory");
        ext = (struct export_extent *) w->buf;
        n = export_extents(c->exp, rq->offset, rq->length, ext, max);
        if (n <= 0)
                return reply_error(c, rq, n < 0 ? n : -EIO, false, 0, "block status failed");
        {
                uint8_t *d = w->buf + MAX_EXTENTS * sizeof *ext;
                for (int i = 0; i < n; i++) {
                        nbd_put32(d + 8 * i, (uint32_t) ext[i].len);
                        nbd_put32(d + 8 * i + 4, ext[i].flags);     /* EXPORT_STATE_* are the NBD_STATE_* bits */
                }
                nbdsrv_encode_chunk_header(h, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_BLOCK_STATUS, rq->handle,
                                           (uint32_t) (4 + 8 * n));
                nbd_put32(h + NBD_CHUNK_HEADER_SIZE, NBD_META_ID_ALLOCATION);
                iov[0] = (struct iovec) { h, sizeof h };
                iov[1] = (struct iovec) { d, (size_t) (8 * n) };
                return send_msg(c, iov, 2);
        }
}

_Static_assert(EXPORT_STATE_HOLE == NBD_STATE_HOLE && EXPORT_STATE_ZERO == NBD_STATE_ZERO,
               "export states are sent as base:allocation flags");

/* --- The fast path --- */

int nbdsrv_flush_batch(struct worker *w) {
        struct iovec iov = { w->batch, w->batch_len };
        int r;

        if (!w->batch_len)
                return 0;
        r = send_msg(w->c, &iov, 1);
        w->batch_len = 0;
        return r;
}

/* Leave a started read for the slow path, from its beginning. */
static int defer(struct worker *w, struct export_read *rd, uint64_t start, unsigned n) {
        export_read_done(rd, w->segs, n);
        rd->off = start;
        rd->flags &= ~EXPORT_READ_NOWAIT;
        w->pending = *rd;
        w->has_pending = true;
        return 0;
}

static int check(const struct conn *c, const struct nbdsrv_request *rq, const char **why);

int nbdsrv_try_fast(struct worker *w, const struct nbdsrv_request *rq, bool backlog) {
        struct conn *c = w->c;
        struct export_read rd;
        const char *why;
        unsigned n;
        int r;

        if (rq->type != NBD_CMD_READ || rq->length == 0 || (rq->length > FAST_SMALL && backlog) ||
            __atomic_load_n(&c->kicked, __ATOMIC_RELAXED) || check(c, rq, &why) < 0)
                return 0;
        if (export_read_start(c->exp, rq->offset, rq->length, &rd) < 0)
                return 0;
        rd.flags = EXPORT_READ_NOWAIT;
        r = export_read_next(&rd, w->segs, WORKER_SEGS);
        if (r < 0) {
                rd.flags &= ~EXPORT_READ_NOWAIT;
                rd.off = rq->offset;
                w->pending = rd;
                w->has_pending = true;
                return 0;
        }
        n = (unsigned) r;
        if (rd.off != rd.end)
                return defer(w, &rd, rq->offset, n);

        if (rq->length <= FAST_SMALL) {
                size_t hl = c->structured ? NBD_CHUNK_HEADER_SIZE + 8 : NBD_SIMPLE_REPLY_SIZE;
                size_t before = w->batch_len;
                uint8_t *p;

                if (w->batch_len + hl + rq->length > BATCH_CAP) {
                        r = nbdsrv_flush_batch(w);
                        if (r < 0) {
                                export_read_done(&rd, w->segs, n);
                                return r;
                        }
                        before = 0;
                }
                if (!w->batch && !(w->batch = malloc(BATCH_CAP))) {
                        return defer(w, &rd, rq->offset, n);
                }
                p = w->batch + w->batch_len;
                if (c->structured) {
                        nbdsrv_encode_chunk_header(p, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_OFFSET_DATA, rq->handle,
                                                   rq->length + 8);
                        nbd_put64(p + NBD_CHUNK_HEADER_SIZE, rq->offset);
                } else {
                        nbdsrv_encode_simple_reply(p, 0, rq->handle);
                }
                p += hl;
                for (unsigned i = 0; i < n; i++) {
                        /* Page cache only: a read from the disk would stall every
                         * request behind this one; another thread does it. */
                        r = export_seg_copy_nowait(&w->segs[i], p, 0, w->segs[i].len);
                        if (r < 0) {
                                w->batch_len = before;
                                return defer(w, &rd, rq->offset, n);
                        }
                        p += w->segs[i].len;
                }
                w->batch_len = (size_t) (p - w->batch);
                export_read_done(&rd, w->segs, n);
                __atomic_fetch_add(&c->srv->requests, 1, __ATOMIC_RELAXED);
                return 1;
        }

        /* A large read with nothing else waiting: send it now, from here. */
        r = nbdsrv_flush_batch(w);
        if (r < 0) {
                export_read_done(&rd, w->segs, n);
                return r;
        }
        if (c->structured && !(rq->flags & NBD_CMD_FLAG_DF)) {
                struct plan plan[WORKER_SEGS];
                unsigned np = make_plan(rq, w->segs, n, rq->offset, true, plan);

                r = send_batch(w, rq, plan, np, true);
                if (r == -EWOULDBLOCK)
                        return defer(w, &rd, rq->offset, n);
                export_read_done(&rd, w->segs, n);
                __atomic_fetch_add(&c->srv->requests, 1, __ATOMIC_RELAXED);
                return r < 0 ? r : 1;
        }
        return defer(w, &rd, rq->offset, n);
}

/* --- Checking --- */

/* The wire error for a request that must not run (0 if it may). */
static int check(const struct conn *c, const struct nbdsrv_request *rq, const char **why) {
        const uint64_t size = export_size(c->exp);
        uint16_t allowed = 0;
        bool range_ok = rq->offset <= size && rq->length <= size - rq->offset;

        switch (rq->type) {
        case NBD_CMD_READ:
                allowed = c->structured ? NBD_CMD_FLAG_DF : 0;
                break;
        case NBD_CMD_WRITE:
        case NBD_CMD_TRIM:
        case NBD_CMD_FLUSH:
        case NBD_CMD_CACHE:
                break;
        case NBD_CMD_WRITE_ZEROES:
                allowed = NBD_CMD_FLAG_NO_HOLE | (c->tflags & NBD_FLAG_SEND_FAST_ZERO ? NBD_CMD_FLAG_FAST_ZERO : 0);
                break;
        case NBD_CMD_BLOCK_STATUS:
                allowed = NBD_CMD_FLAG_REQ_ONE;
                break;
        default:
                *why = "unknown command";
                return -EINVAL;
        }
        if (c->tflags & NBD_FLAG_SEND_FUA)
                allowed |= NBD_CMD_FLAG_FUA;
        if (rq->flags & ~allowed) {
                *why = "flag not valid for this command";
                return -EINVAL;
        }
        switch (rq->type) {
        case NBD_CMD_WRITE:
        case NBD_CMD_WRITE_ZEROES:
                if (export_readonly(c->exp)) {
                        *why = "the export is read-only";
                        return -EPERM;
                }
                if (!range_ok) {
                        *why = "write beyond the end of the export";
                        return -ENOSPC;
                }
                break;
        case NBD_CMD_TRIM:
                if (export_readonly(c->exp)) {
                        *why = "the export is read-only";
                        return -EPERM;
                }
                /* fall through */
        case NBD_CMD_READ:
        case NBD_CMD_CACHE:
                if (!range_ok) {
                        *why = "request beyond the end of the export";
                        return -EINVAL;
                }
                if (rq->type == NBD_CMD_READ && rq->length > NBD_MAX_REQUEST) {
                        *why = "read larger than the maximum block size (32 MiB)";
                        return -EINVAL;
                }
                break;
        case NBD_CMD_FLUSH:
                if (rq->offset || rq->length) {
                        *why = "flush with nonzero offset or length";
                        return -EINVAL;
                }
                break;
        case NBD_CMD_BLOCK_STATUS:
                if (!c->meta_alloc) {
                        *why = "no metadata context was negotiated";
                        return -EINVAL;
                }
                if (!range_ok || rq->length == 0) {
                        *why = "block status range is empty or beyond the end of the export";
                        return -EINVAL;
                }
                break;
        }
        return 0;
}

int nbdsrv_execute(struct worker *w, const struct nbdsrv_request *rq) {
        struct conn *c = w->c;
        const char *why = NULL;
        unsigned flags = rq->flags & NBD_CMD_FLAG_FUA ? EXPORT_FUA : 0;
        bool pending = w->has_pending;
        int r;

        w->has_pending = false;

        __atomic_fetch_add(&c->srv->requests, 1, __ATOMIC_RELAXED);
        if (debug_nbd_requests)
                log_debug("nbd: client %llu: %s flags=0x%x %llu+%u", (unsigned long long) c->id,
                          nbdsrv_cmd_name(rq->type), rq->flags, (unsigned long long) rq->offset, rq->length);
        if (__atomic_load_n(&c->kicked, __ATOMIC_RELAXED))
                return reply_error(c, rq, -ESHUTDOWN, false, 0, "the export is going away");
        r = check(c, rq, &why);
        if (r < 0)
                return reply_error(c, rq, r, false, 0, why);

        switch (rq->type) {
        case NBD_CMD_READ:
                return do_read(w, rq, pending ? &w->pending : NULL);
        case NBD_CMD_WRITE:
                return reply_result(c, rq, export_pwrite(c->exp, w->buf, rq->length, rq->offset, flags));
        case NBD_CMD_FLUSH:
                return reply_result(c, rq, export_flush(c->exp));
        case NBD_CMD_TRIM:
                return reply_result(c, rq, export_trim(c->exp, rq->offset, rq->length, flags));
        case NBD_CMD_WRITE_ZEROES:
                if (rq->flags & NBD_CMD_FLAG_NO_HOLE)
                        flags |= EXPORT_NO_HOLE;
                if (rq->flags & NBD_CMD_FLAG_FAST_ZERO)
                        flags |= EXPORT_FAST;
                return reply_result(c, rq, export_zero(c->exp, rq->offset, rq->length, flags));
        case NBD_CMD_CACHE:
                return reply_result(c, rq, export_cache(c->exp, rq->offset, rq->length));
        case NBD_CMD_BLOCK_STATUS:
                return do_block_status(w, rq);
        }
        return reply_error(c, rq, -EINVAL, false, 0, "unknown command");
}
