/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The bulk engine (bulk.h). The calling thread plans, submits range reads
 * to the fetcher and (BULK_ORDERED) delivers; the fetcher's completions
 * only queue a range; decoder threads decode, verify, store and call the
 * caller's callback. Memory stays bounded by 2 x jobs range buffers,
 * reused: a fresh 4 MiB malloc is a fresh mmap, and faulting in zeroed
 * pages cost a fifth of pull's CPU.
 */
#include "bulk.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "chunkstore/chunk-decode.h"
#include "chunkstore/coalesce.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "common/progress.h"
#include "common/util.h"
#include "fetch.h"

#define HIT_BATCH 16                    /* store reads handed to a decoder at once */
#define DECODERS_MAX 8
#define BULK_REFETCH_TRIES 8            /* reads again of one range whose bytes did not verify */

/* A work item: a range read of list[first .. first+n), or (hit) a batch
 * of store reads of hits[first .. first+n). */
struct brange {
        uint32_t pack;
        uint64_t off, len;
        uint32_t first, n;
        bool hit;
        bool decoded;                   /* BULK_ORDERED: verified, waiting to be delivered */
        void *buf;
        int r;
        struct bulk *b;
        struct brange *next;            /* the decode queue */
};

struct bulk {
        struct image *img;
        const struct blkindex *x;
        struct chunkstore *store;
        const struct bulk_options *o;
        unsigned flags;
        uint32_t *list;                 /* chunks to fetch, in plan order */
        uint32_t n_list;
        uint32_t *hits;                 /* chunks to read from the store */
        int *res;                       /* BULK_ORDERED: each list position's result */

        pthread_mutex_t lock;
        pthread_cond_t cond;
        struct brange *q_head, *q_tail; /* waiting for a decoder */
        unsigned outstanding;           /* queued, in flight or (ordered) not delivered yet */
        bool quit;                      /* decoders exit once the queue is empty */
        int err;
        uint64_t done_bytes;            /* for the progress line */
        struct bulk_result res_;
        void **free_bufs;
        unsigned n_free;
};

int bulk_chunk_store(struct chunkstore *store, const struct blkindex_chunk *c, const void *stored, void *raw,
                     int *ret_store_err, int *ret_fd) {
        int r;

        *ret_store_err = 0;
        if (ret_fd)
                *ret_fd = -EBADF;
        r = chunk_decode(c, stored, raw);
        if (r < 0 || !store)
                return r;
        *ret_store_err = chunkstore_put_verified_fd(store, &c->digest, raw, c->raw_len, ret_fd);
        return 0;
}

/* A range buffer: 2 MiB aligned and, where the kernel allows, backed by
 * huge pages (one fault per 2 MiB instead of 512). */
static void *range_buf_new(size_t size) {
        size_t align = 2u << 20, rounded = (size + align - 1) / align * align;
        void *p = aligned_alloc(align, rounded);

        if (p)
                (void) madvise(p, rounded, MADV_HUGEPAGE);
        return p;
}

/* The first failure ends the run. Caller holds the lock. */
static void set_error(struct bulk *b, int r, uint32_t k) {
        if (b->err)
                return;
        b->err = r;
        b->res_.bad_chunk = k;
        pthread_cond_broadcast(&b->cond);
}

static void queue_push(struct bulk *b, struct brange *rg) {
        rg->next = NULL;
        if (b->q_tail)
                b->q_tail->next = rg;
        else
                b->q_head = rg;
        b->q_tail = rg;
        pthread_cond_broadcast(&b->cond);
}

static void on_fetched(void *userdata, int r, const struct fetch_conn *conn) {
        struct brange *rg = userdata;
        struct bulk *b = rg->b;

        pthread_mutex_lock(&b->lock);
        rg->r = r;
        queue_push(b, rg);
        pthread_mutex_unlock(&b->lock);
}

/* Hand chunk k's result to the callback, or without one, make a failure
 * the run's error. Returns < 0 when the run should end. No lock held. */
static int deliver(struct bulk *b, uint32_t k, int r, const void *stored, const void *raw) {
        if (b->o->chunk)
                return b->o->chunk(b->o->userdata, k, r, r == 0 ? stored : NULL, r == 0 ? raw : NULL);
        return r;
}

