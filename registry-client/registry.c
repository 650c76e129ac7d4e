/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The docker:// backend: the OCI distribution API (distribution-spec
 * spec.md) over the http engine, behind the blob source interface.
 *
 *   manifest_get   GET  /v2/R/manifests/REF      (Accept: OCI + docker types)
 *   manifest_put   PUT  /v2/R/manifests/TAG|DIGEST, then the referrers tag
 *                  index when the manifest has a subject and the registry
 *                  does not answer OCI-Subject
 *   blob_stat      HEAD /v2/R/blobs/D
 *   blob_read      GET  /v2/R/blobs/D with Range (206; a 200 is skipped
 *                  through to the offset), redirects followed
 *   blob_put_fd    (registry-upload.c) POST /v2/R/blobs/uploads/ then PUT ?digest= (monolithic)
 *                  or PATCHes of UPLOAD_CHUNK bytes then PUT (large blobs)
 *   blob_mount     (registry-upload.c) POST ...?mount=D&from=R2 (201 = done)
 *   referrers_get  GET  /v2/R/referrers/D, falling back to the tag sha256-HEX
 *
 * Every request goes through reg_req (registry-req.c) for authentication.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "certs-d.h"
#include "errors.h"
#include "manifest.h"
#include "registry-internal.h"

#define ACCEPT_MANIFESTS                                                                              \
        "Accept: " MT_OCI_MANIFEST ", " MT_OCI_INDEX ", " MT_DOCKER_MANIFEST ", " MT_DOCKER_LIST

static const char *digest_str(const struct digest *d, char *buf) {
        return digest_to_string(d, buf);
}

/* ---- manifests ---------------------------------------------------------- */

static int reg_manifest_get(struct blob_source *s, const char *reference, char **ret_media_type, char **ret_body,
                            size_t *ret_len) {
        struct registry *reg = s->priv;
        _cleanup_free_ char *path = NULL, *what = NULL;
        struct reg_req *q;
        char *mt;
        int r;

        if (!reference)
                return -EINVAL;
        if (asprintf(&path, "/manifests/%s", reference) < 0 || asprintf(&what, "manifest %s", reference) < 0)
                return -ENOMEM;
        q = reg_req_new(reg, "GET", path, false, what);
        if (!q)
                return -ENOMEM;
        q->h->retry_ok = true;
        q->h->follow = true;
        q->h->body_max = MANIFEST_MAX;
        r = http_req_header(q->h, ACCEPT_MANIFESTS);
        if (r == 0)
                r = reg_req_run(q);
        if (r == -EFBIG)
                r = reg_fail(reg, r, "%s: manifest %s is larger than %u bytes", reg->host, reference, MANIFEST_MAX);
        if (r < 0)
                goto out;
        if (q->h->content_type)
                mt = strndup(q->h->content_type, strcspn(q->h->content_type, "; "));
        else {
                /* No Content-Type: believe the document's own mediaType. */
                struct json_object *root = json_tokener_parse(q->h->resp_body ? q->h->resp_body : ""), *o;
                mt = strdup(root && json_object_object_get_ex(root, "mediaType", &o) ? json_object_get_string(o)
                                                                                     : MT_OCI_MANIFEST);
                json_object_put(root);
        }
        if (!mt) {
                r = -ENOMEM;
                goto out;
        }
        *ret_media_type = mt;
        *ret_len = q->h->resp_len;
        *ret_body = q->h->resp_body ? q->h->resp_body : strdup("");
        q->h->resp_body = NULL;
        r = *ret_body ? 0 : -ENOMEM;
out:
        reg_req_free(q);
        return r;
}

/* PUT one manifest under reference (a tag or a digest). Sets
 * *ret_subject_header (may be NULL) when the registry answered OCI-Subject. */
static int put_manifest(struct registry *reg, const char *reference, const char *media_type, const void *body,
                        size_t len, bool *ret_subject_header) {
        _cleanup_free_ char *path = NULL, *ct = NULL, *what = NULL;
        struct reg_req *q;
        int r;

        if (asprintf(&path, "/manifests/%s", reference) < 0 || asprintf(&ct, "Content-Type: %s", media_type) < 0 ||
            asprintf(&what, "manifest %s", reference) < 0)
                return -ENOMEM;
        q = reg_req_new(reg, "PUT", path, true, what);
        if (!q)
                return -ENOMEM;
        q->h->retry_ok = true; /* idempotent */
        q->h->body_buf = body;
        q->h->body_len = len;
        q->h->has_body = true;
        r = http_req_header(q->h, ct);
        if (r == 0)
                r = reg_req_run(q);
        if (r == 0 && ret_subject_header)
                *ret_subject_header = q->h->oci_subject != NULL;
        reg_req_free(q);
        return r;
}

