/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Learned boot profiles: an image never seen boots without a profile
 * once per host, not once per boot.
 *
 * Every attach whose profile is not "none" learns its first reads for
 * blockd's --learn-window (default PROFILE_LEARN_WINDOW_NS; 0: it learns
 * nothing, and what was learned before stays): export.c runs a second profile recorder
 * (profile-rec.h, the one `hocus-blk record` uses) beside the one the
 * record command drives. When the export is freed (detach, update,
 * shutdown), what it learned is kept in the chunk store's directory by
 * the image's manifest digest (chunkstore/profile-learned.h) if the attach
 * was cold: it fetched chunks for its reads (demand, readahead or
 * profile). A warm attach keeps the profile learned before.
 *
 * Precedence at attach (profile-find.c): a profile file named in the
 * export's config, else the published profile (a referrer or the
 * manifest's profile layer, or its local copy when the registry is
 * unreachable), else the learned one; "none" uses and learns nothing.
 * `hocus-blk profile push REF --learned` publishes the learned profile
 * merged with the published one.
 */
#pragma once

#include <stdint.h>

#include "chunkstore/digest.h"
#include "chunkstore/profile.h"
#include "chunkstore/store.h"

#define PROFILE_LEARN_WINDOW_NS (120 * 1000000000ull)   /* --learn-window's default */

/* The attach of export name (image manifest m) learned p and fetched
 * `fetched` chunks for it: keep p if the attach was cold. Logs. */
void profile_learn_save(struct chunkstore *cs, const struct digest *m, const char *name, const struct profile *p,
                        uint64_t fetched);
