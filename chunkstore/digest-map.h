/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A hash map from digest to a 32-bit value (a chunk number), open
 * addressing with linear probing. Digests are uniformly distributed, so
 * their first 8 bytes are the hash. Not thread-safe: one owner.
 */
#pragma once

#include <stdint.h>

#include "digest.h"

struct digest_map;

int digest_map_new(uint64_t expected, struct digest_map **ret);
void digest_map_free(struct digest_map *m);
/* Value for d, or -ENOENT. Values are 0..UINT32_MAX-1. */
int64_t digest_map_get(const struct digest_map *m, const struct digest *d);
/* Insert or replace. 0 or -ENOMEM. */
int digest_map_put(struct digest_map *m, const struct digest *d, uint32_t value);
uint64_t digest_map_count(const struct digest_map *m);
