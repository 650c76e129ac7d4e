/* SPDX-License-Identifier: Apache-2.0 */
/*
 * How many range requests the fetch scheduler keeps in flight: enough to
 * fill the link's bandwidth-delay product, no more. A fixed small number
 * is what makes lazy block devices slow on long links (10 Gbit/s at 10 ms
 * holds 12.5 MB in flight: 24 requests of 512 KiB), a fixed large one
 * makes a demand read queue behind background bytes on a short one.
 *
 * Measured from completions only (fetch.h reports nothing else), in the
 * spirit of BBR:
 * - bandwidth: each completion gives a sample, the bytes completed in
 *   the last second (or since the first request, if that is shorter)
 *   over that time; the estimate is the largest sample of the last 2 s.
 *   (Per-request delivery rates, as BBR takes them per packet, overshoot
 *   here: a request's completion delivers bytes that moved during its
 *   whole lifetime at once.)
 * - round trip: the latency of requests that had the pipe nearly to
 *   themselves (the bytes in flight when they were sent plus those sent
 *   during their lifetime at most min_window (2) times their own size:
 *   what the minimum window lets through), the smallest of
 *   the last 10 s,
 *   kept when no new sample comes. It includes about two requests'
 *   transfer time, which the window wants anyway: to keep a link busy, a
 *   round trip's worth of bytes plus the request being transferred must
 *   be in flight. Requests that shared a busy pipe are not samples: their
 *   latency is mostly queueing, and taking it would inflate the window
 *   without end. Until the first request completes the window is
 *   initial_window; from then until the first round-trip sample it is the
 *   minimum, so that the pipe is quiet enough to take one.
 * - window = gain x bandwidth x rtt / (mean request size), within
 *   [min_window, max_window]; gain 2 leaves room for the bandwidth
 *   estimate to grow (a window that only just fills the pipe cannot
 *   measure more than it already has).
 *
 * The background class is a scavenger on top of that, probing for room
 * as LEDBAT and TCP do (bdp_scavenger_budget, bdp_scavenger_on_done): its
 * bound on bytes in flight starts at one range and grows with each of
 * its completions that found the bound full and no delay lately, by the
 * completion's bytes (doubling per round trip) up to a threshold, by a
 * range per round trip above it; it falls to one range the moment demand
 * is recent, or a completion saw a queue (then the threshold halves).
 * The bound stays within bdp_scavenger_max: what the link carries at its
 * capacity (the best throughput of the last 10 s, every class, or a lone
 * request's rate if more: the
 * scavenger's own throughput is what it allowed, so a bound of bandwidth
 * x round trip would only ever confirm itself) during a range's latency
 * alone (server time included, which the round trip of small requests
 * leaves out) plus a bounded queue. A completion whose
 * latency exceeds what the round trip, its own transfer at the rate a
 * request alone gets (the best bytes / latency of a lone request of
 * BDP_STREAM_MIN or more in the last 10 s) and the bytes sharing the link
 * with it (ahead of it, sent during its lifetime, at the estimated
 * bandwidth) explain by more than a round trip (and BDP_DELAY_MIN_S) means
 * a queue grew somewhere: the round trip rose above its floor, and the
 * scavenger shrinks for a while (bdp_delayed). Latency that CPU waits
 * explain is not such a queue: the caller passes a clock of CPU stall beside the
 * time (cpu-stall.h: how long some task waited for a CPU), and the stall
 * during a request's lifetime is taken off what is left unexplained; a
 * completion that would have been a delay but for it is counted in
 * `forgiven`, not `delays`. A clock that stands still (no pressure
 * information) forgives nothing.
 *
 * Pure: the caller passes the time and the stall and serialises the calls.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#define BDP_BW_SLOTS 8          /* 8 x 250 ms: the bandwidth max filter */
