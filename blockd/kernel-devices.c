/* SPDX-License-Identifier: Apache-2.0 */
#include "kernel-devices.h"

#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"

#define MODULES_DEP_MAX (16u << 20)

static bool exists(const char *root, const char *path) {
        char p[4096];

        snprintf(p, sizeof p, "%s%s", root, path);
        return access(p, F_OK) == 0;
}

/* Does modules.dep list module (a line "path/NAME.ko[.xz|.gz|.zst]: deps")? */
static bool module_listed(const char *dep, const char *module) {
        size_t n = strlen(module);

        for (const char *line = dep; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
                const char *colon = strchr(line, ':'), *nl = strchr(line, '\n');
                const char *base = line, *ko;

                if (!colon || (nl && colon > nl))
                        continue;
                for (const char *p = line; p < colon; p++)
                        if (*p == '/')
                                base = p + 1;
                ko = base + n;
                if (ko + 3 <= colon && !strncmp(base, module, n) && !strncmp(ko, ".ko", 3))
                        return true;
        }
        return false;
}

static enum kdev_state state_of(const char *root, const char *dep, const char *module, const char *node) {
        char sys[256];

        snprintf(sys, sizeof sys, "/sys/module/%s", module);
        if (exists(root, sys) || exists(root, node))
                return KDEV_LOADED;
        if (dep && module_listed(dep, module))
                return KDEV_LOADABLE;
        return KDEV_ABSENT;
}

void kernel_devices_detect(const char *root, const char *release, struct kernel_devices *ret) {
        _cleanup_free_ char *dep = NULL;
        struct utsname u;
        char path[4096];

        if (!release)
                release = uname(&u) == 0 ? u.release : "";
        snprintf(path, sizeof path, "%s/lib/modules/%s/modules.dep", root, release);
        if (read_file_all(AT_FDCWD, path, MODULES_DEP_MAX, &dep, NULL) < 0)
                dep = NULL;
        ret->nbd = state_of(root, dep, "nbd", "/dev/nbd0");
        ret->ublk = state_of(root, dep, "ublk_drv", "/dev/ublk-control");
}

static const char *word(enum kdev_state s, const char *module) {
        static const char *loadable[] = { "loadable (modprobe nbd)", "loadable (modprobe ublk_drv)" };

        switch (s) {
        case KDEV_LOADED:
                return "loaded";
        case KDEV_LOADABLE:
                return loadable[strcmp(module, "nbd") != 0];
        default:
                return "absent";
        }
}

const char *kernel_devices_describe(const struct kernel_devices *k, char *buf, size_t len) {
        snprintf(buf, len, "nbd %s, ublk %s", word(k->nbd, "nbd"), word(k->ublk, "ublk_drv"));
        return buf;
}

void kernel_devices_log(void) {
        struct kernel_devices k;
        char buf[128];

        kernel_devices_detect("", NULL, &k);
        log_info("Kernel block devices: %s (to bridge an export to one: docs/KERNEL-DEVICES.md)",
                 kernel_devices_describe(&k, buf, sizeof buf));
}
