/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Prometheus text exposition (format 0.0.4) of the daemon's counters:
 * per export (the table in blockd/ctlproto/counters.h), the NBD server
 * (connections, requests, protocol errors), the chunk fd cache and the
 * fetch scheduler. Served by the control socket ("GET /metrics") and,
 * with --metrics HOST:PORT, over HTTP.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

struct chunkfd_cache;
struct exports;
struct nbdsrv;
struct sched;

/* What the metrics are read from (borrowed; set up before the servers
 * start and torn down after they stopped; the objects are thread-safe). */
struct metrics_sources {
        struct exports *exports;
        struct sched *sched;            /* NULL: no fetch metrics */
        struct nbdsrv *nbd;             /* NULL: NBD metrics are 0 */
        struct chunkfd_cache *fds;
        uint64_t start_ns;              /* now_ns() at start, for the uptime */
};

/* Render the metrics into a malloc'd string. */
int metrics_render(const struct metrics_sources *m, char **ret, size_t *ret_len);

#define METRICS_MAX_CLIENTS_DEFAULT 8u
#define CONTROL_REQUEST_TIMEOUT_DEFAULT_S 10u

struct metrics_http;
/* Serve GET /metrics on HOST:PORT (metrics-http.c): one request per
 * connection, up to max_clients at once (0: METRICS_MAX_CLIENTS_DEFAULT;
 * at the cap the client sending its request longest is closed, and with
 * every one taking its answer a newcomer gets a 503), each request's head in and answer out within
 * request_timeout_ns (0: CONTROL_REQUEST_TIMEOUT_DEFAULT_S). ret_port
 * gets the bound port. m is copied. */
int metrics_http_start(const struct metrics_sources *m, const char *host_port, unsigned max_clients,
                       uint64_t request_timeout_ns, struct metrics_http **ret, unsigned *ret_port);
/* Stop; returns how many clients were abandoned (see clientpool_stop). */
unsigned metrics_http_stop(struct metrics_http *m);

/* Answer an HTTP request whose first line is in line (the whole head was
 * read) on fd, by the deadline (common/sockio.h). Shared by the control
 * socket. */
void metrics_http_answer(const struct metrics_sources *m, int fd, const char *line, uint64_t deadline_ns,
                         int cancel_fd);
