/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The fetch scheduler's API (sched.h): exports come and go, readers wait
 * for chunks (sched-demand.c), profile lists are set, counters are read. Which request
 * starts when is sched-dispatch.c; what happens when it ends is
 * sched-decode.c.
 */
#include "sched-internal.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"

/* --- Small helpers --- */

static void cond_init_mono(pthread_cond_t *c) {
        pthread_condattr_t a;

        pthread_condattr_init(&a);
        pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
        pthread_cond_init(c, &a);
        pthread_condattr_destroy(&a);
}

/* A uniformly spread delay in [d/2, d] (retries of many readers and many
 * hosts do not fall into step). Caller holds the lock. */
uint64_t sched_jitter(struct sched *s, uint64_t d) {
        s->rng ^= s->rng << 13;
        s->rng ^= s->rng >> 7;
        s->rng ^= s->rng << 17;
        return d / 2 + (d > 1 ? s->rng % (d / 2 + 1) : 0);
}

const char *sched_bg_state_name(enum sched_bg_state st) {
        switch (st) {
        case SCHED_BG_OFF:
                return "off";
        case SCHED_BG_RUNNING:
                return "running";
        case SCHED_BG_BACKOFF:
                return "backoff";
        case SCHED_BG_CACHE_FULL:
                return "cache-full";
        case SCHED_BG_DONE:
                return "done";
        }
        return "?";
}

/* --- Chunk buffers --- */

/* Freed chunk buffers, kept for the next decode: a fresh buffer of a
 * chunk's size is an mmap of its own, and decoding into it faulted in
 * every page of it (perf: about an eighth of blockd's CPU in a cold
 * start, and a munmap per chunk). Process-wide, at most BUF_POOL_BYTES. */
#define BUF_POOL_BYTES (8u << 20)
static pthread_mutex_t buf_pool_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sched_buf *buf_pool;
static size_t buf_pool_bytes;

struct sched_buf *sched_buf_new(size_t len) {
        struct sched_buf *b, **p;

        pthread_mutex_lock(&buf_pool_lock);
        /* A free one that fits without wasting more than half of it. */
        for (p = &buf_pool; *p && !((*p)->cap >= len && (*p)->cap / 2 <= len); p = &(*p)->next)
                ;
        b = *p;
        if (b) {
                *p = b->next;
                buf_pool_bytes -= b->cap;
        }
        pthread_mutex_unlock(&buf_pool_lock);
        if (!b) {
                b = malloc(sizeof *b + (len ? len : 1));
                if (!b)
                        return NULL;
                b->cap = len ? len : 1;
        }
        b->refs = 1;
        b->len = len;
        b->next = NULL;
        return b;
}

struct sched_buf *sched_buf_ref(struct sched_buf *b) {
        __atomic_fetch_add(&b->refs, 1, __ATOMIC_RELAXED);
        return b;
}

const void *sched_buf_data(const struct sched_buf *b) {
        return b->data;
}

size_t sched_buf_len(const struct sched_buf *b) {
        return b->len;
}

void sched_buf_put(struct sched_buf *b) {
        if (!b || __atomic_sub_fetch(&b->refs, 1, __ATOMIC_ACQ_REL) != 0)
                return;
        pthread_mutex_lock(&buf_pool_lock);
        if (buf_pool_bytes + b->cap <= BUF_POOL_BYTES) {
                b->next = buf_pool;
                buf_pool = b;
                buf_pool_bytes += b->cap;
                b = NULL;
        }
        pthread_mutex_unlock(&buf_pool_lock);
        free(b);
}

/* --- Presence and working-set bits --- */

static bool bit_set_once(uint64_t *bm, uint32_t k) {
        uint64_t bit = UINT64_C(1) << (k % 64), *w = &bm[k / 64];

        if (__atomic_load_n(w, __ATOMIC_RELAXED) & bit)
                return false;
        return !(__atomic_fetch_or(w, bit, __ATOMIC_RELAXED) & bit);
}

/* Unique chunk k of se is local now. Returns true the first time. */
bool sched_mark_present(struct sched_export *se, uint32_t k) {
        if (!bit_set_once(se->present, k))
                return false;
        __atomic_fetch_add(&se->st.hydrated_bytes, se->x->chunks[k].raw_len, __ATOMIC_RELAXED);
        __atomic_fetch_add(&se->st.hydrated_chunks, 1, __ATOMIC_RELAXED);
        return true;
}

