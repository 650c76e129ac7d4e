/* SPDX-License-Identifier: Apache-2.0 */
/* The fetch scheduler's boot-profile lists (sched.h): set, located in
 * the packs, cancelled, and done when every entry is local; and the
 * chunks that lie in a gap between two of the list's chunks, for profile
 * ranges that read through it (sched_profile_gap in sched-policy.h),
 * found in the export's pack order (sched_export_add). */
#include "sched-internal.h"

#include <stdlib.h>
#include <string.h>

#include "chunkstore/coalesce.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"

void sched_pflist_put(struct sched_pflist *l) {
        if (l && --l->refs == 0)
                free(l);
}

/* Log the end of a profile list once. Caller holds the lock. */
void sched_profile_check_done(struct sched_export *se) {
        char sz[32];

        if (se->pf_logged || !se->pf_n || se->pf_pos < se->pf_n || se->pf_pending)
                return;
        se->pf_logged = true;
        log_info("Export %s: prefetch done: %llu of %zu chunks, %llu fetched (%llu of them in gaps read through, %s in %llu requests) in %.2f s",
                 se->name, (unsigned long long) MIN(se->pf_done, (uint64_t) se->pf_n), se->pf_n,
                 (unsigned long long) se->st.chunks[SCHED_PROFILE], (unsigned long long) se->st.profile_gap_chunks,
                 format_size(se->st.bytes[SCHED_PROFILE], sz, sizeof sz),
                 (unsigned long long) se->st.requests[SCHED_PROFILE], (double) (now_ns() - se->pf_t0) / 1e9);
}

/* Where logical chunk i of se's image lies; its stored length, 0 if none. */
static uint64_t profile_locate(uint64_t i, uint32_t *pack, uint64_t *offset, void *u) {
        const struct blkindex *x = ((struct sched_export *) u)->x;
        const struct blkindex_chunk *c;

        if (i >= x->n_map || x->map[i] == BLKINDEX_ZERO)
                return 0;
        c = &x->chunks[x->map[i]];
        *pack = c->pack;
        *offset = c->offset;
        return c->stored_len;
}

int sched_profile_gap_chunks(const struct sched_export *se, uint32_t pack, uint64_t from, uint64_t to, uint32_t *out,
                             unsigned max) {
        const struct blkindex *x = se->x;
        const struct blkindex_chunk key = { .pack = pack, .offset = from };
        uint32_t lo = 0, hi = x->n_chunks;
        unsigned n = 0;

        /* The first chunk at or after (pack, from). */
        while (lo < hi) {
                uint32_t mid = lo + (hi - lo) / 2;

                if (coalesce_chunk_before(&x->chunks[coalesce_at_rank(se->po, mid)], &key))
                        lo = mid + 1;
                else
                        hi = mid;
        }
        for (uint32_t r = lo; r < x->n_chunks; r++) {
                uint32_t k = coalesce_at_rank(se->po, r);
                const struct blkindex_chunk *c = &x->chunks[k];

                if (c->pack != pack || c->offset >= to)
                        break;
                if (c->offset + c->stored_len > to || se->po->first[k] == UINT64_MAX)
                        continue;       /* overlaps the next chunk; or no logical chunk uses it */
                if (n == max)
                        return -1;
                out[n++] = k;
        }
        return (int) n;
}

void sched_profile_free(struct sched_export *se) {
        sched_pflist_put(se->pf);
}

int sched_profile_set(struct sched_export *se, const uint64_t *chunks, size_t n) {
        struct sched *s = se->s;
        struct sched_pflist *l = malloc(sizeof *l + MAX(n, (size_t) 1) * sizeof l->v[0]);
        int r;

        if (!l)
                return -ENOMEM;
        l->refs = 1;
        l->n = n;
        if (n)
                memcpy(l->v, chunks, n * sizeof *chunks);
        r = sched_profile_batch(l->v, n, s->o.profile_batch, sched_profile_gap(UINT64_MAX, s->o.background),
                                profile_locate, se);
        if (r < 0) {
                free(l);
                return r;
        }
        pthread_mutex_lock(&s->lock);
        sched_pflist_put(se->pf);
        se->pf = l;
        se->pf_n = n;
        se->pf_pos = 0;
        se->pf_done = 0;
        se->pf_pending = 0;
        se->pf_gen++;
        se->pf_t0 = now_ns();
        se->pf_logged = false;
        pthread_cond_signal(&s->wake);
        pthread_mutex_unlock(&s->lock);
        return 0;
}

void sched_profile_cancel(struct sched_export *se) {
        struct sched *s;

        if (!se)
                return;
        s = se->s;
        pthread_mutex_lock(&s->lock);
        se->pf_n = se->pf_pos;
        se->pf_pending = 0;
        se->pf_gen++;
        se->pf_logged = true;
        pthread_mutex_unlock(&s->lock);
}
