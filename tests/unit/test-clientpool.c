/* SPDX-License-Identifier: Apache-2.0 */
/* blockd/clientpool.c: at the cap the client idle longest makes room; with
 * every client busy a newcomer is refused with a reason; stop ends idle
 * clients at once and abandons (and counts) a command that runs on. */
#undef NDEBUG
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "blockd/clientpool.h"
#include "blockd/sockets.h"
#include "common/sockio.h"
#include "common/util.h"

#define SEC 1000000000ull

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static bool released;
static unsigned running;                /* "hang" commands under way */
static struct clientpool *pool;         /* kept reachable: an abandoning stop leaves it */

/* Lines: "hang" runs a command that ignores the stop until released;
 * anything else is echoed. */
static void serve(struct clientpool_client *c, void *userdata) {
        int fd = clientpool_fd(c), cancel = clientpool_cancel_fd(c);
        char buf[256];
        ssize_t n;

        for (;;) {
                clientpool_set_idle(c, true);
                n = recv_until(fd, buf, sizeof buf - 1, DEADLINE_NEVER, cancel);
                if (!clientpool_set_idle(c, false) || n <= 0)
                        return;
                buf[n] = 0;
                if (strcmp(buf, "hang\n") == 0) {
                        pthread_mutex_lock(&lock);
                        running++;
                        pthread_cond_broadcast(&cond);
                        while (!released)
                                pthread_cond_wait(&cond, &lock);
                        running--;
                        pthread_mutex_unlock(&lock);
                }
                /* Idle before the echo leaves, so that the test knows a
                 * client is idle once it has its echo. */
                clientpool_set_idle(c, true);
                if (send_all(fd, buf, (size_t) n, deadline_after(SEC), cancel) < 0)
                        return;
        }
}

static void refuse(int fd, void *userdata) {
        (void) send_all(fd, "busy\n", 5, 0, -1);
}

static int dial(const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

        assert(fd >= 0);
        snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
        assert(connect(fd, (struct sockaddr *) &sa, sizeof sa) == 0);
        return fd;
}

/* What the server sends until it closes (or the first line with echo). */
static const char *read_reply(int fd, char *buf, size_t size) {
        ssize_t n = recv_until(fd, buf, size - 1, deadline_after(30 * SEC), -1);

        assert(n >= 0);
        buf[n] = 0;
        return buf;
}

static void echo(int fd) {
        char buf[64];

        assert(send_all(fd, "ping\n", 5, DEADLINE_NEVER, -1) == 0);
        assert(!strcmp(read_reply(fd, buf, sizeof buf), "ping\n"));
}

static void wait_running(unsigned n) {
        pthread_mutex_lock(&lock);
        while (running < n)
                pthread_cond_wait(&cond, &lock);
        pthread_mutex_unlock(&lock);
}

int main(void) {
        char dir[] = "/tmp/test-clientpool.XXXXXX", path[128], buf[64];
        struct clientpool_config cfg = { .what = "test", .max_clients = 2, .serve = serve, .refuse = refuse };
        int a, b, c, d, lfd;

        assert(mkdtemp(dir));
        snprintf(path, sizeof path, "%s/s", dir);
        lfd = unix_listen("test", path, 0600);
        assert(lfd >= 0);
        assert(clientpool_start(&cfg, lfd, &pool) == 0);

        /* Two idle clients fill the pool; a third closes the older one. */
        a = dial(path);
        echo(a);
        b = dial(path);
        echo(b);
        c = dial(path);
        echo(c);
        assert(!strcmp(read_reply(a, buf, sizeof buf), ""));   /* a: closed */
        echo(b);
        close(a);

        /* Both busy: a newcomer is told why, and closed. */
        assert(send_all(b, "hang\n", 5, DEADLINE_NEVER, -1) == 0);
        assert(send_all(c, "hang\n", 5, DEADLINE_NEVER, -1) == 0);
        wait_running(2);
        d = dial(path);
        assert(!strcmp(read_reply(d, buf, sizeof buf), "busy\n"));
        assert(!strcmp(read_reply(d, buf, sizeof buf), ""));
        close(d);

        /* Stop: the two commands run on past the grace; both abandoned. */
        {
                uint64_t t0 = now_ns();
                assert(clientpool_stop(pool, SEC / 10) == 2);
                assert(now_ns() - t0 >= SEC / 10);
        }
        /* Their connections were shut down: the answer cannot go out. */
        pthread_mutex_lock(&lock);
        released = true;
        pthread_cond_broadcast(&cond);
        pthread_mutex_unlock(&lock);
        assert(!strcmp(read_reply(b, buf, sizeof buf), ""));
        assert(!strcmp(read_reply(c, buf, sizeof buf), ""));
        close(b);
        close(c);

        /* A pool whose clients are idle stops at once and is freed. */
        unlink(path);
        lfd = unix_listen("test", path, 0600);
        assert(lfd >= 0);
        {
                struct clientpool *p;
                assert(clientpool_start(&cfg, lfd, &p) == 0);
                a = dial(path);
                echo(a);
                assert(clientpool_stop(p, 3600 * SEC) == 0);
                assert(!strcmp(read_reply(a, buf, sizeof buf), ""));
                close(a);
        }
        unlink(path);
        rmdir(dir);
        return 0;
}
