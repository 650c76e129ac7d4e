/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Boot profiles learned on this host: blockd records the first reads of
 * every cold attach (blockd/profile-learn.h) and keeps them here, one per
 * image, named by the image's manifest digest:
 *
 *   DIR/learned/<64 hex of the manifest digest>   a profile (profile.h)
 *
 * Like DIR/meta it lives in the chunk store's directory and is no part of
 * the chunk cache (eviction walks DIR/chunks only). Unlike DIR/meta the
 * name is not the content's digest: a later cold attach replaces the
 * profile. Writes are atomic (temp, rename); reads are decoded with the
 * hardened profile decoder, so a damaged file reads as malformed, never
 * as a profile. The next cold start of the image prefetches it when no
 * profile is published; `hocus-blk profile push REF --learned` publishes
 * it merged with the published one.
 */
#pragma once

#include <stddef.h>

#include "digest.h"
#include "profile.h"
#include "store.h"

/* Keep p as what was learned about the image whose manifest is m
 * (replacing what was there). 0 or -errno. */
int chunkstore_learned_put(struct chunkstore *cs, const struct digest *m, const struct profile *p);
/* The profile learned for manifest m: -ENOENT if none, -EBADMSG (with the
 * reason in err) if the file is malformed. */
int chunkstore_learned_get(struct chunkstore *cs, const struct digest *m, struct profile **ret, char *err,
                           size_t errlen);
/* Its path (for messages): DIR/learned/HEX. Caller frees. */
char *chunkstore_learned_path(struct chunkstore *cs, const struct digest *m);
