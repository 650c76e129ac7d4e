/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the NBD server lets its clients hold: connections (in all and from
 * one peer), request data in flight (per connection and in all), and time
 * to finish the handshake. The host operator sets them (blockd --nbd-*);
 * the defaults are here and nowhere else.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

struct nbdsrv_limits {
        unsigned max_connections;       /* open at once, all clients */
        unsigned peer_connections;      /* open at once from one peer: an IP address, or a process on a Unix socket */
        uint64_t conn_buffer;           /* READ/WRITE data in flight on one connection (a larger request runs alone) */
        uint64_t buffer_total;          /* the same across every connection: beyond it, requests wait for room */
        unsigned handshake_timeout_s;   /* from accept to the end of the handshake, in all */
};

/* An initializer: struct nbdsrv_limits l = NBDSRV_LIMITS_DEFAULT; */
#define NBDSRV_LIMITS_DEFAULT                                                                   \
        { .max_connections = 1024, .peer_connections = 16, .conn_buffer = 32ull << 20,         \
          .buffer_total = 1ull << 30, .handshake_timeout_s = 30 }

/* Requests up to this size take no budget: the hot path (small cached
 * reads) stays off the budget's lock, and what they hold is bounded by
 * the threads a connection has (--threads x 64 KiB). */
#define NBDSRV_BUDGET_FREE (64u << 10)

struct nbdsrv;
struct conn;
struct worker;

/* Room for a request's data: blocks until the connection and the server
 * have it (a request larger than a limit waits until it is alone under
 * it). 0, or -ESHUTDOWN when the connection dies meanwhile. The worker
 * holds the reservation until nbdsrv_budget_put(). */
int nbdsrv_budget_get(struct worker *w, uint64_t len);
/* As above without waiting: 0 or -EAGAIN. */
int nbdsrv_budget_try(struct worker *w, uint64_t len);
/* Give the worker's reservation back (nothing held is fine). */
void nbdsrv_budget_put(struct worker *w);
/* Wake budget waiters (a connection died). */
void nbdsrv_budget_wake(struct nbdsrv *s);

/* May a new connection from this peer be served? Caller holds s->lock.
 * Logs (at most every few seconds) when not. */
bool nbdsrv_admit(struct nbdsrv *s, const char *peer_key);
/* Disconnect clients whose handshake outlived its deadline. Returns the
 * milliseconds until the next deadline, -1 if none. */
int nbdsrv_expire_handshakes(struct nbdsrv *s);
