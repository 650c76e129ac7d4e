/* SPDX-License-Identifier: Apache-2.0 */
#include "metrics.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"
#include "chunkfd.h"
#include "ctlproto/counters.h"
#include "export.h"
#include "exports.h"
#include "nbd/server.h"
#include "sched.h"

static void metric_head(FILE *f, const char *name, const char *type, const char *help) {
        fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void metric(FILE *f, const char *name, const char *type, const char *help, uint64_t v) {
        metric_head(f, name, type, help);
        fprintf(f, "%s %llu\n", name, (unsigned long long) v);
}

/* Per-export metrics: collected first, printed by family. */
struct export_row {
        char name[160];
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
        export_get_stats(e, &rows->r[rows->n].st);
        rows->n++;
}

static bool same_family(const struct export_counter *a, const struct export_counter *b) {
        return a->prom && b->prom && strcmp(a->prom, b->prom) == 0;
}

static void export_sample(FILE *f, const struct export_counter *c, const struct export_row *row) {
        uint64_t v = export_counter_value(&row->st, c);

        fprintf(f, "%s{export=\"%s\"%s%s} ", c->prom, row->name, c->label ? "," : "", c->label ? c->label : "");
        if (c->unit == COUNTER_UNIT_NS)
                fprintf(f, "%.6f\n", (double) v / 1e9);
        else
                fprintf(f, "%llu\n", (unsigned long long) v);
}

/* Every family of the counter table (blockd/ctlproto/counters.h), in the
 * order of its first row; within a family, per export, its rows. */
static void export_metrics(FILE *f, const struct rows *rows) {
        for (size_t i = 0; i < export_counters_count; i++) {
                const struct export_counter *c = &export_counters[i];
                bool printed = false;

                for (size_t k = 0; k < i; k++)
                        printed = printed || same_family(&export_counters[k], c);
                if (!c->prom || printed)
                        continue;
                metric_head(f, c->prom, c->kind == COUNTER_KIND_COUNTER ? "counter" : "gauge", c->help);
                for (size_t r = 0; r < rows->n; r++)
                        for (size_t k = i; k < export_counters_count; k++)
                                if (same_family(&export_counters[k], c))
                                        export_sample(f, &export_counters[k], &rows->r[r]);
        }
        metric_head(f, "hocus_blk_export_hydration_ratio", "gauge", "Fraction of the image local (0 to 1).");
        for (size_t r = 0; r < rows->n; r++)
                fprintf(f, "hocus_blk_export_hydration_ratio{export=\"%s\"} %.6f\n", rows->r[r].name,
                        export_stats_hydration(&rows->r[r].st));
}

static uint64_t resident_bytes(void) {
        _cleanup_fclose_ FILE *f = fopen("/proc/self/statm", "re");
        unsigned long long size, res;

        if (!f || fscanf(f, "%llu %llu", &size, &res) != 2)
                return 0;
        return res * (uint64_t) sysconf(_SC_PAGESIZE);
}

int metrics_render(const struct metrics_sources *d, char **ret, size_t *ret_len) {
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
        metric(f, "hocus_blk_chunkfd_evictions_total", "counter",
               "Open entries closed to stay within the bound, or because the store evicted them.", fs.evictions);
        metric(f, "hocus_blk_chunkfd_reverified_total", "counter",
               "Open entries hashed again because their file changed after they were verified.", fs.reverified);
        metric(f, "hocus_blk_chunkfd_changed_total", "counter",
               "Entries that changed after they were verified and no longer matched (dropped).", fs.changed);
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
                metric(f, "hocus_blk_fetch_delays_total", "counter",
                       "Completions whose latency the link does not explain (the background stream shrinks).",
                       ss.delays);
                metric(f, "hocus_blk_fetch_delays_forgiven_total", "counter",
                       "Completions that would have counted as delays but for CPU stall during their lifetime.",
                       ss.delays_forgiven);
                metric(f, "hocus_blk_write_behind_queued", "gauge",
                       "Verified chunks whose store insert waits for an idle CPU.", ss.wb.queued);
                metric(f, "hocus_blk_write_behind_queued_bytes", "gauge", "Their bytes.", ss.wb.queued_bytes);
                metric(f, "hocus_blk_write_behind_deferred_total", "counter",
                       "Chunk store inserts written behind (queued).", ss.wb.deferred);
                metric(f, "hocus_blk_write_behind_inline_total", "counter",
                       "Chunk store inserts done inline: the write-behind queue was full.", ss.wb.full);
                metric(f, "hocus_blk_write_behind_hits_total", "counter",
                       "Reads served from a chunk whose store insert was still queued.", ss.wb.hits);
        }

        export_metrics(f, &rows);
        free(rows.r);
        if (fclose(f) != 0) {
                free(buf);
                return -ENOMEM;
        }
        *ret = buf;
        *ret_len = len;
        return 0;
}
