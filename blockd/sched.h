/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The fetch scheduler: every chunk blockd fetches goes through one of
 * these, shared by all exports of the daemon. Three classes:
 *
 *   demand      a reader waits for the chunk (export_read_next, pread,
 *               CACHE, overlay completion of partial blocks);
 *   profile     the image's boot profile, in recorded order
 *               (export_prefetch, fed at attach right after the index);
 *   background  every other chunk in logical order, until the export is
 *               fully hydrated (--background off|on|RATE).
 *
 * Demand never waits behind the others (sched-policy.h). Adjacent chunks
 * of one pack are fetched with one range request (chunkstore/
 * coalesce.h), as many requests in flight as the link's bandwidth-delay
 * product asks for (sched-bdp.h), asynchronously through each export's
 * range fetcher (registry-client/fetch.h): no thread blocks on the
 * network but a reader waiting for its own chunk.
 *
 * Chunks are keyed by digest across exports: one fetch per digest however
 * many readers of however many exports wait for it, and a chunk fetched
 * for one export is a store hit for every other. Fetched ranges are
 * decoded, verified and stored (bulk_chunk_store) by decoder threads before
 * anything sees them: a chunk that does not match its digest is fetched
 * again (3 attempts) and never served. Verified chunks go into the local
 * store, and straight to the readers that waited (so a tiny --cache-max
 * that evicts the entry at once still serves them).
 *
 * Faults: requests have a deadline (the fetch timeout); a failed request
 * is retried with backoff for as long as a reader waits; a reader waits
 * at most the fetch timeout and then gets -EIO. Background passes back
 * off (1 s doubling to 16 s) while the source fails and resume by
 * themselves. A cached range is never fetched and never takes the
 * scheduler's lock; its reader only notes it (sched_note_hit,
 * sched_export_note_read: atomic bits and a timestamp).
 *
 * Threads: one dispatcher (starts requests, walks the profile and
 * background cursors), a few decoders, and the fetchers' backend threads
 * (completion callbacks only queue work). One mutex guards the state;
 * nothing blocks while holding it but short store checks of the cursors
 * (done without it). Every function may be called from any thread.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "blockd/sched-policy.h"
#include "blockd/write-behind.h"
#include "chunkstore/coalesce.h"
#include "chunkstore/store.h"
#include "registry-client/image.h"

struct sched;
struct sched_export;

#define SCHED_FETCH_TIMEOUT_DEFAULT_NS (30 * 1000000000ull)

struct sched_options {
        bool background;                /* stream every chunk in the background */
        uint64_t background_rate;       /* bytes/s cap for background, 0 = none */
        uint64_t fetch_timeout_ns;      /* 0 = SCHED_FETCH_TIMEOUT_DEFAULT_NS */
        uint64_t range_max;             /* largest range request, 0 = 4 MiB */
        uint64_t profile_batch;         /* profile reordered in batches of this many stored
                                         * bytes (see sched_profile_batch), 0 = 2 x range_max */
        unsigned min_window, max_window; /* requests in flight (profile + background); 0 = 2, 64 */
        unsigned decoders;              /* 0 = number of CPUs, 2..4 */
        uint64_t write_behind;          /* bytes of verified chunks whose store insert may wait
                                         * for an idle CPU (write-behind.h); 0 = inserted inline */
        const char *fetch_log;          /* append one line per request here; NULL = none */
};

/* The store is borrowed and must outlive the scheduler. */
int sched_new(struct chunkstore *store, const struct sched_options *o, struct sched **ret);
/* Every export must have been removed. Chunks whose store insert was
 * written behind are in the store when it returns. NULL is fine. */
void sched_free(struct sched *s);
/* Store every chunk written behind so far (write_behind_flush). */
void sched_flush(struct sched *s);
/* Keep every chunk the decoders store open in fds, as verified
 * (chunkfd_adopt): a read of a chunk fetched a moment ago is then neither
 * an open nor a second hash. fds is borrowed; set before exports. */
