/* SPDX-License-Identifier: Apache-2.0 */
#include "profile-artifact.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"

#define PUSH_CHECKS 3

void profile_artifact_now(char *buf, size_t len) {
        struct timespec ts;
        struct tm tm;

        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                 tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec);
}

/* Is the artifact manifest d listed among subject's referrers? */
static int listed(struct blob_source *s, const struct digest *subject, const struct digest *d) {
        _cleanup_free_ char *body = NULL;
        struct json_object *root, *list, *o;
        char want[DIGEST_STRING_MAX];
        size_t len;
        int r, found = 0;

        r = source_referrers_get(s, subject, &body, &len);
        if (r < 0)
                return r;
        digest_to_string(d, want);
        root = json_tokener_parse(body);
        if (root && json_object_object_get_ex(root, "manifests", &list) && json_object_is_type(list, json_type_array))
                for (size_t i = 0; i < json_object_array_length(list); i++)
                        if (json_object_object_get_ex(json_object_array_get_idx(list, i), "digest", &o) &&
                            !strcmp(json_object_get_string(o), want))
                                found = 1;
        json_object_put(root);
        return found;
}

int profile_artifact_push(struct blob_source *s, const struct digest *subject, uint64_t subject_size,
                          const void *profile, size_t len, struct digest *ret_manifest) {
        struct image_manifest m = { .has_subject = true, .has_profile = true };
        _cleanup_free_ char *json = NULL;
        struct digest empty, d;
        size_t jlen;
        int r;

        empty_config_digest(&empty);
        r = source_blob_put_buf(s, &empty, EMPTY_JSON, strlen(EMPTY_JSON));
        if (r < 0)
                return r;
        digest_compute(profile, len, &m.profile.digest);
        m.profile.size = len;
        snprintf(m.profile.media_type, sizeof m.profile.media_type, "%s", MT_PROFILE);
        r = source_blob_put_buf(s, &m.profile.digest, profile, len);
        if (r < 0)
                return r;
        m.subject.digest = *subject;
        m.subject.size = subject_size;
        snprintf(m.subject.media_type, sizeof m.subject.media_type, "%s", MT_OCI_MANIFEST);
        profile_artifact_now(m.created, sizeof m.created);
        r = image_manifest_encode(&m, &json, &jlen);
        if (r < 0)
                return r;
        /* The referrers tag index has no conditional update: a concurrent
         * publisher can drop our entry. Look, and put again if so. */
        for (int attempt = 0;; attempt++) {
                r = source_manifest_put(s, NULL, MT_OCI_MANIFEST, MT_PROFILE, json, jlen, &d);
                if (r < 0)
                        return r;
                r = listed(s, subject, &d);
                if (r == -EOPNOTSUPP || r > 0)
                        break;
                if (r < 0)
                        return r;
                if (attempt + 1 == PUSH_CHECKS)
                        return -EAGAIN;
                log_debug("profile: artifact not listed among the referrers yet; putting it again");
        }
        if (ret_manifest)
                *ret_manifest = d;
        return 0;
}

struct candidate {
        struct digest manifest;
        char created[48];
        size_t pos;                     /* in the listing: later is newer on ties */
        bool checked;                   /* manifest fetched and valid */
        bool bad;                       /* not a profile of this subject */
        struct digest blob;
        uint64_t size;
};

/* Fetch and check one candidate's manifest. */
static void check_candidate(struct blob_source *s, const struct digest *subject, struct candidate *c) {
        _cleanup_free_ char *mt = NULL, *body = NULL;
        struct image_manifest *m = NULL;
        char ds[DIGEST_STRING_MAX], why[256];
        size_t len;
        int r;

        digest_to_string(&c->manifest, ds);
        r = source_manifest_get(s, ds, &mt, &body, &len, NULL);
        if (r >= 0)
                r = image_manifest_parse(mt, body, len, &m, why, sizeof why);
        if (r < 0 || !m->has_subject || !m->has_profile || !digest_equal(&m->subject.digest, subject)) {
                log_debug("profile: referrer %s is not a usable profile (%s)", ds,
                          r < 0 ? strerror(-r) : "no subject or profile layer");
                c->bad = true;
        } else {
                c->checked = true;
                c->blob = m->profile.digest;
                c->size = m->profile.size;
                if (!c->created[0])
                        snprintf(c->created, sizeof c->created, "%s", m->created);
        }
        image_manifest_free(m);
}

static int newest_first(const void *a, const void *b) {
        const struct candidate *x = a, *y = b;
        int c = strcmp(y->created, x->created);

        if (c)
                return c;
        return y->pos > x->pos ? 1 : y->pos < x->pos ? -1 : 0;
}

/* The profile referrers of subject, newest first. Candidates whose
 * descriptor lacks an artifactType or a creation time are fetched to
 * learn them; the others are fetched only when used. */
