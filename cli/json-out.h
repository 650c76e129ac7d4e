/* SPDX-License-Identifier: Apache-2.0 */
/*
 * --json output of hocus-blk commands: every document is built with
 * json-c and printed here, so that quoting is json-c's and every command
 * looks the same. Keys are snake_case everywhere (manifest_digest,
 * stored_bytes, ...), sizes in bytes, times in seconds; the document is
 * the only thing a --json command writes to stdout (progress and log
 * lines go to stderr).
 */
#pragma once

#include <json-c/json.h>
#include <stdint.h>

#include "chunkstore/digest.h"

/* Print o to stdout as one document (pretty, or compact when compact)
 * and drop the reference. */
void cli_json_print(struct json_object *o, bool compact);

/* Shorthands for adding a member to an object. */
void json_add_u64(struct json_object *o, const char *key, uint64_t v);
void json_add_str(struct json_object *o, const char *key, const char *v);
void json_add_double(struct json_object *o, const char *key, double v);
void json_add_bool(struct json_object *o, const char *key, bool v);
void json_add_digest(struct json_object *o, const char *key, const struct digest *d);
