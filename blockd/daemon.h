/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The daemon's state, main.c's. Everything here is set up before any
 * server thread starts and torn down after they stopped; the objects it
 * points to are thread-safe. The servers get what they need of it when
 * they are created (control.h, metrics.h), and do not include this.
 */
#pragma once

#include <stdint.h>

#include "chunkfd.h"
#include "exports.h"
#include "nbd/server.h"
#include "fuse.h"
#include "vhost/server.h"
#include "registry-client/source.h"

struct sched;

struct blockd {
        struct source_options source;
        const char *cache_dir;
        struct chunkstore *store;
        struct chunkfd_cache *fds;
        struct sched *sched;            /* the fetch scheduler every export shares */
        struct exports *exports;
        struct nbdsrv *nbd;
        uint64_t start_ns;

        /* How clients reach the NBD server (for URIs in ls and --run). */
        const char *nbd_socket;         /* NULL if none */
        char nbd_tcp[300];              /* "HOST:PORT" with the bound port; "" if none */
        bool tls_required;

        struct fusefe *fuse;            /* NULL without --fuse */
        const char *fuse_dir;           /* its mount point (files are DIR/NAME) */
        struct vhostfe *vhost;          /* vhost-user-blk sockets (of exports that have one) */
};

/* The NBD URI of an export (nbd+unix:///NAME?socket=PATH or
 * nbd://HOST:PORT/NAME; nbds... when TLS is required). malloc'd, or NULL
 * when the daemon has no NBD listener. */
char *blockd_export_uri(const struct blockd *d, const char *name);
