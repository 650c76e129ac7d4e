/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Readers of the fetch scheduler (sched.h): a read that misses queues demand
 * jobs for its chunks, with the chunks readahead.c picks fetched in the same
 * range, and waits for them; a hit at a readahead marker queues the chunks
 * read ahead alone (sched_readahead); sched_readahead_room says how much the
 * link has room for. The state and the lock are sched.c's (sched-internal.h).
 */
#include "sched-internal.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"

#define WARN_INTERVAL_NS (10 * NS)

/* --- Readers --- */

/* Queue a demand job for logical chunk i of se unless one exists, or the
 * chunk was stored since seq (the caller looked in the store before):
 * then *ret is NULL. */
static int demand_queue(struct sched *s, struct sched_export *se, uint64_t i, uint32_t k, uint64_t seq,
                        struct sched_job **ret) {
        struct sched_job *j = sched_job_lookup(s, &se->x->chunks[k].digest);

        if (!j && sched_local_since(se, k, seq)) {
                if (ret)
                        *ret = NULL;
                return 0;
        }
        if (!j) {
                j = sched_job_new(s, se, k, i, SCHED_DEMAND);
                if (!j)
                        return -ENOMEM;
                sched_queue_push(s, j);
        } else if (j->queued && !j->waiters && j->not_before) {
                /* Backing off for readers that gave up: a new reader
                 * gets a prompt attempt (the source may be back). */
                j->not_before = 0;
                j->attempts = 0;
        }
        if (ret)
                *ret = j;
        return 0;
}

/* Whether unique chunk k is worth fetching: not zero, not known to be
 * local, not in the store (one found there is known local from then on).
 * Unlocked (a store lookup). */
static bool missing(struct sched_export *se, uint32_t k) {
        if (k == BLKINDEX_ZERO || sched_is_present(se, k))
                return false;
        if (chunkstore_has(se->s->store, &se->x->chunks[k].digest) > 0) {
                sched_mark_present(se, k);
                return false;
        }
        return true;
}

/* Logical chunks after i worth fetching with it (missing). Unlocked. */
static unsigned collect_hints(struct sched_export *se, uint64_t i, uint64_t n_after, uint64_t *ret, uint32_t *ret_k) {
        const struct blkindex *x = se->x;
        uint64_t end = MIN(i + 1 + MIN(n_after, (uint64_t) SCHED_HINTS_MAX), x->n_map);
        unsigned n = 0;

        for (uint64_t h = i + 1; h < end && n < SCHED_HINTS_MAX; h++) {
                uint32_t k = x->map[h];

                if (!missing(se, k))
                        continue;
                ret[n] = h;
                ret_k[n++] = k;
        }
        return n;
}

/* Of ahead's chunks, those worth fetching too (missing), after the n
 * found among the read's (and not the same unique chunks, nor i's):
 * appended to ret, ret_k; their bits in ahead->fetched. Unlocked. */
static unsigned collect_ahead(struct sched_export *se, uint32_t k_i, struct sched_ahead *ahead, unsigned n,
                              uint64_t *ret, uint32_t *ret_k) {
        const struct blkindex *x = se->x;
        const unsigned n_read = n;

        for (unsigned b = 0; b < ahead->n && b < SCHED_AHEAD_MAX; b++) {
                uint64_t h = ahead->chunks[b];
                uint32_t k;
                bool dup = false;

                if (h >= x->n_map || (k = x->map[h]) == k_i)
                        continue;
                for (unsigned m = 0; m < n_read && !dup; m++)
                        dup = ret_k[m] == k;
                if (dup || !missing(se, k))
                        continue;
                ret[n] = h;
                ret_k[n++] = k;
                ahead->fetched |= UINT64_C(1) << b;
        }
        return n;
}

/* The read's chunk turned out local after all (it arrived as the reader
 * came: a chunk read ahead, in flight a moment ago): what readahead
 * planned with it is fetched all the same, else the stream, which counts
 * it as asked for, would find it missing one chunk at a time. */
