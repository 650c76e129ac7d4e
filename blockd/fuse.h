/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The FUSE frontend: a directory (the mount point) in which every export
 * is a regular file of the export's size, DIR/NAME. For loop mounts
 * (`hocus-blk mount`), and for VMMs that take only a path. Reads go
 * through the export API (lazily, through the same cache and miss path
 * as NBD); the file is writable when the export has an overlay.
 *
 * libfuse3's low-level API over our own pool of worker threads (so a slow
 * fetch blocks one reader, not the others). Exports attached later, by the
 * control socket, appear at once; a detached export's file goes away.
 *
 * Semantics of the files:
 *   getattr   mode 0444 (read-only export) or 0644, the export's size,
 *             the daemon's start time as mtime
 *   open      O_WRONLY/O_RDWR on a read-only export: EROFS. Read-only
 *             exports keep the kernel page cache across opens.
 *   read      short only at the end of the file
 *   write     into the overlay; past the end: ENOSPC (the size is fixed)
 *   fsync     export_flush() (the overlay's durability point)
 *   flush     nothing to do: writes are already in the overlay when they
 *             return, and close() promises no durability (use fsync)
 *   fallocate PUNCH_HOLE|KEEP_SIZE = trim, ZERO_RANGE = write zeroes
 *             (a loop device turns discards into punch holes)
 *   lseek     SEEK_DATA / SEEK_HOLE from the export's allocation status
 *   truncate  to the same size only (EPERM otherwise)
 *
 * Threading: fusefe_kick_export may be called from any thread except a
 * FUSE worker; everything else is internal.
 */
#pragma once

#include <stdbool.h>

#include "blockd/export.h"

struct fusefe;

/* Where the frontend finds exports (the same shape as the NBD server's). */
struct fusefe_exports {
        /* A new reference to the export called name, or NULL. */
        struct export *(*get)(void *userdata, const char *name);
        /* Call fn for every export, in order (readdir). */
        void (*for_each)(void *userdata, void (*fn)(struct export *e, void *ctx), void *ctx);
        void *userdata;
};

struct fusefe_config {
        const char *dir;                /* an existing, empty directory */
        unsigned threads;               /* 0 = 8 */
        /* Called once, from a worker, when the FUSE connection ends while
         * the frontend was not being stopped (unmounted or aborted from
         * outside, device error). May be NULL. */
        void (*on_failure)(void *userdata);
        void *userdata;
};

/* Mount cfg->dir and start serving. err gets a reason on failure. */
int fusefe_start(const struct fusefe_config *cfg, const struct fusefe_exports *x, struct fusefe **ret, char *err,
                 size_t errlen);
/* Stop the workers, unmount (lazily if the file is still in use, e.g. by
 * a loop device: its I/O then fails), free. NULL is fine. */
void fusefe_stop(struct fusefe *f);

/* The export is going away: its name disappears from the directory and
 * files that are not open let go of it; hard: open files too (their I/O
 * then fails with EIO) and their clients are no longer counted. */
void fusefe_kick_export(struct fusefe *f, struct export *e, bool hard);

const char *fusefe_dir(const struct fusefe *f);
