/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-blk (virtio 1.2, 5.2) on an export: the features and config
 * space a VMM asks for, and carrying out one request taken off a queue.
 * Reads, writes, flushes, discards and write-zeroes go through the export
 * API (export.h), the same path as NBD's: an uncached range is a demand
 * fetch, a fetch that times out is VIRTIO_BLK_S_IOERR. Cached data is
 * read from its chunk-store entry straight into the guest's buffers
 * (preadv onto the request's iovecs), without a bounce buffer.
 *
 * Safe to call from several queue threads at once on one export.
 */
#pragma once

#include <stdint.h>

#include "blockd/export.h"
#include "blockd/vhost/virtio.h"
#include "blockd/vhost/vring.h"

#define VBLK_SEG_MAX 126u               /* data buffers per request we announce */
#define VBLK_MAX_DISCARD_SEG 32u

/* Virtio feature bits we offer for e (ring and block features). */
uint64_t vblk_features(const struct export *e);
/* The config space for e with nq queues. */
void vblk_config(const struct export *e, unsigned nq, struct virtio_blk_config *ret);
/*
 * Carry out req and write its status byte. Returns the bytes written into
 * the request's in buffers (the used length), or -EIO when the request has
 * no room for a status byte (nothing can be reported: the caller marks the
 * queue broken).
 */
int64_t vblk_handle(struct export *e, struct vring_req *req);
