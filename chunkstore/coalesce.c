/* SPDX-License-Identifier: Apache-2.0 */
#include "coalesce.h"

#include <errno.h>
#include <stdlib.h>

#include "common/cleanup.h"

static int cmp_chunk(const void *a, const void *b, void *u) {
        const struct blkindex *x = u;
        const struct blkindex_chunk *ca = &x->chunks[*(const uint32_t *) a], *cb = &x->chunks[*(const uint32_t *) b];

        if (ca->pack != cb->pack)
                return ca->pack < cb->pack ? -1 : 1;
        return ca->offset < cb->offset ? -1 : ca->offset > cb->offset;
}

void coalesce_sort(const struct blkindex *x, uint32_t *chunks, size_t n) {
        qsort_r(chunks, n, sizeof *chunks, cmp_chunk, (void *) x);
}

bool coalesce_chunk_before(const struct blkindex_chunk *a, const struct blkindex_chunk *b) {
        return a->pack < b->pack || (a->pack == b->pack && a->offset < b->offset);
}

int coalesce_order_new(const struct blkindex *x, struct coalesce_order **ret) {
        _cleanup_free_ struct coalesce_order *o = calloc(1, sizeof *o);
        bool sorted = true;

        if (!o)
                return -ENOMEM;
        o->first = malloc(MAX(x->n_chunks, 1u) * sizeof *o->first);
        if (!o->first)
                return -ENOMEM;
        for (uint32_t k = 0; k < x->n_chunks; k++)
                o->first[k] = UINT64_MAX;
        for (uint64_t i = x->n_map; i-- > 0;)
                if (x->map[i] != BLKINDEX_ZERO)
                        o->first[x->map[i]] = i;
        for (uint32_t k = 1; k < x->n_chunks && sorted; k++)
                sorted = !coalesce_chunk_before(&x->chunks[k], &x->chunks[k - 1]);
        if (!sorted) {
                o->order = malloc((size_t) x->n_chunks * sizeof *o->order);
                o->rank = malloc((size_t) x->n_chunks * sizeof *o->rank);
                if (!o->order || !o->rank) {
                        coalesce_order_free(TAKE_PTR(o));
                        return -ENOMEM;
                }
                for (uint32_t k = 0; k < x->n_chunks; k++)
                        o->order[k] = k;
                coalesce_sort(x, o->order, x->n_chunks);
                for (uint32_t r = 0; r < x->n_chunks; r++)
                        o->rank[o->order[r]] = r;
        }
        *ret = TAKE_PTR(o);
        return 0;
}

void coalesce_order_free(struct coalesce_order *o) {
        if (!o)
                return;
        free(o->order);
        free(o->rank);
        free(o->first);
        free(o);
}

bool coalesce_extends(const struct coalesce_range *rg, const struct blkindex_chunk *c,
                      const struct coalesce_limits *l) {
        uint64_t end = rg->off + rg->len;

        return rg->pack == c->pack && c->offset >= end && c->offset - end <= l->gap_max &&
               c->offset + c->stored_len - rg->off <= l->range_max;
}

int coalesce_plan(const struct blkindex *x, const uint32_t *sorted, uint32_t n, const struct coalesce_limits *l,
                  struct coalesce_range **ret, uint32_t *ret_n) {
        struct coalesce_range *v = calloc(MAX(n, 1u), sizeof *v);
        uint32_t m = 0;

        if (!v)
                return -ENOMEM;
        for (uint32_t i = 0; i < n; i++) {
                const struct blkindex_chunk *c = &x->chunks[sorted[i]];

                if (m && coalesce_extends(&v[m - 1], c, l)) {
                        v[m - 1].len = c->offset + c->stored_len - v[m - 1].off;
                        v[m - 1].n++;
                        continue;
                }
                v[m++] = (struct coalesce_range) { .pack = c->pack, .off = c->offset, .len = c->stored_len, .first = i, .n = 1 };
        }
        *ret = v;
        *ret_n = m;
        return 0;
}

static inline bool adjacent(const struct coalesce_extent *a, const struct coalesce_extent *b) {
        return a->pack == b->pack && a->off + a->len == b->off;
}

void coalesce_around(const struct coalesce_extent *v, size_t n, size_t head, uint64_t range_max, size_t *ret_lo,
                     size_t *ret_hi) {
        size_t lo = head, hi = head + 1;
        uint64_t len = v[head].len;

        while (hi < n && adjacent(&v[hi - 1], &v[hi]) && len + v[hi].len <= range_max)
                len += v[hi++].len;
        while (lo > 0 && adjacent(&v[lo - 1], &v[lo]) && len + v[lo - 1].len <= range_max)
                len += v[--lo].len;
        *ret_lo = lo;
        *ret_hi = hi;
}
