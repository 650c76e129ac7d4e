/* SPDX-License-Identifier: Apache-2.0 */
#include "sched-bdp.h"

#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "common/cleanup.h"

#define BW_SLOT_NS 250000000ull         /* 250 ms */
#define TP_SLOT_NS 50000000ull          /* 50 ms */
#define RTT_SLOT_NS 1000000000ull       /* 1 s (and the capacity's and lone-request rate's slots) */
#define RTT_FLOOR_S 20e-6
#define BDP_DELAY_MIN_S 2e-3            /* queueing below this is timer and scheduling noise */
#define DELAY_HOLD_RTTS 8
#define DELAY_HOLD_MIN_NS 20000000ull

void bdp_init(struct bdp *b, const struct bdp_options *o) {
        memset(b, 0, sizeof *b);
        if (o)
                b->o = *o;
        if (!b->o.min_window)
                b->o.min_window = 2;
        if (!b->o.max_window)
                b->o.max_window = 64;
        if (b->o.max_window < b->o.min_window)
                b->o.max_window = b->o.min_window;
        if (!b->o.initial_window)
                b->o.initial_window = 8;
        if (b->o.gain <= 0)
                b->o.gain = 2.0;
        b->window = MIN(MAX(b->o.initial_window, b->o.min_window), b->o.max_window);
}

void bdp_on_send(struct bdp *b, uint64_t now_ns, uint64_t stall_ns, uint64_t bytes, struct bdp_send *ret) {
        b->sent += bytes;
        *ret = (struct bdp_send) {
                .t_ns = now_ns, .stall_ns = stall_ns, .ahead = b->inflight, .sent = b->sent, .bytes = bytes
        };
        if (!b->first_ns)
                b->first_ns = now_ns;
        b->inflight += bytes;
}

/* Fold v into the slot for time slot id: max (sign 1) or min (sign -1). */
static void slot_add(struct bdp_slot *v, unsigned n, uint64_t id, double x, int sign) {
        struct bdp_slot *s = &v[id % n];

        if (s->id != id)
                *s = (struct bdp_slot) { .id = id, .v = x };
        else if (sign > 0 ? x > s->v : x < s->v)
                s->v = x;
}

/* The max or min over slots no older than n slots before id. */
static double slot_best(const struct bdp_slot *v, unsigned n, uint64_t id, int sign) {
        double best = 0;
        bool any = false;

        for (unsigned i = 0; i < n; i++) {
                if (!v[i].id || v[i].id + n <= id)
                        continue;
                if (!any || (sign > 0 ? v[i].v > best : v[i].v < best))
                        best = v[i].v;
                any = true;
        }
        return best;
}

/* Count bytes completed now; the throughput of the last second. */
static double throughput(struct bdp *b, uint64_t now_ns, uint64_t bytes) {
        uint64_t id = now_ns / TP_SLOT_NS + 1, start, sum = 0;
        struct bdp_slot *s = &b->tp[id % BDP_TP_SLOTS];

        if (s->id != id)
                *s = (struct bdp_slot) { .id = id };
        s->v += (double) bytes;
        for (unsigned i = 0; i < BDP_TP_SLOTS; i++)
                if (b->tp[i].id && b->tp[i].id + BDP_TP_SLOTS > id)
                        sum += (uint64_t) b->tp[i].v;
        start = (id > BDP_TP_SLOTS ? id - BDP_TP_SLOTS : 0) * TP_SLOT_NS;
        start = MAX(start, b->first_ns);
        return now_ns > start ? (double) sum / ((double) (now_ns - start) / 1e9) : 0;
}

/* Latency that neither the round trip, its own transfer at the rate of a
 * request alone (the bandwidth until there is one), nor the bytes that
 * shared the link with the request (ahead of it, sent during its
 * lifetime) at the link's rate explain, beyond the tolerance: a queue (a
 * delay), unless the CPU stall during its lifetime explains it (forgiven). */
static void delay_check(struct bdp *b, const struct bdp_send *s, uint64_t now_ns, uint64_t stall_ns, double elapsed) {
        double excess, stall = stall_ns > s->stall_ns ? (double) (stall_ns - s->stall_ns) / 1e9 : 0;
        double tolerance = MAX(b->rtt_est, BDP_DELAY_MIN_S);
        double own = (double) s->bytes / (b->stream_est > 0 ? b->stream_est : MAX(b->bw_est, 1.0));

        if (b->rtt_est <= 0 || b->bw_est <= 0)
                return;
        excess = elapsed - (b->rtt_est + own + (double) (s->ahead + (b->sent - s->sent)) / b->bw_est);
        if (excess <= tolerance)
                return;
        if (excess - stall <= tolerance) {
                b->forgiven++;
                return;
        }
        b->delayed_ns = now_ns;
        b->delays++;
}

