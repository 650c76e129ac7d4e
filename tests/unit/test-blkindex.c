/* SPDX-License-Identifier: Apache-2.0 */
/* The index encoder and the hardened decoder: round trips, and malformed
 * blobs (truncated, bit-flipped, fields pointing outside) all rejected
 * with a reason, never read out of bounds (run under ASan). */
#undef NDEBUG
#include <assert.h>
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "chunkstore/blkindex.h"
#include "chunkstore/codec.h"

static struct blkindex *sample(void) {
        struct blkindex *x;
        /* 10 chunks of 64 KiB and a 1000-byte tail, 2 packs, 4 unique chunks */
        uint64_t size = 10 * 65536 + 1000;

        assert(blkindex_new(size, 65536, 2, 4, &x) == 0);
        assert(x->n_map == 11);
        x->packs[0].size = 100000;
        x->packs[1].size = 5000;
        memset(x->packs[0].digest.b, 0xaa, 32);
        memset(x->packs[1].digest.b, 0xbb, 32);
        for (uint32_t i = 0; i < 4; i++) {
                memset(x->chunks[i].digest.b, (int) i + 1, 32);
                x->chunks[i].raw_len = 65536;
                x->chunks[i].codec = CODEC_ZSTD;
                x->chunks[i].stored_len = 20000;
                x->chunks[i].offset = 20000 * i;
                x->chunks[i].pack = 0;
        }
        x->chunks[3].raw_len = 1000;
        x->chunks[3].stored_len = 1000;
        x->chunks[3].codec = CODEC_RAW;
        x->chunks[3].pack = 1;
        x->chunks[3].offset = 4000;
        x->map[0] = 0;
        x->map[1] = 1;
        x->map[2] = BLKINDEX_ZERO;
        x->map[3] = 0; /* duplicate */
        x->map[4] = 2;
        x->map[10] = 3; /* tail */
        return x;
}

static void check_equal(const struct blkindex *a, const struct blkindex *b) {
        assert(a->image_size == b->image_size && a->chunk_size == b->chunk_size);
        assert(a->n_packs == b->n_packs && a->n_chunks == b->n_chunks && a->n_map == b->n_map);
        assert(!memcmp(a->packs, b->packs, a->n_packs * sizeof *a->packs));
        for (uint32_t i = 0; i < a->n_chunks; i++) {
                assert(digest_equal(&a->chunks[i].digest, &b->chunks[i].digest));
                assert(a->chunks[i].offset == b->chunks[i].offset);
                assert(a->chunks[i].stored_len == b->chunks[i].stored_len);
                assert(a->chunks[i].raw_len == b->chunks[i].raw_len);
                assert(a->chunks[i].pack == b->chunks[i].pack);
                assert(a->chunks[i].codec == b->chunks[i].codec);
        }
        assert(!memcmp(a->map, b->map, a->n_map * sizeof *a->map));
}

/* Decompress a blob's body, let patch() change it, recompress: crafts
 * blobs the encoder would refuse to write. */
static void *reencode(const void *blob, size_t len, void (*patch)(uint8_t *body, size_t n), size_t *ret_len) {
        const uint8_t *h = blob;
        uint64_t raw;
        uint8_t *body, *out;
        size_t n;

        memcpy(&raw, h + 48, 8);
        raw = le64toh(raw);
        body = malloc(raw);
        assert(ZSTD_decompress(body, raw, h + 64, len - 64) == raw);
        patch(body, raw);
        out = malloc(64 + ZSTD_compressBound(raw));
        memcpy(out, h, 64);
        n = ZSTD_compress(out + 64, ZSTD_compressBound(raw), body, raw, 1);
        assert(!ZSTD_isError(n));
        uint64_t le = htole64(n);
        memcpy(out + 40, &le, 8);
        free(body);
        *ret_len = 64 + n;
        return out;
}

/* Body layout: 2 packs x 40, 4 chunks x 56, 11 map entries x 4. */
#define CHUNK_AT(i) (2 * 40 + (i) * 56)
#define MAP_AT(i) (2 * 40 + 4 * 56 + (i) * 4)

static void put32(uint8_t *p, uint32_t v) {
        v = htole32(v);
        memcpy(p, &v, 4);
}
static void put64(uint8_t *p, uint64_t v) {
        v = htole64(v);
        memcpy(p, &v, 8);
}

static void p_offset_outside(uint8_t *b, size_t n) {
        put64(b + CHUNK_AT(1) + 32, 99999); /* + 20000 > pack size 100000 */
}
static void p_offset_overflow(uint8_t *b, size_t n) {
        put64(b + CHUNK_AT(1) + 32, UINT64_MAX - 10);
}
static void p_bad_pack(uint8_t *b, size_t n) {
        put32(b + CHUNK_AT(2) + 48, 2);
}
static void p_bad_codec(uint8_t *b, size_t n) {
        b[CHUNK_AT(0) + 52] = 7;
}
static void p_padding(uint8_t *b, size_t n) {
        b[CHUNK_AT(0) + 55] = 1;
}
static void p_map_range(uint8_t *b, size_t n) {
        put32(b + MAP_AT(5), 4);
}
static void p_tail_len(uint8_t *b, size_t n) {
        put32(b + MAP_AT(10), 0); /* a full chunk at the short tail */
}
static void p_raw_len_big(uint8_t *b, size_t n) {
        put32(b + CHUNK_AT(0) + 44, 65537);
}
static void p_raw_stored_mismatch(uint8_t *b, size_t n) {
        put32(b + CHUNK_AT(3) + 40, 999);
}
static void p_stored_zero(uint8_t *b, size_t n) {
        put32(b + CHUNK_AT(0) + 40, 0);
}

