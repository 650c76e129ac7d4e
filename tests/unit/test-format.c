/* SPDX-License-Identifier: Apache-2.0 */
/* Codecs, digests, profiles and manifests: round trips and malformed input. */
#undef NDEBUG
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chunkstore/codec.h"
#include "chunkstore/digest.h"
#include "chunkstore/profile.h"
#include "common/util.h"
#include "registry-client/manifest.h"

static void test_codecs(void) {
        size_t len = 256 * 1024;
        uint8_t *src = malloc(len), *comp = malloc(codec_bound(len)), *out = malloc(len);

        for (size_t i = 0; i < len; i++)
                src[i] = (uint8_t) ((i / 7) ^ (i % 13));
        for (int c = 0; c < _CODEC_MAX; c++) {
                ssize_t n = codec_compress(c, 3, src, len, comp, codec_bound(len));
                assert(n > 0);
                if (c != CODEC_RAW)
                        assert((size_t) n < len / 2);
                assert(codec_decompress(c, comp, (size_t) n, out, len) == 0);
                assert(!memcmp(src, out, len));
                /* wrong raw length, truncated input, garbage: rejected */
                assert(codec_decompress(c, comp, (size_t) n, out, len - 1) == -EBADMSG);
                if (n > 8)
                        assert(codec_decompress(c, comp, (size_t) n - 8, out, len) == -EBADMSG);
                memset(comp, 0x5a, 64);
                if (c != CODEC_RAW)
                        assert(codec_decompress(c, comp, 64, out, len) == -EBADMSG);
        }
        assert(codec_decompress(9, src, 10, out, 10) == -EBADMSG);
        {
                enum codec c;
                int level;
                assert(codec_parse("zstd", &c, &level) == 0 && c == CODEC_ZSTD && level == 3);
                assert(codec_parse("zstd:19", &c, &level) == 0 && level == 19);
                assert(codec_parse("lz4", &c, &level) == 0 && c == CODEC_LZ4);
                assert(codec_parse("none", &c, &level) == 0 && c == CODEC_RAW);
                assert(codec_parse("zstd:0", &c, &level) == -EINVAL);
                assert(codec_parse("zstd:99", &c, &level) == -EINVAL);
                assert(codec_parse("gzip", &c, &level) == -EINVAL);
        }
        free(src);
        free(comp);
        free(out);
}

