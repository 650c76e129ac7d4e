/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The dispatcher thread: decides which range request starts next.
 *
 * Each round, in this order: a demand job ready to start (coalesced with
 * the other queued demand jobs adjacent to it in its pack), else one
 * step of a profile cursor, else one step of a background cursor, else
 * one step of surveying the store for exports whose background is off;
 * else sleep until something changes (a reader queues, a range ends, a
 * list arrives) or a timer is due (a retry's backoff, the rate cap, the
 * hold after demand). A cursor step scans a bounded number of positions
 * and store entries without the lock, so a demand job waits for at most
 * one such step.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"
#include "chunkstore/coalesce.h"
#include "sched-internal.h"

#define HOLD_MIN_NS (10 * 1000000ull)   /* background waits this long after demand, at least */
#define HOLD_MAX_NS (100 * 1000000ull)
#define PASS_PAUSE_NS (NS)              /* a pass that found nothing it could fetch */
#define CACHE_RECHECK_NS (5 * NS)
#define BG_BACKOFF_MAX_SHIFT 4          /* 1 s doubling to 16 s */
#define SETTLE_QUIET_NS (250 * 1000000ull) /* the stream begins after reads paused this long, */
#define SETTLE_MAX_NS (5 * NS)          /* or this long after it was let start */

/*
 * The background scavenger's range size and bound for now (s->bg_range,
 * s->bg_budget; returns whether the bound is held to one range): ranges
 * of what the link carries in SCHED_BG_QUEUE_NS at its capacity (within
 * SCHED_BG_RANGE_MIN .. SCHED_PREFETCH_RANGE_MAX, and the rate cap's
 * bg_range_max); the bound probes for room (bdp_scavenger_budget) up to
 * the capacity x (a range's latency + SCHED_BG_QUEUE_NS), at most
 * SCHED_BG_BDP_MAX, and is one range while demand is recent or the
 * round trip rose above its floor.
 */
static bool scavenger_fill(struct sched *s, uint64_t now, bool demand_active) {
        bool demand = demand_active || (s->last_demand_ns && now < s->last_demand_ns + SCHED_DEMAND_RECENT_NS);
        uint64_t range = (uint64_t) (bdp_capacity(&s->bdp) * (double) SCHED_BG_QUEUE_NS / 1e9), max;

        range = MIN(MAX(MIN(range, (uint64_t) SCHED_PREFETCH_RANGE_MAX), (uint64_t) SCHED_BG_RANGE_MIN), s->bg_range_max);
        max = bdp_scavenger_max(&s->bdp, range, (double) SCHED_BG_QUEUE_NS / 1e9, SCHED_BG_BDP_MAX);
        s->bg_range = range;
        s->bg_budget = bdp_scavenger_budget(&s->bdp, now, range, max, demand);
        return demand || bdp_delayed(&s->bdp, now);
}

static void gate_fill(struct sched *s, uint64_t now, struct sched_gate *g, uint64_t *wake, bool *ret_shrunk) {
        unsigned ready = 0;
        uint64_t hold = (uint64_t) (2 * bdp_rtt(&s->bdp) * 1e9);

        for (struct sched_job *j = s->dq_head; j; j = j->qnext) {
                if (j->not_before <= now)
                        ready++;
                else
                        *wake = MIN(*wake, j->not_before);
        }
        *g = (struct sched_gate) {
                .demand_ready = ready,
                .demand_active = s->dq_n + s->inflight[SCHED_DEMAND] + s->waiting,
                .last_demand_ns = s->last_demand_ns,
                .hold_ns = MIN(MAX(hold, HOLD_MIN_NS), HOLD_MAX_NS),
                .nondemand_inflight = s->inflight[SCHED_PROFILE] + s->inflight[SCHED_BACKGROUND],
                .profile_inflight = s->inflight[SCHED_PROFILE],
                .window = bdp_window(&s->bdp),
                .background_on = s->o.background,
        };
        *ret_shrunk = scavenger_fill(s, now, g->demand_active > 0);
        g->bg_inflight_bytes = s->bg_net_bytes;
        g->bg_budget = s->bg_budget;
}

static struct sched_range *range_new(struct sched *s, struct sched_export *se, enum sched_class cls, unsigned n) {
        struct sched_range *rg = calloc(1, sizeof *rg + n * sizeof rg->jobs[0]);

