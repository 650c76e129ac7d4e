/* SPDX-License-Identifier: Apache-2.0 */
/* --json output: json-c documents on stdout, one key style. */
#include "json-out.h"

#include <stdbool.h>
#include <stdio.h>

void cli_json_print(struct json_object *o, bool compact) {
        int flags = (compact ? JSON_C_TO_STRING_PLAIN : JSON_C_TO_STRING_PRETTY) | JSON_C_TO_STRING_NOSLASHESCAPE;

        printf("%s\n", json_object_to_json_string_ext(o, flags));
        fflush(stdout);
        json_object_put(o);
}

void json_add_u64(struct json_object *o, const char *key, uint64_t v) {
        json_object_object_add(o, key, json_object_new_uint64(v));
}

void json_add_str(struct json_object *o, const char *key, const char *v) {
        json_object_object_add(o, key, v ? json_object_new_string(v) : NULL);
}

void json_add_double(struct json_object *o, const char *key, double v) {
        json_object_object_add(o, key, json_object_new_double(v));
}

void json_add_bool(struct json_object *o, const char *key, bool v) {
        json_object_object_add(o, key, json_object_new_boolean(v));
}

void json_add_digest(struct json_object *o, const char *key, const struct digest *d) {
        char ds[DIGEST_STRING_MAX];

        json_add_str(o, key, digest_to_string(d, ds));
}
