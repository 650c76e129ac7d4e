/* SPDX-License-Identifier: Apache-2.0 */
#include "readahead.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "chunkstore/coalesce.h"
#include "common/cleanup.h"

/* A stream, in logical chunks and in pack ranks (positions in pack order). */
struct ra_stream {
        bool live;
        uint64_t lo;                    /* the first chunk of its last miss (or marker hit) */
        uint64_t next;                  /* the chunk after the stream's last read */
        uint64_t end;                   /* the last chunk read ahead (next - 1: none) */
        uint64_t rlo, rnext, rend;      /* the same in pack ranks */
        bool pack;                      /* it last read ahead in pack order (else logical) */
        uint64_t mark;                  /* a hit on a chunk it read ahead at or after this (in
                                         * its order, up to its end) reads on: UINT64_MAX none */
        unsigned window;                /* chunks to read ahead at its next miss or marker hit */
        uint64_t used_at;               /* LRU tick */
};

struct ra_region {
        uint64_t region;                /* logical chunk / RA_REGION */
        unsigned misses;                /* 0: the slot is free */
        bool fetched;                   /* its cluster was read ahead */
        uint64_t used_at;
};

struct readahead {
        pthread_mutex_t lock;
        const struct blkindex *x;
        const struct coalesce_order *po; /* the pack order (borrowed) */
        uint64_t *ahead;                /* atomic bits per unique chunk: read ahead, not read yet */
        struct ra_stream st[RA_STREAMS];
        struct ra_region rg[RA_REGIONS];
        uint32_t cl_chunks[RA_MAX];     /* what the last cluster fetched (unique chunks) */
        unsigned cl_n;
        unsigned cl_window;             /* chunks a cluster reads ahead, 0: backed off */
        unsigned cl_skipped;            /* clusters skipped while backed off */
        uint64_t tick;
        uint64_t issued, used, async;   /* atomic */
};

int readahead_new(const struct blkindex *x, const struct coalesce_order *po, struct readahead **ret) {
        struct readahead *ra = calloc(1, sizeof *ra);

        if (!ra)
                return -ENOMEM;
        pthread_mutex_init(&ra->lock, NULL);
        ra->x = x;
        ra->po = po;
        ra->cl_window = RA_REGION;
        ra->ahead = calloc(DIV_ROUND_UP(x->n_chunks, 64) + 1, sizeof(uint64_t));
        if (!ra->ahead) {
                readahead_free(ra);
                return -ENOMEM;
        }
        *ret = ra;
        return 0;
}

void readahead_free(struct readahead *ra) {
        if (!ra)
                return;
        pthread_mutex_destroy(&ra->lock);
        free(ra->ahead);
        free(ra);
}

static uint64_t rank_of(const struct readahead *ra, uint32_t k) {
        return coalesce_rank(ra->po, k);
}

static uint32_t at_rank(const struct readahead *ra, uint64_t r) {
        return coalesce_at_rank(ra->po, r);
}

static bool is_ahead(struct readahead *ra, uint32_t k) {
        return __atomic_load_n(&ra->ahead[k / 64], __ATOMIC_RELAXED) & (UINT64_C(1) << (k % 64));
}

/* Chunks read ahead in logical [from, to) that nobody read. */
static unsigned unread_logical(struct readahead *ra, uint64_t from, uint64_t to) {
        unsigned n = 0;

        for (uint64_t c = from; c < to && c < ra->x->n_map; c++)
                if (ra->x->map[c] != BLKINDEX_ZERO)
                        n += is_ahead(ra, ra->x->map[c]);
        return n;
}

/* The same in pack ranks [from, to). */
static unsigned unread_ranks(struct readahead *ra, uint64_t from, uint64_t to) {
        unsigned n = 0;

        for (uint64_t q = from; q < to && q < ra->x->n_chunks; q++)
                n += is_ahead(ra, at_rank(ra, q));
        return n;
}

/* The last pack rank of a read of chunks i..last whose first chunk has
 * rank r: the highest of its chunks' ranks that follow r as closely as
 * the read is long (a read of chunks stored in its order ends there;
 * a duplicate stored earlier, or a chunk stored far away, does not). */
static uint64_t read_rank_end(const struct readahead *ra, uint64_t i, uint64_t last, uint64_t r) {
        uint64_t rhi = r;

        for (uint64_t c = i + 1; c <= last && c <= i + RA_MAX; c++) {
                uint32_t k = ra->x->map[c];
                uint64_t rc;

                if (k == BLKINDEX_ZERO)
                        continue;
                rc = rank_of(ra, k);
                if (rc > rhi && rc <= r + (last - i))
                        rhi = rc;
        }
        return rhi;
}

/* The last cluster: was what it fetched read? Then the window grows
 * back, else it shrinks. Caller holds the lock. */
static void cluster_judge(struct readahead *ra) {
        unsigned unread = 0;

        if (!ra->cl_n)
                return;
        for (unsigned b = 0; b < ra->cl_n; b++)
                unread += is_ahead(ra, ra->cl_chunks[b]);
        if (unread * 2 > ra->cl_n)
                ra->cl_window /= 2;
        else
                ra->cl_window = ra->cl_window ? MIN(ra->cl_window * 2, (unsigned) RA_REGION) : RA_MIN;
        ra->cl_n = 0;
}

