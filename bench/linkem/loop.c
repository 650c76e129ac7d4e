/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The event loop: one epoll set with the listening socket, a signalfd and
 * every connection's two sockets. Timers are the epoll_pwait2 timeout,
 * computed each turn from the link FIFOs and the held/stalled lists.
 */
#include "linkem.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"

#define MAX_EVENTS 256

/* Bind the listening socket; listen on it unless every connection is to
 * be refused (a bound socket that does not listen answers SYN with RST,
 * which clients report as "connection refused"). */
static int loop_listen(struct loop *lp) {
        const struct options *o = lp->o;
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &lp->ev_listen };
        int one = 1;

        lp->lfd = socket(o->listen_addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (lp->lfd < 0)
                return -errno;
        if (setsockopt(lp->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
                return -errno;
        if (bind(lp->lfd, (const struct sockaddr *) &o->listen_addr, o->listen_len) < 0)
                return -errno;
        if (o->refuse_all)
                return 0;
        if (listen(lp->lfd, 4096) < 0)
                return -errno;
        if (epoll_ctl(lp->epfd, EPOLL_CTL_ADD, lp->lfd, &ev) < 0)
                return -errno;
        return 0;
}

/* Block SIGTERM, SIGINT and SIGUSR1 and receive them through a signalfd. */
static int loop_signals(struct loop *lp) {
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &lp->ev_signal };
        sigset_t mask;

        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGUSR1);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return -errno;
        lp->sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
        if (lp->sigfd < 0)
                return -errno;
        if (epoll_ctl(lp->epfd, EPOLL_CTL_ADD, lp->sigfd, &ev) < 0)
                return -errno;
        return 0;
}

/* 0 or -errno; on failure the caller still calls loop_free. */
int loop_init(struct loop *lp, const struct options *o) {
        int d, r;

        *lp = (struct loop) { .o = o, .epfd = -EBADF, .lfd = -EBADF, .sigfd = -EBADF };
        lp->ev_listen.kind = EV_LISTEN;
        lp->ev_signal.kind = EV_SIGNAL;
        list_init(&lp->conns);
        list_init(&lp->dead);
        list_init(&lp->held);
        list_init(&lp->stalled);
        list_init(&lp->ready);
        for (d = UP; d <= DOWN; d++)
                link_init(&lp->link[d], d, o->rate[d], o->delay_ns[d]);
        lp->epfd = epoll_create1(EPOLL_CLOEXEC);
        if (lp->epfd < 0)
                return -errno;
        r = loop_signals(lp);
        if (r < 0)
                return r;
        return loop_listen(lp);
}

/* The port we listen on (the kernel's choice for port 0). */
uint64_t loop_listen_port(const struct loop *lp) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);

        if (getsockname(lp->lfd, (struct sockaddr *) &ss, &len) < 0)
                return 0;
        if (ss.ss_family == AF_INET6)
                return ntohs(((struct sockaddr_in6 *) &ss)->sin6_port);
        return ntohs(((struct sockaddr_in *) &ss)->sin_port);
}

/* Stream bytes forwarded in direction d, open connections included. */
static uint64_t loop_bytes(const struct loop *lp, int d) {
        uint64_t n = lp->bytes_closed[d];
        const struct list_head *p;

        for (p = lp->conns.next; p != &lp->conns; p = p->next)
                n += list_entry(p, struct conn, node)->h[d].out;
        return n;
}

/* Mean and worst lateness of deliveries in microseconds, both directions. */
static void loop_lateness(const struct loop *lp, double *ret_mean, double *ret_max) {
        uint64_t sum = 0, n = 0, max = 0;
        int d;

        for (d = UP; d <= DOWN; d++) {
                sum += lp->link[d].late_sum;
                n += lp->link[d].late_n;
                max = MAX(max, lp->link[d].late_max);
        }
        *ret_mean = n ? (double) sum / (double) n / 1e3 : 0;
        *ret_max = (double) max / 1e3;
}

/* Counters as one JSON object, written atomically. */
int loop_write_stats(const struct loop *lp, const char *path) {
        char buf[512];
        double mean, max;
        int n;

        loop_lateness(lp, &mean, &max);
        n = snprintf(buf, sizeof(buf),
                     "{\"connections\": %" PRIu64 ", \"open\": %" PRIu64
                     ", \"max_concurrent\": %" PRIu64 ", \"bytes_up\": %" PRIu64
                     ", \"bytes_down\": %" PRIu64 ", \"faults_fired\": %" PRIu64
                     ", \"late_us_mean\": %.1f, \"late_us_max\": %.1f}\n",
                     lp->next_id, lp->n_open, lp->max_open, loop_bytes(lp, UP),
                     loop_bytes(lp, DOWN), lp->faults_fired, mean, max);
        if (n < 0 || (size_t) n >= sizeof(buf))
                return -EOVERFLOW;
        return write_file_atomic(AT_FDCWD, path, buf, (size_t) n, 0644);
}

