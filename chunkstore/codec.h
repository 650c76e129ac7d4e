/* SPDX-License-Identifier: Apache-2.0 */
/* Per-chunk codecs: raw, zstd, lz4. Values are stored in the index. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum codec {
        CODEC_RAW = 0,
        CODEC_ZSTD = 1,
        CODEC_LZ4 = 2,
        _CODEC_MAX,
};

const char *codec_name(enum codec c);
/* "zstd", "zstd:LEVEL", "lz4", "none"/"raw". Level defaults to 3 for zstd. */
int codec_parse(const char *s, enum codec *ret, int *ret_level);

/* Worst-case compressed size for len input bytes, for any codec. */
size_t codec_bound(size_t len);

/*
 * Compress src into dst (capacity cap >= codec_bound(len)). Returns the
 * compressed length or -errno. Thread-safe (per-thread contexts).
 */
ssize_t codec_compress(enum codec c, int level, const void *src, size_t len, void *dst, size_t cap);

/*
 * Decompress exactly raw_len bytes. Returns 0, or -EBADMSG when the input is
 * malformed or does not decode to exactly raw_len bytes. Never writes past
 * dst + raw_len.
 */
int codec_decompress(enum codec c, const void *src, size_t len, void *dst, size_t raw_len);