/* The subject digest and the annotations of a manifest, if it has one. */
static int manifest_subject(const void *body, size_t len, struct digest *ret, struct json_object **ret_ann,
                            char **ret_artifact_type) {
        struct json_tokener *tok = json_tokener_new();
        struct json_object *root, *subj, *d, *o;
        int r = -ENOENT;

        if (!tok)
                return -ENOMEM;
        root = json_tokener_parse_ex(tok, body, (int) len);
        json_tokener_free(tok);
        if (root && json_object_object_get_ex(root, "subject", &subj) && json_object_object_get_ex(subj, "digest", &d) &&
            digest_parse(json_object_get_string(d), ret) == 0) {
                r = 0;
                if (json_object_object_get_ex(root, "annotations", &o))
                        *ret_ann = json_object_get(o);
                if (json_object_object_get_ex(root, "artifactType", &o))
                        *ret_artifact_type = strdup(json_object_get_string(o));
                else if (json_object_object_get_ex(root, "config", &o) &&
                         json_object_object_get_ex(o, "mediaType", &o))
                        *ret_artifact_type = strdup(json_object_get_string(o));
        }
        json_object_put(root);
        return r;
}

/*
 * The referrers tag schema (distribution-spec, "Referrers Tag Schema"): on
 * a registry without the referrers API, the image index tagged
 * sha256-<hex of the subject> lists the manifests that refer to it. Add
 * (or replace) the descriptor of the manifest just pushed. Two concurrent
 * writers can lose an entry (the registry offers no conditional PUT);
 * the profile work re-runs this when it finds its entry missing.
 */
static int referrers_tag_add(struct registry *reg, const struct digest *subject, const char *media_type,
                             const char *artifact_type, const void *body, size_t len) {
        struct json_object *ann = NULL, *root = NULL, *list, *keep, *desc;
        _cleanup_free_ char *at = NULL, *old_mt = NULL, *old = NULL;
        char tag[DIGEST_HEX_LEN + 8], hex[DIGEST_HEX_LEN + 1], ds[DIGEST_STRING_MAX];
        struct digest d, unused;
        size_t old_len;
        const char *text;
        int r;

        r = manifest_subject(body, len, &unused, &ann, &at);
        if (r < 0)
                return r;
        snprintf(tag, sizeof tag, "sha256-%s", digest_to_hex(subject, hex));
        digest_compute(body, len, &d);
        digest_to_string(&d, ds);

        r = reg_manifest_get(&(struct blob_source) { .priv = reg }, tag, &old_mt, &old, &old_len);
        if (r == 0)
                root = json_tokener_parse(old);
        else if (r != -ENOENT)
                goto out;
        if (!root || !json_object_object_get_ex(root, "manifests", &list) ||
            !json_object_is_type(list, json_type_array)) {
                json_object_put(root);
                root = json_object_new_object();
                json_object_object_add(root, "schemaVersion", json_object_new_int(2));
                json_object_object_add(root, "mediaType", json_object_new_string(MT_OCI_INDEX));
                list = NULL;
        }
        keep = json_object_new_array();
        for (size_t i = 0; list && i < json_object_array_length(list); i++) {
                struct json_object *m = json_object_array_get_idx(list, i), *o;
                if (json_object_object_get_ex(m, "digest", &o) && !strcmp(json_object_get_string(o), ds))
                        continue;
                json_object_array_add(keep, json_object_get(m));
        }
        desc = json_object_new_object();
        json_object_object_add(desc, "mediaType", json_object_new_string(media_type));
        json_object_object_add(desc, "digest", json_object_new_string(ds));
        json_object_object_add(desc, "size", json_object_new_int64((int64_t) len));
        if (artifact_type || at)
                json_object_object_add(desc, "artifactType", json_object_new_string(artifact_type ? artifact_type : at));
        if (ann)
                json_object_object_add(desc, "annotations", json_object_get(ann));
        json_object_array_add(keep, desc);
        json_object_object_add(root, "manifests", keep);
        text = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        r = put_manifest(reg, tag, MT_OCI_INDEX, text, strlen(text), NULL);
out:
        json_object_put(root);
        json_object_put(ann);
        return r;
}

