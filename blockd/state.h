/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The export table on disk: blockd's state directory (--state-dir) holds
 * exports.json, every export with what it takes to attach it again after
 * a restart, and a lock file so that two daemons never share it.
 *
 *   {"version":1,"exports":[{"name":"ws","ref":"docker://...",
 *     "manifest":"sha256:...","overlay":"/path","profile":"auto",
 *     "profile_blob":"sha256:...","vhost_user":"/path","added_by":"attach"}]}
 *
 * "manifest" is the digest the reference resolved to at attach: the export
 * is pinned to it (a tag that moves never changes a running disk).
 * "added_by" is attach (restored at start), command-line or config (those
 * are restored when the command line or the config file still names them,
 * keeping their pin). The file is replaced atomically on every change
 * (temp file, fsync, rename, fsync of the directory). Not thread-safe:
 * the caller serialises saves.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define STATE_VERSION 1
#define STATE_FILE "exports.json"

enum state_added_by {
        STATE_BY_ATTACH,
        STATE_BY_COMMAND_LINE,
        STATE_BY_CONFIG,
        _STATE_BY_MAX,
};

struct state_export {
        char *name;
        char *ref;
        char *manifest;         /* "sha256:..." pinned; NULL: resolve the reference */
        char *overlay;          /* NULL: read-only */
        char *profile;          /* NULL = auto, none, or a file */
        char *profile_blob;     /* "sha256:..." the boot profile found at attach; NULL if none */
        char *vhost_user;       /* its own vhost-user-blk socket; NULL if none */
        enum state_added_by added_by;
};

struct state;

const char *state_added_by_name(enum state_added_by b);

/* The default directory: $HOCUS_BLK_STATE_DIR, else /var/lib/hocus-blk
 * as root, else $XDG_STATE_HOME/hocus-blk (~/.local/state/hocus-blk).
 * NULL when none can be found. Returns buf or NULL. */
const char *state_default_dir(char *buf, size_t len);

/* Create dir if needed and lock it: -EBUSY (err names the holder's pid)
 * when another process holds it. */
int state_open(const char *dir, struct state **ret, char *err, size_t errlen);
void state_free(struct state *st);
const char *state_dir(const struct state *st);

/* The saved table: 0 entries when there is no file yet; -EBADMSG with a
 * reason in err when it is corrupt or of another version. */
int state_load(struct state *st, struct state_export **ret, size_t *ret_n, char *err, size_t errlen);
int state_save(struct state *st, const struct state_export *v, size_t n);

/* The codec, for the above and the unit test. */
int state_encode(const struct state_export *v, size_t n, char **ret_json);
int state_decode(const char *json, size_t len, struct state_export **ret, size_t *ret_n, char *err, size_t errlen);

/* Deep copies and freeing. */
int state_export_copy(const struct state_export *from, struct state_export *to);
void state_export_clear(struct state_export *e);
void state_exports_free(struct state_export *v, size_t n);
