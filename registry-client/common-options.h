/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The options every hocus-blk program takes, blockd and each hocus-blk
 * command alike: the chunk store, how to reach registries, debug output,
 * --help. One table (common_options), one help text, one parser
 * (common_option_set); the config file's [blockd] section takes the same
 * keys. Values are borrowed: they must outlive the arguments.
 */
#pragma once

#include <stddef.h>

#include "common/opttable.h"
#include "registry-client/source.h"

struct common_args {
        struct source_options source;
        const char *cache_dir;          /* NULL: common_cache_dir() picks */
        char *creds_buf;                /* --creds-file's contents (source.creds points here) */
};

/* getopt values of the common long options ('h', 'v', 'D' are short ones). */
enum {
        OPT_COMMON_FIRST = 0x1000,
        OPT_PLAIN_HTTP,
        OPT_CA_FILE,
        OPT_CREDS,
        OPT_CREDS_FILE,
        OPT_AUTHFILE,
        OPT_CACHE,
        OPT_TLS_VERIFY,
        OPT_CERT_DIR,
        OPT_COMMON_LAST,
};

extern const struct opt common_options[];

/* opt_table.set for common_options; ctx is a struct common_args. -v and
 * -D set the log level and debug flags. 'h' is the caller's to answer. */
int common_option_set(void *ctx, int id, const char *value, char *err, size_t errlen);

/* The table with its title, applying to a. */
#define COMMON_OPTION_TABLE(a) \
        ((struct opt_table) { "Common options", common_options, common_option_set, (a) })

/* --cache, else $HOCUS_BLK_CACHE, else /var/cache/hocus-blk. */
const char *common_cache_dir(const struct common_args *a);

/* The source options with credentials from $HOCUS_BLK_CREDS (USER:PASS)
 * when neither --creds nor --creds-file gave any, and the registry tuning
 * from the environment
 * (HOCUS_BLK_HTTP_STALL_TIMEOUT, _ATTEMPTS, _CONNECTIONS: tests use them
 * to fail fast; ignored when unset or malformed). */
struct source_options common_source_options(const struct common_args *a);
