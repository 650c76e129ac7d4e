/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Boot profiles: the recorder (first reads only, runs of new chunks as one
 * entry, restart, concurrent readers), profile_merge (ordered by time,
 * stable), and profile artifacts in an OCI layout (push, find, newest
 * wins, the manifest layer as the fallback, the untagged reference still
 * naming the image).
 */
#undef NDEBUG
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blockd/profile-rec.h"
#include "chunkstore/profile.h"
#include "common/util.h"
#include "registry-client/image.h"
#include "registry-client/manifest.h"
#include "registry-client/profile-artifact.h"
#include "registry-client/push.h"

#define CS 4096u

static void test_recorder(void) {
        struct profile_rec *r;
        struct profile *p;

        assert(profile_rec_new(100 * CS + 10, CS, &r) == 0);
        profile_rec_note(r, 5 * CS + 1, 3 * CS);        /* chunks 5..8 */
        profile_rec_note(r, 6 * CS, 10);                /* seen: nothing */
        profile_rec_note(r, 3 * CS, 4 * CS);            /* 3, 4 new; 5, 6 seen */
        profile_rec_note(r, 100 * CS, 100);             /* the short tail chunk */
        profile_rec_note(r, 200 * CS, 1);               /* past the end: ignored */
        profile_rec_note(r, 0, 0);                      /* empty: ignored */
        assert(profile_rec_snapshot(r, &p) == 0);
        assert(p->count == 3);
        assert(p->chunk_size == CS);
        assert(p->entries[0].offset == 5 * CS && p->entries[0].length == 4 * CS);
        assert(p->entries[1].offset == 3 * CS && p->entries[1].length == 2 * CS);
        assert(p->entries[2].offset == 100 * CS && p->entries[2].length == 10);
        assert(profile_rec_count(r) == 3);
        profile_free(p);

        /* A restart forgets. */
        profile_rec_reset(r);
        profile_rec_note(r, 5 * CS, 1);
        assert(profile_rec_snapshot(r, &p) == 0);
        assert(p->count == 1 && p->entries[0].offset == 5 * CS && p->entries[0].length == CS);
        profile_free(p);
        profile_rec_free(r);
}

struct reader {
        struct profile_rec *r;
        unsigned seed;
};

static void *reader_thread(void *arg) {
        struct reader *rd = arg;

        for (int i = 0; i < 20000; i++) {
                uint64_t c = (uint64_t) rand_r(&rd->seed) % 1000;
                profile_rec_note(rd->r, c * CS, CS * (1 + (uint64_t) rand_r(&rd->seed) % 3));
        }
        return NULL;
}

/* Concurrent readers: every chunk is recorded exactly once. */
static void test_recorder_threads(void) {
        struct reader rd[4];
        pthread_t t[4];
        struct profile_rec *r;
        struct profile *p;
        uint8_t seen[1000] = { 0 };
        uint64_t total = 0;

        assert(profile_rec_new(1000 * CS, CS, &r) == 0);
        for (int i = 0; i < 4; i++) {
                rd[i] = (struct reader) { .r = r, .seed = (unsigned) i + 1 };
                assert(pthread_create(&t[i], NULL, reader_thread, &rd[i]) == 0);
        }
        for (int i = 0; i < 4; i++)
                pthread_join(t[i], NULL);
        assert(profile_rec_snapshot(r, &p) == 0);
        for (uint32_t i = 0; i < p->count; i++) {
                assert(p->entries[i].offset % CS == 0 && p->entries[i].length % CS == 0);
                for (uint64_t c = p->entries[i].offset / CS; c < (p->entries[i].offset + p->entries[i].length) / CS; c++) {
                        assert(!seen[c]);
                        seen[c] = 1;
                        total++;
                }
        }
        assert(total == 1000);
        profile_free(p);
        profile_rec_free(r);
}

static void test_merge(void) {
        struct profile_entry ea[] = { { 0, 10, 0 }, { 100, 10, 50 }, { 200, 10, 50 } };
        struct profile_entry eb[] = { { 300, 10, 10 }, { 400, 10, 50 } };
        struct profile a = { .chunk_size = CS, .count = 3, .entries = ea };
        struct profile b = { .chunk_size = 2 * CS, .count = 2, .entries = eb };
        const struct profile *both[] = { &a, &b };
        struct profile *m;
        static const uint64_t want[] = { 0, 300, 100, 200, 400 };

        assert(profile_merge(both, 2, &m) == 0);
        assert(m->count == 5 && m->chunk_size == CS);
        for (int i = 0; i < 5; i++)
                assert(m->entries[i].offset == want[i]);
        profile_free(m);
}

