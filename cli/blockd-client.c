/* SPDX-License-Identifier: Apache-2.0 */
#include "blockd-client.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "blockd/ctlproto/client.h"
#include "blockd/ctlproto/message.h"
#include "cli.h"
#include "common/log.h"

int blockd_call(const char *cmd, const char *control, struct json_object *req, struct json_object **ret) {
        struct json_object *resp = NULL;
        const char *msg;
        char buf[4096], err[512];
        int r;

        if (!control)
                control = control_default_path(buf, sizeof buf);
        if (!control) {
                json_object_put(req);
                return log_error_errno(EINVAL, "No control socket: pass --control PATH or set $HOCUS_BLK_CONTROL");
        }
        json_object_object_add(req, "cmd", json_object_new_string(cmd));
        r = control_call(control, req, &resp, err, sizeof err);
        json_object_put(req);
        if (r < 0)
                return log_error_errno(r, "%s", err);
        r = ctlproto_answer_errno(resp);
        if (r < 0) {
                msg = ctlproto_get_string(resp, "error");
                log_error("%s", msg ? msg : "blockd refused the request");
                json_object_put(resp);
                return r;
        }
        *ret = resp;
        return 0;
}

int blockd_option(const char *cmd, int c, const char *arg, const char **control, bool *json, void (*help)(void)) {
        switch (c) {
        case 'h':
                help();
                return 0;
        case 'v':
                log_set_level(LOG_LVL_DEBUG);
                return 1;
        case OPT_BLOCKD_CONTROL:
                *control = arg;
                return 1;
        case OPT_BLOCKD_JSON:
                if (json) {
                        *json = true;
                        return 1;
                }
                break;
        }
        return cli_usage_error(cmd, "unknown option");
}
