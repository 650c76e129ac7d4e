/* SPDX-License-Identifier: Apache-2.0 */
/* The guest memory table: mapping regions and translating addresses with
 * bounds checks (memtable.h). */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "blockd/vhost/memtable.h"

void memtable_init(struct memtable *mt) {
        memset(mt, 0, sizeof *mt);
}

static void region_unmap(struct memtable_region *r) {
        if (r->map)
                (void) munmap(r->map, r->map_len);
        memset(r, 0, sizeof *r);
}

void memtable_clear(struct memtable *mt) {
        for (unsigned i = 0; i < mt->n; i++)
                region_unmap(&mt->r[i]);
        mt->n = 0;
}

/* Does [a, a+alen) meet [b, b+blen)? Both are known not to wrap. */
static int ranges_meet(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen) {
        return a < b + blen && b < a + alen;
}

int memtable_add(struct memtable *mt, const struct vhu_mem_region *wr, int fd) {
        struct memtable_region *r;
        struct stat st;
        uint64_t len;
        void *map;

        if (wr->size == 0 || wr->gpa + wr->size < wr->gpa || wr->uaddr + wr->size < wr->uaddr ||
            wr->mmap_offset + wr->size < wr->mmap_offset)
                return -EINVAL;
        len = wr->mmap_offset + wr->size;
        if (len != (size_t) len)
                return -EINVAL;
        for (unsigned i = 0; i < mt->n; i++)
                if (ranges_meet(wr->gpa, wr->size, mt->r[i].gpa, mt->r[i].size))
                        return -EINVAL;
        if (mt->n == MEMTABLE_MAX)
                return -ENOSPC;
        /* A region past the end of its file would fault (SIGBUS) on the
         * first guest access: refuse it here instead. */
        if (fstat(fd, &st) < 0)
                return -errno;
        if (S_ISREG(st.st_mode) && (uint64_t) st.st_size < len)
                return -EINVAL;
        map = mmap(NULL, (size_t) len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
        if (map == MAP_FAILED)
                return -errno;
        r = &mt->r[mt->n++];
        *r = (struct memtable_region) {
                .gpa = wr->gpa,
                .size = wr->size,
                .uaddr = wr->uaddr,
                .map = map,
                .map_len = (size_t) len,
                .host = (uint8_t *) map + wr->mmap_offset,
        };
        return 0;
}

int memtable_remove(struct memtable *mt, const struct vhu_mem_region *wr) {
        for (unsigned i = 0; i < mt->n; i++) {
                if (mt->r[i].gpa != wr->gpa || mt->r[i].size != wr->size)
                        continue;
                region_unmap(&mt->r[i]);
                mt->r[i] = mt->r[--mt->n];
                memset(&mt->r[mt->n], 0, sizeof mt->r[mt->n]);
                return 0;
        }
        return -ENOENT;
}

/* The region holding address a (guest-physical, or the VMM's virtual one
 * with uva), and how many bytes of it follow a. */
static const struct memtable_region *find(const struct memtable *mt, uint64_t a, int uva, uint64_t *ret_off) {
        for (unsigned i = 0; i < mt->n; i++) {
                const struct memtable_region *r = &mt->r[i];
                uint64_t base = uva ? r->uaddr : r->gpa;

                if (a >= base && a - base < r->size) {
                        *ret_off = a - base;
                        return r;
                }
        }
        return NULL;
}

static void *translate(const struct memtable *mt, uint64_t a, uint64_t len, int uva) {
        const struct memtable_region *r;
        uint64_t off;

        if (len == 0 || a + len < a)
                return NULL;
        r = find(mt, a, uva, &off);
        if (!r || len > r->size - off)
                return NULL;
        return r->host + off;
}

void *memtable_gpa(const struct memtable *mt, uint64_t gpa, uint64_t len) {
        return translate(mt, gpa, len, 0);
}

void *memtable_uva(const struct memtable *mt, uint64_t uva, uint64_t len) {
        return translate(mt, uva, len, 1);
}

int memtable_gpa_iov(const struct memtable *mt, uint64_t gpa, uint64_t len, struct iovec *iov, unsigned max) {
        unsigned n = 0;

        if (gpa + len < gpa)
                return -EFAULT;
        while (len > 0) {
                const struct memtable_region *r;
                uint64_t off, take;

                r = find(mt, gpa, 0, &off);
                if (!r)
                        return -EFAULT;
                if (n == max)
                        return -E2BIG;
                take = r->size - off < len ? r->size - off : len;
                iov[n++] = (struct iovec) { .iov_base = r->host + off, .iov_len = (size_t) take };
                gpa += take;
                len -= take;
        }
        return (int) n;
}
