/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Prometheus text exposition (format 0.0.4) of the daemon's counters:
 * per export (reads, writes, bytes served and fetched, cache hits and
 * misses, errors, clients, overlay use), the NBD server (connections,
 * requests, protocol errors) and the chunk fd cache. Served by the control
 * socket ("GET /metrics") and, with --metrics HOST:PORT, over HTTP.
 */
#pragma once

#include <stddef.h>

#include "daemon.h"

/* Render the metrics into a malloc'd string. */
int metrics_render(struct blockd *d, char **ret, size_t *ret_len);

struct metrics_http;
/* Serve GET /metrics on HOST:PORT (one thread, one request per
 * connection). ret_port gets the bound port. */
int metrics_http_start(struct blockd *d, const char *host_port, struct metrics_http **ret, unsigned *ret_port);
void metrics_http_stop(struct metrics_http *m);

/* Answer an HTTP request whose first line is in line (already read) on
 * fd: reads the rest of the headers, writes the response. Shared by the
 * control socket. */
void metrics_http_answer(struct blockd *d, int fd, const char *line);
