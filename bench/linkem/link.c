/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One direction of the emulated link: a serial line of rate R shared by
 * every connection (round robin, a quantum each per turn, like a fair
 * queue in front of a real bottleneck), then a propagation delay D.
 *
 * The line is a virtual clock: admitting n bytes at time now moves it to
 * vt = max(vt, now) + n/R and the bytes arrive at vt + D. Admission runs
 * at most burst_ns ahead of real time, so the clock never races ahead of
 * what the line could carry, and a timer wakes the loop when it may admit
 * again. Delivery times only grow, hence one FIFO of records per direction.
 */
#include "linkem.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"

/* Line time a half may take per turn, and how far the clock may lead. */
#define QUANTUM_NS 50000ULL
#define BURST_NS 100000ULL
#define QUANTUM_MIN 1500ULL
#define QUANTUM_MAX 65536ULL
/* A backlogged line whose timer fired late catches up at most this much. */
#define CATCHUP_NS 5000000ULL

/* Set up direction dir with rate bit/s (0 = no cap) and delay ns. */
void link_init(struct link *l, int dir, uint64_t rate, uint64_t delay) {
        *l = (struct link) { .dir = dir, .rate = rate, .delay = delay };
        list_init(&l->active);
        if (!rate)
                return;
        l->ps_per_byte = (8000000000000ULL + rate / 2) / rate;
        if (l->ps_per_byte == 0)
                l->ps_per_byte = 1;
        l->quantum = rate / 8 * QUANTUM_NS / 1000000000ULL;
        l->quantum = MAX(QUANTUM_MIN, MIN(QUANTUM_MAX, l->quantum));
        l->burst_ns = BURST_NS;
}

/* Release the record ring (records must hold no references by now). */
void link_free(struct link *l) {
        free(l->fifo);
        l->fifo = NULL;
        l->head = l->len = l->cap = 0;
}

/* Append a record, doubling the ring when full. 0 or -ENOMEM. */
static int link_push(struct link *l, const struct rec *r) {
        if (l->len == l->cap) {
                size_t ncap = l->cap ? l->cap * 2 : 1024, i;
                struct rec *n = malloc(ncap * sizeof(*n));

                if (!n)
                        return -ENOMEM;
                for (i = 0; i < l->len; i++)
                        n[i] = l->fifo[(l->head + i) % l->cap];
                free(l->fifo);
                l->fifo = n;
                l->cap = ncap;
                l->head = 0;
        }
        l->fifo[(l->head + l->len) % l->cap] = *r;
        l->len++;
        return 0;
}

/* Bytes or an EOF of h still wait to be admitted to the line. */
static bool half_has_pending(const struct half *h) {
        return h->in > h->sched || (h->eof_in && !h->eof_sched);
}

/* Put the next n bytes of h (and its EOF, once every byte is admitted)
 * on the line, arriving at due. With neither delay nor cap they are
 * deliverable at once and no record is made. */
static int half_schedule(struct link *l, struct half *h, uint64_t n, uint64_t due) {
        bool eof = h->eof_in && !h->eof_sched && h->sched + n == h->in;
        struct rec r;
        int ret;

        if (n == 0 && !eof)
                return 0;
        if (!l->rate && !l->delay) {
                h->sched += n;
                h->deliv = h->sched;
                if (eof)
                        h->eof_sched = h->eof_deliv = true;
                return 0;
        }
        r = (struct rec) { .h = h, .end = h->sched + n, .due = due, .eof = eof };
        ret = link_push(l, &r);
        if (ret < 0)
                return ret;
        h->sched += n;
        if (eof)
                h->eof_sched = true;
        h->c->refs++;
        return 0;
}

/* h has read new bytes (or EOF): schedule them. Without a cap they leave
 * now; with one, h joins the round robin. 0 or -ENOMEM. */
int link_enqueue(struct loop *lp, struct link *l, struct half *h, uint64_t now) {
        if (!l->rate)
                return half_schedule(l, h, h->in - h->sched, now + l->delay);
        /* A half that had nothing queued goes first, as a new flow does
         * in fq_codel: a response's first bytes don't wait for a round of
         * bulk transfers. Halves that stay backlogged rejoin at the tail. */
        if (list_empty(&h->active) && half_has_pending(h))
                list_add_head(&h->active, &l->active);
        return link_admit(lp, l, now);
}

/* Admit quanta from the active halves in turn while the line's clock is
 * less than burst_ns ahead of now. 0 or -ENOMEM. */
int link_admit(struct loop *lp, struct link *l, uint64_t now) {
        while (!list_empty(&l->active) && l->vt <= now + l->burst_ns) {
                struct half *h = list_entry(l->active.next, struct half, active);
                uint64_t n = MIN(l->quantum, h->in - h->sched), ps;
                int r;

                list_del(&h->active);
                /* After idling the line restarts now. While backlogged it
                 * carries on from vt even when the loop woke late (a busy
                 * machine must not cost line time), up to CATCHUP_NS. */
                if (l->vt < now && (!l->backlogged || now - l->vt > CATCHUP_NS)) {
                        l->vt = now;
                        l->vt_frac = 0;
                }
                ps = l->vt_frac + n * l->ps_per_byte;
                l->vt += ps / 1000;
                l->vt_frac = ps % 1000;
                r = half_schedule(l, h, n, l->vt + l->delay);
                if (r < 0)
                        return r;
                if (half_has_pending(h))
                        list_add_tail(&h->active, &l->active);
        }
        l->backlogged = !list_empty(&l->active);
        return 0;
}

/* Hand every record due by now to its half and let it write. Records of
 * closed connections only drop their reference. */
void link_deliver(struct loop *lp, struct link *l, uint64_t now) {
        while (l->len && l->fifo[l->head].due <= now) {
                struct rec r = l->fifo[l->head];
                struct conn *c = r.h->c;
                uint64_t late = now - r.due;

                l->head = (l->head + 1) % l->cap;
                l->len--;
                /* How late the loop was: the emulator's own error. */
                l->late_sum += late;
                l->late_max = MAX(l->late_max, late);
                l->late_n++;
                /* Coalesce the half's next records when they are due too. */
                while (l->len && l->fifo[l->head].h == r.h && l->fifo[l->head].due <= now) {
                        r.end = l->fifo[l->head].end;
                        r.eof |= l->fifo[l->head].eof;
                        l->head = (l->head + 1) % l->cap;
                        l->len--;
                        c->refs--;
                }
                if (!c->dead) {
                        r.h->deliv = r.end;
                        if (r.eof)
                                r.h->eof_deliv = true;
                        half_pump(lp, r.h);
                }
                conn_unref(lp, c);
        }
}

/* When the loop must next look at this link: the first record's delivery,
 * or the moment the clock falls within burst_ns of real time again. */
uint64_t link_next_event(const struct link *l) {
        uint64_t t = NS_FOREVER;

        if (l->len)
                t = l->fifo[l->head].due;
        if (!list_empty(&l->active))
                t = MIN(t, l->vt > l->burst_ns ? l->vt - l->burst_ns : 0);
        return t;
}

/* The half's connection is closing: leave the round robin. Its records
 * stay in the FIFO until due (they hold a reference). */
void link_forget(struct half *h) {
        list_del(&h->active);
}