static int reg_manifest_put(struct blob_source *s, const char *tag, const char *media_type, const char *artifact_type,
                            const void *body, size_t len) {
        struct registry *reg = s->priv;
        char ds[DIGEST_STRING_MAX];
        struct json_object *ann = NULL;
        _cleanup_free_ char *at = NULL;
        struct digest d, subject;
        bool subject_header = false;
        int r;

        digest_compute(body, len, &d);
        r = put_manifest(reg, tag ? tag : digest_str(&d, ds), media_type, body, len, &subject_header);
        if (r < 0)
                return r;
        if (manifest_subject(body, len, &subject, &ann, &at) == 0 && !subject_header) {
                json_object_put(ann);
                r = referrers_tag_add(reg, &subject, media_type, artifact_type, body, len);
                log_debug("registry: referrers tag index for %s: %s", digest_str(&subject, ds),
                          r < 0 ? strerror(-r) : "updated");
        }
        return r;
}

/* ---- referrers ---------------------------------------------------------- */

static int reg_referrers_get(struct blob_source *s, const struct digest *d, char **ret_body, size_t *ret_len) {
        static const char empty[] = "{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_INDEX "\",\"manifests\":[]}";
        struct registry *reg = s->priv;
        _cleanup_free_ char *path = NULL, *mt = NULL;
        char ds[DIGEST_STRING_MAX], hex[DIGEST_HEX_LEN + 1], tag[DIGEST_HEX_LEN + 8];
        struct reg_req *q;
        int r;

        if (asprintf(&path, "/referrers/%s", digest_str(d, ds)) < 0)
                return -ENOMEM;
        q = reg_req_new(reg, "GET", path, false, "referrers");
        if (!q)
                return -ENOMEM;
        q->h->retry_ok = true;
        q->h->follow = true;
        q->h->body_max = MANIFEST_MAX;
        r = http_req_header(q->h, "Accept: " MT_OCI_INDEX);
        if (r == 0)
                r = reg_req_run(q);
        if (r == 0 && q->h->content_type && !strncmp(q->h->content_type, MT_OCI_INDEX, strlen(MT_OCI_INDEX))) {
                *ret_len = q->h->resp_len;
                *ret_body = TAKE_PTR(q->h->resp_body);
                reg_req_free(q);
                return 0;
        }
        reg_req_free(q);
        if (r < 0 && r != -ENOENT)
                return r;
        /* No referrers API (404): the tag schema. */
        snprintf(tag, sizeof tag, "sha256-%s", digest_to_hex(d, hex));
        r = reg_manifest_get(s, tag, &mt, ret_body, ret_len);
        if (r == -ENOENT) {
                *ret_body = strdup(empty);
                *ret_len = strlen(empty);
                return *ret_body ? 0 : -ENOMEM;
        }
        return r;
}

/* ---- blobs -------------------------------------------------------------- */

static int reg_blob_stat(struct blob_source *s, const struct digest *d, uint64_t *ret_size) {
        struct registry *reg = s->priv;
        char ds[DIGEST_STRING_MAX], path[128], what[128];
        struct reg_req *q;
        int r;

        snprintf(path, sizeof path, "/blobs/%s", digest_str(d, ds));
        snprintf(what, sizeof what, "blob %s", ds);
        q = reg_req_new(reg, "HEAD", path, reg->push, what);
        if (!q)
                return -ENOMEM;
        q->h->retry_ok = !reg->opts.ping_once;
        q->h->follow = true;
        r = reg_req_run(q);
        if (r == 0) {
                if (q->h->content_length < 0)
                        r = reg_fail(reg, -EPROTO, "%s: HEAD of blob %s has no Content-Length", reg->host, ds);
                else
                        *ret_size = (uint64_t) q->h->content_length;
        }
        reg_req_free(q);
        return r;
}

static struct reg_req *read_req(struct registry *reg, const struct digest *d, uint64_t off, void *buf, size_t len) {
        char ds[DIGEST_STRING_MAX], path[128], what[192];
        struct reg_req *q;

        snprintf(path, sizeof path, "/blobs/%s", digest_str(d, ds));
        snprintf(what, sizeof what, "blob %s [%llu, +%zu)", ds, (unsigned long long) off, len);
        q = reg_req_new(reg, "GET", path, false, what);
        if (!q)
                return NULL;
        q->h->retry_ok = true;
        q->h->follow = true;
        q->h->dst = buf;
        q->h->dst_len = len;
        q->h->range_off = off;
        return q;
}

