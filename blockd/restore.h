/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Starting blockd's exports: those the command line gives and those the
 * state directory kept (state.h), merged. A command-line export keeps the
 * manifest it was pinned to while the command line names it with the same
 * reference and overlay; one that is no longer given is dropped; exports
 * added by `hocus-blk attach` come back as they were.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "exports.h"
#include "state.h"

/*
 * Attach them all: given[] is the command line's exports (the first
 * n_cmdline) and the config file's. st may be NULL (no state directory). With keep_going
 * (a daemon with a state directory: a service), an export that cannot be
 * attached is reported and retried and the others are served; without,
 * the first failure is returned (logged). -EBADMSG (logged) when the
 * state file is corrupt. Saving is the caller's (exports_set_state after
 * this), so the file is rewritten only once every export is in the table.
 */
int exports_restore(struct exports *x, struct state *st, const struct export_config *given, size_t n_given,
                    size_t n_cmdline, bool keep_going);

/*
 * The state directory to use: given (--state-dir; "none": none), else the
 * default unless captive (--run). A default that another blockd holds is
 * a warning (*ret = NULL); a given one that cannot be used an error.
 */
int blockd_state_open(const char *given, bool captive, struct state **ret);
