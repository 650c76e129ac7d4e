/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Finding an export's boot profile and prefetching in its order, at
 * attach time: right after the manifest and the index, before the first
 * reader asks (the profile class of fetches, through export_prefetch()).
 *
 * Where the profile comes from (export_config.profile):
 *   NULL or "auto"  the image's published profile: the newest referrer with
 *                   artifactType application/vnd.hocus.blk.profile.v1, else
 *                   the manifest's profile layer (registry-client/
 *                   profile-artifact.h); none is fine
 *   "none"          no prefetch
 *   a path          a local profile file
 *
 * A profile is a hint: failing to find or read one is logged, never fatal.
 */
#pragma once

#include <stdint.h>

#include "blockd/export.h"

struct profile_prefetch_info {
        char source[160];               /* "referrer sha256:...", "manifest layer", "file PATH" */
        uint32_t ranges;
        uint64_t chunks;
};

/* Returns 1 when a prefetch was started, 0 when there is no profile
 * (or how is "none"), -errno when one was named but is unusable. */
int profile_prefetch_attach(struct export *e, const char *how, struct profile_prefetch_info *ret);
