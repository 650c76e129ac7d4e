/* SPDX-License-Identifier: Apache-2.0 */
#include "state.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "chunkstore/digest.h"
#include "common/cleanup.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"

#define STATE_MAX (64u << 20)

struct state {
        char *dir;
        int dirfd;
        int lockfd;
};

static const char *const added_by_names[_STATE_BY_MAX] = {
        [STATE_BY_ATTACH] = "attach",
        [STATE_BY_COMMAND_LINE] = "command-line",
        [STATE_BY_CONFIG] = "config",
};

const char *state_added_by_name(enum state_added_by b) {
        return b < _STATE_BY_MAX ? added_by_names[b] : "?";
}

const char *state_default_dir(char *buf, size_t len) {
        const char *e = getenv("HOCUS_BLK_STATE_DIR"), *home;
        int n;

        if (e && *e)
                n = snprintf(buf, len, "%s", e);
        else if (geteuid() == 0)
                n = snprintf(buf, len, "/var/lib/hocus-blk");
        else if ((e = getenv("XDG_STATE_HOME")) && *e)
                n = snprintf(buf, len, "%s/hocus-blk", e);
        else if ((home = getenv("HOME")) && *home)
                n = snprintf(buf, len, "%s/.local/state/hocus-blk", home);
        else
                return NULL;
        return n > 0 && (size_t) n < len ? buf : NULL;
}

void state_free(struct state *st) {
        if (!st)
                return;
        if (st->lockfd >= 0)
                close(st->lockfd);      /* drops the lock */
        if (st->dirfd >= 0)
                close(st->dirfd);
        free(st->dir);
        free(st);
}

const char *state_dir(const struct state *st) {
        return st->dir;
}

int state_open(const char *dir, struct state **ret, char *err, size_t errlen) {
        struct state *st;
        char pid[32];
        int r, n;

        r = mkdir_p(dir, 0700);
        if (r < 0)
                return err_set(err, errlen, r, "cannot create state directory %s: %s", dir, strerror(-r));
        st = calloc(1, sizeof *st);
        if (!st)
                return -ENOMEM;
        st->lockfd = st->dirfd = -EBADF;
        st->dir = strdup(dir);
        if (!st->dir) {
                r = -ENOMEM;
                goto fail;
        }
        st->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (st->dirfd < 0) {
                r = err_set(err, errlen, -errno, "cannot open state directory %s: %m", dir);
                goto fail;
        }
        st->lockfd = openat(st->dirfd, "lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (st->lockfd < 0) {
                r = err_set(err, errlen, -errno, "cannot open %s/lock: %m", dir);
                goto fail;
        }
        if (flock(st->lockfd, LOCK_EX | LOCK_NB) < 0) {
                r = -errno;
                if (r == -EWOULDBLOCK) {
                        ssize_t k = pread(st->lockfd, pid, sizeof pid - 1, 0);
                        pid[k > 0 ? k : 0] = 0;
                        pid[strcspn(pid, "\n")] = 0;
                        r = err_set(err, errlen, -EBUSY, "state directory %s is in use by another blockd%s%s%s", dir,
                                    pid[0] ? " (pid " : "", pid, pid[0] ? ")" : "");
                } else {
                        err_set(err, errlen, r, "cannot lock %s/lock: %s", dir, strerror(-r));
                }
                goto fail;
        }
        n = snprintf(pid, sizeof pid, "%d\n", (int) getpid());
        if (ftruncate(st->lockfd, 0) < 0 || pwrite_all(st->lockfd, pid, (size_t) n, 0) < 0)
                log_debug("state: cannot note our pid in %s/lock", dir);
        *ret = st;
        return 0;
fail:
        state_free(st);
        return r;
}

void state_export_clear(struct state_export *e) {
        if (!e)
                return;
        free(e->name);
        free(e->ref);
        free(e->manifest);
        free(e->overlay);
        free(e->profile);
        free(e->profile_blob);
        free(e->vhost_user);
        *e = (struct state_export) { 0 };
}

void state_exports_free(struct state_export *v, size_t n) {
        if (!v)
                return;
        for (size_t i = 0; i < n; i++)
                state_export_clear(&v[i]);
        free(v);
}

static int dup_opt(const char *s, char **ret) {
        *ret = NULL;
        if (s && !(*ret = strdup(s)))
                return -ENOMEM;
        return 0;
}

