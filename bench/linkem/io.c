/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A half's buffer and its two syscalls. Two kinds, chosen per half on first
 * use:
 *  - a pipe, filled and drained with splice(2): the bytes never enter
 *    userspace (socket pages are moved, not copied), which roughly doubles
 *    the emulator's ceiling on loopback;
 *  - a ring in memory with readv/writev, for a half whose bytes must be
 *    seen (the flip fault), with --copy, or when the kernel refuses a pipe
 *    that large (unprivileged users past pipe-user-pages-soft).
 * Both hold at most h->cap bytes; the offsets in struct half are the same.
 */
#include "linkem.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/cleanup.h"

/* Make the buffer: a pipe of cap bytes when splice is wanted and
 * possible, else a ring. 0 or -ENOMEM. */
static int half_io_setup(struct half *h) {
        int p[2];

        if (h->use_splice && pipe2(p, O_NONBLOCK | O_CLOEXEC) == 0) {
                if (fcntl(p[1], F_SETPIPE_SZ, (int) h->cap) >= (int) h->cap) {
                        h->pipe[0] = p[0];
                        h->pipe[1] = p[1];
                        return 0;
                }
                (void) close(p[0]);
                (void) close(p[1]);
        }
        h->use_splice = false;
        h->buf = malloc(h->cap);
        return h->buf ? 0 : -ENOMEM;
}

/* Read up to max bytes from h->src into the buffer. The count, 0 at EOF,
 * -EAGAIN when the socket is drained, -ENOBUFS when it is not but the
 * pipe has no slot left (socket pages may fill a pipe's slots before its
 * byte capacity; a write will make room), or another -errno. */
ssize_t half_io_in(struct half *h, size_t max) {
        uint64_t off, first;
        struct iovec iov[2];
        ssize_t n;
        int r;

        if (h->pipe[0] < 0 && !h->buf) {
                r = half_io_setup(h);
                if (r < 0)
                        return r;
        }
        if (h->pipe[0] >= 0) {
                n = splice(h->src, NULL, h->pipe[1], NULL, max, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
                /* EAGAIN with bytes queued on the socket means a full pipe,
                 * but only if the pipe holds something: with an empty pipe
                 * it is a packet that landed in the socket's backlog during
                 * the call, and an EPOLLIN for it is on its way. */
                if (n < 0 && errno == EAGAIN && h->in > h->out) {
                        int queued = 0;

                        if (ioctl(h->src, FIONREAD, &queued) == 0 && queued > 0)
                                return -ENOBUFS;
                }
                return n < 0 ? -errno : n;
        }
        off = h->in & (h->cap - 1);
        first = MIN(max, h->cap - off);
        iov[0] = (struct iovec) { h->buf + off, first };
        iov[1] = (struct iovec) { h->buf, max - first };
        n = readv(h->src, iov, max > first ? 2 : 1);
        return n < 0 ? -errno : n;
}

/* Write up to max buffered bytes to h->dst. The count or -errno
 * (-EAGAIN when the socket is full). */
ssize_t half_io_out(struct half *h, size_t max) {
        uint64_t off, first;
        struct iovec iov[2];
        ssize_t n;

        if (h->pipe[0] >= 0) {
                n = splice(h->pipe[0], NULL, h->dst, NULL, max, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
                return n < 0 ? -errno : n;
        }
        off = h->out & (h->cap - 1);
        first = MIN(max, h->cap - off);
        iov[0] = (struct iovec) { h->buf + off, first };
        iov[1] = (struct iovec) { h->buf, max - first };
        n = writev(h->dst, iov, max > first ? 2 : 1);
        return n < 0 ? -errno : n;
}

/* Release the buffer. Safe to call twice. */
void half_io_free(struct half *h) {
        closep(&h->pipe[0]);
        closep(&h->pipe[1]);
        h->pipe[0] = h->pipe[1] = -EBADF;
        free(h->buf);
        h->buf = NULL;
}
