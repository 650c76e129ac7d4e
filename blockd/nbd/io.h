/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The byte stream under an NBD connection: a socket, plain or TLS. One
 * reader and any number of writers may use it at once (writers serialise
 * whole replies among themselves; this layer only keeps OpenSSL safe, as
 * an SSL object must not be entered by two threads at once: TLS sockets
 * are non-blocking and every SSL call holds ssl_lock, waiting in poll()
 * with the lock released).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <pthread.h>
#include <openssl/ssl.h>

#include "tls.h"

struct nbdsrv_io {
        int fd;
        SSL *ssl;                       /* NULL until STARTTLS */
        pthread_mutex_t ssl_lock;
};

void nbdsrv_io_init(struct nbdsrv_io *io, int fd);
/* Shut TLS down (best effort) and close the socket. */
void nbdsrv_io_close(struct nbdsrv_io *io);

/* Read some bytes: >0, 0 at end of stream, or -errno. */
ssize_t nbdsrv_io_recv(struct nbdsrv_io *io, void *buf, size_t len);
/* Write all of iov (which is consumed). 0 or -errno. more: more data of
 * the same reply follows (MSG_MORE). */
int nbdsrv_io_writev(struct nbdsrv_io *io, struct iovec *iov, int n, int more);
/* Send len bytes of fd at off. Plain sockets only (-EOPNOTSUPP with TLS).
 * Returns 0; -EPIPE style errors for the socket; -ENODATA if the file
 * ended early; other -errno from reading the file. */
int nbdsrv_io_sendfile(struct nbdsrv_io *io, int fd, uint64_t off, size_t len);

/* Upgrade to TLS (after NBD_REP_ACK to NBD_OPT_STARTTLS). */
int nbdsrv_io_starttls(struct nbdsrv_io *io, struct nbdsrv_tls *tls, char *err, size_t errlen);
static inline int nbdsrv_io_is_tls(const struct nbdsrv_io *io) {
        return io->ssl != NULL;
}
