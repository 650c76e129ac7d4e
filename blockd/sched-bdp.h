/* SPDX-License-Identifier: Apache-2.0 */
/*
 * How many range requests the fetch scheduler keeps in flight: enough to
 * fill the link's bandwidth-delay product, no more. A fixed small number
 * is what makes lazy block devices slow on long links (10 Gbit/s at 10 ms
 * holds 12.5 MB in flight: 24 requests of 512 KiB), a fixed large one
 * makes a demand read queue behind background bytes on a short one.
 *
 * Measured like BBR does, from completions only (fetch.h reports nothing
 * else):
 * - bandwidth: each completion gives a delivery rate sample, the bytes
 *   completed (by every request) since this request was sent divided by
 *   its lifetime; the estimate is the largest sample of the last 2 s.
 * - round trip: each completion's latency minus the time its own bytes
 *   take at the estimated bandwidth; the estimate is the smallest of the
 *   last 10 s (small requests, such as demand reads of one chunk, give
 *   the best samples).
 * - window = gain x bandwidth x rtt / (mean request size), within
 *   [min_window, max_window]; gain 2 leaves room for the bandwidth
 *   estimate to grow (a window that only just fills the pipe cannot
 *   measure more than it already has).
 *
 * Pure: the caller passes the time and serialises the calls.
 */
#pragma once

#include <stdint.h>

#define BDP_BW_SLOTS 8          /* 8 x 250 ms: the bandwidth max filter */
#define BDP_RTT_SLOTS 10        /* 10 x 1 s: the rtt min filter */

struct bdp_options {
        unsigned min_window;    /* 0 = 2 */
        unsigned max_window;    /* 0 = 64 */
        unsigned initial_window; /* before the first estimate; 0 = 8 */
        double gain;            /* 0 = 2 */
};

struct bdp_slot {
        uint64_t id;            /* time / slot length; 0 = empty */
        double v;
};

struct bdp {
        struct bdp_options o;
        uint64_t delivered;     /* bytes completed so far */
        struct bdp_slot bw[BDP_BW_SLOTS];
        struct bdp_slot rtt[BDP_RTT_SLOTS];
        double avg_request;     /* EWMA of request bytes */
        double bw_est, rtt_est; /* bytes/s, seconds (0: no estimate yet) */
        unsigned window;
        uint64_t samples;
};

/* What a request remembers from when it was sent. */
struct bdp_send {
        uint64_t t_ns;
        uint64_t delivered;
};

void bdp_init(struct bdp *b, const struct bdp_options *o);
void bdp_on_send(const struct bdp *b, uint64_t now_ns, struct bdp_send *ret);
/* A request of bytes sent at s completed successfully at now_ns. */
void bdp_on_done(struct bdp *b, const struct bdp_send *s, uint64_t now_ns, uint64_t bytes);
/* Requests to keep in flight now. */
unsigned bdp_window(const struct bdp *b);
/* Estimated bandwidth (bytes/s) and round trip (s); 0 when unknown. */
double bdp_bandwidth(const struct bdp *b);
double bdp_rtt(const struct bdp *b);
