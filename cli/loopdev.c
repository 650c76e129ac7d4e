/* SPDX-License-Identifier: Apache-2.0 */
#include "loopdev.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"

#define ATTACH_TRIES 16

/* Configure loop fd lfd over ffd: LOOP_CONFIGURE (Linux 5.8), else the
 * older SET_FD + SET_STATUS64 pair. */
static int configure(int lfd, int ffd, const struct loop_info64 *info) {
        struct loop_config cfg = { .fd = (uint32_t) ffd, .info = *info };

        if (ioctl(lfd, LOOP_CONFIGURE, &cfg) == 0)
                return 0;
        if (errno != EINVAL && errno != ENOTTY)
                return -errno;
        if (ioctl(lfd, LOOP_SET_FD, ffd) < 0)
                return -errno;
        if (ioctl(lfd, LOOP_SET_STATUS64, info) < 0) {
                int r = -errno;
                (void) ioctl(lfd, LOOP_CLR_FD, 0);
                return r;
        }
        return 0;
}

int loop_attach(const char *path, uint64_t offset, uint64_t size, bool readonly, bool direct_io, char *name,
                size_t namelen) {
        _cleanup_close_ int ctl = -EBADF, ffd = -EBADF;
        struct loop_info64 info = {
                .lo_offset = offset,
                .lo_sizelimit = size,
                .lo_flags = LO_FLAGS_AUTOCLEAR | (readonly ? LO_FLAGS_READ_ONLY : 0) |
                            (direct_io ? LO_FLAGS_DIRECT_IO : 0),
        };
        int r = -EBUSY;

        snprintf((char *) info.lo_file_name, sizeof info.lo_file_name, "%s", path);
        ffd = open(path, (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
        if (ffd < 0)
                return -errno;
        ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
        if (ctl < 0)
                return -errno;
        /* Another process may take the free device between our GET_FREE
         * and CONFIGURE: then it is busy, and we ask again. */
        for (int i = 0; i < ATTACH_TRIES; i++) {
                _cleanup_close_ int lfd = -EBADF;
                int n = ioctl(ctl, LOOP_CTL_GET_FREE);

                if (n < 0)
                        return -errno;
                snprintf(name, namelen, "/dev/loop%d", n);
                lfd = open(name, (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
                if (lfd < 0) {
                        r = -errno;
                        if (r == -ENOENT)
                                continue;       /* udev has not made the node yet */
                        return r;
                }
                r = configure(lfd, ffd, &info);
                if (r == -EBUSY)
                        continue;
                if (r < 0)
                        return r;
                log_debug("loop: %s over %s [%llu, +%llu)%s", name, path, (unsigned long long) offset,
                          (unsigned long long) size, readonly ? " read-only" : "");
                return TAKE_FD(lfd);
        }
        return r;
}

int loop_backing(const char *name, char *buf, size_t len) {
        _cleanup_free_ char *text = NULL;
        char path[128];
        const char *base = strrchr(name, '/');
        size_t n;
        int r;

        snprintf(path, sizeof path, "/sys/block/%s/loop/backing_file", base ? base + 1 : name);
        r = read_file_all(AT_FDCWD, path, 4096, &text, &n);
        if (r == -ENOENT) {
                buf[0] = 0;
                return 0;
        }
        if (r < 0)
                return r;
        while (n && text[n - 1] == '\n')
                text[--n] = 0;
        snprintf(buf, len, "%s", text);
        return 0;
}

int loop_detach(const char *name, const char *backing, unsigned timeout_ms) {
        _cleanup_close_ int fd = -EBADF;
        char cur[4096];
        uint64_t deadline = now_ns() + (uint64_t) timeout_ms * 1000000;
        int r;

        for (;;) {
                r = loop_backing(name, cur, sizeof cur);
                if (r < 0)
                        return r;
                /* The kernel may append " (deleted)"; compare the prefix. */
                if (!cur[0] || strncmp(cur, backing, strlen(backing)) != 0)
                        return 0;
                if (now_ns() >= deadline)
                        break;
                usleep(10 * 1000);
        }
        fd = open(name, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return errno == ENOENT ? 0 : -errno;
        if (ioctl(fd, LOOP_CLR_FD, 0) < 0)
                return errno == ENXIO ? 0 : -errno;
        return 0;
}
