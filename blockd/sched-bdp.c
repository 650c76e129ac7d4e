/* SPDX-License-Identifier: Apache-2.0 */
#include "sched-bdp.h"

#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "common/cleanup.h"

#define BW_SLOT_NS 250000000ull         /* 250 ms */
#define RTT_SLOT_NS 1000000000ull       /* 1 s */
#define RTT_FLOOR_S 20e-6

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

void bdp_on_send(const struct bdp *b, uint64_t now_ns, struct bdp_send *ret) {
        *ret = (struct bdp_send) { .t_ns = now_ns, .delivered = b->delivered };
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

void bdp_on_done(struct bdp *b, const struct bdp_send *s, uint64_t now_ns, uint64_t bytes) {
        uint64_t bw_id = now_ns / BW_SLOT_NS + 1, rtt_id = now_ns / RTT_SLOT_NS + 1;
        double elapsed, rate, rtt, target;

        b->delivered += bytes;
        b->samples++;
        b->avg_request = b->avg_request > 0 ? 0.875 * b->avg_request + 0.125 * (double) bytes : (double) bytes;
        if (now_ns <= s->t_ns)
                return;
        elapsed = (double) (now_ns - s->t_ns) / 1e9;
        rate = (double) (b->delivered - s->delivered) / elapsed;
        slot_add(b->bw, BDP_BW_SLOTS, bw_id, rate, 1);
        b->bw_est = slot_best(b->bw, BDP_BW_SLOTS, bw_id, 1);
        rtt = elapsed - (b->bw_est > 0 ? (double) bytes / b->bw_est : 0);
        slot_add(b->rtt, BDP_RTT_SLOTS, rtt_id, MAX(rtt, RTT_FLOOR_S), -1);
        b->rtt_est = slot_best(b->rtt, BDP_RTT_SLOTS, rtt_id, -1);

        target = b->o.gain * b->bw_est * b->rtt_est / MAX(b->avg_request, 1.0);
        target = ceil(target);
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
