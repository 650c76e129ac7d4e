/* SPDX-License-Identifier: Apache-2.0 */
/* blockd's options: the table (--help and the parser come from it) and
 * what each option does to `arg`. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blockd/chunkfd.h"
#include "blockd/options.h"
#include "blockd/profile-learn.h"
#include "common/err.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"

struct blockd_args arg = {
        .tls = NBDSRV_TLS_OFF,
        .threads = 16,
        .sendfile = true,
        .poll_us = 50,
        .nbd_limits = NBDSRV_LIMITS_DEFAULT,
        .sched = { .background = true, .write_behind = WRITE_BEHIND_DEFAULT },
        .scrub_rate = CHUNKFD_SCRUB_RATE_DEFAULT,
        .learn_window_ns = PROFILE_LEARN_WINDOW_NS,
};

enum {
        OPT_CACHE_MAX = 0x100,
        OPT_NBD_SOCKET,
        OPT_NBD_LISTEN,
        OPT_CONTROL,
        OPT_EXPORT,
        OPT_RUN,
        OPT_TLS,
        OPT_TLS_CERT,
        OPT_TLS_KEY,
        OPT_TLS_CA,
        OPT_TLS_PSK,
        OPT_TLS_CERTIFICATES,
        OPT_METRICS,
        OPT_PIDFILE,
        OPT_THREADS,
        OPT_FD_CACHE,
        OPT_NO_SENDFILE,
        OPT_POLL_US,
        OPT_VERSION,
        OPT_FUSE,
        OPT_RECORD,
        OPT_BACKGROUND,
        OPT_FETCH_TIMEOUT,
        OPT_FETCH_LOG,
        OPT_STATE_DIR,
        OPT_CONTROL_MAX_CLIENTS,
        OPT_METRICS_MAX_CLIENTS,
        OPT_REQUEST_TIMEOUT,
        OPT_NBD_MAX_CONNECTIONS,
        OPT_NBD_PEER_CONNECTIONS,
        OPT_NBD_CONN_BUFFER,
        OPT_NBD_BUFFER_TOTAL,
        OPT_NBD_HANDSHAKE_TIMEOUT,
        OPT_CONFIG,
        OPT_CONTROL_IDLE_TIMEOUT,
        OPT_SCRUB_RATE,
        OPT_WRITE_BEHIND,
        OPT_VHOST_USER_BLK,
        OPT_LEARN_WINDOW,
};

static const struct opt serving_options[] = {
        { "export", OPT_EXPORT, "NAME=REF[,overlay=PATH][,profile=auto|none|FILE][,vhost-user=PATH]",
          "serve image REF as export NAME; with an overlay the\n"
          "export is writable (repeatable). At attach the image's\n"
          "boot profile is prefetched (auto: the published one).\n"
          "vhost-user=PATH: also as a vhost-user-blk socket",
          OPT_NO_CONFIG },
        { "nbd-socket", OPT_NBD_SOCKET, "PATH", "NBD on a Unix socket", 0 },
        { "nbd-listen", OPT_NBD_LISTEN, "HOST:PORT", "NBD on TCP (PORT 0 picks a free port, logged)", 0 },
        { "tls", OPT_TLS, "off|on|require", "TLS for NBD (on: clients may upgrade; require: they must)", 0 },
        { "tls-cert", OPT_TLS_CERT, "FILE", "server certificate chain (PEM)", 0 },
        { "tls-key", OPT_TLS_KEY, "FILE", "server private key (PEM)", 0 },
        { "tls-ca", OPT_TLS_CA, "FILE", "require client certificates issued by this CA", 0 },
        { "tls-certificates", OPT_TLS_CERTIFICATES, "DIR",
          "server-cert.pem and server-key.pem from DIR (nbdkit's and\n"
          "qemu's layout; client certificates: --tls-ca DIR/ca-cert.pem)",
          0 },
        { "tls-psk", OPT_TLS_PSK, "FILE",
          "TLS with pre-shared keys instead of certificates: FILE\n"
          "holds IDENTITY:HEXKEY lines (psktool's format, as nbdkit)",
          0 },
        { "control", OPT_CONTROL, "PATH",
          "control socket (default $HOCUS_BLK_CONTROL,\n"
          "/run/hocus-blk/control.sock as root, else\n"
          "$XDG_RUNTIME_DIR/hocus-blk/control.sock; none with --run)",
          0 },
        { "fuse", OPT_FUSE, "DIR",
          "every export as a regular file DIR/NAME (FUSE), for loop\n"
          "mounts and VMMs that take a path",
          0 },
        { "vhost-user-blk", OPT_VHOST_USER_BLK, "DIR",
          "every export as a vhost-user-blk socket DIR/NAME.sock,\n"
          "for VMMs (qemu vhost-user-blk-pci, cloud-hypervisor,\n"
          "firecracker); see docs/VMMS.md",
          0 },
        { "record", OPT_RECORD, "NAME=PATH",
          "record export NAME's boot profile from the start; saved\n"
          "to PATH at exit (repeatable; see hocus-blk record)",
          OPT_NO_CONFIG },
        { "metrics", OPT_METRICS, "HOST:PORT", "Prometheus metrics over HTTP", 0 },
        { "control-max-clients", OPT_CONTROL_MAX_CLIENTS, "N",
          "control connections at once (default 32); at the cap\n"
          "the one idle longest is closed to make room",
          0 },
        { "control-idle-timeout", OPT_CONTROL_IDLE_TIMEOUT, "SECONDS",
          "a control client that sends no request this long is\n"
          "closed (default 300)",
          0 },
        { "metrics-max-clients", OPT_METRICS_MAX_CLIENTS, "N",
          "--metrics connections at once (default 8); at the cap\n"
          "the one sending its request longest is closed",
          0 },
        { "request-timeout", OPT_REQUEST_TIMEOUT, "SECONDS",
          "a control or metrics client must send each request,\n"
          "and take its answer, within SECONDS (default 10); at\n"
          "stop, control commands still running after that long\n"
          "are abandoned (overlays are flushed all the same)",
          0 },
        { "fetch-log", OPT_FETCH_LOG, "FILE",
          "append one line per range request (class, chunks,\n"
          "start and end time, result) to FILE",
          0 },
        { "run", OPT_RUN, "COMMAND",
          "captive mode: serve, run COMMAND with $uri set to the\n"
          "first export's NBD URI (and $HOCUS_BLK_FILE to its\n"
          "FUSE file with --fuse), exit with its status",
          OPT_NO_CONFIG },
        { "pidfile", OPT_PIDFILE, "FILE", "write the pid once ready (removed at exit)", 0 },
        { "state-dir", OPT_STATE_DIR, "DIR|none",
          "keep the export table here and restore it at start\n"
          "(default $HOCUS_BLK_STATE_DIR, /var/lib/hocus-blk as\n"
          "root, else $XDG_STATE_HOME/hocus-blk; none with --run)",
          0 },
        { "config", OPT_CONFIG, "FILE",
          "read options and exports from FILE (default " BLOCKD_CONFIG_DEFAULT ",\n"
          "when it exists; '' reads none; see docs/blockd.conf.md).\n"
          "The command line wins; SIGHUP re-reads the exports",
          OPT_NO_CONFIG },
        { "version", OPT_VERSION, NULL, "show the version", OPT_STOP },
        { NULL, 0, NULL, NULL, 0 },
};

static const struct opt tuning_options[] = {
        { "cache-max", OPT_CACHE_MAX, "SIZE",
          "bound the disk the chunk store takes (LRU eviction;\n"
          "background fetching stops short of it, it never evicts;\n"
          "without it, a full disk makes fetching wait for space)",
          0 },
        { "background", OPT_BACKGROUND, "off|on|RATE",
          "after demand reads and the boot profile, fetch the rest\n"
          "of every export until it is fully local (default on,\n"
          "or $HOCUS_BLK_BACKGROUND; RATE caps it, in bytes/s: 50M;\n"
          "off: a boot-profile prefetch reads through gaps between\n"
          "its chunks of 16 KiB at most, not up to 1 MiB)",
          0 },
        { "fetch-timeout", OPT_FETCH_TIMEOUT, "SECONDS",
          "a read of data not local yet fails with EIO when the\n"
          "registry has not delivered it by then (default 30)",
          0 },
        { "learn-window", OPT_LEARN_WINDOW, "SECONDS",
          "an attach learns the reads of its first SECONDS\n"
          "(default 120; 0 learns nothing); if it was cold, the\n"
          "next cold start of the image on this host prefetches\n"
          "them when no profile is published",
          0 },
        { "threads", OPT_THREADS, "N", "threads per NBD connection (default 16)", 0 },
        { "nbd-max-connections", OPT_NBD_MAX_CONNECTIONS, "N", "NBD connections open at once (default 1024)", 0 },
        { "nbd-peer-connections", OPT_NBD_PEER_CONNECTIONS, "N",
          "NBD connections open at once from one peer: an IP\n"
          "address, or a process on the Unix socket (default 16)",
          0 },
        { "nbd-conn-buffer", OPT_NBD_CONN_BUFFER, "SIZE",
          "read and write data in flight on one NBD connection;\n"
          "beyond it blockd reads no more requests from that\n"
          "client until its replies drain (default 32M; a larger\n"
          "request runs alone)",
          0 },
        { "nbd-buffer-total", OPT_NBD_BUFFER_TOTAL, "SIZE",
          "the same across all NBD connections: beyond it requests\n"
          "wait for room (default 1G)",
          0 },
        { "nbd-handshake-timeout", OPT_NBD_HANDSHAKE_TIMEOUT, "SECONDS",
          "an NBD client that has not finished its handshake this\n"
          "long after connecting is disconnected (default 30)",
          0 },
        { "fd-cache", OPT_FD_CACHE, "N",
          "chunk store entries kept open (default 8192, at most\n"
          "half the open-file limit)",
          0 },
        { "scrub-rate", OPT_SCRUB_RATE, "SIZE|0",
          "hash open chunk store entries again, round robin, at\n"
          "SIZE bytes/s, for damage no stamp shows (default 4M,\n"
          "or $HOCUS_BLK_SCRUB_RATE; 0 turns it off)",
          0 },
        { "write-behind", OPT_WRITE_BEHIND, "SIZE|off",
          "store fetched chunks when the CPU is idle: up to SIZE\n"
          "of verified chunks wait for their store insert, served\n"
          "from memory meanwhile, and are stored before detach or\n"
          "exit (default 128M; off: stored as they arrive)",
          0 },
        { "no-sendfile", OPT_NO_SENDFILE, NULL, "copy cached data through user space", 0 },
        { "poll-us", OPT_POLL_US, "N",
          "an idle NBD reader polls N microseconds before sleeping\n"
          "(default 50; 0 turns polling off)",
          0 },
        { NULL, 0, NULL, NULL, 0 },
};

/* NAME=REF[,overlay=PATH][,profile=HOW][,vhost-user=PATH]: each value
 * runs to the next option or the end. */
