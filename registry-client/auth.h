/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Registry authentication, the pure parts: WWW-Authenticate challenges
 * (RFC 7235 syntax), the Bearer token service's answer (distribution's
 * docs/spec/auth/token.md) and the query of a token request. The
 * stateful part (which token for which scope, renewal on 401) lives in
 * registry.c. Nothing here logs: tokens and passwords are secrets.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

enum auth_scheme {
        AUTH_UNKNOWN = 0,       /* not asked yet */
        AUTH_NONE,              /* anonymous access works */
        AUTH_BASIC,
        AUTH_BEARER,
};

struct auth_challenge {
        enum auth_scheme scheme;        /* AUTH_BASIC, AUTH_BEARER or AUTH_UNKNOWN (unsupported) */
        char *realm;
        char *service;                  /* Bearer */
        char *scope;                    /* Bearer, space-separated scopes, may be NULL */
        char *error;                    /* Bearer error="insufficient_scope" etc., may be NULL */
};

/*
 * Parse one WWW-Authenticate value (several challenges may be listed,
 * comma-separated, or several header lines joined with ", "). Bearer is
 * preferred over Basic when both are offered. Returns 0, -EINVAL when no
 * challenge could be parsed, -EOPNOTSUPP when only unsupported schemes
 * (Digest, Negotiate...) are offered, -ENOMEM.
 */
int auth_challenge_parse(const char *value, struct auth_challenge *ret);
void auth_challenge_done(struct auth_challenge *c);

/*
 * Parse the token service's JSON answer: "token" (or "access_token"),
 * "expires_in" (seconds, default 60 as the spec says), "issued_at"
 * (ignored: we count from when we asked, which errs on the safe side).
 * Returns the token (malloc'd) and its lifetime in seconds, or -EBADMSG.
 */
int auth_token_parse(const char *body, size_t len, char **ret_token, unsigned *ret_expires_in);

/*
 * Build the token request's query: "service=S&scope=A&scope=B" with every
 * value URL-escaped. scopes is space-separated (as in a challenge).
 * Returns a malloc'd string or NULL.
 */
char *auth_token_query(const char *service, const char *scopes);

/* "repository:NAME:pull" or "repository:NAME:pull,push" into buf. */
const char *auth_scope(const char *repository, bool push, char *buf, size_t len);

/* Merge two space-separated scope lists, without duplicates (malloc'd). */
char *auth_scopes_merge(const char *a, const char *b);
