/* SPDX-License-Identifier: Apache-2.0 */
/*
 * blockd: serve hocus-blk images as block devices over NBD. One process,
 * many exports over one chunk store; exports come from the command line
 * and from the control socket. Signals are handled synchronously in the
 * main thread (sigwaitinfo): SIGTERM/SIGINT stop accepting, let in-flight
 * requests finish, flush the overlays and exit 0.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "blockd/control-client.h"
#include "blockd/control.h"
#include "blockd/daemon.h"
#include "blockd/fuse.h"
#include "blockd/metrics.h"
#include "blockd/nbd/server.h"
#include "blockd/nbd/tls.h"
#include "blockd/sched.h"
#include "chunkstore/profile.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"

extern char **environ;

#define SHUTDOWN_GRACE_S 30

static struct source_options arg_source;
static const char *arg_cache_dir;
static uint64_t arg_cache_max;
static const char *arg_nbd_socket;
static const char *arg_nbd_listen;
static const char *arg_control;
static const char *arg_run;
static const char *arg_pidfile;
static const char *arg_metrics;
static enum nbdsrv_tls_mode arg_tls = NBDSRV_TLS_OFF;
static const char *arg_tls_cert, *arg_tls_key, *arg_tls_ca;
static unsigned arg_threads = 16;
static unsigned arg_fd_cache;         /* 0: automatic */
static bool arg_sendfile = true;
static unsigned arg_poll_us = 50;
static struct export_config *arg_exports;
static size_t arg_n_exports;
static const char *arg_fuse;
static char **arg_records;              /* NAME=PATH */
static size_t arg_n_records;
static struct sched_options arg_sched = { .background = true };

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
static int parse_export(const char *arg, struct export_config *ret) {
        _cleanup_free_ char *copy = strdup(arg);
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
                arg_sched.background = true;
                arg_sched.background_rate = 0;
        } else if (!strcmp(s, "off")) {
                arg_sched.background = false;
        } else if (parse_size(s, &rate) >= 0 && rate > 0) {
                arg_sched.background = true;
                arg_sched.background_rate = rate;
        } else {
                return -EINVAL;
        }
        return 0;
}

