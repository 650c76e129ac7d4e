/* SPDX-License-Identifier: Apache-2.0 */
#include "repack.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "chunkstore/blkindex.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"
#include "bulk.h"
#include "manifest.h"
#include "push.h"

#define READ_RUN_MAX (8u << 20)         /* coalesce adjacent stored chunks up to this */

/* The new order of unique chunks: first the profile's, then the rest by
 * first logical use, then any the map does not use. */
static int unique_order(const struct blkindex *x, const struct repack_options *o, uint32_t **ret, uint64_t *ret_first) {
        _cleanup_free_ uint8_t *taken = calloc(MAX(x->n_chunks, 1u), 1);
        uint32_t *order = malloc(MAX(x->n_chunks, 1u) * sizeof *order);
        uint64_t n = 0, first;

        if (!taken || !order) {
                free(order);
                return -ENOMEM;
        }
        for (uint64_t i = 0; i < o->n_first_chunks; i++) {
                uint64_t c = o->first_chunks[i];
                uint32_t k;

                if (c >= x->n_map || (k = x->map[c]) == BLKINDEX_ZERO || taken[k])
                        continue;
                taken[k] = 1;
                order[n++] = k;
        }
        first = n;
        for (uint64_t c = 0; c < x->n_map; c++) {
                uint32_t k = x->map[c];
                if (k != BLKINDEX_ZERO && !taken[k]) {
                        taken[k] = 1;
                        order[n++] = k;
                }
        }
        for (uint32_t k = 0; k < x->n_chunks; k++)
                if (!taken[k])
                        order[n++] = k;
        *ret = order;
        *ret_first = first;
        return 0;
}

struct packer {
        struct blob_source *dst;
        uint64_t pack_size;
        int fd;                         /* the pack being written, or -1 */
        uint64_t len;
        struct blkindex_pack *packs;
        uint32_t n_packs;
};

static int pack_finish(struct packer *pk) {
        struct blkindex_pack *v;
        struct digest d;
        int r;

        if (pk->fd < 0)
                return 0;
        v = realloc(pk->packs, (pk->n_packs + 1) * sizeof *v);
        if (!v)
                return -ENOMEM;
        pk->packs = v;
        r = source_blob_put_fd_unnamed(pk->dst, pk->fd, pk->len, &d);
        close(pk->fd);
        pk->fd = -EBADF;
        if (r < 0)
                return r;
        pk->packs[pk->n_packs++] = (struct blkindex_pack) { .digest = d, .size = pk->len };
        return 0;
}

/* Append stored bytes; returns the pack number and offset they landed at. */
static int pack_append(struct packer *pk, const void *buf, uint32_t len, uint32_t *ret_pack, uint64_t *ret_off) {
        int r;

        if (pk->fd >= 0 && pk->len + len > pk->pack_size) {
                r = pack_finish(pk);
                if (r < 0)
                        return r;
        }
        if (pk->fd < 0) {
                pk->fd = memfd_create("hocus-repack", MFD_CLOEXEC);
                if (pk->fd < 0)
                        return -errno;
                pk->len = 0;
        }
        r = write_all(pk->fd, buf, len);
        if (r < 0)
                return r;
        *ret_pack = pk->n_packs;
        *ret_off = pk->len;
        pk->len += len;
        return 0;
}

