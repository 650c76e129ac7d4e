/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The fetch scheduler's state, shared by its files:
 *   sched.c           the API: exports, jobs, stats
 *   sched-demand.c    readers: demand misses, the chunks read ahead with them
 *   sched-profile.c   profile lists and the gaps profile ranges read through
 *   sched-dispatch.c  the dispatcher thread: which request starts next
 *   sched-decode.c    completions, decoder threads, the fetch log
 *
 * Locking: everything below is guarded by sched->lock unless a field says
 * "atomic" or "immutable". A job lives in the digest table from creation
 * until it completes; its memory lives while anyone holds a reference
 * (the table one, each waiting reader one, each range one).
 */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "blockd/chunkfd.h"
#include "blockd/cpu-stall.h"
#include "blockd/sched-bdp.h"
#include "blockd/sched-policy.h"
#include "blockd/sched.h"
#include "chunkstore/coalesce.h"
#include "chunkstore/digest.h"
#include "registry-client/fetch.h"

#define NS 1000000000ull
#define SCHED_TIMEOUT_DEFAULT_NS SCHED_FETCH_TIMEOUT_DEFAULT_NS
#define SCHED_RANGE_MAX_DEFAULT (4u << 20)
#define SCHED_MAX_BAD 3                 /* fetches of a chunk whose bytes did not match */
#define SCHED_DEMAND_RESERVE 2          /* request slots per source kept for demand */
#define SCHED_HINTS_MAX 64              /* chunks after a demand miss fetched with it */
#define SCHED_RANGE_CHUNKS 256          /* chunks in one range request, at most */
#define SCHED_SCAN_CHECKS 64            /* store lookups per cursor step */
#define SCHED_SCAN_STEPS 65536          /* positions per cursor step */
#define SCHED_TABLE_BUCKETS 4096
#define SCHED_BUF_POOL 4                /* range buffers kept for reuse (4 MiB each) */
#define SCHED_RECENT 4096               /* digests of the last chunks stored */
/* Profile and background ranges: at most this (a demand read that needs
 * a chunk of one waits for 1 MiB at most: 8.4 ms at 1 Gbit/s), background
 * ones at least SCHED_BG_RANGE_MIN while the budget has room (per-request
 * costs), in between what the link carries in SCHED_BG_QUEUE_NS. */
#define SCHED_PREFETCH_RANGE_MAX (1u << 20)
#define SCHED_BG_RANGE_MIN (256u << 10)
#define SCHED_BG_BDP_MAX (16u << 20)    /* the scavenger's bytes in flight, at most */
#define SCHED_BG_QUEUE_NS (10 * 1000000ull) /* and at most what the link carries at its capacity
                                             * during a range's latency alone and this long: the
                                             * queue a demand read may find */
#define SCHED_DEMAND_RECENT_NS (1000 * 1000000ull) /* the scavenger shrinks this long after demand */
#define SCHED_BACKLOG_MAX 8             /* fetched ranges awaiting the decoders, before profile
                                         * and background wait (memory: 4 MiB each) */

struct sched_buf {
        unsigned refs;                  /* atomic */
        size_t len;
        size_t cap;                     /* bytes at data (a reused buffer may be larger) */
        struct sched_buf *next;         /* in the pool of free buffers */
        uint8_t data[];
};

/* Another export (or position) to credit when a job completes. */
struct sched_note {
        struct sched_export *se;
        uint32_t k;
        uint8_t cls;                    /* SCHED_PROFILE: counts for se's profile */
        uint64_t pf_gen;
        struct sched_note *next;
};

/* One chunk being fetched, keyed by digest. */
struct sched_job {
        struct digest d;
        struct sched_export *se;        /* whose index locates it */
        uint32_t k;                     /* unique chunk number in se's index */
        uint64_t i;                     /* a logical chunk number (logs) */
        uint8_t cls;                    /* the class it is queued or fetched at */
        bool queued, inflight, done;
        bool stored;                    /* done with 0, and the store has it */
        bool profile_own;               /* counts for se's profile (pf_gen) when it ends */
        uint64_t pf_gen;
        uint8_t attempts;               /* transient failures */
        uint8_t bad;                    /* digest mismatches */
        int last_err;                   /* the last transient failure (retried), 0 = none */
        unsigned waiters;
        unsigned refs;
        int result;                     /* once done */
        struct sched_buf *buf;          /* once done with 0: the chunk (the job's reference) */
        uint64_t not_before;            /* requeued: not started before this */
        struct sched_note *notes;
        pthread_cond_t cond;            /* done */
        struct sched_job *hnext;
        struct sched_job *qprev, *qnext;
};

