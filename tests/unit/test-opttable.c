/* SPDX-License-Identifier: Apache-2.0 */
/* common/opttable.c: argv parsing through a table; the values of secret
 * options (--creds) are gone from the argument area that ps shows, and
 * the program still gets them. */
#undef NDEBUG
#include <assert.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "common/opttable.h"

enum { OPT_NAME = 0x100, OPT_SECRET_ONE, OPT_SWITCH };

static const struct opt opts[] = {
        { "name", OPT_NAME, "NAME", "a name", 0 },
        { "creds", OPT_SECRET_ONE, "USER:PASS", "a secret", OPT_SECRET },
        { "switch", OPT_SWITCH, NULL, "a switch", 0 },
        { NULL, 0, NULL, NULL, 0 },
};

static char got_name[64], got_creds[64];
static int switches;

static int set(void *ctx, int id, const char *value, char *err, size_t errlen) {
        switch (id) {
        case OPT_NAME:
                snprintf(got_name, sizeof got_name, "%s", value);
                return 0;
        case OPT_SECRET_ONE:
                snprintf(got_creds, sizeof got_creds, "%s", value);
                return 0;
        case OPT_SWITCH:
                switches++;
                return 0;
        }
        return -EINVAL;
}

static const struct opt_table table = { "Test", opts, set, NULL };
static const struct opt_table *const tables[] = { &table };

/* Lay args out back to back as the kernel does, parse, and return the
 * area as ps would show it (NULs as spaces). */
static const char *parse(char *area, size_t size, const char *const *args, int argc, int *ret) {
        char *argv[16];
        char err[256];
        size_t o = 0;

        assert(argc < 16);
        for (int i = 0; i < argc; i++) {
                size_t n = strlen(args[i]) + 1;
                assert(o + n <= size);
                memcpy(area + o, args[i], n);
                argv[i] = area + o;
                o += n;
        }
        argv[argc] = NULL;
        got_name[0] = got_creds[0] = 0;
        optind = 0;
        *ret = opt_parse_argv(argc, argv, tables, 1, err, sizeof err);
        for (size_t i = 0; i + 1 < o; i++)
                if (area[i] == 0)
                        area[i] = ' ';
        return area;
}

int main(void) {
        char area[512];
        int r;

        {
                const char *const a[] = { "prog", "--name", "ws", "--creds", "alice:s3cret", "--switch", "arg" };
                assert(!strcmp(parse(area, sizeof area, a, 7, &r), "prog --name ws --creds xxxxxxxxxxxx --switch arg"));
                assert(r == 0 && !strcmp(got_creds, "alice:s3cret") && !strcmp(got_name, "ws") && switches == 1);
        }
        {
                const char *const a[] = { "prog", "--creds=bob:pw", "--name=creds" };
                assert(!strcmp(parse(area, sizeof area, a, 3, &r), "prog --creds=xxxxxx --name=creds"));
                assert(r == 0 && !strcmp(got_creds, "bob:pw") && !strcmp(got_name, "creds"));
        }
        {
                /* After "--" nothing is an option; a missing value is an error, not a crash. */
                const char *const a[] = { "prog", "--", "--creds", "not:secret" };
                assert(!strcmp(parse(area, sizeof area, a, 4, &r), "prog -- --creds not:secret"));
                const char *const b[] = { "prog", "--creds" };
                parse(area, sizeof area, b, 2, &r);
                assert(r == -EINVAL);
        }
        {
                /* Hiding alone, for parsers of their own. */
                char buf[] = "prog\0--creds\0u:p";
                char *argv[] = { buf, buf + 5, buf + 13, NULL };
                assert(opt_hide_secrets(3, argv, tables, 1) == 0);
                assert(!strcmp(buf + 13, "xxx") && !strcmp(argv[2], "u:p"));
        }
        return 0;
}
