/* SPDX-License-Identifier: Apache-2.0 */
/* blockd's command line: --help and the parser that fills `arg`. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blockd/options.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"

struct blockd_args arg = {
        .tls = NBDSRV_TLS_OFF,
        .threads = 16,
        .sendfile = true,
        .poll_us = 50,
        .sched = { .background = true },
};

static void help(void) {
        printf("Usage: blockd [OPTIONS]\n\n"
               "Serve hocus-blk images as block devices over NBD. One process serves many\n"
               "exports over one local chunk store; exports are given here or attached later\n"
               "through the control socket (hocus-blk attach|detach|ls|stats).\n\n"
               "Serving:\n"
               "  --export NAME=REF[,overlay=PATH][,profile=auto|none|FILE]\n"
               "                       serve image REF as export NAME; with an overlay the\n"
               "                       export is writable (repeatable). At attach the image's\n"
               "                       boot profile is prefetched (auto: the published one)\n"
               "  --nbd-socket PATH    NBD on a Unix socket\n"
               "  --nbd-listen HOST:PORT  NBD on TCP (PORT 0 picks a free port, logged)\n"
               "  --tls=off|on|require TLS for NBD (on: clients may upgrade; require: they must)\n"
               "  --tls-cert FILE      server certificate chain (PEM)\n"
               "  --tls-key FILE       server private key (PEM)\n"
               "  --tls-ca FILE        require client certificates issued by this CA\n"
               "  --control PATH       control socket (default $HOCUS_BLK_CONTROL,\n"
               "                       /run/hocus-blk/control.sock as root, else\n"
               "                       $XDG_RUNTIME_DIR/hocus-blk/control.sock; none with --run)\n"
               "  --fuse DIR           every export as a regular file DIR/NAME (FUSE), for loop\n"
               "                       mounts and VMMs that take a path\n"
               "  --record NAME=PATH   record export NAME's boot profile from the start; saved\n"
               "                       to PATH at exit (repeatable; see hocus-blk record)\n"
               "  --metrics HOST:PORT  Prometheus metrics over HTTP\n"
               "  --fetch-log FILE     append one line per range request (class, chunks,\n"
               "                       start and end time, result) to FILE\n"
               "  --run COMMAND        captive mode: serve, run COMMAND with $uri set to the\n"
               "                       first export's NBD URI (and $HOCUS_BLK_FILE to its\n"
               "                       FUSE file with --fuse), exit with its status\n"
               "  --pidfile FILE       write the pid once ready (removed at exit)\n\n"
               "Tuning:\n"
               "  --cache-max SIZE     bound the chunk store (LRU eviction; background fetching\n"
               "                       stops short of it, it never evicts)\n"
               "  --background off|on|RATE\n"
               "                       after demand reads and the boot profile, fetch the rest\n"
               "                       of every export until it is fully local (default on,\n"
               "                       or $HOCUS_BLK_BACKGROUND; RATE caps it, in bytes/s: 50M)\n"
               "  --fetch-timeout SECONDS\n"
               "                       a read of data not local yet fails with EIO when the\n"
               "                       registry has not delivered it by then (default 30)\n"
               "  --threads N          threads per NBD connection (default 16)\n"
               "  --fd-cache N         chunk store entries kept open (default 8192, at most\n"
               "                       half the open-file limit)\n"
               "  --no-sendfile        copy cached data through user space\n"
               "  --poll-us N          an idle NBD reader polls N microseconds before sleeping\n"
               "                       (default 50; 0 turns polling off)\n\n"
               "Common options:\n"
               "  --cache DIR          chunk store (default $HOCUS_BLK_CACHE or /var/cache/hocus-blk)\n"
               "  --plain-http         talk HTTP, not HTTPS, to docker:// registries\n"
               "  --ca-file FILE       trust this CA for registry TLS\n"
               "  --creds USER:PASS    registry credentials\n"
               "  --authfile FILE      registry auth file\n"
               "  -v, --verbose        debug logging\n"
               "  -D NAME[=N]          one debug flag (nbd.requests logs every request)\n"
               "  -h, --help           show this help\n"
               "  --version            show the version\n");
}

/* NAME=REF[,overlay=PATH][,profile=HOW]: each value runs to the next
 * option or the end. */
