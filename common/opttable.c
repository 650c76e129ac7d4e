/* SPDX-License-Identifier: Apache-2.0 */
/* Option tables: the parser of argv and of config keys, and --help. */
#include "common/opttable.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/cleanup.h"
#include "common/err.h"

#define HELP_COLUMN 23

const struct opt *opt_find(const struct opt_table *const *tables, size_t n, const char *name,
                           const struct opt_table **ret_table) {
        for (size_t i = 0; i < n; i++)
                for (const struct opt *o = tables[i]->opts; o->name; o++)
                        if (!strcmp(o->name, name)) {
                                if (ret_table)
                                        *ret_table = tables[i];
                                return o;
                        }
        return NULL;
}

/* The entry with getopt value id, and its table. */
static const struct opt *find_id(const struct opt_table *const *tables, size_t n, int id,
                                 const struct opt_table **ret_table) {
        for (size_t i = 0; i < n; i++)
                for (const struct opt *o = tables[i]->opts; o->name; o++)
                        if (o->id == id) {
                                *ret_table = tables[i];
                                return o;
                        }
        return NULL;
}

int opt_getopt_append(const struct opt *opts, struct option *out, size_t n, size_t max) {
        for (const struct opt *o = opts; o->name; o++) {
                if (n + 1 >= max)
                        return -ENOBUFS;
                out[n++] = (struct option) { o->name, o->arg ? required_argument : no_argument, NULL, o->id };
        }
        out[n] = (struct option) { 0 };
        return (int) n;
}

/* What getopt complained about (c is '?' or ':'), as a sentence; -EINVAL. */
static int bad_option(int c, char **argv, char *err, size_t errlen) {
        const char *bad = argv[optind - 1];

        if (c == ':')
                return err_set(err, errlen, -EINVAL, "option '%s' needs an argument", bad);
        if (optopt > 0 && optopt < 0x100)
                return err_set(err, errlen, -EINVAL, "unknown option '-%c'", optopt);
        return err_set(err, errlen, -EINVAL, "unknown option '%s'", bad);
}

/* The OPT_SECRET option that arg names ("--NAME" or "--NAME=..."), or NULL. */
static const struct opt *secret_named(const struct opt_table *const *tables, size_t n, const char *arg) {
        if (strncmp(arg, "--", 2) != 0)
                return NULL;
        for (size_t i = 0; i < n; i++)
                for (const struct opt *o = tables[i]->opts; o->name; o++) {
                        size_t len = strlen(o->name);
                        if ((o->flags & OPT_SECRET) && o->arg && !strncmp(arg + 2, o->name, len) &&
                            (arg[2 + len] == 0 || arg[2 + len] == '='))
                                return o;
                }
        return NULL;
}

/* The moved arguments: they live as long as the process (parsed options
 * point into them), and are kept here so that nothing counts as leaked. */
static char **hidden;
static size_t n_hidden;

/* Move a secret argument to the heap and blank it in the argument area. */
static int hide_arg(char **argv, int i, size_t from) {
        char **h = realloc(hidden, (n_hidden + 1) * sizeof *h);
        char *copy;

        if (!h)
                return -ENOMEM;
        hidden = h;
        copy = hidden[n_hidden] = strdup(argv[i]);
        if (!copy)
                return -ENOMEM;
        n_hidden++;
        memset(argv[i] + from, 'x', strlen(argv[i] + from));
        argv[i] = copy;
        return 0;
}

int opt_hide_secrets(int argc, char **argv, const struct opt_table *const *tables, size_t n) {
        for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
                const struct opt *o = secret_named(tables, n, argv[i]);
                const char *eq;
                int r;

                if (!o)
                        continue;
                eq = strchr(argv[i], '=');
                if (eq)
                        r = hide_arg(argv, i, (size_t) (eq + 1 - argv[i]));
                else if (i + 1 < argc)
                        r = hide_arg(argv, ++i, 0);
                else
                        r = 0;
                if (r < 0)
                        return r;
        }
        return 0;
}

