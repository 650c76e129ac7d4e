/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The fetch scheduler's rules, as pure functions of its state (sched.c
 * holds the state and the lock; these only decide):
 *
 * - demand (a reader waits) starts whenever the export's source has a
 *   free request slot, however many prefetch or background requests are
 *   in flight: it never waits behind them;
 * - profile (boot ranges) starts while no demand request is ready to
 *   start, its requests in flight within the bandwidth-delay window
 *   (sched-bdp.h; background ranges do not count: the scavenger yields);
 * - background starts only when no demand is queued, in flight or
 *   waited for, and none has been for `hold` (a boot reads in bursts:
 *   background must not slip a large range between two of its reads),
 *   while the profile's requests leave room in the window, within its
 *   rate cap (a token bucket), and as a scavenger: while its bytes in
 *   flight are below bg_budget (bdp_scavenger_budget: probing for room
 *   up to the link's capacity x a range's latency and a bounded queue,
 *   one range while demand is recent or the round trip rose above its
 *   floor), so that a demand read shares the link with little. With a
 *   bound, the window does not count its requests (the window's round
 *   trip, that of small requests, leaves the server's time out); without
 *   one (0) it does.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
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
        unsigned profile_inflight;      /* of which profile */
        unsigned window;                /* bdp_window() */
        uint64_t bg_inflight_bytes;     /* background bytes on the network */
        uint64_t bg_budget;             /* the scavenger's bound on them; 0 = none */
        bool background_on;
};

/*
 * May a request of class c start now (as far as classes, window and hold
 * go; per-source slots and the rate cap are checked by the caller)? When
 * not, and only time stands in the way, *ret_wake_ns gets the time to look
 * again (left alone otherwise).
 */
bool sched_gate_allows(const struct sched_gate *g, enum sched_class c, uint64_t now_ns, uint64_t *ret_wake_ns);

/*
 * The gap of stored bytes a profile range may read through to join two
 * chunks of the profile that lie apart in one pack: what the link moves
 * in the time a separate request costs (bdp_bytes: bandwidth x (round
 * trip + the source's per-request time), sched-bdp.h), within
 * SCHED_PROFILE_GAP_MIN..SCHED_PROFILE_GAP_MAX, SCHED_PROFILE_GAP_UNKNOWN
 * before there is an estimate (bdp_bytes 0). The chunks in the gap are
 * the image's: they are fetched, verified and stored like any other (the
 * background stream would fetch them anyway). With the background stream
 * off (the user asked for nothing beyond what is read and the profile)
 * SCHED_PROFILE_GAP_TINY at most. sched_profile_gap(UINT64_MAX, ...) is
 * the largest it can be.
 */
#define SCHED_PROFILE_GAP_MIN (64u << 10)
#define SCHED_PROFILE_GAP_MAX (1u << 20)
#define SCHED_PROFILE_GAP_UNKNOWN (256u << 10)
#define SCHED_PROFILE_GAP_TINY (16u << 10)
uint64_t sched_profile_gap(uint64_t bdp_bytes, bool background);

/*
 * Reorder a profile list (logical chunk numbers, in first-read order) so
 * that chunks close to each other in a pack but apart in the list become
 * one range request, without fetching any chunk later than the list
 * says: in batches of `batch` stored bytes (in list order), each run of
 * the batch's chunks that lie in a pack with at most `gap` bytes between
 * one and the next (0: end to end) is put together in pack order, at the
 * place of its chunk that comes first in the list. Entries with nothing
 * to fetch (locate() returns 0: a zero chunk, out of range) and repeats
 * of a chunk (the same pack and offset again, which would cut a run in
 * two) go to the end of their batch. locate(i) gives chunk i's pack and
 * offset and returns its stored length. batch 0: no change. Returns 0 or
 * -ENOMEM.
 */
int sched_profile_batch(uint64_t *v, size_t n, uint64_t batch, uint64_t gap,
                        uint64_t (*locate)(uint64_t i, uint32_t *pack, uint64_t *offset, void *u), void *u);
