/* SPDX-License-Identifier: Apache-2.0 */
/* The write-behind queue: a queued chunk is served from its buffer until
 * it is in the store, the queue refuses past its bound (-ENOBUFS) and a
 * digest queued twice (-EEXIST), a flush stores everything (held: no
 * writer at all), stored entries are adopted into the fd cache, and
 * pushers, readers and the writer run at once (run under ASan). */
#undef NDEBUG
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blockd/chunkfd.h"
#include "blockd/sched-internal.h"
#include "blockd/write-behind.h"

#define N 200
#define LEN 8192
#define THREADS 4

static struct digest ids[N];

static struct sched_buf *chunk(int i) {
        struct sched_buf *b = sched_buf_new(LEN);

        assert(b);
        for (int k = 0; k < LEN; k++)
                b->data[k] = (uint8_t) (i * 131 + k * 7 + (k >> 8));
        digest_compute(b->data, LEN, &ids[i]);
        return b;
}

static void check_stored(struct chunkstore *cs, int from, int to) {
        uint8_t got[LEN];

        for (int i = from; i < to; i++)
                assert(chunkstore_get(cs, &ids[i], got, LEN) == 0);
}

struct worker {
        struct write_behind *wb;
        int first;
};

static void *pusher(void *arg) {
        struct worker *w = arg;

        for (int i = w->first; i < N; i += THREADS) {
                struct sched_buf *b = chunk(i), *got;

                assert(write_behind_push(w->wb, &ids[i], b) == 0);
                /* Readers of it, while the writer may be storing it. */
                got = write_behind_get(w->wb, &ids[i], true);
                if (got) {
                        assert(memcmp(sched_buf_data(got), sched_buf_data(b), LEN) == 0);
                        sched_buf_put(got);
                }
                sched_buf_put(b);
        }
        return NULL;
}

int main(void) {
        char dir[] = "/tmp/test-write-behind.XXXXXX", cmd[128];
        struct chunkstore *cs;
        struct chunkfd_cache *fds;
        struct write_behind *wb;
        struct write_behind_stats st;
        struct sched_buf *b, *got;
        struct chunkfd *h;
        pthread_t th[THREADS];
        struct worker w[THREADS];

        assert(mkdtemp(dir));
        assert(chunkstore_open(dir, 0, &cs) == 0);
        assert(chunkfd_cache_new(cs, 1024, &fds) == 0);

        /* Held: nothing stored until the flush; bound; duplicates. */
        setenv("HOCUS_BLK_WRITE_BEHIND_HOLD", "1", 1);
        assert(write_behind_new(cs, fds, 4 * LEN, true, &wb) == 0);
        unsetenv("HOCUS_BLK_WRITE_BEHIND_HOLD");
        for (int i = 0; i < 4; i++) {
                b = chunk(i);
                assert(write_behind_push(wb, &ids[i], b) == 0);
                sched_buf_put(b);       /* the queue keeps its own reference */
        }
        b = chunk(0);
        assert(write_behind_push(wb, &ids[0], b) == -EEXIST);
        sched_buf_put(b);
        b = chunk(4);
        assert(write_behind_push(wb, &ids[4], b) == -ENOBUFS);
        sched_buf_put(b);
        assert(chunkstore_has(cs, &ids[0]) == 0);
        got = write_behind_get(wb, &ids[2], true);
        assert(got && sched_buf_len(got) == LEN);
        b = chunk(2);
        assert(memcmp(sched_buf_data(got), sched_buf_data(b), LEN) == 0);
        sched_buf_put(b);
        sched_buf_put(got);
        assert(!write_behind_get(wb, &ids[4], true));
        write_behind_get_stats(wb, &st);
        assert(st.queued == 4 && st.queued_bytes == 4 * LEN && st.full == 1 && st.hits == 1 && st.stored == 0);
        write_behind_flush(wb);
        check_stored(cs, 0, 4);
        assert(!write_behind_has(wb, &ids[0]));
        /* Adopted: open in the fd cache, as verified. */
        assert(chunkfd_lookup(fds, &ids[1], &h) == 0);
        chunkfd_put(fds, h);
        write_behind_get_stats(wb, &st);
        assert(st.queued == 0 && st.queued_bytes == 0 && st.flushed == 4 && st.failed == 0);
        /* Room again after the flush. */
        b = chunk(4);
        assert(write_behind_push(wb, &ids[4], b) == 0);
        sched_buf_put(b);
        write_behind_free(wb);  /* flushes */
        check_stored(cs, 4, 5);

        /* The idle writer with pushers and readers at once; free flushes. */
        assert(write_behind_new(cs, fds, (uint64_t) N * LEN, true, &wb) == 0);
        for (int t = 0; t < THREADS; t++) {
                w[t] = (struct worker) { .wb = wb, .first = t };
                assert(pthread_create(&th[t], NULL, pusher, &w[t]) == 0);
        }
        for (int t = 0; t < THREADS; t++)
                pthread_join(th[t], NULL);
        write_behind_get_stats(wb, &st);
        /* 0-4 were in the store already: stored again as no-ops. */
        assert(st.deferred == N && st.full == 0);
        write_behind_free(wb);
        check_stored(cs, 0, N);

        /* Normal priority, and a flush racing the writer. */
        assert(write_behind_new(cs, NULL, 2 * LEN, false, &wb) == 0);
        for (int i = 0; i < N; i++) {
                b = chunk(i);
                while (write_behind_push(wb, &ids[i], b) == -ENOBUFS)
                        write_behind_flush(wb);
                sched_buf_put(b);
        }
        write_behind_flush(wb);
        write_behind_get_stats(wb, &st);
        assert(st.queued == 0 && st.deferred == N && st.stored + st.flushed == N && st.failed == 0);
        write_behind_free(wb);

        chunkfd_cache_free(fds);
        chunkstore_free(cs);
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        assert(system(cmd) == 0);
        printf("ok\n");
        return 0;
}
