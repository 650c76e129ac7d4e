/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Range planning (chunkstore/coalesce.h): which chunks of a pack become
 * one range read, by pack, adjacency, gap and size; in pack order (pull,
 * export) and in a given order (repack); and around a demanded chunk
 * (blockd's scheduler).
 */
#undef NDEBUG
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>

#include "chunkstore/coalesce.h"

#define CS (64u << 10)

/* 8 chunks in pack 0, back to back, 2 more in pack 1. */
static struct blkindex *two_packs(void) {
        struct blkindex *x;

        assert(blkindex_new(10 * (uint64_t) CS, CS, 2, 10, &x) == 0);
        for (uint32_t k = 0; k < 10; k++)
                x->chunks[k] = (struct blkindex_chunk) { .pack = k < 8 ? 0 : 1, .offset = (uint64_t) (k % 8) * CS,
                                                         .stored_len = CS, .raw_len = CS };
        return x;
}

static void test_plan(void) {
        struct blkindex *x = two_packs();
        struct coalesce_range *v;
        uint32_t n, wanted[] = { 5, 0, 1, 2, 4, 7, 6 };
        const struct coalesce_limits tight = { .range_max = 3 * CS, .gap_max = 0 };
        const struct coalesce_limits gappy = { .range_max = 16 * CS, .gap_max = CS };

        coalesce_sort(x, wanted, 7);
        for (uint32_t i = 0; i < 7; i++)
                assert(i == 0 || x->chunks[wanted[i]].offset > x->chunks[wanted[i - 1]].offset);
        /* 0 1 2 | 4 5 6 | 7: at most 3 chunks, no gaps. */
        assert(coalesce_plan(x, wanted, 7, &tight, &v, &n) == 0);
        assert(n == 3);
        assert(v[0].off == 0 && v[0].len == 3 * CS && v[0].first == 0 && v[0].n == 3);
        assert(v[1].off == 4 * CS && v[1].len == 3 * CS && v[1].n == 3);
        assert(v[2].off == 7 * CS && v[2].n == 1);
        free(v);
        /* Through the one-chunk gap (chunk 3): one range. */
        assert(coalesce_plan(x, wanted, 7, &gappy, &v, &n) == 0);
        assert(n == 1 && v[0].off == 0 && v[0].len == 8 * CS && v[0].n == 7);
        free(v);
        /* A two-chunk gap is more than gap_max: two ranges. */
        uint32_t gap2[] = { 0, 3 };
        assert(coalesce_plan(x, gap2, 2, &gappy, &v, &n) == 0 && n == 2);
        free(v);
        /* Packs never mix, even end to end. */
        uint32_t two[] = { 7, 8 };
        assert(coalesce_plan(x, two, 2, &gappy, &v, &n) == 0 && n == 2);
        assert(v[0].pack == 0 && v[1].pack == 1 && v[1].first == 1);
        free(v);
        /* A chunk larger than the bound is a range of its own. */
        assert(!coalesce_extends(&(struct coalesce_range) { .pack = 0, .off = 0, .len = CS }, &x->chunks[1],
                                 &(struct coalesce_limits) { .range_max = CS }));
        x->chunks[9].stored_len = 4 * CS;
        uint32_t big[] = { 8, 9 };
        assert(coalesce_plan(x, big, 2, &tight, &v, &n) == 0 && n == 2 && v[1].len == 4 * CS);
        free(v);
        /* Nothing to plan: no ranges, and still something to free. */
        assert(coalesce_plan(x, wanted, 0, &tight, &v, &n) == 0 && n == 0);
        free(v);
        blkindex_free(x);
}

/* In a given order (repack keeps its new order): only chunks that follow
 * each other in the list and in the pack share a range; a step back
 * starts a new one. */
static void test_plan_ordered(void) {
        struct blkindex *x = two_packs();
        struct coalesce_range *v;
        uint32_t n, order[] = { 4, 5, 6, 0, 1, 9, 2 };
        const struct coalesce_limits l = { .range_max = 16 * CS, .gap_max = 0 };

        assert(coalesce_plan(x, order, 7, &l, &v, &n) == 0);
        assert(n == 4);
        assert(v[0].off == 4 * CS && v[0].n == 3 && v[0].first == 0);
        assert(v[1].off == 0 && v[1].n == 2 && v[1].first == 3);
        assert(v[2].pack == 1 && v[2].n == 1 && v[2].first == 5);
        assert(v[3].off == 2 * CS && v[3].n == 1 && v[3].first == 6);
        free(v);
        blkindex_free(x);
}

static void test_around(void) {
        /* Around a head: forward first, then backward, only adjacent. */
        struct coalesce_extent e[] = {
                { 0, 0, 10 }, { 0, 10, 10 }, { 0, 20, 10 }, { 0, 30, 10 }, { 0, 50, 10 }, { 1, 60, 10 },
        };
        size_t lo, hi;

        coalesce_around(e, 6, 1, 1000, &lo, &hi);
        assert(lo == 0 && hi == 4);
        coalesce_around(e, 6, 1, 20, &lo, &hi);
        assert(lo == 1 && hi == 3);     /* forward wins */
        coalesce_around(e, 6, 3, 30, &lo, &hi);
        assert(lo == 1 && hi == 4);     /* nothing ahead: backward */
        coalesce_around(e, 6, 4, 1000, &lo, &hi);
        assert(lo == 4 && hi == 5);     /* a gap, then another pack */
        coalesce_around(e, 6, 2, 5, &lo, &hi);
        assert(lo == 2 && hi == 3);     /* the head alone, even past the bound */
}

int main(void) {
        test_plan();
        test_plan_ordered();
        test_around();
        printf("ok\n");
        return 0;
}
