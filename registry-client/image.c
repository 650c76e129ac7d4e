/* SPDX-License-Identifier: Apache-2.0 */
#include "image.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chunkstore/meta.h"
#include "common/cleanup.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"

void image_free(struct image *img) {
        if (!img)
                return;
        image_manifest_free(img->manifest);
        blkindex_free(img->index);
        free(img);
}

/* The index names its packs by digest and size; the manifest must list the
 * same packs in the same order, so that copying the manifest's layers
 * (skopeo copy) copies everything the index needs. */
static int check_packs(const struct image *img, char *err, size_t errlen) {
        const struct image_manifest *m = img->manifest;
        const struct blkindex *x = img->index;
        char ds[DIGEST_STRING_MAX];

        if (m->n_packs != x->n_packs)
                return err_set(err, errlen, -EBADMSG, "manifest lists %u packs, index names %u", m->n_packs,
                               x->n_packs);
        for (uint32_t i = 0; i < x->n_packs; i++)
                if (!digest_equal(&m->packs[i].digest, &x->packs[i].digest) || m->packs[i].size != x->packs[i].size)
                        return err_set(err, errlen, -EBADMSG, "pack %u (%s) differs between manifest and index", i,
                                       digest_to_string(&x->packs[i].digest, ds));
        return 0;
}

/* The manifest: the pinned one (local copy first, else fetched by digest,
 * which the source verifies), or whatever the source's reference names
 * now; *ret_digest its digest. What comes from the source is kept
 * locally when meta is given. */
static int get_manifest(struct blob_source *src, struct chunkstore *meta, const struct digest *pin, char **ret_mt,
                        char **ret_body, size_t *ret_len, struct digest *ret_digest, char *err, size_t errlen) {
        char ds[DIGEST_STRING_MAX], why_net[512];
        const char *reference = image_ref_reference(src->ref);
        int r;

        if (pin && meta) {
                void *buf;
                r = chunkstore_meta_get(meta, pin, INDEX_BLOB_MAX, &buf, ret_len);
                if (r >= 0) {
                        *ret_mt = NULL;         /* the body names it */
                        *ret_body = buf;
                        *ret_digest = *pin;     /* meta_get verified it */
                        return 0;
                }
        }
        if (pin)
                reference = digest_to_string(pin, ds);
        r = source_manifest_get(src, reference, ret_mt, ret_body, ret_len, ret_digest);
        /* A layout says which file is missing or damaged. */
        if (r < 0 && src->ref->transport == REF_OCI_LAYOUT && source_describe_error(src, r, why_net, sizeof why_net))
                return err_set(err, errlen, r, "%s: %s", src->ref->text, why_net);
        if (r == -ENOENT)
                return err_set(err, errlen, r, "%s: no such image (%s)", src->ref->text,
                               pin ? "the pinned manifest is gone from the registry" : "unknown tag or digest");
        if (r == -ENOTUNIQ)
                return err_set(err, errlen, -EINVAL, "%s: the layout holds several images; name one with :TAG",
                               src->ref->text);
        if (r == -EBADMSG)
                return err_set(err, errlen, r, "%s: manifest does not match its digest", src->ref->text);
        if (r < 0)
                return err_set(err, errlen, r, "%s: cannot fetch manifest: %s", src->ref->text,
                               source_strerror(src, r, why_net, sizeof why_net));
        if (meta) {
                /* ret_digest is what the body hashes to (source_manifest_get). */
                r = chunkstore_meta_put(meta, ret_digest, *ret_body, *ret_len, META_VERIFIED | META_NOSYNC);
                if (r < 0)
                        log_debug("keeping manifest %s locally failed: %s", digest_to_string(ret_digest, ds),
                                  strerror(-r));
        }
        return 0;
}

/* The index blob: the local copy, else fetched (verified) and kept. */
static int get_index(struct image *img, struct chunkstore *meta, void **ret, char *err, size_t errlen) {
        const struct descriptor *b = &img->manifest->index;
        struct blob_source *src = img->src;
        char why[256];
        size_t len;
        int r;

        if (meta && chunkstore_meta_get(meta, &b->digest, INDEX_BLOB_MAX, ret, &len) >= 0) {
                if (len == b->size)
                        return 0;
                free(*ret);
        }
        r = source_blob_get(src, &b->digest, b->size, INDEX_BLOB_MAX, ret);
        if (r < 0)
                return err_set(err, errlen, r, "%s: cannot fetch the index blob: %s", src->ref->text,
                               r == -EBADMSG ? "its bytes do not match its digest" : source_strerror(src, r, why, sizeof why));
        if (meta) {
                /* source_blob_get verified it. */
                r = chunkstore_meta_put(meta, &b->digest, *ret, b->size, META_VERIFIED | META_NOSYNC);
                if (r < 0)
                        log_debug("keeping the index blob locally failed: %s", strerror(-r));
        }
        return 0;
}

int image_open_at(struct blob_source *src, struct chunkstore *meta, const struct digest *pin, struct image **ret,
                  char *err, size_t errlen) {
        _cleanup_free_ char *mt = NULL, *body = NULL;
        _cleanup_free_ void *idx = NULL;
        struct image *img;
        struct digest d;
        uint64_t t0 = now_ns(), t1;
        char why[256];
        size_t len;
        int r;

        r = get_manifest(src, meta, pin, &mt, &body, &len, &d, err, errlen);
        if (r < 0)
                return r;
        img = calloc(1, sizeof *img);
        if (!img)
                return -ENOMEM;
        img->src = src;
        img->manifest_size = len;
        t1 = now_ns();
        img->manifest_ns = t1 - t0;
        img->manifest_digest = d;

        r = image_manifest_parse(mt, body, len, &img->manifest, why, sizeof why);
        if (r < 0) {
                err_set(err, errlen, r, "%s: %s", src->ref->text, why);
                goto fail;
        }
        if (img->manifest->has_subject) {
                r = err_set(err, errlen, -EMEDIUMTYPE, "%s: not a hocus-blk image: this is a boot profile artifact",
                            src->ref->text);
                goto fail;
        }
        r = get_index(img, meta, &idx, err, errlen);
        if (r < 0)
                goto fail;
        r = blkindex_decode(idx, img->manifest->index.size, &img->index, why, sizeof why);
        if (r < 0) {
                err_set(err, errlen, r, "%s: malformed index: %s", src->ref->text, why);
                goto fail;
        }
        r = check_packs(img, why, sizeof why);
        if (r < 0) {
                err_set(err, errlen, r, "%s: %s", src->ref->text, why);
                goto fail;
        }
        img->index_ns = now_ns() - t1;
        *ret = img;
        return 0;
fail:
        image_free(img);
        return r;
}

int image_meta_sync(const struct image *img, struct chunkstore *meta) {
        const struct digest d[] = { img->manifest_digest, img->manifest->index.digest };

        return chunkstore_meta_sync(meta, d, ARRAY_SIZE(d));
}

int image_open(struct blob_source *src, struct image **ret, char *err, size_t errlen) {
        return image_open_at(src, NULL, NULL, ret, err, errlen);
}
