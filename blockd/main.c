/* SPDX-License-Identifier: Apache-2.0 */
/*
 * blockd: serve hocus-blk images as block devices over NBD and as files
 * (FUSE). One process, many exports over one chunk store; exports come
 * from the command line and from the control socket. Signals are handled
 * synchronously in the main thread (sigwaitinfo): SIGTERM/SIGINT stop
 * accepting, let in-flight requests finish, flush the overlays and exit 0
 * (1 if a flush or a --record save failed; with --run, the command's
 * status).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "blockd/control.h"
#include "blockd/ctlproto/client.h"
#include "blockd/daemon.h"
#include "blockd/fuse.h"
#include "blockd/vhost/server.h"
#include "blockd/kernel-devices.h"
#include "blockd/metrics.h"
#include "blockd/nbd/server.h"
#include "blockd/options.h"
#include "blockd/reload.h"
#include "blockd/restore.h"
#include "blockd/service.h"
#include "blockd/nbd/tls.h"
#include "blockd/sched.h"
#include "chunkstore/profile.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"

extern char **environ;

#define SHUTDOWN_GRACE_S 30

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

/*
 * The HOST:PORT a client should connect to for a listener bound to
 * host_port (HOST:PORT or [V6]:PORT) on port: the same host, but loopback
 * for a wildcard address, which is nothing to connect to. Returns whether
 * it was a wildcard (listening on all addresses).
 */
static bool connect_address(const char *host_port, unsigned port, char *buf, size_t len) {
        const char *colon = strrchr(host_port, ':');
        char host[256];
        bool any;

        snprintf(host, sizeof host, "%.*s", colon ? (int) (colon - host_port) : 0, host_port);
        any = !strcmp(host, "0.0.0.0") || !strcmp(host, "[::]");
        snprintf(buf, len, "%s:%u", !any ? host : host[0] == '[' ? "[::1]" : "127.0.0.1", port);
        return any;
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

/* For the control socket: how clients reach an export. */
static char *control_export_uri(void *u, const char *name) {
        return blockd_export_uri(u, name);
}

static char *control_export_file(void *u, const char *name) {
        const struct blockd *d = u;
        char *file;

        if (!d->fuse_dir || asprintf(&file, "%s/%s", d->fuse_dir, name) < 0)
                return NULL;
        return file;
}

static char *control_export_vhost_user(void *u, const char *name) {
        const struct blockd *d = u;

        return d->vhost ? vhostfe_socket_path(d->vhost, name) : NULL;
}

static const struct control_ops control_ops = { .export_uri = control_export_uri,
                                                .export_file = control_export_file,
                                                .export_vhost_user = control_export_vhost_user };

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
        vhostfe_kick_export(d->vhost, e, hard);
}

