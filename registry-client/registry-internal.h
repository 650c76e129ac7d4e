/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shared between registry.c (the blob source ops) and registry-req.c (one
 * logical request: authentication, token reuse and renewal, and the
 * sentence that describes a failure). Not part of the source interface.
 *
 * Locking: reg->lock guards the auth state (scheme, realm, service,
 * credentials, tokens, token fetches) and the last error. The http engine
 * has its own lock; callbacks run on the engine thread.
 */
#pragma once

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "auth.h"
#include "credentials.h"
#include "http.h"
#include "registries-conf.h"
#include "source.h"

#define REG_TOKENS_MAX 8
#define REG_SERVED_MAX 64
#define REG_ORIGIN (-1)         /* reg_req.endpoint: the origin */
#define REG_UNCHOSEN (-2)       /* reg_req.endpoint: not submitted yet */

struct reg_token {
        char *scopes;           /* space-separated, as requested */
        char *value;            /* secret */
        uint64_t expires_ns;
};

struct token_fetch;
struct reg_req;

/* A mirror (registries.conf [[registry.mirror]]): an endpoint of its own
 * (engine, auth state) that reads of the origin try first (mirrors.c). */
struct reg_mirror {
        struct registry *reg;
        char *location;                 /* as configured, for messages */
        enum regconf_pull pull;
        bool insecure;
        /* Guarded by the origin's lock. */
        uint64_t skip_until_ns;         /* skipped until then after a failure */
        unsigned failures;              /* consecutive, for the backoff */
};

/* Which endpoint last served a blob (inspect -v; and whom to blame when
 * its bytes do not verify). */
struct reg_served {
        struct digest d;
        int endpoint;                   /* REG_ORIGIN or a mirror's index */
        bool used;
};

struct registry {
        struct http_engine *http;
        /* With source_options.demand_conns: a second engine, whose
         * connections carry only requests a caller waits for (reg_req.demand)
         * and so never queue behind range reads of the other; NULL without. */
        struct http_engine *http_demand;
        char *base;             /* "https://host:port" */
        char *host;             /* "host:port" as in the reference */
        char *repo;
        bool plain_http;
        bool client_cert;       /* a TLS client certificate is configured (certs-d.h) */
        bool push;              /* opened as a push destination */
        struct source_options opts;     /* strings borrowed from the caller for the source's life */

        pthread_mutex_t lock;
        enum auth_scheme scheme;
        char *realm, *service;
        bool creds_looked_up;
        int creds_r;            /* 0 have credentials, -ENOENT none, -errno */
        struct credentials creds;
        struct reg_token tokens[REG_TOKENS_MAX];
        unsigned next_token;
        struct token_fetch *fetches;
        int last_errno;
        char last_error[512];
        bool warned_range;
        bool answered;          /* atomic: a reply came (any status); with opts.ping_lazy,
                                 * requests are tried once until then */

        /* Mirrors (the origin's; a mirror has none and points at its origin). */
        struct registry *origin;        /* a mirror's origin; NULL for the origin itself */
        struct reg_mirror *mirrors;
        size_t n_mirrors;
        bool digest_only;               /* mirror-by-digest-only */
        uint64_t mirror_skips;          /* lock: times a mirror was put aside */
        uint64_t mirror_reads;          /* lock: requests a mirror answered */
        struct reg_served served[REG_SERVED_MAX];       /* lock */
        unsigned next_served;
};