#define BDP_TP_SLOTS 20         /* 20 x 50 ms: bytes completed, for throughput */
#define BDP_RTT_SLOTS 10        /* 10 x 1 s: the rtt min filter, the lone-request rate max filter */
#define BDP_CAP_SLOTS 10        /* 10 x 1 s: the capacity max filter */
#define BDP_STREAM_MIN (64u << 10) /* requests smaller than this give no lone-request rate */

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
        uint64_t first_ns;      /* the first request's send time */
        uint64_t inflight;      /* bytes of requests sent and not done */
        uint64_t sent;          /* bytes of requests sent so far */
        struct bdp_slot tp[BDP_TP_SLOTS];
        struct bdp_slot bw[BDP_BW_SLOTS];
        struct bdp_slot rtt[BDP_RTT_SLOTS];
        struct bdp_slot stream[BDP_RTT_SLOTS];
        struct bdp_slot cap[BDP_CAP_SLOTS];
        double avg_request;     /* EWMA of request bytes */
        double bw_est, rtt_est; /* bytes/s, seconds (0: no estimate yet) */
        double rtt_held;        /* the last estimate, when the filter is empty */
        double cap_est;         /* bytes/s: the best throughput of 10 s (held) */
        double stream_est;      /* bytes/s: a lone request's bytes / latency, the best of 10 s (held) */
        uint64_t sc_budget;     /* the scavenger's bound (bytes; below a range: a range) */
        uint64_t sc_thresh;     /* it doubles up to here, then grows a range per round trip; 0 = no limit */
        uint64_t sc_cut_ns;     /* the delay it last halved the threshold for */
        uint64_t delayed_ns;    /* the last completion that saw a queue, 0 = none */
        uint64_t delays;        /* completions that saw a queue */
        uint64_t forgiven;      /* would have, but CPU stall explains their latency */
        unsigned window;
        uint64_t samples;
};

/* What a request remembers from when it was sent. */
struct bdp_send {
        uint64_t t_ns;
        uint64_t stall_ns;      /* the CPU stall clock when it was sent */
        uint64_t ahead;         /* bytes in flight when it was sent */
        uint64_t sent;          /* b->sent after it was sent */
        uint64_t bytes;
};

void bdp_init(struct bdp *b, const struct bdp_options *o);
/* A request of bytes is sent now; stall_ns: the CPU stall clock now
 * (cpu-stall.h; any clock that only counts up, 0 without one). A caller
 * that reads the clock outside its lock may set ret->stall_ns itself
 * afterwards, before the request can end. */
void bdp_on_send(struct bdp *b, uint64_t now_ns, uint64_t stall_ns, uint64_t bytes, struct bdp_send *ret);
/* It ended at now_ns, the stall clock at stall_ns; ok: successfully (only
 * those are samples). */
void bdp_on_done(struct bdp *b, const struct bdp_send *s, uint64_t now_ns, uint64_t stall_ns, bool ok);
/* Requests to keep in flight now. */
unsigned bdp_window(const struct bdp *b);
/* Estimated bandwidth (bytes/s) and round trip (s); 0 when unknown. */
double bdp_bandwidth(const struct bdp *b);
double bdp_rtt(const struct bdp *b);
/* Whether a completion saw the round trip above its floor lately (within
 * 8 round trips, 20 ms at least). */
bool bdp_delayed(const struct bdp *b, uint64_t now_ns);

/* The bandwidth-delay product, in bytes: bandwidth x round trip less an
 * average request (at least half of bandwidth x round trip); 0 when
 * unknown. */
uint64_t bdp_bytes(const struct bdp *b);
/* The link's capacity (bytes/s): the best throughput of the last 10 s,
 * every class, or the rate a request alone got if that is more; 0 when
 * unknown. */
double bdp_capacity(const struct bdp *b);

/*
 * The scavenger's bound at most, in bytes in flight, for ranges of range
 * bytes: the capacity x (a range's latency alone + queue_s), within
 * [range, max_bytes] (range before any estimate). With a queue_s near
 * that latency, a bound the capacity estimate holds back still doubles
 * what the link is asked for, and so the estimate, until the link is full.
 */
uint64_t bdp_scavenger_max(const struct bdp *b, uint64_t range, double queue_s, uint64_t max_bytes);
/*
 * The scavenger's bound now (updates it): one range while demand is
 * recent or a completion saw a queue (bdp_delayed; the first time for
 * each such completion the growth threshold becomes half the bound, two
 * ranges at least); else what bdp_scavenger_on_done grew it to, within
 * [range, max].
 */
uint64_t bdp_scavenger_budget(struct bdp *b, uint64_t now_ns, uint64_t range, uint64_t max, bool demand);
/*
 * A background range of bytes ended at now_ns (after bdp_on_done); ahead:
 * the background bytes in flight when it was sent, budget: the bound then.
 * If it ended well, no delay is recent, and it was sent with the bound
 * full (no room for another range beside it), the bound grows: by bytes
 * below the threshold, by range x bytes / bound above.
 */
void bdp_scavenger_on_done(struct bdp *b, uint64_t now_ns, uint64_t bytes, uint64_t ahead, uint64_t budget,
                           uint64_t range, bool ok);
