/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hocus-blk profile push|show|get|merge: boot profiles published next to
 * an image (registry-client/profile-artifact.h), without re-pushing it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chunkstore/profile-learned.h"
#include "chunkstore/profile.h"
#include "cli.h"
#include "json-out.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"
#include "registry-client/profile-artifact.h"

static void help(void) {
        printf("Usage: hocus-blk profile COMMAND ...\n\n"
               "Boot profiles: the order in which a boot first read an image. Published as a\n"
               "small OCI artifact whose subject is the image's manifest (found through the\n"
               "referrers API, or the referrers tag schema on registries without it), so a\n"
               "profile can be re-recorded or merged without re-pushing the image. The newest\n"
               "published profile wins; blockd prefetches it when it attaches the image.\n\n"
               "Commands:\n"
               "  push REF FILE             publish FILE as REF's boot profile\n"
               "  push REF --learned        publish what blockd learned on this host (the first\n"
               "                            reads of REF's cold attaches, kept in the chunk store\n"
               "                            --cache names), merged with the published profile\n"
               "  show REF|FILE [--all] [--json]\n"
               "                            what a profile holds (for REF, the one blockd would\n"
               "                            use; --all lists every published one)\n"
               "  get REF --out FILE        download REF's profile\n"
               "  merge A B... --out FILE   merge the profiles of several boots\n\n"
               "Record a profile with 'hocus-blk record'. Without a published profile, blockd\n"
               "prefetches the one it learned on this host, if any.\n\n"
               "Options:\n"
               "  --out FILE           where get and merge write the profile\n"
               "  --all                show: list every published profile\n"
               "  --learned            push: publish the profile learned on this host\n"
               "  --json               show: print the result as a JSON object\n\n");
        cli_common_help();
}

enum {
        OPT_OUT = 0x3100,
        OPT_ALL,
        OPT_JSON,
        OPT_LEARNED,
};

static int load_file(const char *path, struct profile **ret) {
        char err[512];
        int r = profile_load(path, ret, err, sizeof err);

        if (r < 0)
                return log_error_errno(r, "%s", err);
        return 0;
}

static int save_profile(const struct profile *p, const char *path) {
        _cleanup_free_ void *buf = NULL;
        size_t len;
        int r;

        r = profile_encode(p, &buf, &len);
        if (r < 0)
                return log_error_errno(r, "Cannot encode the profile: %m");
        r = write_file_atomic(AT_FDCWD, path, buf, len, 0644);
        if (r < 0)
                return log_error_errno(r, "Cannot write %s: %m", path);
        return 0;
}

/* The profile's summary against an image (img may be NULL): printed, or
 * added to j when j is not NULL. */
static void describe(const struct profile *p, const struct image *img, struct json_object *j) {
        uint32_t t_max = 0;
        uint64_t bytes = 0;
        char a[32], b[32];

        for (uint32_t i = 0; i < p->count; i++) {
                t_max = MAX(t_max, p->entries[i].t_ms);
                bytes += p->entries[i].length;
        }
        if (j) {
                json_add_u64(j, "ranges", p->count);
                json_add_u64(j, "bytes", bytes);
                json_add_double(j, "first_reads_seconds", t_max / 1000.0);
                json_add_u64(j, "chunk_size", p->chunk_size);
        } else
                printf("  ranges       %u, %s of the image, first reads over %.1f s (recorded with %s chunks)\n",
                       p->count, format_size(bytes, a, sizeof a), t_max / 1000.0, format_size(p->chunk_size, b, sizeof b));
        if (img) {
                _cleanup_free_ uint64_t *chunks = NULL;
                _cleanup_free_ uint8_t *seen = NULL;
                const struct blkindex *x = img->index;
                uint64_t n = 0, data = 0, stored = 0;

                seen = calloc(MAX(x->n_chunks, 1u), 1);
                if (seen && profile_chunks(p, x->image_size, x->chunk_size, &chunks, &n) == 0)
                        for (uint64_t i = 0; i < n; i++) {
                                uint32_t k = x->map[chunks[i]];
                                if (k == BLKINDEX_ZERO || seen[k])
                                        continue;
                                seen[k] = 1;
                                data++;
                                stored += x->chunks[k].stored_len;
                        }
                if (j) {
                        json_add_u64(j, "prefetch_chunks", n);
                        json_add_u64(j, "prefetch_data_chunks", data);
                        json_add_u64(j, "prefetch_stored_bytes", stored);
                } else
                        printf("  prefetch     %llu chunks of %s, %llu holding data: %s to fetch\n",
                               (unsigned long long) n, format_size(x->chunk_size, a, sizeof a),
                               (unsigned long long) data, format_size(stored, b, sizeof b));
        }
}

