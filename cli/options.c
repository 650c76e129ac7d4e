/* SPDX-License-Identifier: Apache-2.0 */
#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "common/cleanup.h"
#include "common/log.h"

struct common_args arg_common;

const struct option *cli_options(const struct option *own) {
        static struct option all[64];
        size_t n = 0;
        int r;

        while (own[n].name) {
                assert(n + 1 < ARRAY_SIZE(all));
                all[n] = own[n];
                n++;
        }
        r = opt_getopt_append(common_options, all, n, ARRAY_SIZE(all));
        assert(r >= 0);
        return all;
}

/* Print what a parser accepts (see cli_getopt) and exit. */
static void list_options(const char *shortopts, const struct option *longopts) {
        for (const char *s = shortopts; *s; s++)
                if (*s != ':' && *s != '+' && *s != '-')
                        printf("-%c\n", *s);
        for (const struct option *o = longopts; o->name; o++)
                printf("--%s%s\n", o->name, o->has_arg == no_argument ? "" : "=");
        exit(0);
}

int cli_getopt(int argc, char **argv, const char *shortopts, const struct option *longopts) {
        static bool checked;

        if (!checked) {
                checked = true;
                if (getenv("HOCUS_BLK_LIST_OPTIONS"))
                        list_options(shortopts, longopts);
        }
        return getopt_long(argc, argv, shortopts, longopts, NULL);
}

void cli_common_help(void) {
        opt_table_help(stdout, &COMMON_OPTION_TABLE(&arg_common));
}

int cli_common_option(int c, const char *arg) {
        char err[256] = "";
        int r;

        if (c == 'h')
                return 2;
        if (!(c == 'v' || c == 'D' || (c > OPT_COMMON_FIRST && c < OPT_COMMON_LAST)))
                return 0;
        r = common_option_set(&arg_common, c, arg, err, sizeof err);
        if (r < 0) {
                const struct opt *o = common_options;
                while (o->name && o->id != c)
                        o++;
                log_error("--%s %s", o->name, err);
                return r;
        }
        return 1;
}

int cli_other_option(const char *cmd, int c, const char *arg, void (*help)(void)) {
        int r;

        if (c == '?')
                return cli_usage_error(cmd, "unknown option");
        r = cli_common_option(c, arg);
        if (r == 2) {
                help();
                return 0;
        }
        return r < 0 ? r : 1;
}

int cli_usage_error(const char *cmd, const char *fmt, ...) {
        char msg[512];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        log_error("%s (see 'hocus-blk %s --help')", msg, cmd);
        return -EINVAL;
}

int cli_exit_status(int r) {
        if (r >= 0)
                return 0;
        if (r == -EINVAL)
                return 2;
        return 1;
}

/* A sentence for what went wrong opening a source. */
static const char *open_error(int r) {
        switch (r) {
        case -ENOENT:
                return "no such directory";
        case -ENOMEDIUM:
                return "not an OCI image layout (no oci-layout file)";
        case -ENOTDIR:
                return "not a directory (an OCI image layout is one)";
        default:
                return strerror(-r);
        }
}

/* opt: the option that named ref (its errors say so), or NULL. */
static int open_source(const char *opt, const char *ref, bool create, struct blob_source **ret) {
        struct source_options o = common_source_options(&arg_common);
        char err[512] = "";
        int r;

        o.create = create;
        r = source_open(ref, &o, ret, err, sizeof err);
        if (r >= 0)
                return 0;
        if (opt)
                return log_error_errno(r, "--%s '%s': %s%s", opt, ref, r == -EINVAL ? "invalid reference: " : "cannot open it: ",
                                       err[0] ? err : open_error(r));
        /* A registry says what went wrong in err (any error). */
        if (r != -EINVAL && err[0])
                return log_error_errno(r, "Cannot open '%s': %s", ref, err);
        if (r == -EINVAL && err[0])
                return log_error_errno(r, "Invalid reference: %s", err);
        return log_error_errno(r, "Cannot open '%s': %s", ref, open_error(r));
}

int cli_open_source(const char *ref, bool create, struct blob_source **ret) {
        return open_source(NULL, ref, create, ret);
}

int cli_open_image_opt(const char *opt, const char *ref, struct blob_source **ret_src, struct image **ret_img) {
        struct blob_source *src;
        char err[512] = "";
        int r;

        r = open_source(opt, ref, false, &src);
        if (r < 0)
                return r;
        r = image_open(src, ret_img, err, sizeof err);
        if (r < 0) {
                source_free(src);
                if (opt) {
                        size_t n = strlen(ref);
                        const char *why = err[0] ? err : strerror(-r);

                        if (!strncmp(why, ref, n) && !strncmp(why + n, ": ", 2))
                                why += n + 2; /* the sentence names ref already */
                        return log_error_errno(r, "--%s '%s': %s", opt, ref, why);
                }
                return log_error_errno(r, "%s", err[0] ? err : strerror(-r));
        }
        *ret_src = src;
        return 0;
}

int cli_open_image(const char *ref, struct blob_source **ret_src, struct image **ret_img) {
        return cli_open_image_opt(NULL, ref, ret_src, ret_img);
}

const char *cli_cache_dir(void) {
        return common_cache_dir(&arg_common);
}

int cli_open_cache(uint64_t max_bytes, struct chunkstore **ret) {
        const char *dir = cli_cache_dir();
        int r;

        r = chunkstore_open(dir, max_bytes, ret);
        if (r == -EPROTONOSUPPORT)
                return log_error_errno(r, "'%s' is not a hocus-blk chunk store of a known version", dir);
        if (r < 0)
                return log_error_errno(r, "Cannot open the chunk store '%s': %m", dir);
        return 0;
}
