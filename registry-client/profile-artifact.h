/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Boot profiles published next to an image (docs/FORMAT.md section 6).
 *
 * A profile is published as its own small OCI artifact: an image manifest
 * with artifactType MT_PROFILE, the empty config, one layer (the profile
 * blob), the annotation org.opencontainers.image.created, and a `subject`
 * naming the image's manifest. The image is not touched, so a profile can
 * be re-recorded or merged and published again at any time; the newest
 * published one wins. On a registry the artifact is found through the
 * referrers API or, on registries without it (docker-registry 2.8), the
 * referrers tag schema (registry.c keeps both); in an OCI layout it is an
 * untagged entry of index.json.
 *
 * An image may also carry a profile as its manifest's last layer (push
 * --profile, repack). profile_artifact_find() prefers the newest referrer:
 * a referrer is always newer than the manifest it names.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "chunkstore/digest.h"
#include "manifest.h"
#include "source.h"

/* Largest profile blob we fetch (the format's limit). */
#define PROFILE_BLOB_MAX (32ull + 16ull * (16u << 20))

enum profile_origin {
        PROFILE_ORIGIN_REFERRER,        /* a published artifact */
        PROFILE_ORIGIN_LAYER,           /* the image manifest's profile layer */
};

struct profile_found {
        enum profile_origin origin;
        struct digest manifest;         /* the artifact's manifest (REFERRER) */
        struct digest blob;             /* the profile blob */
        uint64_t size;
        char created[48];               /* "" when unknown */
        unsigned candidates;            /* profile referrers seen */
};

/* The current time as RFC 3339 UTC with nanoseconds (sorts as text). */
void profile_artifact_now(char *buf, size_t len);

/*
 * Publish profile bytes as an artifact whose subject is the image manifest
 * (subject, subject_size). Uploads the empty config and the blob, puts the
 * manifest untagged, and checks that the referrers listing names it
 * (putting it again if a concurrent writer of the tag schema lost it).
 * ret_manifest (optional) gets the artifact manifest's digest.
 */
int profile_artifact_push(struct blob_source *s, const struct digest *subject, uint64_t subject_size,
                          const void *profile, size_t len, struct digest *ret_manifest);

/*
 * Find the profile of image manifest `subject` (whose parsed manifest is
 * m, for its profile layer; may be NULL): the newest referrer with
 * artifactType MT_PROFILE, else m's profile layer. Returns 0 with the
 * verified blob (caller frees) and where it came from, -ENOENT when the
 * image has none, -errno on failures.
 */
int profile_artifact_find(struct blob_source *s, const struct digest *subject, const struct image_manifest *m,
                          void **ret_buf, size_t *ret_len, struct profile_found *ret_found);

/*
 * List the profile referrers of subject, newest first: calls fn for each
 * (found->origin is REFERRER). Returns the number listed or -errno.
 */
int profile_artifact_list(struct blob_source *s, const struct digest *subject,
                          void (*fn)(const struct profile_found *found, void *userdata), void *userdata);
