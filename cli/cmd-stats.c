/* SPDX-License-Identifier: Apache-2.0 */
/* hocus-blk stats [NAME] [--json]: counters of a running blockd's exports. */
#include <stdio.h>

#include "blockd-client.h"
#include "cli.h"
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

/* The fetch scheduler's lines of one export. */
static void print_fetch(struct json_object *e) {
        char a[32], b[32], c[32], d[32];

        printf("  fetched      demand %llu requests (%s), profile %llu (%s), background %llu (%s)\n",
               (unsigned long long) num(e, "demand_requests"), format_size(num(e, "demand_bytes"), a, sizeof a),
               (unsigned long long) num(e, "profile_requests"), format_size(num(e, "prefetch_bytes"), b, sizeof b),
               (unsigned long long) num(e, "background_requests"), format_size(num(e, "background_bytes"), c, sizeof c));
        printf("  hydrated     %.1f%% (%s of %s local), background %s\n", dbl(e, "hydration_pct"),
               format_size(num(e, "hydrated_bytes"), a, sizeof a), format_size(num(e, "image_bytes"), b, sizeof b),
               str(e, "background"));
        printf("  needed       %s read by clients, %s fetched in all\n", format_size(num(e, "bytes_needed"), c, sizeof c),
               format_size(num(e, "bytes_fetched"), d, sizeof d));
        printf("  waited       %.3f s in %llu chunk reads; %llu failed, %llu fetch errors, %llu bad digests\n",
               dbl(e, "demand_wait_s"), (unsigned long long) num(e, "demand_waits"),
               (unsigned long long) num(e, "demand_failures"), (unsigned long long) num(e, "fetch_errors"),
               (unsigned long long) num(e, "digest_mismatches"));
}

int cmd_stats(int argc, char **argv) {
        static const struct option options[] = { BLOCKD_LONG_OPTIONS };
        const char *control = NULL;
        struct json_object *req, *resp, *arr;
        bool json = false;
        int c, r;

        while ((c = getopt_long(argc, argv, "hv", options, NULL)) >= 0) {
                r = blockd_option(c, optarg, &control, &json);
                if (r == 2) {
                        help();
                        return 0;
                }
                if (r <= 0)
                        return cli_usage_error("stats", "unknown option");
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
                printf("%s\n", json_object_to_json_string_ext(resp, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED));
                json_object_put(resp);
                return 0;
        }
        json_object_object_get_ex(resp, "exports", &arr);
        for (size_t i = 0; i < json_object_array_length(arr); i++) {
                struct json_object *e = json_object_array_get_idx(arr, i), *n;
                char a[32], b[32], f[32];
                uint64_t hits = num(e, "cache_hits"), misses = num(e, "cache_misses");

                json_object_object_get_ex(e, "name", &n);
                printf("%s%s\n", i ? "\n" : "", json_object_get_string(n));
                printf("  requests     %llu reads, %llu writes, %llu trims, %llu zeroes, %llu flushes, %llu block status\n",
                       (unsigned long long) num(e, "reads"), (unsigned long long) num(e, "writes"),
                       (unsigned long long) num(e, "trims"), (unsigned long long) num(e, "zeroes"),
                       (unsigned long long) num(e, "flushes"), (unsigned long long) num(e, "block_status"));
                printf("  served       %s read, %s written\n", format_size(num(e, "bytes_read"), a, sizeof a),
                       format_size(num(e, "bytes_written"), b, sizeof b));
                printf("  chunk store  %llu hits, %llu misses (%.1f%% hits), %s fetched\n", (unsigned long long) hits,
                       (unsigned long long) misses, hits + misses ? 100.0 * (double) hits / (double) (hits + misses) : 0.0,
                       format_size(num(e, "bytes_fetched"), f, sizeof f));
                printf("  overlay      %s data, %s zeroed\n", format_size(num(e, "overlay_data_bytes"), a, sizeof a),
                       format_size(num(e, "overlay_zero_bytes"), b, sizeof b));
                printf("  clients      %llu, errors %llu\n", (unsigned long long) num(e, "clients"),
                       (unsigned long long) num(e, "errors"));
                if (num(e, "prefetch_queued"))
                        printf("  prefetch     %llu of %llu profile chunks done%s, %llu fetched (%s)\n",
                               (unsigned long long) num(e, "prefetch_done"), (unsigned long long) num(e, "prefetch_queued"),
                               json_object_object_get_ex(e, "prefetch_active", &n) && json_object_get_boolean(n) ? " (running)" : "",
                               (unsigned long long) num(e, "prefetch_fetched"), format_size(num(e, "prefetch_bytes"), f, sizeof f));
                if (json_object_object_get_ex(e, "recording", &n) && json_object_get_boolean(n))
                        printf("  recording    %llu profile entries so far\n", (unsigned long long) num(e, "recorded_entries"));
                print_fetch(e);
        }
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
