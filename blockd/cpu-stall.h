/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A clock of CPU stall: the time during which some task on the machine
 * was runnable and waited for a CPU, from the kernel's pressure stall
 * information (/proc/pressure/cpu, "some ... total=MICROSECONDS";
 * Linux 4.20+ with CONFIG_PSI, and not psi=0).
 *
 * The fetch scheduler takes it beside the time at each request's send and
 * completion (sched-bdp.h): latency that the link does not explain but
 * that CPU waits during the request's lifetime do is not a queue on the
 * link. Why "some" for the whole machine and not the scheduler's own
 * threads' waits (/proc/thread-self/schedstat): a request's path runs
 * through other processes too (the registry, a proxy, a link emulator),
 * and any of them waiting for a CPU delays it. Each task's wait within
 * an interval is counted in "some" over that interval, so the delta over
 * a request's lifetime is at least the waits of the steps on its path
 * (which take turns). It can forgive more than the path waited (another
 * process's wait counts too), not less.
 *
 * Cheap: the file stays open and is read again (one pread) at most every
 * CPU_STALL_SAMPLE_NS; between reads the last value is returned, so a
 * delta is off by at most that much stall at either end. Without the file
 * the clock stands at 0 (no stall is ever seen: the caller behaves as if
 * there were no filter).
 *
 * Thread-safe and never blocks on another caller: the scheduler reads it
 * before it takes its lock (a pread there would hold up every thread that
 * waits for the lock). One caller at a time reads the file; one that
 * finds it being read takes the last value, as between reads.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#define CPU_STALL_PATH "/proc/pressure/cpu"
#define CPU_STALL_SAMPLE_NS 1000000ull  /* 1 ms */

struct cpu_stall {
        int fd;                 /* -1: no pressure file */
        bool reading;           /* a caller reads the file (it alone uses fd then) */
        uint64_t read_ns;       /* when last read; 0 = never */
        uint64_t total_ns;      /* "some" total then */
};

/* Open path (NULL: CPU_STALL_PATH). Returns 0, or -errno when it cannot
 * be read or parsed (c then stands at 0; cpu_stall_close is still fine).
 * Open and close while no other thread uses c. */
int cpu_stall_open(struct cpu_stall *c, const char *path);
void cpu_stall_close(struct cpu_stall *c);
/* Whether the clock runs (the file was there). */
bool cpu_stall_available(const struct cpu_stall *c);
/* CPU stall so far, in ns (since boot; only deltas mean anything),
 * read again when the last read is CPU_STALL_SAMPLE_NS older than now_ns. */
uint64_t cpu_stall_ns(struct cpu_stall *c, uint64_t now_ns);
/* Parse the pressure file's text: the "some" line's total, in us. */
int cpu_stall_parse(const char *text, uint64_t *ret_us);
