/* SPDX-License-Identifier: Apache-2.0 */
/* Shared by the commands that talk to a running blockd over its control
 * socket (attach, detach, ls, stats). */
#pragma once

#include <getopt.h>
#include <stdbool.h>

#include <json-c/json.h>

enum {
        OPT_BLOCKD_CONTROL = 0x2000,
        OPT_BLOCKD_JSON,
        OPT_BLOCKD_OVERLAY,
};

#define BLOCKD_LONG_OPTIONS_NO_JSON                                            \
        { "control", required_argument, NULL, OPT_BLOCKD_CONTROL },            \
        { "help", no_argument, NULL, 'h' },                                    \
        { "verbose", no_argument, NULL, 'v' },                                 \
        { NULL, 0, NULL, 0 }
#define BLOCKD_LONG_OPTIONS                                                    \
        { "json", no_argument, NULL, OPT_BLOCKD_JSON },                        \
        BLOCKD_LONG_OPTIONS_NO_JSON

#define BLOCKD_HELP                                                                                  \
        "  --control PATH       blockd's control socket (default $HOCUS_BLK_CONTROL,\n"           \
        "                       /run/hocus-blk/control.sock as root,\n"                           \
        "                       else $XDG_RUNTIME_DIR/hocus-blk/control.sock)\n"                  \
        "  -v, --verbose        debug logging\n"                                                  \
        "  -h, --help           show this help\n"

/*
 * Send a request built by the caller (owned by this function) to blockd
 * and check the answer. Returns 0 with the response (caller puts it), or
 * a logged -errno: the daemon's error ("errno" mapped back) or a
 * connection failure.
 */
int blockd_call(const char *cmd, const char *control, struct json_object *req, struct json_object **ret);

/* One option of a command that asks blockd (json: NULL when it has no
 * --json): the shared ones, --help (help printed) or an unknown one (a
 * usage error for cmd). Returns 1 to go on parsing, 0 after --help (the
 * command returns 0), or -EINVAL (logged). */
int blockd_option(const char *cmd, int c, const char *arg, const char **control, bool *json, void (*help)(void));
