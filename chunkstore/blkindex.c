/* SPDX-License-Identifier: Apache-2.0 */
#include "blkindex.h"

#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "codec.h"
#include "common/cleanup.h"
#include "common/err.h"

static void put_u32(uint8_t *p, uint32_t v) {
        v = htole32(v);
        memcpy(p, &v, 4);
}

static void put_u64(uint8_t *p, uint64_t v) {
        v = htole64(v);
        memcpy(p, &v, 8);
}

static uint32_t get_u32(const uint8_t *p) {
        uint32_t v;

        memcpy(&v, p, 4);
        return le32toh(v);
}

static uint64_t get_u64(const uint8_t *p) {
        uint64_t v;

        memcpy(&v, p, 8);
        return le64toh(v);
}

/* Largest stored length a chunk of raw_len bytes may have: compressed
 * chunks are only kept when smaller than raw, but allow the codec bound so
 * a valid encoder never trips the check. */
static uint64_t stored_len_max(uint32_t raw_len) {
        return codec_bound(raw_len);
}

int blkindex_new(uint64_t image_size, uint32_t chunk_size, uint32_t n_packs, uint32_t n_chunks,
                 struct blkindex **ret) {
        struct blkindex *x;
        uint64_t n_map = blkindex_map_len(image_size, chunk_size ? chunk_size : 1);

        if (chunk_size == 0 || n_map > UINT32_MAX)
                return -EINVAL;
        x = calloc(1, sizeof *x);
        if (!x)
                return -ENOMEM;
        x->image_size = image_size;
        x->chunk_size = chunk_size;
        x->n_packs = n_packs;
        x->n_chunks = n_chunks;
        x->n_map = n_map;
        x->packs = calloc(MAX(n_packs, 1u), sizeof *x->packs);
        x->chunks = calloc(MAX(n_chunks, 1u), sizeof *x->chunks);
        x->map = malloc(MAX(n_map, 1u) * sizeof *x->map);
        if (!x->packs || !x->chunks || !x->map) {
                blkindex_free(x);
                return -ENOMEM;
        }
        for (uint64_t i = 0; i < n_map; i++)
                x->map[i] = BLKINDEX_ZERO;
        *ret = x;
        return 0;
}

void blkindex_free(struct blkindex *x) {
        if (!x)
                return;
        free(x->packs);
        free(x->chunks);
        free(x->map);
        free(x);
}

int blkindex_validate(const struct blkindex *x, char *err, size_t errlen) {
        uint32_t c = x->chunk_size;

        if (c < BLKINDEX_MIN_CHUNK || c > BLKINDEX_MAX_CHUNK || (c & (c - 1)))
                return err_set(err, errlen, -EINVAL, "chunk size %u is not a power of two in [%u, %u]", c,
                               BLKINDEX_MIN_CHUNK, BLKINDEX_MAX_CHUNK);
        if (x->image_size > BLKINDEX_MAX_IMAGE)
                return err_set(err, errlen, -EINVAL, "image size %llu exceeds the limit of %llu",
                               (unsigned long long) x->image_size, (unsigned long long) BLKINDEX_MAX_IMAGE);
        if (x->n_map != blkindex_map_len(x->image_size, c))
                return err_set(err, errlen, -EINVAL, "map has %llu entries, image needs %llu",
                               (unsigned long long) x->n_map,
                               (unsigned long long) blkindex_map_len(x->image_size, c));
        if (x->n_packs > BLKINDEX_MAX_PACKS)
                return err_set(err, errlen, -EINVAL, "%u packs exceed the limit of %u", x->n_packs,
                               BLKINDEX_MAX_PACKS);
        if (x->n_chunks > BLKINDEX_MAX_CHUNKS)
                return err_set(err, errlen, -EINVAL, "too many chunks (%u)", x->n_chunks);

        for (uint32_t i = 0; i < x->n_chunks; i++) {
                const struct blkindex_chunk *k = &x->chunks[i];

                if (k->pack >= x->n_packs)
                        return err_set(err, errlen, -EINVAL, "chunk %u names pack %u of %u", i, k->pack,
                                       x->n_packs);
                if (k->codec >= _CODEC_MAX)
                        return err_set(err, errlen, -EINVAL, "chunk %u has unknown codec %u", i, k->codec);
                if (k->raw_len == 0 || k->raw_len > c)
                        return err_set(err, errlen, -EINVAL, "chunk %u has raw length %u (chunk size %u)", i,
                                       k->raw_len, c);
                if (k->stored_len == 0 || k->stored_len > stored_len_max(k->raw_len))
                        return err_set(err, errlen, -EINVAL, "chunk %u has stored length %u for %u raw bytes",
                                       i, k->stored_len, k->raw_len);
                if (k->codec == CODEC_RAW && k->stored_len != k->raw_len)
                        return err_set(err, errlen, -EINVAL, "raw chunk %u stores %u bytes for %u", i,
                                       k->stored_len, k->raw_len);
                if (k->offset > x->packs[k->pack].size ||
                    k->stored_len > x->packs[k->pack].size - k->offset)
                        return err_set(err, errlen, -EINVAL,
                                       "chunk %u (offset %llu, length %u) lies outside pack %u of %llu bytes",
                                       i, (unsigned long long) k->offset, k->stored_len, k->pack,
                                       (unsigned long long) x->packs[k->pack].size);
        }
        for (uint64_t i = 0; i < x->n_map; i++) {
                uint32_t m = x->map[i];

                if (m == BLKINDEX_ZERO)
                        continue;
                if (m >= x->n_chunks)
                        return err_set(err, errlen, -EINVAL, "map entry %llu names chunk %u of %u",
                                       (unsigned long long) i, m, x->n_chunks);
                if (x->chunks[m].raw_len != blkindex_chunk_len(x, i))
                        return err_set(err, errlen, -EINVAL,
                                       "map entry %llu needs %u bytes but chunk %u holds %u",
                                       (unsigned long long) i, blkindex_chunk_len(x, i), m,
                                       x->chunks[m].raw_len);
        }
        return 0;
}

