/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Connections: accept a client, connect to the server, and pump each
 * direction (a "half") between its two sockets through a buffer (io.c).
 * Reading is limited by buffer space only (TCP back-pressure does the
 * rest); writing by what the link has delivered and by fault stop points.
 *
 * Sockets are edge-triggered: readable/writable flags remember readiness
 * until a syscall says EAGAIN. A half that still has work after its
 * budget goes on loop->ready so one fast stream cannot starve the others.
 */
#include "linkem.h"

#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"

#define PUMP_BUDGET 8
#define BUFFER_MIN (1ULL << 20)
#define BUFFER_MAX (64ULL << 20)

/* The smallest power of two >= v (a pipe's size is one). */
static uint64_t roundup_pow2(uint64_t v) {
        uint64_t p = 1;

        while (p < v)
                p <<= 1;
        return p;
}

/* Bytes a connection may hold per direction (a limit: memory is taken
 * as bytes arrive, io.c): twice the link's bandwidth-delay product (in
 * flight plus as much queued), at least 1 MiB. Without a cap, size for
 * 10 Gbit/s. */
size_t conn_buffer_size(const struct options *o) {
        uint64_t want = BUFFER_MIN;
        int d;

        if (o->buffer)
                return roundup_pow2(o->buffer);
        for (d = UP; d <= DOWN; d++) {
                uint64_t rate = o->rate[d] ? o->rate[d] : 10000000000ULL;
                uint64_t bdp = rate / 8 * o->delay_ns[d] / 1000000000ULL;

                want = MAX(want, 2 * bdp + (256 << 10));
        }
        return roundup_pow2(MIN(want, BUFFER_MAX));
}

/* Close fd so that the peer sees a reset (RST), not an orderly FIN. */
static void close_reset(int fd) {
        struct linger lg = { .l_onoff = 1, .l_linger = 0 };

        (void) setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        (void) close(fd);
}

