/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One split virtqueue (virtio 1.2, 2.7) served from the guest's memory:
 * taking requests off the available ring as descriptor chains turned
 * into iovecs of our address space, putting completions on the used
 * ring, and deciding when the guest needs an interrupt (event idx).
 *
 * The guest is not trusted. Everything read from its memory is read once
 * into a local copy and checked: a head or next index past the queue, a
 * chain longer than the queue (a loop), an indirect table that is empty,
 * misaligned, nested or longer than VRING_MAX_SEGS, a buffer outside the
 * memory table, a readable buffer after a writable one, or an available
 * index that runs more than the queue size ahead: each marks the queue
 * broken (vr->broken, with the reason in vr->why), after which it
 * yields nothing more until it is set up again. Nothing outside the
 * memory table is ever touched.
 *
 * Not thread-safe: one thread serves a queue at a time, with the memory
 * table held still (server.c).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "blockd/vhost/memtable.h"
#include "blockd/vhost/virtio.h"

/* Buffers (iovecs) one request may have; more marks the queue broken. */
#define VRING_MAX_SEGS 1024u

struct inflight_queue;

struct vring {
        /* Set by the server from the VMM's messages. */
        unsigned num;                   /* a power of two, at most VRING_MAX_SIZE */
        uint64_t desc_uaddr, avail_uaddr, used_uaddr;
        bool event_idx;                 /* VIRTIO_RING_F_EVENT_IDX negotiated */
        bool indirect;                  /* VIRTIO_RING_F_INDIRECT_DESC negotiated */
        uint16_t last_avail;            /* next available entry to take */
        /* Inflight tracking (inflight.h), NULL without. */
        struct inflight_queue *inflight;

        /* Ours. */
        struct vring_desc *desc;        /* NULL until vring_map */
        struct vring_avail *avail;
        struct vring_used *used;
        uint16_t used_idx;
        uint16_t signalled_used;
        bool signalled_valid;
        bool broken;
        const char *why;                /* why it broke (static string) */
};

/* One request: out (device-readable) buffers first, then in (writable). */
struct vring_req {
        uint16_t head;
        unsigned n_out, n_in;
        uint64_t out_len, in_len;
        struct iovec iov[VRING_MAX_SEGS];
};

/* Translate the ring addresses through mt (again after the table
 * changed) and read the used index. -EINVAL for a bad size, -EFAULT when
 * a ring is not wholly in the table. */
int vring_map(struct vring *vr, const struct memtable *mt);
/* Forget the mapping (the table is going away). */
void vring_unmap(struct vring *vr);

/* Take the next request: 1 with req filled, 0 when the ring is empty,
 * -EIO when the queue is (now) broken. */
int vring_pop(struct vring *vr, const struct memtable *mt, struct vring_req *req);
/* Take the chain at head (a request to resubmit after a reconnect): the
 * same checks and results, without touching the available ring. */
int vring_take_head(struct vring *vr, const struct memtable *mt, uint16_t head, struct vring_req *req);
/* Complete a request: len bytes were written into its in buffers. */
void vring_push(struct vring *vr, uint16_t head, uint32_t len);
/* After pushes: does the guest want an interrupt now? */
bool vring_need_notify(struct vring *vr);
/* Ask the guest to notify us of new requests (or not to), then tell
 * whether requests are waiting already (so a sleeper does not miss one). */
bool vring_notify_enable(struct vring *vr, bool on);
/* Mark the queue broken with a reason. Returns -EIO. */
int vring_break(struct vring *vr, const char *why);
