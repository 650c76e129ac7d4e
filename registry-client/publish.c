/* SPDX-License-Identifier: Apache-2.0 */
#include "publish.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "manifest.h"

int publish_blob_buf(struct blob_source *dst, const struct digest *d, const void *buf, size_t len) {
        uint64_t have;
        int r;

        r = source_blob_stat(dst, d, &have);
        if (r == 0 && have == len)
                return 0;
        r = source_blob_put_buf(dst, d, buf, len);
        return r < 0 ? r : 1;
}

int publish_blob_fd(struct blob_source *dst, const struct digest *d, int fd, uint64_t size) {
        uint64_t have;
        int r;

        r = source_blob_stat(dst, d, &have);
        if (r == 0 && have == size)
                return 0;
        /* put_fd verifies the digest of what it stores. */
        r = source_blob_put_fd(dst, d, fd, size);
        return r < 0 ? r : 1;
}

/* Store a blob and count it when it was sent. */
static int put_counted(struct blob_source *dst, const struct digest *d, const void *buf, size_t len,
                       struct publish_result *res) {
        int r = publish_blob_buf(dst, d, buf, len);

        if (r > 0) {
                res->blobs_uploaded++;
                res->bytes_uploaded += len;
        }
        return r;
}

int publish_image(struct blob_source *dst, const char *tag, const struct blkindex *x, const void *profile,
                  size_t profile_len, struct publish_result *ret) {
        struct publish_result res = { 0 };
        struct image_manifest m = { 0 };
        _cleanup_free_ void *idx = NULL;
        _cleanup_free_ char *mjson = NULL;
        size_t idx_len, mlen;
        struct digest d;
        int r;

        r = blkindex_encode(x, &idx, &idx_len);
        if (r < 0)
                return r;
        digest_compute(idx, idx_len, &m.index.digest);
        m.index.size = idx_len;
        r = put_counted(dst, &m.index.digest, idx, idx_len, &res);
        if (r < 0)
                return r;
        empty_config_digest(&d);
        r = put_counted(dst, &d, EMPTY_JSON, strlen(EMPTY_JSON), &res);
        if (r < 0)
                return r;
        if (profile) {
                digest_compute(profile, profile_len, &m.profile.digest);
                m.profile.size = profile_len;
                m.has_profile = true;
                r = put_counted(dst, &m.profile.digest, profile, profile_len, &res);
                if (r < 0)
                        return r;
        }
        m.packs = calloc(MAX(x->n_packs, 1u), sizeof *m.packs);
        if (!m.packs)
                return -ENOMEM;
        for (uint32_t i = 0; i < x->n_packs; i++) {
                m.packs[i].digest = x->packs[i].digest;
                m.packs[i].size = x->packs[i].size;
        }
        m.n_packs = x->n_packs;
        m.image_size = x->image_size;
        m.chunk_size = x->chunk_size;
        r = image_manifest_encode(&m, &mjson, &mlen);
        free(m.packs);
        if (r < 0)
                return r;
        /* Last: the tag names the image only once all of it is stored. */
        r = source_manifest_put(dst, tag, MT_OCI_MANIFEST, MT_IMAGE, mjson, mlen, &res.manifest_digest);
        if (r < 0)
                return r;
        res.manifest_size = mlen;
        res.index_size = idx_len;
        *ret = res;
        return 0;
}
