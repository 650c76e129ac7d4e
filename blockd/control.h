/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The control socket: a Unix stream socket (mode 0600, so only blockd's
 * user can use it) through which `hocus-blk attach|detach|ls|stats` talk to
 * a running blockd. This is the server; the messages, the counters' JSON
 * and the client are in blockd/ctlproto/. The protocol is documented in
 * docs/ARCHITECTURE.md ("Control protocol"): one JSON object per line each
 * way, e.g.
 *
 *   -> {"cmd":"attach","name":"ws","ref":"oci:/srv/l:v1","overlay":"/var/lib/ws.ovl"}
 *   <- {"ok":true,"export":{"name":"ws",...}}
 *   -> {"cmd":"detach","name":"ws"}
 *   <- {"ok":false,"error":"no export named 'ws'","errno":"ENOENT"}
 *
 * A connection may carry any number of requests. A connection whose
 * first line is "GET /metrics HTTP/1.x" gets the Prometheus metrics as an
 * HTTP response instead (curl --unix-socket works).
 *
 * Clients are bounded (blockd/clientpool.h): at most max_clients at once
 * (at the cap the one idle longest is closed to make room), one idle
 * longer than idle_timeout_ns is closed; a request
 * must arrive whole, and its answer leave, within request_timeout_ns; a
 * request that is not valid UTF-8 gets an EILSEQ error, and answers are
 * always JSON.
 */
#pragma once

#include <stdint.h>

#include "metrics.h"

struct control;

/* What main.c knows and the server does not: how clients reach an export. */
struct control_ops {
        /* The export's NBD URI, malloc'd; NULL without an NBD listener. */
        char *(*export_uri)(void *userdata, const char *name);
        /* The export's FUSE file, malloc'd; NULL without --fuse. */
        char *(*export_file)(void *userdata, const char *name);
        /* The export's vhost-user-blk socket, malloc'd; NULL if it has none. */
        char *(*export_vhost_user)(void *userdata, const char *name);
};

#define CONTROL_MAX_CLIENTS_DEFAULT 32u
#define CONTROL_IDLE_TIMEOUT_DEFAULT_S 300u

struct control_config {
        /* The objects the commands act on and report (borrowed; they
         * outlive the server): exports, the fetch scheduler, the NBD
         * server, the chunk fd cache, the start time. */
        struct metrics_sources src;
        const struct control_ops *ops;
        void *userdata;
        unsigned max_clients;           /* 0: CONTROL_MAX_CLIENTS_DEFAULT */
        uint64_t request_timeout_ns;    /* 0: CONTROL_REQUEST_TIMEOUT_DEFAULT_S */
        uint64_t idle_timeout_ns;       /* between requests; 0: CONTROL_IDLE_TIMEOUT_DEFAULT_S */
};

int control_start(const struct control_config *cfg, const char *path, struct control **ret);
/* Stop accepting, end every connection's I/O, and wait up to the request
 * timeout for commands still running (an attach waiting on a registry).
 * Returns how many were still running: they are abandoned, and the
 * objects they use (exports, scheduler, ...) must not be freed: the
 * daemon flushes the overlays and exits. NULL-safe. */
unsigned control_stop(struct control *c);

/* A server that does not listen, and its end: what control_start builds
 * on, and what tests/fuzz/fuzz-ctlproto.c runs requests through. */
int control_new(const struct control_config *cfg, struct control **ret);
void control_free(struct control *ctl);
/* The answer to one request line (len bytes, without its newline), as a
 * client of the socket gets it; the command runs in the caller's thread.
 * Returns a new reference. */
struct json_object *control_dispatch(struct control *ctl, const char *line, size_t len);
