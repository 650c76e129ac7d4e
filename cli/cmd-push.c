/* SPDX-License-Identifier: Apache-2.0 */
/* hocus-blk push SRC REF: store a raw disk image as a hocus-blk image. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chunkstore/chunker.h"
#include "chunkstore/profile.h"
#include "cli.h"
#include "json-out.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"
#include "registry-client/push.h"

static void help(void) {
        printf("Usage: hocus-blk push SRC REF [OPTIONS]\n\n"
               "Chunk the raw disk image SRC (a file or block device; holes are skipped), store\n"
               "the chunks compressed in packs and the index under REF. Only blobs REF does not\n"
               "already have are uploaded. The tag is written last: a failed push leaves no tag.\n\n"
               "Options:\n"
               "  --chunk-size SIZE    chunk size, a power of two from 4K to 16M (default 256K)\n"
               "  --compress CODEC     zstd[:LEVEL] (default zstd:3), lz4 or none\n"
               "  --base REF           delta push: reuse every chunk the base image already stores\n"
               "  --profile FILE       lay out the chunks this boot profile reads first, and attach it\n"
               "  --threads N          worker threads (default: number of CPUs)\n"
               "  --pack-size SIZE     bound on pack blobs (default 64M)\n"
               "  -q, --quiet          print only the manifest digest\n"
               "  --json               print the result as a JSON object\n\n");
        cli_common_help();
}

static void print_result(const char *ref, const struct push_result *r, bool quiet) {
        char ds[DIGEST_STRING_MAX], a[32], b[32], c[32], d[32];

        if (quiet) {
                printf("%s\n", digest_to_string(&r->manifest_digest, ds));
                return;
        }
        printf("Pushed %s\n", ref);
        printf("  manifest     %s\n", digest_to_string(&r->manifest_digest, ds));
        printf("  image        %s, %llu chunks of %s\n", format_size(r->image_size, a, sizeof a),
               (unsigned long long) r->chunks_total, format_size(r->chunk_size, b, sizeof b));
        printf("  read         %s of data (holes skipped) in %.2f s, %s/s\n", format_size(r->data_bytes, a, sizeof a),
               r->seconds, format_size(r->seconds > 0 ? (uint64_t) ((double) r->data_bytes / r->seconds) : 0, b, sizeof b));
        printf("  chunks       %llu zero, %llu unique, %llu duplicate, %llu from base\n",
               (unsigned long long) r->chunks_zero, (unsigned long long) r->chunks_unique,
               (unsigned long long) r->chunks_dedup, (unsigned long long) r->chunks_from_base);
        printf("  new data     %s stored for %s raw in %llu packs\n", format_size(r->stored_new, a, sizeof a),
               format_size(r->raw_new, b, sizeof b), (unsigned long long) r->packs_new);
        printf("  uploaded     %llu blobs, %s (index %s)\n", (unsigned long long) r->blobs_uploaded,
               format_size(r->bytes_uploaded, c, sizeof c), format_size(r->index_size, d, sizeof d));
}

static void print_json(const char *ref, const struct push_result *r) {
        struct json_object *o = json_object_new_object();

        json_add_str(o, "reference", ref);
        json_add_digest(o, "manifest_digest", &r->manifest_digest);
        json_add_u64(o, "image_size", r->image_size);
        json_add_u64(o, "chunk_size", r->chunk_size);
        json_add_u64(o, "chunks", r->chunks_total);
        json_add_u64(o, "zero_chunks", r->chunks_zero);
        json_add_u64(o, "unique_chunks", r->chunks_unique);
        json_add_u64(o, "duplicate_references", r->chunks_dedup);
        json_add_u64(o, "base_chunks", r->chunks_from_base);
        json_add_u64(o, "data_bytes", r->data_bytes);
        json_add_u64(o, "new_stored_bytes", r->stored_new);
        json_add_u64(o, "new_raw_bytes", r->raw_new);
        json_add_u64(o, "new_packs", r->packs_new);
        json_add_u64(o, "uploaded_blobs", r->blobs_uploaded);
        json_add_u64(o, "uploaded_bytes", r->bytes_uploaded);
        json_add_u64(o, "index_size", r->index_size);
        json_add_double(o, "seconds", r->seconds);
        cli_json_print(o, false);
}

/* SRC must be a regular file or a block device. */
static int check_source(int fd, const char *path) {
        uint64_t size;
        int r;

        r = source_image_size(fd, &size);
        if (r == -EISDIR)
                return log_error_errno(r, "Source image '%s' is a directory, not a disk image", path);
        if (r == -EINVAL)
                return log_error_errno(r, "Source image '%s' is neither a regular file nor a block device", path);
        if (r < 0)
                return log_error_errno(r, "Cannot read source image '%s': %m", path);
        return 0;
}

