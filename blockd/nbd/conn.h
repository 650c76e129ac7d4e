/* SPDX-License-Identifier: Apache-2.0 */
/* One NBD connection: shared by handshake.c, server.c and transmission.c only. */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "io.h"
#include "limits.h"
#include "nbd-protocol.h"
#include "server.h"

#define CONN_RBUF 65536u
#define NBD_MAX_REQUEST (32u << 20)     /* largest READ/WRITE payload we accept */
#define NBD_MAX_OPTION 65536u           /* option data we are willing to read */
#define NBD_MAX_OPTION_DISCARD (1u << 20)
#define NBD_MAX_OPTIONS 256u            /* per connection, before a hard disconnect */
#define NBD_META_ID_ALLOCATION 1u

struct nbdsrv {
        struct nbdsrv_config cfg;
        struct nbdsrv_exports exports;

        int listen_fds[8];
        char *unix_paths[8];
        unsigned n_listen;
        int wake_fd;                    /* eventfd: stop the accept thread */
        pthread_t accept_thread;
        bool started;

        pthread_mutex_t lock;           /* protects the connection list */
        pthread_cond_t cond;            /* signalled when a connection ends */
        struct conn *conns;
        unsigned n_conns;
        bool stopping;
        uint64_t next_id;

        uint64_t refused, refused_logged_ns;    /* connections refused (limits.c), under lock */

        pthread_mutex_t budget_lock;    /* the buffer budget (limits.c) */
        pthread_cond_t budget_cond;     /* room was given back, or a connection died */
        uint64_t buffered;              /* request data reserved, all connections */

        uint64_t connections_total, handshake_failures, protocol_errors, requests;      /* atomic */
        unsigned spinners, max_spinners;        /* readers polling now (atomic), and the bound */
};

struct conn {
        struct nbdsrv *srv;
        struct conn *prev, *next;       /* srv->conns, under srv->lock */
        uint64_t id;
        char peer[80];
        char peer_key[64];              /* who counts as one peer: "pid N" or the IP address */
        uint64_t handshake_deadline_ns; /* 0 once the handshake is over (atomic) */
        uint64_t buffered;              /* request data reserved, under srv->budget_lock */
        struct nbdsrv_io io;

        /* Negotiated in the handshake, read-only afterwards. */
        struct export *exp;             /* reference held while connected */
        bool fixed, no_zeroes, structured;
        bool meta_alloc;                /* base:allocation selected */
        char *meta_export;              /* export named in SET_META_CONTEXT */
        uint16_t tflags;
        unsigned n_options;

        /* The reader's buffer: owned by whoever holds read_lock. */
        pthread_mutex_t read_lock;
        uint8_t *rbuf;
        size_t rpos, rlen;
        unsigned poll_misses, poll_skips;       /* adaptive polling (recv_polling) */

        /* Replies: whole messages (or structured chunks) under write_lock. */
        pthread_mutex_t write_lock;

        /* Thread accounting, under lock. */
        pthread_mutex_t lock;
        unsigned threads, waiting;
        bool dead;                      /* stop reading: EOF, error, DISC or kicked */
        bool kicked;
};

/* Exactly len bytes from the connection (buffered). 0, -ECONNRESET at
 * end of stream, -errno. Caller holds read_lock (or is the handshake). */
int conn_read(struct conn *c, void *buf, size_t len);
/* Run the handshake: 1 = enter transmission with c->exp set, 0 = the
 * client ended it cleanly, <0 = failed (logged). */
int nbdsrv_handshake(struct conn *c);
/* Transmission flags for an export on this connection. */
uint16_t nbdsrv_tflags(const struct conn *c, const struct export *e);

/* Mark the connection dead: the reader stops, the last thread closes it.
 * hard: also stop writes (the peer is gone or misbehaving). */
void conn_set_dead(struct conn *c, bool hard);

/* Per-thread state of the transmission phase. */
#define WORKER_SEGS 128u
#define BATCH_CAP (256u << 10)          /* room for replies gathered before one send */
#define BATCH_FLUSH (16u << 10)         /* send once this much is gathered (small: the client works meanwhile) */
struct worker {
        struct conn *c;
        uint8_t *buf;                   /* write payloads, read data */
        size_t cap;
        uint8_t *batch;                 /* replies of fast reads, not sent yet */
        size_t batch_len;
        uint64_t reserved;              /* budget held for the request being served (limits.c) */
        struct export_read pending;     /* a read the fast path started */
        bool has_pending;
        struct export_seg segs[WORKER_SEGS];
};

/* Bytes of input buffered and not yet parsed. */
static inline size_t conn_buffered(const struct conn *c) {
        return c->rlen - c->rpos;
}

/* Make w->buf hold at least len bytes. */
int worker_buf(struct worker *w, size_t len);
/* Free the buffers and give back any budget held (the thread ends). */
void worker_free_buffers(struct worker *w);
/*
 * The fast path, run by the reader without handing the read role on: a
 * READ whose every chunk is open already (nothing can block) is answered
 * at once; small replies are gathered in w->batch and sent together.
 * backlog: more requests are waiting, so a large read should go to another
 * thread instead. Returns 1 if answered, 0 to take the slow path (the
 * read, if started, is left in w->pending), <0 if the connection is dead.
 */
int nbdsrv_try_fast(struct worker *w, const struct nbdsrv_request *rq, bool backlog);
/* Send the gathered replies. 0 or <0 (connection dead). */
int nbdsrv_flush_batch(struct worker *w);
/* Execute one request (payload in w->buf for WRITE) and send its reply.
 * Returns 0, or <0 when the connection must end. */
int nbdsrv_execute(struct worker *w, const struct nbdsrv_request *rq);