int state_export_copy(const struct state_export *from, struct state_export *to) {
        struct state_export c = { .added_by = from->added_by };

        if (dup_opt(from->name, &c.name) < 0 || dup_opt(from->ref, &c.ref) < 0 ||
            dup_opt(from->manifest, &c.manifest) < 0 || dup_opt(from->overlay, &c.overlay) < 0 ||
            dup_opt(from->profile, &c.profile) < 0 || dup_opt(from->profile_blob, &c.profile_blob) < 0 ||
            dup_opt(from->vhost_user, &c.vhost_user) < 0) {
                state_export_clear(&c);
                return -ENOMEM;
        }
        *to = c;
        return 0;
}

static void add_str(struct json_object *o, const char *key, const char *v) {
        if (v)
                json_object_object_add(o, key, json_object_new_string(v));
}

int state_encode(const struct state_export *v, size_t n, char **ret_json) {
        struct json_object *root = json_object_new_object(), *arr = json_object_new_array();
        char *s;

        if (!root || !arr) {
                json_object_put(root);
                json_object_put(arr);
                return -ENOMEM;
        }
        json_object_object_add(root, "version", json_object_new_int(STATE_VERSION));
        json_object_object_add(root, "exports", arr);
        for (size_t i = 0; i < n; i++) {
                struct json_object *o = json_object_new_object();
                add_str(o, "name", v[i].name);
                add_str(o, "ref", v[i].ref);
                add_str(o, "manifest", v[i].manifest);
                add_str(o, "overlay", v[i].overlay);
                add_str(o, "profile", v[i].profile);
                add_str(o, "profile_blob", v[i].profile_blob);
                add_str(o, "vhost_user", v[i].vhost_user);
                add_str(o, "added_by", state_added_by_name(v[i].added_by));
                json_object_array_add(arr, o);
        }
        s = strdup(json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED));
        json_object_put(root);
        if (!s)
                return -ENOMEM;
        *ret_json = s;
        return 0;
}

/* A string member: required ones must be there; digests must parse. */
static int get_str(struct json_object *o, const char *key, bool required, bool digest, char **ret, size_t i,
                   char *err, size_t errlen) {
        struct json_object *v;
        struct digest d;

        *ret = NULL;
        if (!json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null)) {
                if (required)
                        return err_set(err, errlen, -EBADMSG, "export %zu has no \"%s\"", i + 1, key);
                return 0;
        }
        if (!json_object_is_type(v, json_type_string) || json_object_get_string_len(v) == 0)
                return err_set(err, errlen, -EBADMSG, "export %zu: \"%s\" is not a non-empty string", i + 1, key);
        if (digest && digest_parse(json_object_get_string(v), &d) < 0)
                return err_set(err, errlen, -EBADMSG, "export %zu: \"%s\" is not a sha256: digest", i + 1, key);
        *ret = strdup(json_object_get_string(v));
        return *ret ? 0 : -ENOMEM;
}

static int decode_one(struct json_object *o, size_t i, struct state_export *e, char *err, size_t errlen) {
        char *by = NULL;
        int r;

        if (!json_object_is_type(o, json_type_object))
                return err_set(err, errlen, -EBADMSG, "export %zu is not an object", i + 1);
        if ((r = get_str(o, "name", true, false, &e->name, i, err, errlen)) < 0 ||
            (r = get_str(o, "ref", true, false, &e->ref, i, err, errlen)) < 0 ||
            (r = get_str(o, "manifest", false, true, &e->manifest, i, err, errlen)) < 0 ||
            (r = get_str(o, "overlay", false, false, &e->overlay, i, err, errlen)) < 0 ||
            (r = get_str(o, "profile", false, false, &e->profile, i, err, errlen)) < 0 ||
            (r = get_str(o, "profile_blob", false, true, &e->profile_blob, i, err, errlen)) < 0 ||
            (r = get_str(o, "vhost_user", false, false, &e->vhost_user, i, err, errlen)) < 0 ||
            (r = get_str(o, "added_by", false, false, &by, i, err, errlen)) < 0)
                return r;
        e->added_by = STATE_BY_ATTACH;
        if (by) {
                for (r = 0; r < _STATE_BY_MAX && strcmp(by, added_by_names[r]); r++)
                        ;
                free(by);
                if (r == _STATE_BY_MAX)
                        return err_set(err, errlen, -EBADMSG, "export %zu: unknown \"added_by\"", i + 1);
                e->added_by = (enum state_added_by) r;
        }
        return 0;
}

