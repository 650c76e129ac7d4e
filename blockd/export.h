/* SPDX-License-Identifier: Apache-2.0 */
/*
 * An export: an image (manifest + index, chunks through the local store)
 * with an optional writable overlay, as a range of bytes. This is the API
 * every frontend (NBD and FUSE; ublk would be the next) is written
 * against; they include this header and nothing below it.
 *
 * Reading. Either export_pread() (copy into a buffer) or, for frontends
 * that can send from a file descriptor or describe holes, the segment
 * iterator: export_read_start() checks the range once, export_read_next()
 * resolves the next piece of it into segments (zeroes, a range of an open
 * file, or memory), export_read_done() releases them. A cached chunk is an
 * fd segment on its chunk-store entry (opened and verified once per process,
 * kept in the shared chunkfd cache): serving it is one pread or sendfile,
 * no decompression, no hashing. A chunk the store lacks is fetched at
 * demand priority through the fetch scheduler (sched.h), together with
 * the rest of the read's missing chunks, and comes back as a memory
 * segment.
 *
 * Writing (exports with an overlay; read-only ones return -EROFS):
 * export_pwrite/zero/trim/flush, see overlay.h for durability.
 *
 * Threading: all functions may be called concurrently from any thread on
 * the same export. An export is reference counted; the daemon's registry
 * holds one reference, each client (connection) another. The last
 * export_unref() flushes the overlay and frees everything.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "blockd/chunkfd.h"
#include "blockd/ctlproto/counters.h"
#include "chunkstore/digest.h"
#include "chunkstore/store.h"
#include "registry-client/source.h"

struct export;

struct sched;

/* What exports share: borrowed, must outlive every export. */
struct export_env {
        struct chunkstore *store;
        struct chunkfd_cache *fds;
        const struct source_options *source;
        /* The fetch scheduler all exports share (sched.h); NULL: the
         * export makes its own, with the defaults. */
        struct sched *sched;
        /* How long an attach learns its first reads (profile-learn.h,
         * --learn-window); 0: it learns nothing. */
        uint64_t learn_window_ns;
};

struct export_config {
        const char *name;
        const char *ref;                /* oci:DIR[:TAG] or docker://... */
        const char *overlay;            /* NULL: read-only */
        /* Boot profile to prefetch at attach (profile-find.h): NULL or
         * "auto" = the published one, "none", or a file. */
        const char *profile;
        /* "sha256:..." to open this manifest rather than what ref names
         * now (restored exports stay on the manifest they attached);
         * NULL: resolve ref. Read from the chunk store's metadata when it
         * is there (chunkstore/meta.h), so the registry may be down. */
        const char *manifest;
        /* The vhost-user-blk socket to serve it on (vhost/server.h);
         * NULL: DIR/NAME.sock under --vhost-user-blk, or none. */
        const char *vhost_user;
};

/* Names: 1-128 characters of [A-Za-z0-9._+-], not starting with '.' or '-'. */
bool export_name_valid(const char *name);

/* Open the image (and the overlay). err gets a reason on failure. */
int export_open(const struct export_config *cfg, const struct export_env *env, struct export **ret, char *err,
                size_t errlen);
struct export *export_ref(struct export *e);
void export_unref(struct export *e);
/* References held now (for detach, which waits to hold the last one). */
unsigned export_refcount(const struct export *e);

const char *export_name(const struct export *e);
const char *export_ref_text(const struct export *e);
const char *export_overlay_path(const struct export *e);   /* NULL if none */
const char *export_vhost_user(const struct export *e);     /* NULL if none */
uint64_t export_size(const struct export *e);
bool export_readonly(const struct export *e);
uint32_t export_chunk_size(const struct export *e);
const struct digest *export_manifest_digest(const struct export *e);
/* Whether the image's registry answered last time (always for oci:);
 * why gets the reason when not. */
bool export_online(struct export *e, char *why, size_t len);

/* Clients (frontend connections) using the export, for ls and detach. */
void export_client_add(struct export *e);
void export_client_remove(struct export *e);
unsigned export_clients(const struct export *e);

/* --- Reading --- */

enum export_seg_kind {
        EXPORT_SEG_ZERO,        /* len bytes of zeroes */
        EXPORT_SEG_FD,          /* len bytes of fd at fd_off */
        EXPORT_SEG_MEM,         /* len bytes at mem */
};

struct export_seg {
        enum export_seg_kind kind;
        uint64_t len;
        int fd;
        uint64_t fd_off;
        const void *mem;
        /* private */
        struct chunkfd *pin;
        void *owned;
};

struct export_read {
        struct export *e;
        uint64_t off, end;
        uint64_t err_off;       /* after an error: the offset that failed */
        unsigned flags;         /* EXPORT_READ_* */
        /* private: chunks this read asked the scheduler for along with a
         * miss (bit b: logical chunk hint_base + b); found in the store
         * later they are not hits. */
        uint64_t hint_base, hint_mask;
};

/* export_read_next may not block: a chunk whose entry is not open already
 * gives -EWOULDBLOCK, and the iterator stays where it was, so the caller
 * can clear the flag (typically in another thread) and call again. */
#define EXPORT_READ_NOWAIT (1u << 0)

