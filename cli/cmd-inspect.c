/* SPDX-License-Identifier: Apache-2.0 */
/* hocus-blk inspect REF [--json [--chunks]] [--verify]: what an image holds. */
#include <errno.h>
#include <json-c/json.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chunkstore/codec.h"
#include "cli.h"
#include "json-out.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"
#include "registry-client/bulk.h"

static void help(void) {
        printf("Usage: hocus-blk inspect REF [OPTIONS]\n\n"
               "Show an image's manifest digest, size, chunking, packs and compression.\n\n"
               "Options:\n"
               "  --json               machine-readable output\n"
               "  --chunks             with --json: the chunk table (pack, offset, stored and raw\n"
               "                       length, codec of each unique chunk) and the map of data\n"
               "                       chunks (logical chunk number, unique chunk)\n"
               "  --verify             read every stored chunk and check it against its digest\n"
               "  -v                   also say where each blob came from (a registry mirror\n"
               "                       or the origin), with debug logging\n\n");
        cli_common_help();
}

struct summary {
        uint64_t zero_chunks, data_chunks, refs_dup;
        uint64_t stored, raw;
        uint64_t by_codec[_CODEC_MAX];
};

static void summarise(const struct blkindex *x, struct summary *s) {
        _cleanup_free_ uint8_t *used = calloc(x->n_chunks ? x->n_chunks : 1, 1);

        memset(s, 0, sizeof *s);
        for (uint64_t i = 0; i < x->n_map; i++) {
                if (x->map[i] == BLKINDEX_ZERO) {
                        s->zero_chunks++;
                        continue;
                }
                s->data_chunks++;
                if (used && used[x->map[i]]++)
                        s->refs_dup++;
        }
        for (uint32_t i = 0; i < x->n_chunks; i++) {
                s->stored += x->chunks[i].stored_len;
                s->raw += x->chunks[i].raw_len;
                s->by_codec[x->chunks[i].codec]++;
        }
}

struct verify {
        const struct blkindex *x;
        _Atomic uint64_t bad;
};

/* One chunk checked: a failed one is counted and named, and the run goes
 * on. Called by the engine's decoder threads. */
static int verify_chunk(void *userdata, uint32_t k, int r, const void *stored, const void *raw) {
        struct verify *v = userdata;
        char ds[DIGEST_STRING_MAX];

        (void) stored;
        (void) raw;
        if (r >= 0)
                return 0;
        v->bad++;
        log_error_errno(r, "chunk %u (%s) in pack %u: %s", k, digest_to_string(&v->x->chunks[k].digest, ds),
                        v->x->chunks[k].pack, r == -EBADMSG ? "bytes do not match the digest" : strerror(-r));
        return 0;
}

/* Read and verify every unique chunk with the bulk engine (coalesced range
 * reads, decoded and checked in parallel, nothing stored). */
static int verify_chunks(struct image *img, uint64_t *ret_bad) {
        const struct blkindex *x = img->index;
        struct verify v = { .x = x };
        struct bulk_options o = { .gap_max = BULK_DEFAULT_GAP, .progress = "verify", .chunk = verify_chunk,
                                  .userdata = &v };
        _cleanup_free_ uint32_t *all = malloc(MAX(x->n_chunks, 1u) * sizeof *all);
        struct bulk_result res;
        int r;

        if (!all)
                return -ENOMEM;
        for (uint32_t k = 0; k < x->n_chunks; k++)
                all[k] = k;
        r = bulk_run(img, NULL, all, x->n_chunks, &o, &res);
        if (r < 0)
                return r;
        *ret_bad = v.bad;
        return 0;
}

