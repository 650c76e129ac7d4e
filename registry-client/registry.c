/* SPDX-License-Identifier: Apache-2.0 */
/* The docker:// registry backend: not built yet (see the registry-client issue). */
#include <errno.h>

#include "source.h"

int registry_open(struct image_ref *ref, const struct source_options *o, struct blob_source **ret) {
        return -EPROTONOSUPPORT;
}