/* The profile learned for img on this host, merged with the published one
 * (published first: at equal times its order wins), encoded in *ret_buf. */
static int learned_merged(struct blob_source *src, struct image *img, const char *ref, struct profile **ret,
                          void **ret_buf, size_t *ret_len) {
        struct chunkstore *cs = NULL;
        struct profile *learned = NULL, *published = NULL;
        _cleanup_free_ void *pbuf = NULL;
        _cleanup_free_ char *path = NULL;
        char why[512], ds[DIGEST_STRING_MAX];
        size_t plen;
        int r;

        r = cli_open_cache(0, &cs);
        if (r < 0)
                return r;
        path = chunkstore_learned_path(cs, &img->manifest_digest);
        r = chunkstore_learned_get(cs, &img->manifest_digest, &learned, why, sizeof why);
        if (r == -ENOENT) {
                log_error_errno(r, "No profile learned for %s (manifest %s) in %s: attach it with blockd on this "
                                "chunk store (--cache) and read it first",
                                ref, digest_to_string(&img->manifest_digest, ds), cli_cache_dir());
                goto out;
        }
        if (r < 0) {
                log_error_errno(r, "%s", why);
                goto out;
        }
        r = profile_artifact_find(src, &img->manifest_digest, img->manifest, &pbuf, &plen, NULL);
        if (r >= 0) {
                r = profile_decode(pbuf, plen, &published, why, sizeof why);
                if (r < 0) {
                        log_error_errno(r, "The published profile is malformed: %s", why);
                        goto out;
                }
                const struct profile *ps[2] = { published, learned };
                r = profile_merge(ps, 2, ret);
                if (r < 0) {
                        log_error_errno(r, "Cannot merge: %m");
                        goto out;
                }
                printf("Merged the profile learned here (%s, %u ranges) with the published one (%u ranges)\n",
                       path ? path : "", learned->count, published->count);
        } else if (r == -ENOENT) {
                printf("Nothing published for %s yet: publishing the profile learned here (%s, %u ranges)\n", ref,
                       path ? path : "", learned->count);
                *ret = learned;
                learned = NULL;
        } else {
                log_error_errno(r, "Cannot find the profile of %s: %s", ref, source_strerror(src, r, why, sizeof why));
                goto out;
        }
        r = profile_encode(*ret, ret_buf, ret_len);
        if (r < 0) {
                log_error_errno(r, "Cannot encode the profile: %m");
                profile_free(*ret);
                *ret = NULL;
        }
out:
        profile_free(learned);
        profile_free(published);
        chunkstore_free(cs);
        return r;
}

static int profile_push(int argc, char **argv, bool learned) {
        struct blob_source *src = NULL;
        struct image *img = NULL;
        struct profile *p = NULL;
        _cleanup_free_ void *buf = NULL;
        char ds[DIGEST_STRING_MAX], why[512];
        struct digest d;
        size_t len;
        int r;

        if (learned ? argc != 1 : argc != 2)
                return cli_usage_error("profile", learned ? "profile push --learned takes REF only"
                                                          : "profile push takes REF and FILE (or REF --learned)");
        if (!learned) {
                r = load_file(argv[1], &p);
                if (r < 0)
                        return r;
                char *raw = NULL;

                r = read_file_all(AT_FDCWD, argv[1], PROFILE_BLOB_MAX, &raw, &len);
                buf = raw;
                if (r < 0) {
                        log_error_errno(r, "Cannot read %s: %m", argv[1]);
                        goto out;
                }
        }
        r = cli_open_image(argv[0], &src, &img);
        if (r < 0)
                goto out;
        if (src->ref->transport == REF_DOCKER && !src->ref->tag && !src->ref->digest) {
                r = log_error_errno(EINVAL, "Name the image's tag or digest");
                goto out;
        }
        if (learned) {
                r = learned_merged(src, img, argv[0], &p, &buf, &len);
                if (r < 0)
                        goto out;
                if (len > PROFILE_BLOB_MAX) {
                        r = log_error_errno(EFBIG, "The merged profile (%zu bytes) is larger than a profile may be",
                                            len);
                        goto out;
                }
        }
        r = profile_artifact_push(src, &img->manifest_digest, img->manifest_size, buf, len, &d);
        if (r < 0) {
                log_error_errno(r, "Publishing the profile for %s failed: %s", argv[0], source_strerror(src, r, why, sizeof why));
                goto out;
        }
        printf("Published the boot profile of %s\n", argv[0]);
        printf("  artifact     %s\n", digest_to_string(&d, ds));
        printf("  subject      %s\n", digest_to_string(&img->manifest_digest, ds));
        describe(p, img, NULL);
out:
        profile_free(p);
        image_free(img);
        source_free(src);
        return r;
}

