/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Image references:
 *   oci:DIR[:TAG]                                   an OCI image-layout directory
 *   oci:DIR@sha256:HEX
 *   docker://HOST[:PORT]/REPO[:TAG|@sha256:HEX]     a registry
 */
#pragma once

#include <stddef.h>

enum ref_transport {
        REF_OCI_LAYOUT,
        REF_DOCKER,
};

struct image_ref {
        enum ref_transport transport;
        char *layout_dir;       /* oci: only */
        char *registry;         /* docker: "host[:port]" */
        char *repository;       /* docker: "team/workspace" */
        char *tag;              /* NULL when a digest was given, or oci: without tag */
        char *digest;           /* "sha256:<hex>" or NULL */
        char *text;             /* the reference as given, for messages */
};

/*
 * Parse a reference. On failure returns -EINVAL and a reason in err, e.g.
 * "unknown transport 'foo:' (use oci:DIR[:TAG] or docker://HOST/REPO[:TAG])".
 */
int image_ref_parse(const char *s, struct image_ref **ret, char *err, size_t errlen);
void image_ref_free(struct image_ref *r);

/* The tag or digest to look a manifest up by; NULL for an untagged oci: ref. */
const char *image_ref_reference(const struct image_ref *r);

/* Tag grammar of the distribution spec: [A-Za-z0-9_][A-Za-z0-9._-]{0,127}. */
int image_ref_tag_valid(const char *tag);