        if (!rg)
                return NULL;
        rg->s = s;
        rg->se = se;
        rg->cls = (uint8_t) cls;
        rg->n = n;
        return rg;
}

/* Set the range's extent from its jobs (in offset order). */
static void range_extent(struct sched_range *rg) {
        const struct blkindex *x = rg->se->x;
        const struct blkindex_chunk *a = &x->chunks[rg->jobs[0]->k], *b = &x->chunks[rg->jobs[rg->n - 1]->k];

        rg->pack = a->pack;
        rg->off = a->offset;
        rg->len = b->offset + b->stored_len - a->offset;
}

/*
 * Start a range whose jobs are in flight already. Called and returns
 * with the lock held; drops it to allocate and submit. A submission that
 * fails goes to the decoders as a failed range, like any other failure.
 */
static void launch(struct sched *s, struct sched_range *rg) {
        struct sched_export *se = rg->se;
        uint64_t now = now_ns();
        int64_t id;

        range_extent(rg);
        se->inflight++;
        se->net_inflight++;
        se->busy++;
        if (rg->cls != SCHED_DEMAND)
                se->inflight_nondemand++;
        rg->bg_ahead = s->bg_net_bytes;
        rg->bg_budget = s->bg_budget;
        if (rg->cls == SCHED_DEMAND)
                s->st.demand_bg_ahead_max = MAX(s->st.demand_bg_ahead_max, s->bg_net_bytes);
        if (rg->cls == SCHED_BACKGROUND) {
                s->bg_net_bytes += rg->len;
                se->bg_inflight++;
                s->bg_pending += (uint64_t) rg->n * se->x->chunk_size;
                tbucket_take(&s->tb, rg->len, now);
        }
        s->inflight[rg->cls]++;
        rg->t0 = now;
        /* The stall clock is read below, without the lock (a pread). */
        bdp_on_send(&s->bdp, now, 0, rg->len, &rg->bs);
        /* Large ranges reuse buffers: a fresh multi-MiB malloc is a fresh
         * mapping, and faulting its pages in costs more than the copy. */
        rg->pooled = rg->len > s->o.range_max / 2 && rg->len <= s->o.range_max;
        if (rg->pooled && s->n_pool)
                rg->buf = s->pool[--s->n_pool];
        pthread_mutex_unlock(&s->lock);

        /* Still the send's: nothing reads it before the range is submitted. */
        rg->bs.stall_ns = cpu_stall_ns(&s->stall, now);
        if (!rg->buf)
                rg->buf = malloc(rg->pooled ? s->o.range_max : rg->len);
        id = rg->buf ? fetcher_submit(se->fetcher, &se->x->packs[rg->pack].digest, rg->off, rg->buf, rg->len,
                                      now + s->o.fetch_timeout_ns, rg->cls == SCHED_DEMAND ? FETCH_DEMAND : 0,
                                      sched_on_fetched, rg)
                     : -ENOMEM;
        if (id < 0)
                sched_on_fetched(rg, (int) id, NULL);

        pthread_mutex_lock(&s->lock);
        se->busy--;
        if (se->removing)
                pthread_cond_broadcast(&s->changed);
}

/* --- Demand --- */

static int cmp_job_offset(const void *a, const void *b, void *u) {
        const struct blkindex *x = u;
        const struct sched_job *ja = *(struct sched_job *const *) a, *jb = *(struct sched_job *const *) b;
        uint64_t oa = x->chunks[ja->k].offset, ob = x->chunks[jb->k].offset;

        return oa < ob ? -1 : oa > ob;
}

/* Start head, with the queued demand jobs of its export that are adjacent
 * to it in its pack. */
