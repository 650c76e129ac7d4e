/* SPDX-License-Identifier: Apache-2.0 */
#include "io.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>

#define MIN_INT(n) ((n) > (size_t) 0x40000000 ? 0x40000000 : (n))

void nbdsrv_io_init(struct nbdsrv_io *io, int fd) {
        memset(io, 0, sizeof *io);
        io->fd = fd;
        pthread_mutex_init(&io->ssl_lock, NULL);
}

void nbdsrv_io_close(struct nbdsrv_io *io) {
        if (io->ssl) {
                pthread_mutex_lock(&io->ssl_lock);
                ERR_clear_error();
                (void) SSL_shutdown(io->ssl);
                SSL_free(io->ssl);
                io->ssl = NULL;
                pthread_mutex_unlock(&io->ssl_lock);
        }
        if (io->fd >= 0)
                close(io->fd);
        io->fd = -EBADF;
        pthread_mutex_destroy(&io->ssl_lock);
}

/* Wait for the socket to become readable or writable. */
static int wait_fd(struct nbdsrv_io *io, short events, int timeout_ms) {
        struct pollfd p = { .fd = io->fd, .events = events };
        int r;

        do
                r = poll(&p, 1, timeout_ms);
        while (r < 0 && errno == EINTR);
        if (r < 0)
                return -errno;
        if (r == 0)
                return -ETIMEDOUT;
        return 0;
}

/* Turn an SSL result into "retry after waiting for events" (>0), or an
 * error. Caller holds ssl_lock. */
static int ssl_status(SSL *ssl, int ret, short *events) {
        int e = SSL_get_error(ssl, ret);

        switch (e) {
        case SSL_ERROR_WANT_READ:
                *events = POLLIN;
                return 1;
        case SSL_ERROR_WANT_WRITE:
                *events = POLLOUT;
                return 1;
        case SSL_ERROR_ZERO_RETURN:
                return 0;
        case SSL_ERROR_SYSCALL:
                return errno ? -errno : 0;
        default:
                return -EPROTO;
        }
}

ssize_t nbdsrv_io_recv(struct nbdsrv_io *io, void *buf, size_t len) {
        ssize_t n;

        if (!io->ssl) {
                do
                        n = recv(io->fd, buf, len, 0);
                while (n < 0 && errno == EINTR);
                if (n < 0)
                        return errno == EAGAIN || errno == EWOULDBLOCK ? -ETIMEDOUT : -errno;
                return n;
        }
        for (;;) {
                short events = 0;
                int st, ret;

                pthread_mutex_lock(&io->ssl_lock);
                ERR_clear_error();
                ret = SSL_read(io->ssl, buf, (int) MIN_INT(len));
                st = ret > 0 ? 0 : ssl_status(io->ssl, ret, &events);
                pthread_mutex_unlock(&io->ssl_lock);
                if (ret > 0)
                        return ret;
                if (st <= 0)
                        return st;
                st = wait_fd(io, events, -1);
                if (st < 0)
                        return st;
        }
}

int nbdsrv_io_writev(struct nbdsrv_io *io, struct iovec *iov, int n, int more) {
        while (n > 0 && iov[0].iov_len == 0) {
                iov++;
                n--;
        }
        if (!io->ssl) {
                while (n > 0) {
                        struct msghdr m = { .msg_iov = iov, .msg_iovlen = (size_t) (n > 1024 ? 1024 : n) };
                        ssize_t w = sendmsg(io->fd, &m, MSG_NOSIGNAL | (more ? MSG_MORE : 0));

                        if (w < 0) {
                                if (errno == EINTR)
                                        continue;
                                return -errno;
                        }
                        while (n > 0 && (size_t) w >= iov[0].iov_len) {
                                w -= (ssize_t) iov[0].iov_len;
                                iov++;
                                n--;
                        }
                        if (n > 0) {
                                iov[0].iov_base = (char *) iov[0].iov_base + w;
                                iov[0].iov_len -= (size_t) w;
                        }
                }
                return 0;
        }
        for (; n > 0; iov++, n--) {
                const char *p = iov[0].iov_base;
                size_t left = iov[0].iov_len;

                while (left > 0) {
                        short events = 0;
                        int st, ret;

                        pthread_mutex_lock(&io->ssl_lock);
                        ERR_clear_error();
                        ret = SSL_write(io->ssl, p, (int) MIN_INT(left));
                        st = ret > 0 ? 0 : ssl_status(io->ssl, ret, &events);
                        pthread_mutex_unlock(&io->ssl_lock);
                        if (ret > 0) {
                                p += ret;
                                left -= (size_t) ret;
                                continue;
                        }
                        if (st <= 0)
                                return st < 0 ? st : -EPIPE;
                        st = wait_fd(io, events, -1);
                        if (st < 0)
                                return st;
                }
        }
        return 0;
}

int nbdsrv_io_sendfile(struct nbdsrv_io *io, int fd, uint64_t off, size_t len) {
        off_t o = (off_t) off;

        if (io->ssl)
                return -EOPNOTSUPP;
        while (len > 0) {
                ssize_t n = sendfile(io->fd, fd, &o, len);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        return -ENODATA;
                len -= (size_t) n;
        }
        return 0;
}

int nbdsrv_io_starttls(struct nbdsrv_io *io, struct nbdsrv_tls *tls, char *err, size_t errlen) {
        SSL *ssl;
        int r, fl;

        r = nbdsrv_tls_accept(tls, io->fd, &ssl, err, errlen);
        if (r < 0)
                return r;
        fl = fcntl(io->fd, F_GETFL);
        if (fl < 0 || fcntl(io->fd, F_SETFL, fl | O_NONBLOCK) < 0) {
                r = -errno;
                SSL_free(ssl);
                return r;
        }
        io->ssl = ssl;
        return 0;
}