static void ahead_alone(struct sched_export *se, struct sched_ahead *ahead) {
        if (ahead && ahead->n)
                (void) sched_readahead(se, ahead);
}

int sched_demand(struct sched_export *se, uint64_t i, uint64_t n_after, struct sched_ahead *ahead,
                 struct sched_buf **ret, uint64_t *ret_hinted) {
        struct sched *s = se->s;
        const uint32_t k = se->x->map[i];
        const struct digest *d = &se->x->chunks[k].digest;
        const uint64_t t0 = now_ns(), deadline = t0 + s->o.fetch_timeout_ns;
        uint64_t hints[SCHED_HINTS_MAX + SCHED_AHEAD_MAX];
        uint32_t hint_k[SCHED_HINTS_MAX + SCHED_AHEAD_MAX];
        struct sched_job *j;
        unsigned n_hints;
        bool full, cold = false;
        uint64_t seq;
        int r, last_err = 0;

        assert(k != BLKINDEX_ZERO);
        if (ahead)
                ahead->fetched = 0;
        if (ret_hinted)
                *ret_hinted = 0;
        sched_mark_needed(se, k);
        pthread_mutex_lock(&s->lock);
        seq = s->done_seq;
        j = sched_job_lookup(s, d);
        /* Verified, its store insert still queued: served from memory. */
        if (!j && s->wb && (*ret = write_behind_get(s->wb, d, true))) {
                pthread_mutex_unlock(&s->lock);
                sched_mark_present(se, k);
                ahead_alone(se, ahead);
                return 0;
        }
        pthread_mutex_unlock(&s->lock);
        if (!j && chunkstore_has(s->store, d) > 0) {
                /* Stored by someone else since the caller looked. */
                sched_mark_present(se, k);
                ahead_alone(se, ahead);
                return -EAGAIN;
        }
        /* Chunks fetched ahead are kept in the store; a full one would
         * drop them, and each would be fetched again when read. */
        full = (n_after || (ahead && ahead->n)) && chunkstore_full(s->store);
        n_hints = n_after && !full ? collect_hints(se, i, n_after, hints, hint_k) : 0;
        if (ret_hinted) {
                *ret_hinted = 0;
                for (unsigned h = 0; h < n_hints; h++)
                        *ret_hinted |= UINT64_C(1) << (hints[h] - i - 1);
        }
        if (ahead && !full)
                n_hints = collect_ahead(se, k, ahead, n_hints, hints, hint_k);

        pthread_mutex_lock(&s->lock);
        for (;;) {
                struct timespec ts;
                uint64_t now;

                if (!sched_job_lookup(s, d) && s->wb && (*ret = write_behind_get(s->wb, d, true))) {
                        pthread_mutex_unlock(&s->lock);
                        ahead_alone(se, ahead);
                        return 0;
                }
                /* Nobody asked for it yet: not read ahead, a whole round trip. */
                cold = cold || !sched_job_lookup(s, d);
                r = demand_queue(s, se, i, k, seq, &j);
                for (unsigned h = 0; r >= 0 && h < n_hints; h++)
                        r = demand_queue(s, se, hints[h], hint_k[h], seq, NULL);
                n_hints = 0;
                if (r < 0)
                        break;
                if (!j) {
                        /* Stored since the caller looked: look again. */
                        pthread_mutex_unlock(&s->lock);
                        return -EAGAIN;
                }
                j->refs++;
                j->waiters++;
                s->waiting++;
                s->last_demand_ns = now_ns();
                pthread_cond_signal(&s->wake);
                ts.tv_sec = (time_t) (deadline / NS);
                ts.tv_nsec = (long) (deadline % NS);
                while (!j->done)
                        if (pthread_cond_timedwait(&j->cond, &s->lock, &ts) == ETIMEDOUT)
                                break;
                now = now_ns();
                j->waiters--;
                s->waiting--;
                s->last_demand_ns = now;
                if (!s->waiting)
                        pthread_cond_signal(&s->wake);  /* background may go after the hold */
                if (!j->done) {
                        r = -ETIMEDOUT;
                        last_err = j->last_err;
                } else {
                        r = j->result;
                        if (r == 0)
                                *ret = sched_buf_ref(j->buf);
                }
                sched_job_unref(j);
                /* The export that fetched it went away: fetch it ourselves. */
                if (r == -ECANCELED && now < deadline && !se->removing) {
                        seq = s->done_seq;
                        continue;
                }
                break;
        }
        se->st.demand_waits++;
        se->st.demand_cold_waits += cold;
        se->st.demand_wait_ns += now_ns() - t0;
        if (r < 0) {
                bool warn = now_ns() - se->warned_ns >= WARN_INTERVAL_NS || !se->warned_ns;
                uint64_t failures = ++se->st.demand_failures;

                if (r == -ETIMEDOUT)
                        s->st.timeouts++;
                if (warn)
                        se->warned_ns = now_ns();
                pthread_mutex_unlock(&s->lock);
                if (r == -ENOMEM)
                        return r;
                /* Who handles it logs it: here, the read fails (its
                 * frontend maps EIO to its wire code); once per 10 s. */
                if (warn) {
                        char hex[DIGEST_HEX_LEN + 1], why[512] = "";

                        /* A timeout after failed attempts: say what the
                         * last one met (a reply cut short, a reset). */
                        if (r == -ETIMEDOUT && last_err)
                                source_strerror(se->src, last_err, why, sizeof why);
                        log_warning("Export %s: read of chunk %llu (%s) failed: %s%s%s (%llu failed reads so far)", se->name,
                                    (unsigned long long) i, digest_to_hex(d, hex),
                                    r == -ETIMEDOUT ? "the source did not deliver it within the fetch timeout"
                                                    : strerror(-r),
                                    why[0] ? "; the last attempt: " : "", why, (unsigned long long) failures);
                }
                return -EIO;
        }
        pthread_mutex_unlock(&s->lock);
        return r;
}

