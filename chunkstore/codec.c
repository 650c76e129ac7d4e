/* SPDX-License-Identifier: Apache-2.0 */
#include "codec.h"

#include <errno.h>
#include <lz4.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "common/cleanup.h"

const char *codec_name(enum codec c) {
        switch (c) {
        case CODEC_RAW:
                return "raw";
        case CODEC_ZSTD:
                return "zstd";
        case CODEC_LZ4:
                return "lz4";
        default:
                return "unknown";
        }
}

int codec_parse(const char *s, enum codec *ret, int *ret_level) {
        if (!strcmp(s, "none") || !strcmp(s, "raw")) {
                *ret = CODEC_RAW;
                *ret_level = 0;
                return 0;
        }
        if (!strcmp(s, "lz4")) {
                *ret = CODEC_LZ4;
                *ret_level = 0;
                return 0;
        }
        if (!strncmp(s, "zstd", 4)) {
                int level = 3;

                if (s[4] == ':') {
                        char *end;
                        long v = strtol(s + 5, &end, 10);

                        if (end == s + 5 || *end || v < 1 || v > ZSTD_maxCLevel())
                                return -EINVAL;
                        level = (int) v;
                } else if (s[4]) {
                        return -EINVAL;
                }
                *ret = CODEC_ZSTD;
                *ret_level = level;
                return 0;
        }
        return -EINVAL;
}

size_t codec_bound(size_t len) {
        size_t z = ZSTD_compressBound(len);
        size_t l = (size_t) LZ4_compressBound((int) MIN(len, (size_t) LZ4_MAX_INPUT_SIZE));

        return MAX(MAX(z, l), len);
}

/* One compression and one decompression context per thread, freed at
 * thread exit. */
static pthread_key_t cctx_key, dctx_key;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;

static void cctx_free(void *p) {
        ZSTD_freeCCtx(p);
}

static void dctx_free(void *p) {
        ZSTD_freeDCtx(p);
}

static void keys_init(void) {
        if (pthread_key_create(&cctx_key, cctx_free) || pthread_key_create(&dctx_key, dctx_free))
                abort();
}

static ZSTD_CCtx *thread_cctx(void) {
        ZSTD_CCtx *c;

        pthread_once(&key_once, keys_init);
        c = pthread_getspecific(cctx_key);
        if (!c) {
                c = ZSTD_createCCtx();
                if (c && pthread_setspecific(cctx_key, c) != 0) {
                        ZSTD_freeCCtx(c);
                        c = NULL;
                }
        }
        return c;
}

static ZSTD_DCtx *thread_dctx(void) {
        ZSTD_DCtx *d;

        pthread_once(&key_once, keys_init);
        d = pthread_getspecific(dctx_key);
        if (!d) {
                d = ZSTD_createDCtx();
                if (d && pthread_setspecific(dctx_key, d) != 0) {
                        ZSTD_freeDCtx(d);
                        d = NULL;
                }
        }
        return d;
}

ssize_t codec_compress(enum codec c, int level, const void *src, size_t len, void *dst, size_t cap) {
        switch (c) {
        case CODEC_RAW:
                if (cap < len)
                        return -ENOBUFS;
                memcpy(dst, src, len);
                return (ssize_t) len;
        case CODEC_ZSTD: {
                ZSTD_CCtx *cc = thread_cctx();
                size_t n;

                if (!cc)
                        return -ENOMEM;
                n = ZSTD_compressCCtx(cc, dst, cap, src, len, level);
                if (ZSTD_isError(n))
                        return -ENOBUFS;
                return (ssize_t) n;
        }
        case CODEC_LZ4: {
                int n;

                if (len > LZ4_MAX_INPUT_SIZE)
                        return -EFBIG;
                n = LZ4_compress_default(src, dst, (int) len, (int) MIN(cap, (size_t) INT32_MAX));
                if (n <= 0)
                        return -ENOBUFS;
                return n;
        }
        default:
                return -EINVAL;
        }
}

int codec_decompress(enum codec c, const void *src, size_t len, void *dst, size_t raw_len) {
        switch (c) {
        case CODEC_RAW:
                if (len != raw_len)
                        return -EBADMSG;
                memcpy(dst, src, len);
                return 0;
        case CODEC_ZSTD: {
                ZSTD_DCtx *dc = thread_dctx();
                size_t n;

                if (!dc)
                        return -ENOMEM;
                n = ZSTD_decompressDCtx(dc, dst, raw_len, src, len);
                if (ZSTD_isError(n) || n != raw_len)
                        return -EBADMSG;
                return 0;
        }
        case CODEC_LZ4: {
                int n;

                if (len > INT32_MAX || raw_len > INT32_MAX)
                        return -EBADMSG;
                n = LZ4_decompress_safe(src, dst, (int) len, (int) raw_len);
                if (n < 0 || (size_t) n != raw_len)
                        return -EBADMSG;
                return 0;
        }
        default:
                return -EBADMSG;
        }
}
