/* SPDX-License-Identifier: Apache-2.0 */
#include "clientpool.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"

struct clientpool_client {
        struct clientpool *pool;
        int fd;
        bool idle, evicted;
        uint64_t idle_since;
        struct clientpool_client *next;
};

struct clientpool {
        struct clientpool_config cfg;
        int listen_fd;
        int stop_fd;                    /* eventfd: readable once stopping */
        pthread_t thread;
        pthread_mutex_t lock;
        pthread_cond_t cond;            /* a client left */
        struct clientpool_client *clients;
        unsigned n_clients;             /* threads running, evicted ones included */
        unsigned n_evicted;             /* of those, closed to make room and leaving */
        bool stopping;
};

int clientpool_fd(const struct clientpool_client *c) {
        return c->fd;
}

int clientpool_cancel_fd(const struct clientpool_client *c) {
        return c->pool->stop_fd;
}

bool clientpool_set_idle(struct clientpool_client *c, bool idle) {
        struct clientpool *p = c->pool;
        bool ok;

        pthread_mutex_lock(&p->lock);
        c->idle = idle;
        if (idle)
                c->idle_since = now_ns();
        ok = !c->evicted && !p->stopping;
        pthread_mutex_unlock(&p->lock);
        return ok;
}

static void *client_thread(void *arg) {
        struct clientpool_client *c = arg;
        struct clientpool *p = c->pool;

        p->cfg.serve(c, p->cfg.userdata);

        pthread_mutex_lock(&p->lock);
        for (struct clientpool_client **pp = &p->clients; *pp; pp = &(*pp)->next)
                if (*pp == c) {
                        *pp = c->next;
                        break;
                }
        p->n_clients--;
        if (c->evicted)
                p->n_evicted--;
        pthread_cond_broadcast(&p->cond);
        pthread_mutex_unlock(&p->lock);
        close(c->fd);
        free(c);
        return NULL;
}

/* At the cap: close the client idle the longest. Caller holds p->lock.
 * Its thread wakes (the socket is shut down) and leaves. */
static bool evict_idle(struct clientpool *p) {
        struct clientpool_client *victim = NULL;

        for (struct clientpool_client *c = p->clients; c; c = c->next)
                if (c->idle && !c->evicted && (!victim || c->idle_since < victim->idle_since))
                        victim = c;
        if (!victim)
                return false;
        victim->evicted = true;
        p->n_evicted++;
        (void) shutdown(victim->fd, SHUT_RDWR);
        log_debug("%s: %u clients: closed the one idle longest to make room", p->cfg.what, p->cfg.max_clients);
        return true;
}

static void accept_one(struct clientpool *p) {
        struct clientpool_client *c;
        pthread_attr_t attr;
        pthread_t t;
        int fd, r;

        fd = accept4(p->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
                if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                        /* Out of descriptors: wait a little rather than spin. */
                        log_warning_errno(errno, "%s: cannot accept a client: %m", p->cfg.what);
                        (void) poll(&(struct pollfd) { .fd = p->stop_fd, .events = POLLIN }, 1, 100);
                }
                return;
        }
        pthread_mutex_lock(&p->lock);
        if (p->n_clients - p->n_evicted >= p->cfg.max_clients && !evict_idle(p)) {
                pthread_mutex_unlock(&p->lock);
                log_debug("%s: %u clients, all busy: refusing a new one", p->cfg.what, p->cfg.max_clients);
                if (p->cfg.refuse)
                        p->cfg.refuse(fd, p->cfg.userdata);
                close(fd);
                return;
        }
        c = calloc(1, sizeof *c);
        if (!c) {
                pthread_mutex_unlock(&p->lock);
                close(fd);
                return;
        }
        c->pool = p;
        c->fd = fd;
        c->next = p->clients;
        p->clients = c;
        p->n_clients++;
        pthread_mutex_unlock(&p->lock);

        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        r = pthread_create(&t, &attr, client_thread, c);
        pthread_attr_destroy(&attr);
        if (r != 0) {
                pthread_mutex_lock(&p->lock);
                for (struct clientpool_client **pp = &p->clients; *pp; pp = &(*pp)->next)
                        if (*pp == c) {
                                *pp = c->next;
                                break;
                        }
                p->n_clients--;
                pthread_mutex_unlock(&p->lock);
                close(fd);
                free(c);
        }
}

static void *accept_thread(void *arg) {
        struct clientpool *p = arg;
        struct pollfd pfd[2] = { { .fd = p->listen_fd, .events = POLLIN }, { .fd = p->stop_fd, .events = POLLIN } };

        for (;;) {
                if (poll(pfd, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        break;
                }
                if (pfd[1].revents)
                        break;
                if (pfd[0].revents & POLLIN)
                        accept_one(p);
        }
        return NULL;
}

int clientpool_start(const struct clientpool_config *cfg, int listen_fd, struct clientpool **ret) {
        struct clientpool *p = calloc(1, sizeof *p);
        pthread_condattr_t ca;
        int r;

        if (!p) {
                close(listen_fd);
                return -ENOMEM;
        }
        p->cfg = *cfg;
        p->listen_fd = listen_fd;
        p->stop_fd = eventfd(0, EFD_CLOEXEC);
        if (p->stop_fd < 0) {
                r = -errno;
                goto fail;
        }
        pthread_mutex_init(&p->lock, NULL);
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&p->cond, &ca);
        pthread_condattr_destroy(&ca);
        r = -pthread_create(&p->thread, NULL, accept_thread, p);
        if (r < 0) {
                pthread_mutex_destroy(&p->lock);
                pthread_cond_destroy(&p->cond);
                goto fail;
        }
        *ret = p;
        return 0;
fail:
        if (p->stop_fd >= 0)
                close(p->stop_fd);
        close(listen_fd);
        free(p);
        return r;
}

unsigned clientpool_stop(struct clientpool *p, uint64_t grace_ns) {
        uint64_t one = 1, deadline = now_ns() + grace_ns;
        unsigned left;

        if (!p)
                return 0;
        (void) !write(p->stop_fd, &one, sizeof one);
        pthread_join(p->thread, NULL);
        close(p->listen_fd);

        pthread_mutex_lock(&p->lock);
        p->stopping = true;
        for (struct clientpool_client *c = p->clients; c; c = c->next)
                (void) shutdown(c->fd, SHUT_RDWR);
        while (p->n_clients > 0) {
                struct timespec ts = { .tv_sec = (time_t) (deadline / 1000000000ull),
                                       .tv_nsec = (long) (deadline % 1000000000ull) };
                if (now_ns() >= deadline || pthread_cond_timedwait(&p->cond, &p->lock, &ts) == ETIMEDOUT)
                        break;
        }
        left = p->n_clients;
        pthread_mutex_unlock(&p->lock);
        if (left > 0) {
                log_warning("%s: %u requests still running at stop; not waiting for them", p->cfg.what, left);
                return left;
        }
        close(p->stop_fd);
        pthread_mutex_destroy(&p->lock);
        pthread_cond_destroy(&p->cond);
        free(p);
        return 0;
}