int sched_readahead(struct sched_export *se, struct sched_ahead *ahead) {
        struct sched *s = se->s;
        uint64_t hints[SCHED_AHEAD_MAX];
        uint32_t hint_k[SCHED_AHEAD_MAX];
        unsigned n;
        uint64_t seq;
        int r = 0;

        ahead->fetched = 0;
        /* Chunks fetched ahead are kept in the store: a full one would
         * drop them (as in sched_demand). */
        if (!ahead->n || chunkstore_full(s->store))
                return 0;
        pthread_mutex_lock(&s->lock);
        seq = s->done_seq;
        pthread_mutex_unlock(&s->lock);
        n = collect_ahead(se, BLKINDEX_ZERO, ahead, 0, hints, hint_k);
        if (!n)
                return 0;
        pthread_mutex_lock(&s->lock);
        for (unsigned h = 0; r >= 0 && h < n && !se->removing; h++)
                r = demand_queue(s, se, hints[h], hint_k[h], seq, NULL);
        pthread_cond_signal(&s->wake);
        pthread_mutex_unlock(&s->lock);
        return r;
}

uint64_t sched_readahead_room(struct sched_export *se) {
        struct sched *s = se->s;
        unsigned inflight = 0;
        double bytes = 0;
        bool room;

        pthread_mutex_lock(&s->lock);
        for (int c = 0; c < _SCHED_CLASS_MAX; c++)
                inflight += s->inflight[c];
        room = !s->dq_n && !se->removing && inflight < bdp_window(&s->bdp);
        if (room)
                bytes = 2 * bdp_bandwidth(&s->bdp) * bdp_rtt(&s->bdp);
        pthread_mutex_unlock(&s->lock);
        if (!room)
                return 0;
        /* An idle link has room for one range at least: its bandwidth
         * estimate is only what the reads asked of it so far. */
        bytes = MAX(bytes, (double) s->o.range_max);
        return MAX((uint64_t) bytes / se->x->chunk_size, (uint64_t) 1);
}
