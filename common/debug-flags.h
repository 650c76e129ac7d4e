/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Debug flags: "-D registry.http=1" turns on one kind of debug output.
 * DEBUG_FLAGS is the one table: each row declares an int, debug_<id>, that
 * the code using it reads directly (one load per request, no lookup), the
 * name -D takes, and the line --help prints. Add a flag by adding a row.
 *
 * The ints are written while options are parsed, before any thread starts,
 * and only read afterwards. -v turns every flag not set explicitly on at 1.
 */
#pragma once

#include <stddef.h>

#define DEBUG_FLAGS(X)                                                                          \
        X(registry_http, "registry.http", "each HTTP request, its result and time")             \
        X(registry_auth, "registry.auth", "registry token fetches and their scopes")            \
        X(registry_blob, "registry.blob", "blob stats and reads through a source")              \
        X(sched_fetch, "sched.fetch", "the fetch scheduler's range requests")                   \
        X(export_fetch, "export.fetch", "chunks fetched per export, with the class")            \
        X(nbd_requests, "nbd.requests", "NBD requests, and why one failed")

#define DEBUG_FLAG_DECLARE(id, name, help) extern int debug_##id;
DEBUG_FLAGS(DEBUG_FLAG_DECLARE)
#undef DEBUG_FLAG_DECLARE

/* The help of -D: the flags, one a continuation line each (opttable.h). */
#define DEBUG_FLAG_HELP_LINE(id, name, help) "\n  " name ": " help
#define DEBUG_FLAGS_HELP "turn on one debug flag (=0: off); NAME is one of" DEBUG_FLAGS(DEBUG_FLAG_HELP_LINE)

/* "-D NAME[=N]": set one flag. 0, or -EINVAL with the reason in err in
 * opttable's "wants ..., not '...'" form (an unknown NAME lists the known
 * ones; N must be 0-1000). */
int debug_flag_parse(const char *assignment, char *err, size_t errlen);
/* Set every flag not set explicitly by debug_flag_parse() to value (-v). */
void debug_flags_set_default(int value);
