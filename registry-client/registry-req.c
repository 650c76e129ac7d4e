/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One logical registry request and its authentication (registry-internal.h).
 *
 * A request goes out with what the registry is known to want: nothing,
 * Basic credentials, or a Bearer token for its scopes. Tokens are reused
 * until shortly before they expire; when none is valid the request waits
 * for a token fetch (one per scope set, however many requests wait). A 401
 * teaches us the scheme (WWW-Authenticate), drops the token that was
 * refused, and sends the request again, at most three rounds. All of this
 * runs on the http engine's thread, without blocking, except looking up
 * credentials for a registry that first allowed anonymous access.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/debug-flags.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "errors.h"
#include "registry-internal.h"

#define TOKEN_BODY_MAX (256u << 10)
#define TOKEN_MARGIN_NS (10ULL * 1000000000ULL)
#define AUTH_ROUNDS_MAX 3
#define WAIT_NOTICE_NS (2 * 1000000000ull)     /* a synchronous request slower than this is logged */

struct token_fetch {
        struct registry *reg;
        char *scopes;
        struct http_req *h;
        struct reg_req *waiters;
        struct token_fetch *next;
};

int reg_fail(struct registry *reg, int r, const char *fmt, ...) {
        va_list ap;

        pthread_mutex_lock(&reg->lock);
        va_start(ap, fmt);
        err_setv(reg->last_error, sizeof reg->last_error, r, fmt, ap);
        va_end(ap);
        reg->last_errno = r;
        pthread_mutex_unlock(&reg->lock);
        return r;
}

struct reg_req *reg_req_new(struct registry *reg, const char *method, const char *path, bool push, const char *what) {
        _cleanup_free_ char *url = NULL;
        struct reg_req *q;
        char scope[512];

        if (!strncmp(path, "http://", 7) || !strncmp(path, "https://", 8))
                url = strdup(path);
        else if (asprintf(&url, "%s/v2/%s%s", reg->base, reg->repo, path) < 0)
                url = NULL;
        if (!url)
                return NULL;
        q = calloc(1, sizeof *q);
        if (!q)
                return NULL;
        q->reg = q->origin = reg;
        q->endpoint = REG_UNCHOSEN;
        if (!strncmp(path, "/", 1) && !(q->path = strdup(path))) {
                free(q);
                return NULL;
        }
        reg_req_classify(q, method, push);
        q->h = http_req_new(method, url);
        /* No repository (login checking credentials): a token without scope. */
        q->scopes = strdup(reg->repo[0] ? auth_scope(reg->repo, push, scope, sizeof scope) : "");
        q->what = strdup(what ? what : path);
        if (!q->h || !q->scopes || !q->what) {
                reg_req_free(q);
                return NULL;
        }
        q->h->userdata = q;
        return q;
}

void reg_req_free(struct reg_req *q) {
        if (!q)
                return;
        http_req_free(q->h);
        free(q->path);
        free(q->scopes);
        free(q->what);
        if (q->used_token) {
                explicit_bzero(q->used_token, strlen(q->used_token));
                free(q->used_token);
        }
        free(q);
}

int reg_credentials(struct registry *reg) {
        if (!reg->creds_looked_up) {
                reg->creds_r = credentials_find(&reg->opts, reg->host, reg->repo, &reg->creds);
                reg->creds_looked_up = true;
        }
        return reg->creds_r;
}

struct http_engine *reg_req_engine(const struct reg_req *q, const struct registry *reg) {
        return q->demand && reg->http_demand ? reg->http_demand : reg->http;
}

/* ---- completion ------------------------------------------------------- */

static const char *host_of(const struct registry *reg) {
        return reg->host;
}

/* The TLS alerts a server sends when it wants a client certificate we did
 * not give, or does not trust the one we gave. */
static bool client_cert_alert(const char *detail) {
        return strstr(detail, "alert bad certificate") || strstr(detail, "alert certificate required") ||
               strstr(detail, "alert unknown ca");
}

