/* SPDX-License-Identifier: Apache-2.0 */
#include "sockio.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <sys/socket.h>

#include "util.h"

uint64_t deadline_after(uint64_t ns) {
        uint64_t now = now_ns();

        return ns >= DEADLINE_NEVER - now ? DEADLINE_NEVER : now + ns;
}

/* Milliseconds until the deadline, rounded up so that a wait never ends
 * early; -1 for no deadline. */
static int poll_timeout_ms(uint64_t deadline_ns) {
        uint64_t now, ms;

        if (deadline_ns == DEADLINE_NEVER)
                return -1;
        now = now_ns();
        if (now >= deadline_ns)
                return 0;
        ms = (deadline_ns - now + 999999) / 1000000;
        return ms > INT_MAX ? INT_MAX : (int) ms;
}

int poll_until(int fd, short events, uint64_t deadline_ns, int cancel_fd) {
        struct pollfd p[2] = {
                { .fd = fd, .events = events },
                { .fd = cancel_fd, .events = POLLIN },
        };

        for (;;) {
                int n = poll(p, cancel_fd >= 0 ? 2 : 1, poll_timeout_ms(deadline_ns));

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (cancel_fd >= 0 && p[1].revents)
                        return -ECANCELED;
                if (p[0].revents & POLLNVAL)
                        return -EBADF;
                if (p[0].revents)
                        return p[0].revents;
                if (n == 0 && now_ns() >= deadline_ns)
                        return -ETIMEDOUT;
        }
}

int send_all(int fd, const void *buf, size_t len, uint64_t deadline_ns, int cancel_fd) {
        const char *p = buf;

        while (len > 0) {
                ssize_t n = send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
                int r;

                if (n >= 0) {
                        p += n;
                        len -= (size_t) n;
                        continue;
                }
                if (errno == EINTR)
                        continue;
                if (errno != EAGAIN && errno != EWOULDBLOCK)
                        return -errno;
                r = poll_until(fd, POLLOUT, deadline_ns, cancel_fd);
                if (r < 0)
                        return r;
        }
        return 0;
}

ssize_t recv_until(int fd, void *buf, size_t len, uint64_t deadline_ns, int cancel_fd) {
        for (;;) {
                ssize_t n = recv(fd, buf, len, MSG_DONTWAIT);
                int r;

                if (n >= 0)
                        return n;
                if (errno == EINTR)
                        continue;
                if (errno != EAGAIN && errno != EWOULDBLOCK)
                        return -errno;
                r = poll_until(fd, POLLIN, deadline_ns, cancel_fd);
                if (r < 0)
                        return r;
        }
}
