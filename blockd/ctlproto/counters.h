/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The per-export counters, declared once. Each row of EXPORT_COUNTERS is
 * a field of struct export_stats and says how every place shows it: the
 * control protocol's "stats" answer (JSON key), the Prometheus exposition
 * (family and label) and, through those, the CLI's printer.
 *
 *   X(field, kind, unit, json key, Prometheus family, label, help)
 *
 * kind: COUNTER (only grows) or GAUGE. unit: COUNT, BYTES, CHUNKS (an
 * integer everywhere); NS (nanoseconds: seconds as a double in JSON, %.6f
 * in Prometheus); FLAG (0 or 1: a JSON boolean). A NULL key or family:
 * not shown there. Rows of one family (requests by op, fetches by class,
 * overlay bytes by state) share its help text and differ in the label,
 * which is added to export="NAME".
 *
 * Not in the table, because they are not counters: the hydration ratio
 * (export_stats_hydration(); JSON "hydration_pct", Prometheus
 * hocus_blk_export_hydration_ratio) and the background stream's state
 * (JSON "background", a name from sched_bg_state_name()).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define EXPORT_COUNTERS(X)                                                                                           \
        X(size, GAUGE, BYTES, NULL, "hocus_blk_export_size_bytes", NULL, "Size of the export.")                      \
        X(reads, COUNTER, COUNT, "reads", "hocus_blk_export_requests_total", "op=\"read\"", "Requests by operation.") \
        X(writes, COUNTER, COUNT, "writes", "hocus_blk_export_requests_total", "op=\"write\"",                       \
          "Requests by operation.")                                                                                  \
        X(trims, COUNTER, COUNT, "trims", "hocus_blk_export_requests_total", "op=\"trim\"", "Requests by operation.") \
        X(zeroes, COUNTER, COUNT, "zeroes", "hocus_blk_export_requests_total", "op=\"zero\"",                        \
          "Requests by operation.")                                                                                  \
        X(flushes, COUNTER, COUNT, "flushes", "hocus_blk_export_requests_total", "op=\"flush\"",                     \
          "Requests by operation.")                                                                                  \
        X(block_status, COUNTER, COUNT, "block_status", "hocus_blk_export_requests_total", "op=\"block_status\"",    \
          "Requests by operation.")                                                                                  \
        X(bytes_read, COUNTER, BYTES, "bytes_read", "hocus_blk_export_read_bytes_total", NULL,                       \
          "Bytes served to clients.")                                                                                \
        X(bytes_written, COUNTER, BYTES, "bytes_written", "hocus_blk_export_written_bytes_total", NULL,              \
          "Bytes written by clients.")                                                                               \
        X(cache_hits, COUNTER, COUNT, "cache_hits", "hocus_blk_export_cache_hits_total", NULL,                       \
          "Chunk reads served from the local chunk store.")                                                          \
        X(cache_misses, COUNTER, CHUNKS, "cache_misses", "hocus_blk_export_cache_misses_total", NULL,                \
          "Chunks fetched because a read needed them (demand fetches).")                                             \
        X(bytes_fetched, COUNTER, BYTES, "bytes_fetched", "hocus_blk_export_fetched_bytes_total", NULL,              \
          "Stored (compressed) bytes fetched from the source.")                                                      \
        X(errors, COUNTER, COUNT, "errors", "hocus_blk_export_errors_total", NULL, "Requests that failed.")          \
        X(clients, GAUGE, COUNT, "clients", "hocus_blk_export_clients", NULL, "Clients connected to the export.")    \
        X(overlay_data_bytes, GAUGE, BYTES, "overlay_data_bytes", "hocus_blk_export_overlay_bytes", "state=\"data\"", \
          "Overlay blocks by state.")                                                                                \
        X(overlay_zero_bytes, GAUGE, BYTES, "overlay_zero_bytes", "hocus_blk_export_overlay_bytes", "state=\"zero\"", \
          "Overlay blocks by state.")                                                                                \
        X(prefetch_queued, GAUGE, CHUNKS, "prefetch_queued", "hocus_blk_export_prefetch_queued_chunks", NULL,        \
          "Chunks of the current prefetch list.")                                                                    \
        X(prefetch_done, GAUGE, CHUNKS, "prefetch_done", "hocus_blk_export_prefetch_done_chunks", NULL,              \
          "Chunks of the current prefetch list processed so far.")                                                   \
        X(prefetch_fetched, COUNTER, CHUNKS, "prefetch_fetched", "hocus_blk_export_prefetched_chunks_total", NULL,   \
          "Chunks fetched by the boot-profile prefetch (before a reader asked).")                                    \
        X(prefetch_bytes, COUNTER, BYTES, "prefetch_bytes", "hocus_blk_export_prefetched_bytes_total", NULL,         \
          "Stored bytes fetched by the boot-profile prefetch.")                                                      \
        X(prefetch_gap_chunks, COUNTER, CHUNKS, "prefetch_gap_chunks", NULL, NULL,                                   \
          "Chunks the prefetch fetched in gaps its ranges read through (in prefetch_fetched too).")                  \
        X(prefetch_gap_waste_bytes, COUNTER, BYTES, "prefetch_gap_waste_bytes", NULL, NULL,                          \
          "Bytes of gaps prefetch ranges read through that no chunk needed (local already, or no chunk's).")         \
        X(prefetch_active, GAUGE, FLAG, "prefetch_active", NULL, NULL, "1 while a prefetch list is worked through.") \
        X(recording, GAUGE, FLAG, "recording", NULL, NULL, "1 while the export's boot profile is recorded.")         \
        X(recorded_entries, GAUGE, COUNT, "recorded_entries", NULL, NULL, "Profile entries recorded so far.")        \
        X(learning, GAUGE, FLAG, "learning", NULL, NULL, "1 while the export's first reads are learned.")          \
        X(learned_entries, GAUGE, COUNT, "learned_entries", NULL, NULL, "Profile entries learned so far.")           \
        X(prefetch_learned, GAUGE, FLAG, "prefetch_learned", NULL, NULL,                                             \
          "1 when the prefetch list is the profile learned on this host.")                                           \
        X(demand_requests, COUNTER, COUNT, "demand_requests", "hocus_blk_export_fetch_requests_total",               \
          "class=\"demand\"", "Range requests made, by fetch class.")                                                \
        X(profile_requests, COUNTER, COUNT, "profile_requests", "hocus_blk_export_fetch_requests_total",             \
          "class=\"profile\"", "Range requests made, by fetch class.")                                               \
        X(background_requests, COUNTER, COUNT, "background_requests", "hocus_blk_export_fetch_requests_total",       \
          "class=\"background\"", "Range requests made, by fetch class.")                                            \
        X(demand_bytes, COUNTER, BYTES, "demand_bytes", "hocus_blk_export_fetch_bytes_total", "class=\"demand\"",    \
          "Stored bytes fetched, by fetch class.")                                                                   \
        /* The same bytes as prefetch_bytes, as a member of the by-class family. */                                  \
        X(profile_bytes, COUNTER, BYTES, NULL, "hocus_blk_export_fetch_bytes_total", "class=\"profile\"",            \
          "Stored bytes fetched, by fetch class.")                                                                   \
        X(background_bytes, COUNTER, BYTES, "background_bytes", "hocus_blk_export_fetch_bytes_total",                \
          "class=\"background\"", "Stored bytes fetched, by fetch class.")                                           \
        X(background_chunks, COUNTER, CHUNKS, "background_chunks", NULL, NULL,                                       \
          "Chunks fetched by the background stream.")                                                                \
        X(readahead_issued, COUNTER, CHUNKS, "readahead_issued", "hocus_blk_export_readahead_chunks_total",           \
          "state=\"issued\"", "Chunks read ahead of demand misses: issued, and used by a later read.")               \
        X(readahead_used, COUNTER, CHUNKS, "readahead_used", "hocus_blk_export_readahead_chunks_total",               \
          "state=\"used\"", "Chunks read ahead of demand misses: issued, and used by a later read.")                 \
        X(readahead_wasted, GAUGE, CHUNKS, "readahead_wasted", "hocus_blk_export_readahead_unused_chunks", NULL,      \
          "Chunks read ahead that no read used (yet): issued - used.")                                              \
        X(readahead_async, COUNTER, COUNT, "readahead_async", "hocus_blk_export_readahead_async_total", NULL,         \
          "Readahead windows started by a hit at a stream's marker (fetched with nobody waiting).")                 \
        X(bytes_needed, COUNTER, BYTES, "bytes_needed", "hocus_blk_export_needed_bytes_total", NULL,                 \
          "Raw bytes of the distinct chunks clients read (the working set).")                                        \
        X(hydrated_bytes, GAUGE, BYTES, "hydrated_bytes", "hocus_blk_export_hydrated_bytes", NULL,                   \
          "Raw bytes of the image's unique chunks known to be local.")                                               \
        X(image_bytes, GAUGE, BYTES, "image_bytes", "hocus_blk_export_image_bytes", NULL,                            \
          "Raw bytes of the image's unique chunks (hydrated at 100%).")                                              \
        X(demand_waits, COUNTER, COUNT, "demand_waits", "hocus_blk_export_demand_waits_total", NULL,                 \
          "Chunk reads that waited for a fetch.")                                                                    \
        X(demand_cold_waits, COUNTER, COUNT, "demand_cold_waits", "hocus_blk_export_demand_cold_waits_total", NULL,  \
          "Chunk reads that waited for a fetch nobody had asked for yet (not read ahead).")                          \
        X(demand_wait_ns, COUNTER, NS, "demand_wait_s", "hocus_blk_export_demand_wait_seconds_total", NULL,          \
          "Time chunk reads spent waiting for fetches.")                                                             \
        X(demand_failures, COUNTER, COUNT, "demand_failures", "hocus_blk_export_demand_failures_total", NULL,        \
          "Chunk reads that failed: no verified bytes within the fetch timeout, or a fetch error.")                  \
        X(fetch_errors, COUNTER, COUNT, "fetch_errors", "hocus_blk_export_fetch_errors_total", NULL,                 \
          "Range requests that failed.")                                                                             \
        X(digest_mismatches, COUNTER, COUNT, "digest_mismatches", "hocus_blk_export_digest_mismatches_total", NULL,  \
          "Fetched chunks whose bytes did not match their digest (fetched again, never served).")             \
        X(cache_full_events, COUNTER, COUNT, "cache_full_events", "hocus_blk_export_cache_full_events_total", NULL,  \
          "Times the background stream paused because the chunk store was full (its disk, or near --cache-max).")    \
        X(reverify_failures, COUNTER, COUNT, "reverify_failures", "hocus_blk_export_reverify_failures_total", NULL,  \
          "Store entries that did not match when read (damaged, or changed after they were verified): fetched again.") \
        X(mirror_reads, COUNTER, COUNT, "mirror_reads", "hocus_blk_export_mirror_reads_total", NULL,                 \
          "Registry requests a mirror answered (registries.conf).")                                                  \
        X(mirror_skips, COUNTER, COUNT, "mirror_skips", "hocus_blk_export_mirror_skips_total", NULL,                 \
          "Times a registry mirror was put aside for a while after failing or serving wrong bytes.")               \
        X(attach_ns, GAUGE, NS, "attach_s", NULL, NULL,                                                              \
          "Time the attach took until the export could answer: registry, manifest, index.")                        \
        X(attach_connect_ns, GAUGE, NS, "attach_connect_s", NULL, NULL,                                              \
          "Of the attach: reaching the registry (GET /v2/, a token if it wants one).")                              \
        X(attach_manifest_ns, GAUGE, NS, "attach_manifest_s", NULL, NULL, "Of the attach: the manifest.")            \
        X(attach_index_ns, GAUGE, NS, "attach_index_s", NULL, NULL,                                                  \
          "Of the attach: the index blob (fetched or local, verified, decoded).")                                   \
        X(first_read_ns, GAUGE, NS, "first_read_s", NULL, NULL,                                                      \
          "From the attach's start until the bytes of the first read were ready (0: no read yet).")                \
        X(profile_lookup, GAUGE, FLAG, "profile_lookup", NULL, NULL,                                                 \
          "1 while the boot profile is looked for after the attach (reads are served meanwhile).")                 \
        X(profile_lookup_ns, GAUGE, NS, "profile_lookup_s", NULL, NULL,                                              \
          "From the end of the attach until its boot profile was found (or none) and its prefetch started.") \
        X(http_connections, COUNTER, COUNT, "http_connections", "hocus_blk_export_http_connections_total", NULL,     \
          "HTTP connections the export's registry source opened (demand ones included).")                           \
        X(http_demand_connections, COUNTER, COUNT, "http_demand_connections",                                      \
          "hocus_blk_export_http_demand_connections_total", NULL,                                                    \
          "Of them, connections that carry only demand reads and the attach's requests, never a prefetch.")