static void launch_demand(struct sched *s, struct sched_job *head, uint64_t now) {
        struct sched_export *se = head->se;
        const struct blkindex *x = se->x;
        const uint32_t pack = x->chunks[head->k].pack;
        struct sched_job *cand[SCHED_RANGE_CHUNKS];
        struct coalesce_extent ext[SCHED_RANGE_CHUNKS];
        struct sched_range *rg;
        size_t n = 0, h = 0, lo, hi;

        cand[n++] = head;
        for (struct sched_job *j = s->dq_head; j && n < SCHED_RANGE_CHUNKS; j = j->qnext)
                if (j != head && j->se == se && j->not_before <= now && x->chunks[j->k].pack == pack)
                        cand[n++] = j;
        qsort_r(cand, n, sizeof *cand, cmp_job_offset, (void *) x);
        for (size_t m = 0; m < n; m++) {
                const struct blkindex_chunk *c = &x->chunks[cand[m]->k];
                ext[m] = (struct coalesce_extent) { .pack = c->pack, .off = c->offset, .len = c->stored_len };
                if (cand[m] == head)
                        h = m;
        }
        coalesce_around(ext, n, h, s->o.range_max, &lo, &hi);
        rg = range_new(s, se, SCHED_DEMAND, (unsigned) (hi - lo));
        if (!rg) {
                sched_queue_remove(s, head);
                sched_complete(s, head, -ENOMEM, NULL);
                return;
        }
        for (size_t m = lo; m < hi; m++) {
                struct sched_job *j = cand[m];

                sched_queue_remove(s, j);
                j->inflight = true;
                j->cls = SCHED_DEMAND;
                j->refs++;
                rg->jobs[m - lo] = j;
        }
        launch(s, rg);
}

/* A job a reader waits for first, then the ones nobody waits for (the
 * rest of a read, readahead): a chunk read ahead never delays a read. */
static bool start_demand(struct sched *s, uint64_t now) {
        for (int waited = 1; waited >= 0; waited--)
                for (struct sched_job *j = s->dq_head; j; j = j->qnext) {
                        if ((j->waiters > 0) != waited || j->not_before > now || j->se->removing ||
                            j->se->net_inflight >= j->se->cap)
                                continue;
                        launch_demand(s, j, now);
                        return true;
                }
        return false;
}

/* --- Cursors: profile lists and the background stream --- */

/* The largest range a cursor takes: range_max, SCHED_PREFETCH_RANGE_MAX
 * (so that a demand read overtakes it), the scavenger's for background,
 * and on a slow link what takes an eighth of the fetch timeout, so that a
 * range in flight beside others still ends well before it (one chunk at
 * least). */
static uint64_t cursor_range_max(struct sched *s, enum sched_class cls) {
        uint64_t max = MIN(s->o.range_max, (uint64_t) SCHED_PREFETCH_RANGE_MAX);
        double bw = bdp_bandwidth(&s->bdp);

        /* Background: the scavenger's range, within what its bound has
         * left (one chunk at least: a scan always takes the first). */
        if (cls == SCHED_BACKGROUND)
                max = MIN(s->bg_range, s->bg_budget > s->bg_net_bytes ? s->bg_budget - s->bg_net_bytes : 1);

        if (bw > 0)
                max = MIN(max, MAX((uint64_t) (bw * (double) s->o.fetch_timeout_ns / 8e9), (uint64_t) 64 << 10));
        return max;
}

struct scan {
        unsigned n;
        uint64_t len;                           /* from the first chunk's offset to the last's end */
        uint64_t pos[SCHED_RANGE_CHUNKS];       /* cursor positions (a gap's: the entry after it) */
        uint64_t i[SCHED_RANGE_CHUNKS];         /* logical chunks */
        uint32_t k[SCHED_RANGE_CHUNKS];         /* unique chunks */
        bool gap[SCHED_RANGE_CHUNKS];           /* read through a gap, not the list's */
};

/*
 * A profile range reads through the gap [from, c's offset) of its pack to
 * c, list position p: the missing chunks that lie in it join the range
 * (at position p); local ones are read and dropped. False, sc as it was,
 * when they do not fit or the store lookups of this step run out.
 * Unlocked.
 */
static bool scan_gap(struct sched_export *se, uint64_t from, const struct blkindex_chunk *c, uint64_t p,
                     struct scan *sc, unsigned *checks) {
        uint32_t ks[SCHED_RANGE_CHUNKS];
        const unsigned n0 = sc->n;
        int n = sched_profile_gap_chunks(se, c->pack, from, c->offset, ks, SCHED_RANGE_CHUNKS - 1 - n0);

        if (n < 0)
                return false;
        for (int m = 0; m < n; m++) {
                uint32_t k = ks[m];

                if (sched_is_present(se, k))
                        continue;
                if ((*checks)++ == SCHED_SCAN_CHECKS) {
                        sc->n = n0;
                        return false;
                }
                if (chunkstore_has(se->s->store, &se->x->chunks[k].digest) > 0) {
                        sched_mark_present(se, k);
                        continue;
                }
                sc->pos[sc->n] = p;
                sc->i[sc->n] = se->po->first[k];
                sc->k[sc->n] = k;
                sc->gap[sc->n++] = true;
        }
        return true;
}

