/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Image metadata kept locally by digest: the manifests, index blobs and
 * boot profiles that blockd's exports use, so that an export whose
 * metadata is local attaches with the registry unreachable.
 *
 *   DIR/meta/<64 hex>        one file per blob, named by its SHA-256
 *
 * It lives in the chunk store's directory but is no part of the chunk
 * cache: eviction (chunkstore_gc, --cache-max) walks DIR/chunks only, so
 * what an export uses is never evicted. Blobs are small (an index is a
 * few MiB for a 100 GiB image). Writes are atomic (temp, fsync, rename),
 * or, with META_NOSYNC (an attach, which keeps fsyncs off the way to
 * its first byte), atomic but durable only once chunkstore_meta_sync
 * ran: a crash before that may leave the file missing, empty or torn.
 * That is safe because reads are verified: a blob that does not hash to
 * its name is removed and reads as missing (fetched again), never as
 * wrong bytes. Safe for concurrent processes.
 */
#pragma once

#include <stddef.h>

#include "digest.h"
#include "store.h"

enum {
        /* The caller checked that the bytes hash to d (the source that
         * fetched them verified them): not hashed again. */
        META_VERIFIED = 1 << 0,
        /* Atomic, not yet durable: chunkstore_meta_sync makes it so. */
        META_NOSYNC = 1 << 1,
};

/* Store len bytes under d: -EBADMSG if they do not hash to d (unless
 * META_VERIFIED); an existing blob is left alone (0). */
int chunkstore_meta_put(struct chunkstore *cs, const struct digest *d, const void *buf, size_t len, unsigned flags);
/* Make blobs d[0..n) durable (each file's fsync, then the directory's)
 * after META_NOSYNC puts; a missing one is skipped. */
int chunkstore_meta_sync(struct chunkstore *cs, const struct digest *d, size_t n);
/* The blob d, verified (malloc'd, NUL-terminated after len bytes); at
 * most max bytes. -ENOENT if missing or damaged (a damaged one is
 * removed). */
int chunkstore_meta_get(struct chunkstore *cs, const struct digest *d, size_t max, void **ret_buf, size_t *ret_len);
/* 1 if present, 0 if not (not verified). */
int chunkstore_meta_has(struct chunkstore *cs, const struct digest *d);
