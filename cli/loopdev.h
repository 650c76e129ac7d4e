/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Loop devices over a file (our FUSE file) with an offset and a size
 * limit, so a partition is mounted without kernel partition support.
 * Devices are set up with LO_FLAGS_AUTOCLEAR: the kernel detaches one by
 * itself when its last user goes (the filesystem at umount, or our fd
 * when a mount fails), so a crash leaves nothing attached.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Attach a free loop device to [offset, offset+size) of path (size 0 =
 * to the end). Returns an fd on the device (close it once the device is
 * in use, e.g. mounted) and its name (/dev/loopN) in name.
 */
int loop_attach(const char *path, uint64_t offset, uint64_t size, bool readonly, bool direct_io, char *name,
                size_t namelen);

/* The backing file of a loop device ("" when detached). 0 or -errno. */
int loop_backing(const char *name, char *buf, size_t len);

/* Detach the device if it is still attached to backing; waits up to
 * timeout_ms for an autoclear in progress first. 0, -EBUSY, -errno. */
int loop_detach(const char *name, const char *backing, unsigned timeout_ms);