/* Read a batch of chunks from the store; chunks that vanished meanwhile
 * (evicted, or dropped as damaged) are fetched later instead. */
static int read_hits(struct bulk *b, struct brange *rg, void *raw, uint32_t *vanished, uint32_t *ret_vanished,
                     uint32_t *ret_bad) {
        uint32_t nv = 0;
        int r = 0;

        for (uint32_t i = 0; i < rg->n && r >= 0; i++) {
                uint32_t k = b->hits[rg->first + i];
                const struct blkindex_chunk *c = &b->x->chunks[k];

                r = chunkstore_get(b->store, &c->digest, raw, c->raw_len);
                if (r == -ENOENT) {
                        vanished[nv++] = k;
                        r = 0;
                        continue;
                }
                if (r >= 0) {
                        pthread_mutex_lock(&b->lock);
                        b->res_.chunks_read++;
                        b->done_bytes += c->raw_len;
                        pthread_mutex_unlock(&b->lock);
                }
                r = deliver(b, k, r, NULL, raw);
                *ret_bad = k;
        }
        *ret_vanished = nv;
        return r;
}

/* Chunk c of rg did not match its digest: tell the source (a mirror that
 * served it is put aside) and, if it may answer differently now, read the
 * rest of the range again, from c on, here on the decoder thread (rare:
 * a bad mirror). true when the bytes are there to decode again. */
static bool refetch(struct bulk *b, struct brange *rg, const struct blkindex_chunk *c, unsigned *tries) {
        const struct digest *d = &b->x->packs[rg->pack].digest;

        if (++*tries > BULK_REFETCH_TRIES || source_blob_bad(b->img->src, d) <= 0)
                return false;
        return source_blob_read(b->img->src, d, c->offset, (uint8_t *) rg->buf + (c->offset - rg->off),
                                rg->off + rg->len - c->offset) == 0;
}

/* Decode, verify (and store) every chunk of a fetched range. */
static int decode_range(struct bulk *b, struct brange *rg, void *raw, uint32_t *ret_bad) {
        const bool ordered = b->flags & BULK_ORDERED;
        const bool storing = b->store && !(b->flags & BULK_FETCH_ONLY);
        uint64_t stored_ok = 0, raw_stored = 0;
        uint32_t ok = 0;
        unsigned tries = 0;
        int r = 0;

        for (uint32_t i = 0; i < rg->n && r >= 0; i++) {
                uint32_t k = b->list[rg->first + i];
                const struct blkindex_chunk *c = &b->x->chunks[k];
                const uint8_t *stored = (const uint8_t *) rg->buf + (c->offset - rg->off);
                int se = 0;

                if (rg->r < 0)
                        r = rg->r;
                else if (b->flags & BULK_FETCH_ONLY)
                        r = 0;
                else if (c->raw_len > b->x->chunk_size)
                        r = -EBADMSG;
                else if (!storing && ordered)
                        r = chunk_verify(c, stored, raw);
                else
                        r = bulk_chunk_store(storing ? b->store : NULL, c, stored, raw, &se, NULL);
                if (r == -EBADMSG && rg->r == 0 && c->raw_len <= b->x->chunk_size && refetch(b, rg, c, &tries)) {
                        r = 0;
                        i--;
                        continue;
                }
                if (se < 0)
                        log_debug("chunk store insert failed: %s", strerror(-se));
                if (se < 0 && r == 0 && (b->flags & BULK_STORE_REQUIRED)) {
                        r = se;
                        pthread_mutex_lock(&b->lock);
                        b->res_.store_failed = true;
                        pthread_mutex_unlock(&b->lock);
                }
                if (r == 0) {
                        ok++;
                        stored_ok += c->stored_len;
                        if (storing && se == 0)
                                raw_stored += c->raw_len;
                }
                *ret_bad = k;
                if (ordered)
                        b->res[rg->first + i] = r;
                else if (!(b->flags & BULK_FETCH_ONLY))
                        r = deliver(b, k, r, stored, raw);
        }
        pthread_mutex_lock(&b->lock);
        b->res_.chunks_fetched += ok;
        b->res_.stored_fetched += stored_ok;
        b->res_.bytes_stored += raw_stored;
        if (rg->r == 0)
                b->res_.bytes_fetched += rg->len;
        b->done_bytes += stored_ok;
        pthread_mutex_unlock(&b->lock);
        return ordered ? 0 : r;
}