void sched_mark_needed(struct sched_export *se, uint32_t k) {
        if (bit_set_once(se->needed, k))
                __atomic_fetch_add(&se->st.needed_bytes, se->x->chunks[k].raw_len, __ATOMIC_RELAXED);
}

void sched_note_hit(struct sched_export *se, uint32_t k) {
        sched_mark_needed(se, k);
        sched_mark_present(se, k);
}

/* --- Jobs: the digest table and the demand queue (caller holds the lock) --- */

static inline size_t bucket(const struct digest *d) {
        uint64_t h;

        memcpy(&h, d->b, sizeof h);
        return h % SCHED_TABLE_BUCKETS;
}

struct sched_job *sched_job_lookup(struct sched *s, const struct digest *d) {
        for (struct sched_job *j = s->table[bucket(d)]; j; j = j->hnext)
                if (digest_equal(&j->d, d))
                        return j;
        return NULL;
}

/* A new job in the table (the table's reference), neither queued nor in
 * flight yet. NULL on ENOMEM. */
struct sched_job *sched_job_new(struct sched *s, struct sched_export *se, uint32_t k, uint64_t i, uint8_t cls) {
        struct sched_job *j = calloc(1, sizeof *j);
        size_t b;

        if (!j)
                return NULL;
        j->d = se->x->chunks[k].digest;
        j->se = se;
        j->k = k;
        j->i = i;
        j->cls = cls;
        j->refs = 1;
        cond_init_mono(&j->cond);
        b = bucket(&j->d);
        j->hnext = s->table[b];
        s->table[b] = j;
        return j;
}

static void table_remove(struct sched *s, struct sched_job *j) {
        for (struct sched_job **pp = &s->table[bucket(&j->d)]; *pp; pp = &(*pp)->hnext)
                if (*pp == j) {
                        *pp = j->hnext;
                        j->hnext = NULL;
                        return;
                }
}

void sched_job_unref(struct sched_job *j) {
        if (!j || --j->refs > 0)
                return;
        while (j->notes) {
                struct sched_note *n = j->notes;
                j->notes = n->next;
                free(n);
        }
        sched_buf_put(j->buf);
        pthread_cond_destroy(&j->cond);
        free(j);
}

void sched_queue_push(struct sched *s, struct sched_job *j) {
        j->queued = true;
        j->qnext = NULL;
        j->qprev = s->dq_tail;
        if (s->dq_tail)
                s->dq_tail->qnext = j;
        else
                s->dq_head = j;
        s->dq_tail = j;
        s->dq_n++;
}

void sched_queue_remove(struct sched *s, struct sched_job *j) {
        if (j->qprev)
                j->qprev->qnext = j->qnext;
        else
                s->dq_head = j->qnext;
        if (j->qnext)
                j->qnext->qprev = j->qprev;
        else
                s->dq_tail = j->qprev;
        j->qprev = j->qnext = NULL;
        j->queued = false;
        s->dq_n--;
}

/* Queue j again at demand priority (a reader still waits for it). */
void sched_requeue(struct sched *s, struct sched_job *j, uint64_t not_before) {
        j->cls = SCHED_DEMAND;
        j->not_before = not_before;
        sched_queue_push(s, j);
        pthread_cond_signal(&s->wake);
}

int sched_note_add(struct sched_job *j, struct sched_export *se, uint32_t k, uint8_t cls) {
        struct sched_note *n = calloc(1, sizeof *n);

        if (!n)
                return -ENOMEM;
        *n = (struct sched_note) { .se = se, .k = k, .cls = cls, .pf_gen = se->pf_gen, .next = j->notes };
        j->notes = n;
        if (cls == SCHED_PROFILE)
                se->pf_pending++;
        return 0;
}

/* A profile position ended (fetched, failed, or fetched by someone else). */
static void profile_credit(struct sched_export *se, uint64_t gen) {
        if (gen != se->pf_gen)
                return;         /* a list that was replaced since */
        se->pf_done++;
        se->pf_pending--;
}

/*
 * The job ends: out of the table, result published, notes credited,
 * waiters woken, the table's reference dropped. buf: the chunk on
 * success (the job takes the reference), else NULL.
 */
