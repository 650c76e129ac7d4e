/* SPDX-License-Identifier: Apache-2.0 */
#include "credentials.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <openssl/evp.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"

#define AUTH_FILE_MAX (4u << 20)
#define HELPER_OUTPUT_MAX (64u << 10)

extern char **environ;

static void free_secret(char *s) {
        if (s) {
                explicit_bzero(s, strlen(s));
                free(s);
        }
}

void credentials_done(struct credentials *c) {
        if (!c)
                return;
        free_secret(c->username);
        free_secret(c->password);
        free_secret(c->identity_token);
        c->username = c->password = c->identity_token = NULL;
}

int credentials_from_pair(const char *pair, struct credentials *ret) {
        const char *colon = strchr(pair, ':');

        if (!colon || colon == pair)
                return -EINVAL;
        ret->username = strndup(pair, (size_t) (colon - pair));
        ret->password = strdup(colon + 1);
        if (!ret->username || !ret->password) {
                credentials_done(ret);
                return -ENOMEM;
        }
        return 0;
}

/* Decode base64 "USER:PASS" with OpenSSL's EVP block decoder. */
static int decode_auth(const char *b64, struct credentials *ret) {
        size_t n = strlen(b64), pad = 0;
        unsigned char *out;
        int len, r;

        /* No bound but the file's (AUTH_FILE_MAX): cloud registries'
         * tokens run to kilobytes. */
        if (n == 0 || n % 4 || n > AUTH_FILE_MAX)
                return -EBADMSG;
        if (b64[n - 1] == '=')
                pad++;
        if (b64[n - 2] == '=')
                pad++;
        out = malloc(n / 4 * 3 + 1);
        if (!out)
                return -ENOMEM;
        len = EVP_DecodeBlock(out, (const unsigned char *) b64, (int) n);
        if (len < 0 || (size_t) len < pad) {
                free(out);
                return -EBADMSG;
        }
        len -= (int) pad;
        out[len] = 0;
        if (memchr(out, 0, (size_t) len)) {
                explicit_bzero(out, (size_t) len);
                free(out);
                return -EBADMSG;
        }
        r = credentials_from_pair((const char *) out, ret);
        explicit_bzero(out, (size_t) len);
        free(out);
        return r == -EINVAL ? -EBADMSG : r;
}

/* The registry part of an auths key: "https://host/v1/" -> "host",
 * "host/ns/repo" stays. Returns a malloc'd normalized key. */
static char *normalize_key(const char *key) {
        const char *p = key;

        if (!strncmp(p, "https://", 8))
                p += 8;
        else if (!strncmp(p, "http://", 7))
                p += 7;
        else
                return strdup(key);
        /* A legacy URL key names a host only. */
        return strndup(p, strcspn(p, "/"));
}

/* How specific key is for registry/repository: 0 = no match, else the
 * length of the matched path (longer wins). */
static size_t key_match(const char *key, const char *registry, const char *repository) {
        _cleanup_free_ char *norm = normalize_key(key), *full = NULL;
        size_t n;

        if (!norm)
                return 0;
        if (!strcmp(norm, registry))
                return strlen(norm);
        if (asprintf(&full, "%s/%s", registry, repository ? repository : "") < 0)
                return 0;
        n = strlen(norm);
        /* "host/ns" matches "host/ns/repo" on a path boundary. */
        if (n > strlen(registry) && !strncmp(full, norm, n) && (full[n] == '/' || full[n] == 0))
                return n;
        return 0;
}

static int entry_credentials(struct json_object *entry, struct credentials *ret) {
        struct json_object *o;
        int r;

        if (json_object_object_get_ex(entry, "identitytoken", &o) && json_object_is_type(o, json_type_string) &&
            json_object_get_string_len(o) > 0) {
                ret->identity_token = strdup(json_object_get_string(o));
                return ret->identity_token ? 0 : -ENOMEM;
        }
        if (json_object_object_get_ex(entry, "auth", &o) && json_object_is_type(o, json_type_string) &&
            json_object_get_string_len(o) > 0)
                return decode_auth(json_object_get_string(o), ret);
        if (json_object_object_get_ex(entry, "username", &o) && json_object_is_type(o, json_type_string)) {
                struct json_object *pw;

                if (!json_object_object_get_ex(entry, "password", &pw) || !json_object_is_type(pw, json_type_string))
                        return -ENOENT;
                ret->username = strdup(json_object_get_string(o));
                ret->password = strdup(json_object_get_string(pw));
                if (!ret->username || !ret->password) {
                        credentials_done(ret);
                        return -ENOMEM;
                }
                return 0;
        }
        r = -ENOENT; /* an empty entry: e.g. "localhost:5001": {} */
        return r;
}