/* The same counters as one log line (at exit and on SIGUSR1). */
void loop_log_stats(const struct loop *lp) {
        double mean, max;

        loop_lateness(lp, &mean, &max);
        log_info("%" PRIu64 " connections (at most %" PRIu64 " at once), %" PRIu64
                 " bytes up, %" PRIu64 " bytes down, %" PRIu64 " faults injected;"
                 " deliveries late by %.1f us on average, %.1f us at worst",
                 lp->next_id, lp->max_open, loop_bytes(lp, UP), loop_bytes(lp, DOWN),
                 lp->faults_fired, mean, max);
}

/* Drain the signalfd: SIGTERM/SIGINT end the loop, SIGUSR1 dumps stats. */
static void loop_signal(struct loop *lp) {
        struct signalfd_siginfo si;

        while (read(lp->sigfd, &si, sizeof(si)) == (ssize_t) sizeof(si)) {
                if (si.ssi_signo == SIGUSR1) {
                        loop_log_stats(lp);
                        if (lp->o->stats_file)
                                (void) loop_write_stats(lp, lp->o->stats_file);
                } else {
                        log_debug("signal %u: exiting", si.ssi_signo);
                        lp->quit = true;
                }
        }
}

/* The epoll timeout until the next timer: NULL for none. */
static struct timespec *loop_timeout(struct loop *lp, struct timespec *ts) {
        uint64_t now, next = NS_FOREVER;
        int d;

        if (!list_empty(&lp->ready)) {
                *ts = (struct timespec) { 0 };
                return ts;
        }
        for (d = UP; d <= DOWN; d++)
                next = MIN(next, link_next_event(&lp->link[d]));
        next = MIN(next, conn_next_event(lp));
        if (next == NS_FOREVER)
                return NULL;
        now = now_ns();
        next = next > now ? next - now : 0;
        /* Sleep until spin_ns before the timer, then poll without sleeping:
         * wakeups from sleep are late by tens of microseconds in a VM. */
        next = next > lp->o->spin_ns ? next - lp->o->spin_ns : 0;
        ts->tv_sec = (time_t) (next / 1000000000ULL);
        ts->tv_nsec = (long) (next % 1000000000ULL);
        return ts;
}

/* Run until SIGTERM/SIGINT. 0 or -errno on a fatal error. */
int loop_run(struct loop *lp) {
        struct epoll_event evs[MAX_EVENTS];

        while (!lp->quit) {
                struct timespec ts, *tsp = loop_timeout(lp, &ts);
                uint64_t now;
                int i, n, d, r;

                n = epoll_pwait2(lp->epfd, evs, MAX_EVENTS, tsp, NULL);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return log_error_errno(errno, "epoll_pwait2: %m");
                }
                for (i = 0; i < n; i++) {
                        struct ev *e = evs[i].data.ptr;

                        switch (e->kind) {
                        case EV_LISTEN:
                                r = conn_accept(lp);
                                if (r < 0)
                                        return log_error_errno(r, "accept: %m");
                                break;
                        case EV_SIGNAL:
                                loop_signal(lp);
                                break;
                        default:
                                conn_event(lp, e, evs[i].events);
                        }
                }
                now = now_ns();
                for (d = UP; d <= DOWN; d++) {
                        r = link_admit(lp, &lp->link[d], now);
                        if (r < 0)
                                return log_error_errno(r, "link: %m");
                        link_deliver(lp, &lp->link[d], now);
                }
                conn_timers(lp, now);
                conn_run_ready(lp);
                conn_reap(lp);
        }
        return 0;
}

/* Close every connection and release everything. Accepts a half-built loop. */
void loop_free(struct loop *lp) {
        int d;

        while (!list_empty(&lp->conns))
                conn_close(lp, list_entry(lp->conns.next, struct conn, node), false);
        for (d = UP; d <= DOWN; d++) {
                struct link *l = &lp->link[d];

                /* Drop the records' references so every struct can go. */
                while (l->len) {
                        l->fifo[l->head].h->c->refs--;
                        l->head = (l->head + 1) % l->cap;
                        l->len--;
                }
                link_free(l);
        }
        conn_reap(lp);
        half_io_pool_free();
        closep(&lp->lfd);
        closep(&lp->sigfd);
        closep(&lp->epfd);
}
