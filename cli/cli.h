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
#include "registry-client/common-options.h"
#include "registry-client/image.h"
#include "registry-client/source.h"

/* --cache and the registry options (registry-client/common-options.h:
 * the table blockd takes too). */
extern struct common_args arg_common;

#define COMMON_SHORT_OPTIONS "hvD:"

/* A command's getopt table (ending in a zero entry) followed by the
 * common options. The array is static: one command parses per process. */
const struct option *cli_options(const struct option *own);

/*
 * getopt_long for a command, with one addition: when the environment has
 * HOCUS_BLK_LIST_OPTIONS set, the first call prints every option the
 * command accepts (-x, --name, --name= for one taking an argument; one a
 * line) and exits 0. The man page and completion generator and the test
 * that --help documents every option read the parser's table this way.
 */
int cli_getopt(int argc, char **argv, const char *shortopts, const struct option *longopts);

/* The common options' help, from their table. */
void cli_common_help(void);

/*
 * Handle one of the common options. Returns 1 if handled, 0 if
 * not a common option, 2 for --help (caller prints its help, exits 0),
 * or -EINVAL (already logged).
 */
int cli_common_option(int c, const char *arg);
/*
 * The default: of a command's option switch, what its own options leave:
 * a common option (cli_common_option), --help (help printed) or an
 * unknown one (a usage error for cmd). Returns 1 to go on parsing, 0
 * after --help (the command returns 0), or -EINVAL (logged).
 */
int cli_other_option(const char *cmd, int c, const char *arg, void (*help)(void));

/* Report an unknown option or wrong argument count; returns -EINVAL. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Open a reference's source (logs errors). create: make an oci: layout. */
int cli_open_source(const char *ref, bool create, struct blob_source **ret);
/* Open a source and the image in it (logs errors). */
int cli_open_image(const char *ref, struct blob_source **ret_src, struct image **ret_img);
/* The same for the reference an option names: errors start "--OPT 'REF': ". */
int cli_open_image_opt(const char *opt, const char *ref, struct blob_source **ret_src, struct image **ret_img);
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
int cmd_login(int argc, char **argv);
int cmd_logout(int argc, char **argv);
