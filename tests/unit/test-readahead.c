/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Readahead decisions (blockd/readahead.h), over in-memory indexes and a
 * simulated reader: a chunk read ahead is local at once (as if its fetch
 * were instant), a miss is one request (the chunk and its plan), and (with
 * async) a hit at a stream's marker fetches the next window with nobody
 * waiting. Counts, not times: misses (round trips), what was read ahead,
 * what was used.
 */
#undef NDEBUG
#include <assert.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blockd/readahead.h"
#include "chunkstore/blkindex.h"
#include "chunkstore/coalesce.h"

#define CS (256u << 10)
#define N 512                   /* logical chunks */

struct sim {
        struct blkindex *x;
        struct coalesce_order *po;
        struct readahead *ra;
        bool local[N];          /* per unique chunk */
        unsigned misses;        /* requests */
        unsigned fetched_ahead;
        uint64_t room;
        bool pack_runs;         /* assert every plan is one run in the pack after the miss */
        bool async;             /* hits at a marker read ahead (as export.c does) */
        unsigned async_plans;
};

/*
 * An index of N logical chunks: every zero_every-th zero (0: none), the
 * others unique in logical order; pack_pos[k] the position of unique
 * chunk k in the one pack (NULL: k), so the table is out of pack order
 * when it is a permutation (as after a repack).
 */
static void sim_new(struct sim *m, unsigned zero_every, const uint32_t *pack_pos) {
        uint32_t n = 0;

        memset(m, 0, sizeof *m);
        for (unsigned i = 0; i < N; i++)
                n += !(zero_every && i % zero_every == zero_every - 1);
        assert(blkindex_new((uint64_t) N * CS, CS, 1, n, &m->x) == 0);
        n = 0;
        for (unsigned i = 0; i < N; i++) {
                if (zero_every && i % zero_every == zero_every - 1) {
                        m->x->map[i] = BLKINDEX_ZERO;
                        continue;
                }
                m->x->chunks[n] = (struct blkindex_chunk) {
                        .offset = (uint64_t) (pack_pos ? pack_pos[n] : n) * CS,
                        .stored_len = CS,
                        .raw_len = CS,
                };
                m->x->chunks[n].digest.b[0] = (uint8_t) n;
                m->x->chunks[n].digest.b[1] = (uint8_t) (n >> 8);
                m->x->map[i] = n++;
        }
        assert(coalesce_order_new(m->x, &m->po) == 0);
        assert(readahead_new(m->x, m->po, &m->ra) == 0);
        m->room = RA_MAX;
}

static void sim_free(struct sim *m) {
        readahead_free(m->ra);
        coalesce_order_free(m->po);
        blkindex_free(m->x);
}

/* Fetch plan (instantly): what is not local yet. k: the chunk the plan
 * was made with (a miss), BLKINDEX_ZERO for a hit's. */
static void sim_fetch(struct sim *m, uint32_t k, const struct ra_plan *plan) {
        uint64_t fetched = 0;

        assert(plan->n <= RA_MAX && plan->n <= m->room);
        for (unsigned b = 0; b < plan->n; b++) {
                uint32_t kb = m->x->map[plan->chunks[b]];

                assert(kb != BLKINDEX_ZERO && kb != k);
                if (m->pack_runs && k != BLKINDEX_ZERO)
                        assert(m->x->chunks[kb].offset == m->x->chunks[k].offset + (uint64_t) (b + 1) * CS);
                if (!m->local[kb]) {
                        m->local[kb] = true;
                        fetched |= UINT64_C(1) << b;
                        m->fetched_ahead++;
                }
        }
        readahead_fetched(m->ra, plan, fetched);
}