static int parse_export(const char *spec, struct export_config *ret) {
        static const char *const keys[] = { ",overlay=", ",profile=", ",vhost-user=" };
        const char **fields[] = { &ret->overlay, &ret->profile, &ret->vhost_user };
        _cleanup_free_ char *copy = strdup(spec);
        char *eq, *at[ARRAY_SIZE(keys)];

        if (!copy)
                return -ENOMEM;
        eq = strchr(copy, '=');
        if (!eq || eq == copy || !eq[1])
                return -EINVAL;
        *eq = 0;
        for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
                at[i] = strstr(eq + 1, keys[i]);
        for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
                if (at[i])
                        *at[i] = 0;
        for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
                if (!at[i])
                        continue;
                at[i] += strlen(keys[i]);
                if (!*at[i])
                        return -EINVAL;
                *fields[i] = strdup(at[i]);
                if (!*fields[i])
                        return -ENOMEM;
        }
        ret->name = strdup(copy);
        ret->ref = strdup(eq + 1);
        if (!ret->name || !ret->ref)
                return -ENOMEM;
        return 0;
}

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

/* An unsigned in [min, max] into *ret; else the reason in err. */
static int parse_uint(const char *s, unsigned long min, unsigned long max, unsigned *ret, char *err, size_t errlen) {
        char *end;
        unsigned long v;

        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno || end == s || *end || v < min || v > max) {
                return err_set(err, errlen, -EINVAL, "wants %lu-%lu, not '%s'", min, max, s);
        }
        *ret = (unsigned) v;
        return 0;
}