void sched_complete(struct sched *s, struct sched_job *j, int r, struct sched_buf *buf) {
        assert(!j->queued && !j->done);
        table_remove(s, j);
        if (r == 0 && j->stored) {
                s->done_seq++;
                s->recent[s->done_seq % SCHED_RECENT].d = j->d;
                s->recent[s->done_seq % SCHED_RECENT].seq = s->done_seq;
        }
        j->done = true;
        j->result = r;
        j->buf = buf;
        if (r == 0 && j->stored)
                sched_mark_present(j->se, j->k);
        if (j->profile_own)
                profile_credit(j->se, j->pf_gen);
        while (j->notes) {
                struct sched_note *n = j->notes;
                j->notes = n->next;
                if (r == 0 && j->stored)
                        sched_mark_present(n->se, n->k);
                if (n->cls == SCHED_PROFILE)
                        profile_credit(n->se, n->pf_gen);
                sched_profile_check_done(n->se);
                free(n);
        }
        sched_profile_check_done(j->se);
        pthread_cond_broadcast(&j->cond);
        pthread_cond_signal(&s->wake);
        sched_job_unref(j);
}

/* Whether a job stored chunk d after done_seq was seq (true too when
 * too many were stored since to tell: look in the store). Caller holds
 * the lock. */
bool sched_stored_since(const struct sched *s, const struct digest *d, uint64_t seq) {
        if (s->done_seq - seq >= SCHED_RECENT)
                return true;
        for (uint64_t q = s->done_seq; q > seq; q--)
                if (digest_equal(&s->recent[q % SCHED_RECENT].d, d))
                        return true;
        return false;
}

/* Whether unique chunk k of se is local since done_seq was seq: stored by
 * a job since, or queued for the store (write-behind; then noted present,
 * so a cursor does not stop at it again). Caller holds the lock. */
bool sched_local_since(struct sched_export *se, uint32_t k, uint64_t seq) {
        struct sched *s = se->s;
        const struct digest *d = &se->x->chunks[k].digest;

        if (sched_stored_since(s, d, seq))
                return true;
        if (!s->wb || !write_behind_has(s->wb, d))
                return false;
        sched_mark_present(se, k);
        return true;
}

/* --- Exports --- */

int sched_export_add(struct sched *s, const char *name, struct image *img, struct blob_source *src,
                     unsigned max_inflight, const struct coalesce_order *po, struct sched_export **ret) {
        const bool async = src->ops->blob_read_async != NULL;
        struct sched_export *se;
        size_t words;
        int r;

        se = calloc(1, sizeof *se);
        if (!se)
                return -ENOMEM;
        se->s = s;
        se->img = img;
        se->x = img->index;
        se->src = src;
        se->name = strdup(name);
        se->cap = max_inflight ? max_inflight : async ? 16 : 8;
        se->cap = MAX(se->cap, SCHED_DEMAND_RESERVE + 1);
        words = DIV_ROUND_UP((size_t) se->x->n_chunks, 64) + 1;
        se->present = calloc(words, sizeof *se->present);
        se->needed = calloc(words, sizeof *se->needed);
        if (!se->name || !se->present || !se->needed) {
                r = -ENOMEM;
                goto fail;
        }
        se->po = po;
        if (!po) {
                r = coalesce_order_new(se->x, &se->po_own);
                if (r < 0)
                        goto fail;
                se->po = se->po_own;
        }
        for (uint32_t k = 0; k < se->x->n_chunks; k++)
                se->st.image_bytes += se->x->chunks[k].raw_len;
        se->st.image_chunks = se->x->n_chunks;
        r = fetcher_new(src, &(struct fetch_options) { .max_inflight = se->cap, .threads = MIN(se->cap, 8u) },
                        &se->fetcher);
        if (r < 0)
                goto fail;
        se->t0 = now_ns();
        se->bg_state = s->o.background ? SCHED_BG_RUNNING : SCHED_BG_OFF;

        pthread_mutex_lock(&s->lock);
        se->next = s->exports;
        s->exports = se;
        s->n_exports++;
        pthread_cond_signal(&s->wake);
        pthread_mutex_unlock(&s->lock);
        *ret = se;
        return 0;
fail:
        coalesce_order_free(se->po_own);
        free(se->present);
        free(se->needed);
        free(se->name);
        free(se);
        return r;
}

void sched_export_note_read(struct sched_export *se) {
        struct timespec ts;

        if (__atomic_load_n(&se->bg_settled, __ATOMIC_RELAXED))
                return;
        clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
        __atomic_store_n(&se->last_read_ns, (uint64_t) ts.tv_sec * NS + (uint64_t) ts.tv_nsec, __ATOMIC_RELAXED);
}

