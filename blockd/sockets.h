/* SPDX-License-Identifier: Apache-2.0 */
/* Listening sockets for the daemon's servers (NBD, control, metrics). */
#pragma once

/*
 * Create a listening Unix stream socket at path with the given mode (set
 * before anyone can connect). A stale socket (nobody accepting) is
 * replaced; a live one gives -EADDRINUSE; a non-socket file gives -EEXIST.
 * Returns the fd or -errno.
 */
int unix_listen(const char *path, unsigned mode);

/* Listen on "HOST:PORT" or "[V6]:PORT" (PORT may be 0). Returns the fd or
 * -errno; ret_port gets the bound port. */
int tcp_listen(const char *host_port, unsigned *ret_port);
