/* SPDX-License-Identifier: Apache-2.0 */
#include "chunk-decode.h"

#include <errno.h>
#include <string.h>

#include "codec.h"

/* Whether raw hashes to the chunk's digest. */
static int check_digest(const struct blkindex_chunk *c, const void *raw) {
        struct digest got;

        digest_compute(raw, c->raw_len, &got);
        return digest_equal(&got, &c->digest) ? 0 : -EBADMSG;
}

int chunk_decode(const struct blkindex_chunk *c, const void *stored, void *buf) {
        int r;

        if (c->codec == CODEC_RAW && stored == buf)
                return c->stored_len == c->raw_len ? check_digest(c, buf) : -EBADMSG;
        r = codec_decompress(c->codec, stored, c->stored_len, buf, c->raw_len);
        if (r < 0)
                return r;
        return check_digest(c, buf);
}

int chunk_verify(const struct blkindex_chunk *c, const void *stored, void *scratch) {
        if (c->codec == CODEC_RAW)
                return c->stored_len == c->raw_len ? check_digest(c, stored) : -EBADMSG;
        return chunk_decode(c, stored, scratch);
}
