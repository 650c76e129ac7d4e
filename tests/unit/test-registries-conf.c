/* SPDX-License-Identifier: Apache-2.0 */
/* registries-conf.c: the TOML subset, prefix matching, rewriting, merging. */
#undef NDEBUG
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry-client/registries-conf.h"

static struct regconf *parse(const char *text, int want) {
        struct regconf *c = calloc(1, sizeof *c);
        char err[256] = "";
        int r;

        assert(c);
        r = regconf_parse(c, text, strlen(text), "test.conf", err, sizeof err);
        if (r != want)
                fprintf(stderr, "parse: %d (%s), want %d\n", r, err, want);
        assert(r == want);
        if (r < 0)
                assert(strstr(err, "test.conf:"));
        return c;
}

static void test_full(void) {
        struct regconf *c = parse("# a comment\n"
                                  "unqualified-search-registries = [\"docker.io\", # inline comment\n"
                                  "    'quay.io',\n]\n"
                                  "short-name-mode = \"enforcing\"\n"
                                  "[aliases]\n\"fedora\" = \"registry.fedoraproject.org/fedora\"\n"
                                  "\n[[registry]]\n"
                                  "prefix = \"example.com/foo\"\n"
                                  "location = \"origin.example:5000/bar\"  # the real place\n"
                                  "insecure = false\nblocked = false\n"
                                  "future-key = { a = 1, b = [1, 2] }\n"
                                  "[[registry.mirror]]\nlocation = \"m1.example/cache\"\n"
                                  "pull-from-mirror = \"digest-only\"\n"
                                  "[[registry.mirror]]\r\nlocation = 'm2.example:443'\r\ninsecure = true\r\n"
                                  "[[registry]]\nlocation = \"blocked.example\"\nblocked = true\n"
                                  "[[registry]]\nprefix = \"*.wild.example\"\n"
                                  "[[registry.mirror]]\nlocation = \"wm.example/x\"\n",
                                  0);
        const struct regconf_registry *e;
        char *s;

        assert(c->n_regs == 3);
        e = regconf_find(c, "example.com/foo/img");
        assert(e && !strcmp(e->prefix, "example.com/foo") && e->n_mirrors == 2);
        assert(!strcmp(e->mirrors[0].location, "m1.example/cache") && e->mirrors[0].pull == REGCONF_PULL_DIGEST_ONLY);
        assert(!strcmp(e->mirrors[1].location, "m2.example:443") && e->mirrors[1].insecure);
        assert(e->mirrors[1].pull == REGCONF_PULL_ALL);
        assert(regconf_rewrite(e, NULL, "example.com/foo/img", &s) == 0 && !strcmp(s, "origin.example:5000/bar/img"));
        free(s);
        assert(regconf_rewrite(e, e->mirrors[0].location, "example.com/foo/img", &s) == 0 &&
               !strcmp(s, "m1.example/cache/img"));
        free(s);
        assert(regconf_find(c, "example.com/foo") == e);
        assert(!regconf_find(c, "example.com/foobar/img"));
        assert(!regconf_find(c, "example.com/img"));
        e = regconf_find(c, "blocked.example/x/y");
        assert(e && e->blocked && !strcmp(e->prefix, "blocked.example"));
        e = regconf_find(c, "a.b.wild.example/r");
        assert(e && e->n_mirrors == 1);
        assert(regconf_rewrite(e, e->mirrors[0].location, "a.b.wild.example/r", &s) == 0 &&
               !strcmp(s, "wm.example/x/r"));
        free(s);
        assert(!regconf_find(c, "wild.example/r"));
        regconf_free(c);
}

static void test_merge(void) {
        struct regconf *c = parse("[[registry]]\nprefix = \"a.example\"\n[[registry.mirror]]\nlocation = \"m1\"\n"
                                  "[[registry]]\nprefix = \"a.example/deep\"\n",
                                  0);
        char err[256];
        const char *drop = "[[registry]]\nprefix = \"a.example\"\nmirror-by-digest-only = true\n"
                           "[[registry.mirror]]\nlocation = \"m2\"\n";

        assert(regconf_parse(c, drop, strlen(drop), "drop.conf", err, sizeof err) == 0);
        assert(c->n_regs == 2);
        assert(regconf_find(c, "a.example/x")->digest_only);
        assert(!strcmp(regconf_find(c, "a.example/x")->mirrors[0].location, "m2"));
        assert(!strcmp(regconf_find(c, "a.example/x")->file, "drop.conf"));
        /* The longest prefix wins. */
        assert(!strcmp(regconf_find(c, "a.example/deep/x")->prefix, "a.example/deep"));
        regconf_free(c);
}

static void test_errors(void) {
        static const char *const bad[] = {
                "[[registry]]\nprefix = \"x\"\ninsecure = \"yes\"\n",
                "[[registry]]\nprefix = true\n",
                "[[registry]]\nprefix = \"x\"\n[[registry.mirror]]\npull-from-mirror = \"sometimes\"\nlocation=\"m\"\n",
                "[[registry.mirror]]\nlocation = \"m\"\n",
                "[[registry]]\ninsecure = true\n",
                "[[registry]]\nprefix = \"x\"\n[[registry.mirror]]\ninsecure = true\n",
                "[[registry]]\nprefix = \"*.x\"\nlocation = \"y\"\n",
                "[[registry]]\nprefix = \"x@sha256:00\"\n",
                "key = \"\"\"multi\nline\"\"\"\n",
                "key = \"unterminated\n",
                "key = \"bad \\q escape\"\n",
                "key = \"\\u0000\"\n",
                "key = [1, 2\n",
                "key = 1 2\n",
                "[registry\n",
                "[[registry]\n",
                "= 1\n",
                "key\n",
                "key =\n",
                "key = {a = 1\n",
        };
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
                regconf_free(parse(bad[i], -EINVAL));
        /* Deep nesting is refused, not recursed into. */
        char deep[200];
        memset(deep, '[', sizeof deep);
        memcpy(deep, "k = ", 4);
        deep[sizeof deep - 1] = 0;
        regconf_free(parse(deep, -EINVAL));
}

int main(void) {
        test_full();
        test_merge();
        test_errors();
        regconf_free(parse("", 0));
        return 0;
}