static int parse_export(const char *spec, struct export_config *ret) {
        _cleanup_free_ char *copy = strdup(spec);
        char *eq, *ov, *pr;

        if (!copy)
                return -ENOMEM;
        eq = strchr(copy, '=');
        if (!eq || eq == copy || !eq[1])
                return -EINVAL;
        *eq = 0;
        ov = strstr(eq + 1, ",overlay=");
        pr = strstr(eq + 1, ",profile=");
        if (ov)
                *ov = 0;
        if (pr)
                *pr = 0;
        if (ov) {
                ov += strlen(",overlay=");
                if (!*ov)
                        return -EINVAL;
        }
        if (pr) {
                pr += strlen(",profile=");
                if (!*pr)
                        return -EINVAL;
        }
        ret->name = strdup(copy);
        ret->ref = strdup(eq + 1);
        ret->overlay = ov ? strdup(ov) : NULL;
        ret->profile = pr ? strdup(pr) : NULL;
        if (!ret->name || !ret->ref || (ov && !ret->overlay) || (pr && !ret->profile))
                return -ENOMEM;
        return 0;
}

enum {
        OPT_CACHE = 0x100,
        OPT_CACHE_MAX,
        OPT_NBD_SOCKET,
        OPT_NBD_LISTEN,
        OPT_CONTROL,
        OPT_EXPORT,
        OPT_RUN,
        OPT_TLS,
        OPT_TLS_CERT,
        OPT_TLS_KEY,
        OPT_TLS_CA,
        OPT_METRICS,
        OPT_PIDFILE,
        OPT_THREADS,
        OPT_FD_CACHE,
        OPT_NO_SENDFILE,
        OPT_POLL_US,
        OPT_PLAIN_HTTP,
        OPT_CA_FILE,
        OPT_CREDS,
        OPT_AUTHFILE,
        OPT_VERSION,
        OPT_FUSE,
        OPT_RECORD,
        OPT_BACKGROUND,
        OPT_FETCH_TIMEOUT,
        OPT_FETCH_LOG,
};

/* --background off|on|RATE (also $HOCUS_BLK_BACKGROUND, the default). */
static int parse_background(const char *s) {
        uint64_t rate;

        if (!strcmp(s, "on")) {
                arg.sched.background = true;
                arg.sched.background_rate = 0;
        } else if (!strcmp(s, "off")) {
                arg.sched.background = false;
        } else if (parse_size(s, &rate) >= 0 && rate > 0) {
                arg.sched.background = true;
                arg.sched.background_rate = rate;
        } else {
                return -EINVAL;
        }
        return 0;
}

