/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The one blob source interface. An OCI image-layout directory (oci:) and a
 * registry (docker://) both implement it; nothing above this header knows
 * which one it talks to.
 *
 * Every op returns 0 or -errno: -ENOENT (no such tag/blob), -EACCES (auth),
 * -EAGAIN (transient, already retried), -EBADMSG (bytes do not match their
 * digest), -EIO, -ETIMEDOUT, -ECONNREFUSED. The wrappers (source_*) are the
 * only callers of the ops; they add debug logging and, where whole objects
 * are read, digest verification.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chunkstore/digest.h"
#include "ref.h"

struct blob_source;

struct blob_source_ops {
        const char *name;
        /* Fetch a manifest by tag or by digest ("sha256:..."). reference is
         * NULL for an untagged oci: ref (the layout's only manifest).
         * Returns the body and its media type (both malloc'd). */
        int (*manifest_get)(struct blob_source *s, const char *reference, char **ret_media_type,
                            char **ret_body, size_t *ret_len);
        /* Store a manifest and, when tag is not NULL, point tag at it.
         * artifact_type may be NULL. */
        int (*manifest_put)(struct blob_source *s, const char *tag, const char *media_type,
                            const char *artifact_type, const void *body, size_t len);
        /* Size of a blob, -ENOENT if absent. */
        int (*blob_stat)(struct blob_source *s, const struct digest *d, uint64_t *ret_size);
        /* Exactly len bytes at off (a range read; not verified here).
         * -ERANGE when the blob ends before off + len. */
        int (*blob_read)(struct blob_source *s, const struct digest *d, uint64_t off, void *buf, size_t len);
        /* Upload size bytes of fd (from offset 0) as blob d. The source
         * must never expose a partial or mismatching blob under d. */
        int (*blob_put_fd)(struct blob_source *s, const struct digest *d, int fd, uint64_t size);
        /* Optional: store size bytes of fd under whatever digest they
         * have, computing it in the same pass (saves hashing twice).
         * Returns 1 if stored, 0 if the blob was already there. The
         * wrapper falls back to hashing, blob_stat and blob_put_fd. */
        int (*blob_put_fd_unnamed)(struct blob_source *s, int fd, uint64_t size, struct digest *ret_digest);
        /* Optional (NULL = -EOPNOTSUPP): make blob d, present in the
         * repository of `from`, available here without uploading it. */
        int (*blob_mount)(struct blob_source *s, const struct digest *d, const struct image_ref *from);
        /* Optional: list manifests whose subject is d (OCI referrers).
         * Returns an image index JSON body. */
        int (*referrers_get)(struct blob_source *s, const struct digest *d, char **ret_body, size_t *ret_len);
        /* Must accept a half-built source. */
        void (*free)(struct blob_source *s);
};

struct blob_source {
        const struct blob_source_ops *ops;
        struct image_ref *ref;          /* owned */
        void *priv;
};

struct source_options {
        bool plain_http;                /* docker://: http instead of https */
        const char *ca_file;            /* docker://: extra trusted CA */
        const char *creds;              /* "USER:PASS" */
        const char *auth_file;          /* explicit auth.json */
        bool create;                    /* oci:: create the layout if missing */
        unsigned connect_timeout_s;     /* 0 = default */
};

/* Parse ref text and open its source. err gets a reason for -EINVAL. */
int source_open(const char *ref, const struct source_options *o, struct blob_source **ret, char *err,
                size_t errlen);
/* Open a source for an already parsed ref (takes ownership of ref). */
int source_open_ref(struct image_ref *ref, const struct source_options *o, struct blob_source **ret);
void source_free(struct blob_source *s);

/* Wrappers: the only callers of the ops. */
int source_manifest_get(struct blob_source *s, const char *reference, char **ret_media_type, char **ret_body,
                        size_t *ret_len, struct digest *ret_digest);
int source_manifest_put(struct blob_source *s, const char *tag, const char *media_type,
                        const char *artifact_type, const void *body, size_t len, struct digest *ret_digest);
int source_blob_stat(struct blob_source *s, const struct digest *d, uint64_t *ret_size);
int source_blob_read(struct blob_source *s, const struct digest *d, uint64_t off, void *buf, size_t len);
/* Read a whole blob of known size (at most max bytes) and verify its
 * digest: -EBADMSG when the bytes do not match. */
int source_blob_get(struct blob_source *s, const struct digest *d, uint64_t size, uint64_t max, void **ret_buf);
int source_blob_put_fd(struct blob_source *s, const struct digest *d, int fd, uint64_t size);
int source_blob_put_buf(struct blob_source *s, const struct digest *d, const void *buf, size_t len);
/* Store a blob of unknown digest; returns 1 if uploaded, 0 if present. */
int source_blob_put_fd_unnamed(struct blob_source *s, int fd, uint64_t size, struct digest *ret_digest);
int source_blob_mount(struct blob_source *s, const struct digest *d, const struct image_ref *from);
int source_referrers_get(struct blob_source *s, const struct digest *d, char **ret_body, size_t *ret_len);

/* Implementations. */
int oci_layout_open(struct image_ref *ref, const struct source_options *o, struct blob_source **ret);
int registry_open(struct image_ref *ref, const struct source_options *o, struct blob_source **ret);
