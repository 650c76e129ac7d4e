/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The writable overlay of an export: one sparse file holding a header, a
 * persistent allocation map and the data blocks written by clients. Reads
 * merge the overlay over the image; WRITE, TRIM and WRITE_ZEROES land here.
 *
 * File layout (all integers little-endian):
 *
 *   0                 header (4 KiB): magic "HOCUSOVL", version, block size,
 *                     virtual size, region offsets, the image's manifest
 *                     digest, SHA-256 of the fields above
 *   map_offset        the allocation map: 2 bits per block (ABSENT, DATA,
 *                     ZERO), 32 blocks per 64-bit word, in 4 KiB pages
 *   data_offset       block b lives at data_offset + b * block_size
 *
 * Durability: the map is changed in memory and written back only by
 * overlay_flush(), in this order: snapshot the dirty map pages, fdatasync
 * (the data of every block the snapshot calls DATA is then on disk), write
 * the snapshot, fdatasync. So the on-disk map never names a block whose
 * data is not durable, whatever is torn by a crash: after a crash every
 * block reads as it did at the last completed flush or as a later write
 * left it, and a write never touches the bytes of another block (a partial
 * block is completed from the layer below and rewritten whole). FUA is a
 * write followed by a flush.
 *
 * Threading: every function may be called from any thread, concurrently.
 * Map entries change with atomic compare-and-swap; a write stores its data
 * before it flips the block to DATA, so a concurrent reader sees the old
 * or the new bytes, never a hole. Writes to part of a block serialise on
 * a striped lock; overlapping concurrent writes are the client's business
 * (as on any disk). Flushes serialise on their own lock.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chunkstore/digest.h"

#define OVERLAY_BLOCK_SIZE 4096u
#define OVERLAY_MAGIC "HOCUSOVL"
#define OVERLAY_VERSION 1

enum overlay_state {
        OVERLAY_ABSENT = 0,     /* not written: read the image below */
        OVERLAY_DATA = 1,       /* bytes in the overlay file */
        OVERLAY_ZERO = 2,       /* trimmed or zeroed: reads as zeroes */
};

struct overlay;

/* Reads len bytes of the layer below (the image) at off: used to complete
 * a partially written block. 0 or -errno. */
typedef int (*overlay_below_fn)(void *userdata, void *buf, size_t len, uint64_t off);

struct overlay_stats {
        uint64_t blocks_data;   /* blocks in state DATA */
        uint64_t blocks_zero;   /* blocks in state ZERO */
        uint64_t flushes;       /* flushes that reached the disk */
};

/*
 * Open the overlay at path for an image of `size` bytes identified by its
 * manifest digest, creating it (atomically: temp file, fsync, link into place) if
 * it does not exist. An existing overlay must have been made for the same
 * image (-EMEDIUMTYPE otherwise) and be intact (-EBADMSG). The file is
 * locked (flock) while open: a second opener gets -EBUSY. err gets a
 * reason on failure.
 */
int overlay_open(const char *path, uint64_t size, const struct digest *image, struct overlay **ret, char *err,
                 size_t errlen);
/* Close without flushing (callers flush first). NULL is fine. */
void overlay_close(struct overlay *o);

const char *overlay_path(const struct overlay *o);
uint64_t overlay_size(const struct overlay *o);
void overlay_get_stats(struct overlay *o, struct overlay_stats *ret);

/*
 * The state at off and how far it runs: *ret_len gets the length (at most
 * len, at least 1 byte) of the run of blocks in the same state starting at
 * off. Lock-free.
 */
enum overlay_state overlay_state_run(struct overlay *o, uint64_t off, uint64_t len, uint64_t *ret_len);

/* Read bytes of DATA blocks (as found by overlay_state_run). 0 or -errno. */
int overlay_read(struct overlay *o, void *buf, size_t len, uint64_t off);
/* The fd and file offset where byte off of a DATA run lives (for
 * sendfile). Borrowed fd, valid until overlay_close(). */
int overlay_data_fd(struct overlay *o, uint64_t off, uint64_t *ret_file_off);

/* Write len bytes at off. Partial blocks in state ABSENT are completed
 * with bytes read through below(). fua: flush before returning. */
int overlay_write(struct overlay *o, const void *buf, size_t len, uint64_t off, bool fua, overlay_below_fn below,
                  void *userdata);
/* WRITE_ZEROES: whole blocks become ZERO (space released unless
 * no_hole); partial blocks get zeroes written. */
int overlay_zero(struct overlay *o, uint64_t off, uint64_t len, bool no_hole, bool fua, overlay_below_fn below,
                 void *userdata);
/* TRIM: whole blocks inside the range become ZERO and release their
 * space; partial blocks at the edges are left alone (the protocol allows
 * it). */
int overlay_trim(struct overlay *o, uint64_t off, uint64_t len, bool fua);
/* True when the range [off, off+len) covers no whole block except in
 * aligned form, i.e. overlay_zero would not need to write bytes. */
bool overlay_zero_is_fast(const struct overlay *o, uint64_t off, uint64_t len);

/* Make every write completed before this call durable (see above). */
int overlay_flush(struct overlay *o);
