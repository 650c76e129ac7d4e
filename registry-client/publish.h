/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Publishing an image whose packs are stored: the index blob, the empty
 * config, the optional boot profile blob and, last, the manifest naming
 * them under a tag. Until the manifest is stored nothing names the new
 * blobs, so a failed or killed publish never leaves a tag pointing at a
 * partial image. `push` and `repack` both end here.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "chunkstore/blkindex.h"
#include "chunkstore/digest.h"
#include "source.h"

struct publish_result {
        struct digest manifest_digest;
        uint64_t manifest_size;
        uint64_t index_size;
        uint64_t blobs_uploaded;        /* blobs sent (the destination lacked them) */
        uint64_t bytes_uploaded;
};

/*
 * Publish the image x (every pack it names must be in dst already) with
 * an optional profile blob under tag. Blobs dst already has are not sent
 * again. Returns 0 or -errno; ret is filled on success.
 */
int publish_image(struct blob_source *dst, const char *tag, const struct blkindex *x, const void *profile,
                  size_t profile_len, struct publish_result *ret);

/* Store a blob unless dst has it already (same size). Returns 1 when it
 * was sent, 0 when present, or -errno. */
int publish_blob_buf(struct blob_source *dst, const struct digest *d, const void *buf, size_t len);
int publish_blob_fd(struct blob_source *dst, const struct digest *d, int fd, uint64_t size);
