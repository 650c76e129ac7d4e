/* SPDX-License-Identifier: Apache-2.0 */
/* hocus-blk ls [--json]: the exports of a running blockd. */
#include <stdio.h>

#include "blockd-client.h"
#include "cli.h"
#include "json-out.h"
#include "common/util.h"

static void help(void) {
        printf("Usage: hocus-blk ls [OPTIONS]\n\n"
               "List the exports of a running blockd: name, size, mode, clients, state\n"
               "(online; offline: the registry is unreachable and only local data is served;\n"
               "failed: not attached, retried, with the reason), hydration (the share of the\n"
               "image that is local), NBD URI, image reference and the manifest it is pinned to,\n"
               "and the vhost-user-blk socket of an export that has one.\n\n"
               "Options:\n"
               "  --json               machine-readable output\n" BLOCKD_HELP);
}

static const char *str(struct json_object *o, const char *key) {
        struct json_object *v;

        return json_object_object_get_ex(o, key, &v) && v ? json_object_get_string(v) : "-";
}

static int64_t num(struct json_object *o, const char *key) {
        struct json_object *v;

        return json_object_object_get_ex(o, key, &v) && v ? json_object_get_int64(v) : 0;
}

int cmd_ls(int argc, char **argv) {
        static const struct option options[] = { BLOCKD_LONG_OPTIONS };
        const char *control = NULL;
        struct json_object *resp, *arr;
        bool json = false;
        int c, r;

        while ((c = cli_getopt(argc, argv, "hv", options)) >= 0) {
                r = blockd_option("ls", c, optarg, &control, &json, help);
                if (r <= 0)
                        return r;
        }
        if (argc - optind != 0)
                return cli_usage_error("ls", "ls takes no arguments");
        r = blockd_call("list", control, json_object_new_object(), &resp);
        if (r < 0)
                return r;
        json_object_object_get_ex(resp, "exports", &arr);
        if (json) {
                cli_json_print(json_object_get(arr), false);
        } else {
                printf("%-20s %10s %-10s %7s %-8s %9s  %s\n", "NAME", "SIZE", "MODE", "CLIENTS", "STATE",
                       "HYDRATED", "URI / REF / MANIFEST");
                for (size_t i = 0; i < json_object_array_length(arr); i++) {
                        struct json_object *e = json_object_array_get_idx(arr, i), *ro, *h = NULL, *err = NULL;
                        char sz[32] = "-", hy[16] = "-";

                        json_object_object_get_ex(e, "readonly", &ro);
                        if (json_object_object_get_ex(e, "size", NULL))
                                format_size((uint64_t) num(e, "size"), sz, sizeof sz);
                        if (json_object_object_get_ex(e, "hydration_pct", &h) && h)
                                snprintf(hy, sizeof hy, "%.1f%%", json_object_get_double(h));
                        printf("%-20s %10s %-10s %7lld %-8s %9s  %s\n%-70s %s\n%-70s %s\n", str(e, "name"), sz,
                               json_object_get_boolean(ro) ? "read-only" : "writable", (long long) num(e, "clients"),
                               str(e, "state"), hy, str(e, "uri"), "", str(e, "ref"), "", str(e, "manifest"));
                        if (json_object_object_get_ex(e, "vhost_user", NULL))
                                printf("%-70s vhost-user: %s\n", "", str(e, "vhost_user"));
                        if (json_object_object_get_ex(e, "error", &err) && err)
                                printf("%-70s %s: %s\n", "", str(e, "state"), json_object_get_string(err));
                }
        }
        json_object_put(resp);
        return 0;
}