/* Describe a transport failure of h. */
static int describe_transport(struct registry *reg, struct http_req *h, const char *what) {
        const char *detail = h->errbuf[0] ? h->errbuf : strerror(-h->r);
        char tries[48] = "";

        if (h->attempts > 1)
                snprintf(tries, sizeof tries, " (after %u attempts)", h->attempts);
        if (!reg->plain_http && h->r != -ECANCELED && client_cert_alert(detail))
                return reg_fail(reg, -EKEYREJECTED,
                                reg->client_cert ? "%s refused our TLS client certificate (%s); check NAME.cert and NAME.key "
                                                   "in the certificate directory"
                                                 : "%s wants a TLS client certificate (%s): put client.cert and client.key "
                                                   "in /etc/containers/certs.d/%s/ or pass --cert-dir DIR",
                                host_of(reg), detail, host_of(reg));
        switch (h->r) {
        case -ECONNREFUSED:
                return reg_fail(reg, h->r, "cannot connect to %s: connection refused%s; is the registry running?",
                                host_of(reg), tries);
        case -EKEYREJECTED:
                return reg_fail(reg, h->r,
                                "the TLS certificate of %s is not trusted (%s); put the CA that signed it in "
                                "/etc/containers/certs.d/%s/ca.crt or pass --ca-file (--tls-verify=false skips the check)",
                                host_of(reg), detail, host_of(reg));
        case -EPROTO:
                if (h->curl_code == CURLE_SSL_CONNECT_ERROR && !reg->plain_http)
                        return reg_fail(reg, h->r,
                                        "TLS handshake with %s failed (%s); if the registry speaks plain HTTP, pass --plain-http",
                                        host_of(reg), detail);
                return reg_fail(reg, h->r, "%s: protocol error on %s: %s", host_of(reg), what, detail);
        case -ETIMEDOUT:
                return reg_fail(reg, h->r, "%s: %s timed out%s: %s", host_of(reg), what, tries, detail);
        case -ECONNRESET:
                /* Over HTTP/2 a refused client certificate shows as a lost
                 * connection, without the alert. */
                if (!reg->plain_http && !reg->client_cert && !strcmp(what, "GET /v2/"))
                        return reg_fail(reg, h->r,
                                        "%s: connection lost during %s%s: %s (if the registry requires a TLS client "
                                        "certificate, put client.cert and client.key in /etc/containers/certs.d/%s/ or "
                                        "pass --cert-dir DIR)",
                                        host_of(reg), what, tries, detail, host_of(reg));
                return reg_fail(reg, h->r, "%s: connection lost during %s%s: %s", host_of(reg), what, tries, detail);
        case -EPIPE: {
                /* Cut short: how much of how much says whether it is the
                 * registry, a proxy's limit, or the link. */
                uint64_t got = h->dst ? h->dst_got : h->resp_len;
                int64_t want = h->dst ? (int64_t) h->dst_len : h->content_length;
                char of[32] = "?";

                if (want >= 0)
                        snprintf(of, sizeof of, "%lld", (long long) want);
                return reg_fail(reg, h->r, "%s: the registry closed the reply to %s after %llu of %s bytes%s", host_of(reg),
                                what, (unsigned long long) got, of, tries);
        }
        case -ECANCELED:
                return h->r;
        default:
                return reg_fail(reg, h->r, "%s: %s failed%s: %s", host_of(reg), what, tries, detail);
        }
}

/* Map a non-2xx status to -errno with a sentence. */
static int describe_status(struct registry *reg, struct reg_req *q) {
        struct http_req *h = q->h;
        int r = http_status_to_errno(h->status);
        char text[256] = "", tries[48] = "";

        registry_error_text(h->resp_body, h->resp_len, text, sizeof text);
        if (h->attempts > 1)
                snprintf(tries, sizeof tries, " (after %u attempts)", h->attempts);
        if (h->status == 400 && reg->plain_http && h->resp_body && strstr(h->resp_body, "HTTPS"))
                return reg_fail(reg, -EPROTO, "%s speaks HTTPS, not plain HTTP: drop --plain-http", host_of(reg));
        if (strstr(text, "DIGEST_INVALID"))
                return reg_fail(reg, -EBADMSG, "%s: %s: the registry says the bytes do not match the digest (%s)",
                                host_of(reg), q->what, text);
        switch (h->status) {
        case 401:
                return reg_fail(reg, r, "%s: authentication failed for %s%s%s", host_of(reg), q->what,
                                text[0] ? ": " : "", text);
        case 403:
                return reg_fail(reg, r, "%s: access to %s denied%s%s", host_of(reg), q->what, text[0] ? ": " : "",
                                text);
        case 404:
                return reg_fail(reg, r, "%s/%s: %s not found%s%s", host_of(reg), reg->repo, q->what,
                                text[0] ? ": " : "", text);
        default:
                return reg_fail(reg, r, "%s: %s %s answered HTTP %ld%s%s%s", host_of(reg), h->method, q->what,
                                h->status, tries, text[0] ? ": " : "", text);
        }
}