static void *decoder(void *arg) {
        struct bulk *b = arg;
        _cleanup_free_ void *raw = malloc(b->x->chunk_size);
        _cleanup_free_ uint32_t *vanished = malloc(HIT_BATCH * sizeof *vanished);

        pthread_mutex_lock(&b->lock);
        for (;;) {
                struct brange *rg;
                uint32_t bad = 0, nv = 0;
                int r = 0;

                while (!b->q_head && !b->quit)
                        pthread_cond_wait(&b->cond, &b->lock);
                rg = b->q_head;
                if (!rg)
                        break;
                b->q_head = rg->next;
                if (!b->q_head)
                        b->q_tail = NULL;
                if (!b->err) {
                        pthread_mutex_unlock(&b->lock);
                        if (!raw || !vanished)
                                r = -ENOMEM;
                        else if (rg->hit)
                                r = read_hits(b, rg, raw, vanished, &nv, &bad);
                        else
                                r = decode_range(b, rg, raw, &bad);
                        pthread_mutex_lock(&b->lock);
                }
                if (r < 0)
                        set_error(b, r, bad);
                /* Vanished hits join the list to fetch (it has room: it
                 * was sized for every chunk). */
                for (uint32_t i = 0; i < nv; i++)
                        b->list[b->n_list++] = vanished[i];
                if ((b->flags & BULK_ORDERED) && !rg->hit && !b->err) {
                        rg->decoded = true;
                } else {
                        if (rg->buf)
                                b->free_bufs[b->n_free++] = TAKE_PTR(rg->buf);
                        b->outstanding--;
                }
                pthread_cond_broadcast(&b->cond);
        }
        pthread_mutex_unlock(&b->lock);
        return NULL;
}

/* BULK_ORDERED: hand decoded ranges to the callback in plan order.
 * Caller holds the lock (dropped around the callbacks). */
static void deliver_ordered(struct bulk *b, struct brange *ranges, uint32_t n_ranges, uint32_t *deliver_next) {
        while (!b->err && *deliver_next < n_ranges && ranges[*deliver_next].decoded) {
                struct brange *rg = &ranges[(*deliver_next)++];
                uint32_t bad = 0;
                int r = 0;

                pthread_mutex_unlock(&b->lock);
                for (uint32_t i = 0; i < rg->n && r >= 0; i++) {
                        uint32_t k = b->list[rg->first + i];
                        const struct blkindex_chunk *c = &b->x->chunks[k];

                        bad = k;
                        r = deliver(b, k, b->res[rg->first + i], (const uint8_t *) rg->buf + (c->offset - rg->off),
                                    NULL);
                }
                pthread_mutex_lock(&b->lock);
                if (r < 0)
                        set_error(b, r, bad);
                b->free_bufs[b->n_free++] = TAKE_PTR(rg->buf);
                b->outstanding--;
        }
}

/* Wait until every queued item is done (after an error too: the decoders
 * then skip them), updating the progress line. Caller holds the lock. */
static void wait_idle(struct bulk *b, struct progress *prog) {
        while (b->outstanding) {
                pthread_cond_wait(&b->cond, &b->lock);
                if (b->o->progress)
                        progress_update(prog, b->done_bytes);
        }
}

/* Phase 1: the store's chunks, read by the decoders in batches. */
static int read_stored(struct bulk *b, uint32_t n_hits, struct progress *prog) {
        uint32_t n_items = (n_hits + HIT_BATCH - 1) / HIT_BATCH;
        _cleanup_free_ struct brange *items = calloc(MAX(n_items, 1u), sizeof *items);

        if (!items)
                return -ENOMEM;
        pthread_mutex_lock(&b->lock);
        for (uint32_t i = 0; i < n_items; i++) {
                items[i] = (struct brange) { .hit = true, .first = i * HIT_BATCH, .b = b,
                                             .n = MIN((uint32_t) HIT_BATCH, n_hits - i * HIT_BATCH) };
                b->outstanding++;
                queue_push(b, &items[i]);
        }
        wait_idle(b, prog);
        pthread_mutex_unlock(&b->lock);
        return 0;
}

