/* SPDX-License-Identifier: Apache-2.0 */
/* SIGHUP: re-read the config file; exports added, removed, changed. */
#include "blockd/reload.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blockd/options.h"
#include "common/log.h"

#define DETACH_GRACE_S 30

/* Did the [blockd] lines change? */
static bool settings_changed(const struct blockd_config *a, const struct blockd_config *b) {
        size_t na = a ? a->n_settings : 0, nb = b ? b->n_settings : 0;

        if (na != nb)
                return true;
        for (size_t i = 0; i < na; i++)
                if (strcmp(a->settings[i], b->settings[i]))
                        return true;
        return false;
}

/* The old config's values back options set at start: the new one keeps
 * them alive. */
static int keep_values(struct blockd_config *to, struct blockd_config *from) {
        char **v;

        if (!from || !from->n_values)
                return 0;
        v = realloc(to->values, (to->n_values + from->n_values) * sizeof *v);
        if (!v)
                return -ENOMEM;
        memcpy(v + to->n_values, from->values, from->n_values * sizeof *v);
        to->values = v;
        to->n_values += from->n_values;
        from->n_values = 0;
        return 0;
}

int blockd_config_reload(struct exports *x) {
        struct blockd_args scratch = { 0 };
        struct opt_table t[BLOCKD_N_OPTION_TABLES];
        const struct opt_table *tables[BLOCKD_N_OPTION_TABLES];
        struct blockd_config *old = arg.config, *new = NULL;
        const char *path = arg.config_path;
        unsigned added = 0, removed = 0;
        char err[1024];
        int r, first = 0;

        if (!path && access(BLOCKD_CONFIG_DEFAULT, F_OK) == 0)
                path = BLOCKD_CONFIG_DEFAULT;
        if (!path || !*path) {
                log_info("Reload: no config file (--config FILE, or " BLOCKD_CONFIG_DEFAULT ")");
                return 0;
        }
        /* [blockd] keys are checked against a scratch copy: a reload
         * changes only exports. */
        blockd_option_tables(&scratch, t);
        for (size_t i = 0; i < BLOCKD_N_OPTION_TABLES; i++)
                tables[i] = &t[i];
        r = blockd_config_load(path, tables, BLOCKD_N_OPTION_TABLES, &new, err, sizeof err);
        if (scratch.common.creds_buf) {
                explicit_bzero(scratch.common.creds_buf, strlen(scratch.common.creds_buf));
                free(scratch.common.creds_buf);
        }
        if (r < 0)
                return log_error_errno(r, "Reload refused, nothing changed: %s", err);
        if (keep_values(new, old) < 0) {
                blockd_config_free(new);
                return log_error_errno(ENOMEM, "Reload refused: out of memory");
        }

        for (size_t i = 0; old && i < old->n_exports; i++) {
                const struct export_config *o = &old->exports[i], *n = blockd_config_export(new, o->name);

                if (blockd_export_from_cmdline(o->name) || (n && export_config_equal(o, n)))
                        continue;
                r = exports_detach(x, o->name, DETACH_GRACE_S, err, sizeof err);
                if (r == -ENOENT)
                        continue;       /* detached over the control socket meanwhile */
                if (r < 0) {
                        log_error_errno(r, "Reload: cannot detach export %s: %s", o->name, err[0] ? err : strerror(-r));
                        first = first ?: r;
                        continue;
                }
                log_info("Reload: detached export %s (%s %s)", o->name, n ? "changed in" : "gone from", path);
                removed++;
        }
        for (size_t i = 0; i < new->n_exports; i++) {
                const struct export_config *n = &new->exports[i], *o = blockd_config_export(old, n->name);

                if (blockd_export_from_cmdline(n->name) || (o && export_config_equal(o, n)))
                        continue;
                err[0] = 0;
                /* As at start: a config export that cannot be attached now
                 * (the registry is down) is kept as failed and retried. */
                r = exports_add(x,
                                &(struct state_export) { .name = (char *) n->name, .ref = (char *) n->ref,
                                                         .overlay = (char *) n->overlay,
                                                         .profile = (char *) n->profile,
                                                         .vhost_user = (char *) n->vhost_user,
                                                         .added_by = STATE_BY_CONFIG },
                                true, NULL, err, sizeof err);
                if (r < 0) {
                        log_error_errno(r, "Reload: cannot attach export %s: %s", n->name, err[0] ? err : strerror(-r));
                        first = first ?: r;
                        continue;
                }
                log_info("Reload: attached export %s (%s)", n->name, n->ref);
                added++;
        }
        if (settings_changed(old, new))
                log_notice("Reload: [blockd] settings in %s changed; they take effect at the next start", path);
        blockd_config_free(old);
        arg.config = new;
        if (!arg.config_path)
                arg.config_path = BLOCKD_CONFIG_DEFAULT;
        log_info("Reloaded %s: %u exports attached, %u detached", path, added, removed);
        return first;
}
