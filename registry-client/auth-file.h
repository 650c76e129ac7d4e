/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Writing the containers auth file (containers-auth.json(5)) the way
 * skopeo/podman login and logout do, so either tool reads what the other
 * wrote. Reading it is credentials.h's.
 *
 * Where: --authfile, else $REGISTRY_AUTH_FILE, else
 * ${XDG_RUNTIME_DIR}/containers/auth.json, else
 * /run/containers/UID/auth.json. The file is rewritten atomically (temp
 * file, fsync, rename) with mode 0600, its directory created 0700; keys
 * other than "auths" (credHelpers, credsStore, ...) are kept.
 */
#pragma once

#include <stddef.h>

/* The file login and logout write: explicit (may be NULL), else the
 * defaults above. Returns buf. */
const char *auth_file_write_path(const char *explicit_file, char *buf, size_t len);

/* "docker://host:5000/ns/" or "https://host/v1/" -> "host:5000/ns": the
 * key login writes, as skopeo normalises it. -EINVAL for an empty one. */
int auth_file_key(const char *registry, char *buf, size_t len);

/* Store USER:PASS for key (base64 "auth"). -ENOTSUP with a sentence in err
 * when the file configures a credential helper for key's host (login would
 * be ignored; store into the helper instead), -EBADMSG for a file that is
 * not JSON, -errno. */
int auth_file_store(const char *path, const char *key, const char *user, const char *pass, char *err,
                    size_t errlen);

/* Remove key's entry, or every "auths" entry when key is NULL. -ENOENT
 * when there was none (not logged in), -EBADMSG, -errno; err says which. */
int auth_file_remove(const char *path, const char *key, char *err, size_t errlen);