static int parse_args(int argc, char **argv) {
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
                        arg_cache_dir = optarg;
                        break;
                case OPT_CACHE_MAX:
                        if (parse_size(optarg, &arg_cache_max) < 0)
                                return log_error_errno(EINVAL, "--cache-max wants a size such as 20G, not '%s'", optarg);
                        break;
                case OPT_NBD_SOCKET:
                        arg_nbd_socket = optarg;
                        break;
                case OPT_NBD_LISTEN:
                        arg_nbd_listen = optarg;
                        break;
                case OPT_CONTROL:
                        arg_control = optarg;
                        break;
                case OPT_EXPORT: {
                        struct export_config *a = realloc(arg_exports, (arg_n_exports + 1) * sizeof *a);
                        if (!a)
                                return log_error_errno(ENOMEM, "Out of memory");
                        arg_exports = a;
                        r = parse_export(optarg, &arg_exports[arg_n_exports]);
                        if (r < 0)
                                return log_error_errno(EINVAL, "--export wants NAME=REF[,overlay=PATH], not '%s'", optarg);
                        arg_n_exports++;
                        break;
                }
                case OPT_RUN:
                        arg_run = optarg;
                        break;
                case OPT_TLS:
                        if (!strcmp(optarg, "off"))
                                arg_tls = NBDSRV_TLS_OFF;
                        else if (!strcmp(optarg, "on"))
                                arg_tls = NBDSRV_TLS_ON;
                        else if (!strcmp(optarg, "require"))
                                arg_tls = NBDSRV_TLS_REQUIRE;
                        else
                                return log_error_errno(EINVAL, "--tls wants off, on or require, not '%s'", optarg);
                        break;
                case OPT_TLS_CERT:
                        arg_tls_cert = optarg;
                        break;
                case OPT_TLS_KEY:
                        arg_tls_key = optarg;
                        break;
                case OPT_TLS_CA:
                        arg_tls_ca = optarg;
                        break;
                case OPT_METRICS:
                        arg_metrics = optarg;
                        break;
                case OPT_PIDFILE:
                        arg_pidfile = optarg;
                        break;
                case OPT_THREADS: {
                        char *end;
                        unsigned long v = strtoul(optarg, &end, 10);
                        if (*end || v < 1 || v > 256)
                                return log_error_errno(EINVAL, "--threads wants 1-256, not '%s'", optarg);
                        arg_threads = (unsigned) v;
                        break;
                }
                case OPT_FD_CACHE: {
                        char *end;
                        unsigned long v = strtoul(optarg, &end, 10);
                        if (*end || v < 16 || v > 1000000)
                                return log_error_errno(EINVAL, "--fd-cache wants 16-1000000, not '%s'", optarg);
                        arg_fd_cache = (unsigned) v;
                        break;
                }
                case OPT_NO_SENDFILE:
                        arg_sendfile = false;
                        break;
                case OPT_POLL_US: {
                        char *end;
                        unsigned long v = strtoul(optarg, &end, 10);
                        if (*end || v > 100000)
                                return log_error_errno(EINVAL, "--poll-us wants 0-100000, not '%s'", optarg);
                        arg_poll_us = (unsigned) v;
                        break;
                }
                case OPT_PLAIN_HTTP:
                        arg_source.plain_http = true;
                        break;
                case OPT_CA_FILE:
                        arg_source.ca_file = optarg;
                        break;
                case OPT_CREDS:
                        if (!strchr(optarg, ':'))
                                return log_error_errno(EINVAL, "--creds wants USER:PASS");
                        arg_source.creds = optarg;
                        break;
                case OPT_AUTHFILE:
                        arg_source.auth_file = optarg;
                        break;
                case OPT_FUSE:
                        arg_fuse = optarg;
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
                        arg_sched.fetch_timeout_ns = (uint64_t) (v * 1e9);
                        break;
                }
                case OPT_FETCH_LOG:
                        arg_sched.fetch_log = optarg;
                        break;
                case OPT_RECORD: {
                        char **a = realloc(arg_records, (arg_n_records + 1) * sizeof *a);
                        const char *eq = strchr(optarg, '=');
                        if (!a)
                                return log_error_errno(ENOMEM, "Out of memory");
                        arg_records = a;
                        if (!eq || eq == optarg || !eq[1])
                                return log_error_errno(EINVAL, "--record wants NAME=PATH, not '%s'", optarg);
                        arg_records[arg_n_records++] = optarg;
                        break;
                }
                default:
                        return log_error_errno(EINVAL, "Unknown option (see 'blockd --help')");
                }
        }
        if (optind < argc)
                return log_error_errno(EINVAL, "Unexpected argument '%s' (see 'blockd --help')", argv[optind]);
        if (arg_tls != NBDSRV_TLS_OFF && (!arg_tls_cert || !arg_tls_key))
                return log_error_errno(EINVAL, "--tls=%s needs --tls-cert and --tls-key",
                                       arg_tls == NBDSRV_TLS_ON ? "on" : "require");
        if (arg_run && arg_n_exports == 0)
                return log_error_errno(EINVAL, "--run needs at least one --export");
        return 1;
}

/* Percent-encode for a URI query value. */
static char *uri_encode(const char *s) {
        static const char hex[] = "0123456789ABCDEF";
        char *out = malloc(strlen(s) * 3 + 1), *p = out;

        if (!out)
                return NULL;
        for (; *s; s++) {
                unsigned char ch = (unsigned char) *s;
                if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-' ||
                    ch == '.' || ch == '_' || ch == '~' || ch == '/') {
                        *p++ = (char) ch;
                } else {
                        *p++ = '%';
                        *p++ = hex[ch >> 4];
                        *p++ = hex[ch & 15];
                }
        }
        *p = 0;
        return out;
}

char *blockd_export_uri(const struct blockd *d, const char *name) {
        char *uri = NULL;

        /* Export names are restricted to characters that need no escaping. */
        if (d->nbd_socket) {
                _cleanup_free_ char *sock = uri_encode(d->nbd_socket);
                if (sock && asprintf(&uri, "%s:///%s?socket=%s", d->tls_required ? "nbds+unix" : "nbd+unix", name,
                                     sock) < 0)
                        uri = NULL;
        } else if (d->nbd_tcp[0]) {
                if (asprintf(&uri, "%s://%s/%s", d->tls_required ? "nbds" : "nbd", d->nbd_tcp, name) < 0)
                        uri = NULL;
        }
        return uri;
}

static struct export *get_export(void *u, const char *name) {
        return exports_get(u, name);
}

