/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The write-behind queue (write-behind.h). An entry is in the table
 * (under the lock, touched by normal-priority threads only) from its push
 * until it is reaped; meanwhile it travels: the incoming list (lock-free,
 * pushed by decoders, taken whole by the writer), then whoever claims it
 * (QUEUED -> CLAIMED, one atomic exchange: the writer or a flush) stores
 * it, marks it STORED and pushes it on the done list (lock-free), from
 * which the next push, stats call or flush reaps it: fd adopted, out of
 * the table, buffer released.
 *
 * References: the table's, and the incoming list's, which passes to the
 * done list when its holder stores it (a flush stores with a reference
 * of its own, which passes the same way, and the writer drops the
 * incoming one when it finds the entry claimed).
 */
#include "write-behind.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blockd/chunkfd.h"
#include "blockd/sched.h"
#include "common/log.h"
#include "common/util.h"

#define BUCKETS 1024

enum { QUEUED, CLAIMED, STORED };

struct entry {
        struct digest d;
        struct sched_buf *buf;          /* the table's reference; released when reaped */
        size_t len;
        _Atomic int state;
        uint64_t seq;                   /* its push's number */
        int fd;                         /* once STORED: on the new store entry, or -EBADF */
        int result;                     /* once STORED: the insert's */
        _Atomic unsigned refs;
        struct entry *hnext;            /* table (lock) */
        struct entry *qnext;            /* incoming list */
        struct entry *dnext;            /* done list */
};

struct write_behind {
        struct chunkstore *store;
        struct chunkfd_cache *fds;
        uint64_t max_bytes;

        pthread_mutex_t lock;           /* the table, count, bytes; never taken by the writer */
        struct entry *table[BUCKETS];
        uint64_t count, bytes;

        _Atomic(struct entry *) incoming;
        _Atomic(struct entry *) done;
        sem_t work;                     /* a push, or stop */
        pthread_mutex_t flush_lock;     /* with flush_cond: an entry stored while a flush waits */
        pthread_cond_t flush_cond;
        uint64_t seq;                   /* pushes (lock) */
        _Atomic unsigned flushers;
        _Atomic bool stop;
        pthread_t writer;
        bool running;

        _Atomic uint64_t deferred, stored, flushed, failed, full, hits;
        _Atomic bool warned;
};

static size_t bucket(const struct digest *d) {
        uint64_t h;

        memcpy(&h, d->b, sizeof h);
        return h % BUCKETS;
}

static void entry_unref(struct entry *e) {
        if (atomic_fetch_sub(&e->refs, 1) == 1)
                free(e);
}

static struct entry *lookup(struct write_behind *wb, const struct digest *d) {
        for (struct entry *e = wb->table[bucket(d)]; e; e = e->hnext)
                if (digest_equal(&e->d, d))
                        return e;
        return NULL;
}

static void push_list(_Atomic(struct entry *) *head, struct entry *e, bool done) {
        struct entry *old = atomic_load(head);

        do {
                if (done)
                        e->dnext = old;
                else
                        e->qnext = old;
        } while (!atomic_compare_exchange_weak(head, &old, e));
}

/* Store a claimed entry, then hand it (with the caller's reference) to
 * the reapers. */
static void store_one(struct write_behind *wb, struct entry *e, bool flush) {
        int fd = -EBADF, r;

        r = chunkstore_put_verified_fd(wb->store, &e->d, sched_buf_data(e->buf), e->len, wb->fds ? &fd : NULL);
        e->result = r;
        e->fd = fd;
        atomic_fetch_add(r < 0 ? &wb->failed : flush ? &wb->flushed : &wb->stored, 1);
        atomic_store(&e->state, STORED);
        push_list(&wb->done, e, true);
        /* e may be gone now. A flush waits for what others store; only
         * flushes take this lock, never a serving thread. */
        if (atomic_load(&wb->flushers)) {
                pthread_mutex_lock(&wb->flush_lock);
                pthread_cond_broadcast(&wb->flush_cond);
                pthread_mutex_unlock(&wb->flush_lock);
        }
}

static bool claim(struct entry *e) {
        int want = QUEUED;

        return atomic_compare_exchange_strong(&e->state, &want, CLAIMED);
}

static void *writer_main(void *arg) {
        struct write_behind *wb = arg;

        for (;;) {
                struct entry *list, *fifo = NULL;

                while (sem_wait(&wb->work) < 0 && errno == EINTR)
                        ;
                list = atomic_exchange(&wb->incoming, NULL);
                if (!list && atomic_load(&wb->stop))
                        break;
                /* Oldest first. */
                while (list) {
                        struct entry *next = list->qnext;
                        list->qnext = fifo;
                        fifo = list;
                        list = next;
                }
                while (fifo) {
                        struct entry *e = fifo, *next = fifo->qnext;

                        if (claim(e))
                                store_one(wb, e, false);
                        else
                                entry_unref(e);         /* a flush stored it */
                        fifo = next;
                }
        }
        return NULL;
}