struct list_ctx {
        unsigned n;
        struct json_object *json;       /* an array to add to, or NULL: print */
};

static void list_one(const struct profile_found *f, void *u) {
        struct list_ctx *l = u;
        char ds[DIGEST_STRING_MAX], sz[32];

        if (l->json) {
                struct json_object *e = json_object_new_object();

                json_add_digest(e, "artifact_digest", &f->manifest);
                json_add_str(e, "created", f->created[0] ? f->created : NULL);
                json_add_u64(e, "size", f->size);
                json_add_bool(e, "used", l->n == 0);
                json_object_array_add(l->json, e);
                l->n++;
                return;
        }

        printf("  %s %s, created %s, %s%s\n", l->n == 0 ? "*" : " ", digest_to_string(&f->manifest, ds),
               f->created[0] ? f->created : "(unknown)", format_size(f->size, sz, sizeof sz),
               l->n == 0 ? " (used)" : "");
        l->n++;
}

static int profile_show(int argc, char **argv, bool all, bool json) {
        struct blob_source *src = NULL;
        struct image *img = NULL;
        struct profile *p = NULL;
        _cleanup_free_ void *buf = NULL;
        struct json_object *j = json ? json_object_new_object() : NULL;
        struct profile_found f;
        struct stat st;
        char ds[DIGEST_STRING_MAX], why[512];
        size_t len;
        int r;

        if (argc != 1) {
                r = cli_usage_error("profile", "profile show takes REF or FILE");
                goto out;
        }
        if (!strstr(argv[0], "oci:") && !strstr(argv[0], "docker://") && stat(argv[0], &st) < 0) {
                r = log_error_errno(errno, "Cannot read the profile '%s': %m (and it is no image reference)",
                                    argv[0]);
                goto out;
        }
        if (stat(argv[0], &st) == 0 && S_ISREG(st.st_mode)) {
                r = load_file(argv[0], &p);
                if (r < 0)
                        goto out;
                if (j)
                        json_add_str(j, "file", argv[0]);
                else
                        printf("Profile %s\n", argv[0]);
                describe(p, NULL, j);
                goto out;
        }
        r = cli_open_image(argv[0], &src, &img);
        if (r < 0)
                goto out;
        if (j)
                json_add_str(j, "reference", argv[0]);
        if (all) {
                struct list_ctx l = { .json = j ? json_object_new_array() : NULL };

                if (!j)
                        printf("Published profiles of %s (newest first)\n", argv[0]);
                r = profile_artifact_list(src, &img->manifest_digest, list_one, &l);
                if (r < 0)
                        log_warning_errno(r, "Cannot list the referrers: %m");
                if (j) {
                        json_object_object_add(j, "published", l.json);
                        json_add_str(j, "layer_digest", img->manifest->has_profile ?
                                     digest_to_string(&img->manifest->profile.digest, ds) : NULL);
                } else if (img->manifest->has_profile)
                        printf("  %s manifest layer %s%s\n", l.n ? " " : "*",
                               digest_to_string(&img->manifest->profile.digest, ds), l.n ? "" : " (used)");
                else if (!l.n)
                        printf("  (none)\n");
        }
        r = profile_artifact_find(src, &img->manifest_digest, img->manifest, &buf, &len, &f);
        if (r == -ENOENT) {
                if (j)
                        json_add_str(j, "origin", NULL);
                else if (!all)
                        printf("%s has no boot profile\n", argv[0]);
                r = 0;
                goto out;
        }
        if (r < 0) {
                log_error_errno(r, "Cannot find the profile of %s: %s", argv[0], source_strerror(src, r, why, sizeof why));
                goto out;
        }
        r = profile_decode(buf, len, &p, why, sizeof why);
        if (r < 0) {
                log_error_errno(r, "The published profile is malformed: %s", why);
                goto out;
        }
        if (j) {
                json_add_str(j, "origin", f.origin == PROFILE_ORIGIN_LAYER ? "layer" : "artifact");
                json_add_digest(j, "blob_digest", &f.blob);
                if (f.origin != PROFILE_ORIGIN_LAYER) {
                        json_add_digest(j, "artifact_digest", &f.manifest);
                        json_add_str(j, "created", f.created[0] ? f.created : NULL);
                        json_add_u64(j, "published_count", f.candidates);
                }
        } else {
                printf("Boot profile of %s\n", argv[0]);
                if (f.origin == PROFILE_ORIGIN_LAYER)
                        printf("  from         the manifest's profile layer %s\n", digest_to_string(&f.blob, ds));
                else
                        printf("  from         artifact %s%s%s (%u published)\n", digest_to_string(&f.manifest, ds),
                               f.created[0] ? ", created " : "", f.created, f.candidates);
        }
        describe(p, img, j);
out:
        if (j && r >= 0)
                cli_json_print(TAKE_PTR(j), false);
        json_object_put(j);
        profile_free(p);
        image_free(img);
        source_free(src);
        return r;
}

