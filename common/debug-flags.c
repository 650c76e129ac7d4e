/* SPDX-License-Identifier: Apache-2.0 */
/* The debug flags of debug-flags.h: their ints, and -D parsing. */
#include "debug-flags.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "cleanup.h"

#define DEBUG_FLAG_DEFINE(id, name, help) int debug_##id;
DEBUG_FLAGS(DEBUG_FLAG_DEFINE)
#undef DEBUG_FLAG_DEFINE

#define DEBUG_FLAG_ROW(id, name, help) { name, &debug_##id },
static const struct {
        const char *name;
        int *value;
} flags[] = { DEBUG_FLAGS(DEBUG_FLAG_ROW) };
#undef DEBUG_FLAG_ROW

static bool explicit[ARRAY_SIZE(flags)];

/* "registry.http, registry.auth, ..." for the unknown-name error. */
static void known_names(char *buf, size_t len) {
        size_t pos = 0;

        buf[0] = 0;
        for (size_t i = 0; i < ARRAY_SIZE(flags) && pos < len; i++)
                pos += (size_t) snprintf(buf + pos, len - pos, "%s%s", i ? ", " : "", flags[i].name);
}

int debug_flag_parse(const char *assignment, char *err, size_t errlen) {
        const char *eq = strchr(assignment, '=');
        size_t len = eq ? (size_t) (eq - assignment) : strlen(assignment);
        char known[512];
        int value = 1;

        if (eq) {
                char *end;
                long v;

                errno = 0;
                v = strtol(eq + 1, &end, 10);
                if (errno || end == eq + 1 || *end || v < 0 || v > 1000)
                        return err_set(err, errlen, -EINVAL, "wants NAME=N with N 0-1000, not '%s'", assignment);
                value = (int) v;
        }
        for (size_t i = 0; i < ARRAY_SIZE(flags); i++)
                if (strlen(flags[i].name) == len && !memcmp(flags[i].name, assignment, len)) {
                        *flags[i].value = value;
                        explicit[i] = true;
                        return 0;
                }
        known_names(known, sizeof known);
        return err_set(err, errlen, -EINVAL, "wants a known debug flag, not '%.*s' (known: %s)", (int) len, assignment,
                       known);
}

void debug_flags_set_default(int value) {
        for (size_t i = 0; i < ARRAY_SIZE(flags); i++)
                if (!explicit[i])
                        *flags[i].value = value;
}
