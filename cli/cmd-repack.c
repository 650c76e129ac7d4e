/* SPDX-License-Identifier: Apache-2.0 */
/* hocus-blk repack REF [NEWREF]: rewrite an image's packs in boot-profile order. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chunkstore/profile.h"
#include "cli.h"
#include "json-out.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"
#include "registry-client/profile-artifact.h"
#include "registry-client/repack.h"

static void help(void) {
        printf("Usage: hocus-blk repack REF [NEWREF] [OPTIONS]\n\n"
               "Rewrite image REF's packs so that the chunks its boot profile reads first come\n"
               "first, then all others in order: a cold start then reads a few large ranges.\n"
               "Chunks are copied as stored (and verified); their digests do not change, so no\n"
               "chunk store is invalidated. The profile is attached to the new manifest as a\n"
               "layer. NEWREF defaults to REF (its tag then names the repacked image).\n\n"
               "Options:\n"
               "  --profile FILE       the order to use (default: REF's published profile)\n"
               "  --pack-size SIZE     bound on pack blobs (default 64M)\n"
               "  --quiet              print only the new manifest digest\n"
               "  --json               print the result as a JSON object\n\n");
        cli_common_help();
}

enum {
        OPT_PROFILE = 0x3300,
        OPT_PACK_SIZE,
        OPT_QUIET,
        OPT_JSON,
};

int cmd_repack(int argc, char **argv) {
        static const struct option options[] = {
                { "profile", required_argument, NULL, OPT_PROFILE },
                { "pack-size", required_argument, NULL, OPT_PACK_SIZE },
                { "quiet", no_argument, NULL, OPT_QUIET },
                { "json", no_argument, NULL, OPT_JSON },
                { NULL, 0, NULL, 0 },
        };
        const char *profile_path = NULL, *ref, *newref;
        struct blob_source *src = NULL, *dst = NULL;
        struct image *img = NULL;
        struct profile *p = NULL;
        struct repack_options o = { .progress = true };
        struct repack_result res;
        _cleanup_free_ char *blob = NULL;
        _cleanup_free_ uint64_t *first = NULL;
        char why[512], ds[DIGEST_STRING_MAX], a[32];
        bool quiet = false, json = false;
        size_t len = 0;
        uint64_t n = 0, v;
        int c, r;

        while ((c = cli_getopt(argc, argv, COMMON_SHORT_OPTIONS, cli_options(options))) >= 0) {
                switch (c) {
                case OPT_PROFILE:
                        profile_path = optarg;
                        break;
                case OPT_PACK_SIZE:
                        if (parse_size(optarg, &v) < 0 || v < (1u << 20) || v > (4ULL << 30))
                                return cli_usage_error("repack", "--pack-size wants 1M to 4G");
                        o.pack_size = v;
                        break;
                case OPT_QUIET:
                        quiet = true;
                        break;
                case OPT_JSON:
                        json = true;
                        break;
                default:
                        r = cli_other_option("repack", c, optarg, help);
                        if (r <= 0)
                                return r;
                }
        }
        if (argc - optind < 1 || argc - optind > 2)
                return cli_usage_error("repack", "repack takes REF and optionally NEWREF");
        ref = argv[optind];
        newref = argc - optind == 2 ? argv[optind + 1] : ref;

        r = cli_open_image(ref, &src, &img);
        if (r < 0)
                return r;
        if (profile_path) {
                r = read_file_all(AT_FDCWD, profile_path, PROFILE_BLOB_MAX, &blob, &len);
                if (r < 0) {
                        log_error_errno(r, "Cannot read %s: %m", profile_path);
                        goto out;
                }
        } else {
                void *b = NULL;
                r = profile_artifact_find(src, &img->manifest_digest, img->manifest, &b, &len, NULL);
                blob = b;
                if (r == -ENOENT) {
                        log_error_errno(r, "%s has no published boot profile: pass --profile FILE", ref);
                        goto out;
                }
                if (r < 0) {
                        log_error_errno(r, "Cannot find the profile of %s: %s", ref, source_strerror(src, r, why, sizeof why));
                        goto out;
                }
        }
        r = profile_decode(blob, len, &p, why, sizeof why);
        if (r < 0) {
                log_error_errno(r, "Bad profile %s: %s", profile_path ? profile_path : "(the published one)", why);
                goto out;
        }
        r = profile_chunks(p, img->index->image_size, img->index->chunk_size, &first, &n);
        if (r < 0)
                goto out;
        o.first_chunks = first;
        o.n_first_chunks = n;
        o.profile = blob;
        o.profile_len = len;
        r = cli_open_source(newref, true, &dst);
        if (r < 0)
                goto out;
        if (dst->ref->digest) {
                r = log_error_errno(EINVAL, "Cannot repack to a digest reference ('%s'): name a tag", newref);
                goto out;
        }
        r = image_repack(img, dst, dst->ref->tag ? dst->ref->tag : "latest", &o, &res);
        if (r < 0) {
                if (source_describe_error(dst, r, why, sizeof why))
                        log_error_errno(r, "Repack of %s failed: %s", ref, why);
                else if (r == -EBADMSG)
                        log_error("Repack of %s failed: a chunk's stored bytes do not match its digest", ref);
                else
                        log_error_errno(r, "Repack of %s failed: %s", ref, source_strerror(dst, r, why, sizeof why));
                goto out;
        }
        if (json) {
                struct json_object *j = json_object_new_object();

                json_add_str(j, "reference", ref);
                json_add_str(j, "new_reference", newref);
                json_add_digest(j, "manifest_digest", &res.manifest_digest);
                json_add_u64(j, "chunks", res.chunks);
                json_add_u64(j, "profile_chunks", res.chunks_first);
                json_add_u64(j, "stored_bytes", res.bytes);
                json_add_u64(j, "packs", res.packs);
                json_add_u64(j, "range_reads", res.reads);
                json_add_double(j, "seconds", res.seconds);
                cli_json_print(j, false);
                goto out;
        }
        if (quiet) {
                printf("%s\n", digest_to_string(&res.manifest_digest, ds));
                goto out;
        }
        printf("Repacked %s into %s\n", ref, newref);
        printf("  manifest     %s\n", digest_to_string(&res.manifest_digest, ds));
        printf("  chunks       %llu (%llu of the boot profile first), %s in %llu packs, %llu range reads, %.2f s\n",
               (unsigned long long) res.chunks, (unsigned long long) res.chunks_first, format_size(res.bytes, a, sizeof a),
               (unsigned long long) res.packs, (unsigned long long) res.reads, res.seconds);
        printf("  profile      attached as a layer (profiles published for the old manifest do not apply)\n");
out:
        profile_free(p);
        image_free(img);
        source_free(src);
        source_free(dst);
        return r;
}
