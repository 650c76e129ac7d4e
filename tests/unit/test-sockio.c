/* SPDX-License-Identifier: Apache-2.0 */
/* common/sockio.c: deadlines bound a whole transfer, a peer that stops
 * reading cannot hold a sender, a closed peer gives EPIPE (not SIGPIPE),
 * and a cancel fd ends a wait at once. */
#undef NDEBUG
#include <assert.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/sockio.h"
#include "common/util.h"

#define MS 1000000ull

static void test_recv(void) {
        int sv[2];
        char buf[16];

        assert(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
        assert(send(sv[1], "abc", 3, 0) == 3);
        assert(recv_until(sv[0], buf, sizeof buf, deadline_after(1000 * MS), -1) == 3);
        assert(!memcmp(buf, "abc", 3));
        /* Nothing there: the deadline ends the wait, and not before it. */
        {
                uint64_t t0 = now_ns(), deadline = t0 + 50 * MS;
                assert(recv_until(sv[0], buf, sizeof buf, deadline, -1) == -ETIMEDOUT);
                assert(now_ns() >= deadline);
        }
        /* A deadline in the past still takes what is there. */
        assert(send(sv[1], "d", 1, 0) == 1);
        assert(recv_until(sv[0], buf, sizeof buf, now_ns() - 1, -1) == 1);
        assert(recv_until(sv[0], buf, sizeof buf, now_ns() - 1, -1) == -ETIMEDOUT);
        close(sv[1]);
        assert(recv_until(sv[0], buf, sizeof buf, DEADLINE_NEVER, -1) == 0);
        close(sv[0]);
}

static void test_send(void) {
        size_t big = 64u << 20;
        char *buf = calloc(1, big);
        int sv[2];

        assert(buf);
        assert(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
        /* The peer never reads: the send ends at its deadline. */
        assert(send_all(sv[0], buf, big, deadline_after(50 * MS), -1) == -ETIMEDOUT);
        /* The peer is gone: an error, and no SIGPIPE (the default action
         * would kill this test). */
        close(sv[1]);
        assert(send_all(sv[0], buf, 10, DEADLINE_NEVER, -1) == -EPIPE);
        close(sv[0]);

        /* A reader that takes everything: the whole buffer arrives. */
        assert(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
        if (fork() == 0) {
                size_t got = 0;
                char rb[65536];
                ssize_t n;
                close(sv[0]);
                while ((n = read(sv[1], rb, sizeof rb)) > 0)
                        got += (size_t) n;
                _exit(got == (4u << 20) ? 0 : 1);
        }
        close(sv[1]);
        assert(send_all(sv[0], buf, 4u << 20, DEADLINE_NEVER, -1) == 0);
        close(sv[0]);
        {
                int st;
                assert(wait(&st) > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
        }
        free(buf);
}

static void test_cancel(void) {
        int sv[2], ev = eventfd(0, EFD_CLOEXEC);
        uint64_t one = 1;
        char buf[8];

        assert(ev >= 0);
        assert(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
        assert(poll_until(sv[0], POLLIN, now_ns() + 20 * MS, ev) == -ETIMEDOUT);
        assert(write(ev, &one, sizeof one) == sizeof one);
        /* Cancelled waits end at once, whatever the deadline. */
        assert(recv_until(sv[0], buf, sizeof buf, DEADLINE_NEVER, ev) == -ECANCELED);
        assert(poll_until(sv[0], POLLIN, DEADLINE_NEVER, ev) == -ECANCELED);
        /* Ready data is still taken without waiting. */
        assert(send(sv[1], "x", 1, 0) == 1);
        assert(recv_until(sv[0], buf, sizeof buf, DEADLINE_NEVER, ev) == 1);
        /* A shut-down socket wakes a waiter too (how servers evict). */
        assert(shutdown(sv[0], SHUT_RDWR) == 0);
        assert(recv_until(sv[0], buf, sizeof buf, DEADLINE_NEVER, -1) == 0);
        close(sv[0]);
        close(sv[1]);
        close(ev);
        assert(deadline_after(UINT64_MAX - 5) == DEADLINE_NEVER);
}

int main(void) {
        signal(SIGPIPE, SIG_DFL);
        test_recv();
        test_send();
        test_cancel();
        return 0;
}
