/* SPDX-License-Identifier: Apache-2.0 */
/* hocus-blk stats [NAME] [--json]: counters of a running blockd's exports. */
#include <stdio.h>

#include "blockd-client.h"
#include "blockd/ctlproto/counters.h"
#include "cli.h"
#include "json-out.h"
#include "common/util.h"

static void help(void) {
        printf("Usage: hocus-blk stats [NAME] [OPTIONS]\n\n"
               "Per export: requests, bytes served and written, chunk store hits and misses,\n"
               "bytes fetched from the registry, errors, clients, overlay use; the fetch\n"
               "scheduler's requests and bytes by class (demand: a reader waited; profile: the\n"
               "boot profile; background: the rest), how much of the image is local, the bytes\n"
               "clients needed against those fetched, and the time reads waited for fetches.\n"
               "Then the fetcher: requests in flight, its window, bandwidth and round trip.\n\n"
               "Options:\n"
               "  --json               machine-readable output (the daemon's full answer)\n" BLOCKD_HELP);
}

static uint64_t num(struct json_object *o, const char *key) {
        struct json_object *v;

        return json_object_object_get_ex(o, key, &v) && v ? (uint64_t) json_object_get_int64(v) : 0;
}

static double dbl(struct json_object *o, const char *key) {
        struct json_object *v;

        return json_object_object_get_ex(o, key, &v) && v ? json_object_get_double(v) : 0;
}

static const char *str(struct json_object *o, const char *key) {
        struct json_object *v;

        return json_object_object_get_ex(o, key, &v) && v ? json_object_get_string(v) : "-";
}

#define U(x) ((unsigned long long) (x))

/* The fetch scheduler's lines of one export. */
static void print_fetch(const struct export_stats *st, const char *background) {
        char a[32], b[32], c[32], d[32];

        printf("  fetched      demand %llu requests (%s), profile %llu (%s), background %llu (%s)\n",
               U(st->demand_requests), format_size(st->demand_bytes, a, sizeof a), U(st->profile_requests),
               format_size(st->prefetch_bytes, b, sizeof b), U(st->background_requests),
               format_size(st->background_bytes, c, sizeof c));
        printf("  hydrated     %.1f%% (%s of %s local), background %s\n", 100.0 * export_stats_hydration(st),
               format_size(st->hydrated_bytes, a, sizeof a), format_size(st->image_bytes, b, sizeof b), background);
        printf("  needed       %s read by clients, %s fetched in all\n", format_size(st->bytes_needed, c, sizeof c),
               format_size(st->bytes_fetched, d, sizeof d));
        printf("  readahead    %llu chunks read ahead of reads, %llu used, %llu unused; %llu windows started by hits\n",
               U(st->readahead_issued), U(st->readahead_used), U(st->readahead_wasted), U(st->readahead_async));
        printf("  waited       %.3f s in %llu chunk reads (%llu for chunks not asked for yet); %llu failed, %llu fetch errors, %llu bad digests\n",
               (double) st->demand_wait_ns / 1e9, U(st->demand_waits), U(st->demand_cold_waits), U(st->demand_failures),
               U(st->fetch_errors), U(st->digest_mismatches));
}