/* HOST:PORT or [V6]:PORT, with a port number; else the reason in err. */
static bool host_port_ok(const char *s, char *err, size_t errlen) {
        const char *colon = strrchr(s, ':');
        char *end;

        if (!colon || colon == s || (s[0] == '[' && colon[-1] != ']') || !colon[1] ||
            strtoul(colon + 1, &end, 10) > 65535 || *end) {
                err_set(err, errlen, -EINVAL, "wants HOST:PORT or [IPV6]:PORT (e.g. 127.0.0.1:10809; port 0 picks one), not '%s'", s);
                return false;
        }
        return true;
}

/* opt_table.set for blockd's own options. */
static int blockd_option_set(void *ctx, int id, const char *value, char *err, size_t errlen) {
        struct blockd_args *a = ctx;
        int r;

        switch (id) {
        case OPT_CACHE_MAX:
                if (parse_size(value, &a->cache_max) < 0)
                        goto bad_size;
                return 0;
        case OPT_NBD_SOCKET:
                a->nbd_socket = value;
                return 0;
        case OPT_NBD_LISTEN:
                if (!host_port_ok(value, err, errlen))
                        return -EINVAL;
                a->nbd_listen = value;
                return 0;
        case OPT_CONTROL:
                a->control = value;
                return 0;
        case OPT_EXPORT: {
                struct export_config *e = realloc(a->exports, (a->n_exports + 1) * sizeof *e);
                if (!e)
                        return -ENOMEM;
                a->exports = e;
                e = &a->exports[a->n_exports];
                *e = (struct export_config) { 0 };
                r = parse_export(value, e);
                if (r < 0) {
                        free((char *) e->name);
                        free((char *) e->ref);
                        free((char *) e->overlay);
                        free((char *) e->profile);
                        free((char *) e->vhost_user);
                        return err_set(err, errlen, r, "wants NAME=REF[,overlay=PATH][,profile=HOW][,vhost-user=PATH], not '%s'", value);
                }
                a->n_exports++;
                return 0;
        }
        case OPT_RUN:
                a->run = value;
                return 0;
        case OPT_TLS:
                if (!strcmp(value, "off"))
                        a->tls = NBDSRV_TLS_OFF;
                else if (!strcmp(value, "on"))
                        a->tls = NBDSRV_TLS_ON;
                else if (!strcmp(value, "require"))
                        a->tls = NBDSRV_TLS_REQUIRE;
                else {
                        return err_set(err, errlen, -EINVAL, "wants off, on or require, not '%s'", value);
                }
                return 0;
        case OPT_TLS_CERT:
                a->tls_cert = value;
                return 0;
        case OPT_TLS_KEY:
                a->tls_key = value;
                return 0;
        case OPT_TLS_CA:
                a->tls_ca = value;
                return 0;
        case OPT_TLS_PSK:
                a->tls_psk = value;
                return 0;
        case OPT_TLS_CERTIFICATES:
                a->tls_certificates = value;
                return 0;
        case OPT_METRICS:
                if (!host_port_ok(value, err, errlen))
                        return -EINVAL;
                a->metrics = value;
                return 0;
        case OPT_PIDFILE:
                a->pidfile = value;
                return 0;
        case OPT_THREADS:
                return parse_uint(value, 1, 256, &a->threads, err, errlen);
        case OPT_FD_CACHE:
                return parse_uint(value, 16, 1000000, &a->fd_cache, err, errlen);
        case OPT_NO_SENDFILE:
                a->sendfile = false;
                return 0;
        case OPT_POLL_US:
                return parse_uint(value, 0, 100000, &a->poll_us, err, errlen);
        case OPT_NBD_MAX_CONNECTIONS:
                return parse_uint(value, 1, 1000000, &a->nbd_limits.max_connections, err, errlen);
        case OPT_NBD_PEER_CONNECTIONS:
                return parse_uint(value, 1, 1000000, &a->nbd_limits.peer_connections, err, errlen);
        case OPT_NBD_HANDSHAKE_TIMEOUT:
                return parse_uint(value, 1, 86400, &a->nbd_limits.handshake_timeout_s, err, errlen);
        case OPT_NBD_CONN_BUFFER:
                if (parse_size(value, &a->nbd_limits.conn_buffer) < 0 || a->nbd_limits.conn_buffer < 4096)
                        return err_set(err, errlen, -EINVAL, "wants a size of at least 4K such as 32M, not '%s'", value);
                return 0;
        case OPT_NBD_BUFFER_TOTAL:
                if (parse_size(value, &a->nbd_limits.buffer_total) < 0 || a->nbd_limits.buffer_total < 4096)
                        return err_set(err, errlen, -EINVAL, "wants a size of at least 4K such as 1G, not '%s'", value);
                return 0;
        case OPT_FUSE:
                a->fuse = value;
                return 0;
        case OPT_VHOST_USER_BLK:
                a->vhost_user_blk = value;
                return 0;
        case OPT_BACKGROUND:
                if (parse_background(value) < 0) {
                        return err_set(err, errlen, -EINVAL, "wants off, on or a rate such as 50M (bytes/s), not '%s'", value);
                }
                return 0;
        case OPT_FETCH_TIMEOUT: {
                char *end;
                double v = strtod(value, &end);
                if (end == value || *end || !(v >= 0.1 && v <= 86400)) {
                        return err_set(err, errlen, -EINVAL, "wants seconds (0.1 to 86400), not '%s'", value);
                }
                a->sched.fetch_timeout_ns = (uint64_t) (v * 1e9);
                return 0;
        }
        case OPT_LEARN_WINDOW: {
                char *end;
                double v = strtod(value, &end);
                if (end == value || *end || !(v >= 0 && v <= 86400))
                        return err_set(err, errlen, -EINVAL, "wants seconds (0 to 86400; 0 learns nothing), not '%s'",
                                       value);
                a->learn_window_ns = (uint64_t) (v * 1e9);
                return 0;
        }
        case OPT_STATE_DIR:
                a->state_dir = value;
                return 0;
        case OPT_FETCH_LOG:
                a->sched.fetch_log = value;
                return 0;
        case OPT_CONTROL_MAX_CLIENTS:
                return parse_uint(value, 1, 4096, &a->control_max_clients, err, errlen);
        case OPT_METRICS_MAX_CLIENTS:
                return parse_uint(value, 1, 4096, &a->metrics_max_clients, err, errlen);
        case OPT_CONTROL_IDLE_TIMEOUT:
                return parse_uint(value, 1, 86400, &a->control_idle_timeout_s, err, errlen);
        case OPT_WRITE_BEHIND:
                if (strcmp(value, "off") == 0) {
                        a->sched.write_behind = 0;
                        return 0;
                }
                if (parse_size(value, &a->sched.write_behind) < 0 || a->sched.write_behind < (1u << 20))
                        return err_set(err, errlen, -EINVAL, "wants off or a size of at least 1M such as 128M, not '%s'",
                                       value);
                return 0;
        case OPT_SCRUB_RATE:
                if (parse_size(value, &a->scrub_rate) < 0)
                        return err_set(err, errlen, -EINVAL, "wants a rate in bytes/s such as 4M, or 0 (off), not '%s'", value);
                return 0;
        case OPT_REQUEST_TIMEOUT: {
                char *end;
                double v = strtod(value, &end);
                if (end == value || *end || !(v >= 0.1 && v <= 3600))
                        return err_set(err, errlen, -EINVAL, "wants seconds (0.1 to 3600), not '%s'", value);
                a->request_timeout_ns = (uint64_t) (v * 1e9);
                return 0;
        }
        case OPT_CONFIG:
                a->config_path = value;
                return 0;
        case OPT_RECORD: {
                char **rec = realloc(a->records, (a->n_records + 1) * sizeof *rec);
                const char *eq = strchr(value, '=');
                if (!rec)
                        return -ENOMEM;
                a->records = rec;
                if (!eq || eq == value || !eq[1]) {
                        return err_set(err, errlen, -EINVAL, "wants NAME=PATH, not '%s'", value);
                }
                a->records[a->n_records++] = (char *) value;
                return 0;
        }
        default:
                return err_set(err, errlen, -EINVAL, "is not a blockd option");
        }
bad_size:
        return err_set(err, errlen, -EINVAL, "wants a size such as 20G, not '%s'", value);
}

