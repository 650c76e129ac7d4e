/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Push a raw disk image as a hocus-blk image: chunk, hash, dedup (within
 * the image and against a base), compress, write bounded packs, upload the
 * packs, the index, the empty config and, last, the manifest under the
 * tag. Until the manifest is stored nothing names the new blobs, so a
 * failed push never leaves a tag pointing at a partial image.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "chunkstore/codec.h"
#include "chunkstore/digest.h"
#include "image.h"
#include "source.h"

#define PUSH_DEFAULT_CHUNK_SIZE (256u << 10)
#define PUSH_DEFAULT_PACK_SIZE (64u << 20)

struct push_options {
        uint32_t chunk_size;            /* 0 = default */
        enum codec codec;
        int level;
        uint64_t pack_size;             /* 0 = default */
        unsigned threads;               /* 0 = number of CPUs */
        struct image *base;             /* delta base, or NULL (borrowed) */
        /* Logical chunk numbers to lay out first (a boot profile), in
         * order; duplicates and out-of-range numbers are ignored. */
        const uint64_t *first_chunks;
        uint64_t n_first_chunks;
        /* An optional profile blob to attach as a layer. */
        const void *profile;
        size_t profile_len;
        bool progress;
};

struct push_result {
        struct digest manifest_digest;
        uint64_t manifest_size;
        uint64_t image_size;
        uint32_t chunk_size;
        uint64_t data_bytes;            /* bytes in data regions (read) */
        uint64_t chunks_total;          /* logical chunks */
        uint64_t chunks_zero;           /* holes and all-zero chunks */
        uint64_t chunks_unique;         /* unique chunks in the index */
        uint64_t chunks_dedup;          /* references to a chunk seen earlier in the image */
        uint64_t chunks_from_base;      /* unique chunks found in the base */
        uint64_t stored_new;            /* compressed bytes of new chunks */
        uint64_t raw_new;               /* uncompressed bytes of new chunks */
        uint64_t packs_new;             /* packs written by this push */
        uint64_t blobs_uploaded;        /* blobs actually sent (not already present) */
        uint64_t bytes_uploaded;
        uint64_t index_size;
        double seconds;
};

int image_push(int src_fd, struct blob_source *dst, const char *tag, const struct push_options *o,
               struct push_result *ret);
