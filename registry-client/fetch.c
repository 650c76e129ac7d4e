/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The range fetcher (fetch.h). Items move queue -> in flight -> done.
 * pump() starts queued items while there is room; it runs after every
 * submit and every completion, and never holds f->lock while calling
 * into the source (a source may complete a read on another thread at any
 * time, and that completion takes f->lock).
 */
#include "fetch.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"

enum item_state {
        ITEM_QUEUED,
        ITEM_INFLIGHT,
};

struct fetch_item {
        uint64_t id;
        struct source_aio aio;
        fetch_done_fn done;
        void *userdata;
        enum item_state state;
        bool cancel_requested;
        bool started;                   /* the source has it */
        bool ended;                     /* the source completed it before pump() marked it started */
        int end_result;
        struct fetch_item *prev, *next;
        struct fetch_item *work_next;   /* pool work list */
        struct fetcher *f;
};

struct list {
        struct fetch_item *head, *tail;
        unsigned n;
};

struct fetcher {
        struct blob_source *src;
        unsigned max_inflight;
        bool async;                     /* the source reads asynchronously */

        pthread_mutex_t lock;
        pthread_cond_t cond;            /* drain waits, pool workers wait */
        struct list queue, inflight;
        struct fetch_item *work, *work_tail;    /* pool: started, not yet picked up */
        uint64_t next_id;
        unsigned completing;            /* done callbacks running */
        bool stopping;
        struct fetch_stats stats;

        pthread_t *threads;
        unsigned n_threads;
};

static void list_append(struct list *l, struct fetch_item *it) {
        it->prev = l->tail;
        it->next = NULL;
        if (l->tail)
                l->tail->next = it;
        else
                l->head = it;
        l->tail = it;
        l->n++;
}

static void list_unlink(struct list *l, struct fetch_item *it) {
        if (it->prev)
                it->prev->next = it->next;
        else
                l->head = it->next;
        if (it->next)
                it->next->prev = it->prev;
        else
                l->tail = it->prev;
        it->prev = it->next = NULL;
        l->n--;
}

/* Put it before pos (NULL: at the end). */
static void list_insert_before(struct list *l, struct fetch_item *pos, struct fetch_item *it) {
        if (!pos) {
                list_append(l, it);
                return;
        }
        it->next = pos;
        it->prev = pos->prev;
        if (pos->prev)
                pos->prev->next = it;
        else
                l->head = it;
        pos->prev = it;
        l->n++;
}

static void pump(struct fetcher *f);

/* Report an item's result and free it. Called without f->lock; the item
 * is already off every list and counted in f->completing. */
static int report(struct fetch_item *it, int r) {
        struct fetch_conn conn = {
                .local_port = it->aio.local_port, .protocol = it->aio.protocol, .demand = it->aio.demand_conn,
        };

        if (it->cancel_requested && r == 0)
                r = -ECANCELED;
        it->done(it->userdata, r, &conn);
        free(it);
        return r;
}

/* The end of a completion: count it, and let drain and free go on. After
 * this the fetcher may be gone: touch nothing. */
static void release(struct fetcher *f, int r) {
        pthread_mutex_lock(&f->lock);
        if (r == 0)
                f->stats.completed++;
        else if (r == -ECANCELED)
                f->stats.cancelled++;
        else
                f->stats.failed++;
        f->completing--;
        pthread_cond_broadcast(&f->cond);
        pthread_mutex_unlock(&f->lock);
}

static void finish(struct fetcher *f, struct fetch_item *it, int r) {
        release(f, report(it, r));
}

/* The end of an in-flight read: off the list, reported, freed. The
 * completion stays counted until pump() returned, so that fetcher_free
 * waits. */
static void complete_item(struct fetcher *f, struct fetch_item *it, int r) {
        pthread_mutex_lock(&f->lock);
        list_unlink(&f->inflight, it);
        f->completing++;
        if (r == 0 && !it->cancel_requested)
                f->stats.bytes += it->aio.len;
        pthread_mutex_unlock(&f->lock);
        r = report(it, r);
        pump(f);
        release(f, r);
}

/* The source finished an in-flight read (any thread). An asynchronous
 * read can end before pump() is back from starting it (the source's
 * thread is quick); pump() still uses the item then, so it completes it. */
