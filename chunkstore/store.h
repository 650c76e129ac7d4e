/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The local chunk store: one directory per host, shared by every export and
 * process, keyed by chunk digest. Entries hold uncompressed chunk bytes.
 *
 *   DIR/hocus-blk-cache      marker with the layout version
 *   DIR/chunks/ab/<64 hex>   one file per chunk, named by its SHA-256
 *   DIR/tmp/                 temp files on filesystems without O_TMPFILE
 *
 * An entry becomes visible only after its bytes were verified against its
 * name (written to an unnamed O_TMPFILE, then linked in), so a process
 * killed mid-insert leaves nothing visible. All operations are safe for
 * several processes and threads at once: visibility changes are single
 * link/unlink calls, and an evicted entry stays readable for whoever holds
 * it open. Recency for LRU eviction is the file's mtime, refreshed on hits
 * (at most once a minute per entry).
 *
 * Entries are not fsynced: after a power loss an entry may be damaged, so
 * readers verify an entry before its first use (chunkstore_get always
 * verifies; blockd verifies an entry before its first use and again when
 * its file changed since, see blockd/chunkfd.h) and drop it if it
 * does not match.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "digest.h"

struct chunkstore;

struct chunkstore_stats {
        uint64_t entries;
        uint64_t bytes;         /* sum of entry sizes */
        uint64_t disk_bytes;    /* allocated blocks */
};

/* Open (creating if needed) the store in dir. max_bytes 0 = unbounded; with
 * a bound, puts evict least recently used entries to keep the blocks the
 * entries occupy (st_blocks, not their sizes) under it. */
int chunkstore_open(const char *dir, uint64_t max_bytes, struct chunkstore **ret);
void chunkstore_free(struct chunkstore *cs);
const char *chunkstore_dir(const struct chunkstore *cs);
/* DIR/name (meta, learned), created on first use when create is set.
 * Returns an O_DIRECTORY fd or -errno (-ENOENT: not there, create unset). */
int chunkstore_subdir(const struct chunkstore *cs, const char *name, bool create);

/*
 * Called for each entry an eviction pass removes, from the thread that
 * evicts, without store locks held. An unlinked entry keeps its blocks
 * while anyone holds it open, so whoever caches open entries closes them
 * here (blockd's fd cache), or the bound holds only on paper. fn must not
 * call back into the store's eviction.
 */
void chunkstore_set_evict_hook(struct chunkstore *cs, void (*fn)(const struct digest *id, void *u), void *u);

/*
 * The filesystem under the store is full. A put that meets ENOSPC or
 * EDQUOT returns -ENOSPC and puts the store in this state; while in it,
 * puts do not write (they return -ENOSPC at once) until the filesystem has
 * room again: at least `need` bytes more free than when it filled (looked
 * at once a second at most), or a put succeeded. chunkstore_room() says
 * whether there is room now (and leaves the state when there is).
 */
bool chunkstore_full(struct chunkstore *cs);
bool chunkstore_room(struct chunkstore *cs, uint64_t need);

/* 1 if present, 0 if not, -errno. Does not verify or touch recency. */
int chunkstore_has(struct chunkstore *cs, const struct digest *id);

/*
 * Read a whole entry into buf (exactly len bytes) and verify it. A missing
 * entry gives -ENOENT; an entry of the wrong size or content is removed and
 * also gives -ENOENT, so callers simply fetch again. Never returns
 * unverified bytes.
 */
int chunkstore_get(struct chunkstore *cs, const struct digest *id, void *buf, size_t len);

/*
 * Open an entry for repeated partial reads (blockd's hot path). Returns an
 * fd (caller closes) or -ENOENT. The caller must verify the entry before
 * first use (chunkstore_verify_fd) and on mismatch call chunkstore_drop().
 */
int chunkstore_open_entry(struct chunkstore *cs, const struct digest *id, uint64_t *ret_size);
/* Hash an open entry and compare. 0, -EBADMSG on mismatch, -errno. */
int chunkstore_verify_fd(int fd, const struct digest *id, size_t len);
/* Remove an entry (e.g. found corrupt). 0 or -errno; missing is 0. */
int chunkstore_drop(struct chunkstore *cs, const struct digest *id);

/*
 * Insert a chunk. The bytes are hashed and must match id (-EBADMSG if not).
 * Inserting an existing entry is a no-op returning 0.
 */
int chunkstore_put(struct chunkstore *cs, const struct digest *id, const void *buf, size_t len);
/* Same, for bytes whose digest the caller has just computed itself. */
int chunkstore_put_verified(struct chunkstore *cs, const struct digest *id, const void *buf, size_t len);
/* Same, and when this call linked the entry, *ret_fd gets a read-only fd
 * on it (the caller closes it; its bytes are the ones just verified, so
 * a reader may use it without hashing it again), else -EBADF. */
int chunkstore_put_verified_fd(struct chunkstore *cs, const struct digest *id, const void *buf, size_t len,
                               int *ret_fd);

/* The bound given to chunkstore_open (0: none) and the bytes (allocated
 * blocks) this process believes the store holds: kept only with a bound,
 * counted by this process's inserts and reset by each eviction pass
 * (another process's inserts show up at the next one). Cheap: no I/O. */
void chunkstore_usage(struct chunkstore *cs, uint64_t *ret_used, uint64_t *ret_max);

/* Walk the store. */
int chunkstore_stats(struct chunkstore *cs, struct chunkstore_stats *ret);

/*
 * Hash every entry; remove the ones whose content does not match their
 * name, calling bad(name, reason, userdata) for each (name: the entry's file
 * name, its 64 hex digits). Returns the number of bad entries found, or -errno;
 * ret_checked (may be NULL) gets what was checked.
 */
int chunkstore_verify_all(struct chunkstore *cs, void (*bad)(const char *name, const char *reason, void *u),
                          void *userdata, struct chunkstore_stats *ret_checked);

/*
 * Evict least recently used entries until their allocated blocks are at
 * most max_bytes, and remove stale temp files. Entries open elsewhere stay
 * readable by their holders. Returns 0 or -errno; fills ret_removed.
 */
int chunkstore_gc(struct chunkstore *cs, uint64_t max_bytes, struct chunkstore_stats *ret_removed);
