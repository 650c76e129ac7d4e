/* SPDX-License-Identifier: Apache-2.0 */
#include "meta.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"

int chunkstore_meta_put(struct chunkstore *cs, const struct digest *d, const void *buf, size_t len, unsigned flags) {
        _cleanup_close_ int dfd = -EBADF;
        char hex[DIGEST_HEX_LEN + 1];
        struct digest got;
        int r;

        if (!(flags & META_VERIFIED)) {
                digest_compute(buf, len, &got);
                if (!digest_equal(&got, d))
                        return -EBADMSG;
        }
        dfd = chunkstore_subdir(cs, "meta", true);
        if (dfd < 0)
                return dfd;
        digest_to_hex(d, hex);
        if (faccessat(dfd, hex, F_OK, 0) == 0)
                return 0;
        r = write_file_atomic_full(dfd, hex, buf, len, 0644, !(flags & META_NOSYNC));
        if (r < 0)
                return r;
        if (!(flags & META_NOSYNC) && fsync(dfd) < 0)
                return -errno;
        log_debug("meta: stored %s (%zu bytes%s)", hex, len, flags & META_NOSYNC ? ", not yet synced" : "");
        return 0;
}

int chunkstore_meta_sync(struct chunkstore *cs, const struct digest *d, size_t n) {
        _cleanup_close_ int dfd = -EBADF;
        char hex[DIGEST_HEX_LEN + 1];

        dfd = chunkstore_subdir(cs, "meta", false);
        if (dfd < 0)
                return dfd == -ENOENT ? 0 : dfd;
        for (size_t i = 0; i < n; i++) {
                _cleanup_close_ int fd = openat(dfd, digest_to_hex(&d[i], hex), O_RDONLY | O_CLOEXEC);
                if (fd < 0 && errno == ENOENT)
                        continue;
                if (fd < 0 || fsync(fd) < 0)
                        return -errno;
        }
        return fsync(dfd) < 0 ? -errno : 0;
}

int chunkstore_meta_get(struct chunkstore *cs, const struct digest *d, size_t max, void **ret_buf, size_t *ret_len) {
        _cleanup_close_ int dfd = -EBADF;
        char hex[DIGEST_HEX_LEN + 1], *buf = NULL;
        struct digest got;
        size_t len;
        int r;

        dfd = chunkstore_subdir(cs, "meta", false);
        if (dfd < 0)
                return dfd == -ENOENT ? -ENOENT : dfd;
        digest_to_hex(d, hex);
        r = read_file_all(dfd, hex, max, &buf, &len);
        if (r < 0)
                return r == -EFBIG ? -ENOENT : r;
        digest_compute(buf, len, &got);
        if (!digest_equal(&got, d)) {
                log_debug("meta: %s is damaged; removed", hex);
                (void) unlinkat(dfd, hex, 0);
                free(buf);
                return -ENOENT;
        }
        *ret_buf = buf;
        *ret_len = len;
        return 0;
}

int chunkstore_meta_has(struct chunkstore *cs, const struct digest *d) {
        _cleanup_close_ int dfd = -EBADF;
        char hex[DIGEST_HEX_LEN + 1];

        dfd = chunkstore_subdir(cs, "meta", false);
        if (dfd < 0)
                return dfd == -ENOENT ? 0 : dfd;
        digest_to_hex(d, hex);
        if (faccessat(dfd, hex, F_OK, 0) == 0)
                return 1;
        return errno == ENOENT ? 0 : -errno;
}
