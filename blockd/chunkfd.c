/* SPDX-License-Identifier: Apache-2.0 */
#include "chunkfd.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/log.h"

#define N_SHARDS 16u

struct chunkfd {
        struct digest id;
        int fd;
        unsigned refs;                  /* under the shard lock; pinned entries are never evicted */
        uint32_t stamp;                 /* the file as verified (entry_stamp); under the shard lock */
        bool referenced;                /* used since the eviction scan last passed (CLOCK) */
        bool detached;                  /* out of the table (its entry was evicted or found
                                         * damaged): closed by the last unpin */
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
        /* The scrub: where the next pass goes on (under scrub_lock), its thread. */
        pthread_mutex_t scrub_lock;
        pthread_cond_t scrub_cond;
        unsigned scrub_shard;
        size_t scrub_pos;
        uint64_t scrub_rate;
        bool scrub_running, scrub_stop;
        pthread_t scrub_thread;
        uint64_t hits, opens, verified, damaged, evictions, open, reverified, changed, adopted; /* atomic */
};

/* What identifies the bytes of an open entry for re-verification: inode,
 * size and ctime (which every write, truncate or chmod moves, and which
 * nobody can set back), folded into 32 bits, never 0. */
static uint32_t stat_stamp(const struct stat *st) {
        uint64_t h = 1469598103934665603ull;
        const uint64_t v[] = { (uint64_t) st->st_ino, (uint64_t) st->st_size, (uint64_t) st->st_ctim.tv_sec,
                               (uint64_t) st->st_ctim.tv_nsec };

        for (size_t i = 0; i < ARRAY_SIZE(v); i++) {
                h ^= v[i];
                h *= 1099511628211ull;
        }
        h ^= h >> 32;
        return (uint32_t) h ? (uint32_t) h : 1;
}

/* 0 if fd cannot be looked at (then it is verified again). */
static uint32_t fd_stamp(int fd) {
        struct stat st;

        return fstat(fd, &st) == 0 ? stat_stamp(&st) : 0;
}

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

static void evict_hook(const struct digest *id, void *u) {
        chunkfd_forget(u, id);
}

int chunkfd_cache_new(struct chunkstore *store, unsigned max_fds, struct chunkfd_cache **ret) {
        struct chunkfd_cache *c;
        size_t per = MAX(1u, DIV_ROUND_UP(max_fds, N_SHARDS));

        c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;
        c->store = store;
        pthread_mutex_init(&c->scrub_lock, NULL);
        pthread_cond_init(&c->scrub_cond, NULL);
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
        /* What the store evicts is closed here, or its blocks stay taken. */
        chunkstore_set_evict_hook(store, evict_hook, c);
        *ret = c;
        return 0;
}

