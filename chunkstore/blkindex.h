/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The image index (format v1, docs/FORMAT.md is normative): the table of
 * packs, the table of unique chunks and the logical map from chunk number
 * to unique chunk (or BLKINDEX_ZERO). Encoder and hardened decoder.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "digest.h"

#define BLKINDEX_MAGIC "HOCUSIDX"
#define BLKINDEX_VERSION 1
#define BLKINDEX_HEADER_SIZE 64
#define BLKINDEX_PACK_SIZE 40
#define BLKINDEX_CHUNK_SIZE 56
#define BLKINDEX_ZERO UINT32_MAX

/* Limits the decoder enforces (and the encoder respects). */
#define BLKINDEX_MIN_CHUNK (4u << 10)
#define BLKINDEX_MAX_CHUNK (16u << 20)
#define BLKINDEX_MAX_IMAGE (1ULL << 44)         /* 16 TiB */
#define BLKINDEX_MAX_PACKS (1u << 20)
#define BLKINDEX_MAX_CHUNKS (UINT32_MAX - 1)
#define BLKINDEX_MAX_BODY (1ULL << 30)          /* decoded body, bytes */

struct blkindex_pack {
        struct digest digest;
        uint64_t size;
};

struct blkindex_chunk {
        struct digest digest;   /* SHA-256 of the uncompressed bytes */
        uint64_t offset;        /* in the pack */
        uint32_t stored_len;    /* bytes in the pack */
        uint32_t raw_len;       /* bytes after decoding */
        uint32_t pack;          /* index into packs[] */
        uint8_t codec;          /* enum codec */
};

struct blkindex {
        uint64_t image_size;
        uint32_t chunk_size;
        uint32_t n_packs;
        uint32_t n_chunks;
        uint64_t n_map;
        struct blkindex_pack *packs;
        struct blkindex_chunk *chunks;
        uint32_t *map;          /* n_map entries */
};

/* Number of logical chunks for an image: ceil(size / chunk_size). */
static inline uint64_t blkindex_map_len(uint64_t image_size, uint32_t chunk_size) {
        return (image_size + chunk_size - 1) / chunk_size;
}

/* Length of logical chunk i (the tail chunk may be short). */
static inline uint32_t blkindex_chunk_len(const struct blkindex *x, uint64_t i) {
        uint64_t start = i * x->chunk_size;
        uint64_t left = x->image_size - start;

        return left < x->chunk_size ? (uint32_t) left : x->chunk_size;
}

/* Check the in-memory index the way the decoder does. 0 or -EINVAL with a
 * reason in err. */
int blkindex_validate(const struct blkindex *x, char *err, size_t errlen);

/* Encode to a newly allocated blob. 0 or -errno (-EINVAL if invalid). */
int blkindex_encode(const struct blkindex *x, void **ret_buf, size_t *ret_len);

/*
 * Decode a blob. Every offset, length, count and index is checked against
 * the image and the blob; on failure returns -EBADMSG (or -ENOMEM) and
 * writes a human-readable reason to err. Never reads outside buf.
 */
int blkindex_decode(const void *buf, size_t len, struct blkindex **ret, char *err, size_t errlen);

/* Allocate an empty index (tables zeroed) with room for the given counts. */
int blkindex_new(uint64_t image_size, uint32_t chunk_size, uint32_t n_packs, uint32_t n_chunks,
                 struct blkindex **ret);
void blkindex_free(struct blkindex *x);

/* Bytes stored in packs for the chunks this index references (unique). */
uint64_t blkindex_stored_bytes(const struct blkindex *x);
