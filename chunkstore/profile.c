/* SPDX-License-Identifier: Apache-2.0 */
#include "profile.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/err.h"
#include "common/util.h"

void profile_free(struct profile *p) {
        if (!p)
                return;
        free(p->entries);
        free(p);
}

int profile_encode(const struct profile *p, void **ret_buf, size_t *ret_len) {
        size_t len = PROFILE_HEADER_SIZE + (size_t) p->count * PROFILE_ENTRY_SIZE;
        uint8_t *b = calloc(1, len), *q;
        uint32_t v32;
        uint64_t v64;

        if (!b)
                return -ENOMEM;
        memcpy(b, PROFILE_MAGIC, 8);
        v32 = htole32(PROFILE_VERSION);
        memcpy(b + 8, &v32, 4);
        v32 = htole32(p->chunk_size);
        memcpy(b + 16, &v32, 4);
        v32 = htole32(p->count);
        memcpy(b + 20, &v32, 4);
        q = b + PROFILE_HEADER_SIZE;
        for (uint32_t i = 0; i < p->count; i++, q += PROFILE_ENTRY_SIZE) {
                v64 = htole64(p->entries[i].offset);
                memcpy(q, &v64, 8);
                v32 = htole32(p->entries[i].length);
                memcpy(q + 8, &v32, 4);
                v32 = htole32(p->entries[i].t_ms);
                memcpy(q + 12, &v32, 4);
        }
        *ret_buf = b;
        *ret_len = len;
        return 0;
}

int profile_decode(const void *buf, size_t len, struct profile **ret, char *err, size_t errlen) {
        const uint8_t *b = buf;
        struct profile *p;
        uint32_t version, flags, count;
        uint64_t reserved;

        if (len < PROFILE_HEADER_SIZE || memcmp(b, PROFILE_MAGIC, 8) != 0)
                return err_set(err, errlen, -EBADMSG, "not a hocus-blk profile (bad magic or too short)");
        memcpy(&version, b + 8, 4);
        memcpy(&flags, b + 12, 4);
        memcpy(&count, b + 20, 4);
        memcpy(&reserved, b + 24, 8);
        version = le32toh(version);
        flags = le32toh(flags);
        count = le32toh(count);
        if (version != PROFILE_VERSION)
                return err_set(err, errlen, -EBADMSG, "profile version %u is not supported", version);
        if (flags || reserved)
                return err_set(err, errlen, -EBADMSG, "profile has unknown flags");
        if (count > PROFILE_MAX_ENTRIES)
                return err_set(err, errlen, -EBADMSG, "profile has %u entries, more than the limit", count);
        if (len != PROFILE_HEADER_SIZE + (size_t) count * PROFILE_ENTRY_SIZE)
                return err_set(err, errlen, -EBADMSG, "profile is %zu bytes, its %u entries need %zu", len, count,
                               PROFILE_HEADER_SIZE + (size_t) count * PROFILE_ENTRY_SIZE);
        p = calloc(1, sizeof *p);
        if (!p || !(p->entries = calloc(count ? count : 1, sizeof *p->entries))) {
                free(p);
                return -ENOMEM;
        }
        memcpy(&p->chunk_size, b + 16, 4);
        p->chunk_size = le32toh(p->chunk_size);
        p->count = count;
        for (uint32_t i = 0; i < count; i++) {
                const uint8_t *q = b + PROFILE_HEADER_SIZE + (size_t) i * PROFILE_ENTRY_SIZE;
                uint64_t off;
                uint32_t l, t;

                memcpy(&off, q, 8);
                memcpy(&l, q + 8, 4);
                memcpy(&t, q + 12, 4);
                p->entries[i].offset = le64toh(off);
                p->entries[i].length = le32toh(l);
                p->entries[i].t_ms = le32toh(t);
                if (p->entries[i].offset > UINT64_MAX - p->entries[i].length) {
                        profile_free(p);
                        return err_set(err, errlen, -EBADMSG, "profile entry %u overflows", i);
                }
        }
        *ret = p;
        return 0;
}

int profile_load(const char *path, struct profile **ret, char *err, size_t errlen) {
        _cleanup_free_ char *buf = NULL;
        char why[256];
        size_t len;
        int r;

        r = read_file_all(AT_FDCWD, path, PROFILE_HEADER_SIZE + (size_t) PROFILE_MAX_ENTRIES * PROFILE_ENTRY_SIZE,
                          &buf, &len);
        if (r < 0)
                return err_set(err, errlen, r, "cannot read '%s': %m", path);
        r = profile_decode(buf, len, ret, why, sizeof why);
        if (r < 0)
                return err_set(err, errlen, r, "%s: %s", path, why);
        return 0;
}

int profile_chunks(const struct profile *p, uint64_t image_size, uint32_t chunk_size, uint64_t **ret,
                   uint64_t *ret_n) {
        uint64_t n_map = (image_size + chunk_size - 1) / chunk_size, n = 0, cap = 0;
        _cleanup_free_ uint8_t *seen = calloc(n_map ? n_map : 1, 1);
        uint64_t *out = NULL;

        if (!seen)
                return -ENOMEM;
        for (uint32_t i = 0; i < p->count; i++) {
                const struct profile_entry *e = &p->entries[i];
                uint64_t end;

                if (e->length == 0 || e->offset >= image_size)
                        continue;
                end = MIN(e->offset + e->length, image_size);
                for (uint64_t c = e->offset / chunk_size; c <= (end - 1) / chunk_size; c++) {
                        if (seen[c])
                                continue;
                        seen[c] = 1;
                        if (n == cap) {
                                uint64_t *v;
                                cap = cap ? cap * 2 : 256;
                                v = realloc(out, cap * sizeof *v);
                                if (!v) {
                                        free(out);
                                        return -ENOMEM;
                                }
                                out = v;
                        }
                        out[n++] = c;
                }
        }
        *ret = out;
        *ret_n = n;
        return 0;
}

struct seq_entry {
        struct profile_entry e;
        uint64_t seq;
};

static int by_time_seq(const void *a, const void *b) {
        const struct seq_entry *x = a, *y = b;

        if (x->e.t_ms != y->e.t_ms)
                return x->e.t_ms < y->e.t_ms ? -1 : 1;
        return x->seq < y->seq ? -1 : x->seq > y->seq;
}

int profile_merge(const struct profile *const *ps, size_t n, struct profile **ret) {
        struct profile *p;
        uint64_t total = 0;
        struct seq_entry *tmp = NULL;
        size_t k = 0;

        for (size_t i = 0; i < n; i++)
                total += ps[i]->count;
        if (total > PROFILE_MAX_ENTRIES)
                return -E2BIG;
        p = calloc(1, sizeof *p);
        tmp = calloc(total ? total : 1, sizeof *tmp);
        if (!p || !tmp) {
                free(p);
                free(tmp);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++)
                for (uint32_t j = 0; j < ps[i]->count; j++, k++) {
                        tmp[k].e = ps[i]->entries[j];
                        tmp[k].seq = k;
                }
        /* qsort is not stable: sort (t_ms, seq) pairs. */
        qsort(tmp, k, sizeof *tmp, by_time_seq);
        p->entries = calloc(total ? total : 1, sizeof *p->entries);
        if (!p->entries) {
                free(p);
                free(tmp);
                return -ENOMEM;
        }
        for (size_t i = 0; i < k; i++)
                p->entries[i] = tmp[i].e;
        free(tmp);
        p->count = (uint32_t) total;
        p->chunk_size = n ? ps[0]->chunk_size : 0;
        *ret = p;
        return 0;
}
