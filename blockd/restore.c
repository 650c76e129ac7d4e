/* SPDX-License-Identifier: Apache-2.0 */
#include "restore.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

static bool same(const char *a, const char *b) {
        return (!a && !b) || (a && b && !strcmp(a, b));
}

static const struct state_export *find_saved(const struct state_export *v, size_t n, const char *name) {
        for (size_t i = 0; i < n; i++)
                if (!strcmp(v[i].name, name))
                        return &v[i];
        return NULL;
}

static int add(struct exports *x, const struct state_export *se, bool keep_going) {
        char err[512] = "";
        int r;

        r = exports_add(x, se, keep_going, NULL, err, sizeof err);
        if (r < 0)
                return log_error_errno(r, "Cannot attach export %s: %s", se->name, err[0] ? err : strerror(-r));
        return 0;
}

int exports_restore(struct exports *x, struct state *st, const struct export_config *given, size_t n_given,
                    size_t n_cmdline, bool keep_going) {
        struct state_export *saved = NULL;
        size_t n_saved = 0;
        char err[1024] = "";
        int r = 0;

        if (st) {
                r = state_load(st, &saved, &n_saved, err, sizeof err);
                if (r < 0)
                        return log_error_errno(r, "%s", err[0] ? err : strerror(-r));
        }
        for (size_t i = 0; i < n_given && r >= 0; i++) {
                const struct export_config *c = &given[i];
                const struct state_export *s = find_saved(saved, n_saved, c->name);
                struct state_export se = {
                        .name = (char *) c->name,
                        .ref = (char *) c->ref,
                        .overlay = (char *) c->overlay,
                        .profile = (char *) c->profile,
                        .vhost_user = (char *) c->vhost_user,
                        .added_by = i < n_cmdline ? STATE_BY_COMMAND_LINE : STATE_BY_CONFIG,
                };

                if (s && same(s->ref, c->ref) && same(s->overlay, c->overlay)) {
                        se.manifest = s->manifest;      /* stays pinned */
                        se.profile_blob = s->profile_blob;
                } else if (s) {
                        log_info("Export %s: now %s%s%s (was %s%s%s); resolving it again", c->name, c->ref,
                                 c->overlay ? ", overlay " : "", c->overlay ? c->overlay : "", s->ref,
                                 s->overlay ? ", overlay " : "", s->overlay ? s->overlay : "");
                }
                r = add(x, &se, keep_going);
        }
        for (size_t i = 0; i < n_saved && r >= 0; i++) {
                const struct state_export *s = &saved[i];
                bool given_now = false;

                for (size_t j = 0; j < n_given; j++)
                        given_now |= !strcmp(given[j].name, s->name);
                if (given_now)
                        continue;
                if (s->added_by != STATE_BY_ATTACH) {
                        log_info("Export %s (from the %s) is no longer given: not restored", s->name,
                                 state_added_by_name(s->added_by));
                        continue;
                }
                log_info("Restoring export %s: %s%s%s", s->name, s->ref, s->manifest ? " pinned to " : "",
                         s->manifest ? s->manifest : "");
                r = add(x, s, keep_going);
        }
        state_exports_free(saved, n_saved);
        return r < 0 ? r : 0;
}

int blockd_state_open(const char *given, bool captive, struct state **ret) {
        char buf[4096], err[1024] = "";
        const char *dir = given;
        int r;

        *ret = NULL;
        if (given && !strcmp(given, "none"))
                return 0;
        if (!given) {
                if (captive)
                        return 0;
                dir = state_default_dir(buf, sizeof buf);
                if (!dir) {
                        log_warning("No state directory ($HOCUS_BLK_STATE_DIR, $XDG_STATE_HOME and $HOME unset): "
                                    "exports will not survive a restart; pass --state-dir DIR");
                        return 0;
                }
        }
        r = state_open(dir, ret, err, sizeof err);
        if (r < 0 && !given) {
                /* The default is a convenience: another blockd may own it. */
                log_warning("Not keeping exports in the default state directory: %s; pass --state-dir DIR",
                            err[0] ? err : strerror(-r));
                return 0;
        }
        if (r < 0)
                return log_error_errno(r, "%s", err[0] ? err : strerror(-r));
        log_info("State directory %s", dir);
        return 0;
}