int opt_parse_argv(int argc, char **argv, const struct opt_table *const *tables, size_t n, char *err,
                   size_t errlen) {
        _cleanup_free_ struct option *longopts = NULL;
        char shortopts[128] = ":";    /* ':' tells a missing argument from an unknown option */
        size_t count = 0, max = 1, s = 1;
        int c, r;

        for (size_t i = 0; i < n; i++)
                for (const struct opt *o = tables[i]->opts; o->name; o++)
                        max++;
        longopts = calloc(max, sizeof *longopts);
        if (!longopts)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                r = opt_getopt_append(tables[i]->opts, longopts, count, max);
                if (r < 0)
                        return r;
                count = (size_t) r;
                for (const struct opt *o = tables[i]->opts; o->name; o++)
                        if (o->id > 0 && o->id < 0x100 && s + 3 < sizeof shortopts) {
                                shortopts[s++] = (char) o->id;
                                if (o->arg)
                                        shortopts[s++] = ':';
                        }
        }
        shortopts[s] = 0;
        err[0] = 0;
        r = opt_hide_secrets(argc, argv, tables, n);
        if (r < 0)
                return r;
        opterr = 0;
        while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) >= 0) {
                const struct opt_table *t;
                const struct opt *o = c == '?' || c == ':' ? NULL : find_id(tables, n, c, &t);
                char why[256] = "";

                if (!o)
                        return bad_option(c, argv, err, errlen);
                if (o->flags & OPT_STOP)
                        return o->id;
                r = t->set(t->ctx, o->id, o->arg ? optarg : NULL, why, sizeof why);
                if (r < 0)
                        return err_set(err, errlen, r, "--%s %s", o->name, why[0] ? why : strerror(-r));
        }
        return 0;
}

/* true/false for a switch in a config file; -EINVAL otherwise. */
static int parse_bool(const char *v) {
        static const char *const yes[] = { "true", "yes", "on", "1", NULL }, *const no[] = { "false", "no", "off", "0", NULL };

        for (size_t i = 0; yes[i]; i++)
                if (!strcasecmp(v, yes[i]))
                        return 1;
        for (size_t i = 0; no[i]; i++)
                if (!strcasecmp(v, no[i]))
                        return 0;
        return -EINVAL;
}

int opt_apply_config(const struct opt_table *const *tables, size_t n, const char *name, const char *value,
                     char *err, size_t errlen) {
        const struct opt_table *t;
        const struct opt *o = opt_find(tables, n, name, &t);
        char why[256] = "";
        int r;

        if (!o || (o->flags & (OPT_NO_CONFIG | OPT_STOP))) {
                return err_set(err, errlen, -ENOENT, "unknown key '%s'%s", name, o ? " (command line only)" : "");
        }
        if (!o->arg) {
                r = parse_bool(value);
                if (r < 0) {
                        return err_set(err, errlen, -EINVAL, "%s wants true or false, not '%s'", name, value);
                }
                if (r == 0)
                        return 0;
                value = NULL;
        } else if (!*value)
                return err_set(err, errlen, -EINVAL, "%s wants a value", name);
        r = t->set(t->ctx, o->id, value, why, sizeof why);
        if (r < 0)
                return err_set(err, errlen, r, "%s %s", name, why[0] ? why : strerror(-r));
        return 0;
}

void opt_help(FILE *f, const struct opt *opts) {
        for (const struct opt *o = opts; o->name; o++) {
                char left[128];
                const char *h = o->help, *nl;
                int w;

                if (o->flags & OPT_HIDDEN)
                        continue;
                if (o->id > 0 && o->id < 0x100)
                        w = snprintf(left, sizeof left, "  -%c, --%s%s%s", o->id, o->name, o->arg ? " " : "",
                                     o->arg ? o->arg : "");
                else
                        w = snprintf(left, sizeof left, "  --%s%s%s", o->name, o->arg ? " " : "", o->arg ? o->arg : "");
                if (w + 1 > HELP_COLUMN)
                        fprintf(f, "%s\n%*s", left, HELP_COLUMN, "");
                else
                        fprintf(f, "%-*s", HELP_COLUMN, left);
                for (;;) {
                        nl = strchr(h, '\n');
                        if (!nl) {
                                fprintf(f, "%s\n", h);
                                break;
                        }
                        fprintf(f, "%.*s\n%*s", (int) (nl - h), h, HELP_COLUMN, "");
                        h = nl + 1;
                }
        }
}

void opt_table_help(FILE *f, const struct opt_table *t) {
        fprintf(f, "%s:\n", t->title);
        opt_help(f, t->opts);
}
