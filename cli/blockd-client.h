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

/* Parse the shared options; returns 1 handled, 0 not ours, 2 help, <0. */
int blockd_option(int c, const char *arg, const char **control, bool *json);