/*
 * Scan from position p (unlocked): skip what is zero or local, collect the
 * next run of missing chunks that are adjacent in one pack, or (a profile
 * list) at most gap bytes apart (scan_gap), up to range_max; with !fetch
 * only look (and mark what is local). Returns the position after what
 * was scanned.
 */
static uint64_t scan(struct sched_export *se, const struct sched_pflist *list, uint64_t p, uint64_t end,
                     uint64_t range_max, uint64_t gap, bool fetch, struct scan *sc) {
        const struct blkindex *x = se->x;
        unsigned steps = 0, checks = 0;

        sc->n = 0;
        sc->len = 0;
        while (p < end && steps++ < SCHED_SCAN_STEPS && sc->n < SCHED_RANGE_CHUNKS) {
                uint64_t i = list ? list->v[p] : p;
                const struct blkindex_chunk *c;
                uint32_t k;

                if (i >= x->n_map || (k = x->map[i]) == BLKINDEX_ZERO || sched_is_present(se, k)) {
                        p++;
                        continue;
                }
                c = &x->chunks[k];
                if (sc->n) {
                        const struct blkindex_chunk *first = &x->chunks[sc->k[0]], *last = &x->chunks[sc->k[sc->n - 1]];
                        uint64_t last_end = last->offset + last->stored_len;

                        if (c->pack != last->pack || c->offset < last_end || c->offset - last_end > gap ||
                            c->offset + c->stored_len - first->offset > range_max)
                                break;
                        if (c->offset > last_end && !scan_gap(se, last_end, c, p, sc, &checks))
                                break;
                }
                if (checks++ == SCHED_SCAN_CHECKS)
                        break;
                if (chunkstore_has(se->s->store, &c->digest) > 0) {
                        sched_mark_present(se, k);
                        p++;
                        continue;
                }
                if (fetch) {
                        sc->pos[sc->n] = p;
                        sc->i[sc->n] = i;
                        sc->k[sc->n] = k;
                        sc->gap[sc->n++] = false;
                        sc->len = c->offset + c->stored_len - x->chunks[sc->k[0]].offset;
                }
                p++;
                if (sc->len >= range_max)
                        break;
        }
        /* A gap's chunks without the entry after them: not worth a range. */
        while (sc->n && sc->gap[sc->n - 1])
                sc->n--;
        return p;
}

/* A profile range's chunks read through gaps, and the bytes it reads
 * that none of its chunks needs. */
static void count_gaps(struct sched_export *se, const struct sched_range *rg, const struct scan *sc) {
        const struct blkindex *x = se->x;
        const struct blkindex_chunk *a = &x->chunks[rg->jobs[0]->k], *b = &x->chunks[rg->jobs[rg->n - 1]->k];
        uint64_t need = 0;

        for (unsigned m = 0; m < rg->n; m++) {
                need += x->chunks[rg->jobs[m]->k].stored_len;
                se->st.profile_gap_chunks += sc->gap[m];
        }
        se->st.profile_gap_waste += b->offset + b->stored_len - a->offset - need;
}

/*
 * One step of se's cursor of class cls (SCHED_PROFILE or
 * SCHED_BACKGROUND; !fetch: the survey of an export without background).
 * Returns true when it moved or started a request.
 */