int state_decode(const char *json, size_t len, struct state_export **ret, size_t *ret_n, char *err, size_t errlen) {
        struct json_tokener *tok = json_tokener_new();
        struct json_object *root = NULL, *v, *arr;
        struct state_export *list = NULL;
        size_t n = 0, end;
        int r;

        if (!tok)
                return -ENOMEM;
        root = json_tokener_parse_ex(tok, json, (int) len);
        end = json_tokener_get_parse_end(tok);
        while (root && end < len && strchr(" \t\r\n", json[end]))
                end++;
        if (!root || json_tokener_get_error(tok) != json_tokener_success || end != len) {
                bool trailing = root && json_tokener_get_error(tok) == json_tokener_success;
                r = err_set(err, errlen, -EBADMSG, "not JSON (%s at byte %d)",
                            trailing ? "trailing bytes" :
                            json_tokener_get_error(tok) == json_tokener_continue ?
                                       "truncated" :
                                       json_tokener_error_desc(json_tokener_get_error(tok)),
                            (int) end);
                goto out;
        }
        if (!json_object_is_type(root, json_type_object)) {
                r = err_set(err, errlen, -EBADMSG, "not a JSON object");
                goto out;
        }
        if (!json_object_object_get_ex(root, "version", &v) || !json_object_is_type(v, json_type_int)) {
                r = err_set(err, errlen, -EBADMSG, "no \"version\"");
                goto out;
        }
        if (json_object_get_int(v) != STATE_VERSION) {
                r = err_set(err, errlen, -EBADMSG, "version %d, this blockd knows version %d (a newer blockd wrote it?)",
                            json_object_get_int(v), STATE_VERSION);
                goto out;
        }
        if (!json_object_object_get_ex(root, "exports", &arr) || !json_object_is_type(arr, json_type_array)) {
                r = err_set(err, errlen, -EBADMSG, "no \"exports\" array");
                goto out;
        }
        n = json_object_array_length(arr);
        list = calloc(n ? n : 1, sizeof *list);
        if (!list) {
                r = -ENOMEM;
                goto out;
        }
        for (size_t i = 0; i < n; i++) {
                r = decode_one(json_object_array_get_idx(arr, i), i, &list[i], err, errlen);
                if (r < 0)
                        goto out;
                for (size_t j = 0; j < i; j++)
                        if (!strcmp(list[j].name, list[i].name)) {
                                r = err_set(err, errlen, -EBADMSG, "export '%s' is listed twice", list[i].name);
                                goto out;
                        }
        }
        *ret = list;
        *ret_n = n;
        list = NULL;
        r = 0;
out:
        state_exports_free(list, n);
        json_object_put(root);
        json_tokener_free(tok);
        return r;
}

int state_load(struct state *st, struct state_export **ret, size_t *ret_n, char *err, size_t errlen) {
        _cleanup_free_ char *buf = NULL;
        char why[256];
        size_t len;
        int r;

        r = read_file_all(st->dirfd, STATE_FILE, STATE_MAX, &buf, &len);
        if (r == -ENOENT) {
                *ret = NULL;
                *ret_n = 0;
                return 0;
        }
        if (r < 0)
                return err_set(err, errlen, r, "cannot read %s/%s: %s", st->dir, STATE_FILE, strerror(-r));
        r = state_decode(buf, len, ret, ret_n, why, sizeof why);
        if (r == -EBADMSG)
                return err_set(err, errlen, r,
                               "%s/%s is corrupt: %s; repair it or move it away (its exports are then forgotten)",
                               st->dir, STATE_FILE, why);
        return r;
}

int state_save(struct state *st, const struct state_export *v, size_t n) {
        _cleanup_free_ char *json = NULL;
        int r;

        r = state_encode(v, n, &json);
        if (r < 0)
                return r;
        r = write_file_atomic(st->dirfd, STATE_FILE, json, strlen(json), 0600);
        if (r < 0)
                return r;
        /* The rename is durable once the directory is. */
        if (fsync(st->dirfd) < 0)
                return -errno;
        return 0;
}