struct chunkfd_cache;
void sched_set_fd_cache(struct sched *s, struct chunkfd_cache *fds);

/*
 * Register an image to fetch for. name is copied (for logs and the fetch
 * log); img and src are borrowed and must stay until sched_export_remove.
 * max_inflight: requests the source serves at once (a registry's
 * connections per host), 0 = 16 for asynchronous sources, 8 for others;
 * two of them are kept for demand. po: the pack order of img's index,
 * borrowed like img (NULL: the export builds its own). The background
 * stream (when on) starts with sched_background_start.
 */
int sched_export_add(struct sched *s, const char *name, struct image *img, struct blob_source *src,
                     unsigned max_inflight, const struct coalesce_order *po, struct sched_export **ret);
/* Let the background stream of se begin (it waits for this, so that a
 * boot profile given first goes first). Idempotent. */
void sched_background_start(struct sched_export *se);
/* A client read se (hit or miss). Until the background stream has begun
 * it waits for a quiet moment in the reads: a start that finds its chunks
 * prefetched keeps the CPU the stream would take (decompressing, hashing,
 * storing). Cheap: a coarse clock read and a store, and nothing at all
 * once the stream has begun. */
void sched_export_note_read(struct sched_export *se);
/* Cancel what is queued or in flight for it, wait for its requests to
 * end, store what was written behind (sched_flush), free. Readers of other exports that waited for one of its
 * fetches fetch again through their own export. NULL is fine. */
void sched_export_remove(struct sched_export *se);

/* Verified bytes of one chunk, shared by the readers that waited for it. */
struct sched_buf;
const void *sched_buf_data(const struct sched_buf *b);
size_t sched_buf_len(const struct sched_buf *b);
struct sched_buf *sched_buf_ref(struct sched_buf *b);
void sched_buf_put(struct sched_buf *b);

/* Chunks a demand miss fetches beyond its read (readahead.h decides). */
#define SCHED_AHEAD_MAX 64
struct sched_ahead {
        const uint64_t *chunks;         /* logical chunks, any order, at most SCHED_AHEAD_MAX */
        unsigned n;
        uint64_t fetched;               /* out: bit b, chunks[b] was fetched (not zero, not
                                         * local, not one of the read's) */
};

/*
 * A reader needs logical chunk i (not zero, and not in the store: the
 * caller just looked) and waits for it. The missing ones among the next
 * n_after logical chunks (the rest of the read; at most 64 are looked at)
 * and among ahead's (may be NULL) are fetched at demand priority too, in
 * the same range requests where they are adjacent in a pack, without
 * being waited for here (and after any job a reader waits for);
 * *ret_hinted (may be NULL) gets a bit for each of the read's (bit b:
 * chunk i + 1 + b), so that the reader does not count them as store hits
 * when it finds them there. Returns 0 with *ret holding the chunk,
 * -EAGAIN when the store has it after all (look again; ahead's chunks
 * are fetched all the same, ahead->fetched set), -EIO when the
 * fetch failed or the fetch timeout passed, -ENOMEM.
 */
int sched_demand(struct sched_export *se, uint64_t i, uint64_t n_after, struct sched_ahead *ahead,
                 struct sched_buf **ret, uint64_t *ret_hinted);

/* Fetch ahead's chunks (the missing ones: not zero, not local; their
 * bits in ahead->fetched) at demand priority
 * with nobody waiting for them: behind every job a reader waits for, in
 * range requests where they are adjacent in a pack. For readahead started
 * by a hit (readahead_async). 0 or -ENOMEM (what was queued stays). */
int sched_readahead(struct sched_export *se, struct sched_ahead *ahead);

/* Chunks a demand miss of se may fetch ahead of the read (readahead.h,
 * sched_demand's ahead): none while demand is queued
 * or the window is full, else what the link carries in about two round
 * trips (2 x bandwidth x rtt), and one range (range_max) at least: on an
 * idle link the bandwidth estimate is only what reads asked of it. */
uint64_t sched_readahead_room(struct sched_export *se);

