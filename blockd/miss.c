/* SPDX-License-Identifier: Apache-2.0 */
#include "miss.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/log.h"

/* A fetch in flight. Waiters hold a reference until they read the result. */
struct inflight {
        uint32_t k;
        bool done;
        int result;
        unsigned refs;
        struct inflight *next;
};

struct miss_table {
        pthread_mutex_t lock;
        pthread_cond_t cond;
        struct inflight *list;  /* fetches in flight: few, one per busy thread */
};

int miss_table_new(struct miss_table **ret) {
        struct miss_table *t = calloc(1, sizeof *t);

        if (!t)
                return -ENOMEM;
        pthread_mutex_init(&t->lock, NULL);
        pthread_cond_init(&t->cond, NULL);
        *ret = t;
        return 0;
}

void miss_table_free(struct miss_table *t) {
        if (!t)
                return;
        pthread_mutex_destroy(&t->lock);
        pthread_cond_destroy(&t->cond);
        free(t);
}

static void unlink_inflight(struct miss_table *t, struct inflight *f) {
        for (struct inflight **pp = &t->list; *pp; pp = &(*pp)->next)
                if (*pp == f) {
                        *pp = f->next;
                        return;
                }
}

int miss_fetch(struct miss_table *t, struct image *img, struct chunkstore *store, uint32_t k, void **ret_buf,
               uint64_t *ret_fetched) {
        const struct blkindex_chunk *c = &img->index->chunks[k];
        _cleanup_free_ void *buf = NULL, *scratch = NULL;
        struct inflight *f;
        uint64_t fetched = 0;
        int r;

        pthread_mutex_lock(&t->lock);
        for (f = t->list; f; f = f->next)
                if (f->k == k)
                        break;
        if (f) {
                f->refs++;
                while (!f->done)
                        pthread_cond_wait(&t->cond, &t->lock);
                r = f->result < 0 ? f->result : -EAGAIN;
                if (--f->refs == 0)
                        free(f);
                pthread_mutex_unlock(&t->lock);
                return r;
        }
        f = calloc(1, sizeof *f);
        if (!f) {
                pthread_mutex_unlock(&t->lock);
                return -ENOMEM;
        }
        f->k = k;
        f->refs = 1;
        f->next = t->list;
        t->list = f;
        pthread_mutex_unlock(&t->lock);

        buf = malloc(c->raw_len ? c->raw_len : 1);
        scratch = malloc(c->stored_len ? c->stored_len : 1);
        if (!buf || !scratch)
                r = -ENOMEM;
        else
                r = image_get_chunk(img, store, k, buf, scratch, &fetched);
        if (r < 0)
                log_debug("miss: chunk %u: %s", k, strerror(-r));

        pthread_mutex_lock(&t->lock);
        unlink_inflight(t, f);
        f->done = true;
        f->result = r;
        if (--f->refs == 0)
                free(f);
        pthread_cond_broadcast(&t->cond);
        pthread_mutex_unlock(&t->lock);
        if (r < 0)
                return r;
        *ret_buf = TAKE_PTR(buf);
        *ret_fetched = fetched;
        return 0;
}
