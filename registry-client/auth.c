/* SPDX-License-Identifier: Apache-2.0 */
#include "auth.h"

#include <curl/curl.h>
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/cleanup.h"

static bool is_tchar(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               (c && strchr("!#$%&'*+-.^_`|~", c));
}

static const char *skip_ws(const char *p) {
        while (*p == ' ' || *p == '\t')
                p++;
        return p;
}

/* One token at p; returns its length. */
static size_t token_len(const char *p) {
        size_t n = 0;

        while (is_tchar(p[n]))
                n++;
        return n;
}

/* A quoted-string at *pp (after the opening quote is checked by the
 * caller): unescape into a new string and advance past the closing quote. */
static int parse_quoted(const char **pp, char **ret) {
        const char *p = *pp + 1;
        char *out = malloc(strlen(p) + 1), *o = out;

        if (!out)
                return -ENOMEM;
        for (; *p && *p != '"'; p++) {
                if (*p == '\\' && p[1])
                        p++;
                *o++ = *p;
        }
        if (*p != '"') {
                free(out);
                return -EINVAL;
        }
        *o = 0;
        *pp = p + 1;
        *ret = out;
        return 0;
}

void auth_challenge_done(struct auth_challenge *c) {
        free(c->realm);
        free(c->service);
        free(c->scope);
        free(c->error);
        memset(c, 0, sizeof *c);
}

static void set_param(struct auth_challenge *c, const char *name, size_t nlen, char *value) {
        char **slot = NULL;

        if (nlen == 5 && !strncasecmp(name, "realm", 5))
                slot = &c->realm;
        else if (nlen == 7 && !strncasecmp(name, "service", 7))
                slot = &c->service;
        else if (nlen == 5 && !strncasecmp(name, "scope", 5))
                slot = &c->scope;
        else if (nlen == 5 && !strncasecmp(name, "error", 5))
                slot = &c->error;
        if (slot && !*slot)
                *slot = value;
        else
                free(value);
}

int auth_challenge_parse(const char *value, struct auth_challenge *ret) {
        struct auth_challenge basic = { 0 }, bearer = { 0 }, *cur = NULL, skip = { 0 };
        bool any = false;
        const char *p = value;
        int r;

        if (!value)
                return -EINVAL;
        for (;;) {
                size_t n;

                p = skip_ws(p);
                while (*p == ',')
                        p = skip_ws(p + 1);
                if (!*p)
                        break;
                n = token_len(p);
                if (n == 0) {
                        r = -EINVAL;
                        goto fail;
                }
                /* name=value continues the current challenge; a bare token
                 * followed by a space starts a new one. */
                if (skip_ws(p + n)[0] == '=' && cur) {
                        const char *name = p;
                        char *v;

                        p = skip_ws(skip_ws(p + n) + 1);
                        if (*p == '"') {
                                r = parse_quoted(&p, &v);
                                if (r < 0)
                                        goto fail;
                        } else {
                                size_t vn = token_len(p);
                                if (vn == 0) {
                                        r = -EINVAL;
                                        goto fail;
                                }
                                v = strndup(p, vn);
                                if (!v) {
                                        r = -ENOMEM;
                                        goto fail;
                                }
                                p += vn;
                        }
                        set_param(cur, name, n, v);
                        continue;
                }
                any = true;
                if (n == 6 && !strncasecmp(p, "Bearer", 6)) {
                        cur = &bearer;
                        bearer.scheme = AUTH_BEARER;
                } else if (n == 5 && !strncasecmp(p, "Basic", 5)) {
                        cur = &basic;
                        basic.scheme = AUTH_BASIC;
                } else {
                        auth_challenge_done(&skip);
                        cur = &skip;
                }
                p += n;
        }
        auth_challenge_done(&skip);
        if (bearer.scheme == AUTH_BEARER && bearer.realm) {
                auth_challenge_done(&basic);
                *ret = bearer;
                return 0;
        }
        if (basic.scheme == AUTH_BASIC) {
                auth_challenge_done(&bearer);
                *ret = basic;
                return 0;
        }
        r = any ? -EOPNOTSUPP : -EINVAL;
fail:
        auth_challenge_done(&basic);
        auth_challenge_done(&bearer);
        auth_challenge_done(&skip);
        return r;
}

