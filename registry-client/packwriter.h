/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The pack writer: chunks' stored bytes appended back to back into pack
 * blobs of bounded size, each full pack uploaded by a background thread
 * (at most PACKWRITER_QUEUE waiting, which bounds memory) under the digest
 * it hashes to. `push` (new chunks, and the base packs a delta image
 * reuses) and `repack` (chunks copied in a new order) both write their
 * packs with it; publish.h then names them in the index and manifest.
 *
 * Thread-safety: one writer thread calls everything; the upload thread is
 * internal.
 */
#pragma once

#include <stdint.h>

#include "chunkstore/blkindex.h"
#include "source.h"

#define PACKWRITER_QUEUE 2

struct packwriter;

struct packwriter_stats {
        uint64_t packs_new;             /* packs written (not counting added ones) */
        uint64_t blobs_uploaded;        /* of those, sent (not already present) */
        uint64_t bytes_uploaded;
};

/* dst is borrowed. pack_size bounds a pack (a larger chunk is a pack of
 * its own). */
int packwriter_new(struct blob_source *dst, uint64_t pack_size, struct packwriter **ret);
/* Stops the upload thread (waiting for it) and drops unfinished packs. NULL ok. */
void packwriter_free(struct packwriter *pw);

/*
 * Append len stored bytes; *ret_pack and *ret_off say where they landed.
 * When the current pack would grow past pack_size it is handed to the
 * upload thread first (waiting while the queue is full). Returns 0, an
 * earlier upload's error, -E2BIG past BLKINDEX_MAX_PACKS, or -errno.
 */
int packwriter_append(struct packwriter *pw, const void *buf, uint32_t len, uint32_t *ret_pack, uint64_t *ret_off);

/* Add a pack the destination has (or will have: a delta base's) to the
 * table without writing it; *ret_pack is its number. */
int packwriter_add(struct packwriter *pw, const struct blkindex_pack *p, uint32_t *ret_pack);

/* Upload the current pack and wait for every upload. Returns the first
 * error; on success the table is complete. */
int packwriter_finish(struct packwriter *pw);

/* The pack table (borrowed; complete after packwriter_finish). */
const struct blkindex_pack *packwriter_packs(const struct packwriter *pw, uint32_t *ret_n);
void packwriter_get_stats(const struct packwriter *pw, struct packwriter_stats *ret);
