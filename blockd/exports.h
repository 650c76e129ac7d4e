/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The daemon's table of exports by name. Attach opens an image (slow: it
 * fetches the manifest and index) without holding the table lock; the
 * name is reserved meanwhile so two attaches of one name cannot race.
 * Detach removes the name at once (new clients are refused), asks the
 * frontends to disconnect the export's clients, waits for them, flushes
 * the overlay and drops the table's reference.
 *
 * Thread-safe; lookups are cheap (a short lock and a reference).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "export.h"

struct exports;

/* Frontends register how to disconnect an export's clients (hard: also
 * abort replies in progress, for clients that stopped reading). */
typedef void (*exports_kick_fn)(void *userdata, struct export *e, bool hard);

int exports_new(const struct export_env *env, struct exports **ret);
/* Flush every overlay and drop every export. Returns the first flush
 * error (logged), so the daemon can exit non-zero. */
int exports_free(struct exports *x);
void exports_set_kick(struct exports *x, exports_kick_fn fn, void *userdata);

/* -EEXIST if the name is taken; other errors from export_open with a
 * reason in err. ret (optional) gets a new reference. */
int exports_attach(struct exports *x, const struct export_config *cfg, struct export **ret, char *err,
                   size_t errlen);
/* -ENOENT if there is no such export. Waits up to timeout_s for clients
 * to go (then disconnects them hard). */
int exports_detach(struct exports *x, const char *name, unsigned timeout_s, char *err, size_t errlen);

/* A new reference to the export called name ("" = the first one), or NULL. */
struct export *exports_get(struct exports *x, const char *name);
/* Call fn for each export in attach order (the table lock is not held
 * during fn; each export is referenced for the call). */
void exports_for_each(struct exports *x, void (*fn)(struct export *e, void *ctx), void *ctx);
unsigned exports_count(struct exports *x);
