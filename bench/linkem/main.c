/* SPDX-License-Identifier: Apache-2.0 */
/*
 * linkem: emulate a network link between a client and a server on
 * loopback. See linkem.h for the model and options.c for the command line.
 *
 *   linkem --connect 127.0.0.1:5000 --delay 1ms --rate 1gbit --port-file P
 *
 * Ready once the port file (or pidfile) exists; the port is also printed
 * on stdout. SIGTERM exits 0 after closing every connection.
 */
#include "linkem.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"

/* Room for many connections: two descriptors each. */
static void raise_fd_limit(void) {
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                (void) setrlimit(RLIMIT_NOFILE, &rl);
        }
}

/* path := "v\n", atomically, so a reader never sees half a number. */
static int write_number_file(const char *path, uint64_t v) {
        char buf[32];
        int n = snprintf(buf, sizeof(buf), "%" PRIu64 "\n", v);

        return write_file_atomic(AT_FDCWD, path, buf, (size_t) n, 0644);
}

/* One log line with the link as configured. */
static void describe(const struct options *o, uint64_t port) {
        char rate[2][32];
        int d;

        for (d = UP; d <= DOWN; d++) {
                if (o->rate[d])
                        snprintf(rate[d], sizeof(rate[d]), "%.3f Gbit/s", (double) o->rate[d] / 1e9);
                else
                        snprintf(rate[d], sizeof(rate[d]), "uncapped");
        }
        log_info("port %" PRIu64 "%s: delay %.3f/%.3f ms (up/down), rate %s/%s, buffer up to %zu KiB, %zu fault(s)",
                 port, o->refuse_all ? " (refusing connections)" : "",
                 (double) o->delay_ns[UP] / 1e6, (double) o->delay_ns[DOWN] / 1e6,
                 rate[UP], rate[DOWN], conn_buffer_size(o) >> 10, o->n_faults);
}

/* Parse, listen, announce readiness (port file, pidfile, stdout), run
 * until SIGTERM, then report. Exit 0, 1 on a runtime error, 2 on usage. */
int main(int argc, char **argv) {
        struct options o;
        struct loop lp;
        uint64_t port;
        int r;

        log_set_ident("linkem");
        r = options_parse(argc, argv, &o);
        if (r != 0)
                return r > 0 ? 0 : 2;
        /* Timers of tens of microseconds: the default 50 us slack is too much. */
        (void) prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
        raise_fd_limit();
        (void) signal(SIGPIPE, SIG_IGN);

        r = loop_init(&lp, &o);
        if (r < 0) {
                log_error_errno(r, "Failed to set up the listening socket: %m");
                goto out;
        }
        port = loop_listen_port(&lp);
        describe(&o, port);
        if (o.port_file) {
                r = write_number_file(o.port_file, port);
                if (r < 0) {
                        log_error_errno(r, "Failed to write '%s': %m", o.port_file);
                        goto out;
                }
        }
        if (o.pidfile) {
                r = write_number_file(o.pidfile, (uint64_t) getpid());
                if (r < 0) {
                        log_error_errno(r, "Failed to write '%s': %m", o.pidfile);
                        goto out;
                }
        }
        printf("%" PRIu64 "\n", port);
        fflush(stdout);

        r = loop_run(&lp);
        loop_log_stats(&lp);
        if (o.stats_file) {
                int k = loop_write_stats(&lp, o.stats_file);
                if (k < 0)
                        log_warning_errno(k, "Failed to write '%s': %m", o.stats_file);
        }
        if (o.pidfile)
                (void) unlink(o.pidfile);
out:
        loop_free(&lp);
        return r < 0 ? 1 : 0;
}
