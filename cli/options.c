/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "common/log.h"

struct source_options arg_source;
const char *arg_cache_dir;

int cli_common_option(int c, const char *arg) {
        switch (c) {
        case 'h':
                return 2;
        case 'v':
                log_set_level(LOG_LVL_DEBUG);
                debug_flags_set_default(1);
                return 1;
        case 'D':
                if (debug_flag_parse(arg) < 0) {
                        log_error("Invalid debug flag '%s' (want NAME or NAME=N)", arg);
                        return -EINVAL;
                }
                log_set_level(LOG_LVL_DEBUG);
                return 1;
        case OPT_PLAIN_HTTP:
                arg_source.plain_http = true;
                return 1;
        case OPT_CA_FILE:
                arg_source.ca_file = arg;
                return 1;
        case OPT_CREDS:
                if (!strchr(arg, ':')) {
                        log_error("--creds wants USER:PASS");
                        return -EINVAL;
                }
                arg_source.creds = arg;
                return 1;
        case OPT_AUTHFILE:
                arg_source.auth_file = arg;
                return 1;
        case OPT_CACHE:
                arg_cache_dir = arg;
                return 1;
        default:
                return 0;
        }
}

int cli_usage_error(const char *cmd, const char *fmt, ...) {
        char msg[512];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        log_error("%s (see 'hocus-blk %s --help')", msg, cmd);
        return -EINVAL;
}

int cli_exit_status(int r) {
        if (r >= 0)
                return 0;
        if (r == -EINVAL)
                return 2;
        return 1;
}

/* A sentence for what went wrong opening a source. */
static const char *open_error(int r) {
        switch (r) {
        case -ENOENT:
                return "no such directory";
        case -ENOMEDIUM:
                return "not an OCI image layout (no oci-layout file)";
        default:
                return strerror(-r);
        }
}

/* Tuning knobs for docker:// sources from the environment (tests use
 * them to fail fast); ignored when unset or malformed. */
static void env_unsigned(const char *name, unsigned *ret) {
        const char *e = getenv(name);
        char *end;
        unsigned long v;

        if (!e || !*e)
                return;
        v = strtoul(e, &end, 10);
        if (*end || v == 0 || v > 3600)
                return;
        *ret = (unsigned) v;
}

int cli_open_source(const char *ref, bool create, struct blob_source **ret) {
        struct source_options o = arg_source;
        char err[512] = "";
        int r;

        o.create = create;
        env_unsigned("HOCUS_BLK_HTTP_STALL_TIMEOUT", &o.stall_timeout_s);
        env_unsigned("HOCUS_BLK_HTTP_ATTEMPTS", &o.max_attempts);
        env_unsigned("HOCUS_BLK_HTTP_CONNECTIONS", &o.max_connections);
        r = source_open(ref, &o, ret, err, sizeof err);
        /* A registry says what went wrong in err (any error). */
        if (r < 0 && r != -EINVAL && err[0])
                return log_error_errno(r, "Cannot open '%s': %s", ref, err);
        if (r == -EINVAL && err[0])
                return log_error_errno(r, "Invalid reference: %s", err);
        if (r < 0)
                return log_error_errno(r, "Cannot open '%s': %s", ref, open_error(r));
        return 0;
}

int cli_open_image(const char *ref, struct blob_source **ret_src, struct image **ret_img) {
        struct blob_source *src;
        char err[512] = "";
        int r;

        r = cli_open_source(ref, false, &src);
        if (r < 0)
                return r;
        r = image_open(src, ret_img, err, sizeof err);
        if (r < 0) {
                source_free(src);
                return log_error_errno(r, "%s", err[0] ? err : strerror(-r));
        }
        *ret_src = src;
        return 0;
}

const char *cli_cache_dir(void) {
        const char *e;

        if (arg_cache_dir)
                return arg_cache_dir;
        e = getenv("HOCUS_BLK_CACHE");
        if (e && *e)
                return e;
        return "/var/cache/hocus-blk";
}

int cli_open_cache(uint64_t max_bytes, struct chunkstore **ret) {
        const char *dir = cli_cache_dir();
        int r;

        r = chunkstore_open(dir, max_bytes, ret);
        if (r == -EPROTONOSUPPORT)
                return log_error_errno(r, "'%s' is not a hocus-blk chunk store of a known version", dir);
        if (r < 0)
                return log_error_errno(r, "Cannot open the chunk store '%s': %m", dir);
        return 0;
}
