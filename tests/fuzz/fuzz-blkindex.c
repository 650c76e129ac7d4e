/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: the index decoder must reject or accept any input
 * without reading out of bounds, and anything it accepts must validate
 * and re-encode to an index that decodes identically. */
#include <stdlib.h>
#include <string.h>

#include "chunkstore/blkindex.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct blkindex *x = NULL, *y = NULL;
        char err[256];
        void *blob;
        size_t len;

        if (blkindex_decode(data, size, &x, err, sizeof err) < 0)
                return 0;
        if (blkindex_validate(x, NULL, 0) < 0)
                abort();
        if (blkindex_encode(x, &blob, &len) < 0)
                abort();
        if (blkindex_decode(blob, len, &y, err, sizeof err) < 0)
                abort();
        if (y->n_map != x->n_map || memcmp(y->map, x->map, x->n_map * sizeof *x->map) != 0)
                abort();
        blkindex_free(x);
        blkindex_free(y);
        free(blob);
        return 0;
}
