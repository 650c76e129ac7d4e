/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The fetch scheduler's rules, as pure functions of its state (sched.c
 * holds the state and the lock; these only decide):
 *
 * - demand (a reader waits) starts whenever the export's source has a
 *   free request slot, however many prefetch or background requests are
 *   in flight: it never waits behind them;
 * - profile (boot ranges) starts while no demand request is ready to
 *   start, within the bandwidth-delay window (sched-bdp.h);
 * - background starts only when no demand is queued, in flight or
 *   waited for, and none has been for `hold` (a boot reads in bursts:
 *   background must not slip a large range between two of its reads),
 *   within the window, and within its rate cap (a token bucket).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

enum sched_class {
        SCHED_DEMAND,
        SCHED_PROFILE,
        SCHED_BACKGROUND,
        _SCHED_CLASS_MAX,
};

const char *sched_class_name(enum sched_class c);

/* A token bucket in bytes: rate bytes/s, at most burst saved up. A
 * request may start while the balance is not negative; it then takes its
 * whole size (the balance may go below zero), so the long-run rate holds
 * for requests of any size. rate 0: unlimited. */
struct tbucket {
        uint64_t rate, burst;
        double tokens;
        uint64_t last_ns;
};

void tbucket_init(struct tbucket *b, uint64_t rate, uint64_t burst, uint64_t now_ns);
/* 0 if a request may start now, else the time (ns) it may. */
uint64_t tbucket_ready_at(struct tbucket *b, uint64_t now_ns);
void tbucket_take(struct tbucket *b, uint64_t bytes, uint64_t now_ns);

struct sched_gate {
        unsigned demand_ready;          /* demand jobs that could start now */
        unsigned demand_active;         /* demand queued + in flight + readers waiting */
        uint64_t last_demand_ns;        /* when demand was last active */
        uint64_t hold_ns;               /* background waits this long after demand */
        unsigned nondemand_inflight;    /* profile + background requests in flight */
        unsigned window;                /* bdp_window() */
        bool background_on;
};

/*
 * May a request of class c start now (as far as classes, window and hold
 * go; per-source slots and the rate cap are checked by the caller)? When
 * not, and only time stands in the way, *ret_wake_ns gets the time to look
 * again (left alone otherwise).
 */
bool sched_gate_allows(const struct sched_gate *g, enum sched_class c, uint64_t now_ns, uint64_t *ret_wake_ns);
