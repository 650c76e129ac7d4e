/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Registry mirrors (containers-registries.conf(5) [[registry.mirror]]).
 *
 * Reads of a registry that has mirrors try them in order, the origin
 * last: blobs always, manifests by digest unless the mirror is tag-only,
 * manifests by tag when the mirror's pull-from-mirror allows it ("all" or
 * "tag-only", and not mirror-by-digest-only). Pushes, uploads and the
 * referrers API go to the origin only. Each mirror is an endpoint of its
 * own (its http engine, TLS settings and auth state), so the one request
 * path of registry-req.c (reg_req_submit) moves a request between them by
 * changing q->reg and its URL; authentication works per endpoint as ever.
 *
 * A mirror that fails (a transport error, a 5xx, refused credentials),
 * or whose bytes do not match their digest (reg_mirror_blame, from the
 * verifier that checked them), is put aside for a while: 30 s, doubling
 * up to 10 min ($HOCUS_BLK_MIRROR_BACKOFF, seconds, sets the first step),
 * counted (source_stats.mirror_skips) and logged once per failure. A 404
 * only sends that request on: a mirror may lack what the origin has.
 *
 * Locking: the mirror table's state is guarded by the origin's lock.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "registry-internal.h"

#define BACKOFF_FIRST_NS (30ull * 1000000000ull)
#define BACKOFF_MAX_NS (600ull * 1000000000ull)

static uint64_t backoff_first_ns(void) {
        const char *e = getenv("HOCUS_BLK_MIRROR_BACKOFF");
        char *end;
        unsigned long v;

        if (!e || !*e)
                return BACKOFF_FIRST_NS;
        v = strtoul(e, &end, 10);
        return *end || v == 0 || v > 86400 ? BACKOFF_FIRST_NS : (uint64_t) v * 1000000000ull;
}

/* insecure = true: like containers/image, HTTPS without a certificate
 * check, and plain HTTP when the mirror does not speak TLS at all (a
 * LAN cache). Asked once, before any request can use the mirror. */
static void insecure_probe(struct reg_mirror *m) {
        struct registry *mr = m->reg;
        char *base;
        int r;

        r = registry_ping(mr, NULL, 0);
        if (r != -EPROTO)
                return;
        if (asprintf(&base, "http://%s", mr->host) < 0)
                return;
        free(mr->base);
        mr->base = base;
        mr->plain_http = true;
        log_debug("registry: insecure mirror %s speaks no TLS; using plain HTTP", m->location);
}

int reg_mirrors_open(struct registry *reg, const struct regconf_registry *e, const char *name, char *err,
                     size_t errlen) {
        if (!e || !e->n_mirrors)
                return 0;
        reg->mirrors = calloc(e->n_mirrors, sizeof *reg->mirrors);
        if (!reg->mirrors)
                return -ENOMEM;
        reg->digest_only = e->digest_only;
        for (size_t i = 0; i < e->n_mirrors; i++) {
                const struct regconf_mirror *cm = &e->mirrors[i];
                struct reg_mirror *m = &reg->mirrors[reg->n_mirrors];
                _cleanup_free_ char *mname = NULL;
                char *slash;
                int r;

                r = regconf_rewrite(e, cm->location, name, &mname);
                if (r < 0)
                        return r;
                slash = strchr(mname, '/');
                if (!slash)
                        return err_set(err, errlen, -EINVAL, "%s: mirror \"%s\" leaves no repository for %s", e->file,
                                       cm->location, name);
                *slash = 0;
                m->location = strdup(cm->location);
                if (!m->location)
                        return -ENOMEM;
                m->pull = cm->pull;
                m->insecure = cm->insecure;
                r = registry_endpoint_new(&reg->opts, mname, slash + 1, cm->insecure, true, &m->reg, err, errlen);
                if (r < 0) {
                        free(m->location);
                        return r;
                }
                m->reg->origin = reg;
                reg->n_mirrors++;
                if (cm->insecure && !reg->opts.plain_http)
                        insecure_probe(m);
                log_debug("registry: %s: mirror %zu is %s/%s", reg->host, reg->n_mirrors, mname, slash + 1);
        }
        return 0;
}

