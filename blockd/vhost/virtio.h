/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The virtio wire format we serve (virtio 1.2: 2.7 split virtqueues and
 * 5.2 the block device): the only copy in the tree. All fields are
 * little-endian in guest memory.
 */
#pragma once

#include <stdint.h>

/* Device-independent feature bits. */
#define VIRTIO_F_NOTIFY_ON_EMPTY 24
#define VIRTIO_RING_F_INDIRECT_DESC 28
#define VIRTIO_RING_F_EVENT_IDX 29
#define VIRTIO_F_VERSION_1 32

/* Split virtqueue. */
#define VRING_DESC_F_NEXT 1u
#define VRING_DESC_F_WRITE 2u
#define VRING_DESC_F_INDIRECT 4u
#define VRING_AVAIL_F_NO_INTERRUPT 1u
#define VRING_USED_F_NO_NOTIFY 1u
#define VRING_MAX_SIZE 32768u

struct vring_desc {
        uint64_t addr;
        uint32_t len;
        uint16_t flags;
        uint16_t next;
};

struct vring_avail {
        uint16_t flags;
        uint16_t idx;
        uint16_t ring[];                /* num entries, then used_event */
};

struct vring_used_elem {
        uint32_t id;
        uint32_t len;
};

struct vring_used {
        uint16_t flags;
        uint16_t idx;
        struct vring_used_elem ring[];  /* num entries, then avail_event */
};

static inline uint64_t vring_desc_bytes(unsigned num) {
        return 16ull * num;
}
static inline uint64_t vring_avail_bytes(unsigned num) {
        return 4 + 2ull * num + 2;
}
static inline uint64_t vring_used_bytes(unsigned num) {
        return 4 + 8ull * num + 2;
}

/* Block device feature bits. */
#define VIRTIO_BLK_F_SIZE_MAX 1
#define VIRTIO_BLK_F_SEG_MAX 2
#define VIRTIO_BLK_F_RO 5
#define VIRTIO_BLK_F_BLK_SIZE 6
#define VIRTIO_BLK_F_FLUSH 9
#define VIRTIO_BLK_F_TOPOLOGY 10
#define VIRTIO_BLK_F_MQ 12
#define VIRTIO_BLK_F_DISCARD 13
#define VIRTIO_BLK_F_WRITE_ZEROES 14

/* Request types and status. */
#define VIRTIO_BLK_T_IN 0
#define VIRTIO_BLK_T_OUT 1
#define VIRTIO_BLK_T_FLUSH 4
#define VIRTIO_BLK_T_GET_ID 8
#define VIRTIO_BLK_T_DISCARD 11
#define VIRTIO_BLK_T_WRITE_ZEROES 13
#define VIRTIO_BLK_S_OK 0
#define VIRTIO_BLK_S_IOERR 1
#define VIRTIO_BLK_S_UNSUPP 2
#define VIRTIO_BLK_ID_BYTES 20
#define VIRTIO_BLK_SECTOR 512u
#define VIRTIO_BLK_WZ_F_UNMAP 1u

struct virtio_blk_outhdr {
        uint32_t type;
        uint32_t ioprio;
        uint64_t sector;
};

struct virtio_blk_discard_wz {
        uint64_t sector;
        uint32_t num_sectors;
        uint32_t flags;
};

/* Config space (5.2.4), up to write_zeroes_may_unmap. */
struct virtio_blk_config {
        uint64_t capacity;              /* in 512-byte sectors */
        uint32_t size_max;
        uint32_t seg_max;
        uint16_t cylinders;
        uint8_t heads;
        uint8_t sectors;
        uint32_t blk_size;
        uint8_t physical_block_exp;
        uint8_t alignment_offset;
        uint16_t min_io_size;
        uint32_t opt_io_size;
        uint8_t writeback;
        uint8_t unused0;
        uint16_t num_queues;
        uint32_t max_discard_sectors;
        uint32_t max_discard_seg;
        uint32_t discard_sector_alignment;
        uint32_t max_write_zeroes_sectors;
        uint32_t max_write_zeroes_seg;
        uint8_t write_zeroes_may_unmap;
        uint8_t unused1[3];
} __attribute__((packed));

_Static_assert(sizeof(struct virtio_blk_config) == 60, "virtio-blk config layout");
_Static_assert(sizeof(struct vring_desc) == 16, "descriptor layout");
