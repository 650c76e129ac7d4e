/* SPDX-License-Identifier: Apache-2.0 */
#include "source.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/debug-flags.h"
#include "common/log.h"
#include "common/util.h"

/* Reads of one whole object whose bytes did not verify, from as many
 * places (mirrors, then the origin). */
#define VERIFY_TRIES 8

static int open_ref(struct image_ref *ref, const struct source_options *o, struct blob_source **ret, char *err,
                    size_t errlen) {
        static const struct source_options defaults = { 0 };
        int r;

        if (!o)
                o = &defaults;
        switch (ref->transport) {
        case REF_OCI_LAYOUT:
                r = oci_layout_open(ref, o, ret);
                break;
        case REF_DOCKER:
                r = registry_open(ref, o, ret, err, errlen);
                break;
        default:
                r = -EINVAL;
        }
        if (r < 0)
                image_ref_free(ref);
        return r;
}

int source_open_ref(struct image_ref *ref, const struct source_options *o, struct blob_source **ret) {
        return open_ref(ref, o, ret, NULL, 0);
}

int source_open(const char *text, const struct source_options *o, struct blob_source **ret, char *err,
                size_t errlen) {
        struct image_ref *ref;
        int r;

        r = image_ref_parse(text, &ref, err, errlen);
        if (r < 0)
                return r;
        return open_ref(ref, o, ret, err, errlen);
}

void source_free(struct blob_source *s) {
        if (!s)
                return;
        if (s->ops && s->ops->free)
                s->ops->free(s);
        image_ref_free(s->ref);
        free(s);
}

int source_manifest_get(struct blob_source *s, const char *reference, char **ret_media_type, char **ret_body,
                        size_t *ret_len, struct digest *ret_digest) {
        _cleanup_free_ char *mt = NULL, *body = NULL;
        struct digest d, want;
        char ds[DIGEST_STRING_MAX];
        size_t len;
        int r;

        for (unsigned tries = 0;; tries++) {
                r = s->ops->manifest_get(s, reference, &mt, &body, &len);
                log_debug("%s: manifest %s: %d", s->ops->name, reference ? reference : "(default)", r);
                if (r < 0)
                        return r;
                digest_compute(body, len, &d);
                /* A manifest fetched by digest must be that digest. */
                if (!reference || digest_parse(reference, &want) < 0 || digest_equal(&d, &want))
                        break;
                log_debug("%s: manifest body hashes to %s, not %s", s->ops->name, digest_to_string(&d, ds),
                          reference);
                /* From a mirror: it is put aside, and the next source answers. */
                if (tries >= VERIFY_TRIES || source_blob_bad(s, &want) <= 0)
                        return -EBADMSG;
                free(TAKE_PTR(mt));
                free(TAKE_PTR(body));
        }
        if (ret_media_type)
                *ret_media_type = TAKE_PTR(mt);
        *ret_body = TAKE_PTR(body);
        *ret_len = len;
        if (ret_digest)
                *ret_digest = d;
        return 0;
}

int source_manifest_put(struct blob_source *s, const char *tag, const char *media_type,
                        const char *artifact_type, const void *body, size_t len, struct digest *ret_digest) {
        int r;

        r = s->ops->manifest_put(s, tag, media_type, artifact_type, body, len);
        log_debug("%s: put manifest (%zu bytes) tag %s: %d", s->ops->name, len, tag ? tag : "-", r);
        if (r >= 0 && ret_digest)
                digest_compute(body, len, ret_digest);
        return r;
}

int source_blob_stat(struct blob_source *s, const struct digest *d, uint64_t *ret_size) {
        char ds[DIGEST_STRING_MAX];
        int r;

        r = s->ops->blob_stat(s, d, ret_size);
        if (debug_registry_blob)
                log_debug("%s: stat %s: %d", s->ops->name, digest_to_string(d, ds), r);
        return r;
}

int source_blob_read(struct blob_source *s, const struct digest *d, uint64_t off, void *buf, size_t len) {
        char ds[DIGEST_STRING_MAX];
        int r;

        r = s->ops->blob_read(s, d, off, buf, len);
        if (debug_registry_blob)
                log_debug("%s: read %s [%llu, +%zu): %d", s->ops->name, digest_to_string(d, ds),
                          (unsigned long long) off, len, r);
        /* A range past the blob's end means the blob is not what its
         * descriptor or the index says it is. */
        return r == -ERANGE ? -EBADMSG : r;
}

