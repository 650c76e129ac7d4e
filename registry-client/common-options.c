/* SPDX-License-Identifier: Apache-2.0 */
/* The options every hocus-blk program takes: table, parser, defaults. */
#include "registry-client/common-options.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/debug-flags.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"

const struct opt common_options[] = {
        { "cache", OPT_CACHE, "DIR", "chunk store (default $HOCUS_BLK_CACHE or /var/cache/hocus-blk)", 0 },
        { "plain-http", OPT_PLAIN_HTTP, NULL, "talk HTTP, not HTTPS, to docker:// registries", 0 },
        { "ca-file", OPT_CA_FILE, "FILE", "trust this CA bundle for registry TLS (instead of the\nsystem's; else $SSL_CERT_FILE)", 0 },
        { "cert-dir", OPT_CERT_DIR, "DIR",
          "registry TLS certificates from DIR (*.crt CAs, NAME.cert\nand NAME.key a client certificate) instead of\n"
          "/etc/containers/certs.d/HOST[:PORT], /etc/docker/certs.d/...",
          0 },
        { "tls-verify", OPT_TLS_VERIFY, "BOOL", "false: accept any registry certificate (default true)", 0 },
        { "creds", OPT_CREDS, "USER:PASS",
          "registry credentials; other local users can see them\n"
          "while the program starts: prefer --creds-file or\n"
          "$HOCUS_BLK_CREDS",
          OPT_SECRET },
        { "creds-file", OPT_CREDS_FILE, "FILE", "registry credentials (USER:PASS) from FILE", 0 },
        { "authfile", OPT_AUTHFILE, "FILE",
          "registry auth file (else $REGISTRY_AUTH_FILE, auth.json,\n$DOCKER_CONFIG/config.json)", 0 },
        { "verbose", 'v', NULL, "debug logging", 0 },
        { "debug", 'D', "NAME[=N]", DEBUG_FLAGS_HELP, 0 },
        { "help", 'h', NULL, "show this help", OPT_STOP },
        { NULL, 0, NULL, NULL, 0 },
};

/* A bound far above any token (cloud registries' run to ~3 KiB) and at
 * the header size Go's net/http, and so docker-registry, accepts. */
#define CREDS_FILE_MAX (1u << 20)

/* --creds-file: USER:PASS on the file's first line. */
static int creds_file(struct common_args *a, const char *path, char *err, size_t errlen) {
        char *buf = NULL;
        size_t len;
        int r;

        r = read_file_all(AT_FDCWD, path, CREDS_FILE_MAX, &buf, &len);
        if (r == -EFBIG)
                return err_set(err, errlen, r, "%s is too large for credentials (USER:PASS)", path);
        if (r < 0)
                return err_set(err, errlen, r, "cannot read %s: %m", path);
        len = strcspn(buf, "\r\n");
        buf[len] = 0;
        if (!strchr(buf, ':') || buf[0] == ':') {
                explicit_bzero(buf, len);
                free(buf);
                return err_set(err, errlen, -EINVAL, "%s does not hold USER:PASS on its first line", path);
        }
        if (a->creds_buf) {
                explicit_bzero(a->creds_buf, strlen(a->creds_buf));
                free(a->creds_buf);
        }
        a->creds_buf = buf;
        a->source.creds = buf;
        return 0;
}

int common_option_set(void *ctx, int id, const char *value, char *err, size_t errlen) {
        struct common_args *a = ctx;
        int r;

        switch (id) {
        case 'v':
                log_set_level(LOG_LVL_DEBUG);
                debug_flags_set_default(1);
                return 0;
        case 'D':
                r = debug_flag_parse(value, err, errlen);
                if (r < 0)
                        return r;
                log_set_level(LOG_LVL_DEBUG);
                return 0;
        case OPT_CACHE:
                a->cache_dir = value;
                return 0;
        case OPT_PLAIN_HTTP:
                a->source.plain_http = true;
                return 0;
        case OPT_CA_FILE:
                a->source.ca_file = value;
                return 0;
        case OPT_CERT_DIR:
                a->source.cert_dir = value;
                return 0;
        case OPT_TLS_VERIFY:
                if (!strcasecmp(value, "true") || !strcmp(value, "1"))
                        a->source.tls_no_verify = false;
                else if (!strcasecmp(value, "false") || !strcmp(value, "0"))
                        a->source.tls_no_verify = true;
                else
                        return err_set(err, errlen, -EINVAL, "wants true or false, not '%s'", value);
                return 0;
        case OPT_CREDS:
                if (!strchr(value, ':')) {
                        return err_set(err, errlen, -EINVAL, "wants USER:PASS");
                }
                a->source.creds = value;
                return 0;
        case OPT_CREDS_FILE:
                return creds_file(a, value, err, errlen);
        case OPT_AUTHFILE:
                a->source.auth_file = value;
                return 0;
        default:
                return err_set(err, errlen, -EINVAL, "is not a common option");
        }
}

const char *common_cache_dir(const struct common_args *a) {
        const char *e;

        if (a->cache_dir)
                return a->cache_dir;
        e = getenv("HOCUS_BLK_CACHE");
        return e && *e ? e : "/var/cache/hocus-blk";
}

/* An unsigned from the environment into *ret; ignored unless 1-3600. */
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

struct source_options common_source_options(const struct common_args *a) {
        struct source_options o = a->source;
        const char *creds = getenv("HOCUS_BLK_CREDS");

        if (!o.creds && creds && strchr(creds, ':'))
                o.creds = creds;

        env_unsigned("HOCUS_BLK_HTTP_STALL_TIMEOUT", &o.stall_timeout_s);
        env_unsigned("HOCUS_BLK_HTTP_ATTEMPTS", &o.max_attempts);
        env_unsigned("HOCUS_BLK_HTTP_CONNECTIONS", &o.max_connections);
        return o;
}