/* linkem decides when bytes leave; Nagle must not hold them back. */
static void set_nodelay(int fd) {
        int one = 1;

        (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* Wire a half to its connection's sockets; its buffer comes on first read. */
static void half_init(struct half *h, struct conn *c, int dir, size_t cap) {
        h->c = c;
        h->dir = dir;
        h->src = dir == UP ? c->cfd : c->sfd;
        h->dst = dir == UP ? c->sfd : c->cfd;
        h->cap = cap;
        h->pipe[0] = h->pipe[1] = -EBADF;
        h->use_splice = c->splice;
        list_init(&h->active);
        list_init(&h->ready);
}

/* Set up a connection for the accepted client cfd (taken over) and start
 * connecting to the server. 0 or -errno (cfd closed with a reset). */
static int conn_new(struct loop *lp, int cfd, uint64_t id) {
        const struct options *o = lp->o;
        struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET };
        uint64_t now = now_ns();
        struct conn *c;
        size_t cap = conn_buffer_size(o);
        int r;

        c = calloc(1, sizeof(*c));
        if (!c) {
                r = -ENOMEM;
                goto out_reset;
        }
        c->id = id;
        c->cfd = cfd;
        c->sfd = socket(o->connect_addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (c->sfd < 0) {
                r = -errno;
                goto out_free;
        }
        set_nodelay(c->cfd);
        set_nodelay(c->sfd);
        if (connect(c->sfd, (const struct sockaddr *) &o->connect_addr, o->connect_len) < 0) {
                if (errno != EINPROGRESS) {
                        r = -errno;
                        goto out_close;
                }
                c->connecting = true;
        }
        c->splice = o->splice;
        c->ev_c = (struct ev) { .kind = EV_CLIENT, .c = c };
        c->ev_s = (struct ev) { .kind = EV_SERVER, .c = c };
        half_init(&c->h[UP], c, UP, cap);
        half_init(&c->h[DOWN], c, DOWN, cap);
        list_init(&c->held);
        list_init(&c->stalled);
        ev.data.ptr = &c->ev_c;
        if (epoll_ctl(lp->epfd, EPOLL_CTL_ADD, c->cfd, &ev) < 0) {
                r = -errno;
                goto out_close;
        }
        ev.data.ptr = &c->ev_s;
        if (epoll_ctl(lp->epfd, EPOLL_CTL_ADD, c->sfd, &ev) < 0) {
                r = -errno;
                goto out_close;
        }
        list_add_tail(&c->node, &lp->conns);
        lp->n_open++;
        lp->max_open = MAX(lp->max_open, lp->n_open);
        /* Through a real link, the client's first byte leaves one RTT after
         * connect() was called (SYN, SYN-ACK); here accept() was instant. */
        if (o->handshake && o->delay_ns[UP] + o->delay_ns[DOWN] > 0) {
                c->hold_until = now + o->delay_ns[UP] + o->delay_ns[DOWN];
                list_add_tail(&c->held, &lp->held);
        }
        fault_setup(lp, c, now);
        /* The flip fault edits bytes in passing: they must be in memory. */
        if (c->flip_at != UINT64_MAX)
                c->h[DOWN].use_splice = false;
        log_debug("conn %" PRIu64 ": accepted", id);
        return 0;

out_close:
        (void) close(c->sfd);
out_free:
        free(c);
out_reset:
        close_reset(cfd);
        return r;
}

/* Accept every pending client. Only fatal errors are returned. */
int conn_accept(struct loop *lp) {
        for (;;) {
                int fd, r;
                uint64_t id;

                fd = accept4(lp->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (fd < 0) {
                        if (errno == EAGAIN || errno == EWOULDBLOCK)
                                return 0;
                        if (errno == EINTR || errno == ECONNABORTED)
                                continue;
                        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                                log_warning_errno(errno, "accept: %m");
                                return 0;
                        }
                        return -errno;
                }
                id = ++lp->next_id;
                if (fault_refuse_conn(lp->o, id)) {
                        lp->faults_fired++;
                        log_debug("conn %" PRIu64 ": refused", id);
                        close_reset(fd);
                        continue;
                }
                r = conn_new(lp, fd, id);
                if (r < 0)
                        log_warning_errno(r, "conn %" PRIu64 ": cannot reach the server: %m", id);
        }
}

/* Close both sockets, with RSTs when reset (a fault or an error on either
 * side), else orderly. The struct lives on until no record refers to it. */
void conn_close(struct loop *lp, struct conn *c, bool reset) {
        int d;

        if (c->dead)
                return;
        c->dead = true;
        if (reset) {
                close_reset(c->cfd);
                close_reset(c->sfd);
        } else {
                (void) close(c->cfd);
                (void) close(c->sfd);
        }
        for (d = UP; d <= DOWN; d++) {
                link_forget(&c->h[d]);
                list_del(&c->h[d].ready);
                lp->bytes_closed[d] += c->h[d].out;
                half_io_free(&c->h[d]);
        }
        list_del(&c->held);
        list_del(&c->stalled);
        list_del(&c->node);
        list_add_tail(&c->node, &lp->dead);
        lp->n_open--;
        log_debug("conn %" PRIu64 ": closed%s, %" PRIu64 " bytes up, %" PRIu64 " down",
                  c->id, reset ? " with reset" : "", c->h[UP].out, c->h[DOWN].out);
}

/* A link record for c was consumed. */
void conn_unref(struct loop *lp, struct conn *c) {
        c->refs--;
}

/* Free closed connections that no record refers to any more. */
void conn_reap(struct loop *lp) {
        struct list_head *p = lp->dead.next;

        while (p != &lp->dead) {
                struct conn *c = list_entry(p, struct conn, node);

                p = p->next;
                if (c->refs == 0) {
                        list_del(&c->node);
                        free(c);
                }
        }
}

/* Read what the buffer has room for. >0 on progress, 0 when blocked,
 * -errno on a socket error. */
static int half_read(struct loop *lp, struct half *h) {
        struct conn *c = h->c;
        uint64_t space;
        ssize_t n;

        if (!h->readable || h->pipe_full || h->eof_in || c->stall_until ||
            (h->dir == UP && c->hold_until))
                return 0;
        space = h->cap - (h->in - h->out);
        if (!space)
                return 0;
        n = half_io_in(h, space);
        if (n == -EAGAIN || n == -EWOULDBLOCK) {
                h->readable = false;
                return 0;
        }
        if (n == -ENOBUFS) {
                h->pipe_full = true;    /* retried after a write */
                return 0;
        }
        if (n == -EINTR)
                return 1;
        if (n < 0)
                return (int) n;
        if (n == 0) {
                h->eof_in = true;
                h->readable = false;
        } else {
                fault_flip(lp, h, h->in, (uint64_t) n);
                h->in += (uint64_t) n;
        }
        return link_enqueue(lp, &lp->link[h->dir], h, now_ns()) ?: 1;
}

/* Write what the link has delivered, up to the next fault stop point, and
 * pass the EOF on once everything before it is out. >0 on progress, 0
 * when blocked, -errno on a socket error. */
static int half_write(struct loop *lp, struct half *h) {
        struct conn *c = h->c;
        uint64_t avail, stop = UINT64_MAX;
        ssize_t n;

        if (!h->writable || c->connecting || c->stall_until)
                return 0;
        avail = h->deliv - h->out;
        if (h->dir == DOWN) {
                stop = fault_next_stop(c);
                if (h->out >= stop) {
                        fault_fire(lp, c, h->out);
                        return 0;
                }
                avail = MIN(avail, stop - h->out);
        }
        if (avail == 0) {
                if (h->eof_deliv && h->out == h->in && !h->shut) {
                        h->shut = true;
                        if (shutdown(h->dst, SHUT_WR) < 0 && errno != ENOTCONN)
                                return -errno;
                        return 1;
                }
                return 0;
        }
        n = half_io_out(h, avail);
        if (n == -EAGAIN || n == -EWOULDBLOCK) {
                h->writable = false;
                return 0;
        }
        if (n == -EINTR)
                return 1;
        if (n < 0)
                return (int) n;
        h->out += (uint64_t) n;
        h->pipe_full = false;
        if (h->out == stop)
                fault_fire(lp, c, h->out);
        return 1;
}

/* Move h's bytes as far as the sockets, the link and the faults allow.
 * A socket error resets the whole connection (both peers see it). */
void half_pump(struct loop *lp, struct half *h) {
        struct conn *c = h->c;
        int i, w, r;

        for (i = 0; i < PUMP_BUDGET; i++) {
                if (c->dead)
                        return;
                w = half_write(lp, h);
                if (w < 0) {
                        r = w;
                        goto fail;
                }
                if (c->dead)
                        return;
                r = half_read(lp, h);
                if (r < 0)
                        goto fail;
                if (w == 0 && r == 0)
                        break;
        }
        if (i == PUMP_BUDGET && list_empty(&h->ready))
                list_add_tail(&h->ready, &lp->ready);
        if (c->h[UP].shut && c->h[DOWN].shut)
                conn_close(lp, c, false);
        return;
fail:
        log_debug_errno(r, "conn %" PRIu64 ": %s: %m", c->id, h->dir == UP ? "up" : "down");
        conn_close(lp, c, true);
}

/* Pump the halves that ran out of budget last time. */
void conn_run_ready(struct loop *lp) {
        struct list_head todo;

        if (list_empty(&lp->ready))
                return;
        /* Take the list, so halves re-added while pumping wait a turn. */
        todo = lp->ready;
        todo.next->prev = &todo;
        todo.prev->next = &todo;
        list_init(&lp->ready);
        while (!list_empty(&todo)) {
                struct half *h = list_entry(todo.next, struct half, ready);

                list_del(&h->ready);
                half_pump(lp, h);
        }
}

/* An epoll event on one of c's sockets. */
void conn_event(struct loop *lp, struct ev *e, uint32_t events) {
        struct conn *c = e->c;
        bool in = events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR);
        bool out = events & (EPOLLOUT | EPOLLHUP | EPOLLERR);

        if (c->dead)
                return;
        if (e->kind == EV_CLIENT) {
                c->h[UP].readable |= in;
                c->h[DOWN].writable |= out;
        } else {
                c->h[DOWN].readable |= in;
                if (out && c->connecting) {
                        int err = 0;
                        socklen_t len = sizeof(err);

                        if (getsockopt(c->sfd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
                                err = errno;
                        if (err) {
                                log_warning_errno(err, "conn %" PRIu64 ": connect to the server: %m", c->id);
                                conn_close(lp, c, true);
                                return;
                        }
                        c->connecting = false;
                }
                c->h[UP].writable |= out;
        }
        half_pump(lp, &c->h[UP]);
        half_pump(lp, &c->h[DOWN]);
}

/* Release held and stalled connections whose time has come. */
void conn_timers(struct loop *lp, uint64_t now) {
        struct list_head *p;

        while (!list_empty(&lp->held)) {
                struct conn *c = list_entry(lp->held.next, struct conn, held);

                if (c->hold_until > now)
                        break;
                c->hold_until = 0;
                list_del(&c->held);
                half_pump(lp, &c->h[UP]);
        }
        p = lp->stalled.next;
        while (p != &lp->stalled) {
                struct conn *c = list_entry(p, struct conn, stalled);

                p = p->next;
                if (c->stall_until > now)
                        continue;
                c->stall_until = 0;
                list_del(&c->stalled);
                log_debug("conn %" PRIu64 ": stall over", c->id);
                half_pump(lp, &c->h[UP]);
                half_pump(lp, &c->h[DOWN]);
        }
}

/* The next hold or stall to end (NS_FOREVER: none). */
uint64_t conn_next_event(const struct loop *lp) {
        uint64_t t = NS_FOREVER;
        const struct list_head *p;

        if (!list_empty(&lp->held))
                t = list_entry(lp->held.next, struct conn, held)->hold_until;
        for (p = lp->stalled.next; p != &lp->stalled; p = p->next)
                t = MIN(t, list_entry(p, struct conn, stalled)->stall_until);
        return t;
}
