/* SPDX-License-Identifier: Apache-2.0 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "blockd/exports.h"
#include "blockd/nbd/server.h"
#include "blockd/nbd/tls.h"
#include "blockd/sched.h"
#include "registry-client/source.h"

/* blockd's options, as the command line (and a few HOCUS_BLK_* variables)
 * set them. */
struct blockd_args {
        struct source_options source;
        const char *cache_dir;
        uint64_t cache_max;
        const char *nbd_socket;
        const char *nbd_listen;
        const char *control;
        const char *run;
        const char *pidfile;
        const char *metrics;
        enum nbdsrv_tls_mode tls;
        const char *tls_cert, *tls_key, *tls_ca;
        unsigned threads;
        unsigned fd_cache;         /* 0: automatic */
        bool sendfile;
        unsigned poll_us;
        struct export_config *exports;
        size_t n_exports;
        const char *fuse;
        char **records;              /* NAME=PATH */
        size_t n_records;
        struct sched_options sched;
};

extern struct blockd_args arg;

/* Parse argv into `arg`: 1 to go on, 0 when --help or --version answered,
 * a negative errno (logged) on a bad command line. */
int blockd_parse_args(int argc, char **argv);
