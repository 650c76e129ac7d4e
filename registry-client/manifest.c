/* SPDX-License-Identifier: Apache-2.0 */
#include "manifest.h"

#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/err.h"

void empty_config_digest(struct digest *ret) {
        digest_compute(EMPTY_JSON, strlen(EMPTY_JSON), ret);
}

static struct json_object *descriptor_json(const char *media_type, const struct digest *d, uint64_t size) {
        struct json_object *o = json_object_new_object();
        char ds[DIGEST_STRING_MAX];

        json_object_object_add(o, "mediaType", json_object_new_string(media_type));
        json_object_object_add(o, "digest", json_object_new_string(digest_to_string(d, ds)));
        json_object_object_add(o, "size", json_object_new_int64((int64_t) size));
        return o;
}

int image_manifest_encode(const struct image_manifest *m, char **ret, size_t *ret_len) {
        struct json_object *root = json_object_new_object(), *layers = json_object_new_array(), *ann;
        struct digest empty;
        char num[32];
        const char *text;

        empty_config_digest(&empty);
        json_object_object_add(root, "schemaVersion", json_object_new_int(2));
        json_object_object_add(root, "mediaType", json_object_new_string(MT_OCI_MANIFEST));
        json_object_object_add(root, "artifactType",
                               json_object_new_string(m->has_subject ? MT_PROFILE : MT_IMAGE));
        json_object_object_add(root, "config", descriptor_json(MT_OCI_EMPTY, &empty, strlen(EMPTY_JSON)));
        if (!m->has_subject) {
                json_object_array_add(layers, descriptor_json(MT_INDEX, &m->index.digest, m->index.size));
                for (uint32_t i = 0; i < m->n_packs; i++)
                        json_object_array_add(layers, descriptor_json(MT_PACK, &m->packs[i].digest, m->packs[i].size));
        }
        if (m->has_profile)
                json_object_array_add(layers, descriptor_json(MT_PROFILE, &m->profile.digest, m->profile.size));
        json_object_object_add(root, "layers", layers);
        if (m->has_subject)
                json_object_object_add(root, "subject",
                                       descriptor_json(m->subject.media_type, &m->subject.digest, m->subject.size));
        if (m->has_subject && m->created[0]) {
                ann = json_object_new_object();
                json_object_object_add(ann, ANNOTATION_CREATED, json_object_new_string(m->created));
                json_object_object_add(root, "annotations", ann);
        }
        if (!m->has_subject) {
                ann = json_object_new_object();
                snprintf(num, sizeof num, "%" PRIu64, m->image_size);
                json_object_object_add(ann, ANNOTATION_IMAGE_SIZE, json_object_new_string(num));
                snprintf(num, sizeof num, "%" PRIu32, m->chunk_size);
                json_object_object_add(ann, ANNOTATION_CHUNK_SIZE, json_object_new_string(num));
                json_object_object_add(root, "annotations", ann);
        }
        text = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        *ret = strdup(text);
        *ret_len = strlen(text);
        json_object_put(root);
        return *ret ? 0 : -ENOMEM;
}

static int parse_descriptor(struct json_object *o, struct descriptor *d, const char *what, char *err,
                            size_t errlen) {
        struct json_object *mt, *dg, *sz;
        int r;

        if (!json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, "mediaType", &mt) ||
            !json_object_is_type(mt, json_type_string) || !json_object_object_get_ex(o, "digest", &dg) ||
            !json_object_is_type(dg, json_type_string) || !json_object_object_get_ex(o, "size", &sz) ||
            !json_object_is_type(sz, json_type_int))
                return err_set(err, errlen, -EBADMSG, "%s descriptor lacks mediaType, digest or size", what);
        if (json_object_get_int64(sz) < 0)
                return err_set(err, errlen, -EBADMSG, "%s descriptor has a negative size", what);
        r = digest_parse(json_object_get_string(dg), &d->digest);
        if (r < 0)
                return err_set(err, errlen, -EBADMSG, "%s descriptor has an unsupported digest '%s'", what,
                               json_object_get_string(dg));
        if ((size_t) json_object_get_string_len(mt) >= sizeof d->media_type)
                return err_set(err, errlen, -EBADMSG, "%s descriptor media type is too long", what);
        strcpy(d->media_type, json_object_get_string(mt));
        d->size = (uint64_t) json_object_get_int64(sz);
        return 0;
}

void image_manifest_free(struct image_manifest *m) {
        if (!m)
                return;
        free(m->packs);
        free(m);
}

