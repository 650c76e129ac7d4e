/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The bulk engine (registry-client/bulk.h) over an OCI layout: a pull into
 * an empty store and again (skipped), store reads with a damaged entry
 * refetched, ordered delivery, and above all corrupted pack bytes: the
 * engine refuses them, stores nothing unverified, and names the chunk.
 */
#undef NDEBUG
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "registry-client/bulk.h"
#include "registry-client/push.h"

#define CS 4096u
#define NCH 96                          /* logical chunks */

static char dir[] = "/tmp/hocus-test-bulk.XXXXXX";
static char layout[128], ref[160];

/* A layout with one image: random and compressible chunks, zero chunks
 * and duplicates, in packs of 32 KiB (several packs). */
static void make_image(void) {
        struct push_options o = { .codec = CODEC_ZSTD, .level = 1, .threads = 1, .chunk_size = CS,
                                  .pack_size = 32u << 10 };
        struct source_options so = { .create = true };
        struct blob_source *dst;
        struct push_result res;
        char err[256], path[200];
        uint8_t *buf = calloc(NCH, CS);
        int fd;

        assert(buf);
        srand(7);
        for (uint32_t i = 0; i < NCH; i++) {
                uint8_t *p = buf + (size_t) i * CS;
                if (i % 8 == 3)
                        continue;                       /* zero */
                if (i % 8 == 5) {
                        memcpy(p, buf, CS);             /* a duplicate of chunk 0 */
                        continue;
                }
                for (uint32_t b = 0; b < CS; b++)
                        p[b] = i % 2 ? (uint8_t) rand() : (uint8_t) (i + b / 64);
        }
        snprintf(path, sizeof path, "%s/disk.img", dir);
        fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        assert(fd >= 0);
        assert(pwrite_all(fd, buf, (size_t) NCH * CS, 0) == 0);
        assert(source_open(ref, &so, &dst, err, sizeof err) == 0);
        assert(image_push(fd, dst, "v1", &o, &res) == 0);
        assert(res.packs_new >= 3);
        source_free(dst);
        close(fd);
        free(buf);
}

static void open_image(struct blob_source **ret_src, struct image **ret_img) {
        char err[256];

        assert(source_open(ref, NULL, ret_src, err, sizeof err) == 0);
        assert(image_open(*ret_src, ret_img, err, sizeof err) == 0);
}

static struct chunkstore *fresh_store(const char *name) {
        struct chunkstore *cs;
        char path[200];

        snprintf(path, sizeof path, "%s/%s", dir, name);
        assert(chunkstore_open(path, 0, &cs) == 0);
        return cs;
}

static uint32_t *all_chunks(const struct blkindex *x) {
        uint32_t *v = malloc(x->n_chunks * sizeof *v);

        for (uint32_t k = 0; k < x->n_chunks; k++)
                v[k] = k;
        return v;
}

static void test_pull(void) {
        struct blob_source *src;
        struct image *img;
        struct chunkstore *cs = fresh_store("pull");
        struct bulk_options o = { .flags = BULK_SKIP_STORED, .gap_max = BULK_DEFAULT_GAP };
        struct bulk_result res;
        struct chunkstore_stats st;
        uint32_t *all;
        uint8_t raw[CS];

        open_image(&src, &img);
        all = all_chunks(img->index);
        assert(bulk_run(img, cs, all, img->index->n_chunks, &o, &res) == 0);
        assert(res.chunks_fetched == img->index->n_chunks && res.chunks_skipped == 0);
        /* Neighbours go together: one range per pack at most here. */
        assert(res.ranges >= 1 && res.ranges <= img->index->n_packs);
        for (uint32_t k = 0; k < img->index->n_chunks; k++)
                assert(chunkstore_get(cs, &img->index->chunks[k].digest, raw, img->index->chunks[k].raw_len) == 0);
        /* Again: everything is skipped, nothing fetched. */
        assert(bulk_run(img, cs, all, img->index->n_chunks, &o, &res) == 0);
        assert(res.chunks_skipped == img->index->n_chunks && res.chunks_fetched == 0 && res.ranges == 0);
        /* Fetch-only moves bytes and stores nothing. */
        chunkstore_free(cs);
        cs = fresh_store("fetch-only");
        o.flags |= BULK_FETCH_ONLY;
        assert(bulk_run(img, cs, all, img->index->n_chunks, &o, &res) == 0);
        assert(res.chunks_fetched == img->index->n_chunks && res.bytes_stored == 0);
        assert(chunkstore_stats(cs, &st) == 0 && st.entries == 0);
        free(all);
        chunkstore_free(cs);
        image_free(img);
        source_free(src);
}

struct seen {
        pthread_mutex_t lock;
        uint32_t n, order[4096];
        uint32_t n_bad, bad;
        bool with_raw, with_stored;
};

static int record(void *u, uint32_t k, int r, const void *stored, const void *raw) {
        struct seen *s = u;

        pthread_mutex_lock(&s->lock);
        if (r < 0) {
                assert(!stored && !raw);
                s->n_bad++;
                s->bad = k;
        } else {
                s->order[s->n++] = k;
                s->with_raw |= raw != NULL;
                s->with_stored |= stored != NULL;
        }
        pthread_mutex_unlock(&s->lock);
        return 0;
}

/* Store reads: hits come from the store (verified), a damaged entry is
 * dropped and fetched instead. */
