/* SPDX-License-Identifier: Apache-2.0 */
#include "chunkfd.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/log.h"

#define N_SHARDS 16u

struct chunkfd {
        struct digest id;
        int fd;
        unsigned refs;                  /* under the shard lock; pinned entries are never evicted */
        bool referenced;                /* used since the eviction scan last passed (CLOCK) */
        struct chunkfd *hnext;          /* hash chain */
        struct chunkfd *prev, *next;    /* insertion order, newest first; eviction scans from the tail */
};

struct shard {
        pthread_mutex_t lock;
        struct chunkfd **table;
        size_t nbuckets;
        size_t count, cap;
        struct chunkfd *head, *tail;
};

struct chunkfd_cache {
        struct chunkstore *store;
        struct shard shards[N_SHARDS];
        uint64_t hits, opens, verified, damaged, evictions, open;       /* atomic */
};

static inline uint64_t id_hash(const struct digest *id) {
        uint64_t h;

        memcpy(&h, id->b, sizeof h);
        return h;
}

static inline struct shard *shard_of(struct chunkfd_cache *c, const struct digest *id) {
        return &c->shards[(id_hash(id) >> 56) % N_SHARDS];
}

static inline size_t bucket_of(const struct shard *s, const struct digest *id) {
        return id_hash(id) % s->nbuckets;
}

int chunkfd_cache_new(struct chunkstore *store, unsigned max_fds, struct chunkfd_cache **ret) {
        struct chunkfd_cache *c;
        size_t per = MAX(1u, DIV_ROUND_UP(max_fds, N_SHARDS));

        c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;
        c->store = store;
        for (unsigned i = 0; i < N_SHARDS; i++) {
                struct shard *s = &c->shards[i];

                pthread_mutex_init(&s->lock, NULL);
                s->cap = per;
                s->nbuckets = per * 2 + 1;
                s->table = calloc(s->nbuckets, sizeof *s->table);
                if (!s->table) {
                        chunkfd_cache_free(c);
                        return -ENOMEM;
                }
        }
        *ret = c;
        return 0;
}

void chunkfd_cache_free(struct chunkfd_cache *c) {
        if (!c)
                return;
        for (unsigned i = 0; i < N_SHARDS; i++) {
                struct shard *s = &c->shards[i];
                struct chunkfd *e = s->head;

                while (e) {
                        struct chunkfd *next = e->next;
                        close(e->fd);
                        free(e);
                        e = next;
                }
                free(s->table);
                pthread_mutex_destroy(&s->lock);
        }
        free(c);
}

static void lru_unlink(struct shard *s, struct chunkfd *e) {
        if (e->prev)
                e->prev->next = e->next;
        else
                s->head = e->next;
        if (e->next)
                e->next->prev = e->prev;
        else
                s->tail = e->prev;
        e->prev = e->next = NULL;
}

static void lru_push_front(struct shard *s, struct chunkfd *e) {
        e->prev = NULL;
        e->next = s->head;
        if (s->head)
                s->head->prev = e;
        s->head = e;
        if (!s->tail)
                s->tail = e;
}

static struct chunkfd *lookup(struct shard *s, const struct digest *id) {
        for (struct chunkfd *e = s->table[bucket_of(s, id)]; e; e = e->hnext)
                if (digest_equal(&e->id, id))
                        return e;
        return NULL;
}

static void hash_remove(struct shard *s, struct chunkfd *e) {
        struct chunkfd **pp = &s->table[bucket_of(s, &e->id)];

        while (*pp && *pp != e)
                pp = &(*pp)->hnext;
        if (*pp)
                *pp = e->hnext;
        e->hnext = NULL;
}

/* Evict unpinned entries until the shard is within its bound, CLOCK
 * style: from the tail, an entry used since the last pass gets a second
 * chance (moved to the head, bit cleared), others go. Returns a list
 * (through hnext) of entries to close outside the lock. Caller holds
 * s->lock. */
static struct chunkfd *evict(struct chunkfd_cache *c, struct shard *s) {
        struct chunkfd *out = NULL, *e = s->tail;
        size_t budget = 2 * s->count + 2;       /* every entry at most twice */

        while (s->count > s->cap && e && budget--) {
                struct chunkfd *prev = e->prev;

                if (e->refs == 0 && !e->referenced) {
                        hash_remove(s, e);
                        lru_unlink(s, e);
                        s->count--;
                        e->hnext = out;
                        out = e;
                        __atomic_fetch_add(&c->evictions, 1, __ATOMIC_RELAXED);
                } else if (e->refs == 0) {
                        e->referenced = false;
                        lru_unlink(s, e);
                        lru_push_front(s, e);
                }
                e = prev ? prev : s->tail;
        }
        return out;
}

