/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hocus-blk pull REF: hydrate the local chunk store with every chunk of
 * an image. Chunks already in the store are skipped, so an interrupted
 * pull, run again, fetches only the rest. The work is the bulk engine's
 * (registry-client/bulk.h): the missing chunks coalesced into Range GETs
 * (up to --range-size, gaps up to 256 KiB read through), --jobs of them
 * in flight, every chunk decoded, verified and inserted by decoder
 * threads. Nothing unverified ever enters the store.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "json-out.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"
#include "registry-client/bulk.h"

static void help(void) {
        printf("Usage: hocus-blk pull REF [OPTIONS]\n\n"
               "Fetch every chunk of the image REF into the local chunk store, so that later\n"
               "exports, mounts and blockd exports of it need no network. Chunks already in the\n"
               "store are skipped: a pull that was interrupted resumes where it stopped. Every\n"
               "chunk is verified against its digest before it is stored. A progress bar is\n"
               "drawn when stderr is a terminal; at the end pull prints the bytes fetched, the\n"
               "HTTP requests made and the time taken.\n\n"
               "Options:\n"
               "  --jobs N             range requests in flight (default %d)\n"
               "  --range-size SIZE    largest coalesced range request (default 4M)\n"
               "  --no-store           fetch the missing ranges but decode and store nothing\n"
               "                       (measures the registry path alone; see bench/pull.sh)\n"
               "  -q, --quiet          print nothing on success\n"
               "  --json               print the result as a JSON object\n\n",
               BULK_DEFAULT_JOBS);
        cli_common_help();
}