static void note_range(struct registry *reg, struct reg_req *q) {
        if (q->r == 0 && q->h->range_ignored && !reg->warned_range) {
                reg->warned_range = true;
                log_debug("registry: %s ignores Range requests; reading through whole blobs", reg->host);
        }
}

static int reg_blob_read(struct blob_source *s, const struct digest *d, uint64_t off, void *buf, size_t len) {
        struct registry *reg = s->priv;
        struct reg_req *q;
        int r;

        if (len == 0)
                return 0;
        q = read_req(reg, d, off, buf, len);
        if (!q)
                return -ENOMEM;
        r = reg_req_run(q);
        note_range(reg, q);
        reg_req_free(q);
        return r;
}

static void aio_done(struct reg_req *q) {
        struct source_aio *a = q->userdata;

        note_range(q->reg, q);
        a->local_port = q->h->local_port > 0 ? (unsigned) q->h->local_port : 0;
        a->protocol = http_version_name(q->h->http_version);
        a->demand_conn = q->reg->http_demand && reg_req_engine(q, q->reg) == q->reg->http_demand;
        a->done(a, q->r);
        reg_req_free(q);
}

static int reg_blob_read_async(struct blob_source *s, struct source_aio *a) {
        struct registry *reg = s->priv;
        struct reg_req *q;

        if (a->len == 0)
                return -EINVAL;
        q = read_req(reg, &a->digest, a->off, a->buf, a->len);
        if (!q)
                return -ENOMEM;
        q->h->deadline_ns = a->deadline_ns;
        q->demand = a->demand;
        q->done = aio_done;
        q->userdata = a;
        a->backend = q;
        reg_req_submit(q);
        return 0;
}

static void reg_blob_read_cancel(struct blob_source *s, struct source_aio *a) {
        if (a->backend)
                reg_req_cancel(a->backend);
}

/* ---- the rest of the source --------------------------------------------- */

/* Add an engine's counters to ret (demand: it is a demand engine).
 * Returns the engine's last HTTP version. */
static long add_engine_stats(struct http_engine *e, bool demand, struct source_stats *ret) {
        struct http_stats st;

        if (!e)
                return 0;
        http_engine_stats(e, &st);
        ret->requests += st.requests;
        ret->retries += st.retries;
        ret->connections += st.connections;
        ret->bytes_down += st.bytes_down;
        ret->bytes_up += st.bytes_up;
        if (demand) {
                ret->demand_requests += st.requests;
                ret->demand_connections += st.connections;
        }
        return st.http_version;
}

static void reg_stats(struct blob_source *s, struct source_stats *ret) {
        struct registry *reg = s->priv;
        long version, demand_version;

        *ret = (struct source_stats) { 0 };
        version = add_engine_stats(reg->http, false, ret);
        demand_version = add_engine_stats(reg->http_demand, true, ret);
        /* Mirrors' traffic is the source's too. */
        for (size_t i = 0; i < reg->n_mirrors; i++) {
                (void) add_engine_stats(reg->mirrors[i].reg->http, false, ret);
                (void) add_engine_stats(reg->mirrors[i].reg->http_demand, true, ret);
        }
        pthread_mutex_lock(&reg->lock);
        ret->mirror_reads = reg->mirror_reads;
        ret->mirror_skips = reg->mirror_skips;
        pthread_mutex_unlock(&reg->lock);
        ret->protocol = http_version_name(version ?: demand_version);
}

static int reg_blob_bad(struct blob_source *s, const struct digest *d) {
        return reg_mirror_blame(s->priv, d);
}

static const char *reg_served_by(struct blob_source *s, const struct digest *d, char *buf, size_t len) {
        return reg_mirror_served_by(s->priv, d, buf, len);
}

static const char *reg_describe_error(struct blob_source *s, int r, char *buf, size_t len) {
        struct registry *reg = s->priv;
        const char *ret = NULL;

        pthread_mutex_lock(&reg->lock);
        if (reg->last_errno == r && reg->last_error[0]) {
                snprintf(buf, len, "%s", reg->last_error);
                ret = buf;
        }
        pthread_mutex_unlock(&reg->lock);
        return ret;
}

void registry_endpoint_free(struct registry *reg) {
        if (!reg)
                return;
        reg_mirrors_free(reg);
        http_engine_free(reg->http_demand);
        http_engine_free(reg->http);
        for (unsigned i = 0; i < REG_TOKENS_MAX; i++) {
                if (reg->tokens[i].value) {
                        explicit_bzero(reg->tokens[i].value, strlen(reg->tokens[i].value));
                        free(reg->tokens[i].value);
                }
                free(reg->tokens[i].scopes);
        }
        credentials_done(&reg->creds);
        free(reg->realm);
        free(reg->service);
        free(reg->base);
        free(reg->host);
        free(reg->repo);
        pthread_mutex_destroy(&reg->lock);
        free(reg);
}