static void reg_req_submit_to(struct reg_req *q);

/* The end of an attempt on one endpoint: a mirror that failed hands q to
 * the next endpoint (the origin last); else q is done. */
static void complete(struct reg_req *q, int r) {
        if (r < 0 && q->endpoint >= 0 && !atomic_load(&q->cancelled) && r != -ECANCELED && reg_mirror_failed(q, r)) {
                int e = reg_req_route(q, q->endpoint);
                if (e == 0) {
                        http_req_reset(q->h);
                        q->h->attempts = 0;
                        q->auth_rounds = 0;
                        reg_req_submit_to(q);
                        return;
                }
                r = e;
        }
        if (r == 0)
                reg_mirror_served(q);
        q->r = r;
        if (q->done)
                q->done(q);
}

static void token_fetch_start(struct registry *reg, struct reg_req *q);

/* Put credentials on q's http request for the next attempt, or park q on
 * a token fetch. Caller holds reg->lock. Returns true when q can go out. */
static bool prepare_locked(struct reg_req *q) {
        struct registry *reg = q->reg;
        uint64_t now = now_ns();

        if (q->used_token) {
                explicit_bzero(q->used_token, strlen(q->used_token));
                free(q->used_token);
                q->used_token = NULL;
        }
        if (q->no_auth) {
                http_req_set_auth(q->h, NULL, NULL, NULL);
                return true;
        }
        switch (reg->scheme) {
        case AUTH_BASIC:
                if (reg->creds_r == 0 && reg->creds.username)
                        http_req_set_auth(q->h, NULL, reg->creds.username, reg->creds.password);
                return true;
        case AUTH_BEARER:
                for (unsigned i = 0; i < REG_TOKENS_MAX; i++) {
                        struct reg_token *t = &reg->tokens[i];
                        if (t->value && !strcmp(t->scopes, q->scopes) && t->expires_ns > now) {
                                http_req_set_auth(q->h, t->value, NULL, NULL);
                                q->used_token = strdup(t->value);
                                return true;
                        }
                }
                token_fetch_start(reg, q);
                return false;
        default:
                http_req_set_auth(q->h, NULL, NULL, NULL);
                return true;
        }
}

static void on_http_done(struct http_req *h);

void reg_req_submit(struct reg_req *q) {
        /* The first submission picks the endpoint: a mirror, or the origin. */
        if (q->endpoint == REG_UNCHOSEN) {
                int r = reg_req_route(q, REG_UNCHOSEN);
                if (r < 0) {
                        complete(q, r);
                        return;
                }
        }
        reg_req_submit_to(q);
}

/* Submit q to the endpoint it is routed to (again, after a 401 or a token). */
static void reg_req_submit_to(struct reg_req *q) {
        struct registry *reg = q->reg;
        bool go;

        if (atomic_load(&q->cancelled)) {
                complete(q, -ECANCELED);
                return;
        }
        q->h->done = on_http_done;
        q->h->userdata = q;
        /* A lazy open's first requests stand in for its ping: tried once. */
        if (reg->opts.ping_lazy && !__atomic_load_n(&reg->answered, __ATOMIC_ACQUIRE))
                q->h->retry_ok = false;
        pthread_mutex_lock(&reg->lock);
        go = prepare_locked(q);
        pthread_mutex_unlock(&reg->lock);
        if (go)
                http_submit(reg_req_engine(q, reg), q->h);
}

/* A 401: learn from the challenge and decide whether another round can
 * succeed. Returns 0 to resubmit, or -EACCES (described). */
