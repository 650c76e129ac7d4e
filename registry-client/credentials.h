/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Registry credentials: --creds USER:PASS, then auth files in the order
 * containers/image and docker use, and docker credential helpers.
 *
 *   1. --creds USER:PASS (source_options.creds)
 *   2. an explicit file: --authfile (source_options.auth_file), else
 *      $REGISTRY_AUTH_FILE; when one is given, it is the only file read
 *   3. otherwise the first of these that has an entry for the registry:
 *      ${XDG_RUNTIME_DIR}/containers/auth.json (without XDG_RUNTIME_DIR:
 *      /run/containers/UID/auth.json),
 *      ${XDG_CONFIG_HOME:-~/.config}/containers/auth.json,
 *      $DOCKER_CONFIG/config.json (or ~/.docker/config.json)
 *
 * In a file, "credHelpers" {"HOST": "NAME"} wins over "auths" for HOST,
 * then "auths" (keys HOST/ns/repo, HOST/ns, HOST, or a legacy
 * "https://HOST/v1/" URL; the most specific wins) with a base64 "auth" of
 * "USER:PASS" or an "identitytoken", then "credsStore" NAME. A helper is
 * run as `docker-credential-NAME get` with HOST on stdin and answers
 * {"ServerURL","Username","Secret"}; Username "<token>" means Secret is an
 * identity (refresh) token.
 *
 * Secrets are wiped from memory when freed and never logged; the source
 * description ("auth file /x/auth.json", "credential helper pass") is
 * what messages may show.
 */
#pragma once

#include <stddef.h>

#include "source.h"

struct credentials {
        char *username;
        char *password;
        char *identity_token;   /* OAuth2 refresh token, instead of a password */
        char from[256];         /* where they came from, for messages */
};

/* Look up credentials for registry (host[:port]) and repository.
 * 0 and *ret filled, -ENOENT when none are configured, or -errno with a
 * sentence in ret->from (a malformed file: -EBADMSG; a configured helper
 * that is not installed: -ENOPKG, "credential helper docker-credential-X
 * not found in PATH (configured in FILE)"). */
int credentials_find(const struct source_options *o, const char *registry, const char *repository,
                     struct credentials *ret);

/*
 * The pure part, for one file's JSON text: 0 with *ret filled from an
 * "auths" entry, 1 with *ret_helper (malloc'd) naming the helper to run,
 * -ENOENT when the file has nothing for registry, -EBADMSG when malformed.
 */
int auth_file_lookup(const char *text, size_t len, const char *registry, const char *repository,
                     struct credentials *ret, char **ret_helper);

/* Run docker-credential-NAME get for registry. 0, -ENOENT (the helper
 * has nothing for registry), -ENOPKG (no docker-credential-NAME in PATH),
 * -EBADMSG, -errno. */
int credential_helper_get(const char *helper, const char *registry, struct credentials *ret);

/* Split "USER:PASS" (the first ':' separates). */
int credentials_from_pair(const char *pair, struct credentials *ret);

/* Wipe and free the strings. */
void credentials_done(struct credentials *c);
