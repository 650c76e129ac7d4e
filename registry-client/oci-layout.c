/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The OCI image-layout backend (oci:DIR[:TAG]): blobs under
 * DIR/blobs/sha256/<hex>, tags as "org.opencontainers.image.ref.name"
 * annotations in DIR/index.json. Blobs are written to a temp name and
 * verified, then renamed: a blob is never visible half-written or with
 * bytes that do not match its name. Durability comes from one syncfs()
 * before index.json names a new manifest. index.json is replaced atomically
 * under an flock on the layout directory, so concurrent pushes to one
 * layout do not lose each other's tags.
 */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "manifest.h"
#include "source.h"

#define INDEX_JSON_MAX (64u << 20)
#define REF_NAME_ANNOTATION "org.opencontainers.image.ref.name"
#define FD_CACHE 16

struct oci_layout {
        const char *dir;        /* DIR, the reference's (errors name it) */
        int dirfd;              /* DIR */
        int blobfd;             /* DIR/blobs/sha256, or -1 before first write */
        pthread_mutex_t lock;   /* fd cache */
        struct {
                struct digest d;
                int fd;
        } fds[FD_CACHE];
        unsigned next_fd;
        /* The last failure of manifest_get in a sentence (describe_error),
         * and its error; under lock. */
        char why[768];
        int why_r;
};

/* Remember why manifest_get or a write fails with r (a sentence naming
 * the file; "%m" says r); returns r. */
static int __attribute__((format(printf, 3, 4))) layout_fail(struct oci_layout *l, int r, const char *fmt, ...) {
        va_list ap;

        pthread_mutex_lock(&l->lock);
        va_start(ap, fmt);
        (void) err_setv(l->why, sizeof l->why, r, fmt, ap);
        va_end(ap);
        l->why_r = r;
        pthread_mutex_unlock(&l->lock);
        return r;
}

static const char *oci_describe_error(struct blob_source *s, int r, char *buf, size_t len) {
        struct oci_layout *l = s->priv;
        const char *ret = NULL;

        pthread_mutex_lock(&l->lock);
        if (l->why_r == r && l->why[0]) {
                snprintf(buf, len, "%s", l->why);
                ret = buf;
        }
        pthread_mutex_unlock(&l->lock);
        return ret;
}

static int ensure_layout(struct oci_layout *l) {
        static const char layout_text[] = "{\"imageLayoutVersion\":\"1.0.0\"}\n";
        static const char index_text[] =
                "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"manifests\":[]}\n";
        int r;

        if (faccessat(l->dirfd, "oci-layout", F_OK, 0) < 0) {
                r = write_file_atomic(l->dirfd, "oci-layout", layout_text, strlen(layout_text), 0644);
                if (r < 0)
                        return layout_fail(l, r, "cannot write '%s/oci-layout': %m", l->dir);
        }
        if (faccessat(l->dirfd, "index.json", F_OK, 0) < 0) {
                r = write_file_atomic(l->dirfd, "index.json", index_text, strlen(index_text), 0644);
                if (r < 0)
                        return layout_fail(l, r, "cannot write '%s/index.json': %m", l->dir);
        }
        if ((mkdirat(l->dirfd, "blobs", 0755) < 0 && errno != EEXIST) ||
            (mkdirat(l->dirfd, "blobs/sha256", 0755) < 0 && errno != EEXIST))
                return layout_fail(l, -errno, "cannot create '%s/blobs/sha256': %m", l->dir);
        return 0;
}

