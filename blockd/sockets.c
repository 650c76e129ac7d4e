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

#include <systemd/sd-daemon.h>

#include "common/cleanup.h"
#include "common/util.h"

#define MAX_SOCKETS 16

/* Sockets passed in at start, and the sockets kept for the next blockd. */
static struct passed {
        int fd;
        char name[64];
        bool adopted;
} passed[MAX_SOCKETS];
static size_t n_passed;
static int kept[MAX_SOCKETS];
static size_t n_kept;

int sockets_take_passed(void) {
        char **names = NULL;
        int n = sd_listen_fds_with_names(1, &names);

        if (n <= 0)
                return n;
        for (int i = 0; i < n; i++) {
                int fd = SD_LISTEN_FDS_START + i;

                if (n_passed < MAX_SOCKETS && sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1) > 0) {
                        passed[n_passed].fd = fd;
                        snprintf(passed[n_passed].name, sizeof passed[n_passed].name, "%s",
                                 names && names[i] ? names[i] : "unknown");
                        n_passed++;
                } else {
                        close(fd);      /* not a listening stream socket: nothing of ours */
                }
                if (names)
                        free(names[i]);
        }
        free(names);
        return (int) n_passed;
}

/* "HOST:PORT" of a TCP socket's local address. */
static int inet_address(int fd, char *buf, size_t len) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        char host[NI_MAXHOST], port[NI_MAXSERV];

        if (getsockname(fd, (struct sockaddr *) &ss, &sl) < 0)
                return -errno;
        if (getnameinfo((struct sockaddr *) &ss, sl, host, sizeof host, port, sizeof port,
                        NI_NUMERICHOST | NI_NUMERICSERV) != 0)
                return -EINVAL;
        snprintf(buf, len, ss.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, port);
        return 0;
}

int sockets_passed_address(const char *name, size_t index, char *buf, size_t len, char *kind) {
        for (size_t i = 0; i < n_passed; i++) {
                struct sockaddr_un sa;
                socklen_t sl = sizeof sa;

                if (passed[i].adopted || strcmp(passed[i].name, name) || index-- > 0)
                        continue;
                if (getsockname(passed[i].fd, (struct sockaddr *) &sa, &sl) < 0)
                        return -errno;
                if (sa.sun_family == AF_UNIX) {
                        if (sl <= offsetof(struct sockaddr_un, sun_path) || !sa.sun_path[0])
                                return -EAFNOSUPPORT;   /* unnamed or abstract */
                        snprintf(buf, len, "%.*s", (int) (sl - offsetof(struct sockaddr_un, sun_path)), sa.sun_path);
                        *kind = 'u';
                        return 1;
                }
                *kind = 't';
                return inet_address(passed[i].fd, buf, len) < 0 ? -EINVAL : 1;
        }
        return 0;
}

static void keep(int fd) {
        if (n_kept < MAX_SOCKETS)
                kept[n_kept++] = fd;
}

bool socket_is_kept(int fd) {
        for (size_t i = 0; i < n_kept; i++)
                if (kept[i] == fd)
                        return true;
        return false;
}

/* Hand a socket we bound to the service manager's fd store, if there is
 * one: the next blockd gets it back. */
static void store(const char *name, int fd) {
        char state[128];

        if (!getenv("NOTIFY_SOCKET"))
                return;
        snprintf(state, sizeof state, "FDSTORE=1\nFDNAME=%s", name);
        if (sd_pid_notify_with_fds(0, 0, state, &fd, 1) > 0)
                keep(fd);
}

/* The passed socket that match() accepts; adopted and kept. -1 if none. */
static int adopt(bool (*match)(int fd, const void *u), const void *u) {
        for (size_t i = 0; i < n_passed; i++)
                if (!passed[i].adopted && match(passed[i].fd, u)) {
                        passed[i].adopted = true;
                        keep(passed[i].fd);
                        return passed[i].fd;
                }
        return -1;
}

static bool match_unix(int fd, const void *u) {
        return sd_is_socket_unix(fd, SOCK_STREAM, 1, u, 0) > 0;
}

/* A TCP socket bound to the address (port 0: any port of that family and
 * host). */
static bool match_inet(int fd, const void *u) {
        const struct addrinfo *ai = u;
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;

        if (getsockname(fd, (struct sockaddr *) &ss, &sl) < 0 || ss.ss_family != ai->ai_family)
                return false;
        if (ai->ai_family == AF_INET) {
                const struct sockaddr_in *a = (const void *) &ss, *b = (const void *) ai->ai_addr;
                return a->sin_addr.s_addr == b->sin_addr.s_addr && (!b->sin_port || a->sin_port == b->sin_port);
        }
        if (ai->ai_family == AF_INET6) {
                const struct sockaddr_in6 *a = (const void *) &ss, *b = (const void *) ai->ai_addr;
                return !memcmp(&a->sin6_addr, &b->sin6_addr, sizeof a->sin6_addr) &&
                       (!b->sin6_port || a->sin6_port == b->sin6_port);
        }
        return false;
}

void socket_unlisten(int fd, const char *path) {
        if (fd < 0)
                return;
        if (path && !socket_is_kept(fd))
                (void) unlink(path);
        close(fd);
}

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

int unix_listen(const char *name, const char *path, unsigned mode) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_close_ int fd = -EBADF;
        struct stat st;
        mode_t old;
        int r;

        if (strlen(path) >= sizeof sa.sun_path)
                return -ENAMETOOLONG;
        r = adopt(match_unix, path);
        if (r >= 0)
                return r;
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
        store(name, fd);
        return TAKE_FD(fd);
}

int tcp_listen(const char *name, const char *host_port, unsigned *ret_port) {
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
                return r == EAI_SYSTEM ? -errno : r == EAI_NONAME || r == EAI_AGAIN || r == EAI_FAIL ? -ENXIO : -EADDRNOTAVAIL;
        fd = adopt(match_inet, ai);
        if (fd >= 0) {
                if (getsockname(fd, (struct sockaddr *) &ss, &sl) < 0)
                        sl = 0;
                goto port;
        }
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
        store(name, fd);
port:
        if (ret_port)
                *ret_port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *) &ss)->sin6_port)
                                                     : ntohs(((struct sockaddr_in *) &ss)->sin_port);
out:
        freeaddrinfo(ai);
        return fd;
}