static int handle_401(struct reg_req *q) {
        struct registry *reg = q->reg;
        struct auth_challenge c = { 0 };
        int r;

        r = auth_challenge_parse(q->h->www_authenticate, &c);
        if (r == -EOPNOTSUPP)
                return reg_fail(reg, -EACCES, "%s asks for an authentication scheme hocus-blk does not speak (%s)",
                                host_of(reg), q->h->www_authenticate);
        if (r < 0)
                return reg_fail(reg, -EACCES, "%s: authentication required for %s, but the registry sent no usable challenge",
                                host_of(reg), q->what);
        pthread_mutex_lock(&reg->lock);
        if (c.scheme == AUTH_BASIC) {
                bool had = reg->scheme == AUTH_BASIC && reg->creds_r == 0 && q->h->basic_user;

                reg->scheme = AUTH_BASIC;
                r = reg_credentials(reg);
                pthread_mutex_unlock(&reg->lock);
                auth_challenge_done(&c);
                if (r == -ENOENT)
                        return reg_fail(reg, -EACCES,
                                        "%s requires authentication: pass --creds USER:PASS, --authfile FILE, or log in (auth.json)",
                                        host_of(reg));
                if (r == -ENOPKG)
                        return reg_fail(reg, -EACCES, "%s requires authentication: %s", host_of(reg), reg->creds.from);
                if (r < 0)
                        return reg_fail(reg, -EACCES, "%s requires authentication, and reading credentials failed: %s (%s)",
                                        host_of(reg), strerror(-r), reg->creds.from);
                if (had)
                        return reg_fail(reg, -EACCES, "%s: wrong username or password (credentials from %s)",
                                        host_of(reg), reg->creds.from);
                return 0;
        }
        /* Bearer. */
        if (!reg->realm || strcmp(reg->realm, c.realm) != 0) {
                free(reg->realm);
                reg->realm = c.realm;
                c.realm = NULL;
        }
        free(reg->service);
        reg->service = c.service;
        c.service = NULL;
        reg->scheme = AUTH_BEARER;
        if (c.scope) {
                char *merged = auth_scopes_merge(q->scopes, c.scope);
                if (merged) {
                        free(q->scopes);
                        q->scopes = merged;
                }
        }
        /* Forget the token the registry just refused. */
        if (q->used_token)
                for (unsigned i = 0; i < REG_TOKENS_MAX; i++)
                        if (reg->tokens[i].value && !strcmp(reg->tokens[i].value, q->used_token))
                                reg->tokens[i].expires_ns = 0;
        pthread_mutex_unlock(&reg->lock);
        if (q->used_token && c.error && !strcmp(c.error, "insufficient_scope")) {
                bool anon = reg->creds_r != 0;
                r = reg_fail(reg, -EACCES, "%s: the token service did not grant %s to %s (insufficient_scope)%s",
                             host_of(reg), q->scopes, anon ? "anonymous access" : reg->creds.from,
                             anon ? "; pass --creds USER:PASS or log in" : "");
                auth_challenge_done(&c);
                return r;
        }
        auth_challenge_done(&c);
        return 0;
}

static void on_http_done(struct http_req *h) {
        struct reg_req *q = h->userdata;
        struct registry *reg = q->reg;

        if (h->r < 0) {
                complete(q, describe_transport(reg, h, q->what));
                return;
        }
        __atomic_store_n(&reg->answered, true, __ATOMIC_RELEASE);
        if (h->status == 401 && !q->no_auth && q->auth_rounds < AUTH_ROUNDS_MAX) {
                int r = handle_401(q);
                if (r < 0) {
                        complete(q, r);
                        return;
                }
                q->auth_rounds++;
                http_req_reset(h);
                h->attempts = 0;
                reg_req_submit_to(q);
                return;
        }
        if (h->status == 401 && q->auth_rounds >= AUTH_ROUNDS_MAX) {
                complete(q, reg_fail(reg, -EACCES, "%s: still unauthorized for %s after %u authentication rounds",
                                     host_of(reg), q->what, q->auth_rounds));
                return;
        }
        if (h->status >= 200 && h->status < 300) {
                complete(q, 0);
                return;
        }
        complete(q, describe_status(reg, q));
}

/* ---- Bearer tokens ------------------------------------------------------ */

