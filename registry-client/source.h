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

/* Counters of a source's traffic (zero for sources without a network). */
struct source_stats {
        uint64_t requests;              /* HTTP requests sent, retries included */
        uint64_t retries;
        uint64_t connections;           /* new connections opened (demand ones included) */
        uint64_t bytes_down, bytes_up;  /* body bytes */
        uint64_t demand_requests;       /* of the requests: on the demand connections (demand_conns) */
        uint64_t demand_connections;    /* of the connections: demand ones */
        const char *protocol;           /* "HTTP/2", "HTTP/1.1", or NULL (static) */
        uint64_t mirror_reads;          /* requests a registry mirror answered */
        uint64_t mirror_skips;          /* times a mirror was put aside after failing */
};

/*
 * One asynchronous range read (see fetch.h, which is its only user). The
 * caller owns it and keeps it, and buf, alive until done has been called,
 * exactly once, from a backend thread (never from inside the call that
 * started it). The bytes are not verified here: they are a range of a
 * pack, verified per chunk by whoever decodes them.
 */
struct source_aio {
        struct digest digest;
        uint64_t off;
        void *buf;
        size_t len;
        uint64_t deadline_ns;           /* now_ns() clock; 0 = none; past it: -ETIMEDOUT */
        bool demand;                    /* a reader waits: on the demand connections, if the source has them */
        /* Set before done, for logs: the connection the last attempt used. */
        unsigned local_port;            /* our TCP port; 0 = none (no network, or never connected) */
        const char *protocol;           /* "HTTP/2", "HTTP/1.1", or NULL (static) */
        bool demand_conn;               /* it was one of the demand connections */
        void (*done)(struct source_aio *a, int r);
        void *userdata;
        void *backend;                  /* the backend's, while in flight */
};

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
        /* Optional: start an asynchronous range read. 0 when started (done
         * will be called), -errno when not (done will not be called). */
        int (*blob_read_async)(struct blob_source *s, struct source_aio *a);
        /* Optional: abort a started read; done still comes, with
         * -ECANCELED if the abort won the race. Called at most while
         * done has not returned (the caller serializes the two). */
        void (*blob_read_cancel)(struct blob_source *s, struct source_aio *a);
        /* Optional: the bytes last read of blob (or manifest) d did not
         * match their digest. 1 when the source put aside whoever served
         * them (a mirror): reading again may succeed; else 0. */
        int (*blob_bad)(struct blob_source *s, const struct digest *d);
        /* Optional: where d was last read from ("HOST/REPO (mirror)"), or NULL. */
        const char *(*served_by)(struct blob_source *s, const struct digest *d, char *buf, size_t len);
        /* Optional: traffic counters. */
        void (*stats)(struct blob_source *s, struct source_stats *ret);
        /* Optional: a sentence about the most recent failure with error r
         * (e.g. "127.0.0.1:5000: certificate not trusted ..."), or NULL. */
        const char *(*describe_error)(struct blob_source *s, int r, char *buf, size_t len);
        /* Optional (NULL = 0): is the source there to serve? For docker://
         * the GET /v2/ that opening sends (or skipped: ping_lazy), with the
         * same verdict; err gets a sentence when not. */
        int (*probe)(struct blob_source *s, char *err, size_t errlen);
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
        const char *ca_file;            /* docker://: the CA bundle instead of the system's */
        const char *cert_dir;           /* docker://: certificates (*.crt, NAME.cert + NAME.key) for every
                                         * registry, instead of certs.d/HOST (certs-d.h) */
        bool tls_no_verify;             /* docker://: accept any server certificate */
        const char *creds;              /* "USER:PASS" */
        const char *auth_file;          /* explicit auth.json */
        bool create;                    /* oci:: create the layout if missing */
        unsigned connect_timeout_s;     /* 0 = default */
        unsigned stall_timeout_s;       /* docker://: a transfer below 1 byte/s this long fails; 0 = 30 */
        unsigned max_attempts;          /* docker://: tries per request (retries + 1); 0 = 5 */
        unsigned max_connections;       /* docker://: per host; 0 = 16 */
        bool ping_once;                 /* docker://: the GET /v2/ opening sends is tried once, not
                                         * max_attempts times (blockd retries a registry that is
                                         * down in the background) */
        bool ping_lazy;                 /* docker://: opening sends no GET /v2/ (source_probe does,
                                         * when the caller wants it, e.g. beside its first requests);
                                         * until the registry has answered once, requests are tried
                                         * once, like that ping (read-only opens: blockd) */
        /* docker://: a second pool of connections (engine) for requests a
         * caller waits for: demand range reads (source_aio.demand) and
         * every synchronous request (ping, manifests, index, profile), so
         * the demand connection is open and warm before the first read,
         * and no demand request queues behind other range reads on one
         * HTTP/2 connection or for an HTTP/1.1 slot. blockd sets it. */
        bool demand_conns;
        /* docker://: every request made while opening and reading whole
         * objects (GET /v2/, manifests, index, profile, referrers, HEAD)
         * ends within this, retries included: -ETIMEDOUT, described as
         * "HOST did not answer ... within N s"; 0 = only the per-try
         * limits. Waiting longer than a few seconds is logged (info). */
        uint64_t request_timeout_ns;
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
/* -EOPNOTSUPP when the source has no asynchronous reads (fetch.h then
 * uses threads). */
int source_blob_read_async(struct blob_source *s, struct source_aio *a);
void source_blob_read_cancel(struct blob_source *s, struct source_aio *a);
void source_get_stats(struct blob_source *s, struct source_stats *ret);
/* The verifier's verdict on bytes of d from this source (see blob_bad):
 * 1 when reading d again may give other bytes, else 0. */
int source_blob_bad(struct blob_source *s, const struct digest *d);
/* Where d was last read from, in buf; NULL when the source cannot say. */
const char *source_served_by(struct blob_source *s, const struct digest *d, char *buf, size_t len);
/* The most specific message for error r from this source: the backend's
 * description of its last failure, else strerror(-r). Returns buf. */
const char *source_strerror(struct blob_source *s, int r, char *buf, size_t len);
/* The source's verdict on whether it can serve (blob_source_ops.probe). */
int source_probe(struct blob_source *s, char *err, size_t errlen);
/* Just the source's own description of its last failure with r, or NULL
 * when it has none. */
const char *source_describe_error(struct blob_source *s, int r, char *buf, size_t len);

/* Implementations. */
int oci_layout_open(struct image_ref *ref, const struct source_options *o, struct blob_source **ret);
/* Connects (GET /v2/, and authenticates when challenged) before it
 * returns, unless o->ping_lazy; on failure err gets a sentence saying
 * what went wrong. */
int registry_open(struct image_ref *ref, const struct source_options *o, struct blob_source **ret, char *err,
                  size_t errlen);
