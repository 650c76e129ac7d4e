/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Option tables: one description of a program's options (name, argument,
 * help) from which the command-line parser, the --help text and the
 * config file's keys all come. A table's owner applies each option with
 * its `set` function; the same call serves argv and the config file, so
 * both check a value the same way and say the same thing about a bad one.
 * Nothing here logs: errors come back as -errno and a sentence.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

enum {
        OPT_NO_CONFIG = 1 << 0, /* command line only: not a config file key */
        OPT_STOP = 1 << 1,      /* --help, --version: parsing stops and returns its id */
        OPT_HIDDEN = 1 << 2,    /* not in --help */
        OPT_SECRET = 1 << 3,    /* its value is a secret: opt_parse_argv hides it from ps */
};

struct opt {
        const char *name;       /* long name, and the config file key; NULL ends a table */
        int id;                 /* getopt's value: below 0x100 it is also the short option */
        const char *arg;        /* the argument's name in --help; NULL: a switch */
        const char *help;       /* '\n' starts a continuation line */
        unsigned flags;         /* OPT_* */
};

struct opt_table {
        const char *title;      /* --help heading, e.g. "Common options" */
        const struct opt *opts;
        /* Apply one option: value is NULL for a switch. 0, or -errno with
         * the reason in err ("wants 1-256, not 'x'"). */
        int (*set)(void *ctx, int id, const char *value, char *err, size_t errlen);
        void *ctx;
};

/* The entry named name (a long name), or NULL. */
const struct opt *opt_find(const struct opt_table *const *tables, size_t n, const char *name,
                           const struct opt_table **ret_table);

/*
 * Parse argv (getopt_long, options and arguments may mix). The values of
 * OPT_SECRET options (--NAME VALUE, --NAME=VALUE) are first copied to the
 * heap and overwritten with 'x' where they were: the kernel shows that
 * memory to every local user as /proc/PID/cmdline (ps). The copies live
 * as long as the process. Every option is
 * applied through its table. Returns 0 when the options are through
 * (optind points at the first argument), the id of an OPT_STOP option, or
 * -EINVAL with "--name reason" (or the unknown option) in err.
 */
int opt_parse_argv(int argc, char **argv, const struct opt_table *const *tables, size_t n, char *err,
                   size_t errlen);
/* Just that hiding, for a program that parses argv another way: call it
 * before parsing. 0 or -ENOMEM. */
int opt_hide_secrets(int argc, char **argv, const struct opt_table *const *tables, size_t n);

/*
 * Apply `name = value` from a config file: a switch takes true/false
 * (yes/no, on/off, 1/0; false leaves it unset). -ENOENT for an unknown
 * key (or one that is command-line only), -EINVAL for a bad value, with
 * the reason in err.
 */
int opt_apply_config(const struct opt_table *const *tables, size_t n, const char *name, const char *value,
                     char *err, size_t errlen);

/* A table's options as --help lines under its title. */
void opt_table_help(FILE *f, const struct opt_table *t);
/* A table's options without the title (for a program's own layout). */
void opt_help(FILE *f, const struct opt *opts);

/* Fill `out` (room for max entries including the terminator) with the
 * getopt_long entries of opts, after the n already there. Returns the new
 * count, or -ENOBUFS. */
struct option;
int opt_getopt_append(const struct opt *opts, struct option *out, size_t n, size_t max);
