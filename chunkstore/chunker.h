/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fixed-size chunking of a source image. Holes are skipped without reading
 * them: SEEK_DATA/SEEK_HOLE lists the chunks that overlap data; everything
 * else is zero by construction. (All-zero chunks inside data regions are
 * detected later, when the chunk is read.)
 */
#pragma once

#include <stdint.h>

/* Size of a regular file or block device. */
int source_image_size(int fd, uint64_t *ret);

/*
 * List the numbers of the chunks of [0, size) that overlap data, in
 * ascending order (malloc'd array). Filesystems without SEEK_DATA and block
 * devices list every chunk. ret_data_bytes: bytes in data regions.
 */
int chunker_data_chunks(int fd, uint64_t size, uint32_t chunk_size, uint64_t **ret_list, uint64_t *ret_n,
                        uint64_t *ret_data_bytes);