int blockd_parse_args(int argc, char **argv) {
        static const struct option options[] = {
                { "cache", required_argument, NULL, OPT_CACHE },
                { "cache-max", required_argument, NULL, OPT_CACHE_MAX },
                { "nbd-socket", required_argument, NULL, OPT_NBD_SOCKET },
                { "nbd-listen", required_argument, NULL, OPT_NBD_LISTEN },
                { "control", required_argument, NULL, OPT_CONTROL },
                { "export", required_argument, NULL, OPT_EXPORT },
                { "run", required_argument, NULL, OPT_RUN },
                { "tls", required_argument, NULL, OPT_TLS },
                { "tls-cert", required_argument, NULL, OPT_TLS_CERT },
                { "tls-key", required_argument, NULL, OPT_TLS_KEY },
                { "tls-ca", required_argument, NULL, OPT_TLS_CA },
                { "metrics", required_argument, NULL, OPT_METRICS },
                { "pidfile", required_argument, NULL, OPT_PIDFILE },
                { "threads", required_argument, NULL, OPT_THREADS },
                { "fd-cache", required_argument, NULL, OPT_FD_CACHE },
                { "no-sendfile", no_argument, NULL, OPT_NO_SENDFILE },
                { "poll-us", required_argument, NULL, OPT_POLL_US },
                { "plain-http", no_argument, NULL, OPT_PLAIN_HTTP },
                { "ca-file", required_argument, NULL, OPT_CA_FILE },
                { "creds", required_argument, NULL, OPT_CREDS },
                { "authfile", required_argument, NULL, OPT_AUTHFILE },
                { "fuse", required_argument, NULL, OPT_FUSE },
                { "record", required_argument, NULL, OPT_RECORD },
                { "background", required_argument, NULL, OPT_BACKGROUND },
                { "fetch-timeout", required_argument, NULL, OPT_FETCH_TIMEOUT },
                { "fetch-log", required_argument, NULL, OPT_FETCH_LOG },
                { "verbose", no_argument, NULL, 'v' },
                { "debug", required_argument, NULL, 'D' },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, OPT_VERSION },
                { NULL, 0, NULL, 0 },
        };
        const char *env = getenv("HOCUS_BLK_BACKGROUND");
        int c, r;

        if (env && *env && parse_background(env) < 0)
                log_warning("Ignoring $HOCUS_BLK_BACKGROUND='%s' (want off, on or a rate)", env);
        while ((c = getopt_long(argc, argv, "hvD:", options, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case OPT_VERSION:
                        printf("blockd %s\n", HOCUS_VERSION);
                        return 0;
                case 'v':
                        log_set_level(LOG_LVL_DEBUG);
                        debug_flags_set_default(1);
                        break;
                case 'D':
                        if (debug_flag_parse(optarg) < 0)
                                return log_error_errno(EINVAL, "Invalid debug flag '%s' (want NAME or NAME=N)", optarg);
                        log_set_level(LOG_LVL_DEBUG);
                        break;
                case OPT_CACHE:
                        arg.cache_dir = optarg;
                        break;
                case OPT_CACHE_MAX:
                        if (parse_size(optarg, &arg.cache_max) < 0)
                                return log_error_errno(EINVAL, "--cache-max wants a size such as 20G, not '%s'", optarg);
                        break;
                case OPT_NBD_SOCKET:
                        arg.nbd_socket = optarg;
                        break;
                case OPT_NBD_LISTEN:
                        arg.nbd_listen = optarg;
                        break;
                case OPT_CONTROL:
                        arg.control = optarg;
                        break;
                case OPT_EXPORT: {
                        struct export_config *a = realloc(arg.exports, (arg.n_exports + 1) * sizeof *a);
                        if (!a)
                                return log_error_errno(ENOMEM, "Out of memory");
                        arg.exports = a;
                        r = parse_export(optarg, &arg.exports[arg.n_exports]);
                        if (r < 0)
                                return log_error_errno(EINVAL, "--export wants NAME=REF[,overlay=PATH], not '%s'", optarg);
                        arg.n_exports++;
                        break;
                }
                case OPT_RUN:
                        arg.run = optarg;
                        break;
                case OPT_TLS:
                        if (!strcmp(optarg, "off"))
                                arg.tls = NBDSRV_TLS_OFF;
                        else if (!strcmp(optarg, "on"))
                                arg.tls = NBDSRV_TLS_ON;
                        else if (!strcmp(optarg, "require"))
                                arg.tls = NBDSRV_TLS_REQUIRE;
                        else
                                return log_error_errno(EINVAL, "--tls wants off, on or require, not '%s'", optarg);
                        break;
                case OPT_TLS_CERT:
                        arg.tls_cert = optarg;
                        break;
                case OPT_TLS_KEY:
                        arg.tls_key = optarg;
                        break;
                case OPT_TLS_CA:
                        arg.tls_ca = optarg;
                        break;
                case OPT_METRICS:
                        arg.metrics = optarg;
                        break;
                case OPT_PIDFILE:
                        arg.pidfile = optarg;
                        break;
                case OPT_THREADS: {
                        char *end;
                        unsigned long v = strtoul(optarg, &end, 10);
                        if (*end || v < 1 || v > 256)
                                return log_error_errno(EINVAL, "--threads wants 1-256, not '%s'", optarg);
                        arg.threads = (unsigned) v;
                        break;
                }
                case OPT_FD_CACHE: {
                        char *end;
                        unsigned long v = strtoul(optarg, &end, 10);
                        if (*end || v < 16 || v > 1000000)
                                return log_error_errno(EINVAL, "--fd-cache wants 16-1000000, not '%s'", optarg);
                        arg.fd_cache = (unsigned) v;
                        break;
                }
                case OPT_NO_SENDFILE:
                        arg.sendfile = false;
                        break;
                case OPT_POLL_US: {
                        char *end;
                        unsigned long v = strtoul(optarg, &end, 10);
                        if (*end || v > 100000)
                                return log_error_errno(EINVAL, "--poll-us wants 0-100000, not '%s'", optarg);
                        arg.poll_us = (unsigned) v;
                        break;
                }
                case OPT_PLAIN_HTTP:
                        arg.source.plain_http = true;
                        break;
                case OPT_CA_FILE:
                        arg.source.ca_file = optarg;
                        break;
                case OPT_CREDS:
                        if (!strchr(optarg, ':'))
                                return log_error_errno(EINVAL, "--creds wants USER:PASS");
                        arg.source.creds = optarg;
                        break;
                case OPT_AUTHFILE:
                        arg.source.auth_file = optarg;
                        break;
                case OPT_FUSE:
                        arg.fuse = optarg;
                        break;
                case OPT_BACKGROUND:
                        if (parse_background(optarg) < 0)
                                return log_error_errno(EINVAL, "--background wants off, on or a rate such as 50M (bytes/s), not '%s'",
                                                       optarg);
                        break;
                case OPT_FETCH_TIMEOUT: {
                        char *end;
                        double v = strtod(optarg, &end);
                        if (end == optarg || *end || !(v >= 0.1 && v <= 86400))
                                return log_error_errno(EINVAL, "--fetch-timeout wants seconds (0.1 to 86400), not '%s'", optarg);
                        arg.sched.fetch_timeout_ns = (uint64_t) (v * 1e9);
                        break;
                }
                case OPT_FETCH_LOG:
                        arg.sched.fetch_log = optarg;
                        break;
                case OPT_RECORD: {
                        char **a = realloc(arg.records, (arg.n_records + 1) * sizeof *a);
                        const char *eq = strchr(optarg, '=');
                        if (!a)
                                return log_error_errno(ENOMEM, "Out of memory");
                        arg.records = a;
                        if (!eq || eq == optarg || !eq[1])
                                return log_error_errno(EINVAL, "--record wants NAME=PATH, not '%s'", optarg);
                        arg.records[arg.n_records++] = optarg;
                        break;
                }
                default:
                        return log_error_errno(EINVAL, "Unknown option (see 'blockd --help')");
                }
        }
        if (optind < argc)
                return log_error_errno(EINVAL, "Unexpected argument '%s' (see 'blockd --help')", argv[optind]);
        if (arg.tls != NBDSRV_TLS_OFF && (!arg.tls_cert || !arg.tls_key))
                return log_error_errno(EINVAL, "--tls=%s needs --tls-cert and --tls-key",
                                       arg.tls == NBDSRV_TLS_ON ? "on" : "require");
        if (arg.run && arg.n_exports == 0)
                return log_error_errno(EINVAL, "--run needs at least one --export");
        return 1;
}
