/* SPDX-License-Identifier: Apache-2.0 */
/*
 * An opened hocus-blk image: its manifest, its decoded index, and the
 * source its packs live in. Chunks are moved by the bulk engine (bulk.h)
 * and verified by chunk_decode (chunkstore/chunk-decode.h).
 */
#pragma once

#include <stdint.h>

#include "chunkstore/blkindex.h"
#include "chunkstore/store.h"
#include "manifest.h"
#include "source.h"

#define INDEX_BLOB_MAX (1ULL << 30)

struct image {
        struct blob_source *src;        /* borrowed */
        struct digest manifest_digest;
        uint64_t manifest_size;
        struct image_manifest *manifest;
        struct blkindex *index;
        /* How long opening took (now_ns() clock), for whoever reports an
         * attach's breakdown: the manifest (local copy or fetched), the
         * index (fetched or read, verified, decoded, kept locally). */
        uint64_t manifest_ns, index_ns;
};

/*
 * Resolve the source's reference to a manifest, fetch and verify the index
 * blob and decode it, and check the index's packs against the manifest's
 * layers. err gets a reason: -ENOENT (unknown tag), -EMEDIUMTYPE (not a
 * hocus-blk image), -EBADMSG (malformed or mismatching content).
 */
int image_open(struct blob_source *src, struct image **ret, char *err, size_t errlen);
/*
 * The same, with local copies: pin (optional) is the manifest digest to
 * open instead of what the reference names now (a running export stays on
 * the manifest it attached); meta (optional) is the chunk store whose
 * metadata (chunkstore/meta.h) is read first and keeps what is fetched,
 * so a pinned image whose manifest and index are local opens without the
 * source. What it keeps is written atomically but not synced (no fsync
 * before the first byte): image_meta_sync makes it durable.
 */
int image_open_at(struct blob_source *src, struct chunkstore *meta, const struct digest *pin, struct image **ret,
                  char *err, size_t errlen);
/* Make the manifest and index image_open_at kept in meta durable. */
int image_meta_sync(const struct image *img, struct chunkstore *meta);
void image_free(struct image *img);