void reg_mirrors_free(struct registry *reg) {
        for (size_t i = 0; i < reg->n_mirrors; i++) {
                registry_endpoint_free(reg->mirrors[i].reg);
                free(reg->mirrors[i].location);
        }
        free(reg->mirrors);
        reg->mirrors = NULL;
        reg->n_mirrors = 0;
}

void reg_req_classify(struct reg_req *q, const char *method, bool push) {
        const char *p = q->path;

        q->kind = REQ_ORIGIN_ONLY;
        if (push || q->origin->push || !p || (strcmp(method, "GET") && strcmp(method, "HEAD")))
                return;
        if (!strncmp(p, "/blobs/", 7) && digest_parse(p + 7, &q->digest) == 0)
                q->kind = REQ_BLOB;
        else if (!strncmp(p, "/manifests/", 11) && digest_parse(p + 11, &q->digest) == 0)
                q->kind = REQ_MANIFEST_DIGEST;
        else if (!strncmp(p, "/manifests/", 11) && !strchr(p + 11, '/'))
                q->kind = REQ_MANIFEST_TAG;
}

/* May mirror i answer q now? Caller holds the origin's lock. */
static bool usable_locked(const struct reg_req *q, size_t i, uint64_t now) {
        const struct reg_mirror *m = &q->origin->mirrors[i];

        if (now < m->skip_until_ns)
                return false;
        switch (q->kind) {
        case REQ_BLOB:
                return true;
        case REQ_MANIFEST_DIGEST:
                return m->pull != REGCONF_PULL_TAG_ONLY;
        case REQ_MANIFEST_TAG:
                return m->pull != REGCONF_PULL_DIGEST_ONLY && !q->origin->digest_only;
        default:
                return false;
        }
}

int reg_req_route(struct reg_req *q, int after) {
        struct registry *o = q->origin, *to;
        _cleanup_free_ char *url = NULL, *scopes = NULL;
        uint64_t now = now_ns();
        int next = REG_ORIGIN;
        char scope[512];

        if (q->kind == REQ_ORIGIN_ONLY || !o->n_mirrors || after == REG_ORIGIN) {
                q->endpoint = REG_ORIGIN;
                return 0;
        }
        pthread_mutex_lock(&o->lock);
        for (size_t i = after == REG_UNCHOSEN ? 0 : (size_t) after + 1; i < o->n_mirrors; i++)
                if (usable_locked(q, i, now)) {
                        next = (int) i;
                        break;
                }
        pthread_mutex_unlock(&o->lock);
        to = next == REG_ORIGIN ? o : o->mirrors[next].reg;
        if (next == q->endpoint || (q->endpoint == REG_UNCHOSEN && next == REG_ORIGIN)) {
                q->endpoint = next;
                return 0;
        }
        if (asprintf(&url, "%s/v2/%s%s", to->base, to->repo, q->path) < 0) {
                url = NULL;
                return -ENOMEM;
        }
        scopes = strdup(auth_scope(to->repo, false, scope, sizeof scope));
        if (!scopes)
                return -ENOMEM;
        free(q->h->url);
        q->h->url = TAKE_PTR(url);
        free(q->scopes);
        q->scopes = TAKE_PTR(scopes);
        q->endpoint = next;
        __atomic_store_n(&q->reg, to, __ATOMIC_RELEASE);
        return 0;
}

/* Put m aside after a failure, unless it is already: then false (it was
 * counted and logged then). Caller holds the origin's lock. */
static bool put_aside_locked(struct registry *o, struct reg_mirror *m, uint64_t now, uint64_t *ret_wait) {
        uint64_t first = backoff_first_ns();

        if (now < m->skip_until_ns)
                return false;
        *ret_wait = MIN(first << MIN(m->failures, 16u), MAX(BACKOFF_MAX_NS, first));
        m->failures++;
        m->skip_until_ns = now + *ret_wait;
        o->mirror_skips++;
        return true;
}

