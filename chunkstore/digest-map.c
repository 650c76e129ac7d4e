/* SPDX-License-Identifier: Apache-2.0 */
#include "digest-map.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define EMPTY UINT32_MAX

struct slot {
        struct digest d;
        uint32_t value;         /* EMPTY when unused */
};

struct digest_map {
        struct slot *slots;
        uint64_t cap;           /* power of two */
        uint64_t count;
};

static uint64_t hash(const struct digest *d) {
        uint64_t h;

        memcpy(&h, d->b, sizeof h);
        return h;
}

static int resize(struct digest_map *m, uint64_t cap) {
        struct slot *slots = malloc(cap * sizeof *slots), *old = m->slots;
        uint64_t oldcap = m->cap;

        if (!slots)
                return -ENOMEM;
        for (uint64_t i = 0; i < cap; i++)
                slots[i].value = EMPTY;
        m->slots = slots;
        m->cap = cap;
        m->count = 0;
        for (uint64_t i = 0; i < oldcap; i++)
                if (old[i].value != EMPTY)
                        (void) digest_map_put(m, &old[i].d, old[i].value);
        free(old);
        return 0;
}

int digest_map_new(uint64_t expected, struct digest_map **ret) {
        struct digest_map *m = calloc(1, sizeof *m);
        uint64_t cap = 64;
        int r;

        if (!m)
                return -ENOMEM;
        while (cap < expected * 2)
                cap *= 2;
        r = resize(m, cap);
        if (r < 0) {
                free(m);
                return r;
        }
        *ret = m;
        return 0;
}

void digest_map_free(struct digest_map *m) {
        if (!m)
                return;
        free(m->slots);
        free(m);
}

int64_t digest_map_get(const struct digest_map *m, const struct digest *d) {
        for (uint64_t i = hash(d) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
                if (m->slots[i].value == EMPTY)
                        return -ENOENT;
                if (digest_equal(&m->slots[i].d, d))
                        return m->slots[i].value;
        }
}

int digest_map_put(struct digest_map *m, const struct digest *d, uint32_t value) {
        uint64_t i;

        if ((m->count + 1) * 4 > m->cap * 3) {
                int r = resize(m, m->cap * 2);
                if (r < 0)
                        return r;
        }
        for (i = hash(d) & (m->cap - 1); m->slots[i].value != EMPTY; i = (i + 1) & (m->cap - 1))
                if (digest_equal(&m->slots[i].d, d)) {
                        m->slots[i].value = value;
                        return 0;
                }
        m->slots[i].d = *d;
        m->slots[i].value = value;
        m->count++;
        return 0;
}

uint64_t digest_map_count(const struct digest_map *m) {
        return m->count;
}