/* One range request: adjacent chunks of one pack. */
struct sched_range {
        struct sched *s;
        struct sched_export *se;
        uint8_t cls;
        bool urgent;                    /* decode first: demand, or a reader waits */
        uint32_t pack;
        uint64_t off, len;
        void *buf;
        bool pooled;                    /* buf is a range_max pool buffer */
        int r;
        uint64_t t0, t1;
        struct bdp_send bs;
        uint64_t bg_ahead;              /* background bytes on the network when it was sent */
        uint64_t bg_budget;             /* the scavenger's bound then */
        struct fetch_conn conn;         /* the connection it went on (fetch log) */
        struct sched_range *next;       /* decode queue */
        unsigned n;
        struct sched_job *jobs[];       /* by offset; one reference each */
};

/* A profile list, shared with the dispatcher while it scans unlocked. */
struct sched_pflist {
        unsigned refs;                  /* under the lock */
        size_t n;
        uint64_t v[];
};

struct sched_export {
        struct sched *s;
        char *name;                     /* immutable */
        struct image *img;              /* immutable, borrowed */
        const struct blkindex *x;       /* immutable: img->index */
        struct blob_source *src;        /* borrowed */
        struct fetcher *fetcher;
        unsigned cap;                   /* requests in flight at most */
        unsigned inflight;              /* ranges not finished (decoded) yet */
        unsigned net_inflight;          /* ranges the source is fetching (its request slots) */
        unsigned inflight_nondemand;    /* of which profile or background */
        unsigned busy;                  /* the dispatcher works on it without the lock */
        bool removing;
        uint64_t *present;              /* atomic bits per unique chunk: known to be local */
        uint64_t *needed;               /* atomic bits per unique chunk: read by a client */

        /* Profile list (positions of logical chunks). */
        struct sched_pflist *pf;        /* NULL: none */
        size_t pf_n, pf_pos;
        uint64_t pf_gen;                /* bumped when the list is replaced */
        uint64_t pf_done;
        unsigned pf_pending;            /* positions waiting for a fetch to end */
        uint64_t pf_t0;
        bool pf_logged;
        /* The pack order of the unique chunks, for profile ranges that
         * read through gaps (sched_profile_gap_chunks): the export's
         * (sched_export_add), immutable (read without the lock). */
        const struct coalesce_order *po;
        struct coalesce_order *po_own;  /* po when none was given */

        /* Background cursor (logical order). */
        uint64_t bg_pos;
        enum sched_bg_state bg_state;
        uint64_t bg_resume_ns;          /* BACKOFF, CACHE_FULL, between passes: not before */
        unsigned bg_failures;           /* in a row */
        unsigned bg_inflight;           /* background ranges not finished (decoded) yet */
        uint64_t bg_pass_start;         /* hydrated chunks when this pass began */
        bool bg_surveyed;               /* OFF: the store was surveyed once */
        bool bg_started;                /* sched_background_start was called */
        bool bg_settled;                /* the start's reads let up (or waited long enough) */
        uint64_t bg_start_ns;           /* when sched_background_start was called */
        uint64_t last_read_ns;          /* a client's last read (coarse clock; atomic) */
        uint64_t t0;
        uint64_t warned_ns;             /* the last failed read logged (rate limit) */

        struct sched_export_stats st;   /* hydrated_*, needed_bytes: atomic; the rest locked */
        struct sched_export *next;
};

struct sched {
        struct chunkstore *store;
        struct chunkfd_cache *fds;      /* where stored chunks are kept open (NULL: not) */
        struct write_behind *wb;        /* store inserts deferred to an idle CPU (NULL: inline) */
        struct sched_options o;
        uint64_t bg_range_max;          /* range_max, smaller under a rate cap */
        uint64_t t0;

