/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Readahead for demand misses: an image never seen (no profile, none
 * learned) should not pay one round trip per chunk when it is read in
 * an order it can guess. This file decides what a miss fetches beyond
 * its read; the scheduler fetches it (sched_demand's ahead list, at
 * demand priority, in the same range requests where the chunks are
 * adjacent in a pack). Three patterns are followed, per export:
 *
 * - Streams (up to RA_STREAMS), in two orders at once: logical (chunk
 *   numbers) and pack order (the order the image's packs store its
 *   unique chunks: logical order without zero and duplicate chunks for
 *   a plain push, the boot profile's order first after a repack). A
 *   miss continues a stream when it falls in [the chunk after its last
 *   read, the last chunk read ahead + 1 + RA_GAP] in either order; it
 *   then widens the stream's window (RA_MIN chunks, doubling up to
 *   RA_MAX), unless chunks read ahead before were skipped unread (then
 *   the window halves), and reads ahead the window in the order it
 *   continued: pack order first (the next stored bytes: one range
 *   request whichever logical chunks they are, so zero and duplicate
 *   chunks do not break a run, and a repacked image read in its boot
 *   order gets readahead with no profile), else the logical chunks
 *   after the read. Only chunks past what the stream asked for already.
 * - Clusters: a miss that continues no stream starts one with no window
 *   (replacing the one used longest ago: random reads read nothing ahead
 *   as streams) and counts for its region (RA_REGION aligned logical
 *   chunks; the RA_REGIONS last used are followed). The RA_CLUSTER_MISSES-th
 *   such miss in a region fetches the region's other chunks, nearest to
 *   the miss first, once per region while it is followed: filesystem
 *   metadata, a directory's files. At most the cluster window (RA_REGION
 *   chunks first); when more than half of what the last cluster fetched
 *   went unread, the window halves, down to none (then every
 *   RA_CLUSTER_PROBE-th cluster tries RA_MIN chunks); when it was read,
 *   the window doubles back.
 * - Anything else reads nothing ahead.
 *
 * Readahead on hits (asynchronous, as Linux's page cache does with its
 * PG_readahead marker): a stream's marker is the first chunk of the last
 * half of what it has read ahead beyond its last read, in the order it
 * read ahead. A read that hits a chunk read ahead (its first read) at or
 * after a stream's marker, up to the stream's end, continues the stream
 * as a miss there would (the window doubles, or halves when more than
 * RA_HIT_SLACK chunks it read ahead before the hit were skipped: reads in
 * flight at once finish out of order), and the next window is fetched
 * with nobody waiting for it (sched_readahead: demand jobs behind any a
 * reader waits for). A sequential reader then finds the next window
 * asked for, or already local, when it gets there, instead of paying a
 * round trip at every window's end. With no room the marker stays, and a
 * later hit tries again.
 *
 * Never more than the link has room for (room: sched_readahead_room,
 * none while demand is queued, at most about two bandwidth-delay
 * products); the scheduler starts a job a reader waits for before the
 * chunks read ahead, so readahead never delays another read's request.
 * Counters: chunks issued (fetched ahead), and used (read later: a bit
 * per unique chunk, cleared by the read of any logical chunk that uses
 * it); issued - used is what was wasted (or not read yet); async: the
 * windows a hit started.
 *
 * Thread-safe: misses take a mutex (they wait for the network anyway),
 * hits test an atomic bit, and take the mutex only when it was set (once
 * per chunk read ahead).
 *
 * The pack order (chunkstore/coalesce.h) is the export's, built once at
 * attach and lent to the scheduler too.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "chunkstore/blkindex.h"
#include "chunkstore/coalesce.h"

#define RA_STREAMS 4
#define RA_MIN 2                /* chunks: a stream's first window */
#define RA_MAX 64               /* chunks read ahead at one miss, at most */
#define RA_GAP 2                /* chunks a stream may skip and still continue */
#define RA_REGION 16            /* chunks: a cluster's region (aligned, logical) */
#define RA_REGIONS 4            /* regions followed (the last used) */
#define RA_CLUSTER_MISSES 3     /* misses in a region that make it a cluster */
#define RA_CLUSTER_PROBE 8      /* clusters skipped while backed off, then one tried */
#define RA_HIT_SLACK 8          /* chunks read ahead a hit may find unread before it */

struct readahead;

/* What a miss fetches beyond its read: logical chunks, none zero. */
struct ra_plan {
        unsigned n;
        bool cluster;           /* a cluster's (its use is judged) */
        uint64_t chunks[RA_MAX];
};

/* x and po (x's pack order) are borrowed and must outlive ra. */
int readahead_new(const struct blkindex *x, const struct coalesce_order *po, struct readahead **ret);
void readahead_free(struct readahead *ra);

/* A read missed chunk i (not zero) and covers chunks up to last (>= i);
 * the link has room for room chunks beyond the read. Fills *ret with
 * what to fetch with i beyond the read (n = 0: nothing). */
void readahead_miss(struct readahead *ra, uint64_t i, uint64_t last, uint64_t room, struct ra_plan *ret);
/* Of plan, the chunks whose bits are set in fetched (bit b: chunks[b])
 * were fetched (the others were local, or asked for already). */
void readahead_fetched(struct readahead *ra, const struct ra_plan *plan, uint64_t fetched);
/* A read found chunk i in the store. True when it was read ahead and is
 * at a stream's marker: then readahead_async says what to fetch next. */
bool readahead_hit(struct readahead *ra, uint64_t i);
/* After readahead_hit(i) said true, with room chunks of room on the link:
 * the marked stream's next window into *ret (n = 0: nothing, the marker
 * stays when room is 0), fetched with nobody waiting; report what was
 * fetched with readahead_fetched. */
void readahead_async(struct readahead *ra, uint64_t i, uint64_t room, struct ra_plan *ret);

void readahead_counts(struct readahead *ra, uint64_t *ret_issued, uint64_t *ret_used, uint64_t *ret_async);
