/* SPDX-License-Identifier: Apache-2.0 */
#include "sched-policy.h"

#include "common/cleanup.h"

const char *sched_class_name(enum sched_class c) {
        switch (c) {
        case SCHED_DEMAND:
                return "demand";
        case SCHED_PROFILE:
                return "profile";
        case SCHED_BACKGROUND:
                return "background";
        default:
                return "?";
        }
}

void tbucket_init(struct tbucket *b, uint64_t rate, uint64_t burst, uint64_t now_ns) {
        *b = (struct tbucket) { .rate = rate, .burst = burst, .tokens = (double) burst, .last_ns = now_ns };
}

static void refill(struct tbucket *b, uint64_t now_ns) {
        if (now_ns > b->last_ns) {
                b->tokens += (double) b->rate * (double) (now_ns - b->last_ns) / 1e9;
                if (b->tokens > (double) b->burst)
                        b->tokens = (double) b->burst;
        }
        b->last_ns = MAX(b->last_ns, now_ns);
}

uint64_t tbucket_ready_at(struct tbucket *b, uint64_t now_ns) {
        if (!b->rate)
                return 0;
        refill(b, now_ns);
        if (b->tokens >= 0)
                return 0;
        /* +1: never ask to be woken before the balance is back. */
        return now_ns + (uint64_t) (-b->tokens * 1e9 / (double) b->rate) + 1;
}

void tbucket_take(struct tbucket *b, uint64_t bytes, uint64_t now_ns) {
        if (!b->rate)
                return;
        refill(b, now_ns);
        b->tokens -= (double) bytes;
}

bool sched_gate_allows(const struct sched_gate *g, enum sched_class c, uint64_t now_ns, uint64_t *ret_wake_ns) {
        uint64_t until;

        switch (c) {
        case SCHED_DEMAND:
                return true;
        case SCHED_PROFILE:
                return g->demand_ready == 0 && g->nondemand_inflight < g->window;
        case SCHED_BACKGROUND:
                if (!g->background_on || g->demand_ready || g->demand_active ||
                    g->nondemand_inflight >= g->window)
                        return false;
                until = g->last_demand_ns + g->hold_ns;
                if (g->last_demand_ns && now_ns < until) {
                        *ret_wake_ns = until;
                        return false;
                }
                return true;
        default:
                return false;
        }
}