static void token_store_locked(struct registry *reg, const char *scopes, char *value, unsigned expires_in) {
        struct reg_token *t = NULL;

        for (unsigned i = 0; i < REG_TOKENS_MAX; i++)
                if (reg->tokens[i].scopes && !strcmp(reg->tokens[i].scopes, scopes))
                        t = &reg->tokens[i];
        if (!t)
                t = &reg->tokens[reg->next_token++ % REG_TOKENS_MAX];
        if (t->value) {
                explicit_bzero(t->value, strlen(t->value));
                free(t->value);
        }
        if (!t->scopes || strcmp(t->scopes, scopes) != 0) {
                free(t->scopes);
                t->scopes = strdup(scopes);
        }
        t->value = value;
        /* Renew a little before the end: 1/5 of the lifetime, at most the
         * margin (clocks and queues are not exact). */
        t->expires_ns = now_ns() + (uint64_t) expires_in * 1000000000ULL -
                        MIN((uint64_t) expires_in * 1000000000ULL / 5, TOKEN_MARGIN_NS);
        if (!t->scopes) {
                explicit_bzero(t->value, strlen(t->value));
                free(t->value);
                t->value = NULL;
        }
}

static void token_fetch_free(struct token_fetch *f) {
        if (!f)
                return;
        http_req_free(f->h);
        free(f->scopes);
        free(f);
}

static void on_token_done(struct http_req *h) {
        struct token_fetch *f = h->userdata;
        struct registry *reg = f->reg;
        struct reg_req *w, *next;
        char *token = NULL;
        unsigned expires_in = 0;
        int r = h->r;

        if (r == 0 && h->status == 200) {
                r = auth_token_parse(h->resp_body, h->resp_len, &token, &expires_in);
                if (r < 0)
                        r = reg_fail(reg, -EACCES, "%s: the token service %s answered something that is not a token",
                                     host_of(reg), reg->realm);
        } else if (r == 0 && (h->status == 401 || h->status == 403)) {
                r = reg_fail(reg, -EACCES, "%s: the token service %s refused %s%s%s", host_of(reg), reg->realm,
                             reg->creds_r == 0 ? "the credentials from " : "anonymous access",
                             reg->creds_r == 0 ? reg->creds.from : "",
                             reg->creds_r == 0 ? "" : " (pass --creds USER:PASS or log in)");
        } else if (r == 0) {
                r = reg_fail(reg, http_status_to_errno(h->status) ?: -EPROTO,
                             "%s: the token service %s answered HTTP %ld", host_of(reg), reg->realm, h->status);
        } else {
                r = reg_fail(reg, r, "%s: cannot reach the token service %s: %s", host_of(reg), reg->realm,
                             h->errbuf[0] ? h->errbuf : strerror(-r));
        }
        if (h->resp_body)
                explicit_bzero(h->resp_body, h->resp_len);

        pthread_mutex_lock(&reg->lock);
        for (struct token_fetch **p = &reg->fetches; *p; p = &(*p)->next)
                if (*p == f) {
                        *p = f->next;
                        break;
                }
        if (r == 0)
                token_store_locked(reg, f->scopes, token, expires_in);
        w = f->waiters;
        f->waiters = NULL;
        pthread_mutex_unlock(&reg->lock);
        if (debug_registry_auth)
                log_debug("registry: token for %s: %s (valid %u s)", f->scopes, r == 0 ? "granted" : strerror(-r),
                          expires_in);
        token_fetch_free(f);

        for (; w; w = next) {
                next = w->next_waiter;
                w->next_waiter = NULL;
                if (r < 0)
                        complete(w, r);
                else
                        reg_req_submit_to(w);
        }
}

