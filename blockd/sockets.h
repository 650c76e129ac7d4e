/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Listening sockets for the daemon's servers (NBD, control, metrics), and
 * how they outlive a restart. Under systemd the sockets may be passed in
 * (socket activation, or the service's fd store handing back what an
 * earlier blockd stored): a listen call adopts a passed socket bound to
 * the same address instead of binding anew. A socket blockd binds itself
 * goes into the fd store (FDSTORE=1, named after its server) when a
 * service manager listens (NOTIFY_SOCKET), so the next blockd gets it
 * back: connections made while no blockd runs wait in its backlog rather
 * than being refused. A kept socket's path is never unlinked.
 *
 * sockets_take_passed() runs once at start, before any thread; the rest
 * is called from the main thread only.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* Take the sockets passed in (sd_listen_fds_with_names; LISTEN_* is
 * unset so children do not see it). Returns how many, or -errno. */
int sockets_take_passed(void);

/* The address of a passed, not yet adopted listening socket named name
 * ("nbd", "control", "metrics"): a Unix path, or HOST:PORT for TCP.
 * Returns 1 and fills buf, 0 when there is none. kind gets 'u' or 't'. */
int sockets_passed_address(const char *name, size_t index, char *buf, size_t len, char *kind);

/*
 * Create a listening Unix stream socket at path with the given mode (set
 * before anyone can connect), or adopt the passed one bound there. A
 * stale socket (nobody accepting) is replaced; a live one gives
 * -EADDRINUSE; a non-socket file gives -EEXIST. name says whose socket it
 * is (the fd store's name). Returns the fd or -errno.
 */
int unix_listen(const char *name, const char *path, unsigned mode);

/* Listen on "HOST:PORT" or "[V6]:PORT" (PORT may be 0; HOST a name or an
 * address; -ENXIO when the name does not resolve), or adopt the
 * passed socket bound there. Returns the fd or -errno; ret_port gets the
 * bound port. */
int tcp_listen(const char *name, const char *host_port, unsigned *ret_port);

/* Close a listening socket from unix_listen (path) or tcp_listen (path
 * NULL); the path is unlinked unless the socket is kept for the next
 * blockd (passed in, or in the fd store). */
void socket_unlisten(int fd, const char *path);

/* Is fd a socket kept across restarts? */
bool socket_is_kept(int fd);