void blockd_option_tables(struct blockd_args *a, struct opt_table ret[BLOCKD_N_OPTION_TABLES]) {
        ret[0] = (struct opt_table) { "Serving", serving_options, blockd_option_set, a };
        ret[1] = (struct opt_table) { "Tuning", tuning_options, blockd_option_set, a };
        ret[2] = COMMON_OPTION_TABLE(&a->common);
}

static void help(const struct opt_table *const *tables) {
        printf("Usage: blockd [OPTIONS]\n\n"
               "Serve hocus-blk images as block devices over NBD. One process serves many\n"
               "exports over one local chunk store; exports are given here or attached later\n"
               "through the control socket (hocus-blk attach|detach|ls|stats).\n\n");
        for (size_t i = 0; i < BLOCKD_N_OPTION_TABLES; i++) {
                opt_table_help(stdout, tables[i]);
                if (i + 1 < BLOCKD_N_OPTION_TABLES)
                        printf("\n");
        }
}

/* --config FILE (or --config=FILE) from argv, before the options are
 * parsed: the file comes first so that the command line wins. NULL when
 * not given. */
static const char *find_config(int argc, char **argv) {
        const char *path = NULL;

        for (int i = 1; i < argc && strcmp(argv[i], "--"); i++) {
                if (!strcmp(argv[i], "--config") && i + 1 < argc)
                        path = argv[++i];
                else if (!strncmp(argv[i], "--config=", 9))
                        path = argv[i] + 9;
        }
        return path;
}

