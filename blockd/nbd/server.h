/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The NBD server: listening sockets (Unix and TCP), connections, the
 * fixed newstyle handshake and the transmission phase, over the exports
 * the daemon hands it (export.h). It knows nothing of images or overlays.
 *
 * Threads. One accept thread polls every listening socket. A connection
 * has a small pool of threads (grown on demand up to max_threads) that
 * take turns as its reader: the thread holding the read lock parses the
 * next request (from a buffer, so one recv often yields several), hands
 * the read role on, then executes the request itself and sends the reply
 * under the connection's write lock. At queue depth 1 a request therefore
 * costs no thread hand-off at all; at queue depth N up to N requests run
 * in parallel (a cache miss blocks only its own thread).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "blockd/export.h"
#include "limits.h"
#include "tls.h"

enum nbdsrv_tls_mode {
        NBDSRV_TLS_OFF,         /* NOTLS: STARTTLS is refused */
        NBDSRV_TLS_ON,          /* clients may upgrade; plain also served */
        NBDSRV_TLS_REQUIRE,     /* FORCEDTLS: nothing but STARTTLS/ABORT before TLS */
};

/* Where the server finds exports. Both are called from connection threads. */
struct nbdsrv_exports {
        /* Find an export by name ("" is the default export) and return a
         * new reference, or NULL. */
        struct export *(*get)(void *userdata, const char *name);
        /* Call fn for every export, in order (NBD_OPT_LIST). */
        void (*for_each)(void *userdata, void (*fn)(struct export *e, void *ctx), void *ctx);
        void *userdata;
};

struct nbdsrv_config {
        enum nbdsrv_tls_mode tls_mode;
        struct nbdsrv_tls *tls;         /* borrowed; required unless OFF */
        unsigned max_threads;           /* per connection; 0 = 16 */
        struct nbdsrv_limits limits;    /* a field left 0 takes its default */
        bool use_sendfile;              /* plain sockets: send cached data with sendfile(2) */
        unsigned poll_us;               /* a reader that ran out of input polls this long
                                         * before sleeping (0: never); at most ncpu-1 at once */
};

struct nbdsrv_stats {
        uint64_t connections;           /* open now */
        uint64_t connections_total;
        uint64_t handshake_failures;
        uint64_t protocol_errors;       /* bad magic, oversized requests, ... */
        uint64_t requests;
};

struct nbdsrv;

/* The process must ignore SIGPIPE: sendfile(2) and TLS writes to a client
 * that went away raise it (blockd's main does). */
int nbdsrv_new(const struct nbdsrv_config *cfg, const struct nbdsrv_exports *exports, struct nbdsrv **ret);
/* Listen on a Unix socket (created with mode 0660; an existing stale
 * socket is replaced, a live one is -EADDRINUSE). */
int nbdsrv_listen_unix(struct nbdsrv *s, const char *path);
/* Listen on HOST:PORT (PORT may be 0). ret_port gets the bound port. */
int nbdsrv_listen_tcp(struct nbdsrv *s, const char *host_port, unsigned *ret_port);
/* Start accepting. */
int nbdsrv_start(struct nbdsrv *s);
/* Disconnect every client of export e: requests already read are answered
 * (ESHUTDOWN for those not yet started), then the connections close; hard
 * also aborts replies blocked on a client that stopped reading. Returns at
 * once; the export's client count falls to zero as the connections end. */
void nbdsrv_kick_export(struct nbdsrv *s, struct export *e, bool hard);
/* Stop accepting, let in-flight requests finish (every request already
 * read is carried out and answered, never refused with ESHUTDOWN: the
 * export lives on in the next process), close every connection
 * (forcefully after grace_s seconds) and wait for all of them. */
void nbdsrv_shutdown(struct nbdsrv *s, unsigned grace_s);
/* Shut down if needed, remove Unix sockets, free. NULL is fine. */
void nbdsrv_free(struct nbdsrv *s);

void nbdsrv_get_stats(struct nbdsrv *s, struct nbdsrv_stats *ret);
