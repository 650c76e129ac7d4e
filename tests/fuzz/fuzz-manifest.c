/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: manifest parsing (untrusted JSON from registries). */
#include <stdlib.h>
#include <string.h>

#include "registry-client/manifest.h"
#include "registry-client/ref.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct image_manifest *m = NULL;
        struct image_ref *r = NULL;
        char err[256], *s = malloc(size + 1);

        if (!s)
                return 0;
        memcpy(s, data, size);
        s[size] = 0;
        if (image_manifest_parse("application/vnd.oci.image.manifest.v1+json", s, size, &m, err, sizeof err) == 0)
                image_manifest_free(m);
        if (image_ref_parse(s, &r, err, sizeof err) == 0)
                image_ref_free(r);
        free(s);
        return 0;
}
