/* SPDX-License-Identifier: Apache-2.0 */
/* fetch.c over an oci: layout (the thread-pool path): every read lands,
 * cancels and deadlines complete with their errors, done runs once. */
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

static void done(void *u, int r) {
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
                ids[i] = fetcher_submit(f, &d, (uint64_t) i * 65536 + 17, bufs + (size_t) i * 4096, 4096, 0, done, NULL);
                assert(ids[i] > 0);
        }
        fetcher_drain(f);
        assert(calls == N && ok == N);
        for (int i = 0; i < N; i++)
                assert(!memcmp(bufs + (size_t) i * 4096, blob + (size_t) i * 65536 + 17, 4096));

        /* Cancel: queued ones fail at once; done runs exactly once each. */
        calls = ok = 0;
        for (int i = 0; i < N; i++)
                ids[i] = fetcher_submit(f, &d, 0, bufs + (size_t) i * 4096, 4096, 0, done, NULL);
        for (int i = N - 1; i >= 0; i--)
                (void) fetcher_cancel(f, (uint64_t) ids[i]);
        fetcher_drain(f);
        assert(calls == N && ok + cancelled == N && cancelled > 0);
        assert(fetcher_cancel(f, (uint64_t) ids[0]) == -ENOENT);

        /* A deadline in the past fails with -ETIMEDOUT. */
        calls = 0;
        assert(fetcher_submit(f, &d, 0, bufs, 4096, now_ns() - 1, done, NULL) > 0);
        fetcher_drain(f);
        assert(calls == 1 && timedout == 1);
        assert(fetcher_submit(f, &d, 0, bufs, 0, 0, done, NULL) == -EINVAL);

        struct fetch_stats st;
        fetcher_get_stats(f, &st);
        assert(st.queued == 0 && st.inflight == 0 && st.completed >= N && st.bytes >= (uint64_t) N * 4096);

        /* Freeing with work queued cancels it. */
        calls = 0;
        for (int i = 0; i < N; i++)
                assert(fetcher_submit(f, &d, 0, bufs + (size_t) i * 4096, 4096, 0, done, NULL) > 0);
        fetcher_free(f);
        assert(calls == N);

        source_free(src);
        snprintf(ref, sizeof ref, "rm -rf '%s'", dir);
        assert(system(ref) == 0);
        free(blob);
        free(bufs);
        return 0;
}