static void test_read_stored(void) {
        struct blob_source *src;
        struct image *img;
        struct chunkstore *cs = fresh_store("pull");   /* filled by test_pull */
        struct seen s = { .lock = PTHREAD_MUTEX_INITIALIZER };
        struct bulk_options o = { .flags = BULK_READ_STORED, .chunk = record, .userdata = &s };
        struct bulk_result res;
        char hex[DIGEST_HEX_LEN + 1], path[300];
        uint32_t *all;
        int fd;

        open_image(&src, &img);
        all = all_chunks(img->index);
        digest_to_hex(&img->index->chunks[2].digest, hex);
        snprintf(path, sizeof path, "%s/pull/chunks/%.2s/%s", dir, hex, hex);
        assert(chmod(path, 0644) == 0);
        fd = open(path, O_WRONLY | O_CLOEXEC);
        assert(fd >= 0 && pwrite(fd, "X", 1, 10) == 1);
        close(fd);
        assert(bulk_run(img, cs, all, img->index->n_chunks, &o, &res) == 0);
        assert(res.chunks_read == img->index->n_chunks - 1 && res.chunks_fetched == 1);
        assert(s.n == img->index->n_chunks && s.n_bad == 0 && s.with_raw);
        free(all);
        chunkstore_free(cs);
        image_free(img);
        source_free(src);
}

/* BULK_ORDERED: delivered in the given order, with the stored bytes. */
static void test_ordered(void) {
        struct blob_source *src;
        struct image *img;
        struct seen s = { .lock = PTHREAD_MUTEX_INITIALIZER };
        struct bulk_options o = { .flags = BULK_ORDERED, .jobs = 3, .chunk = record, .userdata = &s };
        struct bulk_result res;
        uint32_t *order, n;

        open_image(&src, &img);
        n = img->index->n_chunks;
        order = malloc(n * sizeof *order);
        /* A permutation: interleave the two ends. */
        for (uint32_t i = 0; i < n; i++)
                order[i] = i % 2 ? n - 1 - i / 2 : i / 2;
        assert(bulk_run(img, NULL, order, n, &o, &res) == 0);
        assert(s.n == n && s.with_stored && !s.with_raw);
        for (uint32_t i = 0; i < n; i++)
                assert(s.order[i] == order[i]);
        assert(res.chunks_fetched == n);
        free(order);
        image_free(img);
        source_free(src);
}

/* Flip a byte inside unique chunk k's stored bytes, in the layout. */
static uint32_t corrupt_pack(void) {
        struct blob_source *src;
        struct image *img;
        char hex[DIGEST_HEX_LEN + 1], path[300];
        uint32_t k;
        uint8_t b;
        int fd;

        open_image(&src, &img);
        k = img->index->n_chunks / 2;
        const struct blkindex_chunk *c = &img->index->chunks[k];
        digest_to_hex(&img->index->packs[c->pack].digest, hex);
        snprintf(path, sizeof path, "%s/blobs/sha256/%s", layout, hex);
        fd = open(path, O_RDWR | O_CLOEXEC);
        assert(fd >= 0);
        assert(pread(fd, &b, 1, (off_t) (c->offset + c->stored_len / 2)) == 1);
        b ^= 0x20;
        assert(pwrite(fd, &b, 1, (off_t) (c->offset + c->stored_len / 2)) == 1);
        close(fd);
        image_free(img);
        source_free(src);
        return k;
}

static void test_corrupt(uint32_t bad) {
        struct blob_source *src;
        struct image *img;
        struct chunkstore *cs = fresh_store("corrupt");
        struct bulk_options o = { .flags = BULK_SKIP_STORED, .gap_max = BULK_DEFAULT_GAP };
        struct bulk_result res;
        struct seen s = { .lock = PTHREAD_MUTEX_INITIALIZER };
        struct chunkstore_stats st;
        uint32_t *all;

        open_image(&src, &img);
        all = all_chunks(img->index);
        /* Without a callback: the run fails at the bad chunk. */
        assert(bulk_run(img, cs, all, img->index->n_chunks, &o, &res) == -EBADMSG);
        assert(res.bad_chunk == bad);
        assert(chunkstore_has(cs, &img->index->chunks[bad].digest) == 0);
        /* Whatever was stored verifies. */
        assert(chunkstore_verify_all(cs, NULL, NULL, &st) == 0);
        /* With one (inspect --verify): every chunk is seen, only the bad
         * one fails, and with a store nothing of it is stored either. */
        o.chunk = record;
        o.userdata = &s;
        assert(bulk_run(img, cs, all, img->index->n_chunks, &o, &res) == 0);
        assert(s.n_bad == 1 && s.bad == bad);
        assert(s.n + res.chunks_skipped == img->index->n_chunks - 1);
        assert(chunkstore_has(cs, &img->index->chunks[bad].digest) == 0);
        /* In order (repack): the bad chunk is refused too. */
        o = (struct bulk_options) { .flags = BULK_ORDERED };
        assert(bulk_run(img, NULL, all, img->index->n_chunks, &o, &res) == -EBADMSG && res.bad_chunk == bad);
        /* The one decode-and-store step refuses it and stores nothing. */
        {
                const struct blkindex_chunk *c = &img->index->chunks[bad];
                uint8_t *stored = malloc(c->stored_len), raw[CS];
                int se;

                assert(source_blob_read(src, &img->index->packs[c->pack].digest, c->offset, stored, c->stored_len) == 0);
                assert(bulk_chunk_store(cs, c, stored, raw, &se, NULL) == -EBADMSG && se == 0);
                assert(chunkstore_has(cs, &c->digest) == 0);
                free(stored);
        }
        free(all);
        chunkstore_free(cs);
        image_free(img);
        source_free(src);
}

int main(void) {
        char cmd[200];

        assert(mkdtemp(dir));
        snprintf(layout, sizeof layout, "%s/layout", dir);
        snprintf(ref, sizeof ref, "oci:%s:v1", layout);
        make_image();
        test_pull();
        test_read_stored();
        test_ordered();
        test_corrupt(corrupt_pack());
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        assert(system(cmd) == 0);
        printf("ok\n");
        return 0;
}
