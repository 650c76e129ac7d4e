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
#include "source.h"

#define REG_TOKENS_MAX 8

struct reg_token {
        char *scopes;           /* space-separated, as requested */
        char *value;            /* secret */
        uint64_t expires_ns;
};

struct token_fetch;
struct reg_req;

struct registry {
        struct http_engine *http;
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
};

/* One logical request: an http request plus what authentication needs. */
struct reg_req {
        struct registry *reg;
        struct http_req *h;
        char *scopes;           /* scopes this request needs */
        char *what;             /* "manifest v1", "blob sha256:...", for messages */
        unsigned auth_rounds;
        char *used_token;       /* the token sent with the last attempt */
        atomic_bool cancelled;
        bool no_auth;           /* send as is (the first ping) */
        int r;
        void (*done)(struct reg_req *q);
        void *userdata;
        struct reg_req *next_waiter;
};

/* A request for PATH under the repository ("/manifests/v1") or, when
 * path starts with "http", for that absolute URL. push: needs push scope. */
struct reg_req *reg_req_new(struct registry *reg, const char *method, const char *path, bool push, const char *what);
void reg_req_free(struct reg_req *q);
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

/* Record a failure description (thread-safe). Returns r. */
int reg_fail(struct registry *reg, int r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