int auth_file_lookup(const char *text, size_t len, const char *registry, const char *repository,
                     struct credentials *ret, char **ret_helper) {
        struct json_tokener *tok;
        struct json_object *root, *auths, *helpers, *o, *best = NULL;
        size_t best_len = 0;
        int r = -ENOENT;

        tok = json_tokener_new();
        if (!tok)
                return -ENOMEM;
        root = json_tokener_parse_ex(tok, text, (int) len);
        json_tokener_free(tok);
        if (!root || !json_object_is_type(root, json_type_object)) {
                r = -EBADMSG;
                goto out;
        }
        /* A per-registry helper wins over stored auths for that registry. */
        if (json_object_object_get_ex(root, "credHelpers", &helpers) && json_object_is_type(helpers, json_type_object)) {
                json_object_object_foreach(helpers, key, val) {
                        _cleanup_free_ char *norm = normalize_key(key);
                        if (norm && !strcmp(norm, registry) && json_object_is_type(val, json_type_string) &&
                            json_object_get_string_len(val) > 0) {
                                *ret_helper = strdup(json_object_get_string(val));
                                r = *ret_helper ? 1 : -ENOMEM;
                                goto out;
                        }
                }
        }
        if (json_object_object_get_ex(root, "auths", &auths) && json_object_is_type(auths, json_type_object)) {
                json_object_object_foreach(auths, key, val) {
                        size_t m = key_match(key, registry, repository);
                        if (m > best_len && json_object_is_type(val, json_type_object)) {
                                best = val;
                                best_len = m;
                        }
                }
        }
        if (best) {
                r = entry_credentials(best, ret);
                if (r != -ENOENT)
                        goto out;
        }
        if (json_object_object_get_ex(root, "credsStore", &o) && json_object_is_type(o, json_type_string) &&
            json_object_get_string_len(o) > 0) {
                *ret_helper = strdup(json_object_get_string(o));
                r = *ret_helper ? 1 : -ENOMEM;
                goto out;
        }
        r = -ENOENT;
out:
        json_object_put(root);
        return r;
}

/* Helper names become part of a program name: keep them boring. */
static bool helper_name_valid(const char *s) {
        if (!*s || strlen(s) > 64)
                return false;
        for (; *s; s++)
                if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '-' ||
                      *s == '_' || *s == '.'))
                        return false;
        return true;
}

int credential_helper_get(const char *helper, const char *registry, struct credentials *ret) {
        int in[2] = { -1, -1 }, out[2] = { -1, -1 }, status, r;
        posix_spawn_file_actions_t fa;
        char prog[96], *argv[3];
        _cleanup_free_ char *buf = NULL;
        size_t used = 0;
        struct json_object *root = NULL, *u, *s;
        pid_t pid;

        if (!helper_name_valid(helper))
                return -EINVAL;
        snprintf(prog, sizeof prog, "docker-credential-%s", helper);
        buf = malloc(HELPER_OUTPUT_MAX + 1);
        if (!buf)
                return -ENOMEM;
        if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0) {
                r = -errno;
                goto out_close;
        }
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, in[0], STDIN_FILENO);
        posix_spawn_file_actions_adddup2(&fa, out[1], STDOUT_FILENO);
        argv[0] = prog;
        argv[1] = (char *) "get";
        argv[2] = NULL;
        r = posix_spawnp(&pid, prog, &fa, NULL, argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        close(in[0]);
        close(out[1]);
        in[0] = out[1] = -1;
        if (r != 0) {
                r = r == ENOENT ? -ENOPKG : -r;
                goto out_close;
        }
        /* The helper reads the server URL from stdin; ignore SIGPIPE-ish
         * failures, the exit status tells. */
        {
                struct sigaction ign = { .sa_handler = SIG_IGN }, old;
                sigaction(SIGPIPE, &ign, &old);
                (void) write_all(in[1], registry, strlen(registry));
                sigaction(SIGPIPE, &old, NULL);
        }
        close(in[1]);
        in[1] = -1;
        for (;;) {
                ssize_t n = read(out[0], buf + used, HELPER_OUTPUT_MAX - used);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                used += (size_t) n;
                if (used == HELPER_OUTPUT_MAX)
                        break;
        }
        buf[used] = 0;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                /* "credentials not found in native keychain" */
                r = -ENOENT;
                goto out_wipe;
        }
        root = json_tokener_parse(buf);
        if (!root || !json_object_object_get_ex(root, "Username", &u) || !json_object_object_get_ex(root, "Secret", &s) ||
            !json_object_is_type(u, json_type_string) || !json_object_is_type(s, json_type_string)) {
                r = -EBADMSG;
                goto out_wipe;
        }
        if (!strcmp(json_object_get_string(u), "<token>"))
                ret->identity_token = strdup(json_object_get_string(s));
        else {
                ret->username = strdup(json_object_get_string(u));
                ret->password = strdup(json_object_get_string(s));
        }
        r = ret->identity_token || (ret->username && ret->password) ? 0 : -ENOMEM;
        if (r < 0)
                credentials_done(ret);
