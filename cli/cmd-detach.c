/* SPDX-License-Identifier: Apache-2.0 */
/* hocus-blk detach NAME: remove an export from a running blockd. */
#include <stdio.h>

#include "blockd-client.h"
#include "cli.h"

static void help(void) {
        printf("Usage: hocus-blk detach NAME [OPTIONS]\n\n"
               "Ask a running blockd to stop serving export NAME. Its clients are disconnected\n"
               "once their requests in flight are answered, and its overlay is flushed and\n"
               "closed before this command returns.\n\n"
               "Options:\n" BLOCKD_HELP);
}

int cmd_detach(int argc, char **argv) {
        static const struct option options[] = { BLOCKD_LONG_OPTIONS_NO_JSON };
        const char *control = NULL;
        struct json_object *req, *resp;
        int c, r;

        while ((c = cli_getopt(argc, argv, "hv", options)) >= 0) {
                r = blockd_option("detach", c, optarg, &control, NULL, help);
                if (r <= 0)
                        return r;
        }
        if (argc - optind != 1)
                return cli_usage_error("detach", "detach takes NAME");
        req = json_object_new_object();
        json_object_object_add(req, "name", json_object_new_string(argv[optind]));
        r = blockd_call("detach", control, req, &resp);
        if (r < 0)
                return r;
        json_object_put(resp);
        printf("Detached %s\n", argv[optind]);
        return 0;
}