/* Begin reading [off, off+len): -EINVAL if it is not inside the export. */
int export_read_start(struct export *e, uint64_t off, uint64_t len, struct export_read *rd);
/* Resolve up to max segments from where the last call stopped. Returns
 * the number of segments (0 when the range is done) or -errno, with
 * rd->err_off set; segments of a failed call are already released. */
int export_read_next(struct export_read *rd, struct export_seg *segs, unsigned max);
/* Release segments returned by export_read_next. */
void export_read_done(struct export_read *rd, struct export_seg *segs, unsigned n);
/* Copy one segment's bytes (or part of it, from skip) into buf. */
int export_seg_copy(const struct export_seg *s, void *buf, uint64_t skip, uint64_t len);
/* The same, but only from the page cache: -EWOULDBLOCK if any byte would
 * have to come from the disk (preadv2 RWF_NOWAIT). */
int export_seg_copy_nowait(const struct export_seg *s, void *buf, uint64_t skip, uint64_t len);

/* Read into buf: the simple interface. 0 or -errno. */
int export_pread(struct export *e, void *buf, size_t len, uint64_t off);

/* Make sure [off, off+len) is in the local store (fetching misses now),
 * without reading it out (NBD_CMD_CACHE). 0 or -errno. */
int export_cache(struct export *e, uint64_t off, uint64_t len);

/* --- Writing --- */

#define EXPORT_FUA (1u << 0)            /* durable before returning */
#define EXPORT_NO_HOLE (1u << 1)        /* zero: keep space allocated */
#define EXPORT_FAST (1u << 2)           /* zero: -ENOTSUP unless cheap */

int export_pwrite(struct export *e, const void *buf, size_t len, uint64_t off, unsigned flags);
int export_zero(struct export *e, uint64_t off, uint64_t len, unsigned flags);
int export_trim(struct export *e, uint64_t off, uint64_t len, unsigned flags);
/* Every write completed before the call is durable when it returns. */
int export_flush(struct export *e);

/* --- Allocation status (NBD base:allocation semantics) --- */

#define EXPORT_STATE_HOLE (1u << 0)     /* not stored anywhere */
#define EXPORT_STATE_ZERO (1u << 1)     /* reads as zeroes */

struct export_extent {
        uint64_t len;
        uint32_t flags;
};

/* Describe [off, off+len) in at most max extents (merged, clamped to the
 * range; fewer than the whole range when max runs out). Returns the
 * number of extents, or -errno (-EINVAL outside the export). */
int export_extents(struct export *e, uint64_t off, uint64_t len, struct export_extent *out, unsigned max);

/* --- Statistics --- */

/* struct export_stats is declared, with how each counter is shown, in
 * blockd/ctlproto/counters.h (EXPORT_COUNTERS). */

void export_get_stats(struct export *e, struct export_stats *ret);

/* --- Boot profiles: recording first reads, prefetching in profile order --- */

struct profile;

/* Record from now on which chunks are read first, and when (a restart
 * forgets what was recorded). 0 or -errno. */
int export_record_start(struct export *e);
/* What was recorded so far as a profile (caller frees with profile_free);
 * stop: turn recording off. -ENODATA if recording never started. */
int export_record_get(struct export *e, bool stop, struct profile **ret);
/* Learn this attach's first reads for the env's learn_window_ns from now
 * (profile-learn.h; a recorder of its own, beside the one export_record_*
 * drive; none when the window is 0); what was learned is kept when the
 * export is freed, if the attach fetched anything. Once per export. 0 or
 * -errno. */
int export_learn_start(struct export *e);

/*
 * Fetch logical chunks into the local store in the given order (the
 * profile class of the fetch scheduler: after demand reads, before the
 * background stream; adjacent chunks in one range request); returns at
 * once. Chunks that are zero or already stored cost nothing. A new call
 * replaces the list given before; detach and free cancel it. learned:
 * the list is the profile learned on this host (a counter says so).
 * 0 or -errno.
 */
int export_prefetch(struct export *e, const uint64_t *chunks, size_t n, bool learned);
/* The boot profile is being looked for (running), or the lookup ended:
 * the stats show it ("profile_lookup", and how long it took after the
 * attach, "profile_lookup_s"). Reads are served meanwhile. */
void export_profile_lookup(struct export *e, bool running);
bool export_profile_lookup_running(struct export *e);
/* Forget the prefetch list (requests in flight complete). */
void export_prefetch_cancel(struct export *e);
/* Start the background stream (blockd --background): every chunk not
 * local yet, in logical order, after demand and profile fetches. Called
 * once the boot profile (if any) was given to export_prefetch, so that
 * the profile goes first; until then the export fetches only on demand. */
void export_background_start(struct export *e);
/* Where the image comes from (borrowed, valid while e is). For code that
 * looks up what belongs to the image, such as its published profile; not
 * for frontends. */
struct blob_source *export_source(struct export *e);
/* The chunk store (borrowed), whose metadata keeps what belongs to the image. */
struct chunkstore *export_chunkstore(struct export *e);
/* Make the manifest and index the attach kept locally durable (it wrote
 * them without fsync, off the way to the first byte); after the attach,
 * from the thread that looks the profile up. */
void export_meta_sync(struct export *e);
const struct image_manifest *export_image_manifest(const struct export *e);
uint64_t export_manifest_size(const struct export *e);