static void for_each_export(void *u, void (*fn)(struct export *e, void *ctx), void *ctx) {
        exports_for_each(u, fn, ctx);
}

static void kick_export(void *u, struct export *e, bool hard) {
        struct blockd *d = u;

        nbdsrv_kick_export(d->nbd, e, hard);
        fusefe_kick_export(d->fuse, e, hard);
}

/* The FUSE connection ended from outside: with no other frontend the
 * daemon has nothing left to do, so it shuts down cleanly. */
static void fuse_failed(void *u) {
        struct blockd *d = u;

        if (d->nbd_socket || d->nbd_tcp[0])
                log_warning("FUSE frontend stopped; still serving NBD");
        else
                (void) kill(getpid(), SIGTERM);
}

/* --record NAME=PATH: start recording right after attach. */
static int records_start(struct blockd *d) {
        for (size_t i = 0; i < arg_n_records; i++) {
                const char *eq = strchr(arg_records[i], '=');
                _cleanup_free_ char *name = strndup(arg_records[i], (size_t) (eq - arg_records[i]));
                struct export *e = name ? exports_get(d->exports, name) : NULL;
                int r;

                if (!e)
                        return log_error_errno(ENOENT, "--record %s: no export named '%s'", arg_records[i],
                                               name ? name : "");
                r = export_record_start(e);
                export_unref(e);
                if (r < 0)
                        return log_error_errno(r, "Cannot record export %s: %m", name);
                log_info("Export %s: recording its boot profile to %s", name, eq + 1);
        }
        return 0;
}

/* Save every --record profile (at exit). Returns the first error. */
static int records_save(struct blockd *d) {
        int ret = 0;

        for (size_t i = 0; i < arg_n_records && d->exports; i++) {
                const char *eq = strchr(arg_records[i], '=');
                _cleanup_free_ char *name = strndup(arg_records[i], (size_t) (eq - arg_records[i]));
                _cleanup_free_ void *buf = NULL;
                struct profile *p = NULL;
                struct export *e = name ? exports_get(d->exports, name) : NULL;
                size_t len;
                int r;

                if (!e)
                        continue;
                r = export_record_get(e, true, &p);
                export_unref(e);
                if (r >= 0)
                        r = profile_encode(p, &buf, &len);
                if (r >= 0)
                        r = write_file_atomic(AT_FDCWD, eq + 1, buf, len, 0644);
                if (r < 0) {
                        log_error_errno(r, "Cannot save the profile of %s to %s: %m", name, eq + 1);
                        if (ret == 0)
                                ret = r;
                } else {
                        log_info("Export %s: saved its boot profile (%u ranges) to %s", name, p->count, eq + 1);
                }
                profile_free(p);
        }
        return ret;
}

/* Registry tuning from the environment, as the CLI reads it (tests use it
 * to fail fast); ignored when unset or malformed. */
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

/* Raise the soft open-file limit to the hard one; returns the limit. */
static uint64_t raise_nofile(void) {
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
                return 1024;
        if (rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                (void) setrlimit(RLIMIT_NOFILE, &rl);
                (void) getrlimit(RLIMIT_NOFILE, &rl);
        }
        return rl.rlim_cur;
}

static const char *cache_dir(void) {
        const char *e;

        if (arg_cache_dir)
                return arg_cache_dir;
        e = getenv("HOCUS_BLK_CACHE");
        return e && *e ? e : "/var/cache/hocus-blk";
}

