/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Finding an export's boot profile and prefetching in its order, at
 * attach time: right after the manifest and the index, beside the first
 * reads (the profile class of fetches, through export_prefetch()): the
 * export answers reads while the lookup runs.
 *
 * Where the profile comes from (export_config.profile):
 *   NULL or "auto"  the image's published profile: the newest referrer with
 *                   artifactType application/vnd.hocus.blk.profile.v1, else
 *                   the manifest's profile layer (registry-client/
 *                   profile-artifact.h); none is fine
 *   "none"          no prefetch
 *   a path          a local profile file
 *
 * A published profile that was found is kept locally by digest
 * (chunkstore/meta.h); when the lookup fails (registry unreachable) the
 * local copy of the one found before (known_blob) is used instead. When
 * none is published (or none can be had), the profile an earlier cold
 * attach learned on this host (profile-learn.h) is used. Every attach
 * but "none" learns its own first reads.
 *
 * A profile is a hint: failing to find or read one is logged, never fatal.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "blockd/export.h"

struct profile_prefetch_info {
        char source[160];               /* "referrer sha256:...", "manifest layer", "file PATH" */
        uint32_t ranges;
        uint64_t chunks;
        bool learned;                   /* the profile learned on this host */
        bool has_blob;                  /* a published profile: its blob digest */
        struct digest blob;
};

/* At attach, before the export serves its first read: learn its first
 * reads (profile-learn.h), unless how is "none". The lookup
 * (profile_prefetch_attach) may come later: the export serves meanwhile. */
void profile_learn_attach(struct export *e, const char *how);
/* Returns 1 when a prefetch was started, 0 when there is no profile
 * (or how is "none"), -errno when one was named but is unusable.
 * known_blob: "sha256:..." of the published profile found at an earlier
 * attach, or NULL. */
int profile_prefetch_attach(struct export *e, const char *how, const char *known_blob,
                            struct profile_prefetch_info *ret);