static bool cursor_step(struct sched *s, struct sched_export *se, enum sched_class cls, bool fetch) {
        const bool profile = cls == SCHED_PROFILE;
        struct sched_pflist *list = profile ? se->pf : NULL;
        const uint64_t gen = se->pf_gen, from = profile ? se->pf_pos : se->bg_pos, seq = s->done_seq;
        const uint64_t end = profile ? se->pf_n : se->x->n_map;
        const uint64_t range_max = cursor_range_max(s, cls);
        const uint64_t gap = profile ? sched_profile_gap(bdp_bytes(&s->bdp), s->o.background) : 0;
        uint64_t to, noted = 0, listed = 0;
        struct sched_range *rg;
        struct scan *sc;

        if (from >= end)
                return false;
        sc = malloc(sizeof *sc);
        if (!sc)
                return false;
        if (list)
                list->refs++;
        se->busy++;
        pthread_mutex_unlock(&s->lock);
        to = scan(se, list, from, end, range_max, gap, fetch, sc);
        pthread_mutex_lock(&s->lock);
        se->busy--;
        sched_pflist_put(list);
        if (se->removing) {
                pthread_cond_broadcast(&s->changed);
                free(sc);
                return true;
        }
        if (profile && gen != se->pf_gen) {
                free(sc);
                return true;    /* the list was replaced meanwhile */
        }

        /* A chunk someone fetches already ends the run: the first one is
         * credited when that fetch ends, later ones are scanned again
         * (from the list entry after the gap, for a gap's chunk). So
         * does one stored while we scanned (scanned again: found). */
        for (unsigned m = 0; m < sc->n; m++) {
                const struct digest *d = &se->x->chunks[sc->k[m]].digest;
                struct sched_job *j = sched_job_lookup(s, d);

                if (!j && sched_local_since(se, sc->k[m], seq)) {
                        to = sc->pos[m];
                        sc->n = m;
                        break;
                }
                if (!j)
                        continue;
                if (m == 0) {
                        if (sched_note_add(j, se, sc->k[0], (uint8_t) cls) == 0)
                                noted = 1;
                        to = sc->pos[0] + 1;
                } else {
                        to = sc->pos[m];
                }
                sc->n = m;
                break;
        }
        while (sc->n && sc->gap[sc->n - 1])
                sc->n--;
        for (unsigned m = 0; m < sc->n; m++)
                listed += !sc->gap[m];
        if (profile) {
                /* Positions skipped (zero, local) are done now. */
                se->pf_done += to - from - listed - noted;
                se->pf_pos = to;
        } else {
                se->bg_pos = to;
        }
        if (sc->n) {
                rg = range_new(s, se, cls, sc->n);
                if (!rg) {
                        /* Try again later from the same place. */
                        if (profile)
                                se->pf_pos = sc->pos[0];
                        else
                                se->bg_pos = sc->pos[0];
                        free(sc);
                        return false;
                }
                for (unsigned m = 0; m < sc->n; m++) {
                        struct sched_job *j = sched_job_new(s, se, sc->k[m], sc->i[m], (uint8_t) cls);

                        if (!j) {
                                rg->n = m;
                                break;
                        }
                        j->inflight = true;
                        j->refs++;
                        if (profile && !sc->gap[m]) {
                                j->profile_own = true;
                                j->pf_gen = gen;
                                se->pf_pending++;
                        }
                        rg->jobs[m] = j;
                }
                if (rg->n) {
                        if (profile)
                                count_gaps(se, rg, sc);
                        launch(s, rg);
                } else {
                        free(rg);
                }
        }
        if (profile)
                sched_profile_check_done(se);
        free(sc);
        return true;
}

/* se (or the round robin's n-th export). */
static struct sched_export *nth_export(struct sched *s, unsigned n) {
        struct sched_export *se = s->exports;

        while (se && n--)
                se = se->next;
        return se;
}

/*
 * A put found the store's filesystem full (ENOSPC): the chunks were served
 * from memory, not stored. The store is "full" until it has room again;
 * meanwhile the background stream waits (start_background) instead of
 * fetching what it cannot keep, and a background range's unstored chunks
 * are its next position. Said once per time it fills. Caller holds the
 * lock.
 */
void sched_cache_full(struct sched *s, struct sched_export *se, uint64_t first_unstored, bool background) {
        if (background && first_unstored < se->bg_pos)
                se->bg_pos = first_unstored;
        if (s->cache_full)
                return;
        s->cache_full = true;
        log_warning("Chunk store %s is full (no space left on its filesystem): fetching waits for space; reads are served without storing what they fetch",
                    chunkstore_dir(s->store));
}

/* Whether the store has room for background fetching: the filesystem has
 * room again after it filled (at least two ranges' worth freed: an
 * eviction, a detach, a file deleted), and under --cache-max the stream
 * stops short of the bound, for it never evicts (the image does not fit,
 * so streaming it all would only churn). What the ranges in flight will
 * store counts as used already. */