/* Drop stored entries from the table, their fds into the fd cache first
 * (whoever misses the table finds them open). Not from the writer. */
static void reap(struct write_behind *wb) {
        struct entry *list = atomic_exchange(&wb->done, NULL), *e;

        if (!list)
                return;
        for (e = list; e; e = e->dnext) {
                if (e->fd >= 0 && wb->fds)
                        chunkfd_adopt(wb->fds, &e->d, e->fd);
                else if (e->fd >= 0)
                        close(e->fd);
                e->fd = -EBADF;
                if (e->result < 0 && e->result != -ENOSPC && !atomic_exchange(&wb->warned, true)) {
                        char hex[DIGEST_HEX_LEN + 1];
                        errno = -e->result;
                        log_warning("Cannot store chunk %s (written behind; said once): %m", digest_to_hex(&e->d, hex));
                }
        }
        pthread_mutex_lock(&wb->lock);
        for (e = list; e; e = e->dnext) {
                for (struct entry **pp = &wb->table[bucket(&e->d)]; *pp; pp = &(*pp)->hnext)
                        if (*pp == e) {
                                *pp = e->hnext;
                                break;
                        }
                wb->count--;
                wb->bytes -= e->len;
        }
        pthread_mutex_unlock(&wb->lock);
        while (list) {
                struct entry *next = list->dnext;

                sched_buf_put(list->buf);
                list->buf = NULL;
                entry_unref(list);      /* the table's */
                entry_unref(list);      /* the done list's */
                list = next;
        }
}

int write_behind_new(struct chunkstore *store, struct chunkfd_cache *fds, uint64_t max_bytes, bool idle,
                     struct write_behind **ret) {
        struct write_behind *wb = calloc(1, sizeof *wb);
        pthread_attr_t attr;
        int r;

        if (!wb)
                return -ENOMEM;
        wb->store = store;
        wb->fds = fds;
        wb->max_bytes = max_bytes;
        pthread_mutex_init(&wb->lock, NULL);
        sem_init(&wb->work, 0, 0);
        pthread_mutex_init(&wb->flush_lock, NULL);
        pthread_cond_init(&wb->flush_cond, NULL);
        /* Tests: the writer stores nothing, only flushes do (a chunk read
         * while still queued, deterministically). */
        if (getenv("HOCUS_BLK_WRITE_BEHIND_HOLD")) {
                *ret = wb;
                return 0;
        }
        pthread_attr_init(&attr);
        if (idle) {
                /* The writer runs only when the CPU has nothing else to do. */
                struct sched_param sp = { .sched_priority = 0 };

                pthread_attr_setinheritsched(&attr, PTHREAD_EXPLICIT_SCHED);
                pthread_attr_setschedpolicy(&attr, SCHED_IDLE);
                pthread_attr_setschedparam(&attr, &sp);
        }
        r = -pthread_create(&wb->writer, &attr, writer_main, wb);
        if (r == -EPERM && idle) {
                /* Not allowed (a seccomp or container policy): a nice writer then. */
                log_debug("write-behind: SCHED_IDLE refused, the writer runs at normal priority");
                r = -pthread_create(&wb->writer, NULL, writer_main, wb);
        }
        pthread_attr_destroy(&attr);
        if (r < 0) {
                sem_destroy(&wb->work);
                pthread_mutex_destroy(&wb->flush_lock);
                pthread_cond_destroy(&wb->flush_cond);
                pthread_mutex_destroy(&wb->lock);
                free(wb);
                return r;
        }
        wb->running = true;
        *ret = wb;
        return 0;
}

void write_behind_set_fd_cache(struct write_behind *wb, struct chunkfd_cache *fds) {
        wb->fds = fds;
}

