/* SPDX-License-Identifier: Apache-2.0 */
/* blockd's kernel block device detection (blockd/kernel-devices.h) on a
 * fake root: absent, loadable (modules.dep lists the module, compressed or
 * not, and a module whose name only starts the same does not count),
 * loaded (by /sys/module or by the device node), and the log wording. */
#undef NDEBUG
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blockd/kernel-devices.h"
#include "common/util.h"

static char root[256];

static void put(const char *rel, const char *text) {
        char p[512], dir[512];

        snprintf(p, sizeof p, "%s%s", root, rel);
        snprintf(dir, sizeof dir, "%s", p);
        *strrchr(dir, '/') = 0;
        assert(mkdir_p(dir, 0755) == 0);
        assert(write_file_atomic(-100, p, text, strlen(text), 0644) == 0);
}

static const char *describe(void) {
        static char buf[256];
        struct kernel_devices k;

        kernel_devices_detect(root, "6.1.0-test", &k);
        return kernel_devices_describe(&k, buf, sizeof buf);
}

int main(void) {
        char cmd[300];

        snprintf(root, sizeof root, "%s/hocus-test.kdev.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
        assert(mkdtemp(root));

        assert(!strcmp(describe(), "nbd absent, ublk absent"));
        /* Another kernel's modules do not count; nbdfoo is not nbd. */
        put("/lib/modules/5.0.0/modules.dep", "kernel/drivers/block/nbd.ko:\n");
        put("/lib/modules/6.1.0-test/modules.dep",
            "kernel/drivers/block/loop.ko.zst:\nkernel/drivers/block/nbdfoo.ko: kernel/x.ko\n");
        assert(!strcmp(describe(), "nbd absent, ublk absent"));
        put("/lib/modules/6.1.0-test/modules.dep",
            "kernel/drivers/block/loop.ko.zst:\nkernel/drivers/block/nbd.ko.xz: kernel/x.ko\n"
            "kernel/drivers/block/ublk_drv.ko:\n");
        assert(!strcmp(describe(), "nbd loadable (modprobe nbd), ublk loadable (modprobe ublk_drv)"));
        put("/sys/module/nbd/parameters/nbds_max", "16\n");
        assert(!strcmp(describe(), "nbd loaded, ublk loadable (modprobe ublk_drv)"));
        put("/dev/ublk-control", "");
        assert(!strcmp(describe(), "nbd loaded, ublk loaded"));

        snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
        assert(system(cmd) == 0);
        return 0;
}