static int blobfd_get(struct oci_layout *l) {
        if (l->blobfd >= 0)
                return l->blobfd;
        l->blobfd = openat(l->dirfd, "blobs/sha256", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        return l->blobfd >= 0 ? l->blobfd : -errno;
}

/* Open a blob for reading, through a small cache of open fds (blockd reads
 * the same packs over and over). Returns a dup'd fd the caller closes. */
static int blob_open(struct oci_layout *l, const struct digest *d) {
        char hex[DIGEST_HEX_LEN + 1];
        int bfd, fd;

        pthread_mutex_lock(&l->lock);
        for (unsigned i = 0; i < FD_CACHE; i++)
                if (l->fds[i].fd >= 0 && digest_equal(&l->fds[i].d, d)) {
                        fd = fcntl(l->fds[i].fd, F_DUPFD_CLOEXEC, 3);
                        pthread_mutex_unlock(&l->lock);
                        return fd >= 0 ? fd : -errno;
                }
        bfd = blobfd_get(l);
        if (bfd < 0) {
                pthread_mutex_unlock(&l->lock);
                return bfd == -ENOENT ? -ENOENT : bfd;
        }
        fd = openat(bfd, digest_to_hex(d, hex), O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
                fd = -errno;
                pthread_mutex_unlock(&l->lock);
                return fd;
        }
        {
                unsigned slot = l->next_fd++ % FD_CACHE;

                if (l->fds[slot].fd >= 0)
                        close(l->fds[slot].fd);
                l->fds[slot].d = *d;
                l->fds[slot].fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        }
        pthread_mutex_unlock(&l->lock);
        return fd;
}

static int oci_blob_stat(struct blob_source *s, const struct digest *d, uint64_t *ret_size) {
        struct oci_layout *l = s->priv;
        _cleanup_close_ int fd = -EBADF;
        struct stat st;

        fd = blob_open(l, d);
        if (fd < 0)
                return fd;
        if (fstat(fd, &st) < 0)
                return -errno;
        *ret_size = (uint64_t) st.st_size;
        return 0;
}

static int oci_blob_read(struct blob_source *s, const struct digest *d, uint64_t off, void *buf, size_t len) {
        struct oci_layout *l = s->priv;
        _cleanup_close_ int fd = -EBADF;
        ssize_t n;

        fd = blob_open(l, d);
        if (fd < 0)
                return fd;
        n = pread_full(fd, buf, len, off);
        if (n < 0)
                return (int) n;
        return (size_t) n == len ? 0 : -ERANGE; /* the blob is shorter than the range */
}

/*
 * Copy size bytes of fd into the layout, hashing them on the way: to a temp
 * name first, renamed to the digest when complete. With want set the bytes
 * must hash to it (-EBADMSG otherwise). Returns 1 if the blob was stored,
 * 0 if the layout already had it; *ret_digest gets the digest.
 */
static int copy_in(struct oci_layout *l, int fd, uint64_t size, const struct digest *want,
                   struct digest *ret_digest) {
        char hex[DIGEST_HEX_LEN + 1], tmp[128], sfx[48];
        _cleanup_close_ int out = -EBADF;
        _cleanup_free_ char *buf = NULL;
        struct digest_ctx *ctx = NULL;
        struct digest got;
        struct stat st;
        uint64_t off = 0;
        int bfd, r;

        r = ensure_layout(l);
        if (r < 0)
                return r;
        bfd = blobfd_get(l);
        if (bfd < 0)
                return layout_fail(l, bfd, "cannot open '%s/blobs/sha256': %m", l->dir);
        if (want && fstatat(bfd, digest_to_hex(want, hex), &st, 0) == 0 && (uint64_t) st.st_size == size) {
                *ret_digest = *want;
                return 0; /* already there (verified when it was written) */
        }

        tmp_suffix(sfx, sizeof sfx);
        snprintf(tmp, sizeof tmp, ".blob%s", sfx);
        out = openat(bfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (out < 0)
                return layout_fail(l, -errno, "cannot write a blob into '%s/blobs/sha256': %m", l->dir);
        buf = malloc(1 << 20);
        r = buf ? digest_ctx_new(&ctx) : -ENOMEM;
        if (r < 0)
                goto out_unlink;
        while (off < size) {
                ssize_t n = pread_full(fd, buf, MIN((uint64_t) (1 << 20), size - off), off);
                if (n <= 0) {
                        r = n < 0 ? (int) n : -EIO;
                        goto out_unlink;
                }
                r = digest_ctx_update(ctx, buf, (size_t) n);
                if (r >= 0) {
                        r = write_all(out, buf, (size_t) n);
                        if (r < 0)
                                (void) layout_fail(l, r, "cannot write a blob into '%s/blobs/sha256': %m", l->dir);
                }
                if (r < 0)
                        goto out_unlink;
                off += (uint64_t) n;
        }
        r = digest_ctx_final(ctx, &got);
        if (r < 0)
                goto out_unlink;
        if (want && !digest_equal(&got, want)) {
                r = -EBADMSG;
                goto out_unlink;
        }
        digest_to_hex(&got, hex);
        if (!want && fstatat(bfd, hex, &st, 0) == 0 && (uint64_t) st.st_size == size) {
                r = 0; /* identical blob already present */
                goto out_unlink;
        }
        /* No fsync per blob: blobs are made durable together, by one
         * syncfs() before a manifest that names them is published
         * (oci_manifest_put). Readers verify digests regardless. */
        if (renameat(bfd, tmp, bfd, hex) < 0) {
                r = layout_fail(l, -errno, "cannot write '%s/blobs/sha256/%s': %m", l->dir, hex);
                goto out_unlink;
        }
        digest_ctx_free(ctx);
        *ret_digest = got;
        return 1;
out_unlink:
        digest_ctx_free(ctx);
        (void) unlinkat(bfd, tmp, 0);
        if (r == 0)
                *ret_digest = got;
        return r;
}

static int oci_blob_put_fd(struct blob_source *s, const struct digest *d, int fd, uint64_t size) {
        struct digest got;
        int r = copy_in(s->priv, fd, size, d, &got);

        return r < 0 ? r : 0;
}

static int oci_blob_put_fd_unnamed(struct blob_source *s, int fd, uint64_t size, struct digest *ret_digest) {
        return copy_in(s->priv, fd, size, NULL, ret_digest);
}

/* DIR/index.json, parsed; a failure is described (layout_fail). */
static int read_index(struct oci_layout *l, const char *dir, struct json_object **ret) {
        _cleanup_free_ char *text = NULL;
        struct json_object *root, *manifests;
        enum json_tokener_error jerr;
        int r;

        r = read_file_all(l->dirfd, "index.json", INDEX_JSON_MAX, &text, NULL);
        if (r == -ENOENT)
                return layout_fail(l, r, "not an OCI layout: %s/index.json missing", dir);
        if (r < 0)
                return layout_fail(l, r, "cannot read %s/index.json: %s", dir, strerror(-r));
        root = json_tokener_parse_verbose(text, &jerr);
        if (!root)
                return layout_fail(l, -EBADMSG, "%s/index.json is %s (%s)", dir,
                                   jerr == json_tokener_error_parse_eof || jerr == json_tokener_continue
                                           ? "truncated: not valid JSON" : "not valid JSON",
                                   json_tokener_error_desc(jerr));
        if (!json_object_is_type(root, json_type_object) ||
            !json_object_object_get_ex(root, "manifests", &manifests) ||
            !json_object_is_type(manifests, json_type_array)) {
                json_object_put(root);
                return layout_fail(l, -EBADMSG, "%s/index.json is not an OCI image index (no \"manifests\" array)",
                                   dir);
        }
        *ret = root;
        return 0;
}

static const char *entry_tag(struct json_object *m) {
        struct json_object *ann, *name;

        if (!json_object_object_get_ex(m, "annotations", &ann) ||
            !json_object_object_get_ex(ann, REF_NAME_ANNOTATION, &name))
                return NULL;
        return json_object_get_string(name);
}

/* An untagged entry whose artifactType is not a hocus-blk image: an
 * artifact listed for the referrers of another manifest. */
static bool is_referrer_entry(struct json_object *m) {
        struct json_object *at;

        if (entry_tag(m) || !json_object_object_get_ex(m, "artifactType", &at))
                return false;
        return strcmp(json_object_get_string(at), MT_IMAGE) != 0;
}

static int oci_manifest_get(struct blob_source *s, const char *reference, char **ret_media_type,
                            char **ret_body, size_t *ret_len) {
        struct oci_layout *l = s->priv;
        struct json_object *root = NULL, *manifests, *found = NULL, *o;
        _cleanup_free_ void *body = NULL;
        struct digest d;
        uint64_t size;
        const char *mt = MT_OCI_MANIFEST;
        uint64_t have;
        int r;

        (void) layout_fail(l, 0, "%s", "");
        if (reference && digest_parse(reference, &d) == 0) {
                r = oci_blob_stat(s, &d, &size);
                if (r < 0)
                        return r;
        } else {
                size_t n, images;

                r = read_index(l, s->ref->layout_dir, &root);
                if (r < 0)
                        return r;
                json_object_object_get_ex(root, "manifests", &manifests);
                n = json_object_array_length(manifests);
                /* Untagged: the only image. Artifacts that refer to one
                 * (boot profiles: untagged entries with another
                 * artifactType) do not count. */
                images = 0;
                for (size_t i = 0; i < n; i++)
                        images += !is_referrer_entry(json_object_array_get_idx(manifests, i));
                for (size_t i = 0; i < n; i++) {
                        struct json_object *m = json_object_array_get_idx(manifests, i);
                        const char *tag = entry_tag(m);

                        if (reference ? (tag && !strcmp(tag, reference)) : (images == 1 && !is_referrer_entry(m)))
                                found = m;
                }
                n = images;
                if (!found && reference) {
                        char tags[256] = "";
                        size_t at = 0;

                        for (size_t i = 0; i < json_object_array_length(manifests) && at < sizeof tags; i++) {
                                const char *tag = entry_tag(json_object_array_get_idx(manifests, i));
                                if (tag)
                                        at += (size_t) snprintf(tags + at, sizeof tags - at, "%s%s", at ? ", " : "", tag);
                        }
                        json_object_put(root);
                        return layout_fail(l, -ENOENT, "no such image: nothing is tagged '%s' in %s (%s%s)", reference,
                                           s->ref->layout_dir, tags[0] ? "its tags: " : "it has no tags", tags);
                }
                if (!found) {
                        json_object_put(root);
                        if (n == 0)
                                return layout_fail(l, -ENOENT, "no such image: %s holds none", s->ref->layout_dir);
                        return -ENOTUNIQ;
                }
                if (!json_object_object_get_ex(found, "digest", &o) ||
                    digest_parse(json_object_get_string(o), &d) < 0 ||
                    !json_object_object_get_ex(found, "size", &o) || json_object_get_int64(o) < 0) {
                        json_object_put(root);
                        return layout_fail(l, -EBADMSG, "%s/index.json: the entry of %s has no valid digest and size",
                                           s->ref->layout_dir, reference ? reference : "the image");
                }
                size = (uint64_t) json_object_get_int64(o);
                if (json_object_object_get_ex(found, "mediaType", &o))
                        mt = json_object_get_string(o);
                r = oci_blob_stat(s, &d, &have);
                if (r == -ENOENT) {
                        char ds[DIGEST_STRING_MAX];
                        json_object_put(root);
                        digest_to_string(&d, ds);
                        return layout_fail(l, -EIO, "%s/index.json names manifest %s, but %s/blobs/sha256/%s is missing",
                                           s->ref->layout_dir, ds, s->ref->layout_dir, ds + strlen("sha256:"));
                }
                if (r < 0) {
                        json_object_put(root);
                        return r;
                }
        }
        if (size > MANIFEST_MAX) {
                json_object_put(root);
                return -EFBIG;
        }
        *ret_media_type = strdup(mt);
        json_object_put(root);
        if (!*ret_media_type)
                return -ENOMEM;
        /* Whole-blob read, verified by digest. */
        r = source_blob_get(s, &d, size, MANIFEST_MAX, &body);
        if (r < 0) {
                free(*ret_media_type);
                *ret_media_type = NULL;
                return r;
        }
        /* NUL-terminate for JSON parsers. */
        {
                char *b = realloc(body, size + 1);
                if (!b) {
                        free(*ret_media_type);
                        *ret_media_type = NULL;
                        return -ENOMEM;
                }
                b[size] = 0;
                body = NULL;
                *ret_body = b;
        }
        *ret_len = size;
        return 0;
}

static int oci_manifest_put(struct blob_source *s, const char *tag, const char *media_type,
                            const char *artifact_type, const void *body, size_t len) {
        struct oci_layout *l = s->priv;
        struct json_object *root = NULL, *manifests, *keep, *desc;
        char ds[DIGEST_STRING_MAX];
        struct digest d;
        const char *text;
        int r;

        digest_compute(body, len, &d);
        r = source_blob_put_buf(s, &d, body, len);
        if (r < 0)
                return r;
        /* Every blob this manifest names must be on disk before the tag
         * that makes it reachable. */
        if (syncfs(l->dirfd) < 0)
                return layout_fail(l, -errno, "cannot sync the blobs of '%s' to disk: %m", l->dir);
        if (flock(l->dirfd, LOCK_EX) < 0)
                return layout_fail(l, -errno, "cannot lock '%s': %m", l->dir);
        r = read_index(l, s->ref->layout_dir, &root);
        if (r < 0)
                goto out;
        json_object_object_get_ex(root, "manifests", &manifests);

        /* Drop entries that carry this tag, or that are this very
         * manifest untagged; then append the new descriptor. */
        keep = json_object_new_array();
        for (size_t i = 0; i < json_object_array_length(manifests); i++) {
                struct json_object *m = json_object_array_get_idx(manifests, i), *o;
                const char *t = entry_tag(m);

                if (t && tag && !strcmp(t, tag))
                        continue;
                if (!t && !tag && json_object_object_get_ex(m, "digest", &o) &&
                    !strcmp(json_object_get_string(o), digest_to_string(&d, ds)))
                        continue;
                json_object_array_add(keep, json_object_get(m));
        }
        desc = json_object_new_object();
        json_object_object_add(desc, "mediaType", json_object_new_string(media_type));
        json_object_object_add(desc, "digest", json_object_new_string(digest_to_string(&d, ds)));
        json_object_object_add(desc, "size", json_object_new_int64((int64_t) len));
        if (artifact_type)
                json_object_object_add(desc, "artifactType", json_object_new_string(artifact_type));
        if (tag) {
                struct json_object *ann = json_object_new_object();
                json_object_object_add(ann, REF_NAME_ANNOTATION, json_object_new_string(tag));
                json_object_object_add(desc, "annotations", ann);
        }
        json_object_array_add(keep, desc);
        json_object_object_add(root, "manifests", keep);
        text = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        r = write_file_atomic(l->dirfd, "index.json", text, strlen(text), 0644);
        if (r < 0)
                (void) layout_fail(l, r, "cannot write '%s/index.json': %m", l->dir);
out:
        json_object_put(root);
        (void) flock(l->dirfd, LOCK_UN);
        return r;
}

/* Referrers of a digest in a layout: manifests in index.json are not
 * enough (untagged artifacts are listed there too), so scan them. */
static int oci_referrers_get(struct blob_source *s, const struct digest *d, char **ret_body, size_t *ret_len) {
        struct oci_layout *l = s->priv;
        struct json_object *root = NULL, *manifests, *out, *list;
        char want[DIGEST_STRING_MAX];
        const char *text;
        int r;

        r = read_index(l, s->ref->layout_dir, &root);
        if (r < 0)
                return r;
        digest_to_string(d, want);
        json_object_object_get_ex(root, "manifests", &manifests);
        out = json_object_new_object();
        list = json_object_new_array();
        json_object_object_add(out, "schemaVersion", json_object_new_int(2));
        json_object_object_add(out, "mediaType", json_object_new_string(MT_OCI_INDEX));
        json_object_object_add(out, "manifests", list);
        for (size_t i = 0; i < json_object_array_length(manifests); i++) {
                struct json_object *m = json_object_array_get_idx(manifests, i), *o, *subj, *sd;
                _cleanup_free_ char *mt = NULL, *body = NULL;
                struct json_object *mj;
                size_t len;

                if (!json_object_object_get_ex(m, "digest", &o))
                        continue;
                if (oci_manifest_get(s, json_object_get_string(o), &mt, &body, &len) < 0)
                        continue;
                mj = json_tokener_parse(body);
                if (mj && json_object_object_get_ex(mj, "subject", &subj) &&
                    json_object_object_get_ex(subj, "digest", &sd) && !strcmp(json_object_get_string(sd), want)) {
                        struct json_object *desc = json_object_new_object(), *at;

                        json_object_object_add(desc, "mediaType", json_object_new_string(mt));
                        json_object_object_add(desc, "digest", json_object_get(o));
                        json_object_object_add(desc, "size", json_object_new_int64((int64_t) len));
                        if (json_object_object_get_ex(mj, "artifactType", &at))
                                json_object_object_add(desc, "artifactType", json_object_get(at));
                        if (json_object_object_get_ex(mj, "annotations", &at))
                                json_object_object_add(desc, "annotations", json_object_get(at));
                        json_object_array_add(list, desc);
                }
                json_object_put(mj);
        }
        text = json_object_to_json_string_ext(out, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        *ret_body = strdup(text);
        *ret_len = strlen(text);
        json_object_put(out);
        json_object_put(root);
        return *ret_body ? 0 : -ENOMEM;
}

static void oci_free(struct blob_source *s) {
        struct oci_layout *l = s->priv;

        if (!l)
                return;
        for (unsigned i = 0; i < FD_CACHE; i++)
                if (l->fds[i].fd >= 0)
                        close(l->fds[i].fd);
        if (l->blobfd >= 0)
                close(l->blobfd);
        if (l->dirfd >= 0)
                close(l->dirfd);
        pthread_mutex_destroy(&l->lock);
        free(l);
}

static const struct blob_source_ops oci_layout_ops = {
        .name = "oci",
        .manifest_get = oci_manifest_get,
        .manifest_put = oci_manifest_put,
        .blob_stat = oci_blob_stat,
        .blob_read = oci_blob_read,
        .blob_put_fd = oci_blob_put_fd,
        .blob_put_fd_unnamed = oci_blob_put_fd_unnamed,
        .referrers_get = oci_referrers_get,
        .describe_error = oci_describe_error,
        .free = oci_free,
};

int oci_layout_open(struct image_ref *ref, const struct source_options *o, struct blob_source **ret) {
        struct blob_source *s;
        struct oci_layout *l;
        int r;

        s = calloc(1, sizeof *s);
        l = calloc(1, sizeof *l);
        if (!s || !l) {
                free(s);
                free(l);
                return -ENOMEM;
        }
        s->ops = &oci_layout_ops;
        s->priv = l;
        l->blobfd = -EBADF;
        for (unsigned i = 0; i < FD_CACHE; i++)
                l->fds[i].fd = -EBADF;
        pthread_mutex_init(&l->lock, NULL);
        l->dir = ref->layout_dir;

        if (o->create) {
                r = mkdir_p(ref->layout_dir, 0755);
                if (r < 0)
                        goto fail;
        }
        l->dirfd = open(ref->layout_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (l->dirfd < 0) {
                r = -errno;
                goto fail;
        }
        if (o->create) {
                r = ensure_layout(l);
                if (r < 0)
                        goto fail;
        } else if (faccessat(l->dirfd, "oci-layout", F_OK, 0) < 0) {
                r = errno == ENOENT ? -ENOMEDIUM : -errno; /* not a layout */
                goto fail;
        }
        s->ref = ref;
        *ret = s;
        return 0;
fail:
        oci_free(s);
        free(s);
        return r;
}
