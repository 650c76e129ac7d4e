/* SPDX-License-Identifier: Apache-2.0 */
/* The control protocol's pieces (blockd/ctlproto/): the counter table is
 * consistent and keeps the names clients depend on, counters survive a
 * trip through JSON, errors carry their errno both ways. */
#undef NDEBUG
#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "blockd/ctlproto/counters.h"
#include "blockd/ctlproto/message.h"
#include "common/sockio.h"

/* The "stats" keys and Prometheus families as released: renaming one
 * breaks scripts, dashboards and the e2e tests. */
static const char *const json_keys[] = {
        "reads", "writes", "trims", "zeroes", "flushes", "block_status", "bytes_read", "bytes_written",
        "cache_hits", "cache_misses", "bytes_fetched", "errors", "clients", "overlay_data_bytes",
        "overlay_zero_bytes", "prefetch_queued", "prefetch_done", "prefetch_fetched", "prefetch_bytes",
        "prefetch_gap_chunks", "prefetch_gap_waste_bytes", "prefetch_active", "recording", "recorded_entries", "learning", "learned_entries", "prefetch_learned",
        "demand_requests", "profile_requests", "background_requests", "demand_bytes", "background_bytes",
        "background_chunks", "readahead_issued", "readahead_used", "readahead_wasted", "readahead_async", "bytes_needed",
        "hydrated_bytes", "image_bytes", "demand_waits", "demand_cold_waits", "demand_wait_s", "demand_failures", "fetch_errors",
        "digest_mismatches", "cache_full_events", "reverify_failures", "mirror_reads", "mirror_skips",
        "attach_s", "attach_connect_s", "attach_manifest_s", "attach_index_s", "first_read_s", "profile_lookup",
        "profile_lookup_s",
        "http_connections", "http_demand_connections",
};

static const char *const families[] = {
        "hocus_blk_export_size_bytes", "hocus_blk_export_requests_total", "hocus_blk_export_read_bytes_total",
        "hocus_blk_export_written_bytes_total", "hocus_blk_export_cache_hits_total",
        "hocus_blk_export_cache_misses_total", "hocus_blk_export_fetched_bytes_total", "hocus_blk_export_errors_total",
        "hocus_blk_export_clients", "hocus_blk_export_overlay_bytes", "hocus_blk_export_prefetch_queued_chunks",
        "hocus_blk_export_prefetch_done_chunks", "hocus_blk_export_prefetched_chunks_total",
        "hocus_blk_export_prefetched_bytes_total", "hocus_blk_export_fetch_requests_total",
        "hocus_blk_export_fetch_bytes_total", "hocus_blk_export_readahead_chunks_total",
        "hocus_blk_export_readahead_unused_chunks", "hocus_blk_export_readahead_async_total", "hocus_blk_export_needed_bytes_total", "hocus_blk_export_hydrated_bytes",
        "hocus_blk_export_image_bytes", "hocus_blk_export_demand_waits_total", "hocus_blk_export_demand_cold_waits_total",
        "hocus_blk_export_demand_wait_seconds_total", "hocus_blk_export_demand_failures_total",
        "hocus_blk_export_fetch_errors_total", "hocus_blk_export_digest_mismatches_total",
        "hocus_blk_export_cache_full_events_total", "hocus_blk_export_reverify_failures_total",
        "hocus_blk_export_mirror_reads_total", "hocus_blk_export_mirror_skips_total",
        "hocus_blk_export_http_connections_total", "hocus_blk_export_http_demand_connections_total",
};

static bool ends_with(const char *s, const char *suffix) {
        size_t n = strlen(s), m = strlen(suffix);
        return n >= m && strcmp(s + n - m, suffix) == 0;
}