void sched_background_start(struct sched_export *se) {
        struct sched *s = se->s;

        pthread_mutex_lock(&s->lock);
        if (!se->bg_started)
                se->bg_start_ns = now_ns();
        se->bg_started = true;
        pthread_cond_signal(&s->wake);
        pthread_mutex_unlock(&s->lock);
}

void sched_export_remove(struct sched_export *se) {
        struct sched *s;
        struct sched_job *j, *next;

        if (!se)
                return;
        s = se->s;
        pthread_mutex_lock(&s->lock);
        se->removing = true;
        /* Its queued jobs end; readers of other exports waiting for one
         * queue it again through their own export. */
        for (j = s->dq_head; j; j = next) {
                next = j->qnext;
                if (j->se == se) {
                        sched_queue_remove(s, j);
                        sched_complete(s, j, -ECANCELED, NULL);
                }
        }
        /* Nothing may credit it once it is gone. */
        for (size_t b = 0; b < SCHED_TABLE_BUCKETS; b++)
                for (j = s->table[b]; j; j = j->hnext)
                        for (struct sched_note **pp = &j->notes; *pp;) {
                                struct sched_note *n = *pp;
                                if (n->se == se) {
                                        *pp = n->next;
                                        free(n);
                                } else {
                                        pp = &n->next;
                                }
                        }
        while (se->busy)
                pthread_cond_wait(&s->changed, &s->lock);
        pthread_mutex_unlock(&s->lock);

        /* Cancels what is queued or in flight; the completions queue the
         * ranges for the decoders, which finish them. */
        fetcher_free(se->fetcher);

        pthread_mutex_lock(&s->lock);
        while (se->inflight)
                pthread_cond_wait(&s->changed, &s->lock);
        for (struct sched_export **pp = &s->exports; *pp; pp = &(*pp)->next)
                if (*pp == se) {
                        *pp = se->next;
                        break;
                }
        s->n_exports--;
        pthread_mutex_unlock(&s->lock);

        /* Detached: what it fetched is in the store. */
        sched_flush(s);
        sched_profile_free(se);
        coalesce_order_free(se->po_own);
        free(se->present);
        free(se->needed);
        free(se->name);
        free(se);
}

/* --- Statistics --- */

void sched_export_get_stats(struct sched_export *se, struct sched_export_stats *ret) {
        struct sched *s = se->s;

        pthread_mutex_lock(&s->lock);
        *ret = se->st;
        ret->profile_queued = se->pf_n;
        ret->profile_done = MIN(se->pf_done, (uint64_t) se->pf_n);
        ret->profile_active = se->pf_pos < se->pf_n || se->pf_pending > 0;
        ret->bg_state = se->bg_state;
        ret->bg_position = se->bg_pos;
        pthread_mutex_unlock(&s->lock);
        ret->hydrated_bytes = __atomic_load_n(&se->st.hydrated_bytes, __ATOMIC_RELAXED);
        ret->hydrated_chunks = __atomic_load_n(&se->st.hydrated_chunks, __ATOMIC_RELAXED);
        ret->needed_bytes = __atomic_load_n(&se->st.needed_bytes, __ATOMIC_RELAXED);
}

void sched_get_stats(struct sched *s, struct sched_stats *ret) {
        pthread_mutex_lock(&s->lock);
        *ret = s->st;
        ret->window = bdp_window(&s->bdp);
        memcpy(ret->inflight, s->inflight, sizeof ret->inflight);
        ret->demand_queued = s->dq_n;
        ret->demand_waiting = s->waiting;
        ret->bandwidth = bdp_bandwidth(&s->bdp);
        ret->rtt = bdp_rtt(&s->bdp);
        ret->delays = s->bdp.delays;
        ret->delays_forgiven = s->bdp.forgiven;
        ret->bg_inflight_bytes = s->bg_net_bytes;
        ret->bg_budget = s->bg_budget;
        pthread_mutex_unlock(&s->lock);
        if (s->wb)
                write_behind_get_stats(s->wb, &ret->wb);
}

/* --- The scheduler --- */

