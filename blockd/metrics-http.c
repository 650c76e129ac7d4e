/* SPDX-License-Identifier: Apache-2.0 */
/* The metrics over HTTP: --metrics HOST:PORT, and GET on the control
 * socket. One request per connection; clients served concurrently up to
 * a cap (blockd/clientpool.h); the request head must arrive, and the
 * answer leave, within the request timeout. */
#include "metrics.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clientpool.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "common/sockio.h"
#include "common/util.h"
#include "sockets.h"

#define HEAD_MAX 8192

struct metrics_http {
        struct metrics_sources src;
        uint64_t request_timeout_ns;
        struct clientpool *pool;
};

void metrics_http_answer(const struct metrics_sources *d, int fd, const char *line, uint64_t deadline_ns,
                         int cancel_fd) {
        _cleanup_free_ char *body = NULL;
        char head[256], path[256] = "";
        size_t len = 0;
        int n;

        if (sscanf(line, "GET %255s", path) != 1 || (strcmp(path, "/metrics") != 0 && strcmp(path, "/") != 0)) {
                static const char nf[] = "HTTP/1.0 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 30\r\n"
                                         "Connection: close\r\n\r\nonly GET /metrics is served\r\n\r\n";
                (void) send_all(fd, nf, sizeof nf - 1, deadline_ns, cancel_fd);
                return;
        }
        if (metrics_render(d, &body, &len) < 0) {
                static const char err[] = "HTTP/1.0 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n";
                (void) send_all(fd, err, sizeof err - 1, deadline_ns, cancel_fd);
                return;
        }
        n = snprintf(head, sizeof head,
                     "HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n",
                     len);
        if (send_all(fd, head, (size_t) n, deadline_ns, cancel_fd) < 0 ||
            send_all(fd, body, len, deadline_ns, cancel_fd) < 0)
                log_debug("Metrics: a client did not take its answer within the request timeout");
}

/* One client: the request head (up to the empty line) within the request
 * timeout, however it trickles in, then the answer. While its head comes
 * in a client counts as idle: at the cap the one that has taken longest
 * makes room (a scraper sends its head at once; one that dribbles is
 * what fills the slots). */
static void serve(struct clientpool_client *pc, void *userdata) {
        struct metrics_http *m = userdata;
        int fd = clientpool_fd(pc), cancel = clientpool_cancel_fd(pc);
        uint64_t deadline = deadline_after(m->request_timeout_ns);
        char buf[HEAD_MAX];
        size_t len = 0;

        clientpool_set_idle(pc, true);

        while (len < sizeof buf - 1) {
                ssize_t n = recv_until(fd, buf + len, sizeof buf - 1 - len, deadline, cancel);
                if (n == -ETIMEDOUT)
                        log_debug("Metrics: a client did not send its request within the request timeout");
                if (n <= 0)
                        return;
                len += (size_t) n;
                buf[len] = 0;
                if (strstr(buf, "\r\n\r\n") || strstr(buf, "\n\n"))
                        break;
        }
        if (!clientpool_set_idle(pc, false))
                return;
        metrics_http_answer(&m->src, fd, buf, deadline_after(m->request_timeout_ns), cancel);
}

/* At the cap with every client taking its answer: 503, in one send that
 * cannot block. */
static void refuse(int fd, void *userdata) {
        static const char busy[] = "HTTP/1.0 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Type: text/plain\r\n"
                                   "Content-Length: 54\r\nConnection: close\r\n\r\n"
                                   "too many metrics clients (blockd --metrics-max-clients)\n";

        (void) send_all(fd, busy, sizeof busy - 1, 0, -1);
}

int metrics_http_start(const struct metrics_sources *src, const char *host_port, unsigned max_clients,
                       uint64_t request_timeout_ns, struct metrics_http **ret, unsigned *ret_port) {
        struct metrics_http *m = calloc(1, sizeof *m);
        struct clientpool_config pcfg = { .what = "Metrics", .serve = serve, .refuse = refuse };
        int fd, r;

        if (!m)
                return -ENOMEM;
        m->src = *src;
        m->request_timeout_ns = request_timeout_ns ? request_timeout_ns
                                                   : CONTROL_REQUEST_TIMEOUT_DEFAULT_S * 1000000000ull;
        fd = tcp_listen("metrics", host_port, ret_port);
        if (fd < 0) {
                free(m);
                return fd;
        }
        pcfg.max_clients = max_clients ? max_clients : METRICS_MAX_CLIENTS_DEFAULT;
        pcfg.userdata = m;
        r = clientpool_start(&pcfg, fd, &m->pool);
        if (r < 0) {
                free(m);
                return r;
        }
        *ret = m;
        return 0;
}

unsigned metrics_http_stop(struct metrics_http *m) {
        unsigned left;

        if (!m)
                return 0;
        left = clientpool_stop(m->pool, m->request_timeout_ns);
        if (left == 0)
                free(m);
        return left;
}