static uint64_t annotation_u64(struct json_object *root, const char *key) {
        struct json_object *ann, *v;

        if (!json_object_object_get_ex(root, "annotations", &ann) || !json_object_object_get_ex(ann, key, &v))
                return 0;
        return strtoull(json_object_get_string(v), NULL, 10);
}

int image_manifest_parse(const char *media_type, const char *body, size_t len, struct image_manifest **ret,
                         char *err, size_t errlen) {
        struct json_object *root, *o, *layers;
        struct json_tokener *tok;
        struct image_manifest *m = NULL;
        const char *at = NULL;
        size_t n;
        int r;

        if (media_type && (!strcmp(media_type, MT_DOCKER_MANIFEST) || !strcmp(media_type, MT_DOCKER_LIST) ||
                           !strcmp(media_type, MT_OCI_INDEX)))
                return err_set(err, errlen, -EMEDIUMTYPE,
                               "not a hocus-blk image: the manifest is %s (a container image?)", media_type);
        tok = json_tokener_new();
        if (!tok)
                return -ENOMEM;
        root = json_tokener_parse_ex(tok, body, (int) len);
        json_tokener_free(tok);
        if (!root || !json_object_is_type(root, json_type_object)) {
                json_object_put(root);
                return err_set(err, errlen, -EBADMSG, "manifest is not a JSON object");
        }
        if (json_object_object_get_ex(root, "artifactType", &o))
                at = json_object_get_string(o);
        if (!at || (strcmp(at, MT_IMAGE) != 0 && strcmp(at, MT_PROFILE) != 0)) {
                r = err_set(err, errlen, -EMEDIUMTYPE, "not a hocus-blk image: artifactType is %s%s%s",
                            at ? "'" : "", at ? at : "missing (a container image?)", at ? "'" : "");
                goto out;
        }
        if (!json_object_object_get_ex(root, "layers", &layers) || !json_object_is_type(layers, json_type_array)) {
                r = err_set(err, errlen, -EBADMSG, "manifest has no layers array");
                goto out;
        }
        n = json_object_array_length(layers);
        if (n > (1u << 20) + 2) {
                r = err_set(err, errlen, -EBADMSG, "manifest has %zu layers", n);
                goto out;
        }
        m = calloc(1, sizeof *m);
        if (!m || !(m->packs = calloc(n ? n : 1, sizeof *m->packs))) {
                r = -ENOMEM;
                goto out;
        }
        if (json_object_object_get_ex(root, "subject", &o)) {
                r = parse_descriptor(o, &m->subject, "subject", err, errlen);
                if (r < 0)
                        goto out;
                m->has_subject = true;
        }
        for (size_t i = 0; i < n; i++) {
                struct descriptor d;

                r = parse_descriptor(json_object_array_get_idx(layers, i), &d, "layer", err, errlen);
                if (r < 0)
                        goto out;
                if (!strcmp(d.media_type, MT_INDEX)) {
                        if (i != 0) {
                                r = err_set(err, errlen, -EBADMSG, "the index must be the first layer");
                                goto out;
                        }
                        m->index = d;
                } else if (!strcmp(d.media_type, MT_PACK)) {
                        if (m->has_profile) {
                                r = err_set(err, errlen, -EBADMSG, "a pack follows the profile layer");
                                goto out;
                        }
                        m->packs[m->n_packs++] = d;
                } else if (!strcmp(d.media_type, MT_PROFILE)) {
                        if (m->has_profile) {
                                r = err_set(err, errlen, -EBADMSG, "more than one profile layer");
                                goto out;
                        }
                        m->profile = d;
                        m->has_profile = true;
                } else {
                        r = err_set(err, errlen, -EBADMSG, "unknown layer media type '%s'", d.media_type);
                        goto out;
                }
        }
        if (!m->has_subject && (n == 0 || strcmp(m->index.media_type, MT_INDEX) != 0)) {
                r = err_set(err, errlen, -EBADMSG, "manifest has no index layer");
                goto out;
        }
        {
                struct json_object *ann, *v;
                if (json_object_object_get_ex(root, "annotations", &ann) &&
                    json_object_object_get_ex(ann, ANNOTATION_CREATED, &v) && json_object_is_type(v, json_type_string))
                        snprintf(m->created, sizeof m->created, "%s", json_object_get_string(v));
        }
        m->image_size = annotation_u64(root, ANNOTATION_IMAGE_SIZE);
        m->chunk_size = (uint32_t) annotation_u64(root, ANNOTATION_CHUNK_SIZE);
        *ret = TAKE_PTR(m);
        r = 0;
out:
        image_manifest_free(m);
        json_object_put(root);
        return r;
}
