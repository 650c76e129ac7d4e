/* SPDX-License-Identifier: Apache-2.0 */
/* Inflight I/O tracking in a memfd shared with the VMM (inflight.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "blockd/vhost/inflight.h"
#include "blockd/vhost/virtio.h"
#include "common/cleanup.h"

#define INFLIGHT_MAX_QUEUES 64u

struct inflight_desc {
        uint8_t inflight;
        uint8_t padding[5];
        uint16_t next;
        uint64_t counter;
};

struct inflight_region {
        uint64_t features;
        uint16_t version;
        uint16_t desc_num;
        uint16_t last_batch_head;
        uint16_t used_idx;
        struct inflight_desc desc[];
};

struct inflight_queue {
        struct inflight_region *reg;
        unsigned num;
        uint64_t counter;
};

struct inflight {
        void *map;
        size_t map_len;
        unsigned nq, queue_size;
        struct inflight_queue q[];
};

uint64_t inflight_queue_bytes(unsigned queue_size) {
        uint64_t n = sizeof(struct inflight_region) + (uint64_t) queue_size * sizeof(struct inflight_desc);

        return (n + 63) & ~UINT64_C(63);
}

static int sizes_ok(unsigned nq, unsigned queue_size) {
        return nq > 0 && nq <= INFLIGHT_MAX_QUEUES && queue_size > 0 && queue_size <= VRING_MAX_SIZE;
}

int inflight_create(unsigned nq, unsigned queue_size, int *ret_fd, uint64_t *ret_size) {
        _cleanup_close_ int fd = -EBADF;
        uint64_t size;
        void *map;

        if (!sizes_ok(nq, queue_size))
                return -EINVAL;
        size = inflight_queue_bytes(queue_size) * nq;
        fd = memfd_create("blockd-inflight", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (fd < 0)
                return -errno;
        if (ftruncate(fd, (off_t) size) < 0)
                return -errno;
        map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (map == MAP_FAILED)
                return -errno;
        for (unsigned i = 0; i < nq; i++) {
                struct inflight_region *reg = (void *) ((uint8_t *) map + inflight_queue_bytes(queue_size) * i);

                reg->version = 1;
                reg->desc_num = (uint16_t) queue_size;
        }
        (void) munmap(map, size);
        *ret_fd = TAKE_FD(fd);
        *ret_size = size;
        return 0;
}

int inflight_map(int fd, uint64_t size, uint64_t offset, unsigned nq, unsigned queue_size, struct inflight **ret) {
        uint64_t qb = inflight_queue_bytes(queue_size);
        struct inflight *inf;
        void *map;

        if (!sizes_ok(nq, queue_size) || offset + size < offset || size < qb * nq || offset + size != (size_t) (offset + size))
                return -EINVAL;
        map = mmap(NULL, (size_t) (offset + size), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (map == MAP_FAILED)
                return -errno;
        inf = calloc(1, sizeof *inf + nq * sizeof inf->q[0]);
        if (!inf) {
                (void) munmap(map, (size_t) (offset + size));
                return -ENOMEM;
        }
        inf->map = map;
        inf->map_len = (size_t) (offset + size);
        inf->nq = nq;
        inf->queue_size = queue_size;
        for (unsigned i = 0; i < nq; i++) {
                inf->q[i].reg = (void *) ((uint8_t *) map + offset + qb * i);
                inf->q[i].num = queue_size;
                /* A region we made has desc_num set; one from a backend that
                 * left it zero is taken as ours. */
                if (inf->q[i].reg->desc_num == 0)
                        inf->q[i].reg->desc_num = (uint16_t) queue_size;
        }
        *ret = inf;
        return 0;
}

void inflight_free(struct inflight *inf) {
        if (!inf)
                return;
        (void) munmap(inf->map, inf->map_len);
        free(inf);
}

unsigned inflight_queue_size(const struct inflight *inf) {
        return inf->queue_size;
}

struct inflight_queue *inflight_get_queue(struct inflight *inf, unsigned i) {
        return inf && i < inf->nq ? &inf->q[i] : NULL;
}

void inflight_begin(struct inflight_queue *q, uint16_t head) {
        if (head >= q->num)
                return;
        q->reg->desc[head].counter = ++q->counter;
        __atomic_store_n(&q->reg->desc[head].inflight, 1, __ATOMIC_RELEASE);
}

void inflight_batch(struct inflight_queue *q, uint16_t head) {
        __atomic_store_n(&q->reg->last_batch_head, head, __ATOMIC_RELEASE);
}

void inflight_end(struct inflight_queue *q, uint16_t head, uint16_t used_idx) {
        if (head < q->num)
                __atomic_store_n(&q->reg->desc[head].inflight, 0, __ATOMIC_RELEASE);
        __atomic_store_n(&q->reg->used_idx, used_idx, __ATOMIC_RELEASE);
}

struct pending {
        uint64_t counter;
        uint16_t head;
};

static int pending_cmp(const void *a, const void *b) {
        const struct pending *x = a, *y = b;

        return x->counter < y->counter ? -1 : x->counter > y->counter;
}

unsigned inflight_recover(struct inflight_queue *q, uint16_t used_idx, uint16_t *heads, unsigned max) {
        _cleanup_free_ struct pending *p = NULL;
        unsigned n = 0;
        uint64_t top = 0;

        /* The last completion reached the used ring but not the region. */
        if (q->reg->used_idx != used_idx) {
                uint16_t h = q->reg->last_batch_head;

                if (h < q->num)
                        q->reg->desc[h].inflight = 0;
                q->reg->used_idx = used_idx;
        }
        p = calloc(q->num, sizeof *p);
        if (!p)
                return 0;
        for (unsigned i = 0; i < q->num; i++) {
                if (q->reg->desc[i].inflight != 1)
                        continue;
                p[n++] = (struct pending) { .counter = q->reg->desc[i].counter, .head = (uint16_t) i };
                if (q->reg->desc[i].counter > top)
                        top = q->reg->desc[i].counter;
        }
        qsort(p, n, sizeof *p, pending_cmp);
        q->counter = top;
        if (n > max)
                n = max;
        for (unsigned i = 0; i < n; i++)
                heads[i] = p[i].head;
        return n;
}