int cmd_push(int argc, char **argv) {
        static const struct option options[] = {
                { "chunk-size", required_argument, NULL, 'c' },
                { "compress", required_argument, NULL, 'z' },
                { "base", required_argument, NULL, 'b' },
                { "profile", required_argument, NULL, 'p' },
                { "threads", required_argument, NULL, 't' },
                { "pack-size", required_argument, NULL, 'P' },
                { "quiet", no_argument, NULL, 'q' },
                { "json", no_argument, NULL, 'j' },
                { NULL, 0, NULL, 0 },
        };
        struct push_options o = { .codec = CODEC_ZSTD, .level = 3 };
        const char *base_ref = NULL, *profile_path = NULL, *src_path, *dst_ref;
        struct blob_source *dst = NULL, *base_src = NULL;
        struct image *base = NULL;
        struct profile *prof = NULL;
        _cleanup_free_ uint64_t *first = NULL;
        _cleanup_free_ void *prof_blob = NULL;
        _cleanup_close_ int fd = -EBADF;
        struct push_result res;
        bool quiet = false, json = false;
        uint64_t v;
        int c, r;

        while ((c = cli_getopt(argc, argv, COMMON_SHORT_OPTIONS "q", cli_options(options))) >= 0) {
                switch (c) {
                case 'c':
                        if (parse_size(optarg, &v) < 0 || v < 4096 || v > (16u << 20) || (v & (v - 1)))
                                return cli_usage_error("push", "--chunk-size wants a power of two from 4K to 16M, not '%s'", optarg);
                        o.chunk_size = (uint32_t) v;
                        break;
                case 'z':
                        if (codec_parse(optarg, &o.codec, &o.level) < 0)
                                return cli_usage_error("push", "--compress wants zstd[:LEVEL], lz4 or none, not '%s'", optarg);
                        break;
                case 'b':
                        base_ref = optarg;
                        break;
                case 'p':
                        profile_path = optarg;
                        break;
                case 't':
                        if (parse_size(optarg, &v) < 0 || v < 1 || v > 64)
                                return cli_usage_error("push", "--threads wants 1 to 64");
                        o.threads = (unsigned) v;
                        break;
                case 'P':
                        if (parse_size(optarg, &v) < 0 || v < (1u << 20) || v > (4ULL << 30))
                                return cli_usage_error("push", "--pack-size wants 1M to 4G");
                        o.pack_size = v;
                        break;
                case 'q':
                        quiet = true;
                        break;
                case 'j':
                        json = true;
                        break;
                default:
                        r = cli_other_option("push", c, optarg, help);
                        if (r <= 0)
                                return r;
                }
        }
        if (argc - optind != 2)
                return cli_usage_error("push", "push takes SRC and REF");
        src_path = argv[optind];
        dst_ref = argv[optind + 1];

        fd = open(src_path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return log_error_errno(errno, "Cannot open source image '%s': %m", src_path);
        r = check_source(fd, src_path);
        if (r < 0)
                return r;
        r = cli_open_source(dst_ref, true, &dst);
        if (r < 0)
                return r;
        if (dst->ref->digest) {
                r = log_error_errno(EINVAL, "Cannot push to a digest reference ('%s'): name a tag", dst_ref);
                goto out;
        }
        if (base_ref) {
                r = cli_open_image_opt("base", base_ref, &base_src, &base);
                if (r < 0)
                        goto out;
                o.base = base;
                if (!o.chunk_size)
                        o.chunk_size = base->index->chunk_size;
                else if (o.chunk_size != base->index->chunk_size) {
                        r = log_error_errno(EINVAL, "--chunk-size differs from the base image's (%u): chunks could not be shared",
                                            base->index->chunk_size);
                        goto out;
                }
        }
        if (profile_path) {
                char err[256];
                uint64_t size, n;

                r = profile_load(profile_path, &prof, err, sizeof err);
                if (r < 0) {
                        log_error_errno(r, "--profile: %s", err);
                        goto out;
                }
                (void) source_image_size(fd, &size);
                r = profile_chunks(prof, size, o.chunk_size ? o.chunk_size : PUSH_DEFAULT_CHUNK_SIZE, &first, &n);
                if (r < 0)
                        goto out;
                o.first_chunks = first;
                o.n_first_chunks = n;
                r = profile_encode(prof, &prof_blob, &o.profile_len);
                if (r < 0)
                        goto out;
                o.profile = prof_blob;
        }
        o.progress = true;
        r = image_push(fd, dst, dst->ref->tag ? dst->ref->tag : "latest", &o, &res);
        if (r < 0) {
                char why[512];

                if (source_describe_error(dst, r, why, sizeof why))
                        log_error_errno(r, "Push to '%s' failed: %s", dst_ref, why);
                else if (r == -EBADMSG)
                        log_error("Push to '%s' failed: a blob's bytes did not match its digest", dst_ref);
                else
                        log_error_errno(r, "Push to '%s' failed: %s", dst_ref, strerror(-r));
                goto out;
        }
        if (json)
                print_json(dst_ref, &res);
        else
                print_result(dst_ref, &res, quiet);
out:
        profile_free(prof);
        image_free(base);
        source_free(base_src);
        source_free(dst);
        return r;
}