static void test_table(void) {
        size_t n_json = 0, n_fam = 0;

        assert(sizeof(struct export_stats) == (export_counters_count + 1) * sizeof(uint64_t));
        for (size_t i = 0; i < export_counters_count; i++) {
                const struct export_counter *c = &export_counters[i];
                bool first = true;

                assert(c->field && c->help && c->help[0]);
                assert(c->offset % sizeof(uint64_t) == 0 && c->offset < sizeof(struct export_stats));
                if (c->json) {
                        assert(n_json < sizeof json_keys / sizeof json_keys[0]);
                        assert(strcmp(c->json, json_keys[n_json]) == 0);
                        n_json++;
                }
                for (size_t k = 0; k < i; k++) {
                        const struct export_counter *o = &export_counters[k];

                        assert(strcmp(o->field, c->field) != 0);
                        assert(o->offset != c->offset);
                        if (c->json && o->json)
                                assert(strcmp(o->json, c->json) != 0);
                        if (!c->prom || !o->prom || strcmp(o->prom, c->prom) != 0)
                                continue;
                        /* One family: one type, one help, a label per row. */
                        first = false;
                        assert(o->kind == c->kind && o->unit == c->unit && strcmp(o->help, c->help) == 0);
                        assert(o->label && c->label && strcmp(o->label, c->label) != 0);
                }
                if (!c->prom)
                        continue;
                /* Prometheus naming: counters end in _total, and a time in seconds. */
                assert(ends_with(c->prom, "_total") == (c->kind == COUNTER_KIND_COUNTER));
                assert(c->unit != COUNTER_UNIT_NS || ends_with(c->prom, "_seconds_total"));
                assert(c->unit != COUNTER_UNIT_FLAG);
                if (first) {
                        assert(n_fam < sizeof families / sizeof families[0]);
                        assert(strcmp(c->prom, families[n_fam]) == 0);
                        n_fam++;
                }
        }
        assert(n_json == sizeof json_keys / sizeof json_keys[0]);
        assert(n_fam == sizeof families / sizeof families[0]);
}

static void test_json(void) {
        struct export_stats st = { 0 }, back;
        struct json_object *o = json_object_new_object(), *v;

        for (size_t i = 0; i < export_counters_count; i++) {
                const struct export_counter *c = &export_counters[i];
                uint64_t *p = (uint64_t *) ((char *) &st + c->offset);

                *p = c->unit == COUNTER_UNIT_FLAG ? 1 : c->unit == COUNTER_UNIT_NS ? 1234567891ull : (1ull << 40) + i;
        }
        st.hydrated_bytes = 1;
        st.image_bytes = 4;
        export_stats_to_json(&st, o);

        assert(json_object_object_get_ex(o, "reads", &v) && json_object_get_int64(v) == (int64_t) st.reads);
        assert(json_object_object_get_ex(o, "prefetch_active", &v) && json_object_is_type(v, json_type_boolean));
        assert(json_object_object_get_ex(o, "demand_wait_s", &v) && json_object_is_type(v, json_type_double));
        assert(json_object_get_double(v) > 1.2345678 && json_object_get_double(v) < 1.2345679);
        assert(json_object_object_get_ex(o, "hydration_pct", &v) && json_object_get_double(v) == 25.0);
        assert(!json_object_object_get_ex(o, "profile_bytes", NULL) && !json_object_object_get_ex(o, "size", NULL));

        export_stats_from_json(o, &back);
        for (size_t i = 0; i < export_counters_count; i++) {
                const struct export_counter *c = &export_counters[i];

                assert(export_counter_value(&back, c) == (c->json ? export_counter_value(&st, c) : 0));
        }
        json_object_put(o);

        st = (struct export_stats) { 0 };
        assert(export_stats_hydration(&st) == 1.0);
}

static int parse(const char *line, struct json_object **ret) {
        return ctlproto_parse(line, strlen(line), ret);
}

