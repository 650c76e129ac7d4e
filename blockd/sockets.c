/* SPDX-License-Identifier: Apache-2.0 */
#include "sockets.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/cleanup.h"

/* Is someone accepting on the socket at path? */
static int socket_is_live(const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_close_ int fd = -EBADF;

        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        strncpy(sa.sun_path, path, sizeof sa.sun_path - 1);
        if (connect(fd, (struct sockaddr *) &sa, sizeof sa) == 0)
                return 1;
        return errno == ECONNREFUSED || errno == ENOENT ? 0 : -errno;
}

int unix_listen(const char *path, unsigned mode) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_close_ int fd = -EBADF;
        struct stat st;
        mode_t old;
        int r;

        if (strlen(path) >= sizeof sa.sun_path)
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);
        if (lstat(path, &st) == 0) {
                if (!S_ISSOCK(st.st_mode))
                        return -EEXIST;
                r = socket_is_live(path);
                if (r < 0)
                        return r;
                if (r > 0)
                        return -EADDRINUSE;
                if (unlink(path) < 0 && errno != ENOENT)
                        return -errno;
        }
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        /* No window in which the socket exists with a wider mode. */
        old = umask(0777 & ~mode);
        r = bind(fd, (struct sockaddr *) &sa, sizeof sa) < 0 ? -errno : 0;
        umask(old);
        if (r < 0)
                return r;
        if (chmod(path, mode) < 0 || listen(fd, 128) < 0) {
                r = -errno;
                (void) unlink(path);
                return r;
        }
        return TAKE_FD(fd);
}

int tcp_listen(const char *host_port, unsigned *ret_port) {
        _cleanup_free_ char *host = NULL;
        const char *colon, *port;
        struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE };
        struct addrinfo *ai = NULL;
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        int fd = -EBADF, one = 1, r;

        colon = strrchr(host_port, ':');
        if (!colon || colon == host_port || !colon[1])
                return -EINVAL;
        port = colon + 1;
        if (host_port[0] == '[') {
                if (colon[-1] != ']')
                        return -EINVAL;
                host = strndup(host_port + 1, (size_t) (colon - host_port - 2));
        } else {
                host = strndup(host_port, (size_t) (colon - host_port));
        }
        if (!host)
                return -ENOMEM;
        r = getaddrinfo(host, port, &hints, &ai);
        if (r != 0)
                return r == EAI_SYSTEM ? -errno : -EADDRNOTAVAIL;
        fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
                r = -errno;
                goto out;
        }
        (void) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 128) < 0 ||
            getsockname(fd, (struct sockaddr *) &ss, &sl) < 0) {
                r = -errno;
                close(fd);
                fd = r;
                goto out;
        }
        if (ret_port)
                *ret_port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *) &ss)->sin6_port)
                                                     : ntohs(((struct sockaddr_in *) &ss)->sin_port);
out:
        freeaddrinfo(ai);
        return fd;
}