static void aio_done(struct source_aio *a, int r) {
        struct fetch_item *it = a->userdata;
        struct fetcher *f = it->f;

        pthread_mutex_lock(&f->lock);
        if (f->async && !it->started) {
                it->ended = true;
                it->end_result = r;
                pthread_mutex_unlock(&f->lock);
                return;
        }
        pthread_mutex_unlock(&f->lock);
        complete_item(f, it, r);
}

static void *pool_main(void *arg) {
        struct fetcher *f = arg;

        pthread_mutex_lock(&f->lock);
        for (;;) {
                struct fetch_item *it;
                int r;

                while (!f->work && !f->stopping)
                        pthread_cond_wait(&f->cond, &f->lock);
                if (!f->work)
                        break;
                it = f->work;
                f->work = it->work_next;
                if (!f->work)
                        f->work_tail = NULL;
                pthread_mutex_unlock(&f->lock);
                if (it->cancel_requested)
                        r = -ECANCELED;
                else if (it->aio.deadline_ns && now_ns() >= it->aio.deadline_ns)
                        r = -ETIMEDOUT;
                else
                        r = source_blob_read(f->src, &it->aio.digest, it->aio.off, it->aio.buf, it->aio.len);
                aio_done(&it->aio, r);
                pthread_mutex_lock(&f->lock);
        }
        pthread_mutex_unlock(&f->lock);
        return NULL;
}

/* Start queued items while there is room, and fail expired ones. */
static void pump(struct fetcher *f) {
        struct fetch_item *start = NULL, **tail = &start, *expired = NULL, *it, *next;
        uint64_t now = now_ns();

        pthread_mutex_lock(&f->lock);
        for (it = f->queue.head; it; it = next) {
                next = it->next;
                if (it->aio.deadline_ns && now >= it->aio.deadline_ns) {
                        list_unlink(&f->queue, it);
                        f->completing++;
                        it->work_next = expired;
                        expired = it;
                }
        }
        while (f->queue.head && f->inflight.n < f->max_inflight) {
                it = f->queue.head;
                list_unlink(&f->queue, it);
                it->state = ITEM_INFLIGHT;
                list_append(&f->inflight, it);
                it->work_next = NULL;
                *tail = it;
                tail = &it->work_next;
        }
        if (!f->async && start) {
                /* Hand them to the pool. */
                if (f->work_tail)
                        f->work_tail->work_next = start;
                else
                        f->work = start;
                for (it = start; it->work_next; it = it->work_next)
                        ;
                f->work_tail = it;
                for (it = start; it; it = it->work_next)
                        it->started = true;
                start = NULL;
                pthread_cond_broadcast(&f->cond);
        }
        pthread_mutex_unlock(&f->lock);

        for (it = expired; it; it = next) {
                next = it->work_next;
                finish(f, it, -ETIMEDOUT);
        }
        for (it = start; it; it = next) {
                int r;

                next = it->work_next;
                r = source_blob_read_async(f->src, &it->aio);
                if (r < 0) {
                        complete_item(f, it, r);
                        continue;
                }
                pthread_mutex_lock(&f->lock);
                if (it->ended) {
                        /* Done already (aio_done left it to us). */
                        r = it->end_result;
                        pthread_mutex_unlock(&f->lock);
                        complete_item(f, it, r);
                        continue;
                }
                /* A cancel that came before the source had it. */
                it->started = true;
                if (it->cancel_requested && it->state == ITEM_INFLIGHT)
                        source_blob_read_cancel(f->src, &it->aio);
                pthread_mutex_unlock(&f->lock);
        }
}

int fetcher_new(struct blob_source *src, const struct fetch_options *o, struct fetcher **ret) {
        static const struct fetch_options defaults = { 0 };
        struct fetcher *f;
        unsigned threads;

        if (!o)
                o = &defaults;
        f = calloc(1, sizeof *f);
        if (!f)
                return -ENOMEM;
        f->src = src;
        f->max_inflight = o->max_inflight ? o->max_inflight : 16;
        f->async = src->ops->blob_read_async != NULL;
        f->next_id = 1;
        pthread_mutex_init(&f->lock, NULL);
        pthread_cond_init(&f->cond, NULL);
        if (!f->async) {
                threads = o->threads ? o->threads : MIN(f->max_inflight, 8u);
                f->threads = calloc(threads, sizeof *f->threads);
                if (!f->threads) {
                        fetcher_free(f);
                        return -ENOMEM;
                }
                for (; f->n_threads < threads; f->n_threads++)
                        if (pthread_create(&f->threads[f->n_threads], NULL, pool_main, f) != 0)
                                break;
                if (f->n_threads == 0) {
                        fetcher_free(f);
                        return -EAGAIN;
                }
                f->max_inflight = MIN(f->max_inflight, f->n_threads);
        }
        *ret = f;
        return 0;
}

