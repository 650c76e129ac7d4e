/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: the boot profile decoder and its chunk expansion. */
#include <stdlib.h>

#include "chunkstore/profile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct profile *p = NULL;
        uint64_t *chunks, n;
        char err[256];

        if (profile_decode(data, size, &p, err, sizeof err) < 0)
                return 0;
        if (profile_chunks(p, 1ULL << 30, 65536, &chunks, &n) == 0) {
                for (uint64_t i = 0; i < n; i++)
                        if (chunks[i] >= (1ULL << 30) / 65536)
                                abort();
                free(chunks);
        }
        profile_free(p);
        return 0;
}
