/* SPDX-License-Identifier: Apache-2.0 */
#include "digest.h"

#include <errno.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>

#include "common/cleanup.h"
#include "common/util.h"

static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

/* Fetch the implementation once: implicit fetches per call cost more than
 * hashing a small chunk. */
static void sha256_init(void) {
        sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
        if (!sha256_md)
                abort();
}

static const EVP_MD *md(void) {
        pthread_once(&sha256_once, sha256_init);
        return sha256_md;
}

void digest_compute(const void *buf, size_t len, struct digest *ret) {
        unsigned int n = DIGEST_LEN;

        if (EVP_Digest(buf, len, ret->b, &n, md(), NULL) != 1 || n != DIGEST_LEN)
                abort(); /* cannot fail for SHA-256 short of memory corruption */
}

struct digest_ctx {
        EVP_MD_CTX *ctx;
};

int digest_ctx_new(struct digest_ctx **ret) {
        struct digest_ctx *c = calloc(1, sizeof *c);

        if (!c)
                return -ENOMEM;
        c->ctx = EVP_MD_CTX_new();
        if (!c->ctx || EVP_DigestInit_ex(c->ctx, md(), NULL) != 1) {
                digest_ctx_free(c);
                return -ENOMEM;
        }
        *ret = c;
        return 0;
}

int digest_ctx_update(struct digest_ctx *c, const void *buf, size_t len) {
        return EVP_DigestUpdate(c->ctx, buf, len) == 1 ? 0 : -EIO;
}

int digest_ctx_final(struct digest_ctx *c, struct digest *ret) {
        unsigned int n = DIGEST_LEN;

        if (EVP_DigestFinal_ex(c->ctx, ret->b, &n) != 1 || n != DIGEST_LEN)
                return -EIO;
        return 0;
}

void digest_ctx_free(struct digest_ctx *c) {
        if (!c)
                return;
        EVP_MD_CTX_free(c->ctx);
        free(c);
}

int digest_fd(int fd, struct digest *ret, uint64_t *ret_size) {
        struct digest_ctx *c = NULL;
        _cleanup_free_ char *buf = NULL;
        uint64_t off = 0;
        int r;

        buf = malloc(1 << 20);
        if (!buf)
                return -ENOMEM;
        r = digest_ctx_new(&c);
        if (r < 0)
                return r;
        for (;;) {
                ssize_t n = pread_full(fd, buf, 1 << 20, off);
                if (n < 0) {
                        r = (int) n;
                        goto out;
                }
                if (n == 0)
                        break;
                r = digest_ctx_update(c, buf, (size_t) n);
                if (r < 0)
                        goto out;
                off += (uint64_t) n;
        }
        r = digest_ctx_final(c, ret);
        if (r >= 0 && ret_size)
                *ret_size = off;
out:
        digest_ctx_free(c);
        return r;
}

const char *digest_to_hex(const struct digest *d, char *buf) {
        hex_encode(d->b, DIGEST_LEN, buf);
        return buf;
}

const char *digest_to_string(const struct digest *d, char *buf) {
        memcpy(buf, "sha256:", 7);
        hex_encode(d->b, DIGEST_LEN, buf + 7);
        return buf;
}

int digest_parse_hex(const char *s, struct digest *ret) {
        struct digest d;

        if (strnlen(s, DIGEST_HEX_LEN + 1) != DIGEST_HEX_LEN)
                return -EINVAL;
        /* Canonical form is lowercase (OCI image-spec); reject uppercase so
         * one blob has exactly one name. */
        for (size_t i = 0; i < DIGEST_HEX_LEN; i++)
                if (s[i] >= 'A' && s[i] <= 'F')
                        return -EINVAL;
        if (hex_decode(s, d.b, DIGEST_LEN) < 0)
                return -EINVAL;
        *ret = d;
        return 0;
}

int digest_parse(const char *s, struct digest *ret) {
        const char *colon = strchr(s, ':');

        if (!colon || colon == s)
                return -EINVAL;
        if ((size_t) (colon - s) != 6 || memcmp(s, "sha256", 6) != 0)
                return -EOPNOTSUPP;
        return digest_parse_hex(colon + 1, ret);
}
