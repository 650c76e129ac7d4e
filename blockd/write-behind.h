/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Write-behind: the decoders' store writes, off the critical path. A chunk
 * the decoders verified is served at once from its decoded buffer; its
 * chunk store insert (chunkstore_put_verified_fd: file creation, write,
 * link, 42% of blockd's CPU in a cold start) is queued here and done by a
 * thread at idle CPU priority (SCHED_IDLE, man 7 sched): during a
 * CPU-bound start the writes happen when the CPU has nothing else to do.
 *
 * Until its entry is linked, a queued chunk is served from its verified
 * buffer (write_behind_get): never fetched again, never unverified. An
 * entry leaves the queue only after its file is linked in the store and
 * its fd is in the fd cache (chunkfd_adopt), so whoever misses the queue
 * finds the store entry. The queue holds at most max_bytes of chunks;
 * when full, write_behind_push refuses and the decoder stores inline as
 * before (backpressure, counted).
 *
 * The idle writer takes no lock a serving thread waits for (a thread at
 * idle priority holding one could be kept off the CPU for a long time):
 * chunks reach it through a lock-free list, and it hands stored ones
 * back through another; threads at normal priority (pushes, stats,
 * flushes) drop them from the table and adopt their fds. A flush stores
 * what the writer has not started itself, at the caller's priority.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "chunkstore/digest.h"
#include "chunkstore/store.h"

struct write_behind;
struct chunkfd_cache;
struct sched_buf;

#define WRITE_BEHIND_DEFAULT (128ull << 20)

struct write_behind_stats {
        uint64_t queued;                /* chunks queued or being stored now */
        uint64_t queued_bytes;          /* their bytes */
        uint64_t max_bytes;             /* the bound */
        uint64_t deferred;              /* chunks queued, ever */
        uint64_t stored;                /* of which stored by the idle writer */
        uint64_t flushed;               /* of which stored by a flush */
        uint64_t failed;                /* of which the store refused (not local) */
        uint64_t full;                  /* pushes refused: the queue was full (stored inline) */
        uint64_t hits;                  /* reads served from a queued chunk's buffer */
};

/* store (and fds, may be NULL) are borrowed and must outlive the queue.
 * idle: run the writer at SCHED_IDLE (false: normal priority, tests).
 * $HOCUS_BLK_WRITE_BEHIND_HOLD set (tests): no writer, only flushes store. */
int write_behind_new(struct chunkstore *store, struct chunkfd_cache *fds, uint64_t max_bytes, bool idle,
                     struct write_behind **ret);
/* Flush, stop the writer, free. NULL is fine. */
void write_behind_free(struct write_behind *wb);
void write_behind_set_fd_cache(struct write_behind *wb, struct chunkfd_cache *fds);

/* Queue the insert of chunk d, whose verified bytes buf holds (its len).
 * 0: queued (the queue took a reference on buf); -ENOBUFS: full, store it
 * yourself (counted); -EEXIST: d is queued already. */
int write_behind_push(struct write_behind *wb, const struct digest *d, struct sched_buf *buf);
/* A new reference to the verified bytes of d while it is queued, else
 * NULL. Counts a hit when it returns one and hit is set. */
struct sched_buf *write_behind_get(struct write_behind *wb, const struct digest *d, bool hit);
bool write_behind_has(struct write_behind *wb, const struct digest *d);
/* Store every chunk queued before the call (what the writer has not begun
 * at the caller's priority) and wait until each is in the store. */
void write_behind_flush(struct write_behind *wb);
void write_behind_get_stats(struct write_behind *wb, struct write_behind_stats *ret);
