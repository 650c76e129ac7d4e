/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The vhost-user wire format (qemu docs/interop/vhost-user.rst): the only
 * copy in the tree. Every message is a 12-byte header (request, flags,
 * payload size; host byte order, which is little-endian on every host we
 * build for) followed by the payload; file descriptors travel as
 * SCM_RIGHTS ancillary data with the header. proto.c reads and checks
 * messages, server.c acts on them.
 */
#pragma once

#include <stdint.h>

enum vhu_request {
        VHU_GET_FEATURES = 1,
        VHU_SET_FEATURES = 2,
        VHU_SET_OWNER = 3,
        VHU_RESET_OWNER = 4,
        VHU_SET_MEM_TABLE = 5,
        VHU_SET_LOG_BASE = 6,
        VHU_SET_LOG_FD = 7,
        VHU_SET_VRING_NUM = 8,
        VHU_SET_VRING_ADDR = 9,
        VHU_SET_VRING_BASE = 10,
        VHU_GET_VRING_BASE = 11,
        VHU_SET_VRING_KICK = 12,
        VHU_SET_VRING_CALL = 13,
        VHU_SET_VRING_ERR = 14,
        VHU_GET_PROTOCOL_FEATURES = 15,
        VHU_SET_PROTOCOL_FEATURES = 16,
        VHU_GET_QUEUE_NUM = 17,
        VHU_SET_VRING_ENABLE = 18,
        VHU_SET_BACKEND_REQ_FD = 21,
        VHU_GET_CONFIG = 24,
        VHU_SET_CONFIG = 25,
        VHU_GET_INFLIGHT_FD = 31,
        VHU_SET_INFLIGHT_FD = 32,
        VHU_RESET_DEVICE = 34,
        VHU_GET_MAX_MEM_SLOTS = 36,
        VHU_ADD_MEM_REG = 37,
        VHU_REM_MEM_REG = 38,
        VHU_SET_STATUS = 39,
        VHU_GET_STATUS = 40,
};

/* Header flags. */
#define VHU_VERSION 0x1u
#define VHU_VERSION_MASK 0x3u
#define VHU_FLAG_REPLY (1u << 2)
#define VHU_FLAG_NEED_REPLY (1u << 3)

/* Virtio feature bit that enables the protocol features. */
#define VHU_F_PROTOCOL_FEATURES 30

/* Protocol feature bits. */
#define VHU_PROTOCOL_F_MQ 0
#define VHU_PROTOCOL_F_REPLY_ACK 3
#define VHU_PROTOCOL_F_CONFIG 9
#define VHU_PROTOCOL_F_INFLIGHT_SHMFD 12
#define VHU_PROTOCOL_F_RESET_DEVICE 13
#define VHU_PROTOCOL_F_CONFIGURE_MEM_SLOTS 15
#define VHU_PROTOCOL_F_STATUS 16

#define VHU_MAX_FDS 8                   /* descriptors with one message */
#define VHU_MAX_MEM_REGIONS 8           /* in one SET_MEM_TABLE */
#define VHU_MAX_CONFIG 256              /* GET_CONFIG payload */

/* SET_VRING_KICK/CALL/ERR: the u64's low byte is the queue, this bit says
 * no descriptor came with it. */
#define VHU_VRING_IDX_MASK 0xffu
#define VHU_VRING_NOFD (1u << 8)

struct vhu_hdr {
        uint32_t request;
        uint32_t flags;
        uint32_t size;
} __attribute__((packed));

struct vhu_vring_state {
        uint32_t index;
        uint32_t num;
} __attribute__((packed));

struct vhu_vring_addr {
        uint32_t index;
        uint32_t flags;
        uint64_t desc;                  /* frontend virtual addresses */
        uint64_t used;
        uint64_t avail;
        uint64_t log;
} __attribute__((packed));

struct vhu_mem_region {
        uint64_t gpa;
        uint64_t size;
        uint64_t uaddr;
        uint64_t mmap_offset;
} __attribute__((packed));

struct vhu_mem_table {
        uint32_t nregions;
        uint32_t padding;
        struct vhu_mem_region regions[VHU_MAX_MEM_REGIONS];
} __attribute__((packed));

struct vhu_mem_single {
        uint64_t padding;
        struct vhu_mem_region region;
} __attribute__((packed));

struct vhu_config {
        uint32_t offset;
        uint32_t size;
        uint32_t flags;
        uint8_t payload[VHU_MAX_CONFIG];
} __attribute__((packed));
#define VHU_CONFIG_HDR 12u

/* Not packed: 24 bytes on the wire, its tail padding included. */
struct vhu_inflight {
        uint64_t mmap_size;
        uint64_t mmap_offset;
        uint16_t num_queues;
        uint16_t queue_size;
};
_Static_assert(sizeof(struct vhu_inflight) == 24, "inflight payload layout");

union vhu_payload {
        uint64_t u64;
        struct vhu_vring_state state;
        struct vhu_vring_addr addr;
        struct vhu_mem_table mem;
        struct vhu_mem_single mem1;
        struct vhu_config config;
        struct vhu_inflight inflight;
};