void chunkfd_cache_free(struct chunkfd_cache *c) {
        if (!c)
                return;
        chunkstore_set_evict_hook(c->store, NULL, NULL);
        if (c->scrub_running) {
                pthread_mutex_lock(&c->scrub_lock);
                c->scrub_stop = true;
                pthread_cond_broadcast(&c->scrub_cond);
                pthread_mutex_unlock(&c->scrub_lock);
                pthread_join(c->scrub_thread, NULL);
        }
        pthread_mutex_destroy(&c->scrub_lock);
        pthread_cond_destroy(&c->scrub_cond);
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

/* Pin the open entry for id, if any; *ret_stamp gets its stamp. */
static struct chunkfd *pin(struct chunkfd_cache *c, const struct digest *id, uint32_t *ret_stamp) {
        struct shard *s = shard_of(c, id);
        struct chunkfd *e;

        pthread_mutex_lock(&s->lock);
        e = lookup(s, id);
        if (e) {
                /* CLOCK instead of LRU: a hit only sets a bit, so lookups
                 * touch no other entry (they are random accesses). */
                e->refs++;
                e->referenced = true;
                *ret_stamp = e->stamp;
        }
        pthread_mutex_unlock(&s->lock);
        return e;
}

/* Take e out of the table (caller holds s->lock). Returns e when nobody
 * pins it (the caller closes it), else NULL (the last unpin does). */
static struct chunkfd *detach_locked(struct shard *s, struct chunkfd *e) {
        if (e->detached)
                return NULL;
        hash_remove(s, e);
        lru_unlink(s, e);
        s->count--;
        e->detached = true;
        if (e->refs)
                return NULL;
        e->hnext = NULL;
        return e;
}

int chunkfd_lookup(struct chunkfd_cache *c, const struct digest *id, struct chunkfd **ret) {
        struct chunkfd *e;
        uint32_t stamp = 0;

        e = pin(c, id, &stamp);
        if (!e)
                return -ENOENT;
        /* Verified once, but the file may have been written since: one
         * fstat per use tells (the inode's ctime moves on every change). */
        if (fd_stamp(e->fd) != stamp) {
                chunkfd_put(c, e);
                return -ESTALE;
        }
        __atomic_fetch_add(&c->hits, 1, __ATOMIC_RELAXED);
        *ret = e;
        return 0;
}

/* The open entry for id changed since it was verified: hash it again.
 * Returns 0 with it pinned (still good), -ENOENT (gone meanwhile), or
 * -ESTALE (no longer matches: dropped from the table and the store). */
static int recheck(struct chunkfd_cache *c, const struct digest *id, size_t len, struct chunkfd **ret) {
        struct shard *s = shard_of(c, id);
        struct chunkfd *e;
        char hex[DIGEST_HEX_LEN + 1];
        uint32_t stamp = 0, now;
        int r;

        e = pin(c, id, &stamp);
        if (!e)
                return -ENOENT;
        now = fd_stamp(e->fd);
        r = chunkstore_verify_fd(e->fd, id, len);
        __atomic_fetch_add(&c->reverified, 1, __ATOMIC_RELAXED);
        if (r == 0 && !now) {
                chunkfd_put(c, e);
                return -ENOENT;         /* cannot be looked at: open it afresh */
        }
        if (r == 0) {
                pthread_mutex_lock(&s->lock);
                e->stamp = now;
                pthread_mutex_unlock(&s->lock);
                __atomic_fetch_add(&c->hits, 1, __ATOMIC_RELAXED);
                *ret = e;
                return 0;
        }
        log_warning("Chunk store entry %s changed after it was verified and %s; dropping it and fetching again",
                    digest_to_hex(id, hex), r == -EBADMSG ? "no longer matches its digest" : "cannot be read");
        __atomic_fetch_add(&c->changed, 1, __ATOMIC_RELAXED);
        pthread_mutex_lock(&s->lock);
        (void) detach_locked(s, e);     /* pinned by us: never closed here */
        pthread_mutex_unlock(&s->lock);
        chunkfd_put(c, e);
        (void) chunkstore_drop(c->store, id);
        return -ESTALE;
}

/* Pin the n-th entry of shard s (list order), NULL past the end. */
static struct chunkfd *pin_nth(struct shard *s, size_t n) {
        struct chunkfd *e;

        pthread_mutex_lock(&s->lock);
        for (e = s->head; e && n; e = e->next)
                n--;
        if (e)
                e->refs++;
        pthread_mutex_unlock(&s->lock);
        return e;
}

unsigned chunkfd_scrub(struct chunkfd_cache *c, uint64_t budget) {
        uint64_t done = 0;
        unsigned dropped = 0, empty = 0;

        pthread_mutex_lock(&c->scrub_lock);
        while (done < budget && empty < N_SHARDS) {
                struct shard *s = &c->shards[c->scrub_shard % N_SHARDS];
                struct chunkfd *e = pin_nth(s, c->scrub_pos);
                struct digest id;
                struct stat st;
                int r;

                if (!e) {
                        /* This shard is done: the next one, from its head. */
                        c->scrub_shard++;
                        c->scrub_pos = 0;
                        empty++;
                        continue;
                }
                empty = 0;
                c->scrub_pos++;
                id = e->id;
                r = fstat(e->fd, &st) < 0 ? -errno : chunkstore_verify_fd(e->fd, &id, (size_t) st.st_size);
                __atomic_fetch_add(&c->reverified, 1, __ATOMIC_RELAXED);
                done += r == 0 ? (uint64_t) st.st_size : 1;
                if (r == -EBADMSG) {
                        char hex[DIGEST_HEX_LEN + 1];

                        log_warning("Chunk store entry %s no longer matches its digest (found by the periodic re-verification); dropping it",
                                    digest_to_hex(&id, hex));
                        __atomic_fetch_add(&c->changed, 1, __ATOMIC_RELAXED);
                        pthread_mutex_lock(&s->lock);
                        (void) detach_locked(s, e);
                        pthread_mutex_unlock(&s->lock);
                        (void) chunkstore_drop(c->store, &id);
                        c->scrub_pos--;
                        dropped++;
                }
                chunkfd_put(c, e);
        }
        pthread_mutex_unlock(&c->scrub_lock);
        return dropped;
}

/* Scrub scrub_rate bytes a second until told to stop. */
static void *scrub_main(void *arg) {
        struct chunkfd_cache *c = arg;

        pthread_mutex_lock(&c->scrub_lock);
        while (!c->scrub_stop) {
                struct timespec ts;

                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_sec += 1;
                pthread_cond_timedwait(&c->scrub_cond, &c->scrub_lock, &ts);
                if (c->scrub_stop)
                        break;
                pthread_mutex_unlock(&c->scrub_lock);
                (void) chunkfd_scrub(c, c->scrub_rate);
                pthread_mutex_lock(&c->scrub_lock);
        }
        pthread_mutex_unlock(&c->scrub_lock);
        return NULL;
}

int chunkfd_scrub_start(struct chunkfd_cache *c, uint64_t rate) {
        int r;

        if (!rate || c->scrub_running)
                return 0;
        c->scrub_rate = rate;
        r = -pthread_create(&c->scrub_thread, NULL, scrub_main, c);
        if (r == 0)
                c->scrub_running = true;
        return r;
}

void chunkfd_forget(struct chunkfd_cache *c, const struct digest *id) {
        struct shard *s = shard_of(c, id);
        struct chunkfd *e, *gone = NULL;

        pthread_mutex_lock(&s->lock);
        e = lookup(s, id);
        if (e) {
                gone = detach_locked(s, e);
                __atomic_fetch_add(&c->evictions, 1, __ATOMIC_RELAXED);
        }
        pthread_mutex_unlock(&s->lock);
        close_list(c, gone);
}

/* Reads would update atime otherwise; recency for the store's LRU is the
 * mtime, refreshed on open. Only the owner may set this; others just pay
 * for atime. */
static void set_noatime(int fd) {
        int fl = fcntl(fd, F_GETFL);

        if (fl >= 0)
                (void) fcntl(fd, F_SETFL, fl | O_NOATIME);
}

/* Put fd, verified with stamp, in the table for id (taking it; closed
 * when id is there already) and, with ret, pin the entry into *ret. */
static int insert(struct chunkfd_cache *c, const struct digest *id, int fd, uint32_t stamp, struct chunkfd **ret) {
        struct shard *s = shard_of(c, id);
        struct chunkfd *e, *gone;

        pthread_mutex_lock(&s->lock);
        e = lookup(s, id);
        if (e) {
                /* Someone else opened it meanwhile. */
                if (ret)
                        e->refs++;
                pthread_mutex_unlock(&s->lock);
                close(fd);
                if (ret)
                        *ret = e;
                return ret ? 0 : -EEXIST;
        }
        e = calloc(1, sizeof *e);
        if (!e) {
                pthread_mutex_unlock(&s->lock);
                close(fd);
                return -ENOMEM;
        }
        e->id = *id;
        e->fd = fd;
        e->stamp = stamp;
        e->refs = ret ? 1 : 0;
        e->hnext = s->table[bucket_of(s, id)];
        s->table[bucket_of(s, id)] = e;
        lru_push_front(s, e);
        s->count++;
        __atomic_fetch_add(&c->open, 1, __ATOMIC_RELAXED);
        gone = evict(c, s);
        pthread_mutex_unlock(&s->lock);
        close_list(c, gone);
        if (ret)
                *ret = e;
        return 0;
}

int chunkfd_get(struct chunkfd_cache *c, const struct digest *id, size_t len, uint32_t *stamp, struct chunkfd **ret) {
        uint32_t now;
        uint64_t size;
        int fd, r;

        r = chunkfd_lookup(c, id, ret);
        if (r == -ESTALE)
                r = recheck(c, id, len, ret);
        if (r == 0) {
                *stamp = (*ret)->stamp;
                return 0;
        }
        if (r == -ESTALE)
                return r;

        fd = chunkstore_open_entry(c->store, id, &size);
        if (fd < 0)
                return fd;
        __atomic_fetch_add(&c->opens, 1, __ATOMIC_RELAXED);
        set_noatime(fd);
        /* After open: opening may have refreshed the entry's recency. */
        now = fd_stamp(fd);
        if (size != len) {
                r = -EBADMSG;
        } else if (!now || now != *stamp) {
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
                digest_to_hex(id, hex);
                if (*stamp) {
                        log_warning("Chunk store entry %s changed after it was verified and no longer matches its digest; dropping it and fetching again",
                                    hex);
                        __atomic_fetch_add(&c->changed, 1, __ATOMIC_RELAXED);
                } else {
                        log_warning("Chunk store entry %s is damaged; dropping it and fetching again", hex);
                        __atomic_fetch_add(&c->damaged, 1, __ATOMIC_RELAXED);
                }
                (void) chunkstore_drop(c->store, id);
                return -ESTALE;
        }
        *stamp = now;
        return insert(c, id, fd, now, ret);
}

void chunkfd_adopt(struct chunkfd_cache *c, const struct digest *id, int fd) {
        struct stat st;

        if (fd < 0)
                return;
        /* Gone already (the store evicted it meanwhile): its fd would
         * only keep its blocks. */
        if (fstat(fd, &st) < 0 || st.st_nlink == 0) {
                close(fd);
                return;
        }
        set_noatime(fd);
        if (insert(c, id, fd, stat_stamp(&st), NULL) == 0)
                __atomic_fetch_add(&c->adopted, 1, __ATOMIC_RELAXED);
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
        if (h->refs == 0 && h->detached) {
                h->hnext = NULL;
                gone = h;
        } else if (h->refs == 0 && s->count > s->cap) {
                gone = evict(c, s);
        }
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
        ret->reverified = __atomic_load_n(&c->reverified, __ATOMIC_RELAXED);
        ret->changed = __atomic_load_n(&c->changed, __ATOMIC_RELAXED);
        ret->adopted = __atomic_load_n(&c->adopted, __ATOMIC_RELAXED);
}