int auth_token_parse(const char *body, size_t len, char **ret_token, unsigned *ret_expires_in) {
        struct json_tokener *tok;
        struct json_object *root, *o;
        const char *t = NULL;
        int64_t exp = 60;
        int r = -EBADMSG;

        tok = json_tokener_new();
        if (!tok)
                return -ENOMEM;
        root = json_tokener_parse_ex(tok, body, (int) len);
        json_tokener_free(tok);
        if (!root || !json_object_is_type(root, json_type_object))
                goto out;
        if (json_object_object_get_ex(root, "token", &o) && json_object_is_type(o, json_type_string))
                t = json_object_get_string(o);
        if ((!t || !*t) && json_object_object_get_ex(root, "access_token", &o) &&
            json_object_is_type(o, json_type_string))
                t = json_object_get_string(o);
        if (!t || !*t)
                goto out;
        if (json_object_object_get_ex(root, "expires_in", &o) && json_object_is_type(o, json_type_int)) {
                exp = json_object_get_int64(o);
                /* The spec's minimum is 60 s; a shorter value is honoured
                 * (tests use it) but never below 1 s. */
                if (exp < 1)
                        exp = 1;
                if (exp > 86400)
                        exp = 86400;
        }
        *ret_token = strdup(t);
        if (!*ret_token) {
                r = -ENOMEM;
                goto out;
        }
        *ret_expires_in = (unsigned) exp;
        r = 0;
out:
        json_object_put(root);
        return r;
}

/* Append "&name=escaped(value)" (without '&' when first). */
static int query_add(char **q, size_t *len, const char *name, const char *value, size_t vlen) {
        char *esc = curl_easy_escape(NULL, value, (int) vlen);
        size_t need;
        char *n;

        if (!esc)
                return -ENOMEM;
        need = *len + 1 + strlen(name) + 1 + strlen(esc) + 1;
        n = realloc(*q, need);
        if (!n) {
                curl_free(esc);
                return -ENOMEM;
        }
        *len += (size_t) sprintf(n + *len, "%s%s=%s", *len ? "&" : "", name, esc);
        *q = n;
        curl_free(esc);
        return 0;
}

char *auth_token_query(const char *service, const char *scopes) {
        char *q = NULL;
        size_t len = 0;

        if (service && query_add(&q, &len, "service", service, strlen(service)) < 0)
                goto fail;
        for (const char *p = scopes; p && *p;) {
                size_t n = strcspn(p, " ");

                if (n && query_add(&q, &len, "scope", p, n) < 0)
                        goto fail;
                p += n;
                while (*p == ' ')
                        p++;
        }
        if (!q)
                q = strdup("");
        return q;
fail:
        free(q);
        return NULL;
}

const char *auth_scope(const char *repository, bool push, char *buf, size_t len) {
        snprintf(buf, len, "repository:%s:%s", repository, push ? "pull,push" : "pull");
        return buf;
}

static bool scope_listed(const char *list, const char *s, size_t n) {
        for (const char *p = list; p && *p;) {
                size_t m = strcspn(p, " ");

                if (m == n && !strncmp(p, s, n))
                        return true;
                p += m;
                while (*p == ' ')
                        p++;
        }
        return false;
}

char *auth_scopes_merge(const char *a, const char *b) {
        size_t la = a ? strlen(a) : 0, lb = b ? strlen(b) : 0, used;
        char *out = malloc(la + lb + 2);

        if (!out)
                return NULL;
        memcpy(out, a ? a : "", la + 1);
        used = la;
        for (const char *p = b; p && *p;) {
                size_t n = strcspn(p, " ");

                if (n && !scope_listed(out, p, n)) {
                        if (used)
                                out[used++] = ' ';
                        memcpy(out + used, p, n);
                        used += n;
                        out[used] = 0;
                }
                p += n;
                while (*p == ' ')
                        p++;
        }
        return out;
}
