/* SPDX-License-Identifier: Apache-2.0 */
#include "readahead.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "common/cleanup.h"

struct ra_stream {
        bool live;
        uint64_t lo;                    /* the first chunk of its last miss */
        uint64_t next;                  /* the chunk after the stream's last read */
        uint64_t end;                   /* the last chunk read ahead (next - 1: none) */
        unsigned window;                /* chunks to read ahead at its next miss */
        uint64_t used_at;               /* LRU tick */
};

struct readahead {
        pthread_mutex_t lock;
        uint64_t n_map;
        uint64_t *ahead;                /* atomic bits per logical chunk: read ahead, not read yet */
        struct ra_stream st[RA_STREAMS];
        uint64_t tick;
        uint64_t issued, used;          /* atomic */
};

int readahead_new(uint64_t n_map, struct readahead **ret) {
        struct readahead *ra = calloc(1, sizeof *ra);

        if (!ra)
                return -ENOMEM;
        ra->n_map = n_map;
        ra->ahead = calloc(DIV_ROUND_UP(n_map, 64) + 1, sizeof(uint64_t));
        if (!ra->ahead) {
                free(ra);
                return -ENOMEM;
        }
        pthread_mutex_init(&ra->lock, NULL);
        *ret = ra;
        return 0;
}

void readahead_free(struct readahead *ra) {
        if (!ra)
                return;
        pthread_mutex_destroy(&ra->lock);
        free(ra->ahead);
        free(ra);
}

static bool is_ahead(struct readahead *ra, uint64_t c) {
        return __atomic_load_n(&ra->ahead[c / 64], __ATOMIC_RELAXED) & (UINT64_C(1) << (c % 64));
}

/* Chunks read ahead in [from, to) that nobody read. */
static unsigned unread(struct readahead *ra, uint64_t from, uint64_t to) {
        unsigned n = 0;

        for (uint64_t c = from; c < to && c < ra->n_map; c++)
                n += is_ahead(ra, c);
        return n;
}

uint64_t readahead_miss(struct readahead *ra, uint64_t i, uint64_t last, uint64_t room) {
        struct ra_stream *s = NULL, *lru = &ra->st[0];
        uint64_t ahead = 0;

        readahead_hit(ra, i);   /* read ahead, still in flight: used all the same */
        pthread_mutex_lock(&ra->lock);
        ra->tick++;
        for (unsigned m = 0; m < RA_STREAMS; m++) {
                struct ra_stream *t = &ra->st[m];

                if (t->live && i >= t->lo && i < t->next) {
                        /* A later chunk of the read that missed (or of
                         * what it read ahead): already asked for. */
                        t->used_at = ra->tick;
                        pthread_mutex_unlock(&ra->lock);
                        return last - i;
                }
                if (t->live && i >= t->next && i <= t->end + 1 + RA_GAP) {
                        s = t;
                        break;
                }
                if (!t->live || t->used_at < lru->used_at)
                        lru = t;
        }
        if (s) {
                /* Skipped what it read ahead: the pattern is not this
                 * sequential; else the window worked (or was too small). */
                if (unread(ra, s->next, MIN(i, s->end + 1)))
                        s->window /= 2;
                else
                        s->window = s->window ? MIN(s->window * 2, (unsigned) RA_MAX) : RA_MIN;
                ahead = MIN((uint64_t) s->window, room);
        } else {
                s = lru;
                *s = (struct ra_stream) { .live = true };
        }
        if (last - i >= RA_MAX)
                ahead = 0;
        else
                ahead = MIN(ahead, RA_MAX - (last - i));
        ahead = MIN(ahead, ra->n_map - 1 - last);
        s->lo = i;
        s->next = last + 1;
        s->end = last + ahead;
        s->used_at = ra->tick;
        pthread_mutex_unlock(&ra->lock);
        return last - i + ahead;
}

void readahead_fetched(struct readahead *ra, uint64_t i, uint64_t last, uint64_t fetched) {
        for (unsigned b = 0; b < 64; b++) {
                uint64_t c = i + 1 + b;

                if (c <= last || !(fetched & (UINT64_C(1) << b)))
                        continue;
                if (!(__atomic_fetch_or(&ra->ahead[c / 64], UINT64_C(1) << (c % 64), __ATOMIC_RELAXED) &
                      (UINT64_C(1) << (c % 64))))
                        __atomic_fetch_add(&ra->issued, 1, __ATOMIC_RELAXED);
        }
}

void readahead_hit(struct readahead *ra, uint64_t i) {
        uint64_t bit = UINT64_C(1) << (i % 64), *w = &ra->ahead[i / 64];

        if ((__atomic_load_n(w, __ATOMIC_RELAXED) & bit) && (__atomic_fetch_and(w, ~bit, __ATOMIC_RELAXED) & bit))
                __atomic_fetch_add(&ra->used, 1, __ATOMIC_RELAXED);
}

void readahead_counts(struct readahead *ra, uint64_t *ret_issued, uint64_t *ret_used) {
        *ret_issued = __atomic_load_n(&ra->issued, __ATOMIC_RELAXED);
        *ret_used = __atomic_load_n(&ra->used, __ATOMIC_RELAXED);
}