/* Run the captive command with $uri (and $unixsocket or $port) set. */
static int spawn_run(const struct blockd *d, const char *uri, pid_t *ret) {
        posix_spawnattr_t attr;
        sigset_t none, dflt;
        _cleanup_free_ char **envp = NULL;
        _cleanup_free_ char *e_uri = NULL, *e_extra = NULL, *e_file = NULL;
        char *argv[] = { (char *) "sh", (char *) "-c", (char *) arg_run, NULL };
        size_t n = 0, k = 0;
        int r;

        while (environ[n])
                n++;
        envp = calloc(n + 4, sizeof *envp);
        if (!envp || asprintf(&e_uri, "uri=%s", uri) < 0)
                return -ENOMEM;
        if (d->nbd_socket) {
                if (asprintf(&e_extra, "unixsocket=%s", d->nbd_socket) < 0)
                        return -ENOMEM;
        } else {
                const char *colon = strrchr(d->nbd_tcp, ':');
                if (asprintf(&e_extra, "port=%s", colon ? colon + 1 : "") < 0)
                        return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++)
                if (strncmp(environ[i], "uri=", 4) && strncmp(environ[i], "unixsocket=", 11) &&
                    strncmp(environ[i], "port=", 5) && strncmp(environ[i], "HOCUS_BLK_FILE=", 15))
                        envp[k++] = environ[i];
        envp[k++] = e_uri;
        envp[k++] = e_extra;
        if (d->fuse) {
                if (asprintf(&e_file, "HOCUS_BLK_FILE=%s/%s", fusefe_dir(d->fuse), arg_exports[0].name) < 0)
                        return -ENOMEM;
                envp[k++] = e_file;
        }

        sigemptyset(&none);
        sigemptyset(&dflt);
        sigaddset(&dflt, SIGPIPE);
        posix_spawnattr_init(&attr);
        posix_spawnattr_setsigmask(&attr, &none);
        posix_spawnattr_setsigdefault(&attr, &dflt);
        posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
        r = -posix_spawn(ret, "/bin/sh", NULL, &attr, argv, envp);
        posix_spawnattr_destroy(&attr);
        return r;
}