/* A read of logical chunk i. */
static void sim_read(struct sim *m, uint64_t i) {
        uint32_t k = m->x->map[i];
        struct ra_plan plan;

        if (k == BLKINDEX_ZERO)
                return;
        if (m->local[k]) {
                if (readahead_hit(m->ra, i) && m->async) {
                        readahead_async(m->ra, i, m->room, &plan);
                        m->async_plans += plan.n > 0;
                        sim_fetch(m, BLKINDEX_ZERO, &plan);
                }
                return;
        }
        m->misses++;
        readahead_miss(m->ra, i, i, m->room, &plan);
        m->local[k] = true;
        sim_fetch(m, k, &plan);
}

static void counts(struct sim *m, uint64_t *issued, uint64_t *used) {
        uint64_t async;

        readahead_counts(m->ra, issued, used, &async);
        assert(async == m->async_plans);
        assert(*issued == m->fetched_ahead);
        assert(*used <= *issued);
}

/* Logical order over zero chunks: pack order skips them, one run. */
static void test_plain_in_order(void) {
        struct sim m;
        uint64_t issued, used;

        sim_new(&m, 4, NULL);
        m.pack_runs = true;
        for (unsigned i = 0; i < N; i++)
                sim_read(&m, i);
        counts(&m, &issued, &used);
        /* 384 stored chunks: the window doubles to 64, then 64 a miss. */
        assert(m.misses <= 12);
        assert(issued == used);         /* the whole image was read */
        sim_free(&m);
}

/* Packs in another order than the logical one (a repack in a boot's
 * order), read in that order: the stream follows the pack, and each
 * plan is the run of chunks after the miss in the pack. */
static void test_repacked_in_pack_order(void) {
        static uint32_t pos[N], order[N];
        struct sim m;
        uint64_t issued, used;

        /* Unique chunk k at pack position (k * 37) % N: a permutation. */
        for (uint32_t k = 0; k < N; k++) {
                pos[k] = (k * 37) % N;
                order[pos[k]] = k;
        }
        sim_new(&m, 0, pos);
        m.pack_runs = true;
        for (unsigned q = 0; q < 200; q++)
                sim_read(&m, order[q]);
        counts(&m, &issued, &used);
        assert(m.misses <= 10);
        assert(used >= 200 - m.misses && issued - used <= RA_MAX);
        /* Read in logical order instead, from a cold start: the logical
         * stream still works. */
        sim_free(&m);
        sim_new(&m, 0, pos);
        for (unsigned i = 0; i < 200; i++)
                sim_read(&m, i);
        assert(m.misses <= 12);
        sim_free(&m);
}

/* Misses in one region in no order: the third fetches the rest of it. */
static void test_cluster(void) {
        static const unsigned region[16] = { 9, 2, 14, 5, 11, 0, 7, 13, 3, 15, 6, 10, 1, 12, 4, 8 };
        struct sim m;
        uint64_t issued, used;

        sim_new(&m, 0, NULL);
        for (unsigned r = 0; r < 16; r++)
                sim_read(&m, 160 + region[r]);
        counts(&m, &issued, &used);
        assert(m.misses == RA_CLUSTER_MISSES);
        assert(issued == 16 - RA_CLUSTER_MISSES && used == issued);
        /* Another region: the window stays whole (the last one was read). */
        for (unsigned r = 0; r < 16; r++)
                sim_read(&m, 320 + region[r]);
        assert(m.misses == 2 * RA_CLUSTER_MISSES);
        sim_free(&m);
}

/* Clusters whose chunks go unread: the window halves down to none, and
 * then only a small probe now and then. */
static void test_cluster_backoff(void) {
        struct sim m;
        uint64_t issued, used;

        sim_new(&m, 0, NULL);
        /* Three misses per region, 6 chunks apart, nothing else read:
         * each region a cluster, fetched and unread. */
        for (unsigned g = 0; g < 32; g++)
                for (unsigned r = 0; r < 3; r++)
                        sim_read(&m, g * 16 + (r * 6 + g) % 16);
        counts(&m, &issued, &used);
        /* Windows 16, 8, 4, 2, 1, then probes of 2 every 8th (and a few
         * stream windows of 2 where a region's miss follows the last):
         * far below 32 clusters x 13. */
        assert(issued <= 13 + 8 + 4 + 2 + 1 + 4 * RA_MIN + 4 * RA_MIN);
        assert(used == 0);
        sim_free(&m);
}