static uint64_t body_raw_len(const struct blkindex *x) {
        return (uint64_t) x->n_packs * BLKINDEX_PACK_SIZE + (uint64_t) x->n_chunks * BLKINDEX_CHUNK_SIZE +
               x->n_map * 4;
}

int blkindex_encode(const struct blkindex *x, void **ret_buf, size_t *ret_len) {
        _cleanup_free_ uint8_t *body = NULL;
        _cleanup_free_ uint8_t *out = NULL;
        uint64_t raw = body_raw_len(x);
        size_t bound, n;
        uint8_t *p;
        int r;

        r = blkindex_validate(x, NULL, 0);
        if (r < 0)
                return r;
        if (raw > BLKINDEX_MAX_BODY)
                return -EFBIG;
        body = malloc(MAX(raw, 1));
        if (!body)
                return -ENOMEM;
        p = body;
        for (uint32_t i = 0; i < x->n_packs; i++, p += BLKINDEX_PACK_SIZE) {
                memcpy(p, x->packs[i].digest.b, DIGEST_LEN);
                put_u64(p + 32, x->packs[i].size);
        }
        for (uint32_t i = 0; i < x->n_chunks; i++, p += BLKINDEX_CHUNK_SIZE) {
                const struct blkindex_chunk *k = &x->chunks[i];

                memcpy(p, k->digest.b, DIGEST_LEN);
                put_u64(p + 32, k->offset);
                put_u32(p + 40, k->stored_len);
                put_u32(p + 44, k->raw_len);
                put_u32(p + 48, k->pack);
                p[52] = k->codec;
                p[53] = p[54] = p[55] = 0;
        }
        for (uint64_t i = 0; i < x->n_map; i++, p += 4)
                put_u32(p, x->map[i]);

        bound = ZSTD_compressBound(raw);
        out = malloc(BLKINDEX_HEADER_SIZE + bound);
        if (!out)
                return -ENOMEM;
        n = ZSTD_compress(out + BLKINDEX_HEADER_SIZE, bound, body, raw, 9);
        if (ZSTD_isError(n))
                return -EIO;

        memcpy(out, BLKINDEX_MAGIC, 8);
        put_u32(out + 8, BLKINDEX_VERSION);
        put_u32(out + 12, 0);
        put_u64(out + 16, x->image_size);
        put_u32(out + 24, x->chunk_size);
        put_u32(out + 28, x->n_packs);
        put_u32(out + 32, x->n_chunks);
        put_u32(out + 36, CODEC_ZSTD);
        put_u64(out + 40, n);
        put_u64(out + 48, raw);
        put_u64(out + 56, x->n_map);
        *ret_len = BLKINDEX_HEADER_SIZE + n;
        *ret_buf = TAKE_PTR(out);
        return 0;
}