/* A reader found unique chunk k in the store (hit): hydration and
 * working-set accounting. Cheap (an atomic test when already known). */
void sched_note_hit(struct sched_export *se, uint32_t k);

/* Prefetch logical chunks in this order (the profile class), replacing
 * the list given before. Chunks that are zero or stored cost nothing. */
int sched_profile_set(struct sched_export *se, const uint64_t *chunks, size_t n);
/* Forget the profile list (what is in flight completes). */
void sched_profile_cancel(struct sched_export *se);

enum sched_bg_state {
        SCHED_BG_OFF,                   /* --background off (the store is still surveyed) */
        SCHED_BG_RUNNING,
        SCHED_BG_BACKOFF,               /* fetches failed: a pause, then it resumes */
        SCHED_BG_CACHE_FULL,            /* the store is full (the disk, or near --cache-max): waits for room */
        SCHED_BG_DONE,                  /* every chunk is local: fully hydrated */
};

const char *sched_bg_state_name(enum sched_bg_state s);

struct sched_export_stats {
        /* Per class: range requests made, chunks they fetched, stored
         * bytes fetched (range bytes). */
        uint64_t requests[_SCHED_CLASS_MAX];
        uint64_t chunks[_SCHED_CLASS_MAX];
        uint64_t bytes[_SCHED_CLASS_MAX];
        uint64_t needed_bytes;          /* raw bytes of distinct chunks clients read (the working set) */
        uint64_t hydrated_bytes;        /* raw bytes of unique chunks known to be local */
        uint64_t image_bytes;           /* raw bytes of all unique (non-zero) chunks */
        uint64_t hydrated_chunks, image_chunks;
        uint64_t demand_waits;          /* chunk reads that waited for a fetch */
        uint64_t demand_wait_ns;        /* time they waited, in total */
        uint64_t demand_cold_waits;     /* of the waits, those for a chunk nobody had asked for
                                         * yet (not read ahead: a whole round trip) */
        uint64_t demand_failures;       /* chunk reads that failed (-EIO) */
        uint64_t fetch_errors;          /* range requests that failed */
        uint64_t digest_mismatches;     /* chunks whose bytes did not match their digest */
        uint64_t cache_full_events;     /* times its fetching found the store full */
        /* Profile: positions of the list, positions done (skipped, fetched,
         * failed, or fetched by someone else), 1 while any is left. */
        uint64_t profile_queued, profile_done, profile_active;
        /* Profile ranges that read through a gap between two of the
         * list's chunks (sched_profile_gap): the chunks in the gaps they
         * fetched (counted in chunks[SCHED_PROFILE] too), and the bytes
         * they read that no chunk of theirs needed (chunks local
         * already, bytes of no chunk). */
        uint64_t profile_gap_chunks, profile_gap_waste;
        uint64_t bg_state;              /* enum sched_bg_state */
        uint64_t bg_position;           /* the background cursor (logical chunk) */
};

void sched_export_get_stats(struct sched_export *se, struct sched_export_stats *ret);

struct sched_stats {
        unsigned window;                /* requests in flight allowed (profile + background) */
        unsigned inflight[_SCHED_CLASS_MAX];
        unsigned demand_queued;
        unsigned demand_waiting;        /* readers waiting */
        double bandwidth;               /* bytes/s estimate, 0 = unknown */
        double rtt;                     /* s */
        uint64_t requests, bytes, errors, retries, mismatches, timeouts;
        /* The background scavenger: its bytes on the network and their
         * bound now; times it was refused a range while its bound was
         * held to one range (demand recent or round trips above their
         * floor);
         * completions that saw a queue; those that would have but for the
         * CPU stall during their lifetime (sched-bdp.h); the most
         * background bytes on the network when a demand request was sent. */
        uint64_t bg_inflight_bytes, bg_budget, bg_shrinks, delays, delays_forgiven, demand_bg_ahead_max;
        struct write_behind_stats wb;   /* all 0 without write-behind */
};

void sched_get_stats(struct sched *s, struct sched_stats *ret);