/* Scattered reads: nothing read ahead; no room: nothing either. */
static void test_random_and_room(void) {
        struct sim m;
        uint64_t issued, used;
        uint64_t c = 7;

        sim_new(&m, 0, NULL);
        for (unsigned r = 0; r < 100; r++) {
                c = (c * 1103515245 + 12345) % 2147483648u;
                sim_read(&m, (c >> 8) % N);
        }
        counts(&m, &issued, &used);
        assert(issued - used <= 16);
        sim_free(&m);

        sim_new(&m, 0, NULL);
        m.room = 0;
        for (unsigned i = 0; i < 64; i++)
                sim_read(&m, i);
        counts(&m, &issued, &used);
        assert(issued == 0 && m.misses == 64);
        sim_free(&m);
}

/* Readahead on hits: a stream read in order, in either order, misses
 * only where it starts (the miss-only runs above: a miss at every
 * window's end); every chunk read ahead is read. */
static void test_async_in_order(void) {
        static uint32_t pos[N], order[N];
        struct sim m;
        uint64_t issued, used;

        sim_new(&m, 4, NULL);
        m.async = true;
        for (unsigned i = 0; i < N; i++)
                sim_read(&m, i);
        counts(&m, &issued, &used);
        /* The first miss starts a stream, the second gives it a window. */
        assert(m.misses == 2);
        assert(m.async_plans >= 6);     /* windows 4, 8, 16, 32, 64, ... */
        assert(issued == used && issued == 384 - 2);
        sim_free(&m);

        /* Repacked, read in pack order. */
        for (uint32_t k = 0; k < N; k++) {
                pos[k] = (k * 37) % N;
                order[pos[k]] = k;
        }
        sim_new(&m, 0, pos);
        m.async = true;
        for (unsigned q = 0; q < 200; q++)
                sim_read(&m, order[q]);
        counts(&m, &issued, &used);
        assert(m.misses == 2);
        assert(used == 200 - 2 && issued - used <= RA_MAX);
        sim_free(&m);
}

/* The marker: hits before it read nothing ahead; at it with no room,
 * nothing, and it stays for the next hit; hits on chunks nobody read
 * ahead, or a second hit on one, read nothing ahead. */
static void test_async_marker(void) {
        struct sim m;
        struct ra_plan plan;

        sim_new(&m, 0, NULL);
        sim_read(&m, 0);
        sim_read(&m, 1);        /* the window: chunks 2 and 3, marker 3 */
        assert(m.fetched_ahead == 2 && m.local[2] && m.local[3] && !m.local[4]);
        assert(!readahead_hit(m.ra, 2));
        assert(readahead_hit(m.ra, 3));
        readahead_async(m.ra, 3, 0, &plan);
        assert(plan.n == 0);
        readahead_async(m.ra, 3, RA_MAX, &plan);
        assert(plan.n == 4 && plan.chunks[0] == 4 && plan.chunks[3] == 7);
        assert(!readahead_hit(m.ra, 3));        /* read once already */
        assert(!readahead_hit(m.ra, 100));      /* never read ahead */
        sim_free(&m);

        /* Scattered reads with readahead on hits: bounded as without. */
        sim_new(&m, 0, NULL);
        m.async = true;
        for (uint64_t r = 0, c = 7; r < 100; r++) {
                c = (c * 1103515245 + 12345) % 2147483648u;
                sim_read(&m, (c >> 8) % N);
        }
        {
                uint64_t issued, used;

                counts(&m, &issued, &used);
                assert(issued - used <= 16);
        }
        sim_free(&m);
}

int main(void) {
        test_plain_in_order();
        test_repacked_in_pack_order();
        test_cluster();
        test_cluster_backoff();
        test_random_and_room();
        test_async_in_order();
        test_async_marker();
        printf("ok\n");
        return 0;
}
