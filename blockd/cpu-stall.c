/* SPDX-License-Identifier: Apache-2.0 */
#include "cpu-stall.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int cpu_stall_parse(const char *text, uint64_t *ret_us) {
        const char *t;
        uint64_t v;

        if (strncmp(text, "some ", 5) != 0)
                return -EBADMSG;
        t = strstr(text, " total=");
        if (!t || (strchr(text, '\n') && t > strchr(text, '\n')))
                return -EBADMSG;
        if (sscanf(t, " total=%" SCNu64, &v) != 1)
                return -EBADMSG;
        *ret_us = v;
        return 0;
}

/* Read the file again; on failure keep the last value (and stop reading).
 * The caller holds c->reading, or is alone (open). */
static int sample(struct cpu_stall *c) {
        char buf[256];
        uint64_t us;
        ssize_t n = pread(c->fd, buf, sizeof buf - 1, 0);
        int r;

        if (n < 0)
                r = -errno;
        else {
                buf[n] = 0;
                r = cpu_stall_parse(buf, &us);
        }
        if (r < 0) {
                close(c->fd);
                __atomic_store_n(&c->fd, -1, __ATOMIC_RELAXED);
                return r;
        }
        if (us * 1000 > __atomic_load_n(&c->total_ns, __ATOMIC_RELAXED))
                __atomic_store_n(&c->total_ns, us * 1000, __ATOMIC_RELAXED);
        return 0;
}

int cpu_stall_open(struct cpu_stall *c, const char *path) {
        *c = (struct cpu_stall) { .fd = open(path ? path : CPU_STALL_PATH, O_RDONLY | O_CLOEXEC) };
        if (c->fd < 0)
                return -errno;
        return sample(c);
}

void cpu_stall_close(struct cpu_stall *c) {
        if (c->fd >= 0)
                close(c->fd);
        c->fd = -1;
}

bool cpu_stall_available(const struct cpu_stall *c) {
        return __atomic_load_n(&c->fd, __ATOMIC_RELAXED) >= 0;
}

static bool due(const struct cpu_stall *c, uint64_t now_ns) {
        uint64_t last = __atomic_load_n(&c->read_ns, __ATOMIC_RELAXED);

        return cpu_stall_available(c) && (!last || now_ns >= last + CPU_STALL_SAMPLE_NS);
}

uint64_t cpu_stall_ns(struct cpu_stall *c, uint64_t now_ns) {
        /* Looked at again once the flag is ours: another caller may have
         * read the file (or stopped reading it) meanwhile. */
        if (due(c, now_ns) && !__atomic_exchange_n(&c->reading, true, __ATOMIC_ACQUIRE)) {
                if (due(c, now_ns)) {
                        __atomic_store_n(&c->read_ns, now_ns, __ATOMIC_RELAXED);
                        (void) sample(c);
                }
                __atomic_store_n(&c->reading, false, __ATOMIC_RELEASE);
        }
        return __atomic_load_n(&c->total_ns, __ATOMIC_RELAXED);
}
