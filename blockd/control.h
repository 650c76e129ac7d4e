/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The control socket: a Unix stream socket (mode 0600, so only blockd's
 * user can use it) through which `hocus-blk attach|detach|ls|stats` talk to
 * a running blockd. The protocol is documented in docs/ARCHITECTURE.md
 * ("Control protocol"): one JSON object per line each way, e.g.
 *
 *   -> {"cmd":"attach","name":"ws","ref":"oci:/srv/l:v1","overlay":"/var/lib/ws.ovl"}
 *   <- {"ok":true,"export":{"name":"ws",...}}
 *   -> {"cmd":"detach","name":"ws"}
 *   <- {"ok":false,"error":"no export named 'ws'","errno":"ENOENT"}
 *
 * A connection may carry any number of requests. A connection whose
 * first line is "GET /metrics HTTP/1.x" gets the Prometheus metrics as an
 * HTTP response instead (curl --unix-socket works).
 */
#pragma once

#include "daemon.h"

struct control;

int control_start(struct blockd *d, const char *path, struct control **ret);
/* Stop accepting, end idle connections, wait for requests in progress. */
void control_stop(struct control *c);
