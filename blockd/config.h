/* SPDX-License-Identifier: Apache-2.0 */
/*
 * blockd's config file (docs/blockd.conf.md), parsed with inih:
 *
 *     [blockd]                  any long option of blockd's tables but the
 *     nbd-socket = /run/...     command-line-only ones (export, record,
 *     background = 50M          run, config, help, version); a switch
 *                               takes true or false
 *     [export ws]
 *     ref = docker://registry.example/ws:v2
 *     overlay = /var/lib/ws.overlay
 *     profile = auto
 *
 * A bad file (syntax, unknown section or key, bad value, an export
 * without a ref, a line over 199 characters) is refused whole, with
 * FILE:LINE and the reason. Not thread-safe: the main thread loads and
 * reloads.
 */
#pragma once

#include <stddef.h>

#include "blockd/export.h"
#include "common/opttable.h"

#define BLOCKD_CONFIG_DEFAULT "/etc/hocus-blk/blockd.conf"

struct blockd_config {
        char *path;
        struct export_config *exports;  /* the [export NAME] sections, in file order; owned */
        size_t n_exports;
        char **settings;                /* the [blockd] lines as "key=value", in order */
        size_t n_settings;
        char **values;                  /* every value handed to an option table: they live as long as this */
        size_t n_values;
};

/*
 * Read path: each [blockd] key is applied through tables (as its option
 * would be), the [export NAME] sections are collected. 0 with *ret, or
 * -errno with "FILE:LINE: reason" (or "FILE: reason") in err.
 */
int blockd_config_load(const char *path, const struct opt_table *const *tables, size_t n_tables,
                       struct blockd_config **ret, char *err, size_t errlen);
void blockd_config_free(struct blockd_config *c);

/* The export called name, or NULL. */
const struct export_config *blockd_config_export(const struct blockd_config *c, const char *name);

/* Do two export configs say the same thing? */
bool export_config_equal(const struct export_config *a, const struct export_config *b);
