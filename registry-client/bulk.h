/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The bulk engine: moves many chunks of an image at once. `pull`
 * (into the store), `export` (out to a file), `repack` (into new packs) and
 * `inspect --verify` (nowhere) all run it; blockd's fetch scheduler keeps
 * its own classes and window but ends every fetch in bulk_chunk_store(),
 * the same decode, verify and store step.
 *
 * One run:
 *   1. the chunks the store already has are skipped (BULK_SKIP_STORED) or
 *      read from it (BULK_READ_STORED, verified by chunkstore_get);
 *   2. the others are planned into range reads (chunkstore/coalesce.h:
 *      neighbours in one pack become one ranged GET, up to range_max,
 *      reading through gaps up to gap_max), sorted by pack and offset
 *      unless the order is kept (BULK_ORDERED);
 *   3. up to `jobs` ranges are in flight through the range fetcher
 *      (fetch.h), with range buffers reused;
 *   4. decoder threads decode and verify every chunk (chunk_decode), store
 *      it when a store is given, and hand it to the caller's chunk
 *      callback. Nothing that failed verification is stored or handed on
 *      as data.
 *
 * Errors: without a callback the first failure ends the run (the rest is
 * cancelled) and is returned, with the chunk in ret->bad_chunk. With one,
 * the callback sees every chunk, failed ones with r < 0, and decides:
 * returning < 0 ends the run with that error.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chunkstore/blkindex.h"
#include "chunkstore/store.h"
#include "image.h"

#define BULK_DEFAULT_JOBS 8
#define BULK_DEFAULT_RANGE (4u << 20)
/* Fetch through a gap between two wanted chunks rather than split the
 * range, when the gap is at most this (a request costs a round trip). */
#define BULK_DEFAULT_GAP (256u << 10)

enum {
        BULK_SKIP_STORED = 1 << 0,      /* chunks in the store are not fetched (pull) */
        BULK_READ_STORED = 1 << 1,      /* chunks in the store are read from it (export) */
        BULK_ORDERED = 1 << 2,          /* keep the given order, deliver in it from the calling thread */
        BULK_FETCH_ONLY = 1 << 3,       /* fetch the ranges, decode nothing (pull --no-store) */
        BULK_STORE_REQUIRED = 1 << 4,   /* a chunk the store cannot take ends the run with that error (pull) */
};

/*
 * A chunk done: unique chunk k of the image. r == 0: the chunk verified;
 * raw holds its raw_len bytes (NULL with BULK_ORDERED) and stored its
 * stored bytes (NULL when it came from the store). r < 0: the chunk
 * failed (-EBADMSG: its bytes do not match its digest; else the range
 * read's error); raw and stored are NULL. Called from decoder threads,
 * several at once, or with BULK_ORDERED from the calling thread in the
 * given order. Return 0 to go on, < 0 to end the run with that error.
 */
typedef int (*bulk_chunk_fn)(void *userdata, uint32_t k, int r, const void *stored, const void *raw);

struct bulk_options {
        unsigned flags;                 /* BULK_* */
        unsigned jobs;                  /* range reads in flight; 0 = BULK_DEFAULT_JOBS */
        uint64_t range_max;             /* 0 = BULK_DEFAULT_RANGE */
        uint64_t gap_max;               /* bytes read through; ignored with BULK_ORDERED (0 there) */
        unsigned decoders;              /* 0 = one per CPU, at most 8 */
        const char *progress;           /* label of a progress line (TTY only), or NULL */
        bulk_chunk_fn chunk;            /* or NULL */
        void *userdata;
};

struct bulk_result {
        uint32_t chunks_fetched;        /* fetched and verified */
        uint32_t chunks_read;           /* read from the store (BULK_READ_STORED) */
        uint32_t chunks_skipped;        /* in the store already (BULK_SKIP_STORED) */
        uint64_t raw_skipped;           /* their raw bytes */
        uint64_t stored_fetched;        /* stored bytes of the fetched chunks */
        uint64_t bytes_fetched;         /* bytes of the range reads (with gaps read through) */
        uint64_t bytes_stored;          /* raw bytes inserted into the store */
        uint32_t ranges;                /* range reads planned */
        uint32_t bad_chunk;             /* the chunk a failed run stopped at */
        bool store_failed;              /* it failed storing a chunk (BULK_STORE_REQUIRED) */
};

/*
 * Move chunks[0..n) (unique chunk numbers of img, no duplicates) through
 * store (NULL: none). ret is filled also on failure (what was done).
 * Returns 0 or the error that ended the run.
 */
int bulk_run(struct image *img, struct chunkstore *store, const uint32_t *chunks, uint32_t n,
             const struct bulk_options *o, struct bulk_result *ret);

/*
 * Decode and verify one chunk from its stored bytes into raw (c->raw_len
 * bytes; chunk_decode) and, if it verified and store is not NULL, insert
 * it. Returns chunk_decode's result: 0 or -EBADMSG (then nothing was
 * stored). *ret_store_err gets the insert's result (0 also without a
 * store); a failed insert does not make the chunk bad, it is only not
 * local. The one decode, verify and store step of every fetch.
 * ret_fd (may be NULL): when this call stored the chunk, a read-only fd on
 * the new entry (the caller closes it; chunkstore_put_verified_fd), else
 * -EBADF.
 */
int bulk_chunk_store(struct chunkstore *store, const struct blkindex_chunk *c, const void *stored, void *raw,
                     int *ret_store_err, int *ret_fd);