/* Phase 2: plan the list into ranges and fetch them. */
static int fetch_list(struct bulk *b, struct progress *prog) {
        const struct blkindex *x = b->x;
        const bool ordered = b->flags & BULK_ORDERED;
        const unsigned jobs = b->o->jobs ?: BULK_DEFAULT_JOBS;
        const struct coalesce_limits lim = {
                .range_max = b->o->range_max ?: BULK_DEFAULT_RANGE,
                .gap_max = ordered ? 0 : b->o->gap_max,
        };
        _cleanup_free_ struct coalesce_range *plan = NULL;
        _cleanup_free_ struct brange *ranges = NULL;
        struct fetcher *fetcher = NULL;
        uint32_t n_ranges = 0, next = 0, deliver_next = 0;
        uint64_t buf_size = 0;
        int r;

        if (!ordered)
                coalesce_sort(x, b->list, b->n_list);
        r = coalesce_plan(x, b->list, b->n_list, &lim, &plan, &n_ranges);
        if (r < 0)
                return r;
        ranges = calloc(MAX(n_ranges, 1u), sizeof *ranges);
        if (!ranges)
                return -ENOMEM;
        for (uint32_t i = 0; i < n_ranges; i++) {
                ranges[i] = (struct brange) { .pack = plan[i].pack, .off = plan[i].off, .len = plan[i].len,
                                              .first = plan[i].first, .n = plan[i].n, .b = b };
                /* A chunk larger than range_max is a range of its own. */
                buf_size = MAX(buf_size, plan[i].len);
        }
        b->res_.ranges = n_ranges;
        if (!n_ranges)
                return 0;
        r = fetcher_new(b->img->src, &(struct fetch_options) { .max_inflight = jobs }, &fetcher);
        if (r < 0)
                return r;

        pthread_mutex_lock(&b->lock);
        /* Keep the fetcher busy and a few ranges ready for the decoders. */
        while (!b->err && (next < n_ranges || b->outstanding)) {
                bool submitted = false;

                /* Delivering first frees the slots of delivered ranges. */
                if (ordered)
                        deliver_ordered(b, ranges, n_ranges, &deliver_next);
                while (!b->err && next < n_ranges && b->outstanding < 2 * jobs) {
                        struct brange *rg = &ranges[next];
                        int64_t id;

                        rg->buf = b->n_free ? b->free_bufs[--b->n_free] : range_buf_new(buf_size);
                        if (!rg->buf) {
                                set_error(b, -ENOMEM, b->list[rg->first]);
                                break;
                        }
                        b->outstanding++;
                        next++;
                        submitted = true;
                        pthread_mutex_unlock(&b->lock);
                        id = fetcher_submit(fetcher, &x->packs[rg->pack].digest, rg->off, rg->buf, rg->len, 0, 0,
                                            on_fetched, rg);
                        pthread_mutex_lock(&b->lock);
                        if (id < 0) {
                                b->free_bufs[b->n_free++] = TAKE_PTR(rg->buf);
                                b->outstanding--;
                                set_error(b, (int) id, b->list[rg->first]);
                        }
                }
                /* The lock was dropped: ranges may have been decoded
                 * meanwhile, look again before sleeping. */
                if (submitted && ordered)
                        continue;
                if (b->err || (next >= n_ranges && !b->outstanding))
                        break;
                pthread_cond_wait(&b->cond, &b->lock);
                if (b->o->progress)
                        progress_update(prog, b->done_bytes);
        }
        /* Ranges decoded but not delivered (an error came first) are
         * done with; the rest of what is outstanding comes back from the
         * fetcher (cancelled) and the decoders skip it. */
        for (uint32_t i = deliver_next; i < next; i++)
                if (ranges[i].decoded)
                        b->outstanding--;
        pthread_mutex_unlock(&b->lock);
        fetcher_free(fetcher);
        pthread_mutex_lock(&b->lock);
        wait_idle(b, prog);
        pthread_mutex_unlock(&b->lock);
        for (uint32_t i = 0; i < n_ranges; i++)
                free(ranges[i].buf);
        return 0;
}

