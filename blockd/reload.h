/* SPDX-License-Identifier: Apache-2.0 */
/* SIGHUP: re-read the config file and apply its exports. */
#pragma once

#include "blockd/exports.h"

/*
 * Re-read the config file (--config, or the default when it exists). A
 * bad file is refused whole (logged with FILE:LINE and the reason) and
 * nothing changes. Otherwise its [export NAME] sections are applied to x:
 * exports gone from the file are detached, new ones attached, changed
 * ones detached and attached again; every other export (the command
 * line's, those attached over the control socket) is left alone.
 * [blockd] settings take effect at the next start (a notice says so).
 * Returns 0, or the -errno of the first failure (each one logged; the
 * rest are still applied).
 */
int blockd_config_reload(struct exports *x);
