/* SPDX-License-Identifier: Apache-2.0 */
#include "auth-file.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/err.h"
#include "common/util.h"

#define AUTH_FILE_MAX (4u << 20)

const char *auth_file_write_path(const char *explicit_file, char *buf, size_t len) {
        const char *e;

        if (explicit_file && *explicit_file)
                snprintf(buf, len, "%s", explicit_file);
        else if ((e = getenv("REGISTRY_AUTH_FILE")) && *e)
                snprintf(buf, len, "%s", e);
        else if ((e = getenv("XDG_RUNTIME_DIR")) && *e)
                snprintf(buf, len, "%s/containers/auth.json", e);
        else
                snprintf(buf, len, "/run/containers/%u/auth.json", (unsigned) getuid());
        return buf;
}

int auth_file_key(const char *registry, char *buf, size_t len) {
        static const char *const schemes[] = { "docker://", "https://", "http://" };
        size_t skip = 0, n;
        bool url = false;

        for (size_t i = 0; i < 3; i++)
                if (!strncmp(registry, schemes[i], strlen(schemes[i]))) {
                        skip = strlen(schemes[i]);
                        url = i > 0;
                        break;
                }
        n = strlen(registry) - skip;
        /* "https://host/v1/" (docker's legacy key) names the host only. */
        if (url && n >= 4 && !strcmp(registry + skip + n - 4, "/v1/"))
                n = strcspn(registry + skip, "/");
        while (n && registry[skip + n - 1] == '/')
                n--;
        if (n == 0 || registry[skip] == '/' || n >= len)
                return -EINVAL;
        memcpy(buf, registry + skip, n);
        buf[n] = 0;
        return 0;
}

/* The file as a JSON object; a missing or empty file is {}. */
static int load(const char *path, struct json_object **ret, char *err, size_t errlen) {
        _cleanup_free_ char *text = NULL;
        struct json_object *root;
        size_t len;
        int r;

        r = read_file_all(AT_FDCWD, path, AUTH_FILE_MAX, &text, &len);
        if (r == -ENOENT || (r == 0 && strspn(text, " \t\r\n") == len)) {
                *ret = json_object_new_object();
                return *ret ? 0 : -ENOMEM;
        }
        if (r < 0)
                return err_set(err, errlen, r, "cannot read %s: %m", path);
        root = json_tokener_parse(text);
        explicit_bzero(text, len);
        if (!root || !json_object_is_type(root, json_type_object)) {
                json_object_put(root);
                return err_set(err, errlen, -EBADMSG, "%s is not a JSON object (fix or remove it)", path);
        }
        *ret = root;
        return 0;
}

/* Write root to path atomically, 0600, as skopeo does (tab-indented). */
static int save(const char *path, struct json_object *root, char *err, size_t errlen) {
        _cleanup_free_ char *dir = strdup(path);
        const char *text;
        char *slash;
        int r;

        if (!dir)
                return -ENOMEM;
        slash = strrchr(dir, '/');
        if (slash && slash != dir) {
                *slash = 0;
                r = mkdir_p(dir, 0700);
                if (r < 0)
                        return err_set(err, errlen, r, "cannot create %s: %m", dir);
        }
        text = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_PRETTY_TAB |
                                                            JSON_C_TO_STRING_NOSLASHESCAPE);
        if (!text)
                return -ENOMEM;
        r = write_file_atomic(AT_FDCWD, path, text, strlen(text), 0600);
        explicit_bzero((char *) text, strlen(text));
        if (r < 0)
                return err_set(err, errlen, r, "cannot write %s: %m", path);
        return 0;
}

/* The host part of a key: "host:5000/ns" -> "host:5000". */
static bool same_host(const char *key, const char *other) {
        size_t a = strcspn(key, "/"), b;
        const char *o = other;

        if (!strncmp(o, "https://", 8))
                o += 8;
        else if (!strncmp(o, "http://", 7))
                o += 7;
        b = strcspn(o, "/");
        return a == b && !strncmp(key, o, a);
}

int auth_file_store(const char *path, const char *key, const char *user, const char *pass, char *err,
                    size_t errlen) {
        struct json_object *root = NULL, *auths, *helpers, *entry;
        _cleanup_free_ char *pair = NULL;
        _cleanup_free_ unsigned char *b64 = NULL;
        size_t n = 0, b64_len = 0;
        int r;

        r = load(path, &root, err, errlen);
        if (r < 0)
                return r;
        if (json_object_object_get_ex(root, "credHelpers", &helpers) && json_object_is_type(helpers, json_type_object)) {
                json_object_object_foreach(helpers, k, v) {
                        if (same_host(key, k) && json_object_is_type(v, json_type_string)) {
                                r = err_set(err, errlen, -ENOTSUP,
                                            "%s configures credential helper docker-credential-%s for %s: hocus-blk "
                                            "reads it first and does not store into helpers (use the helper's own "
                                            "login, or another --authfile)",
                                            path, json_object_get_string(v), k);
                                goto out;
                        }
                }
        }
        if (!json_object_object_get_ex(root, "auths", &auths) || !json_object_is_type(auths, json_type_object)) {
                auths = json_object_new_object();
                if (!auths || json_object_object_add(root, "auths", auths) < 0) {
                        r = -ENOMEM;
                        goto out;
                }
        }
        if (asprintf(&pair, "%s:%s", user, pass) < 0) {
                pair = NULL;
                r = -ENOMEM;
                goto out;
        }
        n = strlen(pair);
        b64_len = 4 * ((n + 2) / 3);
        b64 = malloc(b64_len + 1);
        entry = json_object_new_object();
        if (!b64 || !entry || n > AUTH_FILE_MAX) {
                json_object_put(entry);
                r = n > AUTH_FILE_MAX ? err_set(err, errlen, -E2BIG, "credentials larger than 4 MiB") : -ENOMEM;
                goto out;
        }
        EVP_EncodeBlock(b64, (const unsigned char *) pair, (int) n);
        json_object_object_add(entry, "auth", json_object_new_string((const char *) b64));
        json_object_object_add(auths, key, entry);
        r = save(path, root, err, errlen);
out:
        if (pair)
                explicit_bzero(pair, n);
        if (b64)
                explicit_bzero(b64, b64_len);
        json_object_put(root);
        return r;
}

int auth_file_remove(const char *path, const char *key, char *err, size_t errlen) {
        struct json_object *root = NULL, *auths;
        int r;

        if (access(path, F_OK) < 0 && errno == ENOENT)
                return err_set(err, errlen, -ENOENT, "%s does not exist", path);
        r = load(path, &root, err, errlen);
        if (r < 0)
                return r;
        if (!json_object_object_get_ex(root, "auths", &auths) || !json_object_is_type(auths, json_type_object)) {
                r = key ? err_set(err, errlen, -ENOENT, "%s has no entry for %s", path, key) : 0;
                goto out;
        }
        if (!key) {
                json_object_object_add(root, "auths", json_object_new_object());
        } else {
                if (!json_object_object_get_ex(auths, key, NULL)) {
                        r = err_set(err, errlen, -ENOENT, "%s has no entry for %s", path, key);
                        goto out;
                }
                json_object_object_del(auths, key);
        }
        r = save(path, root, err, errlen);
out:
        json_object_put(root);
        return r;
}
