/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Debug flags (common/debug-flags.h): -D sets exactly the int of the flag
 * named, N is checked, an unknown name is refused with every known name in
 * the sentence and nothing changed, -v fills in only flags not set
 * explicitly, and --help's text lists every row of the table.
 */
#undef NDEBUG
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/debug-flags.h"

#define ROW(id, name, help) { name, &debug_##id },
static const struct {
        const char *name;
        int *value;
} rows[] = { DEBUG_FLAGS(ROW) };
#undef ROW

/* Sum of every flag: checks that a parse touched only what it should. */
static int sum(void) {
        int s = 0;

        for (size_t i = 0; i < ARRAY_SIZE(rows); i++)
                s += *rows[i].value;
        return s;
}

static void test_table(void) {
        char line[64];

        assert(ARRAY_SIZE(rows) >= 6);
        for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
                assert(*rows[i].value == 0);
                assert(strchr(rows[i].name, '.'));
                for (size_t j = 0; j < i; j++)
                        assert(strcmp(rows[i].name, rows[j].name));
                /* --help lists it, on a line of its own. */
                snprintf(line, sizeof line, "\n  %s: ", rows[i].name);
                assert(strstr(DEBUG_FLAGS_HELP, line));
        }
}

static void test_parse(void) {
        char err[512];

        assert(debug_flag_parse("registry.http", err, sizeof err) == 0);
        assert(debug_registry_http == 1 && sum() == 1);
        assert(debug_flag_parse("nbd.requests=3", err, sizeof err) == 0);
        assert(debug_nbd_requests == 3 && sum() == 4);
        assert(debug_flag_parse("registry.http=0", err, sizeof err) == 0);
        assert(debug_registry_http == 0 && sum() == 3);
        assert(debug_flag_parse("nbd.requests=1000", err, sizeof err) == 0);
        assert(debug_flag_parse("nbd.requests=1", err, sizeof err) == 0);
        assert(sum() == 1);
}

static void test_refused(void) {
        static const char *const bad_value[] = { "nbd.requests=", "nbd.requests=x", "nbd.requests=1001",
                                                 "nbd.requests=-1", "nbd.requests=1x" };
        static const char *const unknown[] = { "foo", "", "=1", "registry.htt", "registry.http.x",
                                               "REGISTRY.HTTP", "registry.http2=1" };
        char err[512];

        for (size_t i = 0; i < ARRAY_SIZE(bad_value); i++) {
                err[0] = 0;
                assert(debug_flag_parse(bad_value[i], err, sizeof err) == -EINVAL);
                assert(strstr(err, "wants NAME=N with N 0-1000, not 'nbd.requests"));
                assert(sum() == 1);
        }
        for (size_t i = 0; i < ARRAY_SIZE(unknown); i++) {
                err[0] = 0;
                assert(debug_flag_parse(unknown[i], err, sizeof err) == -EINVAL);
                assert(strstr(err, "wants a known debug flag, not '"));
                for (size_t j = 0; j < ARRAY_SIZE(rows); j++)
                        assert(strstr(err, rows[j].name));
                assert(sum() == 1);
        }
        /* A short buffer or none still refuses. */
        assert(debug_flag_parse("foo", err, 8) == -EINVAL && strlen(err) == 7);
        assert(debug_flag_parse("foo", NULL, 0) == -EINVAL);
}

static void test_default(void) {
        char err[512];

        /* -D registry.auth=0 then -v: the explicit 0 holds, the rest go on. */
        assert(debug_flag_parse("registry.auth=0", err, sizeof err) == 0);
        debug_flags_set_default(1);
        assert(debug_registry_auth == 0);
        assert(debug_nbd_requests == 1);                /* explicit 1 */
        assert(debug_registry_http == 0);               /* explicit 0 earlier */
        assert(debug_registry_blob == 1 && debug_sched_fetch == 1 && debug_export_fetch == 1);
        /* -v then -D: the later -D wins. */
        assert(debug_flag_parse("sched.fetch=0", err, sizeof err) == 0);
        assert(debug_sched_fetch == 0);
        debug_flags_set_default(0);
        assert(debug_registry_blob == 0 && debug_export_fetch == 0 && debug_nbd_requests == 1);
}

int main(void) {
        test_table();
        test_parse();
        test_refused();
        test_default();
        return 0;
}
