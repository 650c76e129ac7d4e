/* SPDX-License-Identifier: Apache-2.0 */
/* The client side of the control socket (blockd/control.h), for the CLI:
 * one request, one answer (message.h). */
#pragma once

#include <stddef.h>

#include <json-c/json.h>

/* The control socket path: $HOCUS_BLK_CONTROL; /run/hocus-blk/control.sock
 * for root; $XDG_RUNTIME_DIR/hocus-blk/control.sock otherwise; NULL if
 * none applies. buf holds at least 256 bytes. */
const char *control_default_path(char *buf, size_t len);

/*
 * Send one request and read its response. Returns 0 with the response
 * object (caller puts it) when the daemon answered, even with "ok":false;
 * -errno when it could not be reached (err says why).
 */
int control_call(const char *path, struct json_object *req, struct json_object **ret, char *err, size_t errlen);
