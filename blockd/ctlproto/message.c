/* SPDX-License-Identifier: Apache-2.0 */
#include "message.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/sockio.h"
#include "common/utf8.h"
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

/* text (len bytes) and a newline, with every byte that is not part of
 * valid UTF-8 replaced by U+FFFD: json-c copies string bytes >= 0x80 as
 * they are, and only strings can hold them, so the result is still the
 * same JSON, and valid. malloc'd. */
static char *line_of(const char *text, size_t len, size_t *ret_len) {
        char *out = malloc(len * 3 + 2);
        size_t o = 0;

        if (!out)
                return NULL;
        for (size_t i = 0; i < len;) {
                size_t n = utf8_char_len(text + i, len - i);
                if (n == 0) {
                        memcpy(out + o, "\xef\xbf\xbd", 3);
                        o += 3;
                        i++;
                } else {
                        memcpy(out + o, text + i, n);
                        o += n;
                        i += n;
                }
        }
        out[o++] = '\n';
        *ret_len = o;
        return out;
}

int ctlproto_send(int fd, struct json_object *o, uint64_t deadline_ns, int cancel_fd) {
        const char *t = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
        char *line;
        size_t len;
        int r;

        if (!t)
                return -ENOMEM;
        len = strlen(t);
        if (utf8_valid(t, len, NULL)) {
                /* The usual case: no copy. */
                r = send_all(fd, t, len, deadline_ns, cancel_fd);
                return r < 0 ? r : send_all(fd, "\n", 1, deadline_ns, cancel_fd);
        }
        line = line_of(t, len, &len);
        if (!line)
                return -ENOMEM;
        r = send_all(fd, line, len, deadline_ns, cancel_fd);
        free(line);
        return r;
}

/* Every string (and key) in o is valid UTF-8 without NUL. json-c decodes
 * \u escapes (lone surrogates become U+FFFD; \u0000 a NUL). */
static bool strings_valid(struct json_object *o) {
        switch (json_object_get_type(o)) {
        case json_type_string: {
                const char *s = json_object_get_string(o);
                size_t len = (size_t) json_object_get_string_len(o);
                return memchr(s, 0, len) == NULL && utf8_valid(s, len, NULL);
        }
        case json_type_object: {
                json_object_object_foreach(o, key, v) {
                        if (!utf8_valid(key, strlen(key), NULL) || !strings_valid(v))
                                return false;
                }
                return true;
        }
        case json_type_array:
                for (size_t i = 0; i < json_object_array_length(o); i++)
                        if (!strings_valid(json_object_array_get_idx(o, i)))
                                return false;
                return true;
        default:
                return true;
        }
}

int ctlproto_parse(const char *line, size_t len, struct json_object **ret) {
        struct json_tokener *tok;
        struct json_object *o;
        size_t end;

        if (memchr(line, 0, len) || !utf8_valid(line, len, NULL))
                return -EILSEQ;
        if (len > INT32_MAX)
                return -EMSGSIZE;
        tok = json_tokener_new();
        if (!tok)
                return -ENOMEM;
        o = json_tokener_parse_ex(tok, line, (int) len);
        end = json_tokener_get_parse_end(tok);
        json_tokener_free(tok);
        /* Nothing but white space may follow the object. */
        while (o && end < len && strchr(" \t\r\n", line[end]))
                end++;
        if (!o || end != len || !json_object_is_type(o, json_type_object)) {
                json_object_put(o);
                return -EINVAL;
        }
        if (!strings_valid(o)) {
                json_object_put(o);
                return -EILSEQ;
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
