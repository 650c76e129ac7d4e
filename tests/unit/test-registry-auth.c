/* SPDX-License-Identifier: Apache-2.0 */
/* auth.c: WWW-Authenticate challenges, token answers, scopes. */
#undef NDEBUG
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "registry-client/auth.h"

static void test_challenges(void) {
        struct auth_challenge c;

        assert(auth_challenge_parse("Bearer realm=\"https://auth.example/token\",service=\"registry.example\","
                                    "scope=\"repository:team/ws:pull,push\"",
                                    &c) == 0);
        assert(c.scheme == AUTH_BEARER);
        assert(!strcmp(c.realm, "https://auth.example/token"));
        assert(!strcmp(c.service, "registry.example"));
        assert(!strcmp(c.scope, "repository:team/ws:pull,push"));
        assert(!c.error);
        auth_challenge_done(&c);

        /* Case-insensitive scheme and names, spaces, token values, errors. */
        assert(auth_challenge_parse("bearer  Realm = \"r\" , error=insufficient_scope,scope=\"a b\"", &c) == 0);
        assert(c.scheme == AUTH_BEARER && !strcmp(c.realm, "r") && !strcmp(c.error, "insufficient_scope") &&
               !strcmp(c.scope, "a b") && !c.service);
        auth_challenge_done(&c);

        /* Escapes inside quoted strings. */
        assert(auth_challenge_parse("Basic realm=\"say \\\"hi\\\"\"", &c) == 0);
        assert(c.scheme == AUTH_BASIC && !strcmp(c.realm, "say \"hi\""));
        auth_challenge_done(&c);

        /* Several challenges: Bearer wins over Basic, whatever the order. */
        assert(auth_challenge_parse("Basic realm=\"b\", Bearer realm=\"t\",service=\"s\"", &c) == 0);
        assert(c.scheme == AUTH_BEARER && !strcmp(c.realm, "t") && !strcmp(c.service, "s"));
        auth_challenge_done(&c);
        assert(auth_challenge_parse("Negotiate, Basic realm=\"x\"", &c) == 0);
        assert(c.scheme == AUTH_BASIC);
        auth_challenge_done(&c);

        assert(auth_challenge_parse("Digest realm=\"x\", nonce=\"y\"", &c) == -EOPNOTSUPP);
        assert(auth_challenge_parse("", &c) == -EINVAL);
        assert(auth_challenge_parse(NULL, &c) == -EINVAL);
        assert(auth_challenge_parse("Bearer realm=\"unterminated", &c) == -EINVAL);
        assert(auth_challenge_parse("=oops", &c) == -EINVAL);
        /* Bearer without a realm is useless. */
        assert(auth_challenge_parse("Bearer service=\"s\"", &c) == -EOPNOTSUPP);
}

static void test_tokens(void) {
        char *t;
        unsigned exp;
        const char *a = "{\"token\":\"abc\",\"expires_in\":300,\"issued_at\":\"2024-01-01T00:00:00Z\"}";
        const char *b = "{\"access_token\":\"xyz\"}";
        const char *c = "{\"token\":\"\",\"access_token\":\"second\",\"expires_in\":0}";

        assert(auth_token_parse(a, strlen(a), &t, &exp) == 0 && !strcmp(t, "abc") && exp == 300);
        free(t);
        assert(auth_token_parse(b, strlen(b), &t, &exp) == 0 && !strcmp(t, "xyz") && exp == 60);
        free(t);
        assert(auth_token_parse(c, strlen(c), &t, &exp) == 0 && !strcmp(t, "second") && exp == 1);
        free(t);
        assert(auth_token_parse("{}", 2, &t, &exp) == -EBADMSG);
        assert(auth_token_parse("[1]", 3, &t, &exp) == -EBADMSG);
        assert(auth_token_parse("{\"token\":5}", 11, &t, &exp) == -EBADMSG);
}

static void test_scopes(void) {
        char buf[128], *q, *m;

        assert(!strcmp(auth_scope("team/ws", false, buf, sizeof buf), "repository:team/ws:pull"));
        assert(!strcmp(auth_scope("team/ws", true, buf, sizeof buf), "repository:team/ws:pull,push"));
        q = auth_token_query("registry.example", "repository:a/b:pull repository:c:pull,push");
        assert(!strcmp(q, "service=registry.example&scope=repository%3Aa%2Fb%3Apull&scope=repository%3Ac%3Apull%2Cpush"));
        free(q);
        q = auth_token_query(NULL, NULL);
        assert(q && !strcmp(q, ""));
        free(q);
        m = auth_scopes_merge("repository:a:pull", "repository:a:pull repository:b:pull");
        assert(!strcmp(m, "repository:a:pull repository:b:pull"));
        free(m);
        m = auth_scopes_merge(NULL, "x");
        assert(!strcmp(m, "x"));
        free(m);
}

int main(void) {
        test_challenges();
        test_tokens();
        test_scopes();
        return 0;
}