bool reg_mirror_failed(struct reg_req *q, int r) {
        struct registry *o = q->origin;
        struct reg_mirror *m = &o->mirrors[q->endpoint];
        char why[512];
        uint64_t now = now_ns(), wait = 0;
        bool first;

        if (r == -ENOENT)
                return true;
        pthread_mutex_lock(&q->reg->lock);
        snprintf(why, sizeof why, "%s", q->reg->last_errno == r && q->reg->last_error[0] ? q->reg->last_error : strerror(-r));
        pthread_mutex_unlock(&q->reg->lock);
        pthread_mutex_lock(&o->lock);
        /* Many requests in flight fail together: put it aside once. */
        first = put_aside_locked(o, m, now, &wait);
        pthread_mutex_unlock(&o->lock);
        if (first)
                log_warning("Mirror %s of %s failed, skipped for %llu s: %s", m->location, o->host,
                            (unsigned long long) (wait / 1000000000ull), why);
        return true;
}

/* Remember that endpoint served d. Caller holds the origin's lock. */
static void served_locked(struct registry *o, const struct digest *d, int endpoint) {
        struct reg_served *slot = NULL;

        for (unsigned i = 0; i < REG_SERVED_MAX && !slot; i++)
                if (o->served[i].used && digest_equal(&o->served[i].d, d))
                        slot = &o->served[i];
        if (!slot)
                slot = &o->served[o->next_served++ % REG_SERVED_MAX];
        *slot = (struct reg_served) { .d = *d, .endpoint = endpoint, .used = true };
}

void reg_mirror_served(struct reg_req *q) {
        struct registry *o = q->origin;

        if (q->kind == REQ_ORIGIN_ONLY)
                return;
        /* A manifest by tag is known by the digest of what came. */
        if (q->kind == REQ_MANIFEST_TAG) {
                if (!q->h->resp_body || strcmp(q->h->method, "GET"))
                        return;
                digest_compute(q->h->resp_body, q->h->resp_len, &q->digest);
        }
        pthread_mutex_lock(&o->lock);
        served_locked(o, &q->digest, q->endpoint);
        if (q->endpoint >= 0) {
                o->mirror_reads++;
                o->mirrors[q->endpoint].failures = 0;
        }
        pthread_mutex_unlock(&o->lock);
}

int reg_mirror_blame(struct registry *o, const struct digest *d) {
        struct reg_mirror *m = NULL;
        uint64_t now = now_ns(), wait = 0;
        bool first = false;

        pthread_mutex_lock(&o->lock);
        for (unsigned i = 0; i < REG_SERVED_MAX; i++)
                if (o->served[i].used && digest_equal(&o->served[i].d, d)) {
                        if (o->served[i].endpoint >= 0)
                                m = &o->mirrors[o->served[i].endpoint];
                        o->served[i].used = false;
                        break;
                }
        if (m)
                first = put_aside_locked(o, m, now, &wait);
        pthread_mutex_unlock(&o->lock);
        if (first) {
                char ds[DIGEST_STRING_MAX];
                log_warning("Mirror %s of %s served bytes of %s that do not match their digest, skipped for %llu s",
                            m->location, o->host, digest_to_string(d, ds), (unsigned long long) (wait / 1000000000ull));
        }
        return m ? 1 : 0;
}

const char *reg_mirror_served_by(struct registry *o, const struct digest *d, char *buf, size_t len) {
        const char *ret = NULL;

        pthread_mutex_lock(&o->lock);
        for (unsigned i = 0; i < REG_SERVED_MAX; i++)
                if (o->served[i].used && digest_equal(&o->served[i].d, d)) {
                        int ep = o->served[i].endpoint;
                        if (ep >= 0)
                                snprintf(buf, len, "%s/%s (mirror)", o->mirrors[ep].reg->host, o->mirrors[ep].reg->repo);
                        else
                                snprintf(buf, len, "%s/%s", o->host, o->repo);
                        ret = buf;
                        break;
                }
        pthread_mutex_unlock(&o->lock);
        return ret;
}
