/* SPDX-License-Identifier: Apache-2.0 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "blockd/config.h"
#include "blockd/exports.h"
#include "blockd/nbd/server.h"
#include "blockd/nbd/tls.h"
#include "blockd/sched.h"
#include "common/opttable.h"
#include "registry-client/common-options.h"

/* blockd's options, as the command line (and a few HOCUS_BLK_* variables)
 * set them. */
struct blockd_args {
        struct common_args common;      /* --cache, registry options */
        uint64_t cache_max;
        const char *nbd_socket;
        const char *nbd_listen;
        const char *control;
        const char *run;
        const char *pidfile;
        const char *metrics;
        unsigned control_max_clients;   /* 0: the default (control.h) */
        unsigned metrics_max_clients;   /* 0: the default (metrics.h) */
        uint64_t request_timeout_ns;    /* control and metrics clients; 0: the default */
        unsigned control_idle_timeout_s; /* 0: the default (control.h) */
        enum nbdsrv_tls_mode tls;
        const char *tls_cert, *tls_key, *tls_ca;
        const char *tls_psk;            /* --tls-psk FILE: keys instead of certificates */
        const char *tls_certificates;   /* --tls-certificates DIR: server-cert.pem, server-key.pem */
        unsigned threads;
        unsigned fd_cache;         /* 0: automatic */
        bool sendfile;
        uint64_t scrub_rate;       /* bytes/s; 0: off */
        uint64_t learn_window_ns;  /* --learn-window; 0: learn nothing */
        unsigned poll_us;
        struct nbdsrv_limits nbd_limits;
        struct export_config *exports;  /* the command line's, then the config file's */
        size_t n_exports;
        size_t n_cmdline_exports;       /* the first ones, from --export */
        const char *config_path;        /* --config, or the default when it exists; NULL: none */
        struct blockd_config *config;   /* as loaded (and reloaded); its values back the [blockd] keys */
        const char *fuse;
        const char *vhost_user_blk;  /* DIR: every export as DIR/NAME.sock */
        const char *state_dir;       /* NULL: the default; "none": no state */
        char **records;              /* NAME=PATH */
        size_t n_records;
        struct sched_options sched;
};

extern struct blockd_args arg;

/* Every option blockd takes: its own tables and the common one, applying
 * to a (the config file's reload checks its keys against a scratch copy). */
#define BLOCKD_N_OPTION_TABLES 3
void blockd_option_tables(struct blockd_args *a, struct opt_table ret[BLOCKD_N_OPTION_TABLES]);

/* Is export name given by --export (the config file cannot change it)? */
bool blockd_export_from_cmdline(const char *name);

/* Parse argv into `arg`: 1 to go on, 0 when --help or --version answered,
 * a negative errno (logged) on a bad command line. */
int blockd_parse_args(int argc, char **argv);