static void reg_free(struct blob_source *s) {
        registry_endpoint_free(s->priv);
}

static int reg_probe(struct blob_source *s, char *err, size_t errlen);

static const struct blob_source_ops registry_ops = {
        .name = "registry",
        .manifest_get = reg_manifest_get,
        .manifest_put = reg_manifest_put,
        .blob_stat = reg_blob_stat,
        .blob_read = reg_blob_read,
        .blob_put_fd = reg_blob_put_fd,
        .blob_mount = reg_blob_mount,
        .referrers_get = reg_referrers_get,
        .blob_read_async = reg_blob_read_async,
        .blob_read_cancel = reg_blob_read_cancel,
        .blob_bad = reg_blob_bad,
        .served_by = reg_served_by,
        .stats = reg_stats,
        .describe_error = reg_describe_error,
        .probe = reg_probe,
        .free = reg_free,
};

/*
 * GET /v2/: is anyone there, does it speak the distribution API, and what
 * authentication does it want. A 401 with a challenge sets the scheme;
 * then a second ping with credentials checks them, so a wrong password
 * fails here and not after a push has read the whole image.
 */
int registry_ping(struct registry *reg, char *err, size_t errlen) {
        struct reg_req *q;
        int r;

        q = reg_req_new(reg, "GET", "", reg->push, "GET /v2/");
        if (!q)
                return -ENOMEM;
        free(q->h->url);
        if (asprintf(&q->h->url, "%s/v2/", reg->base) < 0) {
                q->h->url = NULL;
                reg_req_free(q);
                return -ENOMEM;
        }
        q->h->retry_ok = !reg->opts.ping_once;
        q->h->follow = true;
        r = reg_req_run(q);
        if (r == -ENOENT) {
                r = reg_fail(reg, -EPROTONOSUPPORT, "%s does not implement the OCI distribution API (GET /v2/ answered 404)",
                             reg->host);
                /* Not from last_error: a request beside this one may have failed since. */
                if (err && errlen)
                        err_set(err, errlen, r, "%s does not implement the OCI distribution API (GET /v2/ answered 404)",
                                reg->host);
        } else if (r < 0 && err && errlen &&
                   !reg_describe_error(&(struct blob_source) { .priv = reg }, r, err, errlen))
                err_set(err, errlen, r, "%m");
        if (r == 0) {
                pthread_mutex_lock(&reg->lock);
                if (reg->scheme == AUTH_UNKNOWN)
                        reg->scheme = AUTH_NONE;
                pthread_mutex_unlock(&reg->lock);
        }
        log_debug("registry: %s: %s, auth %s", reg->host, r < 0 ? strerror(-r) : "reachable",
                  reg->scheme == AUTH_BEARER ? "bearer" : reg->scheme == AUTH_BASIC ? "basic" : "none");
        reg_req_free(q);
        return r;
}

/* A mirror's connections: one retry, not five, and a shorter connect
 * timeout: the origin stands behind it. */
#define MIRROR_ATTEMPTS 2
#define MIRROR_CONNECT_TIMEOUT_S 3

