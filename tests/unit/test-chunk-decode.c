/* SPDX-License-Identifier: Apache-2.0 */
/*
 * chunk_decode / chunk_verify (chunkstore/chunk-decode.h): stored bytes
 * back to a chunk, verified against the index's digest; every way the
 * stored bytes or the entry describing them can be wrong is -EBADMSG.
 */
#undef NDEBUG
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chunkstore/chunk-decode.h"
#include "chunkstore/codec.h"

#define LEN (64u << 10)

static uint8_t raw[LEN], stored[LEN * 2], out[LEN];

/* An index entry for raw, stored with codec c into stored[]. */
static struct blkindex_chunk entry(enum codec c) {
        struct blkindex_chunk e = { .codec = (uint8_t) c, .raw_len = LEN };
        ssize_t n = codec_compress(c, 3, raw, LEN, stored, sizeof stored);

        assert(n > 0);
        e.stored_len = (uint32_t) n;
        digest_compute(raw, LEN, &e.digest);
        return e;
}

static void test_codec(enum codec c) {
        struct blkindex_chunk e = entry(c), w;

        memset(out, 0xee, LEN);
        assert(chunk_decode(&e, stored, out) == 0);
        assert(!memcmp(out, raw, LEN));
        assert(chunk_verify(&e, stored, out) == 0);

        /* A flipped stored byte: a codec error or a digest mismatch, never 0. */
        stored[e.stored_len / 2] ^= 0x40;
        assert(chunk_decode(&e, stored, out) == -EBADMSG);
        assert(chunk_verify(&e, stored, out) == -EBADMSG);
        stored[e.stored_len / 2] ^= 0x40;
        assert(chunk_decode(&e, stored, out) == 0);

        /* The entry lies about the digest. */
        w = e;
        w.digest.b[0] ^= 1;
        assert(chunk_decode(&w, stored, out) == -EBADMSG);
        assert(chunk_verify(&w, stored, out) == -EBADMSG);
        /* ... about the raw length (shorter or longer than the bytes decode to). */
        w = e;
        w.raw_len = LEN - 1;
        assert(chunk_decode(&w, stored, out) == -EBADMSG);
        w = e;
        w.raw_len = LEN / 2;
        assert(chunk_verify(&w, stored, out) == -EBADMSG);
        /* ... about the stored length (truncated input). */
        w = e;
        w.stored_len = e.stored_len - 8;
        assert(chunk_decode(&w, stored, out) == -EBADMSG);
        /* ... about the codec. */
        w = e;
        w.codec = c == CODEC_RAW ? CODEC_ZSTD : CODEC_RAW;
        assert(chunk_decode(&w, stored, out) == -EBADMSG);
        w.codec = 9;
        assert(chunk_decode(&w, stored, out) == -EBADMSG);
}

/* A raw chunk decodes in place (stored == buf). */
static void test_raw_in_place(void) {
        struct blkindex_chunk e = entry(CODEC_RAW);

        memcpy(out, stored, LEN);
        assert(chunk_decode(&e, out, out) == 0);
        out[7] ^= 1;
        assert(chunk_decode(&e, out, out) == -EBADMSG);
}

int main(void) {
        for (size_t i = 0; i < LEN; i++)
                raw[i] = (uint8_t) ((i / 7) ^ (i % 13));
        for (int c = 0; c < _CODEC_MAX; c++)
                test_codec(c);
        test_raw_in_place();
        printf("ok\n");
        return 0;
}
