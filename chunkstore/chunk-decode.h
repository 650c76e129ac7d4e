/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A chunk's stored bytes (as they lie in a pack) back to its raw bytes,
 * verified: the one place where bytes read from an image are checked
 * against the chunk digest of the index. Everything that fetches chunks
 * (the bulk engine of pull, export, repack and inspect --verify, and
 * blockd's fetch scheduler) decodes through here, so nothing unverified
 * is ever stored, written out or served.
 *
 * Pure: no I/O, no locking; thread-safe (the codecs keep per-thread
 * contexts).
 */
#pragma once

#include "blkindex.h"

/*
 * Decode c->stored_len bytes at stored with c's codec into buf (c->raw_len
 * bytes) and check that they hash to c->digest. Returns 0, or -EBADMSG when
 * the bytes do not decode to exactly raw_len bytes or do not match the
 * digest (buf then holds garbage the caller must drop). stored and buf may
 * be the same only for CODEC_RAW.
 */
int chunk_decode(const struct blkindex_chunk *c, const void *stored, void *buf);

/*
 * Check stored bytes without keeping the raw ones (repack, verify): decode
 * into scratch (c->raw_len bytes) and compare. Returns 0 or -EBADMSG.
 * For CODEC_RAW nothing is copied and scratch is not touched.
 */
int chunk_verify(const struct blkindex_chunk *c, const void *stored, void *scratch);
