/* SPDX-License-Identifier: Apache-2.0 */
#include "image.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chunkstore/codec.h"
#include "common/cleanup.h"
#include "common/err.h"
#include "common/log.h"

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

int image_open(struct blob_source *src, struct image **ret, char *err, size_t errlen) {
        _cleanup_free_ char *mt = NULL, *body = NULL;
        _cleanup_free_ void *idx = NULL;
        const char *reference = image_ref_reference(src->ref);
        struct image *img;
        char why[256];
        size_t len;
        int r;

        r = source_manifest_get(src, reference, &mt, &body, &len, NULL);
        if (r == -ENOENT)
                return err_set(err, errlen, r, "%s: no such image (unknown tag or digest)", src->ref->text);
        if (r == -ENOTUNIQ)
                return err_set(err, errlen, -EINVAL, "%s: the layout holds several images; name one with :TAG",
                               src->ref->text);
        if (r == -EBADMSG)
                return err_set(err, errlen, r, "%s: manifest does not match its digest", src->ref->text);
        if (r < 0) {
                char why_net[512];
                return err_set(err, errlen, r, "%s: cannot fetch manifest: %s", src->ref->text,
                               source_strerror(src, r, why_net, sizeof why_net));
        }

        img = calloc(1, sizeof *img);
        if (!img)
                return -ENOMEM;
        img->src = src;
        img->manifest_size = len;
        digest_compute(body, len, &img->manifest_digest);

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
        r = source_blob_get(src, &img->manifest->index.digest, img->manifest->index.size, INDEX_BLOB_MAX, &idx);
        if (r < 0) {
                err_set(err, errlen, r, "%s: cannot fetch the index blob: %s", src->ref->text,
                        r == -EBADMSG ? "its bytes do not match its digest" : source_strerror(src, r, why, sizeof why));
                goto fail;
        }
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
        *ret = img;
        return 0;
fail:
        image_free(img);
        return r;
}

int image_decode_chunk(const struct image *img, uint32_t k, const void *stored, void *buf) {
        const struct blkindex_chunk *c = &img->index->chunks[k];
        struct digest got;
        int r;

        r = codec_decompress(c->codec, stored, c->stored_len, buf, c->raw_len);
        if (r < 0)
                return r;
        digest_compute(buf, c->raw_len, &got);
        return digest_equal(&got, &c->digest) ? 0 : -EBADMSG;
}

int image_read_chunk(struct image *img, uint32_t k, void *buf, void *scratch) {
        const struct blkindex_chunk *c = &img->index->chunks[k];
        _cleanup_free_ void *own = NULL;
        int r;

        if (c->codec == CODEC_RAW) {
                /* Read straight into buf, then verify. */
                r = source_blob_read(img->src, &img->index->packs[c->pack].digest, c->offset, buf, c->stored_len);
                if (r < 0)
                        return r;
                struct digest got;
                digest_compute(buf, c->raw_len, &got);
                return digest_equal(&got, &c->digest) ? 0 : -EBADMSG;
        }
        if (!scratch) {
                own = malloc(c->stored_len);
                if (!own)
                        return -ENOMEM;
                scratch = own;
        }
        r = source_blob_read(img->src, &img->index->packs[c->pack].digest, c->offset, scratch, c->stored_len);
        if (r < 0)
                return r;
        return image_decode_chunk(img, k, scratch, buf);
}

int image_get_chunk(struct image *img, struct chunkstore *store, uint32_t k, void *buf, void *scratch,
                    uint64_t *ret_fetched) {
        const struct blkindex_chunk *c = &img->index->chunks[k];
        int r;

        if (ret_fetched)
                *ret_fetched = 0;
        if (store) {
                r = chunkstore_get(store, &c->digest, buf, c->raw_len);
                if (r != -ENOENT)
                        return r;
        }
        r = image_read_chunk(img, k, buf, scratch);
        if (r < 0)
                return r;
        if (ret_fetched)
                *ret_fetched = c->stored_len;
        if (store) {
                r = chunkstore_put_verified(store, &c->digest, buf, c->raw_len);
                if (r < 0)
                        log_debug("chunk store insert failed: %s", strerror(-r));
        }
        return 0;
}
