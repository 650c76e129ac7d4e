/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The pack writer and the publisher (registry-client/packwriter.h,
 * publish.h) over an OCI layout: packs bounded in size and stored under
 * their digests, added packs kept as they are, nothing sent twice, and an
 * image written with them and published reads back verified.
 */
#undef NDEBUG
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "registry-client/bulk.h"
#include "registry-client/packwriter.h"
#include "registry-client/publish.h"

#define CS 4096u
#define NCH 40
#define PACK (16u * CS)

static char dir[] = "/tmp/hocus-test-packwriter.XXXXXX";

/* Write NCH raw chunks through a pack writer into dst; fill x's tables. */
static void write_image(struct blob_source *dst, const uint8_t *data, struct blkindex *x, struct packwriter_stats *st) {
        const struct blkindex_pack outside = { .size = 123 };
        struct packwriter *pw;
        const struct blkindex_pack *packs;
        uint32_t n, added;

        assert(packwriter_new(dst, PACK, &pw) == 0);
        for (uint32_t k = 0; k < NCH; k++) {
                struct blkindex_chunk *c = &x->chunks[k];

                *c = (struct blkindex_chunk) { .stored_len = CS, .raw_len = CS, .codec = 0 };
                digest_compute(data + (size_t) k * CS, CS, &c->digest);
                assert(packwriter_append(pw, data + (size_t) k * CS, CS, &c->pack, &c->offset) == 0);
                /* 16 chunks per pack, back to back. */
                assert(c->pack == k / 16 && c->offset == (uint64_t) (k % 16) * CS);
                x->map[k] = k;
        }
        /* An added pack takes the next number and stays as it is. */
        assert(packwriter_add(pw, &outside, &added) == 0 && added == 3);
        assert(packwriter_finish(pw) == 0);
        packs = packwriter_packs(pw, &n);
        assert(n == 4 && packs[3].size == 123);
        assert(packs[0].size == PACK && packs[1].size == PACK && packs[2].size == (NCH - 32) * CS);
        for (uint32_t i = 0; i < 3; i++) {
                uint8_t buf[CS];

                /* Stored under the digest of its bytes, readable at the offsets given. */
                assert(source_blob_read(dst, &packs[i].digest, CS, buf, CS) == 0);
                assert(!memcmp(buf, data + ((size_t) i * 16 + 1) * CS, CS));
        }
        memcpy(x->packs, packs, 3 * sizeof *packs);
        packwriter_get_stats(pw, st);
        packwriter_free(pw);
}

int main(void) {
        struct source_options so = { .create = true };
        struct blob_source *dst, *src;
        struct blkindex *x;
        struct packwriter_stats st;
        struct publish_result pr, pr2;
        struct image *img;
        struct bulk_result br;
        uint8_t *data = malloc((size_t) NCH * CS);
        uint32_t all[NCH];
        char ref[128], err[256], cmd[128];

        assert(data && mkdtemp(dir));
        for (size_t i = 0; i < (size_t) NCH * CS; i++)
                data[i] = (uint8_t) (i * 2654435761u >> 13);
        snprintf(ref, sizeof ref, "oci:%s/layout:v1", dir);
        assert(source_open(ref, &so, &dst, err, sizeof err) == 0);
        assert(blkindex_new((uint64_t) NCH * CS, CS, 3, NCH, &x) == 0);

        write_image(dst, data, x, &st);
        assert(st.packs_new == 3 && st.blobs_uploaded == 3 && st.bytes_uploaded == (uint64_t) NCH * CS);
        /* The same packs again: stored already, nothing sent. */
        write_image(dst, data, x, &st);
        assert(st.packs_new == 3 && st.blobs_uploaded == 0);

        assert(publish_image(dst, "v1", x, "profile", 7, &pr) == 0);
        assert(pr.blobs_uploaded == 3 && pr.index_size > 0);     /* index, config, profile */
        assert(publish_image(dst, "v1", x, "profile", 7, &pr2) == 0);
        assert(pr2.blobs_uploaded == 0 && digest_equal(&pr.manifest_digest, &pr2.manifest_digest));
        source_free(dst);

        /* It reads back: the manifest names the packs, every chunk verifies. */
        assert(source_open(ref, NULL, &src, err, sizeof err) == 0);
        assert(image_open(src, &img, err, sizeof err) == 0);
        assert(digest_equal(&img->manifest_digest, &pr.manifest_digest));
        assert(img->manifest->has_profile && img->index->n_packs == 3);
        for (uint32_t k = 0; k < NCH; k++)
                all[k] = k;
        assert(bulk_run(img, NULL, all, NCH, &(struct bulk_options) { 0 }, &br) == 0);
        assert(br.chunks_fetched == NCH && br.ranges == 3);
        image_free(img);
        source_free(src);

        blkindex_free(x);
        free(data);
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        assert(system(cmd) == 0);
        printf("ok\n");
        return 0;
}