static void print_text(const char *ref, struct image *img, const struct summary *s) {
        const struct blkindex *x = img->index;
        char ds[DIGEST_STRING_MAX], a[32], b[32];

        printf("Reference     %s\n", ref);
        printf("Manifest      %s (%llu bytes)\n", digest_to_string(&img->manifest_digest, ds),
               (unsigned long long) img->manifest_size);
        printf("Image size    %s (%llu bytes)\n", format_size(x->image_size, a, sizeof a),
               (unsigned long long) x->image_size);
        printf("Chunk size    %s\n", format_size(x->chunk_size, a, sizeof a));
        printf("Chunks        %llu logical: %llu with data, %llu zero; %u unique (%llu duplicate references)\n",
               (unsigned long long) x->n_map, (unsigned long long) s->data_chunks, (unsigned long long) s->zero_chunks,
               x->n_chunks, (unsigned long long) s->refs_dup);
        printf("Stored        %s for %s raw (ratio %.2f)\n", format_size(s->stored, a, sizeof a),
               format_size(s->raw, b, sizeof b), s->stored ? (double) s->raw / (double) s->stored : 0.0);
        printf("Codecs        zstd %llu, lz4 %llu, raw %llu\n", (unsigned long long) s->by_codec[CODEC_ZSTD],
               (unsigned long long) s->by_codec[CODEC_LZ4], (unsigned long long) s->by_codec[CODEC_RAW]);
        printf("Index         %s (%s)\n", digest_to_string(&img->manifest->index.digest, ds),
               format_size(img->manifest->index.size, a, sizeof a));
        printf("Packs         %u\n", x->n_packs);
        for (uint32_t i = 0; i < x->n_packs; i++)
                printf("  %s  %s\n", digest_to_string(&x->packs[i].digest, ds), format_size(x->packs[i].size, a, sizeof a));
        if (img->manifest->has_profile)
                printf("Profile       %s (%s)\n", digest_to_string(&img->manifest->profile.digest, ds),
                       format_size(img->manifest->profile.size, a, sizeof a));
        else
                printf("Profile       none in the manifest\n");
}

/* -v: where each blob this run read came from (a mirror or the origin;
 * docs/REGISTRIES.md). Packs appear after --verify read them. */
static void print_sources(struct blob_source *src, struct image *img) {
        const struct blkindex *x = img->index;
        char ds[DIGEST_STRING_MAX], from[512];
        const char *f;

        if (!source_served_by(src, &img->manifest_digest, from, sizeof from) &&
            !source_served_by(src, &img->manifest->index.digest, from, sizeof from))
                return;
        printf("Read from\n");
        if ((f = source_served_by(src, &img->manifest_digest, from, sizeof from)))
                printf("  manifest  %s  %s\n", digest_to_string(&img->manifest_digest, ds), f);
        if ((f = source_served_by(src, &img->manifest->index.digest, from, sizeof from)))
                printf("  index     %s  %s\n", digest_to_string(&img->manifest->index.digest, ds), f);
        if (img->manifest->has_profile && (f = source_served_by(src, &img->manifest->profile.digest, from, sizeof from)))
                printf("  profile   %s  %s\n", digest_to_string(&img->manifest->profile.digest, ds), f);
        for (uint32_t i = 0; i < x->n_packs; i++)
                if ((f = source_served_by(src, &x->packs[i].digest, from, sizeof from)))
                        printf("  pack      %s  %s\n", digest_to_string(&x->packs[i].digest, ds), f);
}

/* The unique chunk table and the logical map of data chunks (zero chunks
 * left out: a 100 GiB image is mostly holes) as compact arrays, for tools
 * that need per-chunk stored sizes (bench/coldstart's physical limit). */
static void add_chunks_json(struct json_object *o, const struct blkindex *x) {
        struct json_object *table = json_object_new_array(), *map = json_object_new_array();

        for (uint32_t i = 0; i < x->n_chunks; i++) {
                const struct blkindex_chunk *c = &x->chunks[i];
                struct json_object *e = json_object_new_array();

                json_object_array_add(e, json_object_new_int64(c->pack));
                json_object_array_add(e, json_object_new_int64((int64_t) c->offset));
                json_object_array_add(e, json_object_new_int64(c->stored_len));
                json_object_array_add(e, json_object_new_int64(c->raw_len));
                json_object_array_add(e, json_object_new_string(codec_name(c->codec)));
                json_object_array_add(table, e);
        }
        for (uint64_t i = 0; i < x->n_map; i++) {
                struct json_object *e;

                if (x->map[i] == BLKINDEX_ZERO)
                        continue;
                e = json_object_new_array();
                json_object_array_add(e, json_object_new_int64((int64_t) i));
                json_object_array_add(e, json_object_new_int64(x->map[i]));
                json_object_array_add(map, e);
        }
        json_object_object_add(o, "chunk_table", table);
        json_object_object_add(o, "data_map", map);
}