static void expect_reject(const void *blob, size_t len, const char *what, const char *want) {
        struct blkindex *y = NULL;
        char err[256] = "";
        int r = blkindex_decode(blob, len, &y, err, sizeof err);

        if (r != -EBADMSG || !strstr(err, want)) {
                fprintf(stderr, "%s: r=%d err='%s' (wanted '%s')\n", what, r, err, want);
                abort();
        }
        assert(y == NULL);
}

static void test_patched(const void *blob, size_t len) {
        static const struct {
                void (*fn)(uint8_t *, size_t);
                const char *want;
        } cases[] = {
                { p_offset_outside, "outside pack" },
                { p_offset_overflow, "outside pack" },
                { p_bad_pack, "names pack 2" },
                { p_bad_codec, "unknown codec" },
                { p_padding, "padding" },
                { p_map_range, "names chunk 4" },
                { p_tail_len, "needs 1000 bytes" },
                { p_raw_len_big, "raw length" },
                { p_raw_stored_mismatch, "raw chunk 3" },
                { p_stored_zero, "stored length 0" },
        };
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                size_t n;
                void *b = reencode(blob, len, cases[i].fn, &n);
                expect_reject(b, n, "patched", cases[i].want);
                free(b);
        }
}

static void test_header(const void *blob, size_t len) {
        uint8_t *b = malloc(len);

        /* Every truncation is rejected. */
        for (size_t l = 0; l < len; l++) {
                struct blkindex *y = NULL;
                char err[256];
                assert(blkindex_decode(blob, l, &y, err, sizeof err) == -EBADMSG);
        }
        /* Header fields. */
        memcpy(b, blob, len);
        b[0] = 'X';
        expect_reject(b, len, "magic", "magic");
        memcpy(b, blob, len);
        put32(b + 8, 2);
        expect_reject(b, len, "version", "version 2");
        memcpy(b, blob, len);
        put32(b + 24, 65535);
        expect_reject(b, len, "chunk size", "power of two");
        memcpy(b, blob, len);
        put64(b + 16, 1ULL << 60);
        expect_reject(b, len, "image size", "image size");
        memcpy(b, blob, len);
        put64(b + 56, 12);
        expect_reject(b, len, "map count", "map count");
        memcpy(b, blob, len);
        put32(b + 32, 5);
        expect_reject(b, len, "counts", "does not match its counts");
        memcpy(b, blob, len);
        put64(b + 48, 1ULL << 40);
        expect_reject(b, len, "body len", "does not match its counts");
        memcpy(b, blob, len);
        b[len - 3] ^= 0xff;
        {
                struct blkindex *y = NULL;
                assert(blkindex_decode(b, len, &y, NULL, 0) == -EBADMSG || (blkindex_free(y), 1));
        }
        free(b);
}

/* Random mutations: any result is fine except a crash or an accepted index
 * that fails validation. */
static void test_mutations(const void *blob, size_t len) {
        uint8_t *b = malloc(len);
        unsigned seed = 12345;

        for (int iter = 0; iter < 20000; iter++) {
                struct blkindex *y = NULL;
                int flips = 1 + (int) (rand_r(&seed) % 4);

                memcpy(b, blob, len);
                for (int f = 0; f < flips; f++)
                        b[rand_r(&seed) % len] ^= (uint8_t) (1u << (rand_r(&seed) % 8));
                if (blkindex_decode(b, len, &y, NULL, 0) == 0) {
                        assert(blkindex_validate(y, NULL, 0) == 0);
                        blkindex_free(y);
                }
        }
        free(b);
}

static void test_empty(void) {
        struct blkindex *x, *y;
        void *blob;
        size_t len;

        assert(blkindex_new(0, 262144, 0, 0, &x) == 0);
        assert(x->n_map == 0);
        assert(blkindex_encode(x, &blob, &len) == 0);
        assert(blkindex_decode(blob, len, &y, NULL, 0) == 0);
        check_equal(x, y);
        blkindex_free(x);
        blkindex_free(y);
        free(blob);
}

int main(void) {
        struct blkindex *x = sample(), *y = NULL;
        char err[256];
        void *blob;
        size_t len;

        assert(blkindex_validate(x, err, sizeof err) == 0);
        assert(blkindex_encode(x, &blob, &len) == 0);
        assert(blkindex_decode(blob, len, &y, err, sizeof err) == 0);
        check_equal(x, y);
        assert(blkindex_stored_bytes(y) == 3 * 20000 + 1000);
        blkindex_free(y);

        /* The encoder refuses invalid indexes. */
        x->map[5] = 9;
        assert(blkindex_encode(x, &(void *){ NULL }, &(size_t){ 0 }) == -EINVAL);
        x->map[5] = BLKINDEX_ZERO;

        test_header(blob, len);
        test_patched(blob, len);
        test_mutations(blob, len);
        test_empty();
        blkindex_free(x);
        free(blob);
        printf("ok\n");
        return 0;
}