/* Sort chunks into the list to fetch and the ones to read from the store
 * (or skip). */
static int classify(struct bulk *b, const uint32_t *chunks, uint32_t n, uint32_t *ret_hits, uint64_t *ret_total) {
        uint64_t total = 0;
        uint32_t nh = 0;

        for (uint32_t i = 0; i < n; i++) {
                const struct blkindex_chunk *c = &b->x->chunks[chunks[i]];
                int r = 0;

                if (b->store && (b->flags & (BULK_SKIP_STORED | BULK_READ_STORED))) {
                        r = chunkstore_has(b->store, &c->digest);
                        if (r < 0)
                                return r;
                }
                if (r > 0 && (b->flags & BULK_SKIP_STORED)) {
                        b->res_.chunks_skipped++;
                        b->res_.raw_skipped += c->raw_len;
                } else if (r > 0) {
                        b->hits[nh++] = chunks[i];
                        total += c->raw_len;
                } else {
                        b->list[b->n_list++] = chunks[i];
                        total += c->stored_len;
                }
        }
        *ret_hits = nh;
        *ret_total = total;
        return 0;
}

int bulk_run(struct image *img, struct chunkstore *store, const uint32_t *chunks, uint32_t n,
             const struct bulk_options *o, struct bulk_result *ret) {
        const unsigned jobs = o->jobs ?: BULK_DEFAULT_JOBS;
        struct bulk b = {
                .img = img,
                .x = img->index,
                .store = store,
                .o = o,
                .flags = o->flags,
                .lock = PTHREAD_MUTEX_INITIALIZER,
                .cond = PTHREAD_COND_INITIALIZER,
        };
        pthread_t tids[DECODERS_MAX];
        unsigned n_dec = o->decoders, started = 0;
        uint32_t n_hits = 0;
        uint64_t total = 0;
        struct progress prog;
        int r;

        memset(ret, 0, sizeof *ret);
        if ((b.flags & BULK_ORDERED) && (b.flags & BULK_READ_STORED))
                return -EINVAL;
        b.list = malloc(MAX(n, 1u) * sizeof *b.list);
        b.hits = malloc(MAX(n, 1u) * sizeof *b.hits);
        b.res = (b.flags & BULK_ORDERED) ? calloc(MAX(n, 1u), sizeof *b.res) : NULL;
        b.free_bufs = calloc(2 * jobs + 1, sizeof *b.free_bufs);
        if (!b.list || !b.hits || !b.free_bufs || ((b.flags & BULK_ORDERED) && !b.res)) {
                r = -ENOMEM;
                goto out;
        }
        r = classify(&b, chunks, n, &n_hits, &total);
        if (r < 0)
                goto out;
        if (!n_dec) {
                long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
                n_dec = (unsigned) MAX(ncpu, 1L);
        }
        n_dec = MIN(n_dec, (unsigned) DECODERS_MAX);
        for (; started < n_dec; started++)
                if (pthread_create(&tids[started], NULL, decoder, &b) != 0)
                        break;
        if (!started) {
                r = -EAGAIN;
                goto out;
        }
        if (o->progress)
                progress_start(&prog, o->progress, total);
        if (n_hits)
                r = read_stored(&b, n_hits, &prog);
        if (r >= 0 && !b.err)
                r = fetch_list(&b, &prog);
        if (o->progress)
                progress_end(&prog);

        pthread_mutex_lock(&b.lock);
        b.quit = true;
        pthread_cond_broadcast(&b.cond);
        pthread_mutex_unlock(&b.lock);
        for (unsigned i = 0; i < started; i++)
                pthread_join(tids[i], NULL);
        if (r >= 0)
                r = b.err;
out:
        *ret = b.res_;
        while (b.n_free)
                free(b.free_bufs[--b.n_free]);
        free(b.free_bufs);
        free(b.res);
        free(b.hits);
        free(b.list);
        pthread_mutex_destroy(&b.lock);
        pthread_cond_destroy(&b.cond);
        return r;
}