static void test_digests(void) {
        struct digest d, e;
        char s[DIGEST_STRING_MAX];

        /* SHA-256("abc") */
        digest_compute("abc", 3, &d);
        assert(!strcmp(digest_to_string(&d, s),
                       "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
        assert(digest_parse(s, &e) == 0 && digest_equal(&d, &e));
        assert(digest_parse("sha256:BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD", &e) == -EINVAL);
        assert(digest_parse("sha512:00", &e) == -EOPNOTSUPP);
        assert(digest_parse("sha256:abc", &e) == -EINVAL);
        assert(digest_parse("sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015adx", &e) == -EINVAL);
        assert(digest_parse("nocolon", &e) == -EINVAL);
}

static void test_profiles(void) {
        struct profile p = { .chunk_size = 65536, .count = 3 }, *q;
        struct profile_entry e[3] = { { 1000000, 4096, 0 }, { 0, 200000, 5 }, { 1000000, 10, 7 } };
        uint64_t *chunks, n;
        void *blob;
        size_t len;
        char err[200];

        p.entries = e;
        assert(profile_encode(&p, &blob, &len) == 0);
        assert(profile_decode(blob, len, &q, err, sizeof err) == 0);
        assert(q->count == 3 && q->entries[1].length == 200000 && q->entries[2].t_ms == 7);
        assert(profile_chunks(q, 2000000, 65536, &chunks, &n) == 0);
        /* 1000000/65536 = 15 first, then 0..3 */
        assert(n == 5 && chunks[0] == 15 && chunks[1] == 0 && chunks[4] == 3);
        free(chunks);
        /* clipped at the image end */
        assert(profile_chunks(q, 100000, 65536, &chunks, &n) == 0);
        assert(n == 2 && chunks[0] == 0 && chunks[1] == 1);
        free(chunks);
        profile_free(q);
        for (size_t l = 0; l < len; l++)
                assert(profile_decode(blob, l, &q, err, sizeof err) == -EBADMSG);
        ((uint8_t *) blob)[8] = 9;
        assert(profile_decode(blob, len, &q, err, sizeof err) == -EBADMSG && strstr(err, "version"));
        free(blob);
}

static void test_manifests(void) {
        struct image_manifest m = { 0 }, *q;
        struct descriptor packs[2];
        char *json, err[256];
        size_t len;

        memset(packs, 0, sizeof packs);
        digest_compute("i", 1, &m.index.digest);
        m.index.size = 10;
        digest_compute("p", 1, &packs[0].digest);
        packs[0].size = 20;
        digest_compute("q", 1, &packs[1].digest);
        packs[1].size = 30;
        m.packs = packs;
        m.n_packs = 2;
        m.image_size = 1 << 30;
        m.chunk_size = 262144;
        assert(image_manifest_encode(&m, &json, &len) == 0);
        assert(strstr(json, MT_IMAGE) && strstr(json, MT_OCI_EMPTY));
        assert(image_manifest_parse(MT_OCI_MANIFEST, json, len, &q, err, sizeof err) == 0);
        assert(q->n_packs == 2 && q->packs[1].size == 30 && digest_equal(&q->index.digest, &m.index.digest));
        assert(q->image_size == 1 << 30 && q->chunk_size == 262144 && !q->has_profile);
        image_manifest_free(q);
        free(json);

        /* A container image is recognised as not ours. */
        static const char container[] =
                "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
                "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":"
                "\"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a\",\"size\":2},"
                "\"layers\":[]}";
        assert(image_manifest_parse(MT_OCI_MANIFEST, container, strlen(container), &q, err, sizeof err) == -EMEDIUMTYPE);
        assert(strstr(err, "not a hocus-blk image"));
        assert(image_manifest_parse(MT_DOCKER_MANIFEST, container, strlen(container), &q, err, sizeof err) == -EMEDIUMTYPE);
        assert(image_manifest_parse(MT_OCI_MANIFEST, "[1,2", 4, &q, err, sizeof err) == -EBADMSG);
        static const char badlayer[] =
                "{\"artifactType\":\"application/vnd.hocus.blk.image.v1\",\"layers\":[{\"mediaType\":"
                "\"application/vnd.hocus.blk.index.v1\",\"digest\":\"sha256:zz\",\"size\":1}]}";
        assert(image_manifest_parse(MT_OCI_MANIFEST, badlayer, strlen(badlayer), &q, err, sizeof err) == -EBADMSG);
        assert(strstr(err, "unsupported digest"));
        static const char nolayers[] = "{\"artifactType\":\"application/vnd.hocus.blk.image.v1\"}";
        assert(image_manifest_parse(MT_OCI_MANIFEST, nolayers, strlen(nolayers), &q, err, sizeof err) == -EBADMSG);
}

static void test_util(void) {
        uint64_t v;

        assert(parse_size("4096", &v) == 0 && v == 4096);
        assert(parse_size("256K", &v) == 0 && v == 262144);
        assert(parse_size("256KiB", &v) == 0 && v == 262144);
        assert(parse_size("1.5G", &v) == 0 && v == 3ULL << 29);
        assert(parse_size("100GiB", &v) == 0 && v == 100ULL << 30);
        assert(parse_size("-1", &v) == -EINVAL);
        assert(parse_size("12X", &v) == -EINVAL);
        assert(parse_size("1.5", &v) == -EINVAL);
        assert(parse_size("", &v) == -EINVAL);
        assert(buf_is_zero("\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 20));
        {
                /* /proc files report st_size 0: read them to EOF anyway. */
                char *b;
                size_t n;
                assert(read_file_all(AT_FDCWD, "/proc/self/status", 1 << 20, &b, &n) == 0);
                assert(n > 0 && strstr(b, "Name:"));
                free(b);
                assert(read_file_all(AT_FDCWD, "/proc/self/status", 10, &b, &n) == -EFBIG);
        }
        assert(!buf_is_zero("\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\1", 20));
}

int main(void) {
        test_codecs();
        test_digests();
        test_profiles();
        test_manifests();
        test_util();
        printf("ok\n");
        return 0;
}
