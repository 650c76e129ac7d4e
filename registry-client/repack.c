/* SPDX-License-Identifier: Apache-2.0 */
#include "repack.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "chunkstore/blkindex.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"
#include "bulk.h"
#include "packwriter.h"
#include "publish.h"
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

struct copy {
        struct packwriter *pw;
        struct blkindex_chunk *chunks;  /* the new chunk table */
        uint64_t bytes;                 /* stored bytes copied */
};

/* A verified chunk, in the new order: append its stored bytes as they are. */
static int copy_chunk(void *userdata, uint32_t k, int r, const void *stored, const void *raw) {
        struct copy *cp = userdata;

        (void) raw;
        if (r < 0)
                return r;
        r = packwriter_append(cp->pw, stored, cp->chunks[k].stored_len, &cp->chunks[k].pack, &cp->chunks[k].offset);
        if (r < 0)
                return r;
        cp->bytes += cp->chunks[k].stored_len;
        return 0;
}

int image_repack(struct image *img, struct blob_source *dst, const char *tag, const struct repack_options *o,
                 struct repack_result *ret) {
        const struct blkindex *x = img->index;
        struct repack_result res = { 0 };
        struct blkindex nx = *x;
        _cleanup_free_ uint32_t *order = NULL;
        _cleanup_free_ struct blkindex_chunk *chunks = NULL;
        struct copy cp = { 0 };
        /* The new order, read in ranges of chunks adjacent in the old
         * packs, each chunk verified, delivered in order. */
        struct bulk_options bo = { .flags = BULK_ORDERED, .range_max = READ_RUN_MAX, .chunk = copy_chunk,
                                   .userdata = &cp, .progress = o->progress ? "repack" : NULL };
        struct bulk_result br;
        struct publish_result pr;
        struct packwriter_stats ps;
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
        r = packwriter_new(dst, o->pack_size ? o->pack_size : PUSH_DEFAULT_PACK_SIZE, &cp.pw);
        if (r < 0)
                return r;
        r = bulk_run(img, NULL, order, x->n_chunks, &bo, &br);
        if (r < 0)
                goto out;
        r = packwriter_finish(cp.pw);
        if (r < 0)
                goto out;
        nx.packs = (struct blkindex_pack *) packwriter_packs(cp.pw, &nx.n_packs);
        nx.chunks = chunks;
        r = publish_image(dst, tag, &nx, o->profile, o->profile_len, &pr);
        if (r < 0)
                goto out;
        packwriter_get_stats(cp.pw, &ps);
        res.manifest_digest = pr.manifest_digest;
        res.chunks = x->n_chunks;
        res.chunks_first = first;
        res.packs = ps.packs_new;
        res.bytes = cp.bytes;
        res.reads = br.ranges;
        res.seconds = (double) (now_ns() - t0) / 1e9;
        *ret = res;
out:
        packwriter_free(cp.pw);
        return r;
}
