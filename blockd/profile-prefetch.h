/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The prefetcher behind export_prefetch(): a few background threads that
 * walk a list of logical chunks in order and make each one local through
 * export_fetch_chunk() (the same miss path and cache as demand reads;
 * a chunk a reader is fetching already is waited for, not fetched twice).
 * Several threads only to overlap round trips: chunk j is never started
 * before chunk j-1 was. The fetch scheduler replaces this.
 *
 * Owned by the export (export.c): started by export_prefetch(), stopped
 * and freed by export_prefetch_cancel() or when the export goes. The
 * threads hold no reference to the export; the export stops them first.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct export;
struct prefetcher;

struct prefetch_progress {
        uint64_t queued, done, fetched, bytes;
        bool active;
};

/* Copy chunks and start. threads 0 = default (4). */
int prefetcher_start(struct export *e, const uint64_t *chunks, size_t n, unsigned threads,
                     struct prefetcher **ret);
/* Ask the threads to stop after the chunk each is on, wait, free. NULL ok. */
void prefetcher_stop(struct prefetcher *p);
void prefetcher_progress(struct prefetcher *p, struct prefetch_progress *ret);
