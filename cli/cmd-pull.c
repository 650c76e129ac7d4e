/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hocus-blk pull REF: hydrate the local chunk store with every chunk of
 * an image. Chunks already in the store are skipped, so an interrupted
 * pull, run again, fetches only the rest. The missing chunks are grouped
 * per pack and adjacent ones coalesced into one Range GET (up to
 * --range-size), many in flight through the range fetcher (fetch.h);
 * decoder threads decompress each chunk, verify it against its digest and
 * insert it. Nothing unverified ever enters the store.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "chunkstore/codec.h"
#include "cli.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "common/progress.h"
#include "common/util.h"
#include "registry-client/coalesce.h"
#include "registry-client/fetch.h"

#define DEFAULT_JOBS 8
#define DEFAULT_RANGE (4u << 20)
/* Fetch through a gap between two wanted chunks rather than split the
 * range, when the gap is at most this (a request costs a round trip). */
#define GAP_MAX (256u << 10)

static void help(void) {
        printf("Usage: hocus-blk pull REF [OPTIONS]\n\n"
               "Fetch every chunk of the image REF into the local chunk store, so that later\n"
               "exports, mounts and blockd exports of it need no network. Chunks already in the\n"
               "store are skipped: a pull that was interrupted resumes where it stopped. Every\n"
               "chunk is verified against its digest before it is stored. A progress bar is\n"
               "drawn when stderr is a terminal; at the end pull prints the bytes fetched, the\n"
               "HTTP requests made and the time taken.\n\n"
               "Options:\n"
               "  --jobs N             range requests in flight (default %d)\n"
               "  --range-size SIZE    largest coalesced range request (default 4M)\n"
               "  --no-store           fetch the missing ranges but decode and store nothing\n"
               "                       (measures the registry path alone; see bench/pull.sh)\n"
               "  --quiet              print nothing on success\n\n",
               DEFAULT_JOBS);
        cli_common_help();
}

struct range {
        uint32_t pack;
        uint64_t off, len;
        uint32_t first, n;              /* into the wanted[] array */
        void *buf;
        int r;
        struct pull *pull;
        struct range *next;             /* completed queue */
};

struct pull {
        struct image *img;
        struct chunkstore *store;
        const uint32_t *wanted;         /* unique chunk numbers, by pack and offset */
        pthread_mutex_t lock;
        pthread_cond_t cond;
        struct range *done_head, *done_tail;   /* fetched, waiting for a decoder */
        unsigned outstanding;           /* submitted, not yet decoded */
        bool stop;                      /* decoders exit when the queue is empty */
        bool no_store;                  /* --no-store */
        int err;
        uint32_t bad_chunk;
        uint64_t bytes_stored;          /* raw bytes inserted */
        uint64_t bytes_fetched;         /* range bytes */
        uint64_t chunks_done;
        /* Range buffers are reused: a fresh 4 MiB malloc is a fresh mmap,
         * and faulting in zeroed pages cost a fifth of the CPU. */
        void **free_bufs;
        unsigned n_free;
};

/* A range buffer: 2 MiB aligned and, where the kernel allows, backed by
 * huge pages (one fault per 2 MiB instead of 512). */
static void *range_buf_new(size_t size) {
        size_t align = 2u << 20, rounded = (size + align - 1) / align * align;
        void *p = aligned_alloc(align, rounded);

        if (p)
                (void) madvise(p, rounded, MADV_HUGEPAGE);
        return p;
}

static void on_fetched(void *userdata, int r) {
        struct range *rg = userdata;
        struct pull *p = rg->pull;

        rg->r = r;
        pthread_mutex_lock(&p->lock);
        rg->next = NULL;
        if (p->done_tail)
                p->done_tail->next = rg;
        else
                p->done_head = rg;
        p->done_tail = rg;
        pthread_cond_broadcast(&p->cond);
        pthread_mutex_unlock(&p->lock);
}

