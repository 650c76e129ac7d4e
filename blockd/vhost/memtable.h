/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The guest's memory as the VMM shares it (SET_MEM_TABLE, ADD_MEM_REG,
 * REM_MEM_REG): regions of guest-physical addresses, each mapped from a
 * file descriptor the VMM passed, and the translations into our address
 * space that the virtqueue code uses. Every translation checks that the
 * whole range lies in a region; nothing outside a region is ever touched.
 *
 * Not thread-safe: the server changes the table with its queues stopped
 * or under its memory lock (server.c).
 */
#pragma once

#include <stdint.h>
#include <sys/uio.h>

#include "blockd/vhost/protocol.h"

#define MEMTABLE_MAX 32                 /* regions (GET_MAX_MEM_SLOTS) */

struct memtable_region {
        uint64_t gpa, size, uaddr;
        void *map;                      /* mmap of [0, mmap_offset + size) */
        size_t map_len;
        uint8_t *host;                  /* map + mmap_offset */
};

struct memtable {
        unsigned n;
        struct memtable_region r[MEMTABLE_MAX];
};

void memtable_init(struct memtable *mt);
/* Unmap every region. */
void memtable_clear(struct memtable *mt);
/* Map a region from fd (borrowed; the mapping keeps the memory). -EINVAL
 * for an empty, overflowing or overlapping region, -ENOSPC when the
 * table is full, -errno from mmap. */
int memtable_add(struct memtable *mt, const struct vhu_mem_region *wr, int fd);
/* Unmap the region with this guest address and size: 0 or -ENOENT. */
int memtable_remove(struct memtable *mt, const struct vhu_mem_region *wr);

/* Our pointer to guest-physical [gpa, gpa+len), when that range lies in
 * one region; NULL otherwise. */
void *memtable_gpa(const struct memtable *mt, uint64_t gpa, uint64_t len);
/* The same for a frontend (VMM) virtual address (ring addresses). */
void *memtable_uva(const struct memtable *mt, uint64_t uva, uint64_t len);
/* Guest-physical [gpa, gpa+len) as iovecs, split where regions meet:
 * the number used, -EFAULT if any byte is outside the table, -E2BIG if
 * max is not enough. */
int memtable_gpa_iov(const struct memtable *mt, uint64_t gpa, uint64_t len, struct iovec *iov, unsigned max);
