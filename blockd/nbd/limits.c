/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The NBD server's limits (limits.h): the buffer budget, admission of
 * new connections, and the handshake deadline.
 *
 * The budget. A READ's reply and a WRITE's payload are buffered in the
 * worker that serves it, and a client that stops reading its replies
 * leaves them there. So the thread that parses a request first reserves
 * its length, against the connection's and the server's budgets, and
 * gives it back once the reply is out. A connection out of budget stops
 * parsing requests (it reads nothing more from its client) until replies
 * drain; the server out of budget makes every connection wait for room
 * instead of allocating. Waits end when the connection dies.
 */
#include "limits.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"
#include "conn.h"

static bool fits(uint64_t held, uint64_t len, uint64_t limit) {
        return held == 0 || (len <= limit && held <= limit - len);
}

static bool conn_is_dead(struct conn *c) {
        bool dead;

        pthread_mutex_lock(&c->lock);
        dead = c->dead;
        pthread_mutex_unlock(&c->lock);
        return dead;
}

static int budget_take(struct worker *w, uint64_t len, bool wait) {
        struct conn *c = w->c;
        struct nbdsrv *s = c->srv;
        int r = 0;

        assert(w->reserved == 0);
        if (len == 0)
                return 0;
        pthread_mutex_lock(&s->budget_lock);
        while (!fits(c->buffered, len, s->cfg.limits.conn_buffer) ||
               !fits(s->buffered, len, s->cfg.limits.buffer_total)) {
                if (!wait) {
                        r = -EAGAIN;
                        goto out;
                }
                if (conn_is_dead(c)) {
                        r = -ESHUTDOWN;
                        goto out;
                }
                pthread_cond_wait(&s->budget_cond, &s->budget_lock);
        }
        c->buffered += len;
        s->buffered += len;
        w->reserved = len;
out:
        pthread_mutex_unlock(&s->budget_lock);
        return r;
}

int nbdsrv_budget_get(struct worker *w, uint64_t len) {
        return budget_take(w, len, true);
}

int nbdsrv_budget_try(struct worker *w, uint64_t len) {
        return budget_take(w, len, false);
}

void nbdsrv_budget_put(struct worker *w) {
        struct conn *c = w->c;
        struct nbdsrv *s = c->srv;

        if (!w->reserved)
                return;
        pthread_mutex_lock(&s->budget_lock);
        c->buffered -= w->reserved;
        s->buffered -= w->reserved;
        w->reserved = 0;
        pthread_cond_broadcast(&s->budget_cond);
        pthread_mutex_unlock(&s->budget_lock);
}

void nbdsrv_budget_wake(struct nbdsrv *s) {
        pthread_mutex_lock(&s->budget_lock);
        pthread_cond_broadcast(&s->budget_cond);
        pthread_mutex_unlock(&s->budget_lock);
}

/* One warning per burst of refusals, however many there are. */
static void refused(struct nbdsrv *s, const char *why, const char *peer_key) {
        uint64_t now = now_ns();

        s->refused++;
        if (now - s->refused_logged_ns < 10ull * 1000000000 && s->refused_logged_ns)
                return;
        log_warning("nbd: refusing connections: %s (last from %s; %llu refused since the last warning)", why,
                    peer_key, (unsigned long long) s->refused);
        s->refused = 0;
        s->refused_logged_ns = now;
}

bool nbdsrv_admit(struct nbdsrv *s, const char *peer_key) {
        unsigned same = 0;
        char why[96];

        if (s->n_conns >= s->cfg.limits.max_connections) {
                snprintf(why, sizeof why, "%u connections open (--nbd-max-connections)", s->n_conns);
                refused(s, why, peer_key);
                return false;
        }
        for (struct conn *c = s->conns; c; c = c->next)
                same += strcmp(c->peer_key, peer_key) == 0;
        if (same >= s->cfg.limits.peer_connections) {
                snprintf(why, sizeof why, "%u connections open from one peer (--nbd-peer-connections)", same);
                refused(s, why, peer_key);
                return false;
        }
        return true;
}

int nbdsrv_expire_handshakes(struct nbdsrv *s) {
        uint64_t now = now_ns(), next = 0;

        pthread_mutex_lock(&s->lock);
        for (struct conn *c = s->conns; c; c = c->next) {
                uint64_t d = __atomic_load_n(&c->handshake_deadline_ns, __ATOMIC_ACQUIRE);

                if (!d)
                        continue;
                if (d <= now) {
                        /* Only one of us and the handshake's end clears it. */
                        if (!__atomic_compare_exchange_n(&c->handshake_deadline_ns, &d, 0, false, __ATOMIC_ACQ_REL,
                                                         __ATOMIC_ACQUIRE))
                                continue;
                        log_warning("nbd: client %llu (%s): handshake not finished after %u s; disconnecting",
                                    (unsigned long long) c->id, c->peer, s->cfg.limits.handshake_timeout_s);
                        conn_set_dead(c, true);
                        continue;
                }
                if (!next || d < next)
                        next = d;
        }
        pthread_mutex_unlock(&s->lock);
        if (!next)
                return -1;
        return (int) MIN((next - now + 999999) / 1000000, (uint64_t) 60000);
}
