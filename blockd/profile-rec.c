/* SPDX-License-Identifier: Apache-2.0 */
#include "profile-rec.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/util.h"

struct profile_rec {
        uint64_t image_size;
        uint32_t chunk_size;
        uint64_t n_map;
        uint64_t *seen;                 /* bit per logical chunk; atomic */
        pthread_mutex_t lock;           /* entries, t0 */
        uint64_t t0_ns;
        struct profile_entry *entries;
        uint32_t count, cap;
};

int profile_rec_new(uint64_t image_size, uint32_t chunk_size, struct profile_rec **ret) {
        struct profile_rec *r;

        if (chunk_size == 0)
                return -EINVAL;
        r = calloc(1, sizeof *r);
        if (!r)
                return -ENOMEM;
        r->image_size = image_size;
        r->chunk_size = chunk_size;
        r->n_map = DIV_ROUND_UP(image_size, chunk_size);
        r->seen = calloc(DIV_ROUND_UP(r->n_map, 64) + 1, sizeof(uint64_t));
        if (!r->seen) {
                free(r);
                return -ENOMEM;
        }
        pthread_mutex_init(&r->lock, NULL);
        r->t0_ns = now_ns();
        *ret = r;
        return 0;
}

void profile_rec_free(struct profile_rec *r) {
        if (!r)
                return;
        pthread_mutex_destroy(&r->lock);
        free(r->seen);
        free(r->entries);
        free(r);
}

void profile_rec_reset(struct profile_rec *r) {
        pthread_mutex_lock(&r->lock);
        for (uint64_t i = 0; i < DIV_ROUND_UP(r->n_map, 64) + 1; i++)
                __atomic_store_n(&r->seen[i], 0, __ATOMIC_RELAXED);
        r->count = 0;
        r->t0_ns = now_ns();
        pthread_mutex_unlock(&r->lock);
}

/* Append [off, off+len) at time t. Caller holds r->lock. */
static void append(struct profile_rec *r, uint64_t off, uint64_t len, uint32_t t_ms) {
        if (r->count && r->entries[r->count - 1].offset + r->entries[r->count - 1].length == off &&
            r->entries[r->count - 1].t_ms == t_ms && r->entries[r->count - 1].length + len <= UINT32_MAX) {
                r->entries[r->count - 1].length += (uint32_t) len;
                return;
        }
        if (r->count >= PROFILE_MAX_ENTRIES)
                return;         /* a full profile keeps its first reads */
        if (r->count == r->cap) {
                uint32_t cap = r->cap ? r->cap * 2 : 1024;
                struct profile_entry *v = realloc(r->entries, (size_t) cap * sizeof *v);
                if (!v)
                        return; /* out of memory: the profile is a hint, drop it */
                r->entries = v;
                r->cap = cap;
        }
        r->entries[r->count++] = (struct profile_entry) { .offset = off, .length = (uint32_t) len, .t_ms = t_ms };
}

void profile_rec_note(struct profile_rec *r, uint64_t off, uint64_t len) {
        uint64_t first, last, run_start = UINT64_MAX, end;
        bool locked = false;
        uint32_t t_ms = 0;

        if (len == 0 || off >= r->image_size)
                return;
        end = MIN(off + len, r->image_size);
        first = off / r->chunk_size;
        last = (end - 1) / r->chunk_size;
        for (uint64_t c = first; c <= last + 1; c++) {
                bool fresh = false;

                if (c <= last) {
                        uint64_t bit = UINT64_C(1) << (c % 64);
                        uint64_t *w = &r->seen[c / 64];

                        if (!(__atomic_load_n(w, __ATOMIC_RELAXED) & bit))
                                fresh = !(__atomic_fetch_or(w, bit, __ATOMIC_RELAXED) & bit);
                }
                if (fresh && run_start == UINT64_MAX) {
                        run_start = c;
                        continue;
                }
                if (fresh || run_start == UINT64_MAX)
                        continue;
                /* A run of new chunks [run_start, c) ended. */
                if (!locked) {
                        pthread_mutex_lock(&r->lock);
                        locked = true;
                        t_ms = (uint32_t) MIN((now_ns() - r->t0_ns) / 1000000, (uint64_t) UINT32_MAX);
                }
                {
                        uint64_t s = run_start * r->chunk_size;
                        uint64_t e = MIN(c * (uint64_t) r->chunk_size, r->image_size);
                        /* Entries are at most 4 GiB - 1: split longer runs. */
                        while (s < e) {
                                uint64_t n = MIN(e - s, (uint64_t) UINT32_MAX / r->chunk_size * r->chunk_size);
                                append(r, s, n, t_ms);
                                s += n;
                        }
                }
                run_start = UINT64_MAX;
        }
        if (locked)
                pthread_mutex_unlock(&r->lock);
}

int profile_rec_snapshot(struct profile_rec *r, struct profile **ret) {
        struct profile *p = calloc(1, sizeof *p);

        if (!p)
                return -ENOMEM;
        pthread_mutex_lock(&r->lock);
        p->chunk_size = r->chunk_size;
        p->count = r->count;
        p->entries = malloc(MAX(r->count, 1u) * sizeof *p->entries);
        if (p->entries && r->count)
                memcpy(p->entries, r->entries, (size_t) r->count * sizeof *p->entries);
        pthread_mutex_unlock(&r->lock);
        if (!p->entries) {
                free(p);
                return -ENOMEM;
        }
        *ret = p;
        return 0;
}

uint32_t profile_rec_count(struct profile_rec *r) {
        uint32_t n;

        pthread_mutex_lock(&r->lock);
        n = r->count;
        pthread_mutex_unlock(&r->lock);
        return n;
}
