/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Inflight I/O tracking (vhost-user VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD,
 * split queues): a shared memory region that we create on GET_INFLIGHT_FD
 * and the VMM keeps. It marks which descriptor heads we took off each
 * queue and have not completed yet. When blockd restarts and the VMM
 * reconnects, it hands the region back (SET_INFLIGHT_FD) and those
 * requests are carried out again, oldest first, so the guest sees every
 * request completed once.
 *
 * Layout per queue (as the vhost-user document describes it), each queue
 * at a multiple of inflight_queue_bytes():
 *   u64 features; u16 version; u16 desc_num; u16 last_batch_head;
 *   u16 used_idx; then desc_num entries of
 *   { u8 inflight; u8 padding[5]; u16 next; u64 counter; }
 *
 * The region comes from outside: every field read from it is checked.
 * One thread per queue (the queue's).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

struct inflight_queue;
struct inflight;

/* Bytes one queue of queue_size entries takes. */
uint64_t inflight_queue_bytes(unsigned queue_size);
/* A new zeroed region for nq queues (GET_INFLIGHT_FD): its memfd and
 * size. -EINVAL for sizes out of range. */
int inflight_create(unsigned nq, unsigned queue_size, int *ret_fd, uint64_t *ret_size);
/* Map a region the VMM handed back (SET_INFLIGHT_FD); fd is borrowed.
 * -EINVAL if size cannot hold nq queues of queue_size. */
int inflight_map(int fd, uint64_t size, uint64_t offset, unsigned nq, unsigned queue_size, struct inflight **ret);
void inflight_free(struct inflight *inf);
unsigned inflight_queue_size(const struct inflight *inf);
/* Queue i's tracking (NULL if i is past the region's queues). */
struct inflight_queue *inflight_get_queue(struct inflight *inf, unsigned i);

/* A head was taken off the available ring. */
void inflight_begin(struct inflight_queue *q, uint16_t head);
/* head is about to be put on the used ring. */
void inflight_batch(struct inflight_queue *q, uint16_t head);
/* head is on the used ring, whose index is now used_idx. */
void inflight_end(struct inflight_queue *q, uint16_t head, uint16_t used_idx);

/*
 * After a reconnect, given the used index in guest memory: repair a
 * completion cut off half-way, then fill heads (max entries) with the
 * heads still in flight, oldest first. Returns their number; the
 * available ring's next entry is used_idx plus that number.
 */
unsigned inflight_recover(struct inflight_queue *q, uint16_t used_idx, uint16_t *heads, unsigned max);
