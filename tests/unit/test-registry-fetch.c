/* SPDX-License-Identifier: Apache-2.0 */
/* fetch.c over an oci: layout (the thread-pool path): every read lands,
 * cancels and deadlines complete with their errors, done runs once; and
 * over a gated source, demand reads overtake the queued others. */
#undef NDEBUG
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "registry-client/fetch.h"

#define BLOB (4u << 20)
#define N 64

static atomic_int calls, ok, cancelled, timedout;

static void done(void *u, int r, const struct fetch_conn *conn) {
        assert(conn && conn->local_port == 0);
        atomic_fetch_add(&calls, 1);
        if (r == 0)
                atomic_fetch_add(&ok, 1);
        else if (r == -ECANCELED)
                atomic_fetch_add(&cancelled, 1);
        else if (r == -ETIMEDOUT)
                atomic_fetch_add(&timedout, 1);
        else
                assert(!"unexpected error");
}

/* A source whose reads wait at a gate and note their order (by off). */
static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;
static bool gate_open;
static unsigned gate_entered;
static uint64_t gate_order[16];
static unsigned gate_n;

static int gated_read(struct blob_source *s, const struct digest *d, uint64_t off, void *buf, size_t len) {
        (void) s;
        (void) d;
        memset(buf, 0, len);
        pthread_mutex_lock(&gate_lock);
        gate_entered++;
        pthread_cond_broadcast(&gate_cond);
        while (!gate_open)
                pthread_cond_wait(&gate_cond, &gate_lock);
        assert(gate_n < 16);
        gate_order[gate_n++] = off;
        pthread_mutex_unlock(&gate_lock);
        return 0;
}

static const struct blob_source_ops gated_ops = { .name = "gated", .blob_read = gated_read };

static void noop_done(void *u, int r, const struct fetch_conn *conn) {
        (void) u;
        assert(r == 0 && conn && conn->local_port == 0 && !conn->demand);
}

/* FETCH_DEMAND reads start before the other reads still queued, in their
 * own order; the others keep theirs. */
static void test_demand_first(void) {
        struct blob_source gated = { .ops = &gated_ops };
        const uint64_t want[] = { 0, 100, 101, 1, 2, 3 };
        struct fetcher *f;
        struct digest d = { 0 };
        uint8_t buf[6][16];

        assert(fetcher_new(&gated, &(struct fetch_options) { .max_inflight = 1, .threads = 1 }, &f) == 0);
        assert(fetcher_submit(f, &d, 0, buf[0], 16, 0, 0, noop_done, NULL) > 0);
        pthread_mutex_lock(&gate_lock);
        while (!gate_entered)
                pthread_cond_wait(&gate_cond, &gate_lock);
        pthread_mutex_unlock(&gate_lock);
        /* Read 0 holds the only slot: these queue. */
        assert(fetcher_submit(f, &d, 1, buf[1], 16, 0, 0, noop_done, NULL) > 0);
        assert(fetcher_submit(f, &d, 2, buf[2], 16, 0, 0, noop_done, NULL) > 0);
        assert(fetcher_submit(f, &d, 100, buf[3], 16, 0, FETCH_DEMAND, noop_done, NULL) > 0);
        assert(fetcher_submit(f, &d, 3, buf[4], 16, 0, 0, noop_done, NULL) > 0);
        assert(fetcher_submit(f, &d, 101, buf[5], 16, 0, FETCH_DEMAND, noop_done, NULL) > 0);
        pthread_mutex_lock(&gate_lock);
        gate_open = true;
        pthread_cond_broadcast(&gate_cond);
        pthread_mutex_unlock(&gate_lock);
        fetcher_drain(f);
        fetcher_free(f);
        assert(gate_n == 6);
        for (unsigned i = 0; i < 6; i++)
                assert(gate_order[i] == want[i]);
}

int main(void) {
        char dir[] = "/tmp/hocus-fetch-XXXXXX", ref[128], err[256];
        struct source_options o = { .create = true };
        struct blob_source *src;
        struct fetcher *f;
        struct digest d;
        uint8_t *blob = malloc(BLOB), *bufs = malloc((size_t) N * 4096);
        int64_t ids[N];

        assert(blob && bufs && mkdtemp(dir));
        for (size_t i = 0; i < BLOB; i++)
                blob[i] = (uint8_t) (i * 2654435761u >> 13);
        snprintf(ref, sizeof ref, "oci:%s/l", dir);
        assert(source_open(ref, &o, &src, err, sizeof err) == 0);
        digest_compute(blob, BLOB, &d);
        assert(source_blob_put_buf(src, &d, blob, BLOB) == 0);

        /* Many reads through two in flight: all land, in the right place. */
        assert(fetcher_new(src, &(struct fetch_options) { .max_inflight = 2 }, &f) == 0);
        for (int i = 0; i < N; i++) {
                ids[i] = fetcher_submit(f, &d, (uint64_t) i * 65536 + 17, bufs + (size_t) i * 4096, 4096, 0, 0, done, NULL);
                assert(ids[i] > 0);
        }
        fetcher_drain(f);
        assert(calls == N && ok == N);
        for (int i = 0; i < N; i++)
                assert(!memcmp(bufs + (size_t) i * 4096, blob + (size_t) i * 65536 + 17, 4096));

        /* Cancel: queued ones fail at once; done runs exactly once each. */
        calls = ok = 0;
        for (int i = 0; i < N; i++)
                ids[i] = fetcher_submit(f, &d, 0, bufs + (size_t) i * 4096, 4096, 0, 0, done, NULL);
        for (int i = N - 1; i >= 0; i--)
                (void) fetcher_cancel(f, (uint64_t) ids[i]);
        fetcher_drain(f);
        assert(calls == N && ok + cancelled == N && cancelled > 0);
        assert(fetcher_cancel(f, (uint64_t) ids[0]) == -ENOENT);

        /* A deadline in the past fails with -ETIMEDOUT. */
        calls = 0;
        assert(fetcher_submit(f, &d, 0, bufs, 4096, now_ns() - 1, 0, done, NULL) > 0);
        fetcher_drain(f);
        assert(calls == 1 && timedout == 1);
        assert(fetcher_submit(f, &d, 0, bufs, 0, 0, 0, done, NULL) == -EINVAL);

        struct fetch_stats st;
        fetcher_get_stats(f, &st);
        assert(st.queued == 0 && st.inflight == 0 && st.completed >= N && st.bytes >= (uint64_t) N * 4096);

        /* Freeing with work queued cancels it. */
        calls = 0;
        for (int i = 0; i < N; i++)
                assert(fetcher_submit(f, &d, 0, bufs + (size_t) i * 4096, 4096, 0, 0, done, NULL) > 0);
        fetcher_free(f);
        assert(calls == N);

        test_demand_first();

        source_free(src);
        snprintf(ref, sizeof ref, "rm -rf '%s'", dir);
        assert(system(ref) == 0);
        free(blob);
        free(bufs);
        return 0;
}
