/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SHA-256 digests: the identity of chunks and blobs. This is the one place
 * that computes, formats, parses and compares digests ("sha256:<64 hex>").
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define DIGEST_LEN 32
#define DIGEST_HEX_LEN 64
/* "sha256:" + 64 hex + NUL */
#define DIGEST_STRING_MAX 72

struct digest {
        uint8_t b[DIGEST_LEN];
};

/* One-shot SHA-256. Thread-safe. */
void digest_compute(const void *buf, size_t len, struct digest *ret);

/* Streaming SHA-256 for blobs that do not fit in memory. */
struct digest_ctx;
int digest_ctx_new(struct digest_ctx **ret);
int digest_ctx_update(struct digest_ctx *c, const void *buf, size_t len);
int digest_ctx_final(struct digest_ctx *c, struct digest *ret);
void digest_ctx_free(struct digest_ctx *c);

/* SHA-256 of a file descriptor's contents from offset 0 (pread, no seek). */
int digest_fd(int fd, struct digest *ret, uint64_t *ret_size);

static inline bool digest_equal(const struct digest *a, const struct digest *b) {
        return memcmp(a->b, b->b, DIGEST_LEN) == 0;
}

/* "sha256:<hex>" into buf (DIGEST_STRING_MAX bytes). Returns buf. */
const char *digest_to_string(const struct digest *d, char *buf);
/* "<hex>" into buf (DIGEST_HEX_LEN + 1 bytes). Returns buf. */
const char *digest_to_hex(const struct digest *d, char *buf);
/* Parse "sha256:<64 lowercase hex>". 0, -EINVAL (malformed) or
 * -EOPNOTSUPP (another algorithm). */
int digest_parse(const char *s, struct digest *ret);
/* Parse 64 hex digits. */
int digest_parse_hex(const char *s, struct digest *ret);