/* One export of the answer, its counters decoded by the table. */
static void print_export(struct json_object *e, bool first) {
        struct export_stats st;
        char a[32], b[32], f[32];

        export_stats_from_json(e, &st);
        printf("%s%s\n", first ? "" : "\n", str(e, "name"));
        printf("  requests     %llu reads, %llu writes, %llu trims, %llu zeroes, %llu flushes, %llu block status\n",
               U(st.reads), U(st.writes), U(st.trims), U(st.zeroes), U(st.flushes), U(st.block_status));
        printf("  served       %s read, %s written\n", format_size(st.bytes_read, a, sizeof a),
               format_size(st.bytes_written, b, sizeof b));
        printf("  chunk store  %llu hits, %llu misses (%.1f%% hits), %s fetched\n", U(st.cache_hits), U(st.cache_misses),
               st.cache_hits + st.cache_misses ? 100.0 * (double) st.cache_hits / (double) (st.cache_hits + st.cache_misses)
                                               : 0.0,
               format_size(st.bytes_fetched, f, sizeof f));
        printf("  store faults %llu times full, %llu entries changed after verification\n", U(st.cache_full_events),
               U(st.reverify_failures));
        printf("  overlay      %s data, %s zeroed\n", format_size(st.overlay_data_bytes, a, sizeof a),
               format_size(st.overlay_zero_bytes, b, sizeof b));
        printf("  clients      %llu, errors %llu\n", U(st.clients), U(st.errors));
        if (st.attach_ns) {
                char lookup[64];

                if (st.profile_lookup)
                        snprintf(lookup, sizeof lookup, "running");
                else if (st.profile_lookup_ns)
                        snprintf(lookup, sizeof lookup, "done %.3f s after it", (double) st.profile_lookup_ns / 1e9);
                else
                        snprintf(lookup, sizeof lookup, "none");
                printf("  attach       %.3f s (registry %.3f, manifest %.3f, index %.3f); first read %.3f s after "
                       "its start; profile lookup %s\n",
                       (double) st.attach_ns / 1e9, (double) st.attach_connect_ns / 1e9,
                       (double) st.attach_manifest_ns / 1e9, (double) st.attach_index_ns / 1e9,
                       (double) st.first_read_ns / 1e9, lookup);
        }
        if (st.prefetch_queued)
                printf("  prefetch     %llu of %llu %s chunks done%s, %llu fetched (%s)\n", U(st.prefetch_done),
                       U(st.prefetch_queued), st.prefetch_learned ? "learned profile" : "profile",
                       st.prefetch_active ? " (running)" : "", U(st.prefetch_fetched),
                       format_size(st.prefetch_bytes, f, sizeof f));
        if (st.recording)
                printf("  recording    %llu profile entries so far\n", U(st.recorded_entries));
        if (st.learning)
                printf("  learning     %llu first-read entries so far\n", U(st.learned_entries));
        print_fetch(&st, str(e, "background"));
}

int cmd_stats(int argc, char **argv) {
        static const struct option options[] = { BLOCKD_LONG_OPTIONS };
        const char *control = NULL;
        struct json_object *req, *resp, *arr;
        bool json = false;
        int c, r;

        while ((c = cli_getopt(argc, argv, "hv", options)) >= 0) {
                r = blockd_option("stats", c, optarg, &control, &json, help);
                if (r <= 0)
                        return r;
        }
        if (argc - optind > 1)
                return cli_usage_error("stats", "stats takes at most one export NAME");
        req = json_object_new_object();
        if (argc - optind == 1)
                json_object_object_add(req, "name", json_object_new_string(argv[optind]));
        r = blockd_call("stats", control, req, &resp);
        if (r < 0)
                return r;
        if (json) {
                cli_json_print(json_object_get(resp), false);
                json_object_put(resp);
                return 0;
        }
        json_object_object_get_ex(resp, "exports", &arr);
        for (size_t i = 0; i < json_object_array_length(arr); i++)
                print_export(json_object_array_get_idx(arr, i), i == 0);
        {
                struct json_object *f;

                if (json_object_object_get_ex(resp, "fetch", &f) && f) {
                        char bw[32];

                        printf("\nfetcher: %llu demand, %llu profile, %llu background requests in flight (window %llu); "
                               "%s/s, rtt %.1f ms; %llu requests, %llu errors, %llu retries, %llu bad digests, %llu timeouts\n",
                               (unsigned long long) num(f, "inflight_demand"), (unsigned long long) num(f, "inflight_profile"),
                               (unsigned long long) num(f, "inflight_background"), (unsigned long long) num(f, "window"),
                               format_size((uint64_t) dbl(f, "bandwidth"), bw, sizeof bw), dbl(f, "rtt_s") * 1e3,
                               (unsigned long long) num(f, "requests"), (unsigned long long) num(f, "errors"),
                               (unsigned long long) num(f, "retries"), (unsigned long long) num(f, "mismatches"),
                               (unsigned long long) num(f, "timeouts"));
                }
        }
        json_object_put(resp);
        return 0;
}
