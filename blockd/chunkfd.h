/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A bounded cache of open chunk-store entries, shared by every export of
 * the process. A cached read is then one pread (or sendfile) on an fd that
 * is already open: no open(), no decompression, no hashing per request.
 *
 * An entry is verified (hashed against its digest) before its fd is first
 * handed out, unless the caller says it verified this very file before: a
 * stamp of its inode, size and ctime (exports remember it per chunk; see
 * export.c), or the fetch that stored it handed it over (chunkfd_adopt). Every use of an open entry compares the stamp with a fresh
 * fstat, so an entry written after it was verified is hashed again before
 * it is served. A damaged entry is dropped from the store and reported as
 * -ESTALE, so the caller fetches it again.
 *
 * Handles are pinned: an fd stays open while any handle to it is held,
 * even if the cache evicts it or the store removes the file meanwhile.
 * Thread-safe: the table is split in shards, each with its own lock; no
 * lock is held during open() or hashing.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chunkstore/digest.h"
#include "chunkstore/store.h"

struct chunkfd_cache;
struct chunkfd;

struct chunkfd_stats {
        uint64_t open;          /* fds held now */
        uint64_t hits;          /* lookups served from the table */
        uint64_t opens;         /* entries opened */
        uint64_t verified;      /* entries hashed */
        uint64_t damaged;       /* entries found damaged and dropped */
        uint64_t evictions;     /* closed: the table was full, or the store evicted the entry */
        uint64_t reverified;    /* open entries hashed again because their file changed */
        uint64_t changed;       /* entries that changed after they were verified, and were dropped */
        uint64_t adopted;       /* entries kept open as this process stored them (chunkfd_adopt) */
};

/* max_fds: bound on cached fds (pinned ones may exceed it briefly).
 * store is borrowed and must outlive the cache. */
int chunkfd_cache_new(struct chunkstore *store, unsigned max_fds, struct chunkfd_cache **ret);
void chunkfd_cache_free(struct chunkfd_cache *c);

/*
 * A pinned handle for entry id, which must hold exactly len bytes.
 * *stamp in: the stamp of the file when the caller last had it verified
 * (0: never; hashing is skipped when the file still has it); out: the
 * verified file's stamp. Returns 0, -ENOENT (not in the store), -ESTALE
 * (it does not match: damaged, or changed since it was verified; dropped
 * from the store, fetch it again) or -errno.
 */
int chunkfd_get(struct chunkfd_cache *c, const struct digest *id, size_t len, uint32_t *stamp, struct chunkfd **ret);
/* An entry this process has just stored from bytes it verified itself
 * (fd: read-only, on the linked file; chunkstore_put_verified_fd): keep it
 * open as verified, with the file's stamp as it is now, so that its first
 * read is neither an open nor a hash. Takes fd (closed when the entry is
 * open already). Counted in `adopted`. */
void chunkfd_adopt(struct chunkfd_cache *c, const struct digest *id, int fd);
/* Only look: a pinned handle if the entry is open already and unchanged
 * since it was verified (one fstat), else -ENOENT, or -ESTALE when it
 * changed (chunkfd_get verifies it again). Never blocks on reading. */
int chunkfd_lookup(struct chunkfd_cache *c, const struct digest *id, struct chunkfd **ret);
/* The store evicted entry id: close it (at the last unpin if pinned), so
 * its blocks are freed. The store's evict hook. */
void chunkfd_forget(struct chunkfd_cache *c, const struct digest *id);
int chunkfd_fd(const struct chunkfd *h);
/* Unpin. NULL is fine. */
void chunkfd_put(struct chunkfd_cache *c, struct chunkfd *h);

void chunkfd_get_stats(struct chunkfd_cache *c, struct chunkfd_stats *ret);

/*
 * The periodic re-verification: damage that leaves a file's stamp alone
 * (a bit flipped on the medium, a write that sets ctime back through the
 * block device) is found by hashing open entries again, round robin,
 * about budget bytes per call; a mismatch is dropped from the table and
 * the store (counted in `changed`; the next read fetches it again).
 * Returns the entries dropped. chunkfd_scrub_start runs it every second
 * with rate as the budget in a thread of its own (0: not at all), until
 * chunkfd_cache_free.
 */
#define CHUNKFD_SCRUB_RATE_DEFAULT (4u << 20)       /* blockd --scrub-rate */
unsigned chunkfd_scrub(struct chunkfd_cache *c, uint64_t budget);
int chunkfd_scrub_start(struct chunkfd_cache *c, uint64_t rate);