int source_blob_get(struct blob_source *s, const struct digest *d, uint64_t size, uint64_t max, void **ret_buf) {
        _cleanup_free_ void *buf = NULL;
        struct digest got;
        int r;

        if (size > max || size > SIZE_MAX - 1)
                return -EFBIG;
        buf = malloc(size ? size : 1);
        if (!buf)
                return -ENOMEM;
        for (unsigned tries = 0;; tries++) {
                if (size) {
                        r = source_blob_read(s, d, 0, buf, size);
                        if (r < 0)
                                return r;
                }
                digest_compute(buf, size, &got);
                if (digest_equal(&got, d))
                        break;
                /* From a mirror: it is put aside, and the next source answers. */
                if (tries >= VERIFY_TRIES || source_blob_bad(s, d) <= 0)
                        return -EBADMSG;
        }
        *ret_buf = TAKE_PTR(buf);
        return 0;
}

int source_blob_put_fd(struct blob_source *s, const struct digest *d, int fd, uint64_t size) {
        char ds[DIGEST_STRING_MAX];
        int r;

        r = s->ops->blob_put_fd(s, d, fd, size);
        log_debug("%s: put blob %s (%llu bytes): %d", s->ops->name, digest_to_string(d, ds),
                  (unsigned long long) size, r);
        return r;
}

int source_blob_put_buf(struct blob_source *s, const struct digest *d, const void *buf, size_t len) {
        _cleanup_close_ int fd = -EBADF;
        int r;

        /* One upload path: stage small blobs in a memfd. */
        fd = memfd_create("hocus-blob", MFD_CLOEXEC);
        if (fd < 0)
                return -errno;
        r = write_all(fd, buf, len);
        if (r < 0)
                return r;
        return source_blob_put_fd(s, d, fd, len);
}

int source_blob_put_fd_unnamed(struct blob_source *s, int fd, uint64_t size, struct digest *ret_digest) {
        char ds[DIGEST_STRING_MAX];
        struct digest d;
        uint64_t have, n;
        int r;

        if (s->ops->blob_put_fd_unnamed) {
                r = s->ops->blob_put_fd_unnamed(s, fd, size, ret_digest);
                log_debug("%s: put blob (%llu bytes): %d %s", s->ops->name, (unsigned long long) size, r,
                          r >= 0 ? digest_to_string(ret_digest, ds) : "");
                return r;
        }
        r = digest_fd(fd, &d, &n);
        if (r < 0)
                return r;
        if (n != size)
                return -EIO;
        *ret_digest = d;
        if (source_blob_stat(s, &d, &have) == 0 && have == size)
                return 0;
        r = source_blob_put_fd(s, &d, fd, size);
        return r < 0 ? r : 1;
}

int source_blob_mount(struct blob_source *s, const struct digest *d, const struct image_ref *from) {
        if (!s->ops->blob_mount)
                return -EOPNOTSUPP;
        return s->ops->blob_mount(s, d, from);
}

int source_referrers_get(struct blob_source *s, const struct digest *d, char **ret_body, size_t *ret_len) {
        if (!s->ops->referrers_get)
                return -EOPNOTSUPP;
        return s->ops->referrers_get(s, d, ret_body, ret_len);
}

int source_blob_read_async(struct blob_source *s, struct source_aio *a) {
        if (!s->ops->blob_read_async)
                return -EOPNOTSUPP;
        return s->ops->blob_read_async(s, a);
}

void source_blob_read_cancel(struct blob_source *s, struct source_aio *a) {
        if (s->ops->blob_read_cancel)
                s->ops->blob_read_cancel(s, a);
}

void source_get_stats(struct blob_source *s, struct source_stats *ret) {
        memset(ret, 0, sizeof *ret);
        if (s->ops->stats)
                s->ops->stats(s, ret);
}

int source_probe(struct blob_source *s, char *err, size_t errlen) {
        return s && s->ops->probe ? s->ops->probe(s, err, errlen) : 0;
}

const char *source_describe_error(struct blob_source *s, int r, char *buf, size_t len) {
        return s && s->ops->describe_error ? s->ops->describe_error(s, r, buf, len) : NULL;
}

int source_blob_bad(struct blob_source *s, const struct digest *d) {
        return s && s->ops->blob_bad ? s->ops->blob_bad(s, d) : 0;
}

const char *source_served_by(struct blob_source *s, const struct digest *d, char *buf, size_t len) {
        return s && s->ops->served_by ? s->ops->served_by(s, d, buf, len) : NULL;
}

const char *source_strerror(struct blob_source *s, int r, char *buf, size_t len) {
        if (s && s->ops->describe_error && s->ops->describe_error(s, r, buf, len))
                return buf;
        snprintf(buf, len, "%s", strerror(r < 0 ? -r : r));
        return buf;
}
