/* SPDX-License-Identifier: Apache-2.0 */
#include "progress.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

void progress_start(struct progress *p, const char *label, uint64_t total) {
        memset(p, 0, sizeof *p);
        p->label = label;
        p->total = total;
        p->start_ns = now_ns();
        p->tty = isatty(STDERR_FILENO) == 1 && !getenv("HOCUS_BLK_NO_PROGRESS");
}

static void progress_draw(struct progress *p, uint64_t now) {
        char done[32], total[32], rate[32];
        double secs = (double) (now - p->start_ns) / 1e9;
        uint64_t bps = secs > 0 ? (uint64_t) ((double) p->done / secs) : 0;
        char line[256];

        format_size(p->done, done, sizeof done);
        format_size(bps, rate, sizeof rate);
        if (p->total) {
                unsigned pct = (unsigned) (p->done * 100 / p->total);
                int bar = (int) (pct * 30 / 100);

                format_size(p->total, total, sizeof total);
                snprintf(line, sizeof line, "\r%s [%.*s%*s] %3u%% %s / %s  %s/s ", p->label, bar,
                         "##############################", 30 - bar, "", pct, done, total, rate);
        } else {
                snprintf(line, sizeof line, "\r%s %s  %s/s ", p->label, done, rate);
        }
        fputs(line, stderr);
        fputs("\033[K", stderr);
        fflush(stderr);
        p->drawn = true;
        p->last_draw_ns = now;
}

void progress_update(struct progress *p, uint64_t done) {
        uint64_t now;

        p->done = done;
        if (!p->tty)
                return;
        now = now_ns();
        if (now - p->last_draw_ns < 100000000ULL)
                return;
        progress_draw(p, now);
}

void progress_end(struct progress *p) {
        if (p->tty && p->drawn) {
                fputs("\r\033[K", stderr);
                fflush(stderr);
        }
}
