/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Recording a boot profile: which chunks of an export are read for the
 * first time, in what order, and when (chunkstore/profile.h is the format).
 *
 * export.c owns one recorder per export (created at the first
 * export_record_start and kept until the export is freed, so readers never
 * see it go away) and calls profile_rec_note() for every read while
 * recording is on. A chunk already seen costs one atomic bit test; a new
 * one takes the recorder's lock to append an entry. Consecutive new chunks
 * of one read become one entry, so entries are chunk-aligned byte ranges.
 *
 * Thread-safe: every function may be called from any thread.
 */
#pragma once

#include <stdint.h>

#include "chunkstore/profile.h"

struct profile_rec;

int profile_rec_new(uint64_t image_size, uint32_t chunk_size, struct profile_rec **ret);
void profile_rec_free(struct profile_rec *r);

/* Forget everything recorded and restart the clock. */
void profile_rec_reset(struct profile_rec *r);

/* A read of [off, off+len): record the chunks it reads first. */
void profile_rec_note(struct profile_rec *r, uint64_t off, uint64_t len);

/* A copy of what was recorded so far (caller frees with profile_free). */
int profile_rec_snapshot(struct profile_rec *r, struct profile **ret);

/* Entries recorded so far. */
uint32_t profile_rec_count(struct profile_rec *r);
