/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A one-line progress display for long work. Draws on stderr only when it
 * is a TTY (and not more than ~10 times a second); otherwise silent, so
 * logs and test output stay clean. Not thread-safe: one owner updates it.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

struct progress {
        const char *label;
        uint64_t total;         /* 0 when unknown */
        uint64_t done;
        uint64_t start_ns;
        uint64_t last_draw_ns;
        bool tty;
        bool drawn;
};

void progress_start(struct progress *p, const char *label, uint64_t total);
void progress_update(struct progress *p, uint64_t done);
/* Erase the line (the caller prints its own summary). */
void progress_end(struct progress *p);
