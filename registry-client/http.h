/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The HTTP engine of the registry client: one libcurl multi handle driven
 * by one thread. Every request of a registry source goes through it, so
 * connections are pooled and reused, HTTP/2 streams are multiplexed when
 * TLS negotiates h2, and any number of requests run in parallel.
 *
 * Requests are submitted from any thread; their done callback runs on the
 * engine thread (never inside http_submit), must not block, and may submit
 * further requests. The engine itself retries transient failures of
 * requests marked retry_ok (connection refused or reset, stalls, 408, 429,
 * 5xx) with exponential backoff and jitter, honouring Retry-After, until
 * max_attempts or the request's deadline. Redirects are followed for GET
 * and HEAD; libcurl sends credentials only to the host they were set for.
 *
 * A registry source may run two engines of the same code: their connection
 * pools are separate, so requests of one never queue on the other's
 * connections (registry.c keeps one for reads a reader waits for).
 *
 * Locking: e->lock guards the submission and cancel queues and the stats;
 * everything else is touched by the engine thread only.
 */
#pragma once

#include <curl/curl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct http_engine;

struct http_config {
        const char *ca_file;            /* CA bundle instead of the system's (copied), NULL = system */
        const char *ca_path;            /* hashed CA directory ($SSL_CERT_DIR) (copied), or NULL */
        const char *ca_pem;             /* more CAs in PEM, trusted beside the others (copied), or NULL */
        const char *client_cert;        /* PEM client certificate file (copied), or NULL */
        const char *client_key;         /* its PEM key file (copied), or NULL */
        bool tls_no_verify;             /* accept any server certificate (--tls-verify=false) */
        unsigned connect_timeout_s;     /* 0 = 10 */
        unsigned stall_timeout_s;       /* fail a transfer below 1 byte/s this long; 0 = 30 */
        unsigned max_attempts;          /* per request, for retry_ok ones; 0 = 5 */
        unsigned max_host_connections;  /* 0 = 16 */
        uint64_t backoff_base_ms;       /* 0 = 200 */
        uint64_t backoff_cap_ms;        /* 0 = 5000 */
};

struct http_stats {
        uint64_t requests;              /* attempts sent, retries included */
        uint64_t retries;
        uint64_t connections;           /* new connections made */
        uint64_t bytes_down;            /* response bodies */
        uint64_t bytes_up;              /* request bodies */
        long http_version;              /* CURL_HTTP_VERSION_* of the last transfer */
};

struct http_req;
typedef void (*http_done_fn)(struct http_req *req);

struct http_req {
        /* Set by the submitter (may be changed between attempts by a done
         * callback that resubmits). */
        const char *method;             /* "GET", "HEAD", "PUT", "POST", "PATCH", "DELETE" */
        char *url;                      /* owned */
        struct curl_slist *headers;     /* owned */
        char *bearer;                   /* owned secret: Authorization: Bearer */
        char *basic_user, *basic_pass;  /* owned secrets: Authorization: Basic */
        int body_fd;                    /* request body from fd [body_off, +body_len), or */
        const void *body_buf;           /* from memory (borrowed until done) */
        char *body_owned;               /* owned secret body_buf may point into (wiped when freed) */
        uint64_t body_off, body_len;
        bool has_body;
        void *dst;                      /* ranged read: exactly dst_len bytes at range_off */
        size_t dst_len;
        uint64_t range_off;
        size_t body_max;                /* capture up to this much of a 2xx body (0 = discard it; more = -EFBIG) */
        bool retry_ok;                  /* idempotent: the engine may retry it */
        bool follow;                    /* follow redirects (GET/HEAD) */
        uint64_t deadline_ns;           /* now_ns() clock; 0 = none */
        http_done_fn done;
        void *userdata;

        /* Results, valid in done. */
        int r;                          /* 0, or -errno of a transport failure */
        int curl_code;
        long status;
        char *resp_body;                /* captured body (2xx up to body_max, errors up to 16K), NUL-terminated */
        size_t resp_len;
        size_t dst_got;
        bool range_ignored;             /* the server answered 200 to our Range */
        char *content_type, *location, *www_authenticate, *docker_digest, *range_hdr, *retry_after, *oci_subject;
        int64_t content_length;         /* -1 unknown */
        char errbuf[CURL_ERROR_SIZE];
        unsigned attempts;
        long local_port;                /* the last attempt's connection: our TCP port (0 = none) */
        long http_version;              /* and its CURL_HTTP_VERSION_* (0 = none) */

        /* Engine-private. */
        uint64_t id;
        CURL *easy;
        struct http_engine *engine;
        struct http_req *next;
        uint64_t due_ns;
        uint64_t upload_pos;
        uint64_t skip;
        uint64_t start_ns;
        int internal_err;
        bool dst_full;
        bool cancelled;
};

int http_engine_new(const struct http_config *c, struct http_engine **ret);
/* Cancels whatever is still queued or running (done is called with
 * -ECANCELED), then stops the thread. */
void http_engine_free(struct http_engine *e);
void http_engine_stats(struct http_engine *e, struct http_stats *ret);

/* "HTTP/2", "HTTP/1.1", ... for a CURL_HTTP_VERSION_*; NULL for 0 or unknown. */
const char *http_version_name(long v);

/* A new request (body_fd -1, content_length -1). */
struct http_req *http_req_new(const char *method, const char *url);
void http_req_free(struct http_req *r);
/* Add a request header line "Name: value". 0 or -ENOMEM. */
int http_req_header(struct http_req *r, const char *line);
/* Forget the results of an attempt, before resubmitting. */
void http_req_reset(struct http_req *r);
/* Replace the credentials (copies; NULLs clear). */
int http_req_set_auth(struct http_req *r, const char *bearer, const char *user, const char *pass);

/* Queue r; returns its id (> 0). done runs on the engine thread. */
uint64_t http_submit(struct http_engine *e, struct http_req *r);
/* Abort a queued or running request: its done runs with r = -ECANCELED.
 * Unknown or finished ids are ignored. */
void http_cancel(struct http_engine *e, uint64_t id);
/* The same for a request the caller knows is still alive (submitted or
 * not yet: then nothing happens). */
void http_cancel_req(struct http_engine *e, struct http_req *r);

/* A one-shot completion to wait on from a submitting thread. */
struct http_wait {
        pthread_mutex_t lock;
        pthread_cond_t cond;
        bool done;
};
void http_wait_init(struct http_wait *w);
void http_wait_signal(struct http_wait *w);
void http_wait_wait(struct http_wait *w);
/* Wait until done or the now_ns() clock reaches until; true when done. */
bool http_wait_until(struct http_wait *w, uint64_t until_ns);
void http_wait_destroy(struct http_wait *w);

/* Submit r and wait for it (r->done must not be set). Returns r->r. */
int http_run(struct http_engine *e, struct http_req *r);
