/* SPDX-License-Identifier: Apache-2.0 */
/*
 * containers-registries.conf(5), the part a puller needs: for a docker://
 * name (HOST[:PORT]/REPO), the [[registry]] entry whose prefix matches it
 * best, with its location (a rewrite of the origin), insecure, blocked,
 * and its [[registry.mirror]] list in order.
 *
 * Files read (regconf_load): $CONTAINERS_REGISTRIES_CONF alone when set;
 * else ~/.config/containers/registries.conf if it exists, otherwise
 * /etc/containers/registries.conf, then the drop-ins *.conf of
 * /etc/containers/registries.conf.d and ~/.config/containers/registries.conf.d
 * in name order. An entry with the same prefix as an earlier one replaces it.
 *
 * Not thread-safe per object; a loaded regconf is read-only.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

enum regconf_pull {
        REGCONF_PULL_ALL,               /* digests and tags (the default) */
        REGCONF_PULL_DIGEST_ONLY,       /* only references by digest (and blobs) */
        REGCONF_PULL_TAG_ONLY,          /* only references by tag (and blobs) */
};

struct regconf_mirror {
        char *location;                 /* HOST[:PORT][/NAMESPACE] */
        bool insecure;
        enum regconf_pull pull;
};

struct regconf_registry {
        char *prefix;                   /* as written, or the location when absent */
        char *location;                 /* NULL: the prefix itself */
        bool insecure, blocked;
        bool digest_only;               /* mirror-by-digest-only (the older key) */
        struct regconf_mirror *mirrors;
        size_t n_mirrors;
        char *file;                     /* where it was defined, for messages */
};

struct regconf {
        struct regconf_registry *regs;
        size_t n_regs;
};

void regconf_free(struct regconf *c);

/* Parse one file's text (len bytes, NUL not needed) into c, merging by
 * prefix. file names it in messages. -EINVAL with a sentence in err
 * ("FILE:LINE: ...") on a syntax error or a value of the wrong type;
 * unknown keys and tables are ignored. */
int regconf_parse(struct regconf *c, const char *text, size_t len, const char *file, char *err, size_t errlen);

/* Read the files listed above into *ret (an empty configuration when
 * none exists). A file that exists but cannot be read or parsed is an
 * error, described in err. */
int regconf_load(struct regconf **ret, char *err, size_t errlen);

/* The entry for name ("HOST[:PORT]/REPO"), or NULL: the longest matching
 * prefix (at a '/' boundary; "*.example.com" matches any host under it). */
const struct regconf_registry *regconf_find(const struct regconf *c, const char *name);

/* name rewritten from the entry's prefix to location (malloc'd in *ret):
 * "mirror:5000/ns" + the rest of name after the prefix. 0 or -ENOMEM. */
int regconf_rewrite(const struct regconf_registry *e, const char *location, const char *name, char **ret);