/* A miss that continues no stream: count it for its region, and the
 * region's RA_CLUSTER_MISSES-th fetches the rest of the region, nearest
 * first. Caller holds the lock. */
static void cluster_miss(struct readahead *ra, uint64_t i, uint64_t room, struct ra_plan *plan) {
        const struct blkindex *x = ra->x;
        const uint64_t reg = i / RA_REGION, lo = reg * RA_REGION, hi = MIN(lo + RA_REGION, x->n_map);
        struct ra_region *g = NULL, *lru = &ra->rg[0];
        uint64_t n_max;

        for (unsigned m = 0; m < RA_REGIONS; m++) {
                struct ra_region *t = &ra->rg[m];

                if (t->misses && t->region == reg) {
                        g = t;
                        break;
                }
                if (!t->misses || (lru->misses && t->used_at < lru->used_at))
                        lru = t;
        }
        if (!g) {
                g = lru;
                *g = (struct ra_region) { .region = reg };
        }
        g->misses++;
        g->used_at = ra->tick;
        if (g->fetched || g->misses < RA_CLUSTER_MISSES || !room)
                return;
        cluster_judge(ra);
        g->fetched = true;
        n_max = ra->cl_window;
        if (!n_max) {
                /* Backed off: now and then one small cluster, to see
                 * whether the pattern came back. */
                if (++ra->cl_skipped < RA_CLUSTER_PROBE)
                        return;
                ra->cl_skipped = 0;
                n_max = RA_MIN;
        }
        n_max = MIN(n_max, room);
        for (uint64_t d = 1; d < RA_REGION && plan->n < n_max; d++) {
                if (i + d < hi && x->map[i + d] != BLKINDEX_ZERO)
                        plan->chunks[plan->n++] = i + d;
                if (plan->n < n_max && i >= lo + d && x->map[i - d] != BLKINDEX_ZERO)
                        plan->chunks[plan->n++] = i - d;
        }
        plan->cluster = plan->n > 0;
}

/* Stream s continues at a read of chunks i..last (pack ranks r..rhi) in
 * pack order (in_pack) or logical order: its window doubles, or halves
 * when more than slack of the chunks it read ahead before the read went
 * unread, and what the window reaches past what it asked for already
 * goes into plan (room chunks at most); its marker moves to the first
 * chunk of the last half of what it has read ahead of the read. Caller
 * holds the lock. */
static void stream_advance(struct readahead *ra, struct ra_stream *s, bool in_pack, uint64_t i, uint64_t last,
                           uint64_t r, uint64_t rhi, uint64_t room, unsigned slack, struct ra_plan *plan) {
        const struct blkindex *x = ra->x;
        /* Skipped what it read ahead: the pattern is not this
         * sequential; else the window worked (or was too small). */
        unsigned unread = in_pack ? unread_ranks(ra, s->rnext, MIN(r, s->rend + 1))
                                  : unread_logical(ra, s->next, MIN(i, s->end + 1));
        uint64_t ahead, from, to;

        if (unread > slack)
                s->window /= 2;
        else
                s->window = s->window ? MIN(s->window * 2, (unsigned) RA_MAX) : RA_MIN;
        ahead = MIN((uint64_t) s->window, room);
        if (in_pack) {
                /* The next stored chunks, each by the first logical
                 * chunk that uses it. */
                for (uint64_t q = MAX(rhi, s->rend) + 1; q <= rhi + ahead && q < x->n_chunks; q++) {
                        uint64_t c = ra->po->first[at_rank(ra, q)];

                        if (c != UINT64_MAX)
                                plan->chunks[plan->n++] = c;
                }
                s->rend = MAX(s->rend, rhi + ahead);
                s->end = last;
                from = rhi + 1;
                to = s->rend;
        } else {
                for (uint64_t c = MAX(last, s->end) + 1; c <= last + ahead && c < x->n_map; c++)
                        if (x->map[c] != BLKINDEX_ZERO)
                                plan->chunks[plan->n++] = c;
                s->end = MAX(s->end, last + ahead);
                s->rend = rhi;
                from = last + 1;
                to = s->end;
        }
        s->pack = in_pack;
        s->mark = to >= from ? from + (to - from + 1) / 2 : UINT64_MAX;
        s->lo = i;
        s->next = last + 1;
        s->rlo = r;
        s->rnext = rhi + 1;
        s->used_at = ra->tick;
}

/* Clear chunk i's bit: true when it was read ahead and not read yet. */
static bool take_ahead(struct readahead *ra, uint64_t i) {
        uint32_t k = ra->x->map[i];
        uint64_t bit, *w;

        if (k == BLKINDEX_ZERO)
                return false;
        bit = UINT64_C(1) << (k % 64);
        w = &ra->ahead[k / 64];
        if ((__atomic_load_n(w, __ATOMIC_RELAXED) & bit) && (__atomic_fetch_and(w, ~bit, __ATOMIC_RELAXED) & bit)) {
                __atomic_fetch_add(&ra->used, 1, __ATOMIC_RELAXED);
                return true;
        }
        return false;
}