/* Config exports join the command line's, which win on a name. */
static int add_config_exports(void) {
        for (size_t i = 0; arg.config && i < arg.config->n_exports; i++) {
                const struct export_config *c = &arg.config->exports[i];
                struct export_config *e;
                bool taken = false;

                for (size_t j = 0; j < arg.n_cmdline_exports; j++)
                        taken |= !strcmp(arg.exports[j].name, c->name);
                if (taken) {
                        log_notice("Export %s: the command line's --export wins over %s", c->name, arg.config->path);
                        continue;
                }
                e = realloc(arg.exports, (arg.n_exports + 1) * sizeof *e);
                if (!e)
                        return -ENOMEM;
                arg.exports = e;
                e = &arg.exports[arg.n_exports++];
                *e = (struct export_config) {
                        .name = strdup(c->name),
                        .ref = strdup(c->ref),
                        .overlay = c->overlay ? strdup(c->overlay) : NULL,
                        .profile = c->profile ? strdup(c->profile) : NULL,
                        .vhost_user = c->vhost_user ? strdup(c->vhost_user) : NULL,
                };
                if (!e->name || !e->ref || (c->overlay && !e->overlay) || (c->profile && !e->profile) ||
                    (c->vhost_user && !e->vhost_user))
                        return -ENOMEM;
        }
        return 0;
}