static int collect(struct blob_source *s, const struct digest *subject, struct candidate **ret, size_t *ret_n) {
        _cleanup_free_ char *body = NULL;
        struct json_object *root = NULL, *list;
        struct candidate *v = NULL;
        size_t len, n = 0, total;
        int r;

        r = source_referrers_get(s, subject, &body, &len);
        if (r == -EOPNOTSUPP || r == -ENOENT) {
                *ret = NULL;
                *ret_n = 0;
                return 0;
        }
        if (r < 0)
                return r;
        root = json_tokener_parse(body);
        if (!root || !json_object_object_get_ex(root, "manifests", &list) || !json_object_is_type(list, json_type_array)) {
                json_object_put(root);
                return -EBADMSG;
        }
        total = json_object_array_length(list);
        v = calloc(MAX(total, (size_t) 1), sizeof *v);
        if (!v) {
                json_object_put(root);
                return -ENOMEM;
        }
        for (size_t i = 0; i < total; i++) {
                struct json_object *e = json_object_array_get_idx(list, i), *o, *ann;
                const char *at = NULL;
                struct candidate *c = &v[n];

                if (!json_object_object_get_ex(e, "digest", &o) ||
                    digest_parse(json_object_get_string(o), &c->manifest) < 0)
                        continue;
                if (json_object_object_get_ex(e, "artifactType", &o))
                        at = json_object_get_string(o);
                if (at && strcmp(at, MT_PROFILE) != 0)
                        continue;
                if (json_object_object_get_ex(e, "annotations", &ann) &&
                    json_object_object_get_ex(ann, ANNOTATION_CREATED, &o))
                        snprintf(c->created, sizeof c->created, "%s", json_object_get_string(o));
                c->pos = i;
                if (!at || !c->created[0]) {
                        check_candidate(s, subject, c);
                        if (c->bad) {
                                memset(c, 0, sizeof *c);
                                continue;
                        }
                }
                n++;
        }
        json_object_put(root);
        qsort(v, n, sizeof *v, newest_first);
        *ret = v;
        *ret_n = n;
        return 0;
}

int profile_artifact_list(struct blob_source *s, const struct digest *subject,
                          void (*fn)(const struct profile_found *found, void *userdata), void *userdata) {
        _cleanup_free_ struct candidate *v = NULL;
        size_t n;
        int r, listed_n = 0;

        r = collect(s, subject, &v, &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                struct profile_found f = { .origin = PROFILE_ORIGIN_REFERRER, .candidates = (unsigned) n };

                if (!v[i].checked)
                        check_candidate(s, subject, &v[i]);
                if (v[i].bad)
                        continue;
                f.manifest = v[i].manifest;
                f.blob = v[i].blob;
                f.size = v[i].size;
                snprintf(f.created, sizeof f.created, "%s", v[i].created);
                fn(&f, userdata);
                listed_n++;
        }
        return listed_n;
}

int profile_artifact_find(struct blob_source *s, const struct digest *subject, const struct image_manifest *m,
                          void **ret_buf, size_t *ret_len, struct profile_found *ret_found) {
        _cleanup_free_ struct candidate *v = NULL;
        struct profile_found f = { 0 };
        void *buf = NULL;
        size_t n = 0;
        int r;

        r = collect(s, subject, &v, &n);
        if (r < 0)
                log_debug("profile: cannot list referrers: %s", strerror(-r));
        for (size_t i = 0; i < n; i++) {
                if (!v[i].checked)
                        check_candidate(s, subject, &v[i]);
                if (v[i].bad)
                        continue;
                r = source_blob_get(s, &v[i].blob, v[i].size, PROFILE_BLOB_MAX, &buf);
                if (r < 0) {
                        char ds[DIGEST_STRING_MAX];
                        log_debug("profile: cannot fetch profile blob %s: %s", digest_to_string(&v[i].blob, ds),
                                  strerror(-r));
                        continue;
                }
                f = (struct profile_found) {
                        .origin = PROFILE_ORIGIN_REFERRER,
                        .manifest = v[i].manifest,
                        .blob = v[i].blob,
                        .size = v[i].size,
                        .candidates = (unsigned) n,
                };
                snprintf(f.created, sizeof f.created, "%s", v[i].created);
                goto found;
        }
        if (m && m->has_profile) {
                r = source_blob_get(s, &m->profile.digest, m->profile.size, PROFILE_BLOB_MAX, &buf);
                if (r < 0)
                        return r;
                f = (struct profile_found) {
                        .origin = PROFILE_ORIGIN_LAYER,
                        .manifest = *subject,
                        .blob = m->profile.digest,
                        .size = m->profile.size,
                        .candidates = (unsigned) n,
                };
                goto found;
        }
        return -ENOENT;
found:
        *ret_buf = buf;
        *ret_len = f.size;
        if (ret_found)
                *ret_found = f;
        return 0;
}
