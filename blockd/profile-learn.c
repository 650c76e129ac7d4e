/* SPDX-License-Identifier: Apache-2.0 */
#include "profile-learn.h"

#include <errno.h>
#include <stdlib.h>

#include "chunkstore/profile-learned.h"
#include "common/cleanup.h"
#include "common/log.h"

void profile_learn_save(struct chunkstore *cs, const struct digest *m, const char *name, const struct profile *p,
                        uint64_t fetched) {
        _cleanup_free_ char *path = NULL;
        int r;

        if (!p->count || !fetched) {
                log_debug("Export %s: nothing learned to keep (%u ranges read first, %llu chunks fetched)", name,
                          p->count, (unsigned long long) fetched);
                return;
        }
        path = chunkstore_learned_path(cs, m);
        r = chunkstore_learned_put(cs, m, p);
        if (r < 0) {
                log_warning_errno(r, "Export %s: cannot keep the profile it learned in %s: %m", name,
                                  path ? path : "the chunk store");
                return;
        }
        log_info("Export %s: learned its first reads (%u ranges), kept in %s for the next cold start", name, p->count,
                 path ? path : "the chunk store");
}