int main(int argc, char **argv) {
        struct blockd d = { 0 };
        struct nbdsrv_config ncfg = { 0 };
        struct nbdsrv_exports nexp;
        struct nbdsrv_tls *tls = NULL;
        struct control *ctl = NULL;
        struct metrics_http *mh = NULL;
        _cleanup_free_ char *tmpdir = NULL, *tmpsock = NULL;
        char control_buf[4096];
        const char *control_path = NULL;
        sigset_t sigs;
        pid_t child = 0;
        bool pidfile_written = false;
        int r, status = 0, exit_code = 0;

        log_set_ident("blockd");
        r = parse_args(argc, argv);
        if (r <= 0)
                return r < 0 ? (r == -EINVAL ? 2 : 1) : 0;
        log_set_timestamps(true);

        /* Signals are taken synchronously by the main thread; every thread
         * started from here on inherits the mask. */
        sigemptyset(&sigs);
        sigaddset(&sigs, SIGTERM);
        sigaddset(&sigs, SIGINT);
        sigaddset(&sigs, SIGHUP);
        sigaddset(&sigs, SIGCHLD);
        pthread_sigmask(SIG_BLOCK, &sigs, NULL);
        signal(SIGPIPE, SIG_IGN);
        {
                /* Keep open chunk entries within half the fd limit: the rest
                 * is for clients, overlays and the registry. */
                uint64_t nofile = raise_nofile(), room = nofile > 256 ? nofile / 2 : 64;
                if (!arg_fd_cache)
                        arg_fd_cache = (unsigned) MIN(room, (uint64_t) 8192);
                else if (arg_fd_cache > room)
                        log_warning("--fd-cache %u is more than half the open-file limit (%llu)", arg_fd_cache,
                                    (unsigned long long) nofile);
        }

        env_unsigned("HOCUS_BLK_HTTP_STALL_TIMEOUT", &arg_source.stall_timeout_s);
        env_unsigned("HOCUS_BLK_HTTP_ATTEMPTS", &arg_source.max_attempts);
        env_unsigned("HOCUS_BLK_HTTP_CONNECTIONS", &arg_source.max_connections);
        d.start_ns = now_ns();
        d.source = arg_source;
        d.cache_dir = cache_dir();
        r = chunkstore_open(d.cache_dir, arg_cache_max, &d.store);
        if (r < 0) {
                log_error_errno(r, "Cannot open the chunk store '%s': %m", d.cache_dir);
                return 1;
        }
        r = chunkfd_cache_new(d.store, arg_fd_cache, &d.fds);
        if (r < 0)
                goto fail;
        r = sched_new(d.store, &arg_sched, &d.sched);
        if (r < 0) {
                log_error_errno(r, "Cannot start the fetch scheduler%s%s: %m", arg_sched.fetch_log ? " with --fetch-log " : "",
                                arg_sched.fetch_log ? arg_sched.fetch_log : "");
                goto fail;
        }
        {
                struct export_env env = { .store = d.store, .fds = d.fds, .source = &d.source, .sched = d.sched };
                r = exports_new(&env, &d.exports);
                if (r < 0)
                        goto fail;
        }
        for (size_t i = 0; i < arg_n_exports; i++) {
                char err[512] = "";
                r = exports_attach(d.exports, &arg_exports[i], NULL, err, sizeof err);
                if (r < 0) {
                        log_error_errno(r, "Cannot attach export %s: %s", arg_exports[i].name, err[0] ? err : strerror(-r));
                        goto fail;
                }
        }

        if (arg_tls != NBDSRV_TLS_OFF) {
                char err[512];
                r = nbdsrv_tls_new(arg_tls_cert, arg_tls_key, arg_tls_ca, &tls, err, sizeof err);
                if (r < 0) {
                        log_error_errno(r, "%s", err);
                        goto fail;
                }
        }
        ncfg.tls_mode = arg_tls;
        ncfg.tls = tls;
        ncfg.max_threads = arg_threads;
        ncfg.use_sendfile = arg_sendfile;
        ncfg.poll_us = arg_poll_us;
        nexp = (struct nbdsrv_exports) { .get = get_export, .for_each = for_each_export, .userdata = d.exports };
        r = nbdsrv_new(&ncfg, &nexp, &d.nbd);
        if (r < 0)
                goto fail;
        exports_set_kick(d.exports, kick_export, &d);
        d.tls_required = arg_tls == NBDSRV_TLS_REQUIRE;

        if (!arg_nbd_socket && !arg_nbd_listen && arg_run) {
                /* Captive mode without a listener: a private socket. */
                tmpdir = strdup("/tmp/blockd.XXXXXX");
                if (!tmpdir || !mkdtemp(tmpdir) || asprintf(&tmpsock, "%s/nbd.sock", tmpdir) < 0) {
                        r = log_error_errno(errno ? errno : ENOMEM, "Cannot make a temporary directory: %m");
                        goto fail;
                }
                arg_nbd_socket = tmpsock;
        }
        if (arg_nbd_socket) {
                r = nbdsrv_listen_unix(d.nbd, arg_nbd_socket);
                if (r < 0) {
                        log_error_errno(r, "Cannot listen on %s: %s", arg_nbd_socket,
                                        r == -EADDRINUSE ? "another server is listening there" : strerror(-r));
                        goto fail;
                }
                d.nbd_socket = arg_nbd_socket;
                log_info("NBD on unix:%s", arg_nbd_socket);
        }
        if (arg_nbd_listen) {
                unsigned port = 0;
                const char *colon = strrchr(arg_nbd_listen, ':');

                r = nbdsrv_listen_tcp(d.nbd, arg_nbd_listen, &port);
                if (r < 0) {
                        log_error_errno(r, "Cannot listen on %s: %m", arg_nbd_listen);
                        goto fail;
                }
                snprintf(d.nbd_tcp, sizeof d.nbd_tcp, "%.*s:%u", colon ? (int) (colon - arg_nbd_listen) : 0,
                         arg_nbd_listen, port);
                log_info("NBD on tcp:%s", d.nbd_tcp);
        }
        if (!arg_nbd_socket && !arg_nbd_listen && !arg_fuse)
                log_notice("No NBD listener (--nbd-socket, --nbd-listen): exports are reachable through no frontend");

        control_path = arg_control ? arg_control : arg_run ? NULL : control_default_path(control_buf, sizeof control_buf);
        if (control_path) {
                _cleanup_free_ char *dir = strdup(control_path);
                char *slash = dir ? strrchr(dir, '/') : NULL;

                if (slash && slash != dir) {
                        *slash = 0;
                        (void) mkdir_p(dir, 0700);
                }
                r = control_start(&d, control_path, &ctl);
                if (r < 0 && !arg_control) {
                        /* The default path is a convenience: another blockd may
                         * own it. Serve without a control socket then. */
                        log_warning("Not listening on the default control socket %s: %s; pass --control PATH",
                                    control_path,
                                    r == -EADDRINUSE ? "another blockd is running there" : strerror(-r));
                } else if (r < 0) {
                        log_error_errno(r, "Cannot listen on control socket %s: %s", control_path,
                                        r == -EADDRINUSE ? "another blockd is running there" : strerror(-r));
                        goto fail;
                } else {
                        log_info("Control socket %s", control_path);
                }
        }
        if (arg_metrics) {
                unsigned port = 0;
                r = metrics_http_start(&d, arg_metrics, &mh, &port);
                if (r < 0) {
                        log_error_errno(r, "Cannot serve metrics on %s: %m", arg_metrics);
                        goto fail;
                }
                log_info("Metrics on http://%s (port %u)/metrics", arg_metrics, port);
        }
        if (arg_fuse) {
                struct fusefe_config fcfg = { .dir = arg_fuse, .on_failure = fuse_failed, .userdata = &d };
                struct fusefe_exports fx = { .get = get_export, .for_each = for_each_export, .userdata = d.exports };
                char err[512] = "";

                r = fusefe_start(&fcfg, &fx, &d.fuse, err, sizeof err);
                if (r < 0) {
                        log_error_errno(r, "Cannot serve FUSE on %s: %s", arg_fuse, err[0] ? err : strerror(-r));
                        goto fail;
                }
                d.fuse_dir = fusefe_dir(d.fuse);
        }
        r = records_start(&d);
        if (r < 0)
                goto fail;
        if (arg_nbd_socket || arg_nbd_listen) {
                r = nbdsrv_start(d.nbd);
                if (r < 0) {
                        log_error_errno(r, "Cannot start the NBD server: %m");
                        goto fail;
                }
        }
        if (arg_pidfile) {
                char pid[32];
                int n = snprintf(pid, sizeof pid, "%d\n", (int) getpid());
                r = write_file_atomic(AT_FDCWD, arg_pidfile, pid, (size_t) n, 0644);
                if (r < 0) {
                        log_error_errno(r, "Cannot write pidfile %s: %m", arg_pidfile);
                        goto fail;
                }
                pidfile_written = true;
        }
        log_info("Ready: %u exports", exports_count(d.exports));

        if (arg_run) {
                _cleanup_free_ char *uri = blockd_export_uri(&d, arg_exports[0].name);
                if (!uri) {
                        r = log_error_errno(ENOMEM, "Out of memory");
                        goto fail;
                }
                r = spawn_run(&d, uri, &child);
                if (r < 0) {
                        log_error_errno(r, "Cannot run '%s': %m", arg_run);
                        goto fail;
                }
                log_debug("Running '%s' (pid %d) with uri=%s", arg_run, (int) child, uri);
        }

        for (;;) {
                siginfo_t si;
                int sig = sigwaitinfo(&sigs, &si);

                if (sig < 0) {
                        if (errno == EINTR)
                                continue;
                        log_error_errno(errno, "sigwaitinfo: %m");
                        break;
                }
                if (sig == SIGCHLD) {
                        pid_t p;
                        bool done = false;
                        while ((p = waitpid(-1, &status, WNOHANG)) > 0)
                                if (p == child) {
                                        done = true;
                                        break;
                                }
                        if (done) {
                                exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
                                log_debug("Command exited with status %d", exit_code);
                                child = 0;
                                break;
                        }
                        continue;
                }
                if (sig == SIGHUP) {
                        log_info("SIGHUP ignored");
                        continue;
                }
                log_info("Received %s: shutting down", strsignal(sig));
                if (child > 0) {
                        /* Captive mode: the command decides the exit status. */
                        (void) kill(child, sig);
                        continue;
                }
                break;
        }
        r = 0;
        goto shutdown;
fail:
        exit_code = 1;
shutdown:
        metrics_http_stop(mh);
        control_stop(ctl);
        if (d.nbd)
                nbdsrv_shutdown(d.nbd, SHUTDOWN_GRACE_S);
        fusefe_stop(d.fuse);
        d.fuse = NULL;
        if (records_save(&d) < 0 && exit_code == 0)
                exit_code = 1;
        if (exports_free(d.exports) < 0 && exit_code == 0)
                exit_code = 1;
        nbdsrv_free(d.nbd);
        nbdsrv_tls_free(tls);
        sched_free(d.sched);
        chunkfd_cache_free(d.fds);
        chunkstore_free(d.store);
        if (pidfile_written)
                (void) unlink(arg_pidfile);
        if (tmpdir)
                (void) rmdir(tmpdir);
        for (size_t i = 0; i < arg_n_exports; i++) {
                free((char *) arg_exports[i].name);
                free((char *) arg_exports[i].ref);
                free((char *) arg_exports[i].overlay);
                free((char *) arg_exports[i].profile);
        }
        free(arg_records);
        free(arg_exports);
        if (exit_code == 0)
                log_info("Stopped");
        return exit_code;
}
