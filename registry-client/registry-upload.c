/* SPDX-License-Identifier: Apache-2.0 */
/* Blob uploads to a registry: upload sessions (POST, PUT with the digest),
 * cross-repository mounts, and the retries of a transient failure
 * (registry-internal.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "errors.h"
#include "registry-internal.h"

#define UPLOAD_MONOLITHIC_MAX (32ULL << 20)
#define UPLOAD_CHUNK (16ULL << 20)
#define UPLOAD_TRIES 3
/* An upload Location may be relative to the registry. */
static char *absolute_location(struct registry *reg, const char *loc) {
        char *url;

        if (!loc)
                return NULL;
        if (!strncmp(loc, "http://", 7) || !strncmp(loc, "https://", 8))
                return strdup(loc);
        if (asprintf(&url, "%s%s%s", reg->base, loc[0] == '/' ? "" : "/", loc) < 0)
                return NULL;
        return url;
}

static char *url_with_query(const char *url, const char *param) {
        char *out;

        if (asprintf(&out, "%s%s%s", url, strchr(url, '?') ? "&" : "?", param) < 0)
                return NULL;
        return out;
}

/* POST an upload session (or a mount); *ret_location gets its URL. */
static int upload_start(struct registry *reg, const char *query, const char *extra_scopes, long *ret_status,
                        char **ret_location, const char *what) {
        _cleanup_free_ char *path = NULL;
        struct reg_req *q;
        int r;

        if (asprintf(&path, "/blobs/uploads/%s", query ? query : "") < 0)
                return -ENOMEM;
        q = reg_req_new(reg, "POST", path, true, what);
        if (!q)
                return -ENOMEM;
        if (extra_scopes) {
                char *m = auth_scopes_merge(q->scopes, extra_scopes);
                if (!m) {
                        reg_req_free(q);
                        return -ENOMEM;
                }
                free(q->scopes);
                q->scopes = m;
        }
        r = reg_req_run(q);
        if (r == 0) {
                *ret_status = q->h->status;
                *ret_location = absolute_location(reg, q->h->location);
                if (!*ret_location && q->h->status == 202)
                        r = reg_fail(reg, -EPROTO, "%s: upload session without a Location", reg->host);
        }
        reg_req_free(q);
        return r;
}

/* Best effort: drop an upload session we will not finish. */
static void upload_cancel(struct registry *reg, const char *location) {
        struct reg_req *q = reg_req_new(reg, "DELETE", location, true, "upload cancel");

        if (q) {
                (void) reg_req_run(q);
                reg_req_free(q);
        }
}

/* One request of an upload (PATCH a chunk, or the final PUT). */
static int upload_send(struct registry *reg, const char *method, const char *url, int fd, uint64_t off, uint64_t len,
                       bool range_header, char **ret_location, const char *what) {
        char line[96];
        struct reg_req *q;
        int r;

        q = reg_req_new(reg, method, url, true, what);
        if (!q)
                return -ENOMEM;
        q->h->body_fd = fd;
        q->h->body_off = off;
        q->h->body_len = len;
        q->h->has_body = true;
        r = http_req_header(q->h, "Content-Type: application/octet-stream");
        if (r == 0 && range_header && len) {
                snprintf(line, sizeof line, "Content-Range: %llu-%llu", (unsigned long long) off,
                         (unsigned long long) (off + len - 1));
                r = http_req_header(q->h, line);
        }
        if (r == 0)
                r = reg_req_run(q);
        if (r == 0 && ret_location) {
                char *loc = absolute_location(reg, q->h->location);
                if (loc) {
                        free(*ret_location);
                        *ret_location = loc;
                }
        }
        reg_req_free(q);
        return r;
}

static bool transient(int r) {
        return r == -EAGAIN || r == -ECONNRESET || r == -EPIPE || r == -ETIMEDOUT || r == -ECONNREFUSED;
}

/* One whole upload attempt: session, body, commit. */
static int upload_once(struct registry *reg, const struct digest *d, int fd, uint64_t size) {
        _cleanup_free_ char *loc = NULL, *put = NULL, *param = NULL;
        char ds[DIGEST_STRING_MAX], what[128];
        long status = 0;
        int r;

        digest_to_string(d, ds);
        snprintf(what, sizeof what, "upload of blob %s", ds);
        r = upload_start(reg, NULL, NULL, &status, &loc, what);
        if (r < 0)
                return r;
        if (asprintf(&param, "digest=%s", ds) < 0)
                return -ENOMEM;
        if (size <= UPLOAD_MONOLITHIC_MAX) {
                put = url_with_query(loc, param);
                if (!put)
                        return -ENOMEM;
                r = upload_send(reg, "PUT", put, fd, 0, size, false, NULL, what);
                if (r < 0)
                        upload_cancel(reg, loc);
                return r;
        }
        for (uint64_t off = 0; off < size;) {
                uint64_t n = MIN(UPLOAD_CHUNK, size - off);

                r = upload_send(reg, "PATCH", loc, fd, off, n, true, &loc, what);
                if (r < 0) {
                        upload_cancel(reg, loc);
                        return r;
                }
                off += n;
        }
        put = url_with_query(loc, param);
        if (!put)
                return -ENOMEM;
        r = upload_send(reg, "PUT", put, fd, 0, 0, false, NULL, what);
        if (r < 0)
                upload_cancel(reg, loc);
        return r;
}

int reg_blob_put_fd(struct blob_source *s, const struct digest *d, int fd, uint64_t size) {
        struct registry *reg = s->priv;
        int r = -EIO;

        /* Upload sessions are not idempotent: a failed attempt starts over
         * with a new session (the registry checks the digest at commit). */
        for (unsigned i = 0; i < UPLOAD_TRIES; i++) {
                r = upload_once(reg, d, fd, size);
                if (r >= 0 || !transient(r))
                        break;
                log_debug("registry: upload attempt %u failed: %s", i + 1, strerror(-r));
        }
        return r;
}

int reg_blob_mount(struct blob_source *s, const struct digest *d, const struct image_ref *from) {
        struct registry *reg = s->priv;
        _cleanup_free_ char *query = NULL, *loc = NULL, *esc_from = NULL;
        char ds[DIGEST_STRING_MAX], scope[512], what[128];
        long status = 0;
        int r;

        if (from->transport != REF_DOCKER || strcmp(from->registry, reg->host) != 0)
                return -EXDEV;
        if (!strcmp(from->repository, reg->repo))
                return -ENOENT; /* same repository: stat said it is not there */
        esc_from = curl_easy_escape(NULL, from->repository, 0);
        if (!esc_from || asprintf(&query, "?mount=%s&from=%s", digest_to_string(d, ds), esc_from) < 0)
                return -ENOMEM;
        snprintf(what, sizeof what, "mount of blob %s from %s", ds, from->repository);
        r = upload_start(reg, query, auth_scope(from->repository, false, scope, sizeof scope), &status, &loc, what);
        if (r < 0)
                return r;
        if (status == 201)
                return 0;
        /* 202: the registry opened an upload session instead. */
        if (loc)
                upload_cancel(reg, loc);
        return -ENOENT;
}
