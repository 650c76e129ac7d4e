/* SPDX-License-Identifier: Apache-2.0 */
#include "profile-find.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chunkstore/meta.h"
#include "chunkstore/profile-learned.h"
#include "chunkstore/profile.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"
#include "registry-client/profile-artifact.h"

#define PROFILE_LOCAL_MAX (256u << 20)

/* The published profile of e's image, decoded. -ENOENT if none. */
static int find_published(struct export *e, struct profile **ret, struct profile_prefetch_info *info) {
        _cleanup_free_ void *buf = NULL;
        struct profile_found found;
        char why[256], ds[DIGEST_STRING_MAX];
        size_t len;
        int r;

        r = profile_artifact_find(export_source(e), export_manifest_digest(e), export_image_manifest(e), &buf, &len,
                                  &found);
        if (r < 0)
                return r;
        r = profile_decode(buf, len, ret, why, sizeof why);
        if (r < 0) {
                log_warning("Export %s: the published profile %s is malformed: %s", export_name(e),
                            digest_to_string(&found.blob, ds), why);
                return r;
        }
        info->has_blob = true;
        info->blob = found.blob;
        r = chunkstore_meta_put(export_chunkstore(e), &found.blob, buf, len, 0);
        if (r < 0)
                log_debug("Export %s: keeping profile %s locally failed: %s", export_name(e),
                          digest_to_string(&found.blob, ds), strerror(-r));
        if (found.origin == PROFILE_ORIGIN_LAYER)
                snprintf(info->source, sizeof info->source, "the manifest's profile layer");
        else
                snprintf(info->source, sizeof info->source, "referrer %s%s%s", digest_to_string(&found.manifest, ds),
                         found.created[0] ? " of " : "", found.created);
        return 0;
}

/* The local copy of the published profile found at an earlier attach. */
static int find_local(struct export *e, const char *known_blob, struct profile **ret,
                      struct profile_prefetch_info *info) {
        _cleanup_free_ void *buf = NULL;
        struct digest d;
        char why[256];
        size_t len;
        int r;

        if (!known_blob || digest_parse(known_blob, &d) < 0)
                return -ENOENT;
        r = chunkstore_meta_get(export_chunkstore(e), &d, PROFILE_LOCAL_MAX, &buf, &len);
        if (r < 0)
                return r;
        r = profile_decode(buf, len, ret, why, sizeof why);
        if (r < 0)
                return r;
        info->has_blob = true;
        info->blob = d;
        snprintf(info->source, sizeof info->source, "the local copy of %s", known_blob);
        return 0;
}

/* What an earlier cold attach of this image learned on this host. */
static int find_learned(struct export *e, struct profile **ret, struct profile_prefetch_info *info) {
        char why[512];
        int r;

        r = chunkstore_learned_get(export_chunkstore(e), export_manifest_digest(e), ret, why, sizeof why);
        if (r == -ENOENT)
                return r;
        if (r < 0) {
                log_warning("Export %s: %s; ignored", export_name(e), why);
                return -ENOENT;
        }
        info->learned = true;
        snprintf(info->source, sizeof info->source, "the profile learned on this host");
        return 0;
}

void profile_learn_attach(struct export *e, const char *how) {
        int r;

        if (how && !strcmp(how, "none"))
                return;
        r = export_learn_start(e);
        if (r < 0)
                log_warning_errno(r, "Export %s: cannot learn its first reads: %m", export_name(e));
}

int profile_prefetch_attach(struct export *e, const char *how, const char *known_blob,
                            struct profile_prefetch_info *ret) {
        struct profile_prefetch_info info = { 0 };
        struct profile *p = NULL;
        _cleanup_free_ uint64_t *chunks = NULL;
        uint64_t n = 0;
        char why[256];
        int r;

        if (how && !strcmp(how, "none"))
                return 0;
        if (how && strcmp(how, "auto") != 0) {
                r = profile_load(how, &p, why, sizeof why);
                if (r < 0)
                        return log_warning_errno(r, "Export %s: cannot use profile %s: %s", export_name(e), how, why);
                snprintf(info.source, sizeof info.source, "file %s", how);
        } else {
                r = find_published(e, &p, &info);
                /* Offline, "none found" may only mean the referrers could
                 * not be listed. */
                if (r < 0 && (r != -ENOENT || !export_online(e, NULL, 0)) &&
                    find_local(e, known_blob, &p, &info) >= 0)
                        r = 0;
                /* Published wins; the learned one stands in for none
                 * (and for one that cannot be reached or read). */
                if (r < 0 && find_learned(e, &p, &info) >= 0)
                        r = 0;
                if (r == -ENOENT) {
                        log_info("Export %s: no boot profile published for this image, none learned yet",
                                 export_name(e));
                        return 0;
                }
                if (r < 0)
                        return log_warning_errno(r, "Export %s: looking for a boot profile failed: %m", export_name(e));
        }
        r = profile_chunks(p, export_size(e), export_chunk_size(e), &chunks, &n);
        info.ranges = p->count;
        profile_free(p);
        if (r >= 0)
                r = export_prefetch(e, chunks, n, info.learned);
        if (r < 0)
                return log_warning_errno(r, "Export %s: cannot start the prefetch: %m", export_name(e));
        info.chunks = n;
        log_info("Export %s: boot profile from %s: %u ranges, %llu chunks; prefetching them in order",
                 export_name(e), info.source, info.ranges, (unsigned long long) n);
        if (ret)
                *ret = info;
        return 1;
}