int registry_endpoint_new(const struct source_options *o, const char *host, const char *repo, bool insecure,
                          bool mirror, struct registry **ret, char *err, size_t errlen) {
        struct http_config hc = {
                .connect_timeout_s = o->connect_timeout_s,
                .stall_timeout_s = o->stall_timeout_s,
                .max_attempts = o->max_attempts,
                .max_host_connections = o->max_connections,
        };
        struct registry_tls tls = { 0 };
        struct registry *reg;
        int r;

        if (mirror) {
                hc.max_attempts = MIN(o->max_attempts ? o->max_attempts : MIRROR_ATTEMPTS, MIRROR_ATTEMPTS);
                hc.connect_timeout_s = MIN(o->connect_timeout_s ? o->connect_timeout_s : MIRROR_CONNECT_TIMEOUT_S,
                                           MIRROR_CONNECT_TIMEOUT_S);
        }
        reg = calloc(1, sizeof *reg);
        if (!reg)
                return -ENOMEM;
        pthread_mutex_init(&reg->lock, NULL);
        reg->opts = *o;
        /* --creds are the origin's: a mirror is another host, whose
         * credentials come from the auth files under its own name. */
        if (mirror)
                reg->opts.creds = NULL;
        reg->plain_http = o->plain_http;
        reg->push = o->create && !mirror;
        reg->host = strdup(host);
        reg->repo = strdup(repo);
        if (!reg->host || !reg->repo || asprintf(&reg->base, "%s://%s", o->plain_http ? "http" : "https", host) < 0) {
                reg->base = NULL;
                r = -ENOMEM;
                goto fail;
        }
        r = registry_tls_setup(o, reg->host, insecure, &tls, &hc, err, errlen);
        if (r < 0)
                goto fail;
        reg->client_cert = tls.client_cert != NULL;
        r = http_engine_new(&hc, &reg->http);
        /* The demand engine: the same code and settings, its own pool. */
        if (r >= 0 && o->demand_conns && !reg->push)
                r = http_engine_new(&hc, &reg->http_demand);
        registry_tls_done(&tls);
        if (r < 0)
                goto fail;
        *ret = reg;
        return 0;
fail:
        registry_endpoint_free(reg);
        return r;
}

/* Network trouble (as opposed to an answer): with mirrors, the origin may
 * be unreachable while they serve. */
static bool unreachable(int r) {
        return r == -ECONNREFUSED || r == -ETIMEDOUT || r == -EHOSTUNREACH || r == -ENETUNREACH || r == -EAGAIN ||
               r == -ECONNRESET || r == -EPIPE;
}

/* The ping, and its verdict: with mirrors, an unreachable origin is no
 * failure (they serve). */
static int probe(struct registry *reg, char *err, size_t errlen) {
        int r = registry_ping(reg, err, errlen);

        if (r < 0 && reg->n_mirrors && unreachable(r)) {
                log_debug("registry: %s is unreachable (%s); reading through its mirrors", reg->host, strerror(-r));
                if (err && errlen)
                        err[0] = 0;
                r = 0;
        }
        return r;
}

static int reg_probe(struct blob_source *s, char *err, size_t errlen) {
        return probe(s->priv, err, errlen);
}

int registry_open(struct image_ref *ref, const struct source_options *o, struct blob_source **ret, char *err,
                  size_t errlen) {
        _cleanup_free_ char *name = NULL, *rewritten = NULL;
        const struct regconf_registry *e = NULL;
        struct regconf *conf = NULL;
        const char *host = ref->registry, *repo = ref->repository;
        struct blob_source *s;
        struct registry *reg = NULL;
        char cerr[512] = "";
        int r;

        if (asprintf(&name, "%s/%s", ref->registry, ref->repository) < 0)
                return -ENOMEM;
        /* registries.conf: blocked, a location elsewhere, mirrors; for
         * images only (login opens the registry itself, no repository). */
        if (ref->repository[0]) {
                r = regconf_load(&conf, cerr, sizeof cerr);
                if (r < 0)
                        return err_set(err, errlen, r, "registries.conf: %s", cerr);
                e = regconf_find(conf, name);
        }
        if (e && e->blocked) {
                r = err_set(err, errlen, -EACCES, "%s is blocked in %s (prefix \"%s\")", name, e->file, e->prefix);
                goto out;
        }
        if (e && e->location) {
                r = regconf_rewrite(e, NULL, name, &rewritten);
                if (r < 0)
                        goto out;
                if (!strchr(rewritten, '/')) {
                        r = err_set(err, errlen, -EINVAL, "%s: location \"%s\" leaves no repository for %s", e->file,
                                    e->location, name);
                        goto out;
                }
                rewritten[strcspn(rewritten, "/")] = 0;
                host = rewritten;
                repo = rewritten + strlen(rewritten) + 1;
        }
        s = calloc(1, sizeof *s);
        if (!s) {
                r = -ENOMEM;
                goto out;
        }
        s->ops = &registry_ops;
        r = registry_endpoint_new(o, host, repo, e && e->insecure, false, &reg, err, errlen);
        if (r < 0)
                goto fail;
        s->priv = reg;
        if (!o->create) {
                r = reg_mirrors_open(reg, e, name, err, errlen);
                if (r < 0)
                        goto fail;
        }
        r = o->ping_lazy ? 0 : probe(reg, err, errlen);
        if (r < 0)
                goto fail;
        s->ref = ref;
        *ret = s;
        r = 0;
        goto out;
fail:
        reg_free(s);
        free(s);
out:
        regconf_free(conf);
        return r;
}