/* A small image in a fresh layout; returns the image's manifest digest. */
static void push_image(const char *ref, const void *profile, size_t plen, struct image **ret_img,
                       struct blob_source **ret_src) {
        struct push_options o = { .codec = CODEC_ZSTD, .level = 1, .threads = 1, .profile = profile, .profile_len = plen };
        struct source_options so = { .create = true };
        struct blob_source *dst;
        struct push_result res;
        char tmpl[] = "/tmp/test-profile-img.XXXXXX", err[256];
        int fd = mkstemp(tmpl);
        uint8_t buf[64 * 1024];

        assert(fd >= 0);
        unlink(tmpl);
        for (size_t i = 0; i < sizeof buf; i++)
                buf[i] = (uint8_t) (i * 7 + 3);
        assert(pwrite(fd, buf, sizeof buf, 0) == (ssize_t) sizeof buf);
        o.chunk_size = 4096;
        assert(source_open(ref, &so, &dst, err, sizeof err) == 0);
        assert(image_push(fd, dst, strrchr(ref, ':') + 1, &o, &res) == 0);
        source_free(dst);
        close(fd);
        assert(source_open(ref, NULL, ret_src, err, sizeof err) == 0);
        assert(image_open(*ret_src, ret_img, err, sizeof err) == 0);
}

static void profile_blob(uint64_t off, void **ret, size_t *ret_len) {
        struct profile_entry e = { off, 4096, 1 };
        struct profile p = { .chunk_size = 4096, .count = 1, .entries = &e };

        assert(profile_encode(&p, ret, ret_len) == 0);
}

static void test_artifacts(void) {
        char dir[] = "/tmp/test-profile-layout.XXXXXX", ref[128], untagged[128], err[256], cmd[300];
        struct blob_source *src, *s2;
        struct image *img, *img2;
        struct profile_found f;
        void *p1, *p2, *layer, *got;
        size_t l1, l2, llen, glen;
        struct digest a1, a2;

        assert(mkdtemp(dir));
        snprintf(ref, sizeof ref, "oci:%s:v1", dir);
        snprintf(untagged, sizeof untagged, "oci:%s", dir);
        profile_blob(0, &p1, &l1);
        profile_blob(8192, &p2, &l2);
        profile_blob(4096, &layer, &llen);

        /* No profile yet. */
        push_image(ref, NULL, 0, &img, &src);
        assert(profile_artifact_find(src, &img->manifest_digest, img->manifest, &got, &glen, &f) == -ENOENT);

        /* Published: found as a referrer; the untagged ref still names the image. */
        assert(profile_artifact_push(src, &img->manifest_digest, img->manifest_size, p1, l1, &a1) == 0);
        assert(profile_artifact_find(src, &img->manifest_digest, img->manifest, &got, &glen, &f) == 0);
        assert(f.origin == PROFILE_ORIGIN_REFERRER && digest_equal(&f.manifest, &a1) && f.created[0]);
        assert(glen == l1 && !memcmp(got, p1, l1));
        free(got);
        assert(source_open(untagged, NULL, &s2, err, sizeof err) == 0);
        assert(image_open(s2, &img2, err, sizeof err) == 0);
        assert(digest_equal(&img2->manifest_digest, &img->manifest_digest));
        image_free(img2);
        source_free(s2);

        /* A newer one wins. */
        assert(profile_artifact_push(src, &img->manifest_digest, img->manifest_size, p2, l2, &a2) == 0);
        assert(profile_artifact_find(src, &img->manifest_digest, img->manifest, &got, &glen, &f) == 0);
        assert(digest_equal(&f.manifest, &a2) && f.candidates == 2);
        assert(glen == l2 && !memcmp(got, p2, l2));
        free(got);
        image_free(img);
        source_free(src);

        /* An image with a profile layer and no referrer: the layer. */
        snprintf(ref, sizeof ref, "oci:%s:v2", dir);
        push_image(ref, layer, llen, &img, &src);
        assert(profile_artifact_find(src, &img->manifest_digest, img->manifest, &got, &glen, &f) == 0);
        assert(f.origin == PROFILE_ORIGIN_LAYER && glen == llen && !memcmp(got, layer, llen));
        free(got);
        /* ...until a referrer is published: it is newer than the image. */
        assert(profile_artifact_push(src, &img->manifest_digest, img->manifest_size, p1, l1, &a1) == 0);
        assert(profile_artifact_find(src, &img->manifest_digest, img->manifest, &got, &glen, &f) == 0);
        assert(f.origin == PROFILE_ORIGIN_REFERRER && glen == l1);
        free(got);
        image_free(img);
        source_free(src);

        free(p1);
        free(p2);
        free(layer);
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        assert(system(cmd) == 0);
}

int main(void) {
        test_recorder();
        test_recorder_threads();
        test_merge();
        test_artifacts();
        printf("ok\n");
        return 0;
}
