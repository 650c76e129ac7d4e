/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Which kernel block device drivers this host offers, so that blockd can say
 * once at start whether an export can be bridged to /dev/nbdN (nbd-client)
 * or to a ublk device (nbdublk). blockd itself serves NBD and FUSE only;
 * docs/KERNEL-DEVICES.md says how to bridge.
 *
 * A driver is "loaded" when /sys/module/NAME or its device node exists,
 * "loadable" when modules.dep of the running kernel lists NAME.ko (what
 * `modprobe -n NAME` checks), else "absent".
 */
#pragma once

#include <stddef.h>

enum kdev_state {
        KDEV_ABSENT,
        KDEV_LOADABLE,
        KDEV_LOADED,
};

struct kernel_devices {
        enum kdev_state nbd;    /* module nbd, /dev/nbd0 */
        enum kdev_state ublk;   /* module ublk_drv, /dev/ublk-control */
};

/* Look under root ("" for the real system; a directory for tests) with
 * kernel release release (NULL: uname's). Never fails: what cannot be read
 * counts as absent. */
void kernel_devices_detect(const char *root, const char *release, struct kernel_devices *ret);

/* "nbd absent, ublk loadable (modprobe ublk_drv)" into buf. Returns buf. */
const char *kernel_devices_describe(const struct kernel_devices *k, char *buf, size_t len);

/* Log the detection once (blockd's start): "Kernel block devices: ...". */
void kernel_devices_log(void);