static bool disk_has_room(struct sched *s) {
        if (!s->cache_full)
                return true;
        if (!chunkstore_room(s->store, 2 * s->bg_range_max))
                return false;
        s->cache_full = false;
        log_info("Chunk store %s has room again: fetching resumes", chunkstore_dir(s->store));
        return true;
}

static bool store_has_room(struct sched *s) {
        uint64_t used, max;

        if (!disk_has_room(s))
                return false;
        chunkstore_usage(s->store, &used, &max);
        return !max || used + s->bg_pending + s->bg_range_max <= max / 10 * 8;
}

static bool start_profile(struct sched *s, const struct sched_gate *g, uint64_t now, uint64_t *wake) {
        if (!s->n_exports || s->backlog >= SCHED_BACKLOG_MAX || !sched_gate_allows(g, SCHED_PROFILE, now, wake))
                return false;

        for (unsigned idx = 0; idx < s->n_exports; idx++) {
                struct sched_export *se = nth_export(s, (s->rr + idx) % s->n_exports);

                if (se->removing || se->pf_pos >= se->pf_n ||
                    se->inflight_nondemand + SCHED_DEMAND_RESERVE >= se->cap)
                        continue;
                /* A prefetch is there to fill the store: a full one
                 * makes it wait, looking for room now and then. */
                if (s->cache_full && now < s->cache_checked_ns + CACHE_RECHECK_NS) {
                        *wake = MIN(*wake, s->cache_checked_ns + CACHE_RECHECK_NS);
                        return false;
                }
                if (!disk_has_room(s)) {
                        s->cache_checked_ns = now;
                        *wake = MIN(*wake, now + CACHE_RECHECK_NS);
                        return false;
                }
                if (cursor_step(s, se, SCHED_PROFILE, true)) {
                        s->rr++;
                        return true;
                }
        }
        return false;
}

/* The end of a background pass over se: done, another pass, or a pause. */
static void pass_end(struct sched *s, struct sched_export *se, uint64_t now, uint64_t *wake) {
        uint64_t hydrated = __atomic_load_n(&se->st.hydrated_chunks, __ATOMIC_RELAXED);
        char a[32], b[32];

        if (hydrated >= se->st.image_chunks) {
                se->bg_state = SCHED_BG_DONE;
                log_info("Export %s: fully hydrated: %s of chunks local, %s fetched in %llu requests (%llu by the background stream) in %.1f s",
                         se->name, format_size(se->st.image_bytes, a, sizeof a),
                         format_size(se->st.bytes[SCHED_DEMAND] + se->st.bytes[SCHED_PROFILE] + se->st.bytes[SCHED_BACKGROUND],
                                     b, sizeof b),
                         (unsigned long long) (se->st.requests[SCHED_DEMAND] + se->st.requests[SCHED_PROFILE] +
                                               se->st.requests[SCHED_BACKGROUND]),
                         (unsigned long long) se->st.requests[SCHED_BACKGROUND], (double) (now - se->t0) / 1e9);
                return;
        }
        /* Missing chunks are being fetched by someone else, or failed:
         * look again, at once if the last pass got somewhere. */
        se->bg_pos = 0;
        if (hydrated == se->bg_pass_start) {
                se->bg_resume_ns = now + PASS_PAUSE_NS;
                *wake = MIN(*wake, se->bg_resume_ns);
        }
        se->bg_pass_start = hydrated;
}

/* Whether se's stream may begin: the start's reads paused for a moment,
 * or it was let start long enough ago. Else *wake gets when to look again. */
static bool settled(struct sched_export *se, uint64_t now, uint64_t *wake) {
        uint64_t last = __atomic_load_n(&se->last_read_ns, __ATOMIC_RELAXED);
        uint64_t until = MIN(last + SETTLE_QUIET_NS, se->bg_start_ns + SETTLE_MAX_NS);

        if (last && now < until) {
                *wake = MIN(*wake, until);
                return false;
        }
        __atomic_store_n(&se->bg_settled, true, __ATOMIC_RELAXED);
        return true;
}

