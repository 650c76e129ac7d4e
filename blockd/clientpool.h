/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A bounded set of clients of one listening socket, each served on its
 * own thread: the accept loop, the cap (at the cap, the client idle the
 * longest is closed to make room; with none idle the newcomer is told why
 * it is refused), and a stop that never waits on a client for long. The
 * control socket and the --metrics server use it; each says how to serve
 * one client.
 *
 * A client's thread must do all its waiting through common/sockio.h with
 * clientpool_cancel_fd() (readable once the pool stops), or on its own
 * socket, which is shut down when the client is evicted or the pool stops:
 * either way its I/O ends at once.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

struct clientpool;
struct clientpool_client;

struct clientpool_config {
        const char *what;               /* "control", "metrics": for log messages */
        unsigned max_clients;           /* > 0 */
        /* Serve one client until it is done, on the client's own thread.
         * The pool closes the socket afterwards. */
        void (*serve)(struct clientpool_client *c, void *userdata);
        /* Optional. At the cap with no idle client to close: tell the new
         * client why it is refused (fd takes one non-blocking send; it is
         * closed afterwards). */
        void (*refuse)(int fd, void *userdata);
        void *userdata;
};

/* Serve the clients of listen_fd, which the pool takes over (closed when
 * it stops, also on failure). */
int clientpool_start(const struct clientpool_config *cfg, int listen_fd, struct clientpool **ret);

/*
 * Stop accepting, end every client's I/O (idle clients leave at once) and
 * wait up to grace_ns for the others (a command still running). Returns
 * how many are still running: those are abandoned, and the pool stays
 * allocated for them (the caller is about to exit). NULL-safe.
 */
unsigned clientpool_stop(struct clientpool *p, uint64_t grace_ns);

/* For serve(): the client's socket, and the fd that becomes readable when
 * the pool stops (for common/sockio.h). */
int clientpool_fd(const struct clientpool_client *c);
int clientpool_cancel_fd(const struct clientpool_client *c);

/* Mark the client idle (between requests: it may be closed to make room
 * for a new client) or busy. Marking it busy returns false when it was
 * evicted meanwhile: then serve() must return. */
bool clientpool_set_idle(struct clientpool_client *c, bool idle);
