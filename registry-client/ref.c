/* SPDX-License-Identifier: Apache-2.0 */
#include "ref.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chunkstore/digest.h"
#include "common/cleanup.h"
#include "common/err.h"

void image_ref_free(struct image_ref *r) {
        if (!r)
                return;
        free(r->layout_dir);
        free(r->registry);
        free(r->repository);
        free(r->tag);
        free(r->digest);
        free(r->text);
        free(r);
}

const char *image_ref_reference(const struct image_ref *r) {
        return r->digest ? r->digest : r->tag;
}

int image_ref_tag_valid(const char *tag) {
        size_t n = strlen(tag);

        if (n == 0 || n > 128)
                return 0;
        if (!(tag[0] == '_' || (tag[0] >= 'a' && tag[0] <= 'z') || (tag[0] >= 'A' && tag[0] <= 'Z') ||
              (tag[0] >= '0' && tag[0] <= '9')))
                return 0;
        for (size_t i = 1; i < n; i++) {
                char c = tag[i];
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                      c == '.' || c == '-'))
                        return 0;
        }
        return 1;
}

/* Repository name grammar (distribution spec): path components of
 * [a-z0-9]+ separated by '.', '_', '__' or '-'s, joined by '/'. */
static int repository_valid(const char *s) {
        size_t n = strlen(s);
        int prev_alnum = 0;

        if (n == 0 || n > 255)
                return 0;
        for (size_t i = 0; i < n; i++) {
                char c = s[i];
                int alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');

                if (alnum) {
                        prev_alnum = 1;
                        continue;
                }
                if (!prev_alnum)
                        return 0;
                if (c == '/' || c == '.')
                        prev_alnum = 0;
                else if (c == '_' || c == '-') {
                        /* runs of '-' and up to two '_' are allowed */
                        while (i + 1 < n && (s[i + 1] == '-' || s[i + 1] == '_'))
                                i++;
                        prev_alnum = 0;
                } else {
                        return 0;
                }
        }
        return prev_alnum;
}

static int host_valid(const char *s) {
        const char *colon = strrchr(s, ':');
        size_t hostlen = colon ? (size_t) (colon - s) : strlen(s);

        if (hostlen == 0)
                return 0;
        for (size_t i = 0; i < hostlen; i++) {
                char c = s[i];
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                      c == '-' || c == '[' || c == ']' || (c == ':' && s[0] == '[')))
                        return 0;
        }
        if (colon && !(s[0] == '[' && colon < strchr(s, ']'))) {
                char *end;
                long port = strtol(colon + 1, &end, 10);
                if (end == colon + 1 || *end || port < 1 || port > 65535)
                        return 0;
        }
        return 1;
}

static int split_digest(char *rest, struct image_ref *r, char *err, size_t errlen) {
        char *at = strchr(rest, '@');
        struct digest d;
        int q;

        if (!at)
                return 0;
        q = digest_parse(at + 1, &d);
        if (q == -EOPNOTSUPP)
                return err_set(err, errlen, -EINVAL, "unsupported digest algorithm in '%s' (only sha256)", at + 1);
        if (q < 0)
                return err_set(err, errlen, -EINVAL, "malformed digest '%s' (want sha256:<64 lowercase hex>)", at + 1);
        r->digest = strdup(at + 1);
        if (!r->digest)
                return -ENOMEM;
        *at = 0;
        return 0;
}

static int parse_oci(const char *body, struct image_ref *r, char *err, size_t errlen) {
        _cleanup_free_ char *s = strdup(body);
        char *slash, *colon;
        int q;

        if (!s)
                return -ENOMEM;
        q = split_digest(s, r, err, errlen);
        if (q < 0)
                return q;
        /* A tag is the part after the last ':' that follows the last '/'. */
        slash = strrchr(s, '/');
        colon = strrchr(slash ? slash : s, ':');
        if (colon) {
                if (r->digest)
                        return err_set(err, errlen, -EINVAL, "a reference takes a tag or a digest, not both");
                if (!image_ref_tag_valid(colon + 1))
                        return err_set(err, errlen, -EINVAL, "invalid tag '%s' (want [A-Za-z0-9_][A-Za-z0-9._-]{0,127})",
                                       colon + 1);
                r->tag = strdup(colon + 1);
                if (!r->tag)
                        return -ENOMEM;
                *colon = 0;
        }
        if (!*s)
                return err_set(err, errlen, -EINVAL, "missing directory in oci:DIR[:TAG]");
        r->layout_dir = strdup(s);
        return r->layout_dir ? 0 : -ENOMEM;
}

static int parse_docker(const char *body, struct image_ref *r, char *err, size_t errlen) {
        _cleanup_free_ char *s = strdup(body);
        char *slash, *colon, *repo;
        int q;

        if (!s)
                return -ENOMEM;
        q = split_digest(s, r, err, errlen);
        if (q < 0)
                return q;
        slash = strchr(s, '/');
        if (!slash || slash == s)
                return err_set(err, errlen, -EINVAL, "want docker://HOST[:PORT]/REPO[:TAG|@sha256:HEX]");
        *slash = 0;
        repo = slash + 1;
        if (!host_valid(s))
                return err_set(err, errlen, -EINVAL, "invalid registry host '%s'", s);
        colon = strrchr(repo, ':');
        if (colon) {
                if (r->digest)
                        return err_set(err, errlen, -EINVAL, "a reference takes a tag or a digest, not both");
                if (!image_ref_tag_valid(colon + 1))
                        return err_set(err, errlen, -EINVAL, "invalid tag '%s' (want [A-Za-z0-9_][A-Za-z0-9._-]{0,127})",
                                       colon + 1);
                r->tag = strdup(colon + 1);
                if (!r->tag)
                        return -ENOMEM;
                *colon = 0;
        } else if (!r->digest) {
                r->tag = strdup("latest");
                if (!r->tag)
                        return -ENOMEM;
        }
        if (!repository_valid(repo))
                return err_set(err, errlen, -EINVAL,
                               "invalid repository '%s' (lowercase letters, digits and . _ - separators, '/' between parts)",
                               repo);
        r->registry = strdup(s);
        r->repository = strdup(repo);
        return r->registry && r->repository ? 0 : -ENOMEM;
}

int image_ref_parse(const char *s, struct image_ref **ret, char *err, size_t errlen) {
        struct image_ref *r;
        int q;

        if (!s || !*s)
                return err_set(err, errlen, -EINVAL, "empty reference");
        r = calloc(1, sizeof *r);
        if (!r)
                return -ENOMEM;
        r->text = strdup(s);
        if (!r->text) {
                image_ref_free(r);
                return -ENOMEM;
        }
        if (!strncmp(s, "oci:", 4)) {
                r->transport = REF_OCI_LAYOUT;
                q = parse_oci(s + 4, r, err, errlen);
        } else if (!strncmp(s, "docker://", 9)) {
                r->transport = REF_DOCKER;
                q = parse_docker(s + 9, r, err, errlen);
        } else {
                q = err_set(err, errlen, -EINVAL,
                            "'%s' is not a reference: use oci:DIR[:TAG] or docker://HOST[:PORT]/REPO[:TAG|@sha256:HEX]",
                            s);
        }
        if (q < 0) {
                image_ref_free(r);
                return q;
        }
        *ret = r;
        return 0;
}
