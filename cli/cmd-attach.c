/* SPDX-License-Identifier: Apache-2.0 */
/* hocus-blk attach NAME REF [--overlay PATH] [--vhost-user PATH]: add an export to a running
 * blockd; attach --update NAME: move it to what its reference names now. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blockd-client.h"
#include "cli.h"
#include "json-out.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"

static void help(void) {
        printf("Usage: hocus-blk attach NAME REF [OPTIONS]\n"
               "       hocus-blk attach --update NAME\n\n"
               "Ask a running blockd to serve image REF as export NAME. Without --overlay the\n"
               "export is read-only; with it, writes go to the overlay file PATH (created if\n"
               "missing; reattaching the same file continues where it left off). The export is\n"
               "pinned to the manifest REF names now, across blockd restarts: a tag pushed anew\n"
               "changes nothing until --update.\n\n"
               "Options:\n"
               "  --overlay PATH       writable overlay file\n"
               "  --vhost-user PATH    also serve it as a vhost-user-blk socket at PATH, for\n"
               "                       VMMs (qemu vhost-user-blk-pci, cloud-hypervisor,\n"
               "                       firecracker; docs/VMMS.md); kept across restarts\n"
               "  --update             resolve export NAME's reference again and serve the\n"
               "                       manifest it names now (read-only exports; clients are\n"
               "                       disconnected and reconnect to the new image)\n"
               "  --json               print the new export as JSON\n" BLOCKD_HELP
               "\nAs a kernel block device (where blockd's start log says the kernel has nbd or\n"
               "ublk; docs/KERNEL-DEVICES.md):\n"
               "  nbd-client -unix SOCKET -N NAME /dev/nbd0 -timeout 30 -persist\n"
               "      reconnects when blockd restarts; the kernel holds requests meanwhile only\n"
               "      for its dead-connection timeout, then they fail with EIO\n"
               "  nbdublk - 'nbd+unix:///NAME?socket=SOCKET'\n"
               "      does not reconnect: after a blockd restart, ublk del -n N and run it again\n");
}

/* blockd resolves paths from its own working directory: send absolute ones. */
static char *absolute(const char *path) {
        char cwd[4096];
        char *r;

        if (path[0] == '/')
                return strdup(path);
        if (!getcwd(cwd, sizeof cwd))
                return NULL;
        if (asprintf(&r, "%s/%s", cwd, path) < 0)
                return NULL;
        return r;
}

static char *absolute_ref(const char *ref) {
        _cleanup_free_ char *dir = NULL;
        char *r;

        if (strncmp(ref, "oci:", 4) != 0 || ref[4] == '/')
                return strdup(ref);
        dir = absolute(ref + 4);
        if (!dir || asprintf(&r, "oci:%s", dir) < 0)
                return NULL;
        return r;
}

/* attach --update NAME */
static int update_export(const char *name, const char *control, bool json) {
        struct json_object *req = json_object_new_object(), *resp, *e, *v, *ch;
        int r;

        json_object_object_add(req, "name", json_object_new_string(name));
        json_object_object_add(req, "update", json_object_new_boolean(true));
        r = blockd_call("attach", control, req, &resp);
        if (r < 0)
                return r;
        if (!json_object_object_get_ex(resp, "export", &e) || !json_object_object_get_ex(resp, "changed", &ch)) {
                json_object_put(resp);
                return log_error_errno(EPROTO, "blockd answered without the export");
        }
        if (json) {
                cli_json_print(json_object_get(resp), false);
        } else {
                json_object_object_get_ex(e, "manifest", &v);
                printf("%s %s %s\n", name, json_object_get_boolean(ch) ? "updated to" : "unchanged: still",
                       json_object_get_string(v));
        }
        json_object_put(resp);
        return 0;
}

int cmd_attach(int argc, char **argv) {
        static const struct option options[] = {
                { "overlay", required_argument, NULL, OPT_BLOCKD_OVERLAY },
                { "update", no_argument, NULL, OPT_BLOCKD_OVERLAY + 100 },
                { "vhost-user", required_argument, NULL, OPT_BLOCKD_OVERLAY + 101 },
                BLOCKD_LONG_OPTIONS,
        };
        const char *control = NULL, *overlay = NULL, *vhost = NULL;
        bool update = false;
        _cleanup_free_ char *ref = NULL, *ov = NULL, *vu = NULL;
        struct json_object *req, *resp, *e, *v;
        bool json = false;
        char sz[32];
        int c, r;

        while ((c = cli_getopt(argc, argv, "hv", options)) >= 0) {
                if (c == OPT_BLOCKD_OVERLAY) {
                        overlay = optarg;
                        continue;
                }
                if (c == OPT_BLOCKD_OVERLAY + 101) {
                        vhost = optarg;
                        continue;
                }
                if (c == OPT_BLOCKD_OVERLAY + 100) {
                        update = true;
                        continue;
                }
                r = blockd_option("attach", c, optarg, &control, &json, help);
                if (r <= 0)
                        return r;
        }
        if (update) {
                if (argc - optind != 1 || overlay || vhost)
                        return cli_usage_error("attach", "attach --update takes NAME only");
                return update_export(argv[optind], control, json);
        }
        if (argc - optind != 2)
                return cli_usage_error("attach", "attach takes NAME and REF");
        ref = absolute_ref(argv[optind + 1]);
        if (!ref || (overlay && !(ov = absolute(overlay))) || (vhost && !(vu = absolute(vhost))))
                return log_error_errno(ENOMEM, "Out of memory");

        req = json_object_new_object();
        json_object_object_add(req, "name", json_object_new_string(argv[optind]));
        json_object_object_add(req, "ref", json_object_new_string(ref));
        if (ov)
                json_object_object_add(req, "overlay", json_object_new_string(ov));
        if (vu)
                json_object_object_add(req, "vhost_user", json_object_new_string(vu));
        r = blockd_call("attach", control, req, &resp);
        if (r < 0)
                return r;
        if (!json_object_object_get_ex(resp, "export", &e)) {
                json_object_put(resp);
                return log_error_errno(EPROTO, "blockd answered without the export");
        }
        if (json) {
                cli_json_print(json_object_get(e), false);
        } else {
                json_object_object_get_ex(e, "size", &v);
                format_size((uint64_t) json_object_get_int64(v), sz, sizeof sz);
                printf("Attached %s (%s, %s)", argv[optind], sz, ov ? "writable" : "read-only");
                if (json_object_object_get_ex(e, "uri", &v) && v)
                        printf(": %s", json_object_get_string(v));
                printf("\n");
        }
        json_object_put(resp);
        return 0;
}
