/* SPDX-License-Identifier: Apache-2.0 */
#include "cpu-stall.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/cleanup.h"

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

/* Read the file again; on failure keep the last value (and stop reading). */
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
                c->fd = -1;
                return r;
        }
        c->total_ns = MAX(c->total_ns, us * 1000);
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
        return c->fd >= 0;
}

uint64_t cpu_stall_ns(struct cpu_stall *c, uint64_t now_ns) {
        if (c->fd >= 0 && (!c->read_ns || now_ns >= c->read_ns + CPU_STALL_SAMPLE_NS)) {
                c->read_ns = now_ns;
                (void) sample(c);
        }
        return c->total_ns;
}