out_wipe:
        if (root) {
                /* json-c keeps its own copies; wipe what we can reach. */
                if (json_object_object_get_ex(root, "Secret", &s) && json_object_is_type(s, json_type_string))
                        explicit_bzero((char *) json_object_get_string(s), (size_t) json_object_get_string_len(s));
                json_object_put(root);
        }
        explicit_bzero(buf, used);
out_close:
        for (int i = 0; i < 2; i++) {
                if (in[i] >= 0)
                        close(in[i]);
                if (out[i] >= 0)
                        close(out[i]);
        }
        return r;
}

/* Look in one file. 0 found, -ENOENT not there (or no file), -errno. */
static int try_file(const char *path, const char *registry, const char *repository, struct credentials *ret) {
        _cleanup_free_ char *text = NULL, *helper = NULL;
        size_t len;
        int r;

        r = read_file_all(AT_FDCWD, path, AUTH_FILE_MAX, &text, &len);
        if (r == -ENOENT || r == -ENOTDIR)
                return -ENOENT;
        if (r < 0)
                return r;
        r = auth_file_lookup(text, len, registry, repository, ret, &helper);
        explicit_bzero(text, len);
        if (r == -EBADMSG)
                snprintf(ret->from, sizeof ret->from, "auth file %s is not valid JSON", path);
        if (r == 1) {
                r = credential_helper_get(helper, registry, ret);
                if (r == 0)
                        snprintf(ret->from, sizeof ret->from, "credential helper docker-credential-%s (from %s)",
                                 helper, path);
                if (r == -ENOPKG)
                        snprintf(ret->from, sizeof ret->from,
                                 "credential helper docker-credential-%s not found in PATH (configured in %s)", helper,
                                 path);
                log_debug("registry: credential helper docker-credential-%s for %s: %s", helper, registry,
                          r == 0 ? "found" : strerror(-r));
                return r;
        }
        if (r == 0)
                snprintf(ret->from, sizeof ret->from, "auth file %s", path);
        return r;
}

int credentials_find(const struct source_options *o, const char *registry, const char *repository,
                     struct credentials *ret) {
        const char *explicit_file = o->auth_file, *e;
        char path[3][4096];
        unsigned n = 0;
        int r;

        memset(ret, 0, sizeof *ret);
        if (o->creds) {
                r = credentials_from_pair(o->creds, ret);
                if (r == 0)
                        snprintf(ret->from, sizeof ret->from, "--creds");
                return r;
        }
        if (!explicit_file) {
                e = getenv("REGISTRY_AUTH_FILE");
                if (e && *e)
                        explicit_file = e;
        }
        if (explicit_file) {
                r = try_file(explicit_file, registry, repository, ret);
                log_debug("registry: credentials for %s in %s: %s", registry, explicit_file,
                          r == 0 ? "found" : strerror(-r));
                return r;
        }
        e = getenv("XDG_RUNTIME_DIR");
        if (e && *e)
                snprintf(path[n++], sizeof path[0], "%s/containers/auth.json", e);
        else    /* where skopeo/podman login write without XDG_RUNTIME_DIR */
                snprintf(path[n++], sizeof path[0], "/run/containers/%u/auth.json", (unsigned) getuid());
        e = getenv("XDG_CONFIG_HOME");
        if (e && *e)
                snprintf(path[n++], sizeof path[0], "%s/containers/auth.json", e);
        else if ((e = getenv("HOME")) && *e)
                snprintf(path[n++], sizeof path[0], "%s/.config/containers/auth.json", e);
        e = getenv("DOCKER_CONFIG");
        if (e && *e)
                snprintf(path[n++], sizeof path[0], "%s/config.json", e);
        else if ((e = getenv("HOME")) && *e)
                snprintf(path[n++], sizeof path[0], "%s/.docker/config.json", e);
        for (unsigned i = 0; i < n; i++) {
                r = try_file(path[i], registry, repository, ret);
                log_debug("registry: credentials for %s in %s: %s", registry, path[i], r == 0 ? "found" : strerror(-r));
                if (r != -ENOENT)
                        return r;
        }
        return -ENOENT;
}