/* Join or start the token fetch for q's scopes. Caller holds reg->lock. */
static void token_fetch_start(struct registry *reg, struct reg_req *q) {
        _cleanup_free_ char *query = NULL, *url = NULL;
        struct token_fetch *f;
        bool refresh;

        for (f = reg->fetches; f; f = f->next)
                if (!strcmp(f->scopes, q->scopes)) {
                        q->next_waiter = f->waiters;
                        f->waiters = q;
                        return;
                }
        if (!reg->creds_looked_up)
                (void) reg_credentials(reg);
        if (reg->creds_r == -ENOPKG) {
                /* Configured but not installed: say so rather than try
                 * anonymously (skopeo fails the same way). */
                pthread_mutex_unlock(&reg->lock);
                complete(q, reg_fail(reg, -EACCES, "%s requires authentication: %s", host_of(reg), reg->creds.from));
                pthread_mutex_lock(&reg->lock);
                return;
        }
        refresh = reg->creds_r == 0 && reg->creds.identity_token;
        f = calloc(1, sizeof *f);
        query = auth_token_query(reg->service, q->scopes);
        if (f && query && asprintf(&url, "%s%s%s", reg->realm, strchr(reg->realm, '?') ? "&" : "?",
                                   refresh ? "" : query) < 0)
                url = NULL;
        if (url) {
                f->h = http_req_new(refresh ? "POST" : "GET", url);
                f->scopes = strdup(q->scopes);
        }
        if (!f || !f->h || !f->scopes) {
                token_fetch_free(f);
                pthread_mutex_unlock(&reg->lock);
                complete(q, -ENOMEM);
                pthread_mutex_lock(&reg->lock);
                return;
        }
        f->reg = reg;
        f->h->retry_ok = true;
        f->h->follow = true;
        f->h->body_max = TOKEN_BODY_MAX;
        f->h->done = on_token_done;
        f->h->userdata = f;
        if (refresh) {
                /* OAuth2 refresh-token grant (distribution's docs/spec/auth/oauth.md). */
                char *esc = curl_easy_escape(NULL, reg->creds.identity_token, 0);
                if (esc && asprintf(&f->h->body_owned, "grant_type=refresh_token&client_id=hocus-blk&refresh_token=%s&%s",
                                    esc, query) >= 0) {
                        f->h->body_buf = f->h->body_owned;
                        f->h->body_len = strlen(f->h->body_owned);
                        f->h->has_body = true;
                        http_req_header(f->h, "Content-Type: application/x-www-form-urlencoded");
                } else {
                        f->h->body_owned = NULL;
                }
                if (esc) {
                        explicit_bzero(esc, strlen(esc));
                        curl_free(esc);
                }
        } else if (reg->creds_r == 0 && reg->creds.username) {
                http_req_set_auth(f->h, NULL, reg->creds.username, reg->creds.password);
        }
        q->next_waiter = NULL;
        f->waiters = q;
        f->next = reg->fetches;
        reg->fetches = f;
        /* On the waiting request's engine: a token a demand read needs
         * does not queue behind range reads either. */
        http_submit(reg_req_engine(q, reg), f->h);
}

/* ---- synchronous use and cancel ----------------------------------------- */

static void run_done(struct reg_req *q) {
        http_wait_signal(q->userdata);
}

int reg_req_run(struct reg_req *q) {
        struct registry *reg = q->reg;
        const uint64_t limit = reg->opts.request_timeout_ns;
        struct http_wait w;

        http_wait_init(&w);
        q->done = run_done;
        q->userdata = &w;
        q->demand = true;       /* the caller waits */
        if (limit && !q->h->deadline_ns)
                q->h->deadline_ns = now_ns() + limit;
        reg_req_submit(q);
        /* A registry that accepts and never answers: say what we wait
         * for, once, rather than nothing for the whole timeout. */
        if (!http_wait_until(&w, now_ns() + WAIT_NOTICE_NS)) {
                if (limit)
                        log_info("Waiting for %s (%s) ... (at most %.0f s more)", host_of(reg), q->what,
                                 (double) (limit - MIN(limit, WAIT_NOTICE_NS)) / 1e9);
                else
                        log_info("Waiting for %s (%s) ...", host_of(reg), q->what);
                http_wait_wait(&w);
        }
        http_wait_destroy(&w);
        q->done = NULL;
        if (q->r == -ETIMEDOUT && limit && now_ns() + WAIT_NOTICE_NS / 4 >= q->h->deadline_ns)
                return reg_fail(reg, -ETIMEDOUT, "%s did not answer %s within %.0f s (the fetch timeout)",
                                host_of(reg), q->what, (double) limit / 1e9);
        return q->r;
}

void reg_req_cancel(struct reg_req *q) {
        atomic_store(&q->cancelled, true);
        http_cancel_req(reg_req_engine(q, __atomic_load_n(&q->reg, __ATOMIC_ACQUIRE)), q->h);
}
