/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Referrers against a real registry: manifest_put of a manifest with a
 * subject keeps the referrers tag index (sha256-<hex>) on registries
 * without the referrers API, and referrers_get finds it. Needs a registry:
 * run by tests/e2e/test-registry-referrers.sh with HOCUS_TEST_REGISTRY set;
 * skips (77) without it.
 */
#undef NDEBUG
#include <assert.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry-client/manifest.h"
#include "registry-client/source.h"

static void put_blob(struct blob_source *s, const char *text, struct digest *ret) {
        digest_compute(text, strlen(text), ret);
        assert(source_blob_put_buf(s, ret, text, strlen(text)) == 0);
}

static struct json_object *descriptor(const char *mt, const struct digest *d, size_t size) {
        struct json_object *o = json_object_new_object();
        char ds[DIGEST_STRING_MAX];

        json_object_object_add(o, "mediaType", json_object_new_string(mt));
        json_object_object_add(o, "digest", json_object_new_string(digest_to_string(d, ds)));
        json_object_object_add(o, "size", json_object_new_int64((int64_t) size));
        return o;
}

/* A manifest: empty config, one layer; with a subject when subj is set. */
static char *manifest(const struct digest *layer, size_t layer_len, const char *artifact_type,
                      const struct digest *subj, size_t subj_len) {
        struct json_object *root = json_object_new_object(), *layers = json_object_new_array(), *ann;
        struct digest empty;
        char *out;

        empty_config_digest(&empty);
        json_object_object_add(root, "schemaVersion", json_object_new_int(2));
        json_object_object_add(root, "mediaType", json_object_new_string(MT_OCI_MANIFEST));
        json_object_object_add(root, "artifactType", json_object_new_string(artifact_type));
        json_object_object_add(root, "config", descriptor(MT_OCI_EMPTY, &empty, 2));
        json_object_array_add(layers, descriptor(MT_PROFILE, layer, layer_len));
        json_object_object_add(root, "layers", layers);
        if (subj)
                json_object_object_add(root, "subject", descriptor(MT_OCI_MANIFEST, subj, subj_len));
        ann = json_object_new_object();
        json_object_object_add(ann, "org.hocus.test", json_object_new_string(artifact_type));
        json_object_object_add(root, "annotations", ann);
        out = strdup(json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(root);
        assert(out);
        return out;
}

static int count_listed(const char *body, const struct digest *d, const char *artifact_type) {
        struct json_object *root = json_tokener_parse(body), *list, *o;
        char ds[DIGEST_STRING_MAX];
        int n = 0;

        assert(root && json_object_object_get_ex(root, "manifests", &list));
        digest_to_string(d, ds);
        for (size_t i = 0; i < json_object_array_length(list); i++) {
                struct json_object *m = json_object_array_get_idx(list, i);
                if (json_object_object_get_ex(m, "digest", &o) && !strcmp(json_object_get_string(o), ds)) {
                        assert(json_object_object_get_ex(m, "artifactType", &o));
                        assert(!strcmp(json_object_get_string(o), artifact_type));
                        n++;
                }
        }
        json_object_put(root);
        return n;
}

int main(void) {
        const char *reg = getenv("HOCUS_TEST_REGISTRY");
        struct source_options o = { .plain_http = true, .create = true };
        struct blob_source *s;
        struct digest cfg, layer, subj, ref1, ref2, nobody;
        char text[256], err[512], *m, *m1, *m2, *body;
        size_t len, subj_len;

        if (!reg)
                return 77;
        snprintf(text, sizeof text, "docker://%s/refs/img:v1", reg);
        assert(source_open(text, &o, &s, err, sizeof err) == 0);
        put_blob(s, EMPTY_JSON, &cfg);
        put_blob(s, "profile bytes", &layer);

        m = manifest(&layer, 13, MT_IMAGE, NULL, 0);
        subj_len = strlen(m);
        assert(source_manifest_put(s, "v1", MT_OCI_MANIFEST, MT_IMAGE, m, subj_len, &subj) == 0);

        /* No referrers yet: an empty index. */
        assert(source_referrers_get(s, &subj, &body, &len) == 0);
        assert(count_listed(body, &subj, MT_PROFILE) == 0 && strstr(body, "\"manifests\":[]"));
        free(body);

        m1 = manifest(&layer, 13, MT_PROFILE, &subj, subj_len);
        assert(source_manifest_put(s, NULL, MT_OCI_MANIFEST, MT_PROFILE, m1, strlen(m1), &ref1) == 0);
        m2 = manifest(&layer, 13, "application/vnd.hocus.test.other", &subj, subj_len);
        assert(source_manifest_put(s, NULL, MT_OCI_MANIFEST, NULL, m2, strlen(m2), &ref2) == 0);
        /* Putting the first again does not list it twice. */
        assert(source_manifest_put(s, NULL, MT_OCI_MANIFEST, MT_PROFILE, m1, strlen(m1), NULL) == 0);

        assert(source_referrers_get(s, &subj, &body, &len) == 0);
        assert(count_listed(body, &ref1, MT_PROFILE) == 1);
        assert(count_listed(body, &ref2, "application/vnd.hocus.test.other") == 1);
        assert(strstr(body, "org.hocus.test"));
        free(body);

        /* The referrers are fetchable by digest. */
        {
                char ds[DIGEST_STRING_MAX], *mt;
                assert(source_manifest_get(s, digest_to_string(&ref1, ds), &mt, &body, &len, NULL) == 0);
                assert(len == strlen(m1) && !memcmp(body, m1, len));
                free(mt);
                free(body);
        }
        digest_compute("nothing", 7, &nobody);
        assert(source_referrers_get(s, &nobody, &body, &len) == 0 && strstr(body, "\"manifests\":[]"));
        free(body);
        free(m);
        free(m1);
        free(m2);
        source_free(s);
        (void) cfg;
        return 0;
}
