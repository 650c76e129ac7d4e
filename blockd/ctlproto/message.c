/* SPDX-License-Identifier: Apache-2.0 */
#include "message.h"

#include <errno.h>
#include <string.h>

#include "common/util.h"

struct json_object *ctlproto_ok(void) {
        struct json_object *o = json_object_new_object();

        json_object_object_add(o, "ok", json_object_new_boolean(true));
        return o;
}

struct json_object *ctlproto_error(int r, const char *msg) {
        struct json_object *o = json_object_new_object();
        const char *name = strerrorname_np(r < 0 ? -r : r);

        json_object_object_add(o, "ok", json_object_new_boolean(false));
        json_object_object_add(o, "error", json_object_new_string(msg && *msg ? msg : strerror(r < 0 ? -r : r)));
        json_object_object_add(o, "errno", json_object_new_string(name ? name : "EIO"));
        return o;
}

const char *ctlproto_get_string(struct json_object *o, const char *key) {
        struct json_object *v;

        if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
                return NULL;
        return json_object_get_string(v);
}

int ctlproto_send(int fd, struct json_object *o) {
        const char *t = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
        int r;

        if (!t)
                return -ENOMEM;
        r = write_all(fd, t, strlen(t));
        if (r >= 0)
                r = write_all(fd, "\n", 1);
        return r;
}

int ctlproto_parse(const char *line, struct json_object **ret) {
        struct json_object *o = json_tokener_parse(line);

        if (!o || !json_object_is_type(o, json_type_object)) {
                json_object_put(o);
                return -EINVAL;
        }
        *ret = o;
        return 0;
}

int ctlproto_answer_errno(struct json_object *resp) {
        struct json_object *v;
        const char *name;

        if (json_object_object_get_ex(resp, "ok", &v) && json_object_get_boolean(v))
                return 0;
        name = ctlproto_get_string(resp, "errno");
        /* The inverse of ctlproto_error's strerrorname_np. */
        for (int e = 1; name && e < 256; e++) {
                const char *n = strerrorname_np(e);
                if (n && !strcmp(n, name))
                        return -e;
        }
        return -EIO;
}
