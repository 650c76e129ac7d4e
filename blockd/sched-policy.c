/* SPDX-License-Identifier: Apache-2.0 */
#include "sched-policy.h"

#include <errno.h>
#include <stdlib.h>

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
                return g->demand_ready == 0 && g->profile_inflight < g->window;
        case SCHED_BACKGROUND:
                if (!g->background_on || g->demand_ready || g->demand_active || g->profile_inflight >= g->window ||
                    (g->bg_budget ? g->bg_inflight_bytes >= g->bg_budget : g->nondemand_inflight >= g->window))
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

uint64_t sched_profile_gap(uint64_t bdp_bytes, bool background) {
        uint64_t gap = bdp_bytes ? MIN(MAX(bdp_bytes, (uint64_t) SCHED_PROFILE_GAP_MIN), (uint64_t) SCHED_PROFILE_GAP_MAX)
                                 : SCHED_PROFILE_GAP_UNKNOWN;

        return background ? gap : MIN(gap, (uint64_t) SCHED_PROFILE_GAP_TINY);
}

struct pf_entry {
        uint32_t pack;
        uint64_t offset, len;
        size_t pos;             /* in the list */
        size_t first;           /* the first position of its run */
        uint64_t i;
};

static int pf_cmp_location(const void *a, const void *b) {
        const struct pf_entry *x = a, *y = b;

        if (x->pack != y->pack)
                return x->pack < y->pack ? -1 : 1;
        if (x->offset != y->offset)
                return x->offset < y->offset ? -1 : 1;
        return x->pos < y->pos ? -1 : x->pos > y->pos;
}

static int pf_cmp_run(const void *a, const void *b) {
        const struct pf_entry *x = a, *y = b;

        if (x->first != y->first)
                return x->first < y->first ? -1 : 1;
        return pf_cmp_location(a, b);
}

static bool pf_repeat(const struct pf_entry *e, size_t p) {
        return p > 0 && e[p].len && e[p].pack == e[p - 1].pack && e[p].offset == e[p - 1].offset;
}

/* Whether b starts at most gap bytes after a ends, in a's pack. */
static bool pf_near(const struct pf_entry *a, const struct pf_entry *b, uint64_t gap) {
        uint64_t end = a->offset + a->len;

        return b->pack == a->pack && b->offset >= end && b->offset - end <= gap;
}

/*
 * Order one batch e[0..n) into v: the runs of chunks that lie in a pack
 * at most gap bytes apart, each in pack order, the runs by the first
 * position any of their chunks has in the list; then the entries with
 * nothing to fetch; then the repeats of a chunk (which would cut a run
 * in two).
 */
static void pf_sort_batch(struct pf_entry *e, size_t n, uint64_t gap, uint64_t *v) {
        size_t out = 0, run = 0;

        qsort(e, n, sizeof *e, pf_cmp_location);
        for (size_t p = 0; p <= n; p++) {
                size_t first = SIZE_MAX;

                if (p < n && p > run && e[p].len && (pf_repeat(e, p) || pf_near(&e[p - 1], &e[p], gap)))
                        continue;
                /* e[run..p) is one run (or one entry without data). */
                for (size_t q = run; q < p; q++)
                        first = e[q].pos < first ? e[q].pos : first;
                for (size_t q = run; q < p; q++)
                        e[q].first = e[q].len ? first : SIZE_MAX;
                run = p;
        }
        /* Repeats sort with their run, then are taken out of it. */
        qsort(e, n, sizeof *e, pf_cmp_run);
        for (size_t p = 0; p < n; p++)
                if (!pf_repeat(e, p))
                        v[out++] = e[p].i;
        for (size_t p = 0; p < n; p++)
                if (pf_repeat(e, p))
                        v[out++] = e[p].i;
}

int sched_profile_batch(uint64_t *v, size_t n, uint64_t batch, uint64_t gap,
                        uint64_t (*locate)(uint64_t i, uint32_t *pack, uint64_t *offset, void *u), void *u) {
        _cleanup_free_ struct pf_entry *e = NULL;
        size_t start = 0;
        uint64_t bytes = 0;

        if (n < 2 || batch == 0)
                return 0;
        e = malloc(n * sizeof *e);
        if (!e)
                return -ENOMEM;
        for (size_t p = 0; p < n; p++) {
                uint64_t len = locate(v[p], &e[p].pack, &e[p].offset, u);

                if (!len) {
                        e[p].pack = UINT32_MAX;
                        e[p].offset = UINT64_MAX;
                }
                e[p].len = len;
                e[p].pos = p;
                e[p].i = v[p];
                bytes += len;
                if (bytes >= batch || p == n - 1) {
                        pf_sort_batch(e + start, p + 1 - start, gap, v + start);
                        start = p + 1;
                        bytes = 0;
                }
        }
        return 0;
}