        pthread_mutex_t lock;
        pthread_cond_t wake;            /* the dispatcher */
        pthread_cond_t decode;          /* the decoders */
        pthread_cond_t changed;         /* removals wait for busy/inflight */
        struct sched_job *table[SCHED_TABLE_BUCKETS];
        struct sched_job *dq_head, *dq_tail;    /* the demand queue, FIFO */
        unsigned dq_n;
        unsigned waiting;               /* readers waiting */
        unsigned inflight[_SCHED_CLASS_MAX];    /* ranges being fetched (network) */
        unsigned backlog;               /* ranges fetched, not decoded yet */
        uint64_t bg_pending;            /* chunk bytes of background ranges not stored yet */
        uint64_t bg_net_bytes;          /* bytes of background ranges on the network */
        uint64_t bg_budget;             /* the scavenger's bound, as last computed */
        uint64_t bg_range;              /* background range size, as last computed */
        bool cache_full;                /* a put found the store's filesystem full, no room seen since */
        uint64_t cache_checked_ns;      /* when the profile class last looked for room */
        uint64_t last_demand_ns;
        struct sched_export *exports;
        unsigned n_exports, rr;         /* round robin between exports */
        struct bdp bdp;
        struct cpu_stall stall;         /* beside the time, for bdp (cpu-stall.h); read without the lock */
        struct tbucket tb;
        struct sched_range *dec_head[2], *dec_tail[2];  /* [0] urgent */
        void *pool[SCHED_BUF_POOL];
        unsigned n_pool;
        uint64_t rng;
        bool stopping, decoders_stop;
        pthread_t dispatcher;
        pthread_t decoders[8];
        unsigned n_decoders;
        struct sched_stats st;          /* counters (gauges are filled on read) */
        /* Chunks stored lately, for whoever looked in the store before a
         * job ended and in the table after (the job is gone from the
         * table, the chunk is in the store): done_seq counts them. */
        uint64_t done_seq;
        struct {
                struct digest d;
                uint64_t seq;
        } recent[SCHED_RECENT];

        int log_fd;                     /* fetch log, -1 = none */
        pthread_mutex_t log_lock;
};

/* sched.c */
void sched_job_unref(struct sched_job *j);
struct sched_job *sched_job_lookup(struct sched *s, const struct digest *d);
struct sched_job *sched_job_new(struct sched *s, struct sched_export *se, uint32_t k, uint64_t i, uint8_t cls);
void sched_queue_push(struct sched *s, struct sched_job *j);
void sched_queue_remove(struct sched *s, struct sched_job *j);
int sched_note_add(struct sched_job *j, struct sched_export *se, uint32_t k, uint8_t cls);
bool sched_mark_present(struct sched_export *se, uint32_t k);
void sched_mark_needed(struct sched_export *se, uint32_t k);
static inline bool sched_is_present(const struct sched_export *se, uint32_t k) {
        return __atomic_load_n(&se->present[k / 64], __ATOMIC_RELAXED) & (UINT64_C(1) << (k % 64));
}
void sched_complete(struct sched *s, struct sched_job *j, int r, struct sched_buf *buf);
bool sched_stored_since(const struct sched *s, const struct digest *d, uint64_t seq);
bool sched_local_since(struct sched_export *se, uint32_t k, uint64_t seq);
uint64_t sched_jitter(struct sched *s, uint64_t d);
struct sched_buf *sched_buf_new(size_t len);

/* sched-profile.c */
void sched_pflist_put(struct sched_pflist *l);
void sched_profile_check_done(struct sched_export *se);
/* The list, at removal. */
void sched_profile_free(struct sched_export *se);
/*
 * The unique chunks of se that lie wholly in [from, to) of pack (a gap a
 * profile range reads through), in pack order, into out (max at most);
 * returns how many, or -1 when there are more than max. Unlocked (the
 * pack order is immutable once the list that needs it is set).
 */
int sched_profile_gap_chunks(const struct sched_export *se, uint32_t pack, uint64_t from, uint64_t to, uint32_t *out,
                             unsigned max);
void sched_requeue(struct sched *s, struct sched_job *j, uint64_t not_before);

/* sched-dispatch.c */
void *sched_dispatcher_main(void *arg);
void sched_background_failed(struct sched_export *se, uint64_t first_failed, uint64_t now);
void sched_cache_full(struct sched *s, struct sched_export *se, uint64_t first_unstored, bool background);

/* sched-decode.c */
void sched_on_fetched(void *userdata, int r, const struct fetch_conn *conn);
void *sched_decoder_main(void *arg);
