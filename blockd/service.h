/* SPDX-License-Identifier: Apache-2.0 */
/*
 * blockd as a systemd service (libsystemd; everything here is a no-op
 * when no service manager is around): journal priorities on log lines,
 * the sockets systemd passes in standing for --nbd-socket, --nbd-listen,
 * --control and --metrics, and sd_notify's READY, RELOADING, STOPPING
 * and STATUS. Main thread only.
 */
#pragma once

/* Before the first log line: when stderr is the journal (JOURNAL_STREAM
 * names it), each line starts with its priority ("<3>") instead of a time
 * stamp. Returns 1 then, else 0. */
int service_log_setup(void);

/* Take the passed sockets (socket activation, the fd store) and fill the
 * listening options they stand for when the command line and config file
 * left them unset, by name: nbd (Unix or TCP), control, metrics. Other
 * passed sockets are adopted by address (sockets.h). 0 or -errno (logged). */
int service_take_sockets(void);

/* READY=1 with a STATUS line. */
void service_ready(unsigned n_exports);
/* RELOADING=1 (with MONOTONIC_USEC), then service_ready() when done. */
void service_reloading(void);
/* STOPPING=1. */
void service_stopping(void);