/* Decode, verify and store every wanted chunk of a fetched range. */
static int store_range(struct pull *p, struct range *rg, void *raw, uint32_t *ret_bad, uint64_t *ret_stored) {
        const struct blkindex *x = p->img->index;
        int r;

        *ret_stored = 0;
        for (uint32_t i = 0; i < rg->n; i++) {
                uint32_t k = p->wanted[rg->first + i];
                const struct blkindex_chunk *c = &x->chunks[k];

                r = image_decode_chunk(p->img, k, (const char *) rg->buf + (c->offset - rg->off), raw);
                if (r < 0) {
                        *ret_bad = k;
                        return r;
                }
                r = chunkstore_put_verified(p->store, &c->digest, raw, c->raw_len);
                if (r < 0) {
                        *ret_bad = k;
                        return r;
                }
                *ret_stored += c->raw_len;
        }
        return 0;
}

static void *decoder(void *arg) {
        struct pull *p = arg;
        void *raw = malloc(p->img->index->chunk_size);

        pthread_mutex_lock(&p->lock);
        for (;;) {
                struct range *rg;
                uint64_t stored = 0;
                uint32_t bad = 0;
                int r;

                while (!p->done_head && !p->stop)
                        pthread_cond_wait(&p->cond, &p->lock);
                if (!p->done_head)
                        break;
                rg = p->done_head;
                p->done_head = rg->next;
                if (!p->done_head)
                        p->done_tail = NULL;
                pthread_mutex_unlock(&p->lock);

                r = rg->r;
                if (r >= 0 && !raw)
                        r = -ENOMEM;
                if (r >= 0 && !p->no_store)
                        r = store_range(p, rg, raw, &bad, &stored);
                pthread_mutex_lock(&p->lock);
                p->free_bufs[p->n_free++] = rg->buf;
                rg->buf = NULL;
                if (r < 0 && !p->err) {
                        p->err = r;
                        p->bad_chunk = r == -EBADMSG ? bad : p->wanted[rg->first];
                }
                if (r >= 0) {
                        p->bytes_stored += stored;
                        p->bytes_fetched += rg->len;
                        p->chunks_done += rg->n;
                }
                p->outstanding--;
                pthread_cond_broadcast(&p->cond);
        }
        pthread_mutex_unlock(&p->lock);
        free(raw);
        return NULL;
}