/* An export was attached (or updated): its vhost-user-blk socket. */
static void export_attached(void *u, struct export *e) {
        struct blockd *d = u;

        (void) vhostfe_add(d->vhost, e);
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
        for (size_t i = 0; i < arg.n_records; i++) {
                const char *eq = strchr(arg.records[i], '=');
                _cleanup_free_ char *name = strndup(arg.records[i], (size_t) (eq - arg.records[i]));
                struct export *e = name ? exports_get(d->exports, name) : NULL;
                int r;

                if (!e)
                        return log_error_errno(ENOENT, "--record %s: no export named '%s'", arg.records[i],
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

        for (size_t i = 0; i < arg.n_records && d->exports; i++) {
                const char *eq = strchr(arg.records[i], '=');
                _cleanup_free_ char *name = strndup(arg.records[i], (size_t) (eq - arg.records[i]));
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

static void flush_one(struct export *e, void *ctx) {
        int *ret = ctx, r = export_flush(e);

        if (r < 0) {
                log_error_errno(r, "Export %s: flushing the overlay failed: %m", export_name(e));
                if (*ret == 0)
                        *ret = r;
        }
}

/* Stop while abandoned control requests still use the exports and what
 * is under them: flush every overlay, and exit without freeing anything. */
static _Noreturn void stop_abandoned(struct blockd *d, bool pidfile_written, const char *tmpdir, int exit_code) {
        int r = 0;

        if (d->exports)
                exports_for_each(d->exports, flush_one, &r);
        if (r < 0 && exit_code == 0)
                exit_code = 1;
        if (pidfile_written)
                (void) unlink(arg.pidfile);
        if (tmpdir)
                (void) rmdir(tmpdir);
        if (exit_code == 0)
                log_info("Stopped (overlays flushed; abandoned the control requests still running)");
        _exit(exit_code);
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

/* Run the captive command with $uri (and $unixsocket or $port) set. */
static int spawn_run(const struct blockd *d, const char *uri, pid_t *ret) {
        posix_spawnattr_t attr;
        sigset_t none, dflt;
        _cleanup_free_ char **envp = NULL;
        _cleanup_free_ char *e_uri = NULL, *e_extra = NULL, *e_file = NULL;
        char *argv[] = { (char *) "sh", (char *) "-c", (char *) arg.run, NULL };
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
                if (asprintf(&e_file, "HOCUS_BLK_FILE=%s/%s", fusefe_dir(d->fuse), arg.exports[0].name) < 0)
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
        struct metrics_sources msrc;
        struct state *state = NULL;
        _cleanup_free_ char *tmpdir = NULL, *tmpsock = NULL;
        char control_buf[4096];
        const char *control_path = NULL;
        sigset_t sigs;
        pid_t child = 0;
        bool pidfile_written = false;
        unsigned abandoned;
        int r, status = 0, exit_code = 0;

        log_set_ident("blockd");
        if (service_log_setup() == 0)
                log_set_timestamps(true);
        r = blockd_parse_args(argc, argv);
        if (r <= 0)
                return r < 0 ? (r == -EINVAL ? 2 : 1) : 0;
        if (service_take_sockets() < 0)
                return 1;

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
                if (!arg.fd_cache)
                        arg.fd_cache = (unsigned) MIN(room, (uint64_t) 8192);
                else if (arg.fd_cache > room)
                        log_warning("--fd-cache %u is more than half the open-file limit (%llu)", arg.fd_cache,
                                    (unsigned long long) nofile);
        }

        d.start_ns = now_ns();
        kernel_devices_log();
        d.source = common_source_options(&arg.common);
        /* Attaching (GET /v2/, manifest, index, profile) waits no longer
         * than a read would. */
        d.source.request_timeout_ns = arg.sched.fetch_timeout_ns ?: SCHED_FETCH_TIMEOUT_DEFAULT_NS;
        /* Demand reads on connections of their own, opened by the attach. */
        d.source.demand_conns = true;
        d.cache_dir = common_cache_dir(&arg.common);
        r = chunkstore_open(d.cache_dir, arg.cache_max, &d.store);
        if (r < 0) {
                log_error_errno(r, "Cannot open the chunk store '%s': %m", d.cache_dir);
                return 1;
        }
        r = chunkfd_cache_new(d.store, arg.fd_cache, &d.fds);
        if (r < 0)
                goto fail;
        /* Re-verify open entries now and then (--scrub-rate): damage that
         * no fstat sees. */
        r = chunkfd_scrub_start(d.fds, arg.scrub_rate);
        if (r < 0)
                log_warning_errno(r, "Cannot start the chunk store re-verification: %m");
        r = sched_new(d.store, &arg.sched, &d.sched);
        if (r < 0) {
                log_error_errno(r, "Cannot start the fetch scheduler%s%s: %m", arg.sched.fetch_log ? " with --fetch-log " : "",
                                arg.sched.fetch_log ? arg.sched.fetch_log : "");
                goto fail;
        }
        sched_set_fd_cache(d.sched, d.fds);
        {
                struct export_env env = { .store = d.store, .fds = d.fds, .source = &d.source, .sched = d.sched,
                                          .learn_window_ns = arg.learn_window_ns };
                struct vhostfe_exports vx = { .get = get_export };
                r = exports_new(&env, &d.exports);
                if (r < 0)
                        goto fail;
                vx.userdata = d.exports;
                r = vhostfe_new(arg.vhost_user_blk, &vx, &d.vhost);
                if (r < 0)
                        goto fail;
                if (arg.vhost_user_blk) {
                        (void) mkdir_p(arg.vhost_user_blk, 0755);
                        log_info("vhost-user-blk sockets in %s", arg.vhost_user_blk);
                }
                exports_set_attached(d.exports, export_attached, &d);
        }
        /* With a state directory blockd is a service: it never exits for
         * one export that cannot be attached. */
        r = blockd_state_open(arg.state_dir, arg.run, &state);
        if (r < 0)
                goto fail;
        r = exports_restore(d.exports, state, arg.exports, arg.n_exports, arg.n_cmdline_exports, state != NULL);
        if (r < 0)
                goto fail;
        exports_set_state(d.exports, state);

        if (arg.tls != NBDSRV_TLS_OFF) {
                char err[512];
                r = nbdsrv_tls_new(arg.tls_cert, arg.tls_key, arg.tls_ca, arg.tls_psk, &tls, err, sizeof err);
                if (r < 0) {
                        log_error_errno(r, "%s", err);
                        goto fail;
                }
        }
        ncfg.tls_mode = arg.tls;
        ncfg.tls = tls;
        ncfg.max_threads = arg.threads;
        ncfg.use_sendfile = arg.sendfile;
        ncfg.poll_us = arg.poll_us;
        ncfg.limits = arg.nbd_limits;
        nexp = (struct nbdsrv_exports) { .get = get_export, .for_each = for_each_export, .userdata = d.exports };
        r = nbdsrv_new(&ncfg, &nexp, &d.nbd);
        if (r < 0)
                goto fail;
        exports_set_kick(d.exports, kick_export, &d);
        d.tls_required = arg.tls == NBDSRV_TLS_REQUIRE;

        if (!arg.nbd_socket && !arg.nbd_listen && arg.run) {
                /* Captive mode without a listener: a private socket. */
                tmpdir = strdup("/tmp/blockd.XXXXXX");
                if (!tmpdir || !mkdtemp(tmpdir) || asprintf(&tmpsock, "%s/nbd.sock", tmpdir) < 0) {
                        r = log_error_errno(errno ? errno : ENOMEM, "Cannot make a temporary directory: %m");
                        goto fail;
                }
                arg.nbd_socket = tmpsock;
        }
        if (arg.nbd_socket) {
                r = nbdsrv_listen_unix(d.nbd, arg.nbd_socket);
                if (r < 0) {
                        log_error_errno(r, "Cannot listen on %s: %s", arg.nbd_socket,
                                        r == -EADDRINUSE ? "another server is listening there" : strerror(-r));
                        goto fail;
                }
                d.nbd_socket = arg.nbd_socket;
                log_info("NBD on unix:%s", arg.nbd_socket);
        }
        if (arg.nbd_listen) {
                unsigned port = 0;
                bool any;

                r = nbdsrv_listen_tcp(d.nbd, arg.nbd_listen, &port);
                if (r < 0) {
                        log_error_errno(r, "Cannot listen on %s: %s", arg.nbd_listen,
                                        r == -ENXIO ? "the host name does not resolve" : strerror(-r));
                        goto fail;
                }
                any = connect_address(arg.nbd_listen, port, d.nbd_tcp, sizeof d.nbd_tcp);
                if (any)
                        log_info("NBD on TCP port %u of all addresses (from this host: nbd://%s/NAME)", port, d.nbd_tcp);
                else
                        log_info("NBD on tcp:%s", d.nbd_tcp);
        }
        if (!arg.nbd_socket && !arg.nbd_listen && !arg.fuse && !arg.vhost_user_blk)
                log_notice("No NBD listener (--nbd-socket, --nbd-listen): exports are reachable through no frontend");

        msrc = (struct metrics_sources) {
                .exports = d.exports, .sched = d.sched, .nbd = d.nbd, .fds = d.fds, .start_ns = d.start_ns,
        };
        control_path = arg.control ? arg.control : arg.run ? NULL : control_default_path(control_buf, sizeof control_buf);
        if (control_path) {
                _cleanup_free_ char *dir = strdup(control_path);
                char *slash = dir ? strrchr(dir, '/') : NULL;
                struct control_config ccfg = { .src = msrc, .ops = &control_ops, .userdata = &d,
                                               .max_clients = arg.control_max_clients,
                                               .request_timeout_ns = arg.request_timeout_ns,
                                               .idle_timeout_ns = arg.control_idle_timeout_s * 1000000000ull };

                if (slash && slash != dir) {
                        *slash = 0;
                        (void) mkdir_p(dir, 0700);
                }
                r = control_start(&ccfg, control_path, &ctl);
                if (r < 0 && !arg.control) {
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
        if (arg.metrics) {
                unsigned port = 0;
                char where[300];

                r = metrics_http_start(&msrc, arg.metrics, arg.metrics_max_clients, arg.request_timeout_ns, &mh, &port);
                if (r < 0) {
                        log_error_errno(r, "Cannot serve metrics on %s: %s", arg.metrics,
                                        r == -ENXIO ? "the host name does not resolve" : strerror(-r));
                        goto fail;
                }
                if (connect_address(arg.metrics, port, where, sizeof where))
                        log_info("Metrics on TCP port %u of all addresses (from this host: http://%s/metrics)", port, where);
                else
                        log_info("Metrics on http://%s/metrics", where);
        }
        if (arg.fuse) {
                struct fusefe_config fcfg = { .dir = arg.fuse, .on_failure = fuse_failed, .userdata = &d };
                struct fusefe_exports fx = { .get = get_export, .for_each = for_each_export, .userdata = d.exports };
                char err[512] = "";

                r = fusefe_start(&fcfg, &fx, &d.fuse, err, sizeof err);
                if (r < 0) {
                        log_error_errno(r, "Cannot serve FUSE on %s: %s", arg.fuse, err[0] ? err : strerror(-r));
                        goto fail;
                }
                d.fuse_dir = fusefe_dir(d.fuse);
        }
        r = records_start(&d);
        if (r < 0)
                goto fail;
        if (arg.nbd_socket || arg.nbd_listen) {
                r = nbdsrv_start(d.nbd);
                if (r < 0) {
                        log_error_errno(r, "Cannot start the NBD server: %m");
                        goto fail;
                }
        }
        if (arg.pidfile) {
                char pid[32];
                int n = snprintf(pid, sizeof pid, "%d\n", (int) getpid());
                r = write_file_atomic(AT_FDCWD, arg.pidfile, pid, (size_t) n, 0644);
                if (r < 0) {
                        log_error_errno(r, "Cannot write pidfile %s: %m", arg.pidfile);
                        goto fail;
                }
                pidfile_written = true;
        }
        log_info("Ready: %u exports", exports_count(d.exports));
        service_ready(exports_count(d.exports));

        if (arg.run) {
                _cleanup_free_ char *uri = blockd_export_uri(&d, arg.exports[0].name);
                if (!uri) {
                        r = log_error_errno(ENOMEM, "Out of memory");
                        goto fail;
                }
                r = spawn_run(&d, uri, &child);
                if (r < 0) {
                        log_error_errno(r, "Cannot run '%s': %m", arg.run);
                        goto fail;
                }
                log_debug("Running '%s' (pid %d) with uri=%s", arg.run, (int) child, uri);
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
                        service_reloading();
                        (void) blockd_config_reload(d.exports);
                        service_ready(exports_count(d.exports));
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
        service_stopping();
        /* Neither server waits on a client for long: a command still
         * running past the request timeout is abandoned. */
        abandoned = metrics_http_stop(mh) + control_stop(ctl);
        if (d.nbd)
                nbdsrv_shutdown(d.nbd, SHUTDOWN_GRACE_S);
        fusefe_stop(d.fuse);
        d.fuse = NULL;
        if (d.exports)
                exports_set_attached(d.exports, NULL, NULL);    /* no socket for a late retry */
        vhostfe_free(d.vhost);
        d.vhost = NULL;
        if (records_save(&d) < 0 && exit_code == 0)
                exit_code = 1;
        if (abandoned > 0)
                stop_abandoned(&d, pidfile_written, tmpdir, exit_code);
        if (exports_free(d.exports) < 0 && exit_code == 0)
                exit_code = 1;
        state_free(state);
        nbdsrv_free(d.nbd);
        nbdsrv_tls_free(tls);
        sched_free(d.sched);
        chunkfd_cache_free(d.fds);
        chunkstore_free(d.store);
        if (pidfile_written)
                (void) unlink(arg.pidfile);
        if (tmpdir)
                (void) rmdir(tmpdir);
        for (size_t i = 0; i < arg.n_exports; i++) {
                free((char *) arg.exports[i].name);
                free((char *) arg.exports[i].ref);
                free((char *) arg.exports[i].overlay);
                free((char *) arg.exports[i].profile);
                free((char *) arg.exports[i].vhost_user);
        }
        free(arg.records);
        free(arg.exports);
        blockd_config_free(arg.config);
        if (exit_code == 0)
                log_info("Stopped");
        return exit_code;
}
