/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Boot profiles (docs/FORMAT.md): the order in which a first boot read an
 * image, as byte ranges with the time of the first read. Ranges, not chunk
 * numbers, so a profile recorded on v1 applies to v2 and to any chunk size.
 *
 *   header (32 bytes, little-endian): "HOCUSPRF", u32 version (1),
 *     u32 flags (0), u32 chunk_size (of the recorded image; informational),
 *     u32 count, u64 reserved (0)
 *   count x { u64 offset, u32 length, u32 t_ms }
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define PROFILE_MAGIC "HOCUSPRF"
#define PROFILE_VERSION 1
#define PROFILE_HEADER_SIZE 32
#define PROFILE_ENTRY_SIZE 16
#define PROFILE_MAX_ENTRIES (16u << 20)

struct profile_entry {
        uint64_t offset;
        uint32_t length;
        uint32_t t_ms;          /* ms since the recording started */
};

struct profile {
        uint32_t chunk_size;
        uint32_t count;
        struct profile_entry *entries;
};

int profile_encode(const struct profile *p, void **ret_buf, size_t *ret_len);
/* Hardened decode: -EBADMSG with a reason in err. */
int profile_decode(const void *buf, size_t len, struct profile **ret, char *err, size_t errlen);
int profile_load(const char *path, struct profile **ret, char *err, size_t errlen);
void profile_free(struct profile *p);

/*
 * The logical chunk numbers a profile touches, in first-touch order,
 * without duplicates, for an image of image_size bytes cut in chunk_size
 * chunks. Ranges past the end are clipped.
 */
int profile_chunks(const struct profile *p, uint64_t image_size, uint32_t chunk_size, uint64_t **ret,
                   uint64_t *ret_n);

/*
 * Merge the profiles of several boots into one: every entry, ordered by
 * first-read time (stable, so ties keep profile order). Chunks needed
 * early by any boot come first; duplicates are harmless (profile_chunks
 * keeps the first). The chunk size is the first profile's.
 */
int profile_merge(const struct profile *const *ps, size_t n, struct profile **ret);