bool blockd_export_from_cmdline(const char *name) {
        for (size_t j = 0; j < arg.n_cmdline_exports; j++)
                if (!strcmp(arg.exports[j].name, name))
                        return true;
        return false;
}

/* The TLS options together: --tls-certificates DIR names the files;
 * --tls-psk replaces certificates; --tls on|require needs one of them. */
static int tls_options_check(void) {
        static char cert[4096], key[4096];
        const char *mode = arg.tls == NBDSRV_TLS_ON ? "on" : "require";

        if (arg.tls_psk && (arg.tls_cert || arg.tls_key || arg.tls_ca || arg.tls_certificates))
                return log_error_errno(EINVAL, "--tls-psk replaces certificates: drop --tls-cert, --tls-key, --tls-ca "
                                       "and --tls-certificates");
        if (arg.tls_certificates) {
                if (arg.tls_cert || arg.tls_key)
                        return log_error_errno(EINVAL, "give --tls-certificates DIR or --tls-cert and --tls-key, not both");
                snprintf(cert, sizeof cert, "%s/server-cert.pem", arg.tls_certificates);
                snprintf(key, sizeof key, "%s/server-key.pem", arg.tls_certificates);
                if (access(cert, R_OK) < 0 || access(key, R_OK) < 0)
                        return log_error_errno(errno, "--tls-certificates %s: cannot read %s: %m "
                                               "(the directory holds server-cert.pem and server-key.pem)",
                                               arg.tls_certificates, access(cert, R_OK) < 0 ? cert : key);
                arg.tls_cert = cert;
                arg.tls_key = key;
        }
        if (arg.tls == NBDSRV_TLS_OFF && (arg.tls_psk || arg.tls_certificates))
                return log_error_errno(EINVAL, "%s takes effect with --tls=on or --tls=require",
                                       arg.tls_psk ? "--tls-psk" : "--tls-certificates");
        if (arg.tls != NBDSRV_TLS_OFF && !arg.tls_psk && (!arg.tls_cert || !arg.tls_key))
                return log_error_errno(EINVAL, "--tls=%s needs --tls-cert and --tls-key, --tls-certificates DIR or "
                                       "--tls-psk FILE", mode);
        return 0;
}

