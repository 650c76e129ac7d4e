/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Readahead for demand misses: an image never seen (no profile, none
 * learned) should not pay one round trip per chunk when it is read in
 * order. Per export, up to RA_STREAMS streams of reads are followed:
 *
 * - a miss that continues a stream (it falls in [next, end of the part
 *   read ahead + RA_GAP]: the reader went on in order, or skipped a
 *   little, as reads of one cluster do) widens the stream's window
 *   (RA_MIN chunks, doubling up to RA_MAX), unless chunks it read ahead
 *   before were skipped unread (then the window halves);
 * - any other miss starts a stream with no window, replacing the one
 *   used longest ago: random reads never read ahead.
 *
 * The chunks read ahead are the logical chunks after the read, fetched in
 * the same range request as the miss (sched_demand's n_after: adjacent in
 * a pack, one request, one round trip), and never more than the link has
 * room for (sched_readahead_room: none while demand is queued, at most a
 * bandwidth-delay product). Counters: chunks issued, and used (read later:
 * a bit per logical chunk, cleared by the read that finds it); issued -
 * used is what was wasted (or not read yet).
 *
 * Thread-safe: misses take a mutex (they wait for the network anyway),
 * hits test an atomic bit.
 */
#pragma once

#include <stdint.h>

#define RA_STREAMS 4
#define RA_MIN 2                /* chunks: a stream's first window */
#define RA_MAX 64               /* chunks: sched_demand's n_after looks at 64 at most */
#define RA_GAP 2                /* chunks a stream may skip and still continue */

struct readahead;

int readahead_new(uint64_t n_map, struct readahead **ret);
void readahead_free(struct readahead *ra);

/* A read missed chunk i and covers chunks up to last (>= i); the link has
 * room for room chunks beyond the read. Returns the n_after to fetch with
 * i (at least last - i). */
uint64_t readahead_miss(struct readahead *ra, uint64_t i, uint64_t last, uint64_t room);
/* The miss at i fetched the chunks whose bits are set in fetched (bit b:
 * chunk i + 1 + b); those past last were read ahead. */
void readahead_fetched(struct readahead *ra, uint64_t i, uint64_t last, uint64_t fetched);
/* A read found chunk i in the store. */
void readahead_hit(struct readahead *ra, uint64_t i);

void readahead_counts(struct readahead *ra, uint64_t *ret_issued, uint64_t *ret_used);
