/* SPDX-License-Identifier: Apache-2.0 */
/*
 * OCI media types and the hocus-blk image manifest (docs/FORMAT.md): an OCI
 * image manifest (image-spec 1.1) with artifactType MT_IMAGE, the empty
 * config, and layers: the index, then the packs in the index's pack order,
 * then optionally the boot profile. The only copy of these strings.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chunkstore/digest.h"

#define MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define MT_OCI_EMPTY "application/vnd.oci.empty.v1+json"
#define EMPTY_JSON "{}"

#define MT_IMAGE "application/vnd.hocus.blk.image.v1"
#define MT_INDEX "application/vnd.hocus.blk.index.v1"
#define MT_PACK "application/vnd.hocus.blk.pack.v1"
#define MT_PROFILE "application/vnd.hocus.blk.profile.v1"

#define ANNOTATION_IMAGE_SIZE "org.hocus.blk.image-size"
#define ANNOTATION_CHUNK_SIZE "org.hocus.blk.chunk-size"
#define ANNOTATION_CREATED "org.opencontainers.image.created"

/* Largest manifest we accept (the distribution spec suggests 4 MiB). */
#define MANIFEST_MAX (4u << 20)

struct descriptor {
        char media_type[96];
        struct digest digest;
        uint64_t size;
};

struct image_manifest {
        struct descriptor index;
        struct descriptor *packs;
        uint32_t n_packs;
        bool has_profile;
        struct descriptor profile;
        bool has_subject;               /* artifacts that refer to an image */
        struct descriptor subject;
        /* ANNOTATION_CREATED (RFC 3339, UTC) of an artifact; "" if none. */
        char created[48];
        /* Informational copies of the index header (annotations). */
        uint64_t image_size;
        uint32_t chunk_size;
};

/* Encode as canonical JSON (malloc'd, NUL-terminated). */
int image_manifest_encode(const struct image_manifest *m, char **ret, size_t *ret_len);

/*
 * Parse a manifest body and check it is a hocus-blk image: on failure
 * -EMEDIUMTYPE with a reason ("not a hocus-blk image: ...") for other OCI
 * content, or -EBADMSG for malformed JSON/fields.
 */
int image_manifest_parse(const char *media_type, const char *body, size_t len, struct image_manifest **ret,
                         char *err, size_t errlen);
void image_manifest_free(struct image_manifest *m);

/* The empty config blob's descriptor values. */
void empty_config_digest(struct digest *ret);