static void print_json(const char *ref, struct image *img, const struct summary *s, int verified, uint64_t bad,
                       bool chunks) {
        const struct blkindex *x = img->index;
        struct json_object *o = json_object_new_object(), *packs = json_object_new_array(), *codecs;
        char ds[DIGEST_STRING_MAX];

        json_object_object_add(o, "reference", json_object_new_string(ref));
        json_object_object_add(o, "manifest_digest", json_object_new_string(digest_to_string(&img->manifest_digest, ds)));
        json_object_object_add(o, "image_size", json_object_new_int64((int64_t) x->image_size));
        json_object_object_add(o, "chunk_size", json_object_new_int64(x->chunk_size));
        json_object_object_add(o, "chunks", json_object_new_int64((int64_t) x->n_map));
        json_object_object_add(o, "data_chunks", json_object_new_int64((int64_t) s->data_chunks));
        json_object_object_add(o, "zero_chunks", json_object_new_int64((int64_t) s->zero_chunks));
        json_object_object_add(o, "unique_chunks", json_object_new_int64(x->n_chunks));
        json_object_object_add(o, "duplicate_references", json_object_new_int64((int64_t) s->refs_dup));
        json_object_object_add(o, "stored_bytes", json_object_new_int64((int64_t) s->stored));
        json_object_object_add(o, "raw_bytes", json_object_new_int64((int64_t) s->raw));
        codecs = json_object_new_object();
        for (int c = 0; c < _CODEC_MAX; c++)
                json_object_object_add(codecs, codec_name(c), json_object_new_int64((int64_t) s->by_codec[c]));
        json_object_object_add(o, "codecs", codecs);
        json_object_object_add(o, "index_digest",
                               json_object_new_string(digest_to_string(&img->manifest->index.digest, ds)));
        json_object_object_add(o, "index_size", json_object_new_int64((int64_t) img->manifest->index.size));
        for (uint32_t i = 0; i < x->n_packs; i++) {
                struct json_object *p = json_object_new_object();
                json_object_object_add(p, "digest", json_object_new_string(digest_to_string(&x->packs[i].digest, ds)));
                json_object_object_add(p, "size", json_object_new_int64((int64_t) x->packs[i].size));
                json_object_array_add(packs, p);
        }
        json_object_object_add(o, "packs", packs);
        if (img->manifest->has_profile)
                json_object_object_add(o, "profile_digest",
                                       json_object_new_string(digest_to_string(&img->manifest->profile.digest, ds)));
        if (verified) {
                json_object_object_add(o, "verified", json_object_new_boolean(bad == 0));
                json_object_object_add(o, "bad_chunks", json_object_new_int64((int64_t) bad));
        }
        if (chunks)
                add_chunks_json(o, x);
        /* Pretty-printing puts every number of the chunk arrays on its own line. */
        cli_json_print(o, chunks);
}

int cmd_inspect(int argc, char **argv) {
        static const struct option options[] = {
                { "json", no_argument, NULL, 'j' },
                { "verify", no_argument, NULL, 'V' },
                { "chunks", no_argument, NULL, 'C' },
                { NULL, 0, NULL, 0 },
        };
        struct blob_source *src = NULL;
        struct image *img = NULL;
        struct summary s;
        bool json = false, verify = false, chunks = false;
        uint64_t bad = 0;
        int c, r;

        while ((c = cli_getopt(argc, argv, COMMON_SHORT_OPTIONS, cli_options(options))) >= 0) {
                switch (c) {
                case 'j':
                        json = true;
                        break;
                case 'V':
                        verify = true;
                        break;
                case 'C':
                        chunks = true;
                        break;
                default:
                        r = cli_other_option("inspect", c, optarg, help);
                        if (r <= 0)
                                return r;
                }
        }
        if (argc - optind != 1)
                return cli_usage_error("inspect", "inspect takes one REF");
        if (chunks && !json)
                return cli_usage_error("inspect", "--chunks needs --json");
        r = cli_open_image(argv[optind], &src, &img);
        if (r < 0)
                return r;
        summarise(img->index, &s);
        if (verify) {
                r = verify_chunks(img, &bad);
                if (r < 0) {
                        log_error_errno(r, "Cannot verify '%s': %m", argv[optind]);
                        goto out;
                }
        }
        if (json)
                print_json(argv[optind], img, &s, verify, bad, chunks);
        else {
                print_text(argv[optind], img, &s);
                if (verify)
                        printf("Verified      %s\n", bad ? "FAILED" : "every chunk matches its digest");
                if (log_get_level() >= LOG_LVL_DEBUG)
                        print_sources(src, img);
        }
        if (bad)
                r = log_error_errno(EBADMSG, "%llu of %u chunks failed verification", (unsigned long long) bad,
                                    img->index->n_chunks);
out:
        image_free(img);
        source_free(src);
        return r;
}
