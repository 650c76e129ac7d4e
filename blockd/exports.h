/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The daemon's table of exports by name. Attach opens an image (slow: it
 * fetches the manifest and index) without holding the table lock; the
 * name is reserved meanwhile so two attaches of one name cannot race.
 * Detach removes the name at once (new clients are refused), asks the
 * frontends to disconnect the export's clients, waits for them, flushes
 * the overlay and drops the table's reference.
 *
 * With a state directory (exports_set_state) the table is saved on every
 * change (state.h): each export with the manifest digest it resolved at
 * attach, which pins it across restarts. An export that cannot be
 * attached at start (registry down and metadata not local, image gone)
 * stays in the table as failed, with its reason, and is retried in the
 * background (2 s doubling to 30 s) until it attaches or is detached.
 *
 * Thread-safe; lookups are cheap (a short lock and a reference).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "export.h"
#include "state.h"

struct exports;

/* Frontends register how to disconnect an export's clients (hard: also
 * abort replies in progress, for clients that stopped reading). */
typedef void (*exports_kick_fn)(void *userdata, struct export *e, bool hard);

int exports_new(const struct export_env *env, struct exports **ret);
/* Flush every overlay and drop every export. Returns the first flush
 * error (logged), so the daemon can exit non-zero. */
int exports_free(struct exports *x);
void exports_set_kick(struct exports *x, exports_kick_fn fn, void *userdata);
/* Frontends that serve an export on something of its own (a vhost-user
 * socket) register what to do when one is attached or updated. */
typedef void (*exports_attached_fn)(void *userdata, struct export *e);
void exports_set_attached(struct exports *x, exports_attached_fn fn, void *userdata);
/* Save the table to st now and on every change from now on (borrowed;
 * outlives x). Set after the exports were restored, so that a crash
 * while restoring leaves the saved table as it was. */
void exports_set_state(struct exports *x, struct state *st);

/* -EEXIST if the name is taken; other errors from export_open with a
 * reason in err. ret (optional) gets a new reference. Added by attach. */
int exports_attach(struct exports *x, const struct export_config *cfg, struct export **ret, char *err,
                   size_t errlen);
/*
 * Attach an export described as the state file holds it (se->manifest
 * pins it). With retry, a failure other than a bad name or reference
 * keeps the export in the table as failed (logged, saved, retried) and
 * returns 0; without, it returns the error as exports_attach does.
 */
int exports_add(struct exports *x, const struct state_export *se, bool retry, struct export **ret, char *err,
                size_t errlen);
/* -ENOENT if there is no such export. Waits up to timeout_s for clients
 * to go (then disconnects them hard). A failed export is just removed. */
int exports_detach(struct exports *x, const char *name, unsigned timeout_s, char *err, size_t errlen);
/*
 * Resolve export name's reference again and serve the manifest it names
 * now: *ret_changed tells whether it moved. New clients get the new image
 * at once; those of the old one are disconnected (clients that reconnect
 * get the new one). A writable export is refused (-EMEDIUMTYPE): its
 * overlay holds writes against the old image.
 */
int exports_update(struct exports *x, const char *name, unsigned timeout_s, bool *ret_changed, char *err,
                   size_t errlen);

/* A new reference to the export called name ("" = the first one), or NULL. */
struct export *exports_get(struct exports *x, const char *name);
/* Call fn for each export in attach order (the table lock is not held
 * during fn; each export is referenced for the call). */
void exports_for_each(struct exports *x, void (*fn)(struct export *e, void *ctx), void *ctx);
/* Call fn for each export that failed to attach and is being retried. */
void exports_for_each_failed(struct exports *x, void (*fn)(const struct state_export *se, const char *why, void *ctx),
                             void *ctx);
unsigned exports_count(struct exports *x);