void bdp_on_done(struct bdp *b, const struct bdp_send *s, uint64_t now_ns, uint64_t stall_ns, bool ok) {
        uint64_t bw_id = now_ns / BW_SLOT_NS + 1, rtt_id = now_ns / RTT_SLOT_NS + 1;
        double elapsed, target, tp, x;

        b->inflight -= MIN(b->inflight, s->bytes);
        if (!ok)
                return;
        b->samples++;
        b->avg_request = b->avg_request > 0 ? 0.875 * b->avg_request + 0.125 * (double) s->bytes : (double) s->bytes;
        if (now_ns <= s->t_ns)
                return;
        elapsed = (double) (now_ns - s->t_ns) / 1e9;
        tp = throughput(b, now_ns, s->bytes);
        slot_add(b->bw, BDP_BW_SLOTS, bw_id, tp, 1);
        slot_add(b->cap, BDP_CAP_SLOTS, rtt_id, tp, 1);
        if (s->ahead + (b->sent - s->sent) <= MAX(b->o.min_window, 2u) * s->bytes) {
                slot_add(b->rtt, BDP_RTT_SLOTS, rtt_id, MAX(elapsed, RTT_FLOOR_S), -1);
                if (s->bytes >= BDP_STREAM_MIN)
                        slot_add(b->stream, BDP_RTT_SLOTS, rtt_id, (double) s->bytes / elapsed, 1);
        }
        delay_check(b, s, now_ns, stall_ns, elapsed);
        b->bw_est = slot_best(b->bw, BDP_BW_SLOTS, bw_id, 1);
        b->rtt_est = slot_best(b->rtt, BDP_RTT_SLOTS, rtt_id, -1);
        /* Held when their filters empty: a link kept busy gives no lone
         * request, a quiet one no throughput. */
        if ((x = slot_best(b->stream, BDP_RTT_SLOTS, rtt_id, 1)) > 0)
                b->stream_est = x;
        if ((x = slot_best(b->cap, BDP_CAP_SLOTS, rtt_id, 1)) > 0)
                b->cap_est = x;
        if (b->rtt_est > 0)
                b->rtt_held = b->rtt_est;
        else
                b->rtt_est = b->rtt_held;
        if (b->rtt_est <= 0) {
                b->window = b->o.min_window;
                return;
        }
        target = ceil(b->o.gain * b->bw_est * b->rtt_est / MAX(b->avg_request, 1.0));
        if (target < b->o.min_window)
                target = b->o.min_window;
        if (target > b->o.max_window)
                target = b->o.max_window;
        b->window = (unsigned) target;
}

unsigned bdp_window(const struct bdp *b) {
        return b->window;
}

double bdp_bandwidth(const struct bdp *b) {
        return b->bw_est;
}

double bdp_rtt(const struct bdp *b) {
        return b->rtt_est;
}

bool bdp_delayed(const struct bdp *b, uint64_t now_ns) {
        uint64_t hold = MAX((uint64_t) (DELAY_HOLD_RTTS * b->rtt_est * 1e9), DELAY_HOLD_MIN_NS);

        return b->delayed_ns && now_ns < b->delayed_ns + hold;
}

uint64_t bdp_bytes(const struct bdp *b) {
        double bdp = b->bw_est * b->rtt_est;

        /* The round trip counts a request's transfer (or two): take off
         * one average request, half of it at most (an underestimated
         * bandwidth must not take it to nothing). */
        return (uint64_t) MAX(bdp - b->avg_request, bdp / 2);
}

double bdp_capacity(const struct bdp *b) {
        /* A request alone got stream_est: the link carries that much at
         * least, however little the scavenger has asked of it. */
        return MAX(b->cap_est, b->stream_est);
}

uint64_t bdp_scavenger_max(const struct bdp *b, uint64_t range, double queue_s, uint64_t max_bytes) {
        double alone = b->stream_est > 0 ? MAX(b->rtt_est, (double) range / b->stream_est) : b->rtt_est;
        double bytes = bdp_capacity(b) * (alone + queue_s);

        return MAX(range, MIN((uint64_t) bytes, max_bytes));
}

uint64_t bdp_scavenger_budget(struct bdp *b, uint64_t now_ns, uint64_t range, uint64_t max, bool demand) {
        bool delayed = bdp_delayed(b, now_ns);

        if (delayed && b->sc_cut_ns != b->delayed_ns) {
                b->sc_cut_ns = b->delayed_ns;
                b->sc_thresh = MAX(b->sc_budget / 2, 2 * range);
        }
        if (demand || delayed)
                b->sc_budget = range;
        else
                b->sc_budget = MIN(MAX(b->sc_budget, range), MAX(max, range));
        return b->sc_budget;
}

void bdp_scavenger_on_done(struct bdp *b, uint64_t now_ns, uint64_t bytes, uint64_t ahead, uint64_t budget,
                           uint64_t range, bool ok) {
        uint64_t cur = MAX(b->sc_budget, range);

        if (!ok || bdp_delayed(b, now_ns) || ahead + bytes + range <= budget)
                return;
        if (!b->sc_thresh || cur < b->sc_thresh)
                b->sc_budget = cur + bytes;
        else
                b->sc_budget = cur + MAX((uint64_t) ((double) range * (double) bytes / (double) cur), 1);
}