#define EXPORT_COUNTER_FIELD_(field, kind, unit, json, prom, label, help) uint64_t field;

/* One export's counters (blockd/export.h: export_get_stats). Every field
 * is a uint64_t. */
struct export_stats {
        EXPORT_COUNTERS(EXPORT_COUNTER_FIELD_)
        uint64_t background_state;      /* enum sched_bg_state */
};

enum counter_kind {
        COUNTER_KIND_COUNTER,
        COUNTER_KIND_GAUGE,
};

enum counter_unit {
        COUNTER_UNIT_COUNT,
        COUNTER_UNIT_BYTES,
        COUNTER_UNIT_CHUNKS,
        COUNTER_UNIT_NS,
        COUNTER_UNIT_FLAG,
};

struct export_counter {
        const char *field;              /* its name in struct export_stats */
        size_t offset;                  /* and its place there */
        enum counter_kind kind;
        enum counter_unit unit;
        const char *json;               /* key in the "stats" answer; NULL: not sent */
        const char *prom;               /* Prometheus family; NULL: not exported */
        const char *label;              /* label besides export="NAME"; NULL: none */
        const char *help;
};

/* The table as data, in EXPORT_COUNTERS order. */
extern const struct export_counter export_counters[];
extern const size_t export_counters_count;

static inline uint64_t export_counter_value(const struct export_stats *st, const struct export_counter *c) {
        return *(const uint64_t *) ((const char *) st + c->offset);
}

/* The fraction of the image's unique chunks that is local, 0 to 1 (1 for
 * an image without any). */
static inline double export_stats_hydration(const struct export_stats *st) {
        return st->image_bytes ? (double) st->hydrated_bytes / (double) st->image_bytes : 1.0;
}

struct json_object;

/* Add the counters that have a JSON key, and "hydration_pct", to o (a
 * "stats" answer's export object). */
void export_stats_to_json(const struct export_stats *st, struct json_object *o);
/* The other way (the CLI): counters o lacks are 0. */
void export_stats_from_json(struct json_object *o, struct export_stats *ret);
