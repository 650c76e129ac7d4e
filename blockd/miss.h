/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The miss path: what happens when a read needs a chunk that the local
 * chunk store does not hold. This is the one function the lazy fetch
 * scheduler (demand > profile > background, coalesced range GETs) will
 * replace; everything above it only sees "fill this chunk, or fail".
 *
 * For now a miss is fetched synchronously through image_get_chunk(): read
 * from the image's source, decoded, verified and inserted into the store.
 * One fetch per chunk at a time: concurrent readers of the same missing
 * chunk wait for the first one and then find it in the store.
 */
#pragma once

#include <stdint.h>

#include "chunkstore/store.h"
#include "registry-client/image.h"

struct miss_table;

int miss_table_new(struct miss_table **ret);
void miss_table_free(struct miss_table *t);

/*
 * Fetch unique chunk k of img (through store). On success returns 0 with
 * *ret_buf holding the chunk's raw_len verified bytes (caller frees) and
 * *ret_fetched the bytes fetched from the source (0 if another process
 * put it in the store meanwhile). Returns -EAGAIN when another thread
 * fetched the chunk while this one waited: look in the store again. Other
 * errors are the fetch's (-EIO, -EBADMSG, -ETIMEDOUT, ...), shared with
 * every waiter.
 */
int miss_fetch(struct miss_table *t, struct image *img, struct chunkstore *store, uint32_t k, void **ret_buf,
               uint64_t *ret_fetched);
