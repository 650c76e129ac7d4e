/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The control protocol's messages (docs/ARCHITECTURE.md, "Control
 * protocol"): one JSON object per line each way. Requests carry "cmd";
 * answers "ok":true and the command's fields, or
 * {"ok":false,"error":"a sentence","errno":"ENOENT"}. Shared by the
 * server (blockd/control.c) and the client (client.c, the CLI).
 */
#pragma once

#include <json-c/json.h>

/* {"ok":true}, for the command's fields to be added. */
struct json_object *ctlproto_ok(void);
/* {"ok":false,"error":msg (strerror of r when NULL or ""),"errno":name of r}. */
struct json_object *ctlproto_error(int r, const char *msg);
/* The string under key, or NULL (missing, or not a string). */
const char *ctlproto_get_string(struct json_object *o, const char *key);

/* Write o as one line. 0 or -errno. */
int ctlproto_send(int fd, struct json_object *o);
/* Parse one line (without its newline) into an object. -EINVAL if it is
 * not a JSON object. */
int ctlproto_parse(const char *line, struct json_object **ret);

/* 0 for an answer with "ok":true, else the -errno its "errno" names
 * (-EIO when it names none we know). */
int ctlproto_answer_errno(struct json_object *resp);
