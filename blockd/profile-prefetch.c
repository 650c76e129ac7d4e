/* SPDX-License-Identifier: Apache-2.0 */
#include "profile-prefetch.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "blockd/export.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"

#define PREFETCH_THREADS 8
#define PREFETCH_MAX_THREADS 16

struct prefetcher {
        struct export *e;               /* borrowed: the export stops us before it goes */
        uint64_t *chunks;
        size_t n;
        size_t next;                    /* atomic: next position to claim */
        uint64_t done, fetched, bytes;  /* atomic */
        unsigned running;               /* atomic: threads still working */
        bool stop;                      /* atomic */
        uint64_t t0_ns;
        unsigned n_threads;
        pthread_t threads[PREFETCH_MAX_THREADS];
};

/* Claim positions in order until the list ends or we are stopped. The
 * last thread out logs a summary. */
static void *prefetch_thread(void *arg) {
        struct prefetcher *p = arg;
        uint64_t errors = 0;

        for (;;) {
                size_t j;
                uint64_t bytes = 0;
                int r;

                if (__atomic_load_n(&p->stop, __ATOMIC_ACQUIRE))
                        break;
                j = __atomic_fetch_add(&p->next, 1, __ATOMIC_RELAXED);
                if (j >= p->n)
                        break;
                r = export_fetch_chunk(p->e, p->chunks[j], &bytes);
                if (r < 0) {
                        /* A prefetch is a hint: a reader that needs the chunk fetches it itself. */
                        if (errors++ == 0)
                                log_warning_errno(r, "Export %s: prefetching chunk %llu failed: %m",
                                                  export_name(p->e), (unsigned long long) p->chunks[j]);
                } else if (r > 0) {
                        __atomic_fetch_add(&p->fetched, 1, __ATOMIC_RELAXED);
                        __atomic_fetch_add(&p->bytes, bytes, __ATOMIC_RELAXED);
                }
                __atomic_fetch_add(&p->done, 1, __ATOMIC_RELEASE);
        }
        if (__atomic_sub_fetch(&p->running, 1, __ATOMIC_ACQ_REL) == 0) {
                char sz[32];
                double s = (double) (now_ns() - p->t0_ns) / 1e9;

                log_info("Export %s: prefetch %s: %llu of %zu chunks, %llu fetched (%s) in %.2f s",
                         export_name(p->e), __atomic_load_n(&p->stop, __ATOMIC_ACQUIRE) ? "stopped" : "done",
                         (unsigned long long) __atomic_load_n(&p->done, __ATOMIC_ACQUIRE), p->n,
                         (unsigned long long) __atomic_load_n(&p->fetched, __ATOMIC_ACQUIRE),
                         format_size(__atomic_load_n(&p->bytes, __ATOMIC_ACQUIRE), sz, sizeof sz), s);
        }
        return NULL;
}

int prefetcher_start(struct export *e, const uint64_t *chunks, size_t n, unsigned threads,
                     struct prefetcher **ret) {
        struct prefetcher *p;
        int r;

        if (threads == 0)
                threads = PREFETCH_THREADS;
        threads = MIN(threads, (unsigned) PREFETCH_MAX_THREADS);
        if (n < threads)
                threads = n ? (unsigned) n : 1;
        p = calloc(1, sizeof *p);
        if (!p)
                return -ENOMEM;
        p->e = e;
        p->n = n;
        p->chunks = malloc(MAX(n, (size_t) 1) * sizeof *p->chunks);
        if (!p->chunks) {
                free(p);
                return -ENOMEM;
        }
        if (n)
                memcpy(p->chunks, chunks, n * sizeof *chunks);
        p->t0_ns = now_ns();
        p->running = threads;
        for (unsigned i = 0; i < threads; i++) {
                r = -pthread_create(&p->threads[i], NULL, prefetch_thread, p);
                if (r < 0) {
                        /* The ones started finish the list; account for the rest. */
                        __atomic_sub_fetch(&p->running, threads - i, __ATOMIC_ACQ_REL);
                        if (i == 0) {
                                free(p->chunks);
                                free(p);
                                return r;
                        }
                        break;
                }
                p->n_threads++;
        }
        *ret = p;
        return 0;
}

void prefetcher_stop(struct prefetcher *p) {
        if (!p)
                return;
        __atomic_store_n(&p->stop, true, __ATOMIC_RELEASE);
        for (unsigned i = 0; i < p->n_threads; i++)
                pthread_join(p->threads[i], NULL);
        free(p->chunks);
        free(p);
}

void prefetcher_progress(struct prefetcher *p, struct prefetch_progress *ret) {
        *ret = (struct prefetch_progress) { 0 };
        if (!p)
                return;
        ret->queued = p->n;
        ret->done = MIN(__atomic_load_n(&p->done, __ATOMIC_ACQUIRE), (uint64_t) p->n);
        ret->fetched = __atomic_load_n(&p->fetched, __ATOMIC_RELAXED);
        ret->bytes = __atomic_load_n(&p->bytes, __ATOMIC_RELAXED);
        ret->active = __atomic_load_n(&p->running, __ATOMIC_ACQUIRE) > 0;
}