int cmd_pull(int argc, char **argv) {
        static const struct option options[] = {
                { "jobs", required_argument, NULL, 'j' },
                { "range-size", required_argument, NULL, 'R' },
                { "quiet", no_argument, NULL, 'q' },
                { "no-store", no_argument, NULL, 'N' },
                { NULL, 0, NULL, 0 },
        };
        struct blob_source *src = NULL;
        struct image *img = NULL;
        struct chunkstore *store = NULL;
        struct fetcher *fetcher = NULL;
        _cleanup_free_ uint32_t *wanted = NULL;
        _cleanup_free_ struct range *ranges = NULL;
        struct pull p = { 0 };
        struct progress prog;
        pthread_t tids[8];
        unsigned jobs = DEFAULT_JOBS, n_dec = 0, started = 0;
        uint64_t range_max = DEFAULT_RANGE, v, t0, total_stored = 0, raw_cached = 0, buf_size = 0;
        uint32_t n_wanted = 0, n_ranges = 0, cached = 0, next = 0;
        bool quiet = false, no_store = false;
        int c, r;

        while ((c = getopt_long(argc, argv, COMMON_SHORT_OPTIONS "q", cli_options(options), NULL)) >= 0) {
                switch (c) {
                case 'j':
                        if (parse_size(optarg, &v) < 0 || v < 1 || v > 256)
                                return cli_usage_error("pull", "--jobs wants 1 to 256");
                        jobs = (unsigned) v;
                        break;
                case 'R':
                        if (parse_size(optarg, &v) < 0 || v < (64u << 10) || v > (256u << 20))
                                return cli_usage_error("pull", "--range-size wants 64K to 256M");
                        range_max = v;
                        break;
                case 'q':
                        quiet = true;
                        break;
                case 'N':
                        no_store = true;
                        break;
                case '?':
                        return cli_usage_error("pull", "unknown option");
                default:
                        r = cli_common_option(c, optarg);
                        if (r == 2) {
                                help();
                                return 0;
                        }
                        if (r < 0)
                                return r;
                }
        }
        if (argc - optind != 1)
                return cli_usage_error("pull", "pull takes one REF");
        const char *ref = argv[optind];

        t0 = now_ns();
        r = cli_open_image(ref, &src, &img);
        if (r < 0)
                return r;
        r = cli_open_cache(0, &store);
        if (r < 0)
                goto out;

        /* What is missing: every unique chunk not in the store. */
        const struct blkindex *x = img->index;
        wanted = malloc(MAX(x->n_chunks, 1u) * sizeof *wanted);
        if (!wanted) {
                r = log_error_errno(ENOMEM, "Out of memory");
                goto out;
        }
        for (uint32_t k = 0; k < x->n_chunks; k++) {
                r = chunkstore_has(store, &x->chunks[k].digest);
                if (r < 0) {
                        log_error_errno(r, "Cannot read the chunk store '%s': %m", cli_cache_dir());
                        goto out;
                }
                if (r > 0) {
                        cached++;
                        raw_cached += x->chunks[k].raw_len;
                        continue;
                }
                wanted[n_wanted++] = k;
                total_stored += x->chunks[k].stored_len;
        }
        coalesce_sort(x, wanted, n_wanted);
        {
                const struct coalesce_limits lim = { .range_max = range_max, .gap_max = GAP_MAX };
                _cleanup_free_ struct coalesce_range *plan = NULL;

                r = coalesce_plan(x, wanted, n_wanted, &lim, &plan, &n_ranges);
                if (r < 0)
                        goto out;
                ranges = calloc(MAX(n_ranges, 1u), sizeof *ranges);
                if (!ranges) {
                        r = log_error_errno(ENOMEM, "Out of memory");
                        goto out;
                }
                for (uint32_t i = 0; i < n_ranges; i++)
                        ranges[i] = (struct range) { .pack = plan[i].pack, .off = plan[i].off, .len = plan[i].len,
                                                     .first = plan[i].first, .n = plan[i].n };
        }
        /* A chunk larger than --range-size is a range of its own. */
        for (uint32_t i = 0; i < n_ranges; i++)
                buf_size = MAX(buf_size, ranges[i].len);

        p.img = img;
        p.store = store;
        p.wanted = wanted;
        p.no_store = no_store;
        p.free_bufs = calloc(2 * jobs + 1, sizeof *p.free_bufs);
        if (!p.free_bufs) {
                r = log_error_errno(ENOMEM, "Out of memory");
                goto out;
        }
        pthread_mutex_init(&p.lock, NULL);
        pthread_cond_init(&p.cond, NULL);
        r = fetcher_new(src, &(struct fetch_options) { .max_inflight = jobs }, &fetcher);
        if (r < 0) {
                log_error_errno(r, "Cannot start the range fetcher: %m");
                goto out_sync;
        }
        {
                long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
                n_dec = (unsigned) MIN(MAX(ncpu, 1L), (long) ARRAY_SIZE(tids));
        }
        for (; started < n_dec; started++)
                if (pthread_create(&tids[started], NULL, decoder, &p) != 0)
                        break;
        if (!started) {
                r = log_error_errno(EAGAIN, "Cannot start decoder threads: %m");
                goto out_sync;
        }

        progress_start(&prog, "pull", total_stored);
        pthread_mutex_lock(&p.lock);
        /* Keep the fetcher busy and a few ranges ready for the decoders;
         * memory stays bounded by (2 * jobs) ranges. */
        while (!p.err && (next < n_ranges || p.outstanding)) {
                while (!p.err && next < n_ranges && p.outstanding < 2 * jobs) {
                        struct range *rg = &ranges[next];
                        int64_t id;

                        rg->buf = p.n_free ? p.free_bufs[--p.n_free] : range_buf_new(buf_size);
                        if (!rg->buf) {
                                p.err = -ENOMEM;
                                break;
                        }
                        rg->pull = &p;
                        p.outstanding++;
                        next++;
                        pthread_mutex_unlock(&p.lock);
                        id = fetcher_submit(fetcher, &x->packs[rg->pack].digest, rg->off, rg->buf, rg->len, 0,
                                            on_fetched, rg);
                        pthread_mutex_lock(&p.lock);
                        if (id < 0) {
                                p.free_bufs[p.n_free++] = rg->buf;
                                rg->buf = NULL;
                                p.outstanding--;
                                if (!p.err)
                                        p.err = (int) id;
                        }
                }
                if (p.err || (next >= n_ranges && !p.outstanding))
                        break;
                pthread_cond_wait(&p.cond, &p.lock);
                pthread_mutex_unlock(&p.lock);
                progress_update(&prog, p.bytes_fetched);
                pthread_mutex_lock(&p.lock);
        }
        pthread_mutex_unlock(&p.lock);
        /* On error, stop: cancel what is in flight and let decoders drain. */
        fetcher_free(fetcher);
        fetcher = NULL;
        pthread_mutex_lock(&p.lock);
        p.stop = true;
        pthread_cond_broadcast(&p.cond);
        pthread_mutex_unlock(&p.lock);
        for (unsigned i = 0; i < started; i++)
                pthread_join(tids[i], NULL);
        progress_end(&prog);
        for (uint32_t i = 0; i < n_ranges; i++)
                free(ranges[i].buf);
        while (p.n_free)
                free(p.free_bufs[--p.n_free]);

        r = p.err;
        if (r < 0) {
                char why[512], ds[DIGEST_STRING_MAX];

                if (r == -EBADMSG)
                        log_error("Pull of '%s' failed: chunk %s in pack %s does not match its digest; nothing unverified was stored",
                                  ref, digest_to_string(&x->chunks[p.bad_chunk].digest, ds),
                                  digest_to_string(&x->packs[x->chunks[p.bad_chunk].pack].digest, why));
                else
                        log_error_errno(r, "Pull of '%s' failed: %s (%llu of %u chunks stored; run pull again to resume)",
                                        ref, source_strerror(src, r, why, sizeof why),
                                        (unsigned long long) p.chunks_done, n_wanted);
                goto out_sync;
        }
        if (!quiet) {
                struct source_stats st;
                double secs = (double) (now_ns() - t0) / 1e9;
                char a[32], b[32], cc[32], d[32];

                source_get_stats(src, &st);
                if (no_store)
                        printf("Fetched %s: %u chunks not stored (--no-store), %u already cached (%s)\n", ref,
                               n_wanted, cached, format_size(raw_cached, b, sizeof b));
                else
                        printf("Pulled %s: %u chunks (%s) stored, %u already cached (%s)\n", ref, n_wanted,
                               format_size(p.bytes_stored, a, sizeof a), cached, format_size(raw_cached, b, sizeof b));
                printf("  fetched      %s in %u range requests (%s/s)\n", format_size(p.bytes_fetched, a, sizeof a),
                       n_ranges, format_size(secs > 0 ? (uint64_t) ((double) p.bytes_fetched / secs) : 0, cc, sizeof cc));
                if (st.requests)
                        printf("  http         %llu requests (%llu retries) over %llu connections, %s, %s received\n",
                               (unsigned long long) st.requests, (unsigned long long) st.retries,
                               (unsigned long long) st.connections, st.protocol ? st.protocol : "-",
                               format_size(st.bytes_down, d, sizeof d));
                printf("  time         %.2f s\n", secs);
        }
        r = 0;
out_sync:
        fetcher_free(fetcher);
        pthread_mutex_destroy(&p.lock);
        pthread_cond_destroy(&p.cond);
out:
        free(p.free_bufs);
        chunkstore_free(store);
        image_free(img);
        source_free(src);
        return r;
}