void readahead_miss(struct readahead *ra, uint64_t i, uint64_t last, uint64_t room, struct ra_plan *plan) {
        const struct blkindex *x = ra->x;
        struct ra_stream *s = NULL, *lru = &ra->st[0];
        const uint64_t r = rank_of(ra, x->map[i]), rhi = read_rank_end(ra, i, last, r);
        bool in_pack = false;

        plan->n = 0;
        plan->cluster = false;
        take_ahead(ra, i);      /* read ahead, still in flight: used all the same */
        pthread_mutex_lock(&ra->lock);
        ra->tick++;
        for (unsigned m = 0; m < RA_STREAMS; m++) {
                struct ra_stream *t = &ra->st[m];

                if (t->live && i >= t->lo && i < t->next) {
                        /* A later chunk of the read that missed: already
                         * asked for. */
                        t->used_at = ra->tick;
                        pthread_mutex_unlock(&ra->lock);
                        return;
                }
                if (t->live && r >= t->rnext && r <= t->rend + 1 + RA_GAP) {
                        s = t;
                        in_pack = true;
                        break;
                }
                if (t->live && i >= t->next && i <= t->end + 1 + RA_GAP) {
                        s = t;
                        break;
                }
                if (!t->live || t->used_at < lru->used_at)
                        lru = t;
        }
        if (s) {
                stream_advance(ra, s, in_pack, i, last, r, rhi, room, 0, plan);
        } else {
                s = lru;
                *s = (struct ra_stream) { .live = true, .end = last, .rend = rhi, .mark = UINT64_MAX };
                cluster_miss(ra, i, room, plan);
                s->lo = i;
                s->next = last + 1;
                s->rlo = r;
                s->rnext = rhi + 1;
                s->used_at = ra->tick;
        }
        pthread_mutex_unlock(&ra->lock);
}

/* The stream whose marker a hit on chunk i (pack rank r) reached: at or
 * after the marker, up to what the stream read ahead. Caller holds the lock. */
static struct ra_stream *marked(struct readahead *ra, uint64_t i, uint64_t r) {
        for (unsigned m = 0; m < RA_STREAMS; m++) {
                struct ra_stream *t = &ra->st[m];

                if (!t->live || t->mark == UINT64_MAX)
                        continue;
                if (t->pack ? r >= t->mark && r <= t->rend : i >= t->mark && i <= t->end)
                        return t;
        }
        return NULL;
}

bool readahead_hit(struct readahead *ra, uint64_t i) {
        bool at_mark;

        if (!take_ahead(ra, i))
                return false;
        pthread_mutex_lock(&ra->lock);
        at_mark = marked(ra, i, rank_of(ra, ra->x->map[i])) != NULL;
        pthread_mutex_unlock(&ra->lock);
        return at_mark;
}

void readahead_async(struct readahead *ra, uint64_t i, uint64_t room, struct ra_plan *plan) {
        const uint64_t r = rank_of(ra, ra->x->map[i]);
        struct ra_stream *s;

        plan->n = 0;
        plan->cluster = false;
        if (!room)
                return;         /* the marker stays: a later hit tries again */
        pthread_mutex_lock(&ra->lock);
        s = marked(ra, i, r);
        if (s) {
                ra->tick++;
                stream_advance(ra, s, s->pack, i, i, r, r, room, RA_HIT_SLACK, plan);
                if (plan->n)
                        __atomic_fetch_add(&ra->async, 1, __ATOMIC_RELAXED);
        }
        pthread_mutex_unlock(&ra->lock);
}

void readahead_fetched(struct readahead *ra, const struct ra_plan *plan, uint64_t fetched) {
        if (plan->cluster)
                pthread_mutex_lock(&ra->lock);
        for (unsigned b = 0; b < plan->n && b < 64; b++) {
                uint32_t k = ra->x->map[plan->chunks[b]];
                uint64_t bit = UINT64_C(1) << (k % 64);

                if (!(fetched & (UINT64_C(1) << b)) || k == BLKINDEX_ZERO)
                        continue;
                if (!(__atomic_fetch_or(&ra->ahead[k / 64], bit, __ATOMIC_RELAXED) & bit))
                        __atomic_fetch_add(&ra->issued, 1, __ATOMIC_RELAXED);
                if (plan->cluster && ra->cl_n < RA_MAX)
                        ra->cl_chunks[ra->cl_n++] = k;
        }
        if (plan->cluster)
                pthread_mutex_unlock(&ra->lock);
}

void readahead_counts(struct readahead *ra, uint64_t *ret_issued, uint64_t *ret_used, uint64_t *ret_async) {
        *ret_issued = __atomic_load_n(&ra->issued, __ATOMIC_RELAXED);
        *ret_used = __atomic_load_n(&ra->used, __ATOMIC_RELAXED);
        *ret_async = __atomic_load_n(&ra->async, __ATOMIC_RELAXED);
}