static void test_messages(void) {
        struct json_object *o;

        o = ctlproto_error(-EMEDIUMTYPE, "overlay of another image");
        assert(ctlproto_answer_errno(o) == -EMEDIUMTYPE);
        assert(strcmp(ctlproto_get_string(o, "errno"), "EMEDIUMTYPE") == 0);
        assert(strcmp(ctlproto_get_string(o, "error"), "overlay of another image") == 0);
        json_object_put(o);
        o = ctlproto_error(-ENOENT, NULL);
        assert(ctlproto_answer_errno(o) == -ENOENT && strcmp(ctlproto_get_string(o, "error"), strerror(ENOENT)) == 0);
        json_object_put(o);
        o = ctlproto_ok();
        assert(ctlproto_answer_errno(o) == 0 && !ctlproto_get_string(o, "ok"));
        json_object_put(o);

        assert(parse("{\"ok\":false,\"errno\":\"ENOTANERRNO\"}", &o) == 0);
        assert(ctlproto_answer_errno(o) == -EIO);
        json_object_put(o);
        assert(parse("{\"ok\":false}", &o) == 0);
        assert(ctlproto_answer_errno(o) == -EIO);
        json_object_put(o);
        assert(parse("not json", &o) == -EINVAL);
        assert(parse("[1,2]", &o) == -EINVAL);
        assert(parse("\"cmd\"", &o) == -EINVAL);
        assert(parse("", &o) == -EINVAL);
        assert(parse("{\"cmd\":\"ls\"", &o) == -EINVAL);                /* unfinished */
        assert(parse("{\"cmd\":\"ls\"} trailing", &o) == -EINVAL);      /* one object, nothing after */
        assert(parse("{\"cmd\":\"ls\"}{}", &o) == -EINVAL);
        assert(parse("{\"cmd\":\"ls\"} \t", &o) == 0);
        json_object_put(o);
}

/* Requests must be UTF-8; answers always are, so always JSON. */
static void test_utf8(void) {
        struct json_object *o;
        char buf[4096];
        int sv[2];
        ssize_t n;

        assert(parse("{\"cmd\":\"attach\",\"name\":\"caf\xc3\xa9\"}", &o) == 0);
        assert(strcmp(ctlproto_get_string(o, "name"), "caf\xc3\xa9") == 0);
        json_object_put(o);
        assert(parse("{\"cmd\":\"attach\",\"name\":\"\xff\"}", &o) == -EILSEQ);
        assert(parse("{\"cmd\":\"attach\",\"name\":\"\xc0\xaf\"}", &o) == -EILSEQ);     /* overlong */
        assert(parse("{\"cmd\":\"attach\",\"\xed\xa0\x80\":1}", &o) == -EILSEQ);        /* surrogate key */
        assert(parse("{\"cmd\":\"x\\u0000y\"}", &o) == -EILSEQ);                     /* NUL in a string */
        assert(ctlproto_parse("{\"cmd\":\"x\"}\0", 13, &o) == -EILSEQ);                 /* a NUL byte */
        assert(parse("{\"cmd\":[\"ok\",{\"a\":\"\xfe\"}]}", &o) == -EILSEQ);           /* nested */
        /* An escaped lone surrogate decodes to U+FFFD: valid. */
        assert(parse("{\"cmd\":\"\\ud800\"}", &o) == 0);
        json_object_put(o);

        /* A string with invalid bytes goes out as U+FFFD, one line of JSON. */
        assert(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
        o = ctlproto_error(-ENOENT, "no export named '\xff\xfe\xc3'");
        assert(ctlproto_send(sv[0], o, DEADLINE_NEVER, -1) == 0);
        json_object_put(o);
        n = read(sv[1], buf, sizeof buf - 1);
        assert(n > 0 && buf[n - 1] == '\n');
        assert(ctlproto_parse(buf, (size_t) n - 1, &o) == 0);
        assert(strcmp(ctlproto_get_string(o, "error"), "no export named '\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd'") == 0);
        assert(ctlproto_answer_errno(o) == -ENOENT);
        json_object_put(o);
        /* The peer is gone: an error, not SIGPIPE. */
        close(sv[1]);
        o = ctlproto_ok();
        assert(ctlproto_send(sv[0], o, DEADLINE_NEVER, -1) == -EPIPE);
        json_object_put(o);
        close(sv[0]);
}

int main(void) {
        test_table();
        test_json();
        test_messages();
        test_utf8();
        printf("ok\n");
        return 0;
}