static int finish(struct image *img, struct blob_source *dst, const char *tag, const struct repack_options *o,
                  struct blkindex *nx, struct repack_result *res) {
        struct image_manifest m = { 0 };
        _cleanup_free_ void *idx = NULL;
        _cleanup_free_ char *mjson = NULL;
        struct digest d;
        size_t idx_len, mlen;
        int r;

        r = blkindex_encode(nx, &idx, &idx_len);
        if (r < 0)
                return r;
        digest_compute(idx, idx_len, &m.index.digest);
        m.index.size = idx_len;
        r = source_blob_put_buf(dst, &m.index.digest, idx, idx_len);
        if (r < 0)
                return r;
        empty_config_digest(&d);
        r = source_blob_put_buf(dst, &d, EMPTY_JSON, strlen(EMPTY_JSON));
        if (r < 0)
                return r;
        if (o->profile) {
                digest_compute(o->profile, o->profile_len, &m.profile.digest);
                m.profile.size = o->profile_len;
                m.has_profile = true;
                r = source_blob_put_buf(dst, &m.profile.digest, o->profile, o->profile_len);
                if (r < 0)
                        return r;
        }
        m.packs = calloc(MAX(nx->n_packs, 1u), sizeof *m.packs);
        if (!m.packs)
                return -ENOMEM;
        for (uint32_t i = 0; i < nx->n_packs; i++) {
                m.packs[i].digest = nx->packs[i].digest;
                m.packs[i].size = nx->packs[i].size;
        }
        m.n_packs = nx->n_packs;
        m.image_size = nx->image_size;
        m.chunk_size = nx->chunk_size;
        r = image_manifest_encode(&m, &mjson, &mlen);
        free(m.packs);
        if (r < 0)
                return r;
        (void) img;
        return source_manifest_put(dst, tag, MT_OCI_MANIFEST, MT_IMAGE, mjson, mlen, &res->manifest_digest);
}

struct copy {
        struct packer *pk;
        struct blkindex_chunk *chunks;  /* the new chunk table */
        uint64_t bytes;                 /* stored bytes copied */
};

/* A verified chunk, in the new order: append its stored bytes as they are. */
static int copy_chunk(void *userdata, uint32_t k, int r, const void *stored, const void *raw) {
        struct copy *cp = userdata;

        (void) raw;
        if (r < 0)
                return r;
        r = pack_append(cp->pk, stored, cp->chunks[k].stored_len, &cp->chunks[k].pack, &cp->chunks[k].offset);
        if (r < 0)
                return r;
        cp->bytes += cp->chunks[k].stored_len;
        return 0;
}

int image_repack(struct image *img, struct blob_source *dst, const char *tag, const struct repack_options *o,
                 struct repack_result *ret) {
        const struct blkindex *x = img->index;
        struct repack_result res = { 0 };
        struct packer pk = { .dst = dst, .pack_size = o->pack_size ? o->pack_size : PUSH_DEFAULT_PACK_SIZE, .fd = -EBADF };
        struct blkindex nx = *x;
        _cleanup_free_ uint32_t *order = NULL;
        _cleanup_free_ struct blkindex_chunk *chunks = NULL;
        struct copy cp = { .pk = &pk };
        /* The new order, read in ranges of chunks adjacent in the old
         * packs, each chunk verified, delivered in order. */
        struct bulk_options bo = { .flags = BULK_ORDERED, .range_max = READ_RUN_MAX, .chunk = copy_chunk,
                                   .userdata = &cp, .progress = o->progress ? "repack" : NULL };
        struct bulk_result br;
        uint64_t t0 = now_ns(), first;
        int r;

        r = unique_order(x, o, &order, &first);
        if (r < 0)
                return r;
        chunks = malloc(MAX(x->n_chunks, 1u) * sizeof *chunks);
        if (!chunks)
                return -ENOMEM;
        memcpy(chunks, x->chunks, (size_t) x->n_chunks * sizeof *chunks);
        cp.chunks = chunks;
        r = bulk_run(img, NULL, order, x->n_chunks, &bo, &br);
        if (r < 0)
                goto out;
        r = pack_finish(&pk);
        if (r < 0)
                goto out;
        nx.n_packs = pk.n_packs;
        nx.packs = pk.packs;
        nx.chunks = chunks;
        r = finish(img, dst, tag, o, &nx, &res);
        if (r < 0)
                goto out;
        res.chunks = x->n_chunks;
        res.chunks_first = first;
        res.packs = pk.n_packs;
        res.bytes = cp.bytes;
        res.reads = br.ranges;
        res.seconds = (double) (now_ns() - t0) / 1e9;
        *ret = res;
out:
        if (pk.fd >= 0)
                close(pk.fd);
        free(pk.packs);
        return r;
}
