/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Planning range requests over an image's packs: chunks that are adjacent
 * in one pack become one range read (a request costs a round trip; a
 * range costs only its bytes), bounded in size so that one request never
 * holds the link for long. Shared by `hocus-blk pull` (a whole list of
 * chunks at once, coalesce_plan) and blockd's fetch scheduler (a few
 * chunks at a time around the one a reader waits for, coalesce_around).
 *
 * Pure functions: no I/O, no locking; only coalesce_plan allocates.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "blkindex.h"

struct coalesce_limits {
        uint64_t range_max;     /* bytes in one range (a larger chunk is a range of its own) */
        uint64_t gap_max;       /* bytes of unwanted chunks a range may read through */
};

/* A planned range: bytes [off, off+len) of pack, covering the chunks
 * sorted[first .. first+n). */
struct coalesce_range {
        uint32_t pack;
        uint64_t off, len;
        uint32_t first, n;
};

/* Sort unique chunk numbers of x by (pack, offset). */
void coalesce_sort(const struct blkindex *x, uint32_t *chunks, size_t n);

/* Whether chunk a lies before chunk b in the packs (pack, then offset). */
bool coalesce_chunk_before(const struct blkindex_chunk *a, const struct blkindex_chunk *b);

/* The pack order of an index's unique chunks: built once per image
 * (blockd builds it at attach and lends it to readahead and the
 * scheduler's profile gaps), immutable after, read without a lock. */
struct coalesce_order {
        uint32_t *order;        /* unique chunks by (pack, offset); NULL: the table is in that
                                 * order already (most indexes: a push appends chunks to its
                                 * packs in table order) */
        uint32_t *rank;         /* each unique chunk's position in order (NULL: likewise) */
        uint64_t *first;        /* each unique chunk's first logical chunk (UINT64_MAX: none uses it) */
};

/* Sort x's unique chunks by coalesce_sort when they are not in pack order
 * already. 0 or -ENOMEM. */
int coalesce_order_new(const struct blkindex *x, struct coalesce_order **ret);
void coalesce_order_free(struct coalesce_order *o);

static inline uint64_t coalesce_rank(const struct coalesce_order *o, uint32_t k) {
        return o->rank ? o->rank[k] : k;
}

static inline uint32_t coalesce_at_rank(const struct coalesce_order *o, uint64_t r) {
        return o->order ? o->order[r] : (uint32_t) r;
}

/* Whether chunk c can be appended to range rg: same pack, after its end,
 * the gap at most gap_max and the whole at most range_max. */
bool coalesce_extends(const struct coalesce_range *rg, const struct blkindex_chunk *c,
                      const struct coalesce_limits *l);

/* Coalesce chunks sorted by coalesce_sort into ranges. *ret is malloc'd
 * (at least one element, so it can be freed); 0 or -ENOMEM. */
int coalesce_plan(const struct blkindex *x, const uint32_t *sorted, uint32_t n, const struct coalesce_limits *l,
                  struct coalesce_range **ret, uint32_t *ret_n);

/* A stored extent, for coalesce_around. */
struct coalesce_extent {
        uint32_t pack;
        uint64_t off;
        uint64_t len;
};

/*
 * v[0..n) sorted by (pack, off), v[head] the extent that must be read:
 * the longest run of exactly adjacent extents (no gaps, one pack) that
 * contains head and stays within range_max, growing forward first (reads
 * tend to go forward), then backward. Returns the run as [*ret_lo, *ret_hi).
 */
void coalesce_around(const struct coalesce_extent *v, size_t n, size_t head, uint64_t range_max, size_t *ret_lo,
                     size_t *ret_hi);
