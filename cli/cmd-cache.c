/* SPDX-License-Identifier: Apache-2.0 */
/* hocus-blk cache stats|verify|gc [--max-size SIZE]: the local chunk store. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "json-out.h"
#include "common/log.h"
#include "common/util.h"

static void help(void) {
        printf("Usage: hocus-blk cache stats|verify|gc [OPTIONS]\n\n"
               "  stats                entries and bytes in the chunk store\n"
               "  verify               hash every entry; remove and report the ones that do not\n"
               "                       match their digest (exit status 1 if any)\n"
               "  gc --max-size SIZE   evict least recently used entries down to SIZE, and remove\n"
               "                       temp files left by crashed writers\n\n"
               "Options:\n"
               "  --max-size SIZE      bound for gc (e.g. 20G)\n"
               "  --json               print the result as a JSON object\n\n");
        cli_common_help();
}

static void report_bad(const char *name, const char *reason, void *u) {
        log_error("Corrupt entry %s: %s (removed)", name, reason);
        (*(unsigned *) u)++;
}

int cmd_cache(int argc, char **argv) {
        static const struct option options[] = {
                { "max-size", required_argument, NULL, 'm' },
                { "json", no_argument, NULL, 'j' },
                { NULL, 0, NULL, 0 },
        };
        struct chunkstore *cs = NULL;
        struct chunkstore_stats st;
        uint64_t max = 0;
        bool have_max = false, json = false;
        const char *verb;
        char a[32], b[32];
        int c, r;

        while ((c = cli_getopt(argc, argv, COMMON_SHORT_OPTIONS, cli_options(options))) >= 0) {
                switch (c) {
                case 'm':
                        if (parse_size(optarg, &max) < 0)
                                return cli_usage_error("cache", "--max-size wants a size such as 20G, not '%s'", optarg);
                        have_max = true;
                        break;
                case 'j':
                        json = true;
                        break;
                default:
                        r = cli_other_option("cache", c, optarg, help);
                        if (r <= 0)
                                return r;
                }
        }
        if (argc - optind != 1)
                return cli_usage_error("cache", "cache takes one of stats, verify, gc");
        verb = argv[optind];
        if (strcmp(verb, "stats") && strcmp(verb, "verify") && strcmp(verb, "gc"))
                return cli_usage_error("cache", "unknown cache command '%s' (stats, verify, gc)", verb);
        if (!strcmp(verb, "gc") && !have_max)
                return cli_usage_error("cache", "gc needs --max-size SIZE");

        r = cli_open_cache(0, &cs);
        if (r < 0)
                return r;
        if (!strcmp(verb, "stats")) {
                r = chunkstore_stats(cs, &st);
                if (r < 0) {
                        log_error_errno(r, "Cannot read the chunk store: %m");
                } else if (json) {
                        struct json_object *o = json_object_new_object();

                        json_add_str(o, "dir", cli_cache_dir());
                        json_add_u64(o, "entries", st.entries);
                        json_add_u64(o, "bytes", st.bytes);
                        json_add_u64(o, "disk_bytes", st.disk_bytes);
                        cli_json_print(o, false);
                } else {
                        printf("Chunk store  %s\n", cli_cache_dir());
                        printf("Entries      %llu\n", (unsigned long long) st.entries);
                        printf("Bytes        %s (%s on disk)\n", format_size(st.bytes, a, sizeof a),
                               format_size(st.disk_bytes, b, sizeof b));
                }
        } else if (!strcmp(verb, "verify")) {
                unsigned bad = 0;

                r = chunkstore_verify_all(cs, report_bad, &bad, &st);
                if (r < 0) {
                        log_error_errno(r, "Cannot verify the chunk store: %m");
                } else {
                        if (json) {
                                struct json_object *o = json_object_new_object();

                                json_add_str(o, "dir", cli_cache_dir());
                                json_add_u64(o, "entries", st.entries);
                                json_add_u64(o, "bytes", st.bytes);
                                json_add_u64(o, "corrupt_entries", bad);
                                cli_json_print(o, false);
                        } else
                                printf("Verified %llu entries (%s): %u corrupt%s\n", (unsigned long long) st.entries,
                                       format_size(st.bytes, a, sizeof a), bad, bad ? ", removed" : "");
                        r = bad ? -EBADMSG : 0;
                }
        } else {
                r = chunkstore_gc(cs, max, &st);
                if (r < 0) {
                        log_error_errno(r, "Garbage collection failed: %m");
                } else if (json) {
                        struct json_object *o = json_object_new_object();
                        struct chunkstore_stats now = { 0 };

                        (void) chunkstore_stats(cs, &now);
                        json_add_str(o, "dir", cli_cache_dir());
                        json_add_u64(o, "evicted_entries", st.entries);
                        json_add_u64(o, "evicted_bytes", st.bytes);
                        json_add_u64(o, "entries", now.entries);
                        json_add_u64(o, "bytes", now.bytes);
                        cli_json_print(o, false);
                } else {
                        struct chunkstore_stats now;
                        printf("Evicted %llu entries (%s)", (unsigned long long) st.entries,
                               format_size(st.bytes, a, sizeof a));
                        if (chunkstore_stats(cs, &now) == 0)
                                printf("; %llu entries, %s remain", (unsigned long long) now.entries,
                                       format_size(now.bytes, b, sizeof b));
                        printf("\n");
                }
        }
        chunkstore_free(cs);
        return r;
}