int cmd_pull(int argc, char **argv) {
        static const struct option options[] = {
                { "jobs", required_argument, NULL, 'j' },
                { "range-size", required_argument, NULL, 'R' },
                { "quiet", no_argument, NULL, 'q' },
                { "no-store", no_argument, NULL, 'N' },
                { "json", no_argument, NULL, 'J' },
                { NULL, 0, NULL, 0 },
        };
        struct blob_source *src = NULL;
        struct image *img = NULL;
        struct chunkstore *store = NULL;
        _cleanup_free_ uint32_t *all = NULL;
        struct bulk_options o = { .flags = BULK_SKIP_STORED | BULK_STORE_REQUIRED, .gap_max = BULK_DEFAULT_GAP, .progress = "pull" };
        struct bulk_result res;
        uint64_t v, t0;
        bool quiet = false, json = false;
        int c, r;

        while ((c = cli_getopt(argc, argv, COMMON_SHORT_OPTIONS "q", cli_options(options))) >= 0) {
                switch (c) {
                case 'j':
                        if (parse_size(optarg, &v) < 0 || v < 1 || v > 256)
                                return cli_usage_error("pull", "--jobs wants 1 to 256");
                        o.jobs = (unsigned) v;
                        break;
                case 'R':
                        if (parse_size(optarg, &v) < 0 || v < (64u << 10) || v > (256u << 20))
                                return cli_usage_error("pull", "--range-size wants 64K to 256M");
                        o.range_max = v;
                        break;
                case 'q':
                        quiet = true;
                        break;
                case 'J':
                        json = true;
                        break;
                case 'N':
                        o.flags |= BULK_FETCH_ONLY;
                        break;
                default:
                        r = cli_other_option("pull", c, optarg, help);
                        if (r <= 0)
                                return r;
                }
        }
        if (argc - optind != 1)
                return cli_usage_error("pull", "pull takes one REF");
        const char *ref = argv[optind];

        t0 = now_ns();
        r = cli_open_image(ref, &src, &img);
        if (r < 0)
                return r;
        r = cli_open_cache(0, &store);
        if (r < 0)
                goto out;

        /* Every unique chunk; the engine skips the ones the store has. */
        const struct blkindex *x = img->index;
        all = malloc(MAX(x->n_chunks, 1u) * sizeof *all);
        if (!all) {
                r = log_error_errno(ENOMEM, "Out of memory");
                goto out;
        }
        for (uint32_t k = 0; k < x->n_chunks; k++)
                all[k] = k;
        r = bulk_run(img, store, all, x->n_chunks, &o, &res);
        if (r < 0) {
                char why[512], ds[DIGEST_STRING_MAX];

                if (res.store_failed)
                        log_error_errno(r, "Pull of '%s' failed: cannot write to the chunk store '%s': %s (%u of %u chunks stored)",
                                        ref, cli_cache_dir(), strerror(-r), res.chunks_fetched,
                                        x->n_chunks - res.chunks_skipped);
                else if (r == -EBADMSG)
                        log_error("Pull of '%s' failed: chunk %s in pack %s does not match its digest; nothing unverified was stored",
                                  ref, digest_to_string(&x->chunks[res.bad_chunk].digest, ds),
                                  digest_to_string(&x->packs[x->chunks[res.bad_chunk].pack].digest, why));
                else
                        log_error_errno(r, "Pull of '%s' failed: %s (%u of %u chunks stored; run pull again to resume)",
                                        ref, source_strerror(src, r, why, sizeof why), res.chunks_fetched,
                                        x->n_chunks - res.chunks_skipped);
                goto out;
        }
        if (json) {
                struct source_stats st;
                struct json_object *j = json_object_new_object();

                source_get_stats(src, &st);
                json_add_str(j, "reference", ref);
                json_add_bool(j, "stored", !(o.flags & BULK_FETCH_ONLY));
                json_add_u64(j, "fetched_chunks", res.chunks_fetched);
                json_add_u64(j, "stored_bytes", res.bytes_stored);
                json_add_u64(j, "cached_chunks", res.chunks_skipped);
                json_add_u64(j, "cached_bytes", res.raw_skipped);
                json_add_u64(j, "fetched_bytes", res.bytes_fetched);
                json_add_u64(j, "range_requests", res.ranges);
                json_add_u64(j, "http_requests", st.requests);
                json_add_u64(j, "http_retries", st.retries);
                json_add_u64(j, "http_connections", st.connections);
                json_add_str(j, "http_protocol", st.protocol);
                json_add_u64(j, "received_bytes", st.bytes_down);
                json_add_double(j, "seconds", (double) (now_ns() - t0) / 1e9);
                cli_json_print(j, false);
        } else if (!quiet) {
                struct source_stats st;
                double secs = (double) (now_ns() - t0) / 1e9;
                char a[32], b[32], cc[32], d[32];

                source_get_stats(src, &st);
                if (o.flags & BULK_FETCH_ONLY)
                        printf("Fetched %s: %u chunks not stored (--no-store), %u already cached (%s)\n", ref,
                               res.chunks_fetched, res.chunks_skipped, format_size(res.raw_skipped, b, sizeof b));
                else
                        printf("Pulled %s: %u chunks (%s) stored, %u already cached (%s)\n", ref, res.chunks_fetched,
                               format_size(res.bytes_stored, a, sizeof a), res.chunks_skipped,
                               format_size(res.raw_skipped, b, sizeof b));
                printf("  fetched      %s in %u range requests (%s/s)\n", format_size(res.bytes_fetched, a, sizeof a),
                       res.ranges, format_size(secs > 0 ? (uint64_t) ((double) res.bytes_fetched / secs) : 0, cc, sizeof cc));
                if (st.requests)
                        printf("  http         %llu requests (%llu retries) over %llu connections, %s, %s received\n",
                               (unsigned long long) st.requests, (unsigned long long) st.retries,
                               (unsigned long long) st.connections, st.protocol ? st.protocol : "-",
                               format_size(st.bytes_down, d, sizeof d));
                printf("  time         %.2f s\n", secs);
        }
        r = 0;
out:
        chunkstore_free(store);
        image_free(img);
        source_free(src);
        return r;
}
