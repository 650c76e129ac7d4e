/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Where an export's image comes from, opened lazily: a blob source (source.h)
 * that stands in for a registry that may be unreachable. Opening a
 * docker:// source contacts the registry; when that fails, the origin
 * keeps the reason, answers every request with that error at once and
 * reconnects by itself in the background (250 ms doubling to 5 s), so
 * blockd starts and serves what is local while the registry is down and
 * fetches again as soon as it is back. Once connected it forwards every
 * op to the registry source, noting whether the network answered (for
 * `hocus-blk ls`: online or offline).
 *
 * Other references (oci: layouts) are local: origin_open opens them
 * directly.
 *
 * Thread-safe, like every source.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "registry-client/source.h"

/* Parse ref and open its source: -EINVAL with a reason in err for a bad
 * reference; a registry that cannot be reached is not an error here. */
int origin_open(const char *ref, const struct source_options *o, struct blob_source **ret, char *err, size_t errlen);

/* Whether the source's network answered last time (always true for
 * sources that are not origins); why (optional) gets the reason when not. */
bool origin_online(struct blob_source *s, char *why, size_t len);
