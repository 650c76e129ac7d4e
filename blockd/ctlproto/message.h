/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The control protocol's messages (docs/ARCHITECTURE.md, "Control
 * protocol"): one JSON object per line each way. Requests carry "cmd";
 * answers "ok":true and the command's fields, or
 * {"ok":false,"error":"a sentence","errno":"ENOENT"}. Shared by the
 * server (blockd/control.c) and the client (client.c, the CLI).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

/* {"ok":true}, for the command's fields to be added. */
struct json_object *ctlproto_ok(void);
/* {"ok":false,"error":msg (strerror of r when NULL or ""),"errno":name of r}. */
struct json_object *ctlproto_error(int r, const char *msg);
/* The string under key, or NULL (missing, or not a string). */
const char *ctlproto_get_string(struct json_object *o, const char *key);

/* Write o as one line, by the deadline (common/sockio.h: DEADLINE_NEVER,
 * cancel_fd -1 for none). What goes out is always valid UTF-8 (a byte
 * that is not, in a string, is sent as U+FFFD), so always JSON. 0 or
 * -errno (-ETIMEDOUT, -EPIPE, ...; never SIGPIPE). */
int ctlproto_send(int fd, struct json_object *o, uint64_t deadline_ns, int cancel_fd);
/* Parse one line (len bytes, without its newline) into an object.
 * -EILSEQ if it is not valid UTF-8 or a string holds a NUL (\u0000);
 * -EINVAL if it is not one JSON object (and nothing else but space). */
int ctlproto_parse(const char *line, size_t len, struct json_object **ret);

/* 0 for an answer with "ok":true, else the -errno its "errno" names
 * (-EIO when it names none we know). */
int ctlproto_answer_errno(struct json_object *resp);
