/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Socket I/O with deadlines, for servers whose clients may be hostile or
 * stuck: a request is bounded as a whole by a deadline on the monotonic
 * clock (now_ns()), never per byte, and a send never blocks past its
 * deadline nor raises SIGPIPE. The socket may be blocking or not: every
 * call is MSG_DONTWAIT and waits in poll().
 *
 * cancel_fd (-1 for none) is an fd that becomes readable when the caller
 * should give up (a server stopping); waits then end with -ECANCELED.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* A deadline that never comes. */
#define DEADLINE_NEVER UINT64_MAX

/* now_ns() + ns, saturating. */
uint64_t deadline_after(uint64_t ns);

/* Wait until fd reports one of events (or an error or hang-up), the
 * deadline passes (-ETIMEDOUT) or cancel_fd is readable (-ECANCELED,
 * which wins over a ready fd). Returns fd's revents (> 0) or -errno. */
int poll_until(int fd, short events, uint64_t deadline_ns, int cancel_fd);

/* Send all of buf with MSG_NOSIGNAL: 0, -ETIMEDOUT, -ECANCELED, or the
 * socket's error (-EPIPE, -ECONNRESET, ...). On an error some bytes may
 * have gone. */
int send_all(int fd, const void *buf, size_t len, uint64_t deadline_ns, int cancel_fd);

/* Receive what is there (waiting for at least one byte): the count, 0 at
 * the end of the stream, -ETIMEDOUT, -ECANCELED or the socket's -errno. */
ssize_t recv_until(int fd, void *buf, size_t len, uint64_t deadline_ns, int cancel_fd);
