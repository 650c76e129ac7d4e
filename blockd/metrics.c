/* SPDX-License-Identifier: Apache-2.0 */
#include "metrics.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"
#include "sched.h"
#include "sockets.h"

static void metric_head(FILE *f, const char *name, const char *type, const char *help) {
        fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void metric(FILE *f, const char *name, const char *type, const char *help, uint64_t v) {
        metric_head(f, name, type, help);
        fprintf(f, "%s %llu\n", name, (unsigned long long) v);
}

/* Per-export metrics: collected first, printed grouped by metric name. */
struct export_row {
        char name[160];
        uint64_t size;
        struct export_stats st;
};

struct rows {
        struct export_row *r;
        size_t n, cap;
};

static void collect(struct export *e, void *ctx) {
        struct rows *rows = ctx;

        if (rows->n == rows->cap) {
                size_t cap = rows->cap ? rows->cap * 2 : 8;
                struct export_row *r = realloc(rows->r, cap * sizeof *r);
                if (!r)
                        return;
                rows->r = r;
                rows->cap = cap;
        }
        snprintf(rows->r[rows->n].name, sizeof rows->r[rows->n].name, "%s", export_name(e));
        rows->r[rows->n].size = export_size(e);
        export_get_stats(e, &rows->r[rows->n].st);
        rows->n++;
}

#define EXPORT_METRIC(f, rows, mname, type, help, expr)                                                  \
        do {                                                                                             \
                metric_head(f, mname, type, help);                                                       \
                for (size_t i_ = 0; i_ < (rows).n; i_++) {                                               \
                        const struct export_row *row = &(rows).r[i_];                                    \
                        fprintf(f, "%s{export=\"%s\"} %llu\n", mname, row->name, (unsigned long long) (expr)); \
                }                                                                                        \
        } while (0)

static uint64_t resident_bytes(void) {
        _cleanup_fclose_ FILE *f = fopen("/proc/self/statm", "re");
        unsigned long long size, res;

        if (!f || fscanf(f, "%llu %llu", &size, &res) != 2)
                return 0;
        return res * (uint64_t) sysconf(_SC_PAGESIZE);
}

int metrics_render(struct blockd *d, char **ret, size_t *ret_len) {
        struct rows rows = { 0 };
        struct nbdsrv_stats ns = { 0 };
        struct chunkfd_stats fs = { 0 };
        char *buf = NULL;
        size_t len = 0;
        FILE *f;

        exports_for_each(d->exports, collect, &rows);
        if (d->nbd)
                nbdsrv_get_stats(d->nbd, &ns);
        chunkfd_get_stats(d->fds, &fs);

        f = open_memstream(&buf, &len);
        if (!f) {
                free(rows.r);
                return -ENOMEM;
        }
        metric(f, "hocus_blk_uptime_seconds", "gauge", "Seconds since blockd started.",
               (now_ns() - d->start_ns) / 1000000000ull);
        metric(f, "hocus_blk_resident_memory_bytes", "gauge", "Resident memory of blockd.", resident_bytes());
        metric(f, "hocus_blk_exports", "gauge", "Exports attached.", rows.n);
        metric(f, "hocus_blk_nbd_connections", "gauge", "NBD connections open.", ns.connections);
        metric(f, "hocus_blk_nbd_connections_total", "counter", "NBD connections accepted.", ns.connections_total);
        metric(f, "hocus_blk_nbd_handshake_failures_total", "counter", "NBD handshakes that failed.",
               ns.handshake_failures);
        metric(f, "hocus_blk_nbd_protocol_errors_total", "counter",
               "NBD connections dropped for breaking the protocol.", ns.protocol_errors);
        metric(f, "hocus_blk_nbd_requests_total", "counter", "NBD requests received.", ns.requests);
        metric(f, "hocus_blk_chunkfd_open", "gauge", "Chunk store entries held open.", fs.open);
        metric(f, "hocus_blk_chunkfd_hits_total", "counter", "Chunk lookups served by an open entry.", fs.hits);
        metric(f, "hocus_blk_chunkfd_opens_total", "counter", "Chunk store entries opened.", fs.opens);
        metric(f, "hocus_blk_chunkfd_verified_total", "counter", "Chunk store entries hashed before first use.",
               fs.verified);
        metric(f, "hocus_blk_chunkfd_damaged_total", "counter", "Chunk store entries found damaged and dropped.",
               fs.damaged);
        metric(f, "hocus_blk_chunkfd_evictions_total", "counter", "Open entries closed to stay within the bound.",
               fs.evictions);
        if (d->sched) {
                struct sched_stats ss;

                sched_get_stats(d->sched, &ss);
                metric(f, "hocus_blk_fetch_window", "gauge",
                       "Profile and background requests allowed in flight (from the bandwidth-delay product).", ss.window);
                metric_head(f, "hocus_blk_fetch_inflight", "gauge", "Range requests in flight (until decoded), by class.");
                for (int c = 0; c < _SCHED_CLASS_MAX; c++)
                        fprintf(f, "hocus_blk_fetch_inflight{class=\"%s\"} %u\n", sched_class_name(c), ss.inflight[c]);
                metric(f, "hocus_blk_fetch_demand_queued", "gauge", "Demand chunk fetches waiting to start.",
                       ss.demand_queued);
                metric(f, "hocus_blk_fetch_readers_waiting", "gauge", "Reads waiting for a fetch.", ss.demand_waiting);
                metric_head(f, "hocus_blk_fetch_bandwidth_bytes_per_second", "gauge",
                            "Estimated bandwidth to the sources (0: no estimate yet).");
                fprintf(f, "hocus_blk_fetch_bandwidth_bytes_per_second %.0f\n", ss.bandwidth);
                metric_head(f, "hocus_blk_fetch_rtt_seconds", "gauge",
                            "Estimated round trip of a request (0: no estimate yet).");
                fprintf(f, "hocus_blk_fetch_rtt_seconds %.6f\n", ss.rtt);
                metric(f, "hocus_blk_fetch_requests_total", "counter", "Range requests made.", ss.requests);
                metric(f, "hocus_blk_fetch_bytes_total", "counter", "Stored bytes fetched.", ss.bytes);
                metric(f, "hocus_blk_fetch_errors_total", "counter", "Range requests that failed.", ss.errors);
                metric(f, "hocus_blk_fetch_retries_total", "counter", "Chunk fetches retried for a waiting reader.",
                       ss.retries);
                metric(f, "hocus_blk_fetch_digest_mismatches_total", "counter",
                       "Fetched chunks that did not match their digest.", ss.mismatches);
                metric(f, "hocus_blk_fetch_timeouts_total", "counter", "Reads that failed at the fetch timeout.",
                       ss.timeouts);
        }

        EXPORT_METRIC(f, rows, "hocus_blk_export_size_bytes", "gauge", "Size of the export.", row->size);
        EXPORT_METRIC(f, rows, "hocus_blk_export_clients", "gauge", "Clients connected to the export.",
                      row->st.clients);
        metric_head(f, "hocus_blk_export_requests_total", "counter", "Requests by operation.");
        for (size_t i = 0; i < rows.n; i++) {
                const struct export_row *row = &rows.r[i];
                const struct {
                        const char *op;
                        uint64_t v;
                } ops[] = {
                        { "read", row->st.reads },   { "write", row->st.writes },
                        { "trim", row->st.trims },   { "zero", row->st.zeroes },
                        { "flush", row->st.flushes }, { "block_status", row->st.block_status },
                };
                for (size_t k = 0; k < ARRAY_SIZE(ops); k++)
                        fprintf(f, "hocus_blk_export_requests_total{export=\"%s\",op=\"%s\"} %llu\n", row->name,
                                ops[k].op, (unsigned long long) ops[k].v);
        }
        EXPORT_METRIC(f, rows, "hocus_blk_export_read_bytes_total", "counter", "Bytes served to clients.",
                      row->st.bytes_read);
        EXPORT_METRIC(f, rows, "hocus_blk_export_written_bytes_total", "counter", "Bytes written by clients.",
                      row->st.bytes_written);
        EXPORT_METRIC(f, rows, "hocus_blk_export_cache_hits_total", "counter",
                      "Chunk reads served from the local chunk store.", row->st.cache_hits);
        EXPORT_METRIC(f, rows, "hocus_blk_export_cache_misses_total", "counter",
                      "Chunks fetched because a read needed them (demand fetches).", row->st.cache_misses);
        EXPORT_METRIC(f, rows, "hocus_blk_export_fetched_bytes_total", "counter",
                      "Stored (compressed) bytes fetched from the source.", row->st.bytes_fetched);
        EXPORT_METRIC(f, rows, "hocus_blk_export_errors_total", "counter", "Requests that failed.", row->st.errors);
        EXPORT_METRIC(f, rows, "hocus_blk_export_prefetched_chunks_total", "counter",
                      "Chunks fetched by the boot-profile prefetch (before a reader asked).", row->st.prefetch_fetched);
        EXPORT_METRIC(f, rows, "hocus_blk_export_prefetched_bytes_total", "counter",
                      "Stored bytes fetched by the boot-profile prefetch.", row->st.prefetch_bytes);
        EXPORT_METRIC(f, rows, "hocus_blk_export_prefetch_queued_chunks", "gauge",
                      "Chunks of the current prefetch list.", row->st.prefetch_queued);
        EXPORT_METRIC(f, rows, "hocus_blk_export_prefetch_done_chunks", "gauge",
                      "Chunks of the current prefetch list processed so far.", row->st.prefetch_done);
        /* The fetch scheduler, per export and class. */
        metric_head(f, "hocus_blk_export_fetch_requests_total", "counter", "Range requests made, by fetch class.");
        for (size_t i = 0; i < rows.n; i++) {
                const struct export_row *row = &rows.r[i];
                fprintf(f, "hocus_blk_export_fetch_requests_total{export=\"%s\",class=\"demand\"} %llu\n", row->name,
                        (unsigned long long) row->st.demand_requests);
                fprintf(f, "hocus_blk_export_fetch_requests_total{export=\"%s\",class=\"profile\"} %llu\n", row->name,
                        (unsigned long long) row->st.profile_requests);
                fprintf(f, "hocus_blk_export_fetch_requests_total{export=\"%s\",class=\"background\"} %llu\n", row->name,
                        (unsigned long long) row->st.background_requests);
        }
        metric_head(f, "hocus_blk_export_fetch_bytes_total", "counter", "Stored bytes fetched, by fetch class.");
        for (size_t i = 0; i < rows.n; i++) {
                const struct export_row *row = &rows.r[i];
                fprintf(f, "hocus_blk_export_fetch_bytes_total{export=\"%s\",class=\"demand\"} %llu\n", row->name,
                        (unsigned long long) row->st.demand_bytes);
                fprintf(f, "hocus_blk_export_fetch_bytes_total{export=\"%s\",class=\"profile\"} %llu\n", row->name,
                        (unsigned long long) row->st.prefetch_bytes);
                fprintf(f, "hocus_blk_export_fetch_bytes_total{export=\"%s\",class=\"background\"} %llu\n", row->name,
                        (unsigned long long) row->st.background_bytes);
        }
        EXPORT_METRIC(f, rows, "hocus_blk_export_needed_bytes_total", "counter",
                      "Raw bytes of the distinct chunks clients read (the working set).", row->st.bytes_needed);
        EXPORT_METRIC(f, rows, "hocus_blk_export_hydrated_bytes", "gauge",
                      "Raw bytes of the image's unique chunks known to be local.", row->st.hydrated_bytes);
        EXPORT_METRIC(f, rows, "hocus_blk_export_image_bytes", "gauge",
                      "Raw bytes of the image's unique chunks (hydrated at 100%).", row->st.image_bytes);
        metric_head(f, "hocus_blk_export_hydration_ratio", "gauge", "Fraction of the image local (0 to 1).");
        for (size_t i = 0; i < rows.n; i++)
                fprintf(f, "hocus_blk_export_hydration_ratio{export=\"%s\"} %.6f\n", rows.r[i].name,
                        rows.r[i].st.image_bytes ? (double) rows.r[i].st.hydrated_bytes / (double) rows.r[i].st.image_bytes
                                                 : 1.0);
        EXPORT_METRIC(f, rows, "hocus_blk_export_demand_waits_total", "counter",
                      "Chunk reads that waited for a fetch.", row->st.demand_waits);
        metric_head(f, "hocus_blk_export_demand_wait_seconds_total", "counter",
                    "Time chunk reads spent waiting for fetches.");
        for (size_t i = 0; i < rows.n; i++)
                fprintf(f, "hocus_blk_export_demand_wait_seconds_total{export=\"%s\"} %.6f\n", rows.r[i].name,
                        (double) rows.r[i].st.demand_wait_ns / 1e9);
        EXPORT_METRIC(f, rows, "hocus_blk_export_demand_failures_total", "counter",
                      "Chunk reads that failed: no verified bytes within the fetch timeout, or a fetch error.",
                      row->st.demand_failures);
        EXPORT_METRIC(f, rows, "hocus_blk_export_fetch_errors_total", "counter", "Range requests that failed.",
                      row->st.fetch_errors);
        EXPORT_METRIC(f, rows, "hocus_blk_export_digest_mismatches_total", "counter",
                      "Fetched chunks whose bytes did not match their digest (fetched again, never served).",
                      row->st.digest_mismatches);
        metric_head(f, "hocus_blk_export_overlay_bytes", "gauge", "Overlay blocks by state.");
        for (size_t i = 0; i < rows.n; i++) {
                fprintf(f, "hocus_blk_export_overlay_bytes{export=\"%s\",state=\"data\"} %llu\n", rows.r[i].name,
                        (unsigned long long) rows.r[i].st.overlay_data_bytes);
                fprintf(f, "hocus_blk_export_overlay_bytes{export=\"%s\",state=\"zero\"} %llu\n", rows.r[i].name,
                        (unsigned long long) rows.r[i].st.overlay_zero_bytes);
        }
        free(rows.r);
        if (fclose(f) != 0) {
                free(buf);
                return -ENOMEM;
        }
        *ret = buf;
        *ret_len = len;
        return 0;
}

static void write_str(int fd, const char *s, size_t len) {
        (void) write_all(fd, s, len);
}

void metrics_http_answer(struct blockd *d, int fd, const char *line) {
        _cleanup_free_ char *body = NULL;
        char head[256], path[256] = "";
        size_t len = 0;
        int n;

        if (sscanf(line, "GET %255s", path) != 1 || (strcmp(path, "/metrics") != 0 && strcmp(path, "/") != 0)) {
                static const char nf[] = "HTTP/1.0 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 30\r\n"
                                         "Connection: close\r\n\r\nonly GET /metrics is served\r\n\r\n";
                write_str(fd, nf, sizeof nf - 1);
                return;
        }
        if (metrics_render(d, &body, &len) < 0) {
                static const char err[] = "HTTP/1.0 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n";
                write_str(fd, err, sizeof err - 1);
                return;
        }
        n = snprintf(head, sizeof head,
                     "HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n",
                     len);
        write_str(fd, head, (size_t) n);
        write_str(fd, body, len);
}

/* Read an HTTP request head (up to the empty line) and answer it. */
static void serve_one(struct blockd *d, int fd) {
        char buf[8192];
        size_t len = 0;
        struct timeval tv = { .tv_sec = 5 };

        (void) setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        while (len < sizeof buf - 1) {
                ssize_t n = recv(fd, buf + len, sizeof buf - 1 - len, 0);
                if (n <= 0)
                        return;
                len += (size_t) n;
                buf[len] = 0;
                if (strstr(buf, "\r\n\r\n") || strstr(buf, "\n\n"))
                        break;
        }
        metrics_http_answer(d, fd, buf);
}

struct metrics_http {
        struct blockd *d;
        int fd, wake;
        pthread_t thread;
};

static void *http_thread(void *arg) {
        struct metrics_http *m = arg;
        struct pollfd p[2] = { { .fd = m->fd, .events = POLLIN }, { .fd = m->wake, .events = POLLIN } };

        for (;;) {
                int c;

                if (poll(p, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        break;
                }
                if (p[1].revents)
                        break;
                c = accept4(m->fd, NULL, NULL, SOCK_CLOEXEC);
                if (c < 0)
                        continue;
                serve_one(m->d, c);
                close(c);
        }
        return NULL;
}

int metrics_http_start(struct blockd *d, const char *host_port, struct metrics_http **ret, unsigned *ret_port) {
        struct metrics_http *m = calloc(1, sizeof *m);
        int r;

        if (!m)
                return -ENOMEM;
        m->d = d;
        m->wake = eventfd(0, EFD_CLOEXEC);
        m->fd = tcp_listen(host_port, ret_port);
        if (m->fd < 0 || m->wake < 0) {
                r = m->fd < 0 ? m->fd : -errno;
                goto fail;
        }
        r = -pthread_create(&m->thread, NULL, http_thread, m);
        if (r < 0)
                goto fail;
        *ret = m;
        return 0;
fail:
        if (m->fd >= 0)
                close(m->fd);
        if (m->wake >= 0)
                close(m->wake);
        free(m);
        return r;
}

void metrics_http_stop(struct metrics_http *m) {
        uint64_t one = 1;

        if (!m)
                return;
        (void) write(m->wake, &one, sizeof one);
        pthread_join(m->thread, NULL);
        close(m->fd);
        close(m->wake);
        free(m);
}
