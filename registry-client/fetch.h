/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Asynchronous range reads of blobs, with a bound on how many are in
 * flight: the layer the lazy fetch scheduler (blockd) and `pull` sit on.
 *
 * For docker:// sources the reads are HTTP Range GETs multiplexed by the
 * registry's curl multi engine (source_blob_read_async); for sources
 * without asynchronous reads (oci:) a small pool of threads does preads.
 * Requests start in submission order (FIFO), demand ones (FETCH_DEMAND)
 * before any other still queued; other priorities are the scheduler's
 * business, above this. A demand read goes on the source's demand
 * connections when it has them (source_options.demand_conns).
 *
 * The bytes are not verified here: a range is part of a pack, and
 * whoever decodes the chunks in it verifies each against its digest
 * (chunk_decode, through the bulk engine or bulk_chunk_store) before
 * anything else sees it.
 *
 * Thread-safety: every function may be called from any thread, including
 * from inside a done callback (except fetcher_drain and fetcher_free).
 * done is called exactly once per accepted submission, never from inside
 * fetcher_submit, and from a fetcher or backend thread: it must not
 * block for long (hand heavy work to another thread).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chunkstore/digest.h"
#include "source.h"

struct fetcher;

/* The connection a read's last attempt used (for logs); zeros when the
 * source has no network or never connected. */
struct fetch_conn {
        unsigned local_port;            /* our TCP port */
        const char *protocol;           /* "HTTP/2", "HTTP/1.1", or NULL (static) */
        bool demand;                    /* one of the source's demand connections */
};

/* r: 0 (buf holds the len bytes), -ECANCELED, -ETIMEDOUT (deadline), or
 * the source's -errno (already retried by the source where that makes
 * sense). conn is valid during the call (never NULL). */
typedef void (*fetch_done_fn)(void *userdata, int r, const struct fetch_conn *conn);

/* fetcher_submit flags */
#define FETCH_DEMAND 1u                 /* a reader waits: ahead of the queue, on demand connections */

struct fetch_options {
        unsigned max_inflight;          /* requests in flight at once; 0 = 16 */
        unsigned threads;               /* pread threads for sources without async reads; 0 = min(max_inflight, 8) */
};

struct fetch_stats {
        uint64_t submitted, completed, failed, cancelled;
        uint64_t bytes;                 /* bytes of successful reads */
        unsigned queued, inflight;
};

/* src is borrowed and must outlive the fetcher. */
int fetcher_new(struct blob_source *src, const struct fetch_options *o, struct fetcher **ret);
/* Cancel everything still queued or in flight, wait for every done
 * callback to return, free. Must not be called from a done callback. */
void fetcher_free(struct fetcher *f);

/*
 * Queue a read of len (> 0) bytes of blob d at off into buf, which stays
 * valid and untouched by the caller until done is called. deadline_ns is
 * absolute (now_ns() clock), 0 for none: a read not finished by then
 * fails with -ETIMEDOUT, queued or in flight. flags: FETCH_DEMAND or 0.
 * Returns an id (> 0) for fetcher_cancel, or -errno (then done is never
 * called).
 */
int64_t fetcher_submit(struct fetcher *f, const struct digest *d, uint64_t off, void *buf, size_t len,
                       uint64_t deadline_ns, unsigned flags, fetch_done_fn done, void *userdata);

/* Cancel a read: a queued one completes with -ECANCELED at once (from
 * this call's thread, after the call dropped its locks); an in-flight one
 * is aborted and completes with -ECANCELED, or with its real result if
 * that won the race. 0, or -ENOENT when id is unknown or already done. */
int fetcher_cancel(struct fetcher *f, uint64_t id);

/* Wait until nothing is queued or in flight. */
void fetcher_drain(struct fetcher *f);

void fetcher_get_stats(struct fetcher *f, struct fetch_stats *ret);