int blockd_parse_args(int argc, char **argv) {
        const char *env = getenv("HOCUS_BLK_BACKGROUND");
        struct opt_table t[BLOCKD_N_OPTION_TABLES];
        const struct opt_table *tables[BLOCKD_N_OPTION_TABLES];
        const char *config = find_config(argc, argv);
        char err[512];
        int r;

        blockd_option_tables(&arg, t);
        for (size_t i = 0; i < BLOCKD_N_OPTION_TABLES; i++)
                tables[i] = &t[i];
        if (env && *env && parse_background(env) < 0)
                log_warning("Ignoring $HOCUS_BLK_BACKGROUND='%s' (want off, on or a rate)", env);
        env = getenv("HOCUS_BLK_SCRUB_RATE");
        if (env && *env && parse_size(env, &arg.scrub_rate) < 0)
                log_warning("Ignoring $HOCUS_BLK_SCRUB_RATE='%s' (want a rate in bytes/s such as 4M, or 0)", env);
        if (!config && access(BLOCKD_CONFIG_DEFAULT, F_OK) == 0)
                config = BLOCKD_CONFIG_DEFAULT;
        if (config && *config) {
                r = blockd_config_load(config, tables, BLOCKD_N_OPTION_TABLES, &arg.config, err, sizeof err);
                if (r < 0)
                        return log_error_errno(r, "%s", err);
                arg.config_path = config;
        }
        r = opt_parse_argv(argc, argv, tables, BLOCKD_N_OPTION_TABLES, err, sizeof err);
        if (r == 'h') {
                help(tables);
                return 0;
        }
        if (r == OPT_VERSION) {
                printf("blockd %s\n", HOCUS_VERSION);
                return 0;
        }
        if (r == -ENOMEM)
                return log_error_errno(r, "Out of memory");
        if (r < 0)
                return log_error_errno(r, "%s (see 'blockd --help')", err);
        if (optind < argc)
                return log_error_errno(EINVAL, "Unexpected argument '%s' (see 'blockd --help')", argv[optind]);
        r = tls_options_check();
        if (r < 0)
                return r;
        arg.n_cmdline_exports = arg.n_exports;
        if (add_config_exports() < 0)
                return log_error_errno(ENOMEM, "Out of memory");
        if (arg.run && arg.n_exports == 0)
                return log_error_errno(EINVAL, "--run needs at least one --export");
        return 1;
}
