/* SPDX-License-Identifier: Apache-2.0 */
/* systemd: journal priorities, passed sockets, sd_notify. */
#include "blockd/service.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "blockd/options.h"
#include "blockd/sockets.h"
#include "common/log.h"

/* Is stderr the stream JOURNAL_STREAM ("DEV:INODE") names? */
static int stderr_is_journal(void) {
        const char *e = getenv("JOURNAL_STREAM");
        unsigned long long dev, ino;
        struct stat st;

        if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2 || fstat(STDERR_FILENO, &st) < 0)
                return 0;
        return st.st_dev == (dev_t) dev && st.st_ino == (ino_t) ino;
}

int service_log_setup(void) {
        static const char *const prefixes[8] = { SD_EMERG, SD_ALERT, SD_CRIT,   SD_ERR,
                                                 SD_WARNING, SD_NOTICE, SD_INFO, SD_DEBUG };

        if (!stderr_is_journal())
                return 0;
        log_set_priority_prefixes(prefixes);
        return 1;
}

/* Copies of the addresses the passed sockets stand for (arg points here). */
static char passed_nbd_unix[4096], passed_nbd_tcp[4096], passed_control[4096], passed_metrics[4096];

int service_take_sockets(void) {
        char kind;
        int r = sockets_take_passed();

        if (r < 0)
                return log_error_errno(r, "Cannot take the sockets passed in (LISTEN_FDS): %m");
        if (r == 0)
                return 0;
        log_info("%d listening socket%s passed in", r, r == 1 ? "" : "s");
        for (size_t i = 0; i < 2; i++) {
                char buf[4096];

                if (sockets_passed_address("nbd", i, buf, sizeof buf, &kind) <= 0)
                        break;
                if (kind == 'u' && !arg.nbd_socket) {
                        snprintf(passed_nbd_unix, sizeof passed_nbd_unix, "%s", buf);
                        arg.nbd_socket = passed_nbd_unix;
                } else if (kind == 't' && !arg.nbd_listen) {
                        snprintf(passed_nbd_tcp, sizeof passed_nbd_tcp, "%s", buf);
                        arg.nbd_listen = passed_nbd_tcp;
                }
        }
        if (!arg.control && sockets_passed_address("control", 0, passed_control, sizeof passed_control, &kind) > 0 &&
            kind == 'u')
                arg.control = passed_control;
        if (!arg.metrics && sockets_passed_address("metrics", 0, passed_metrics, sizeof passed_metrics, &kind) > 0 &&
            kind == 't')
                arg.metrics = passed_metrics;
        return 0;
}

void service_ready(unsigned n_exports) {
        (void) sd_notifyf(0, "READY=1\nSTATUS=Serving %u export%s", n_exports, n_exports == 1 ? "" : "s");
}

void service_reloading(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        (void) sd_notifyf(0, "RELOADING=1\nSTATUS=Reloading the config file\nMONOTONIC_USEC=%llu",
                          (unsigned long long) ts.tv_sec * 1000000ULL + (unsigned long long) ts.tv_nsec / 1000);
}

void service_stopping(void) {
        (void) sd_notify(0, "STOPPING=1\nSTATUS=Stopping: draining clients, flushing overlays");
}
