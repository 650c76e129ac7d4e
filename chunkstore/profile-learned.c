/* SPDX-License-Identifier: Apache-2.0 */
#include "profile-learned.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/err.h"
#include "common/util.h"

#define LEARNED_MAX (PROFILE_HEADER_SIZE + (size_t) PROFILE_MAX_ENTRIES * PROFILE_ENTRY_SIZE)

char *chunkstore_learned_path(struct chunkstore *cs, const struct digest *m) {
        char hex[DIGEST_HEX_LEN + 1], *path;

        if (asprintf(&path, "%s/learned/%s", chunkstore_dir(cs), digest_to_hex(m, hex)) < 0)
                return NULL;
        return path;
}

int chunkstore_learned_put(struct chunkstore *cs, const struct digest *m, const struct profile *p) {
        _cleanup_close_ int dfd = -EBADF;
        _cleanup_free_ void *buf = NULL;
        char hex[DIGEST_HEX_LEN + 1];
        size_t len;
        int r;

        r = profile_encode(p, &buf, &len);
        if (r < 0)
                return r;
        dfd = chunkstore_subdir(cs, "learned", true);
        if (dfd < 0)
                return dfd;
        return write_file_atomic(dfd, digest_to_hex(m, hex), buf, len, 0644);
}

int chunkstore_learned_get(struct chunkstore *cs, const struct digest *m, struct profile **ret, char *err,
                           size_t errlen) {
        _cleanup_close_ int dfd = -EBADF;
        _cleanup_free_ char *buf = NULL;
        char hex[DIGEST_HEX_LEN + 1], why[256];
        size_t len;
        int r;

        dfd = chunkstore_subdir(cs, "learned", false);
        if (dfd < 0)
                return dfd == -ENOENT ? -ENOENT : err_set(err, errlen, dfd, "cannot open the learned profiles: %m");
        r = read_file_all(dfd, digest_to_hex(m, hex), LEARNED_MAX, &buf, &len);
        if (r == -ENOENT)
                return r;
        if (r < 0)
                return err_set(err, errlen, r, "cannot read the learned profile %s: %m", hex);
        r = profile_decode(buf, len, ret, why, sizeof why);
        if (r < 0)
                return err_set(err, errlen, r, "the learned profile %s is malformed: %s", hex, why);
        return 0;
}
