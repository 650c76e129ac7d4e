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
 * runs NBD_REPLY_TYPE_OFFSET_DATA, sent with sendfile(2) on plain sockets
 * (no copy through user space) or copied and written (TLS). Each chunk is
 * written whole under the connection's write lock; chunks of different
 * replies may interleave, which the protocol allows.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "conn.h"
#include "nbd-protocol.h"

#define MAX_EXTENTS 1024u
#define FAST_SMALL (64u << 10)          /* fast reads up to this size are batched */
#define SENDFILE_MIN (64u << 10)        /* smaller pieces are copied: cheaper than sendfile */

static const uint8_t zeroes[65536];

void worker_free_buffers(struct worker *w) {
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
        if (debug_flag("nbd.requests"))
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

/* Send a batch with sendfile for fd segments. Caller holds the write
 * lock. Returns 0, 1 if a source error was reported (reply done), or <0
 * for a dead socket. */
static int send_batch_sendfile(struct worker *w, const struct nbdsrv_request *rq, const struct export_seg *segs,
                               struct plan *plan, unsigned np) {
        struct conn *c = w->c;

        for (unsigned k = 0; k < np; k++) {
                struct plan *p = &plan[k];
                struct iovec iov = { p->hdr, p->hdr_len };
                uint64_t at = p->off, left = p->len;
                int r;

                r = nbdsrv_io_writev(&c->io, &iov, 1, 1);
                if (r < 0)
                        return r;
                if (p->hole)
                        continue;
                for (unsigned i = p->first; i < p->last; i++) {
                        const struct export_seg *s = &segs[i];

                        if (s->kind == EXPORT_SEG_MEM) {
                                struct iovec m = { (void *) s->mem, s->len };
                                r = nbdsrv_io_writev(&c->io, &m, 1, 1);
                        } else if (s->len < SENDFILE_MIN) {
                                /* Small pieces: a copy costs less than sendfile's setup. */
                                r = worker_buf(w, s->len);
                                if (r >= 0)
                                        r = export_seg_copy(s, w->buf, 0, s->len);
                                if (r >= 0) {
                                        struct iovec m = { w->buf, s->len };
                                        r = nbdsrv_io_writev(&c->io, &m, 1, 1);
                                } else if (r == -ENOMEM) {
                                        r = -EIO;
                                }
                        } else {
                                r = nbdsrv_io_sendfile(&c->io, s->fd, s->fd_off, s->len);
                        }
                        if (r < 0 && !is_socket_error(r)) {
                                /* The chunk promised `left` bytes: finish it, then say why. */
                                uint8_t h[NBD_CHUNK_HEADER_SIZE], e[6], o[8];
                                char msg[96];
                                size_t ml;
                                struct iovec ev[4] = { { h, sizeof h }, { e, sizeof e }, { msg, 0 }, { o, sizeof o } };

                                log_warning("nbd: client %llu: export %s: reading offset %llu failed: %s",
                                            (unsigned long long) c->id, export_name(c->exp), (unsigned long long) at,
                                            strerror(-r));
                                /* How much of the segment went out is unknown: resend none of it,
                                 * pad the whole remainder (the error offset covers it). */
                                r = pad(c, left);
                                if (r < 0)
                                        return r;
                                ml = (size_t) snprintf(msg, sizeof msg, "read failed at offset %llu",
                                                       (unsigned long long) at);
                                ev[2].iov_len = ml;
                                nbdsrv_encode_chunk_header(h, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_ERROR_OFFSET,
                                                           rq->handle, (uint32_t) (6 + ml + 8));
                                nbd_put32(e, NBD_EIO);
                                nbd_put16(e + 4, (uint16_t) ml);
                                nbd_put64(o, at);
                                r = nbdsrv_io_writev(&c->io, ev, 4, 0);
                                return r < 0 ? r : 1;
                        }
                        if (r < 0)
                                return r;
                        at += s->len;
                        left -= s->len;
                }
        }
        return 0;
}

/* Send a batch by copying fd segments into memory first (TLS, or
 * sendfile off). Returns 0, 1 if an error reply was sent, <0 when the
 * connection is dead. */
static int send_batch_copy(struct worker *w, const struct nbdsrv_request *rq, const struct export_seg *segs,
                           struct plan *plan, unsigned np) {
        struct conn *c = w->c;
        struct iovec iov[3 * WORKER_SEGS + 2];
        uint64_t need = 0, used = 0;
        unsigned ni = 0, failed_plan = np;
        uint64_t err_off = 0;
        int r, err = 0;

        for (unsigned k = 0; k < np; k++)
                for (unsigned i = plan[k].first; i < plan[k].last && !plan[k].hole; i++)
                        if (segs[i].kind == EXPORT_SEG_FD)
                                need += segs[i].len;
        r = worker_buf(w, need);
        if (r < 0)
                return reply_error(c, rq, r, true, plan[0].off, "out of memory") < 0 ? -1 : 1;
        for (unsigned k = 0; k < np && failed_plan == np; k++) {
                struct plan *p = &plan[k];
                uint64_t at = p->off;

                iov[ni++] = (struct iovec) { p->hdr, p->hdr_len };
                for (unsigned i = p->first; i < p->last && !p->hole; i++) {
                        const struct export_seg *s = &segs[i];

                        if (s->kind == EXPORT_SEG_MEM) {
                                iov[ni++] = (struct iovec) { (void *) s->mem, s->len };
                        } else {
                                err = export_seg_copy(s, w->buf + used, 0, s->len);
                                if (err < 0) {
                                        failed_plan = k;
                                        err_off = at;
                                        break;
                                }
                                iov[ni++] = (struct iovec) { w->buf + used, s->len };
                                used += s->len;
                        }
                        at += s->len;
                }
        }
        if (failed_plan < np) {
                /* Send the chunks before the failing one, then the error. */
                unsigned keep = 0;
                char msg[96];

                for (unsigned k = 0; k < failed_plan; k++)
                        keep += 1 + (plan[k].hole ? 0 : plan[k].last - plan[k].first);
                if (keep) {
                        pthread_mutex_lock(&c->write_lock);
                        r = nbdsrv_io_writev(&c->io, iov, (int) keep, 0);
                        pthread_mutex_unlock(&c->write_lock);
                        if (r < 0) {
                                conn_set_dead(c, true);
                                return r;
                        }
                }
                snprintf(msg, sizeof msg, "read failed at offset %llu", (unsigned long long) err_off);
                log_warning("nbd: client %llu: export %s: %s: %s", (unsigned long long) c->id, export_name(c->exp),
                            msg, strerror(-err));
                r = reply_error(c, rq, err, true, err_off, msg);
                return r < 0 ? r : 1;
        }
        r = send_msg(c, iov, (int) ni);
        return r;
}

static int read_chunks(struct worker *w, const struct nbdsrv_request *rq, struct export_read *rd) {
        struct conn *c = w->c;
        struct plan plan[WORKER_SEGS];
        const bool sendfile_ok = c->srv->cfg.use_sendfile && !nbdsrv_io_is_tls(&c->io);

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
                if (sendfile_ok) {
                        pthread_mutex_lock(&c->write_lock);
                        r = send_batch_sendfile(w, rq, w->segs, plan, np);
                        pthread_mutex_unlock(&c->write_lock);
                        if (r < 0)
                                conn_set_dead(c, true);
                } else {
                        r = send_batch_copy(w, rq, w->segs, plan, np);
                }
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
                        r = export_seg_copy(&w->segs[i], p, 0, w->segs[i].len);
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
        if (c->structured && c->srv->cfg.use_sendfile && !nbdsrv_io_is_tls(&c->io) &&
            !(rq->flags & NBD_CMD_FLAG_DF)) {
                struct plan plan[WORKER_SEGS];
                unsigned np = make_plan(rq, w->segs, n, rq->offset, true, plan);

                pthread_mutex_lock(&c->write_lock);
                r = send_batch_sendfile(w, rq, w->segs, plan, np);
                pthread_mutex_unlock(&c->write_lock);
                export_read_done(&rd, w->segs, n);
                __atomic_fetch_add(&c->srv->requests, 1, __ATOMIC_RELAXED);
                if (r < 0) {
                        conn_set_dead(c, true);
                        return r;
                }
                return 1;
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
        if (debug_flag("nbd.requests"))
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