static void close_list(struct chunkfd_cache *c, struct chunkfd *e) {
        while (e) {
                struct chunkfd *next = e->hnext;
                close(e->fd);
                free(e);
                __atomic_fetch_sub(&c->open, 1, __ATOMIC_RELAXED);
                e = next;
        }
}

int chunkfd_lookup(struct chunkfd_cache *c, const struct digest *id, struct chunkfd **ret) {
        struct shard *s = shard_of(c, id);
        struct chunkfd *e;

        pthread_mutex_lock(&s->lock);
        e = lookup(s, id);
        if (e) {
                /* CLOCK instead of LRU: a hit only sets a bit, so lookups
                 * touch no other entry (they are random accesses). */
                e->refs++;
                e->referenced = true;
        }
        pthread_mutex_unlock(&s->lock);
        if (!e)
                return -ENOENT;
        __atomic_fetch_add(&c->hits, 1, __ATOMIC_RELAXED);
        *ret = e;
        return 0;
}

int chunkfd_get(struct chunkfd_cache *c, const struct digest *id, size_t len, bool *verified, struct chunkfd **ret) {
        struct shard *s = shard_of(c, id);
        struct chunkfd *e, *gone;
        uint64_t size;
        int fd, r;

        if (chunkfd_lookup(c, id, ret) == 0) {
                *verified = true;
                return 0;
        }

        fd = chunkstore_open_entry(c->store, id, &size);
        if (fd < 0)
                return fd;
        __atomic_fetch_add(&c->opens, 1, __ATOMIC_RELAXED);
        {
                /* Reads would update atime otherwise; recency for the
                 * store's LRU is the mtime, refreshed on open. Only the
                 * owner may set this; others just pay for atime. */
                int fl = fcntl(fd, F_GETFL);
                if (fl >= 0)
                        (void) fcntl(fd, F_SETFL, fl | O_NOATIME);
        }
        if (size != len) {
                r = -EBADMSG;
        } else if (!*verified) {
                r = chunkstore_verify_fd(fd, id, len);
                __atomic_fetch_add(&c->verified, 1, __ATOMIC_RELAXED);
        } else {
                r = 0;
        }
        if (r < 0) {
                char hex[DIGEST_HEX_LEN + 1];

                close(fd);
                if (r != -EBADMSG)
                        return r;
                log_warning("Chunk store entry %s is damaged; dropping it and fetching again",
                            digest_to_hex(id, hex));
                __atomic_fetch_add(&c->damaged, 1, __ATOMIC_RELAXED);
                (void) chunkstore_drop(c->store, id);
                return -ENOENT;
        }
        *verified = true;

        pthread_mutex_lock(&s->lock);
        e = lookup(s, id);
        if (e) {
                /* Someone else opened it meanwhile. */
                e->refs++;
                pthread_mutex_unlock(&s->lock);
                close(fd);
                *ret = e;
                return 0;
        }
        e = calloc(1, sizeof *e);
        if (!e) {
                pthread_mutex_unlock(&s->lock);
                close(fd);
                return -ENOMEM;
        }
        e->id = *id;
        e->fd = fd;
        e->refs = 1;
        e->hnext = s->table[bucket_of(s, id)];
        s->table[bucket_of(s, id)] = e;
        lru_push_front(s, e);
        s->count++;
        __atomic_fetch_add(&c->open, 1, __ATOMIC_RELAXED);
        gone = evict(c, s);
        pthread_mutex_unlock(&s->lock);
        close_list(c, gone);
        *ret = e;
        return 0;
}

int chunkfd_fd(const struct chunkfd *h) {
        return h->fd;
}

void chunkfd_put(struct chunkfd_cache *c, struct chunkfd *h) {
        struct shard *s;
        struct chunkfd *gone = NULL;

        if (!h)
                return;
        s = shard_of(c, &h->id);
        pthread_mutex_lock(&s->lock);
        h->refs--;
        if (h->refs == 0 && s->count > s->cap)
                gone = evict(c, s);
        pthread_mutex_unlock(&s->lock);
        close_list(c, gone);
}

void chunkfd_get_stats(struct chunkfd_cache *c, struct chunkfd_stats *ret) {
        ret->open = __atomic_load_n(&c->open, __ATOMIC_RELAXED);
        ret->hits = __atomic_load_n(&c->hits, __ATOMIC_RELAXED);
        ret->opens = __atomic_load_n(&c->opens, __ATOMIC_RELAXED);
        ret->verified = __atomic_load_n(&c->verified, __ATOMIC_RELAXED);
        ret->damaged = __atomic_load_n(&c->damaged, __ATOMIC_RELAXED);
        ret->evictions = __atomic_load_n(&c->evictions, __ATOMIC_RELAXED);
}