int write_behind_push(struct write_behind *wb, const struct digest *d, struct sched_buf *buf) {
        struct entry *e;
        size_t len = sched_buf_len(buf);

        reap(wb);
        e = calloc(1, sizeof *e);
        if (!e)
                return -ENOBUFS;
        pthread_mutex_lock(&wb->lock);
        if (lookup(wb, d)) {
                pthread_mutex_unlock(&wb->lock);
                free(e);
                return -EEXIST;
        }
        if (wb->bytes + len > wb->max_bytes) {
                pthread_mutex_unlock(&wb->lock);
                free(e);
                atomic_fetch_add(&wb->full, 1);
                return -ENOBUFS;
        }
        e->d = *d;
        e->buf = sched_buf_ref(buf);
        e->len = len;
        e->fd = -EBADF;
        atomic_init(&e->state, QUEUED);
        atomic_init(&e->refs, 2);
        e->hnext = wb->table[bucket(d)];
        wb->table[bucket(d)] = e;
        e->seq = ++wb->seq;
        wb->count++;
        wb->bytes += len;
        pthread_mutex_unlock(&wb->lock);
        atomic_fetch_add(&wb->deferred, 1);
        push_list(&wb->incoming, e, false);
        if (wb->running)
                sem_post(&wb->work);
        return 0;
}

struct sched_buf *write_behind_get(struct write_behind *wb, const struct digest *d, bool hit) {
        struct sched_buf *b = NULL;
        struct entry *e;

        pthread_mutex_lock(&wb->lock);
        e = lookup(wb, d);
        if (e)
                b = sched_buf_ref(e->buf);
        pthread_mutex_unlock(&wb->lock);
        if (b && hit)
                atomic_fetch_add(&wb->hits, 1);
        return b;
}

bool write_behind_has(struct write_behind *wb, const struct digest *d) {
        bool r;

        pthread_mutex_lock(&wb->lock);
        r = lookup(wb, d) != NULL;
        pthread_mutex_unlock(&wb->lock);
        return r;
}

/* Pin an entry pushed before seq `upto` that is not stored yet, one no
 * one has claimed first. NULL when there is none. */
static struct entry *pin_unstored(struct write_behind *wb, uint64_t upto) {
        struct entry *found = NULL;

        pthread_mutex_lock(&wb->lock);
        for (size_t b = 0; b < BUCKETS; b++)
                for (struct entry *e = wb->table[b]; e; e = e->hnext) {
                        int st = atomic_load(&e->state);

                        if (e->seq > upto || st == STORED)
                                continue;
                        if (!found || st == QUEUED)
                                found = e;
                        if (st == QUEUED)
                                goto out;
                }
out:
        if (found)
                atomic_fetch_add(&found->refs, 1);
        pthread_mutex_unlock(&wb->lock);
        return found;
}

void write_behind_flush(struct write_behind *wb) {
        struct entry *e;
        uint64_t upto;

        if (!wb)
                return;
        atomic_fetch_add(&wb->flushers, 1);
        pthread_mutex_lock(&wb->lock);
        upto = wb->seq;
        pthread_mutex_unlock(&wb->lock);
        /* One at a time, so no list to allocate: a few hundred entries
         * at most, each a walk of the table. */
        while ((e = pin_unstored(wb, upto))) {
                if (claim(e)) {
                        store_one(wb, e, true);         /* the pin goes with it */
                        continue;
                }
                /* Someone else stores it: the writer, or another flush. */
                pthread_mutex_lock(&wb->flush_lock);
                while (atomic_load(&e->state) != STORED)
                        pthread_cond_wait(&wb->flush_cond, &wb->flush_lock);
                pthread_mutex_unlock(&wb->flush_lock);
                entry_unref(e);
        }
        atomic_fetch_sub(&wb->flushers, 1);
        reap(wb);
}

void write_behind_free(struct write_behind *wb) {
        if (!wb)
                return;
        write_behind_flush(wb);
        if (wb->running) {
                atomic_store(&wb->stop, true);
                sem_post(&wb->work);
                pthread_join(wb->writer, NULL);
        }
        /* Whatever was pushed after the flush (nobody should have). */
        for (struct entry *e = atomic_exchange(&wb->incoming, NULL), *next; e; e = next) {
                next = e->qnext;
                if (claim(e))
                        store_one(wb, e, true);
                else
                        entry_unref(e);
        }
        reap(wb);
        sem_destroy(&wb->work);
        pthread_mutex_destroy(&wb->flush_lock);
        pthread_cond_destroy(&wb->flush_cond);
        pthread_mutex_destroy(&wb->lock);
        free(wb);
}

void write_behind_get_stats(struct write_behind *wb, struct write_behind_stats *ret) {
        reap(wb);
        pthread_mutex_lock(&wb->lock);
        ret->queued = wb->count;
        ret->queued_bytes = wb->bytes;
        pthread_mutex_unlock(&wb->lock);
        ret->max_bytes = wb->max_bytes;
        ret->deferred = atomic_load(&wb->deferred);
        ret->stored = atomic_load(&wb->stored);
        ret->flushed = atomic_load(&wb->flushed);
        ret->failed = atomic_load(&wb->failed);
        ret->full = atomic_load(&wb->full);
        ret->hits = atomic_load(&wb->hits);
}
