/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Repack an existing image in boot-profile order: the chunks a profile
 * reads first move to the front of new packs, then every other chunk in
 * logical order. Chunks are copied as stored (no recompression; each one
 * is verified on the way), so chunk digests, the logical map and every
 * local chunk store stay valid; only the packs, the index's pack table and
 * offsets, and the manifest change. The profile is attached as the new
 * manifest's last layer.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "image.h"
#include "source.h"

struct repack_options {
        const uint64_t *first_chunks;   /* logical chunk numbers, profile order */
        uint64_t n_first_chunks;
        const void *profile;            /* blob to attach as a layer, or NULL */
        size_t profile_len;
        uint64_t pack_size;             /* 0 = PUSH_DEFAULT_PACK_SIZE */
        bool progress;
};

struct repack_result {
        struct digest manifest_digest;
        uint64_t chunks;                /* unique chunks copied */
        uint64_t chunks_first;          /* of those, laid out first */
        uint64_t packs;
        uint64_t bytes;                 /* stored bytes copied */
        uint64_t reads;                 /* range reads from the source */
        double seconds;
};

/* Repack img (its source) into dst under tag. */
int image_repack(struct image *img, struct blob_source *dst, const char *tag, const struct repack_options *o,
                 struct repack_result *ret);