int sched_new(struct chunkstore *store, const struct sched_options *o, struct sched **ret) {
        struct sched *s;
        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        unsigned want;
        int r;

        s = calloc(1, sizeof *s);
        if (!s)
                return -ENOMEM;
        s->store = store;
        if (o)
                s->o = *o;
        s->o.fetch_log = NULL;
        s->log_fd = -1;
        if (!s->o.fetch_timeout_ns)
                s->o.fetch_timeout_ns = SCHED_TIMEOUT_DEFAULT_NS;
        if (!s->o.range_max)
                s->o.range_max = SCHED_RANGE_MAX_DEFAULT;
        if (!s->o.profile_batch)
                s->o.profile_batch = 2 * s->o.range_max;
        s->bg_range_max = s->o.range_max;
        if (s->o.background_rate)
                /* A capped stream sends a quarter second's worth at a time. */
                s->bg_range_max = MIN(s->o.range_max, MAX(s->o.background_rate / 4, (uint64_t) 64 << 10));
        s->t0 = now_ns();
        s->rng = s->t0 | 1;
        bdp_init(&s->bdp, &(struct bdp_options) { .min_window = s->o.min_window, .max_window = s->o.max_window });
        tbucket_init(&s->tb, s->o.background_rate, s->bg_range_max, s->t0);
        r = cpu_stall_open(&s->stall, NULL);
        if (r < 0)
                log_debug_errno(r, "No CPU pressure information (%s): round trips above their floor count as "
                                "queues even when CPU waits explain them: %m", CPU_STALL_PATH);
        pthread_mutex_init(&s->lock, NULL);
        pthread_mutex_init(&s->log_lock, NULL);
        cond_init_mono(&s->wake);
        pthread_cond_init(&s->decode, NULL);
        pthread_cond_init(&s->changed, NULL);
        if (o && o->fetch_log) {
                s->log_fd = open(o->fetch_log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
                if (s->log_fd < 0) {
                        r = -errno;
                        goto fail;
                }
        }
        if (s->o.write_behind) {
                r = write_behind_new(store, NULL, s->o.write_behind, true, &s->wb);
                if (r < 0)
                        goto fail;
        }
        want = s->o.decoders ? s->o.decoders : (unsigned) MIN(MAX(ncpu, 2L), 4L);
        want = MIN(want, (unsigned) ARRAY_SIZE(s->decoders));
        for (; s->n_decoders < want; s->n_decoders++)
                if (pthread_create(&s->decoders[s->n_decoders], NULL, sched_decoder_main, s) != 0)
                        break;
        if (!s->n_decoders) {
                r = -EAGAIN;
                goto fail;
        }
        r = -pthread_create(&s->dispatcher, NULL, sched_dispatcher_main, s);
        if (r < 0)
                goto fail_decoders;
        *ret = s;
        return 0;

fail_decoders:
        pthread_mutex_lock(&s->lock);
        s->decoders_stop = true;
        pthread_cond_broadcast(&s->decode);
        pthread_mutex_unlock(&s->lock);
        for (unsigned i = 0; i < s->n_decoders; i++)
                pthread_join(s->decoders[i], NULL);
fail:
        write_behind_free(s->wb);
        if (s->log_fd >= 0)
                close(s->log_fd);
        cpu_stall_close(&s->stall);
        free(s);
        return r;
}

void sched_set_fd_cache(struct sched *s, struct chunkfd_cache *fds) {
        s->fds = fds;
        if (s->wb)
                write_behind_set_fd_cache(s->wb, fds);
}

void sched_flush(struct sched *s) {
        if (s)
                write_behind_flush(s->wb);
}

void sched_free(struct sched *s) {
        if (!s)
                return;
        assert(!s->exports);
        pthread_mutex_lock(&s->lock);
        s->stopping = true;
        pthread_cond_broadcast(&s->wake);
        pthread_mutex_unlock(&s->lock);
        pthread_join(s->dispatcher, NULL);
        pthread_mutex_lock(&s->lock);
        s->decoders_stop = true;
        pthread_cond_broadcast(&s->decode);
        pthread_mutex_unlock(&s->lock);
        for (unsigned i = 0; i < s->n_decoders; i++)
                pthread_join(s->decoders[i], NULL);
        /* The decoders are gone: nothing is queued after this flush. */
        write_behind_free(s->wb);
        while (s->n_pool)
                free(s->pool[--s->n_pool]);
        if (s->log_fd >= 0)
                close(s->log_fd);
        cpu_stall_close(&s->stall);
        pthread_mutex_destroy(&s->lock);
        pthread_mutex_destroy(&s->log_lock);
        pthread_cond_destroy(&s->wake);
        pthread_cond_destroy(&s->decode);
        pthread_cond_destroy(&s->changed);
        free(s);
}