int64_t fetcher_submit(struct fetcher *f, const struct digest *d, uint64_t off, void *buf, size_t len,
                       uint64_t deadline_ns, unsigned flags, fetch_done_fn done, void *userdata) {
        struct fetch_item *it, *pos = NULL;
        int64_t id;

        if (len == 0 || !done)
                return -EINVAL;
        it = calloc(1, sizeof *it);
        if (!it)
                return -ENOMEM;
        it->f = f;
        it->aio.digest = *d;
        it->aio.off = off;
        it->aio.buf = buf;
        it->aio.len = len;
        it->aio.deadline_ns = deadline_ns;
        it->aio.demand = flags & FETCH_DEMAND;
        it->aio.done = aio_done;
        it->aio.userdata = it;
        it->done = done;
        it->userdata = userdata;
        pthread_mutex_lock(&f->lock);
        if (f->stopping) {
                pthread_mutex_unlock(&f->lock);
                free(it);
                return -ESHUTDOWN;
        }
        id = (int64_t) (it->id = f->next_id++);
        it->state = ITEM_QUEUED;
        /* Demand goes after the demand already queued, before the rest. */
        if (it->aio.demand)
                for (pos = f->queue.head; pos && pos->aio.demand; pos = pos->next)
                        ;
        list_insert_before(&f->queue, pos, it);
        f->stats.submitted++;
        pthread_mutex_unlock(&f->lock);
        pump(f);
        return id;
}

static struct fetch_item *find(struct list *l, uint64_t id) {
        for (struct fetch_item *it = l->head; it; it = it->next)
                if (it->id == id)
                        return it;
        return NULL;
}

int fetcher_cancel(struct fetcher *f, uint64_t id) {
        struct fetch_item *it;

        pthread_mutex_lock(&f->lock);
        it = find(&f->queue, id);
        if (it) {
                list_unlink(&f->queue, it);
                f->completing++;
                pthread_mutex_unlock(&f->lock);
                finish(f, it, -ECANCELED);
                return 0;
        }
        it = find(&f->inflight, id);
        if (!it) {
                pthread_mutex_unlock(&f->lock);
                return -ENOENT;
        }
        it->cancel_requested = true;
        /* Still on the in-flight list, so its completion (which needs the
         * lock) has not run: the source's handle is alive. */
        if (f->async && it->started)
                source_blob_read_cancel(f->src, &it->aio);
        pthread_mutex_unlock(&f->lock);
        return 0;
}

void fetcher_drain(struct fetcher *f) {
        pthread_mutex_lock(&f->lock);
        while (f->queue.n || f->inflight.n || f->completing)
                pthread_cond_wait(&f->cond, &f->lock);
        pthread_mutex_unlock(&f->lock);
}

void fetcher_get_stats(struct fetcher *f, struct fetch_stats *ret) {
        pthread_mutex_lock(&f->lock);
        *ret = f->stats;
        ret->queued = f->queue.n;
        ret->inflight = f->inflight.n;
        pthread_mutex_unlock(&f->lock);
}

void fetcher_free(struct fetcher *f) {
        struct fetch_item *it;

        if (!f)
                return;
        pthread_mutex_lock(&f->lock);
        f->stopping = true;
        while ((it = f->queue.head)) {
                list_unlink(&f->queue, it);
                f->completing++;
                pthread_mutex_unlock(&f->lock);
                finish(f, it, -ECANCELED);
                pthread_mutex_lock(&f->lock);
        }
        for (it = f->inflight.head; it; it = it->next) {
                it->cancel_requested = true;
                if (f->async && it->started)
                        source_blob_read_cancel(f->src, &it->aio);
        }
        while (f->inflight.n || f->completing)
                pthread_cond_wait(&f->cond, &f->lock);
        pthread_cond_broadcast(&f->cond);
        pthread_mutex_unlock(&f->lock);
        for (unsigned i = 0; i < f->n_threads; i++)
                pthread_join(f->threads[i], NULL);
        free(f->threads);
        pthread_mutex_destroy(&f->lock);
        pthread_cond_destroy(&f->cond);
        free(f);
}