int blkindex_decode(const void *buf, size_t len, struct blkindex **ret, char *err, size_t errlen) {
        const uint8_t *h = buf;
        struct blkindex *x = NULL;
        _cleanup_free_ uint8_t *body = NULL;
        uint64_t image_size, stored, raw, n_map, expect;
        uint32_t version, flags, chunk_size, n_packs, n_chunks, body_codec;
        const uint8_t *p;
        char why[200];
        size_t n;
        int r;

        if (len < BLKINDEX_HEADER_SIZE)
                return err_set(err, errlen, -EBADMSG, "index is %zu bytes, shorter than its %d-byte header",
                               len, BLKINDEX_HEADER_SIZE);
        if (memcmp(h, BLKINDEX_MAGIC, 8) != 0)
                return err_set(err, errlen, -EBADMSG, "bad index magic");
        version = get_u32(h + 8);
        flags = get_u32(h + 12);
        image_size = get_u64(h + 16);
        chunk_size = get_u32(h + 24);
        n_packs = get_u32(h + 28);
        n_chunks = get_u32(h + 32);
        body_codec = get_u32(h + 36);
        stored = get_u64(h + 40);
        raw = get_u64(h + 48);
        n_map = get_u64(h + 56);

        if (version != BLKINDEX_VERSION)
                return err_set(err, errlen, -EBADMSG, "index version %u is not supported (this build reads %d)",
                               version, BLKINDEX_VERSION);
        if (flags != 0)
                return err_set(err, errlen, -EBADMSG, "unknown index flags 0x%x", flags);
        if (chunk_size < BLKINDEX_MIN_CHUNK || chunk_size > BLKINDEX_MAX_CHUNK ||
            (chunk_size & (chunk_size - 1)))
                return err_set(err, errlen, -EBADMSG, "chunk size %u is not a power of two in [%u, %u]",
                               chunk_size, BLKINDEX_MIN_CHUNK, BLKINDEX_MAX_CHUNK);
        if (image_size > BLKINDEX_MAX_IMAGE)
                return err_set(err, errlen, -EBADMSG, "image size %llu exceeds the limit",
                               (unsigned long long) image_size);
        if (n_map != blkindex_map_len(image_size, chunk_size))
                return err_set(err, errlen, -EBADMSG, "map count %llu does not match the image size",
                               (unsigned long long) n_map);
        if (n_packs > BLKINDEX_MAX_PACKS || n_chunks > BLKINDEX_MAX_CHUNKS)
                return err_set(err, errlen, -EBADMSG, "pack or chunk count out of range (%u, %u)", n_packs,
                               n_chunks);
        if (body_codec != CODEC_ZSTD)
                return err_set(err, errlen, -EBADMSG, "index body codec %u is not zstd", body_codec);
        if (stored != len - BLKINDEX_HEADER_SIZE)
                return err_set(err, errlen, -EBADMSG, "index body is %zu bytes, header says %llu (truncated?)",
                               len - BLKINDEX_HEADER_SIZE, (unsigned long long) stored);
        expect = (uint64_t) n_packs * BLKINDEX_PACK_SIZE + (uint64_t) n_chunks * BLKINDEX_CHUNK_SIZE + n_map * 4;
        if (raw != expect || raw > BLKINDEX_MAX_BODY)
                return err_set(err, errlen, -EBADMSG, "index body length %llu does not match its counts",
                               (unsigned long long) raw);

        body = malloc(MAX(raw, 1));
        if (!body)
                return -ENOMEM;
        n = ZSTD_decompress(body, raw, h + BLKINDEX_HEADER_SIZE, stored);
        if (ZSTD_isError(n) || n != raw)
                return err_set(err, errlen, -EBADMSG, "index body does not decompress to %llu bytes",
                               (unsigned long long) raw);

        r = blkindex_new(image_size, chunk_size, n_packs, n_chunks, &x);
        if (r < 0)
                return r;
        p = body;
        for (uint32_t i = 0; i < n_packs; i++, p += BLKINDEX_PACK_SIZE) {
                memcpy(x->packs[i].digest.b, p, DIGEST_LEN);
                x->packs[i].size = get_u64(p + 32);
        }
        for (uint32_t i = 0; i < n_chunks; i++, p += BLKINDEX_CHUNK_SIZE) {
                struct blkindex_chunk *k = &x->chunks[i];

                memcpy(k->digest.b, p, DIGEST_LEN);
                k->offset = get_u64(p + 32);
                k->stored_len = get_u32(p + 40);
                k->raw_len = get_u32(p + 44);
                k->pack = get_u32(p + 48);
                k->codec = p[52];
                if (p[53] || p[54] || p[55]) {
                        blkindex_free(x);
                        return err_set(err, errlen, -EBADMSG, "chunk %u has nonzero padding", i);
                }
        }
        for (uint64_t i = 0; i < n_map; i++, p += 4)
                x->map[i] = get_u32(p);

        r = blkindex_validate(x, why, sizeof why);
        if (r < 0) {
                blkindex_free(x);
                return err_set(err, errlen, -EBADMSG, "%s", why);
        }
        *ret = x;
        return 0;
}

uint64_t blkindex_stored_bytes(const struct blkindex *x) {
        uint64_t sum = 0;

        for (uint32_t i = 0; i < x->n_chunks; i++)
                sum += x->chunks[i].stored_len;
        return sum;
}