static int profile_get(int argc, char **argv, const char *out) {
        struct blob_source *src = NULL;
        struct image *img = NULL;
        _cleanup_free_ void *buf = NULL;
        struct profile *p = NULL;
        char why[512];
        size_t len;
        int r;

        if (argc != 1 || !out)
                return cli_usage_error("profile", "profile get takes REF and --out FILE");
        r = cli_open_image(argv[0], &src, &img);
        if (r < 0)
                return r;
        r = profile_artifact_find(src, &img->manifest_digest, img->manifest, &buf, &len, NULL);
        if (r == -ENOENT)
                log_error_errno(r, "%s has no boot profile", argv[0]);
        else if (r < 0)
                log_error_errno(r, "Cannot find the profile of %s: %s", argv[0], source_strerror(src, r, why, sizeof why));
        else if ((r = profile_decode(buf, len, &p, why, sizeof why)) < 0)
                log_error_errno(r, "The published profile is malformed: %s", why);
        else if ((r = write_file_atomic(AT_FDCWD, out, buf, len, 0644)) < 0)
                log_error_errno(r, "Cannot write %s: %m", out);
        else
                printf("Saved the boot profile of %s (%u ranges) to %s\n", argv[0], p->count, out);
        profile_free(p);
        image_free(img);
        source_free(src);
        return r;
}

static int profile_merge_cmd(int argc, char **argv, const char *out) {
        struct profile **ps;
        struct profile *m = NULL;
        int r = 0, n = 0;

        if (argc < 1 || !out)
                return cli_usage_error("profile", "profile merge takes profiles and --out FILE");
        ps = calloc((size_t) argc, sizeof *ps);
        if (!ps)
                return log_error_errno(ENOMEM, "Out of memory");
        for (; n < argc; n++) {
                r = load_file(argv[n], &ps[n]);
                if (r < 0)
                        goto out;
        }
        r = profile_merge((const struct profile *const *) ps, (size_t) n, &m);
        if (r < 0) {
                log_error_errno(r, "Cannot merge: %m");
                goto out;
        }
        r = save_profile(m, out);
        if (r >= 0)
                printf("Merged %d profiles (%u ranges) into %s\n", n, m->count, out);
out:
        profile_free(m);
        for (int i = 0; i < n; i++)
                profile_free(ps[i]);
        free(ps);
        return r;
}

int cmd_profile(int argc, char **argv) {
        static const struct option options[] = {
                { "out", required_argument, NULL, OPT_OUT },
                { "all", no_argument, NULL, OPT_ALL },
                { "json", no_argument, NULL, OPT_JSON },
                { "learned", no_argument, NULL, OPT_LEARNED },
                { NULL, 0, NULL, 0 },
        };
        const char *out = NULL, *sub;
        bool all = false, json = false, learned = false;
        int c, r;

        while ((c = cli_getopt(argc, argv, COMMON_SHORT_OPTIONS, cli_options(options))) >= 0) {
                switch (c) {
                case OPT_OUT:
                        out = optarg;
                        break;
                case OPT_ALL:
                        all = true;
                        break;
                case OPT_JSON:
                        json = true;
                        break;
                case OPT_LEARNED:
                        learned = true;
                        break;
                default:
                        r = cli_other_option("profile", c, optarg, help);
                        if (r <= 0)
                                return r;
                }
        }
        if (optind >= argc)
                return cli_usage_error("profile", "profile needs a command (push, show, get, merge)");
        sub = argv[optind];
        argc -= optind + 1;
        argv += optind + 1;
        if (!strcmp(sub, "push"))
                return profile_push(argc, argv, learned);
        if (!strcmp(sub, "show"))
                return profile_show(argc, argv, all, json);
        if (!strcmp(sub, "get"))
                return profile_get(argc, argv, out);
        if (!strcmp(sub, "merge"))
                return profile_merge_cmd(argc, argv, out);
        return cli_usage_error("profile", "unknown profile command '%s' (push, show, get, merge)", sub);
}
