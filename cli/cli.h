/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shared option handling for hocus-blk subcommands. Parsed options are
 * the only globals (arg_*). Helpers here log their own errors and return
 * -errno, so a command can just "return r".
 */
#pragma once

#include <getopt.h>
#include <stdbool.h>

#include "chunkstore/store.h"
#include "registry-client/image.h"
#include "registry-client/source.h"

extern struct source_options arg_source;
extern const char *arg_cache_dir;

enum {
        OPT_COMMON_FIRST = 0x1000,
        OPT_PLAIN_HTTP,
        OPT_CA_FILE,
        OPT_CREDS,
        OPT_AUTHFILE,
        OPT_CACHE,
        OPT_COMMON_LAST,
};

/* Long options every subcommand takes; put at the end of its table. */
#define COMMON_LONG_OPTIONS                                               \
        { "help", no_argument, NULL, 'h' },                              \
        { "verbose", no_argument, NULL, 'v' },                           \
        { "debug", required_argument, NULL, 'D' },                       \
        { "plain-http", no_argument, NULL, OPT_PLAIN_HTTP },             \
        { "ca-file", required_argument, NULL, OPT_CA_FILE },             \
        { "creds", required_argument, NULL, OPT_CREDS },                 \
        { "authfile", required_argument, NULL, OPT_AUTHFILE },           \
        { "cache", required_argument, NULL, OPT_CACHE },                 \
        { NULL, 0, NULL, 0 }
#define COMMON_SHORT_OPTIONS "hvD:"

#define COMMON_HELP                                                                        \
        "Common options:\n"                                                                \
        "  --cache DIR          chunk store (default $HOCUS_BLK_CACHE or /var/cache/hocus-blk)\n" \
        "  --plain-http         talk HTTP, not HTTPS, to docker:// registries\n"          \
        "  --ca-file FILE       trust this CA for registry TLS\n"                          \
        "  --creds USER:PASS    registry credentials\n"                                    \
        "  --authfile FILE      registry auth file (else $REGISTRY_AUTH_FILE, auth.json,\n" \
        "                       $DOCKER_CONFIG/config.json)\n"                             \
        "  -v, --verbose        debug logging\n"                                           \
        "  -D NAME[=N]          turn on one debug flag (e.g. registry.http)\n"            \
        "  -h, --help           show this help\n"

/*
 * Handle an option from COMMON_LONG_OPTIONS. Returns 1 if handled, 0 if
 * not a common option, 2 for --help (caller prints its help, exits 0),
 * or -EINVAL (already logged).
 */
int cli_common_option(int c, const char *arg);

/* Report an unknown option or wrong argument count; returns -EINVAL. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Open a reference's source (logs errors). create: make an oci: layout. */
int cli_open_source(const char *ref, bool create, struct blob_source **ret);
/* Open a source and the image in it (logs errors). */
int cli_open_image(const char *ref, struct blob_source **ret_src, struct image **ret_img);
/* Open the chunk store from --cache / $HOCUS_BLK_CACHE / default. */
int cli_open_cache(uint64_t max_bytes, struct chunkstore **ret);
const char *cli_cache_dir(void);

/* Exit status for a negative errno. */
int cli_exit_status(int r);

int cmd_push(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_cache(int argc, char **argv);
int cmd_attach(int argc, char **argv);
int cmd_detach(int argc, char **argv);
int cmd_ls(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_pull(int argc, char **argv);
int cmd_mount(int argc, char **argv);
int cmd_umount(int argc, char **argv);
int cmd_record(int argc, char **argv);
int cmd_profile(int argc, char **argv);
int cmd_repack(int argc, char **argv);