static bool start_background(struct sched *s, const struct sched_gate *g, bool shrunk, uint64_t now,
                             uint64_t *wake) {
        uint64_t at;

        if (!s->n_exports || s->backlog >= SCHED_BACKLOG_MAX)
                return false;
        if (!sched_gate_allows(g, SCHED_BACKGROUND, now, wake)) {
                /* Refused while the bound was held to one range: counted
                 * whatever else refused it (demand in flight is the usual
                 * reason then), so an idle machine counts it as a loaded
                 * one does. */
                if (g->background_on && shrunk)
                        s->st.bg_shrinks++;
                return false;
        }
        at = tbucket_ready_at(&s->tb, now);
        if (at) {
                *wake = MIN(*wake, at);
                return false;
        }
        for (unsigned idx = 0; idx < s->n_exports; idx++) {
                struct sched_export *se = nth_export(s, (s->rr + idx) % s->n_exports);

                if (se->removing || !se->bg_started || se->bg_state == SCHED_BG_OFF || se->bg_state == SCHED_BG_DONE)
                        continue;
                if (!se->bg_settled && !settled(se, now, wake))
                        continue;
                if (se->bg_resume_ns > now) {
                        *wake = MIN(*wake, se->bg_resume_ns);
                        continue;
                }
                if (!store_has_room(s)) {
                        if (se->bg_state != SCHED_BG_CACHE_FULL) {
                                se->st.cache_full_events++;
                                if (!s->cache_full)
                                        log_info("Export %s: background fetching paused: the chunk store is near --cache-max",
                                                 se->name);
                        }
                        se->bg_state = SCHED_BG_CACHE_FULL;
                        se->bg_resume_ns = now + CACHE_RECHECK_NS;
                        *wake = MIN(*wake, se->bg_resume_ns);
                        continue;
                }
                se->bg_state = SCHED_BG_RUNNING;
                if (se->inflight_nondemand + SCHED_DEMAND_RESERVE >= se->cap)
                        continue;
                if (se->bg_pos >= se->x->n_map) {
                        if (!se->bg_inflight)
                                pass_end(s, se, now, wake);
                        continue;
                }
                if (cursor_step(s, se, SCHED_BACKGROUND, true)) {
                        s->rr++;
                        return true;
                }
        }
        return false;
}

/* Exports without background: survey the store once, so that hydration
 * counts what earlier runs left there. */
static bool survey(struct sched *s) {
        for (struct sched_export *se = s->exports; se; se = se->next) {
                if (se->removing || se->bg_state != SCHED_BG_OFF || se->bg_surveyed)
                        continue;
                if (se->bg_pos >= se->x->n_map) {
                        se->bg_surveyed = true;
                        continue;
                }
                return cursor_step(s, se, SCHED_BACKGROUND, false);
        }
        return false;
}

/* Background failed: rewind to what failed, pause, resume by itself.
 * Caller holds the lock. */
void sched_background_failed(struct sched_export *se, uint64_t first_failed, uint64_t now) {
        unsigned shift = MIN(se->bg_failures, (unsigned) BG_BACKOFF_MAX_SHIFT);

        se->bg_failures++;
        se->bg_pos = MIN(se->bg_pos, first_failed);
        se->bg_state = SCHED_BG_BACKOFF;
        se->bg_resume_ns = now + sched_jitter(se->s, NS << shift);
        if (se->bg_failures == 1)
                log_info("Export %s: background fetching failed; retrying in the background", se->name);
}

void *sched_dispatcher_main(void *arg) {
        struct sched *s = arg;

        pthread_mutex_lock(&s->lock);
        while (!s->stopping) {
                uint64_t now = now_ns(), wake = UINT64_MAX;
                struct sched_gate g;
                bool shrunk;

                if (start_demand(s, now))
                        continue;
                gate_fill(s, now, &g, &wake, &shrunk);
                if (start_profile(s, &g, now, &wake))
                        continue;
                if (start_background(s, &g, shrunk, now, &wake))
                        continue;
                if (survey(s))
                        continue;
                if (wake == UINT64_MAX) {
                        pthread_cond_wait(&s->wake, &s->lock);
                } else {
                        struct timespec ts = { .tv_sec = (time_t) (wake / NS), .tv_nsec = (long) (wake % NS) };
                        pthread_cond_timedwait(&s->wake, &s->lock, &ts);
                }
        }
        pthread_mutex_unlock(&s->lock);
        return NULL;
}