/* One logical request: an http request plus what authentication needs. */
struct reg_req {
        struct registry *reg;           /* the endpoint it goes to (atomic: cancel reads it) */
        struct registry *origin;        /* the registry it is for */
        char *path;                     /* under the repository, to move it between endpoints */
        int endpoint;                   /* REG_UNCHOSEN, REG_ORIGIN, or a mirror's index */
        enum { REQ_ORIGIN_ONLY, REQ_BLOB, REQ_MANIFEST_DIGEST, REQ_MANIFEST_TAG } kind;
        struct digest digest;           /* REQ_BLOB, REQ_MANIFEST_DIGEST */
        struct http_req *h;
        char *scopes;           /* scopes this request needs */
        char *what;             /* "manifest v1", "blob sha256:...", for messages */
        unsigned auth_rounds;
        char *used_token;       /* the token sent with the last attempt */
        atomic_bool cancelled;
        bool no_auth;           /* send as is (the first ping) */
        bool demand;            /* a caller waits: the endpoint's demand engine, if it has one */
        int r;
        void (*done)(struct reg_req *q);
        void *userdata;
        struct reg_req *next_waiter;
};

/* A request for PATH under the repository ("/manifests/v1") or, when
 * path starts with "http", for that absolute URL. push: needs push scope. */
struct reg_req *reg_req_new(struct registry *reg, const char *method, const char *path, bool push, const char *what);
void reg_req_free(struct reg_req *q);
/* The engine q goes out on (and is cancelled on): the demand engine for a
 * demand request of an endpoint that has one, else the other. */
struct http_engine *reg_req_engine(const struct reg_req *q, const struct registry *reg);
/* Submit; q->done runs on the engine thread with q->r set (0 or -errno;
 * a non-2xx status is already mapped, and described in reg->last_error). */
void reg_req_submit(struct reg_req *q);
/* Submit and wait. Returns q->r. */
int reg_req_run(struct reg_req *q);
/* Abort q (see blob_read_cancel). */
void reg_req_cancel(struct reg_req *q);

/* Look credentials up once (may run a credential helper). Caller holds
 * reg->lock. */
int reg_credentials(struct registry *reg);

/* An endpoint: a registry's state without the source around it
 * (registry.c). mirror: fewer retries, and never for pushing. */
int registry_endpoint_new(const struct source_options *o, const char *host, const char *repo, bool insecure,
                          bool mirror, struct registry **ret, char *err, size_t errlen);
void registry_endpoint_free(struct registry *reg);
/* GET /v2/: reachable, the distribution API, which authentication. On
 * failure err (may be NULL) gets the sentence. */
int registry_ping(struct registry *reg, char *err, size_t errlen);

/* ---- mirrors.c ---- */

/* Set up reg's mirrors from registries.conf entry e (NULL: none) for the
 * repository name ("HOST/REPO" as the reference had it). */
int reg_mirrors_open(struct registry *reg, const struct regconf_registry *e, const char *name, char *err,
                     size_t errlen);
void reg_mirrors_free(struct registry *reg);
/* What of q may go to mirrors (from its method and path). */
void reg_req_classify(struct reg_req *q, const char *method, bool push);
/* Move q to the first usable endpoint after `after` (REG_UNCHOSEN: the
 * first of all; the origin is last). 0 or -ENOMEM. */
int reg_req_route(struct reg_req *q, int after);
/* q failed with r on a mirror: put the mirror aside (backoff, counted,
 * logged once) unless r says the mirror only lacks the object. Returns
 * true when another endpoint should be tried. */
bool reg_mirror_failed(struct reg_req *q, int r);
/* q succeeded: note where its object came from. */
void reg_mirror_served(struct reg_req *q);
/* The bytes of blob d did not verify: blame the mirror that served them.
 * 1 when a mirror was put aside (reading again may succeed), else 0. */
int reg_mirror_blame(struct registry *reg, const struct digest *d);
/* Where blob d came from, in buf ("HOST (mirror)"), or NULL if unknown. */
const char *reg_mirror_served_by(struct registry *reg, const struct digest *d, char *buf, size_t len);

/* Blob uploads (registry-upload.c): the source's blob_put_fd and blob_mount. */
int reg_blob_put_fd(struct blob_source *s, const struct digest *d, int fd, uint64_t size);
int reg_blob_mount(struct blob_source *s, const struct digest *d, const struct image_ref *from);

/* Record a failure description (thread-safe). Returns r. */
int reg_fail(struct registry *reg, int r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
