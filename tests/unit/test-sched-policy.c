/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The fetch scheduler's pure parts: the class gate, the token bucket, the
 * bandwidth-delay controller and scavenger bound, the profile batching.
 * (The scheduler whole is test-sched.c.) Orders and counts only.
 */
#undef NDEBUG
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blockd/sched-bdp.h"
#include "blockd/sched-policy.h"
#include "blockd/sched.h"
#include "common/cleanup.h"
#include "common/util.h"

#define CS (64u << 10)
#define MS 1000000ull

static void test_gate(void) {
        struct sched_gate g = { .window = 4, .background_on = true, .hold_ns = 10 * MS };
        uint64_t wake = 0;

        assert(sched_gate_allows(&g, SCHED_DEMAND, 1, &wake));
        assert(sched_gate_allows(&g, SCHED_PROFILE, 1, &wake));
        assert(sched_gate_allows(&g, SCHED_BACKGROUND, 1, &wake));
        /* The window bounds profile and background, never demand. */
        g.nondemand_inflight = 4;
        g.profile_inflight = 4;
        assert(sched_gate_allows(&g, SCHED_DEMAND, 1, &wake));
        assert(!sched_gate_allows(&g, SCHED_PROFILE, 1, &wake));
        assert(!sched_gate_allows(&g, SCHED_BACKGROUND, 1, &wake));
        g.bg_budget = 1 << 20;
        assert(!sched_gate_allows(&g, SCHED_BACKGROUND, 1, &wake));
        /* Background requests fill the window: profile still goes;
         * background goes on within its byte bound, if it has one. */
        g.profile_inflight = 0;
        assert(sched_gate_allows(&g, SCHED_PROFILE, 1, &wake));
        assert(sched_gate_allows(&g, SCHED_BACKGROUND, 1, &wake));
        g.bg_budget = 0;
        assert(!sched_gate_allows(&g, SCHED_BACKGROUND, 1, &wake));
        g.nondemand_inflight = 0;
        /* Demand ready: profile and background wait. */
        g.demand_ready = 1;
        g.demand_active = 1;
        assert(!sched_gate_allows(&g, SCHED_PROFILE, 1, &wake));
        assert(!sched_gate_allows(&g, SCHED_BACKGROUND, 1, &wake));
        /* Demand in flight (not ready): profile goes, background yields. */
        g.demand_ready = 0;
        assert(sched_gate_allows(&g, SCHED_PROFILE, 1, &wake));
        assert(!sched_gate_allows(&g, SCHED_BACKGROUND, 1, &wake));
        /* Demand over, but recent: background waits out the hold. */
        g.demand_active = 0;
        g.last_demand_ns = 100 * MS;
        wake = 0;
        assert(!sched_gate_allows(&g, SCHED_BACKGROUND, 105 * MS, &wake));
        assert(wake == 110 * MS);
        assert(sched_gate_allows(&g, SCHED_BACKGROUND, 110 * MS, &wake));
        g.background_on = false;
        assert(!sched_gate_allows(&g, SCHED_BACKGROUND, 200 * MS, &wake));

        /* Token bucket: 1 MB/s, burst 100 kB; a 300 kB request at once, then a wait. */
        struct tbucket b;
        tbucket_init(&b, 1000000, 100000, 0);
        assert(tbucket_ready_at(&b, 0) == 0);
        tbucket_take(&b, 300000, 0);
        uint64_t at = tbucket_ready_at(&b, 0);
        assert(at >= 199 * MS && at <= 201 * MS);
        assert(tbucket_ready_at(&b, 100 * MS) != 0);
        assert(tbucket_ready_at(&b, 201 * MS) == 0);
        /* Unlimited. */
        tbucket_init(&b, 0, 0, 0);
        tbucket_take(&b, 1 << 30, 0);
        assert(tbucket_ready_at(&b, 0) == 0);
}

/*
 * A link of bw bytes/s and round trip rtt, shared equally by the requests
 * whose first byte has arrived (rtt after they were sent), fed by a
 * sender that keeps min(window, limit) requests of about req bytes (0.5
 * to 1.5 times, so that they do not move in lockstep) in flight;
 * simulated for secs from *t (ns), which it advances. Returns the
 * window at the end; *ret_tput the throughput of the last second.
 */
static unsigned simulate(struct bdp *b, double bw, double rtt, uint64_t req, unsigned limit, double secs, uint64_t *t,
                         double *ret_tput) {
        struct {
                bool used;
                struct bdp_send s;
                double start, left;
        } q[128] = { 0 };
        const double dt = MAX(MIN(rtt, (double) req / bw) / 20, 2e-6);
        double done_last = 0;
        unsigned steps = (unsigned) (secs / dt), rng = 12345;

        assert(limit <= 128);
        for (unsigned step = 0; step < steps; step++) {
                double now = step * dt;
                uint64_t now_ns = *t + (uint64_t) (now * 1e9);
                unsigned n = 0, active = 0;

                for (unsigned i = 0; i < limit; i++)
                        n += q[i].used;
                for (unsigned i = 0; i < limit && n < MIN(bdp_window(b), limit); i++)
                        if (!q[i].used) {
                                q[i].used = true;
                                q[i].start = now;
                                rng = rng * 1103515245 + 12345;
                                q[i].left = (double) req * (0.5 + (double) (rng >> 16 & 1023) / 1024);
                                bdp_on_send(b, now_ns, 0, (uint64_t) q[i].left, &q[i].s);
                                n++;
                        }
                for (unsigned i = 0; i < limit; i++)
                        active += q[i].used && now - q[i].start >= rtt;
                for (unsigned i = 0; i < limit && active; i++) {
                        if (!q[i].used || now - q[i].start < rtt)
                                continue;
                        q[i].left -= bw * dt / active;
                        if (q[i].left <= 0) {
                                q[i].used = false;
                                bdp_on_done(b, &q[i].s, now_ns, 0, true);
                                if (now >= secs - 1)
                                        done_last += (double) q[i].s.bytes;
                        }
                }
        }
        *t += (uint64_t) (secs * 1e9);
        for (unsigned i = 0; i < limit; i++)
                if (q[i].used)
                        bdp_on_done(b, &q[i].s, *t, 0, false);
        *ret_tput = done_last;
        return bdp_window(b);
}

static void test_bdp(void) {
        struct bdp b;
        uint64_t t = 1;
        unsigned w;
        double tput;

        bdp_init(&b, NULL);
        assert(bdp_window(&b) == 8 && bdp_bandwidth(&b) == 0);
        /* 10 Gbit/s, 10 ms, 512 KiB requests: the pipe holds about 24;
         * the window grows past that and the link is kept busy. */
        w = simulate(&b, 1.25e9, 0.010, 512 << 10, 128, 4, &t, &tput);
        assert(w >= 26 && w <= 64);
        assert(tput > 0.9 * 1.25e9);
        assert(bdp_rtt(&b) >= 0.010 && bdp_rtt(&b) < 0.015);
        assert(bdp_bandwidth(&b) > 1.1e9 && bdp_bandwidth(&b) < 1.4e9);
        /* 1 Gbit/s, 0.2 ms, 4 MiB requests: a few are enough. */
        bdp_init(&b, NULL);
        t = 1;
        w = simulate(&b, 1.25e8, 0.0002, 4 << 20, 128, 4, &t, &tput);
        assert(w <= 8);
        assert(tput > 0.9 * 1.25e8);
        /* 1 Gbit/s, 20 ms, 256 KiB requests: about 10 fill it. */
        bdp_init(&b, &(struct bdp_options) { .min_window = 1, .max_window = 100 });
        t = 1;
        w = simulate(&b, 1.25e8, 0.020, 256 << 10, 100, 4, &t, &tput);
        assert(w >= 10 && w <= 30);
        assert(tput > 0.9 * 1.25e8);
        /* The bandwidth drops tenfold: the window follows. */
        w = simulate(&b, 1.25e7, 0.020, 256 << 10, 100, 12, &t, &tput);
        assert(w <= 6);
        assert(tput > 0.9 * 1.25e7);
        /* The limits hold. */
        bdp_init(&b, &(struct bdp_options) { .min_window = 3, .max_window = 5 });
        t = 1;
        assert(simulate(&b, 1.25e9, 0.050, 64 << 10, 64, 2, &t, &tput) == 5);
        bdp_init(&b, &(struct bdp_options) { .min_window = 12, .max_window = 20 });
        t = 1;
        assert(simulate(&b, 1.25e9, 0.00001, 4 << 20, 64, 2, &t, &tput) == 12);
}

/* The background scavenger: its bound in the gate (demand and profile
 * never see it), its size from the estimates, its shrinking, and the
 * delay signal. */
static void test_scavenger(void) {
        struct sched_gate g = { .window = 64, .background_on = true, .hold_ns = 10 * MS, .bg_budget = 1 << 20 };
        struct bdp_send sd;
        uint64_t wake = 0, t = 1, full;
        struct bdp b;
        double tput;
        const uint64_t R = 256 << 10;

        g.bg_inflight_bytes = (1 << 20) - 1;
        assert(sched_gate_allows(&g, SCHED_BACKGROUND, 1, &wake));
        g.bg_inflight_bytes = 1 << 20;
        assert(!sched_gate_allows(&g, SCHED_BACKGROUND, 1, &wake));
        assert(sched_gate_allows(&g, SCHED_DEMAND, 1, &wake));
        assert(sched_gate_allows(&g, SCHED_PROFILE, 1, &wake));
        g.bg_budget = 0;        /* no bound */
        assert(sched_gate_allows(&g, SCHED_BACKGROUND, 1, &wake));

        /* Before any estimate: one range, demand or not. */
        bdp_init(&b, NULL);
        assert(bdp_scavenger_max(&b, R, 0.010, 16 << 20) == R);
        assert(bdp_scavenger_budget(&b, t, R, R, false) == R);
        assert(bdp_scavenger_budget(&b, t, R, R, true) == R);
        assert(!bdp_delayed(&b, t));
        /* 1 Gbit/s, 2 ms, 256 KiB requests: the capacity is the link's;
         * the bound at most what it carries in a range's latency and the
         * queue, within [range, max_bytes]. */
        simulate(&b, 1.25e8, 0.002, R, 128, 3, &t, &tput);
        assert(bdp_capacity(&b) > 1.0e8 && bdp_capacity(&b) < 1.4e8);
        full = bdp_scavenger_max(&b, R, 0.010, 16 << 20);
        assert(full >= 1.0e8 * 0.012 && full <= 1.4e8 * 0.030);
        assert(bdp_scavenger_max(&b, R, 0.010, 100000) == R);
        assert(bdp_scavenger_max(&b, R, 0.010, 1 << 20) == 1 << 20);
        /* A request alone on the link that takes ten round trips: a queue
         * grew; the signal lasts 8 round trips (20 ms at least), then goes. */
        assert(!bdp_delayed(&b, t));
        bdp_on_send(&b, t, 0, 4096, &sd);
        t += (uint64_t) (10 * bdp_rtt(&b) * 1e9);
        bdp_on_done(&b, &sd, t, 0, true);
        assert(b.delays == 1 && bdp_delayed(&b, t) && bdp_delayed(&b, t + 19 * MS));
        assert(!bdp_delayed(&b, t + (uint64_t) (8 * bdp_rtt(&b) * 1e9) + 20 * MS));
        /* One that took about a round trip: none. */
        bdp_on_send(&b, t, 0, 4096, &sd);
        t += (uint64_t) (bdp_rtt(&b) * 1e9);
        bdp_on_done(&b, &sd, t, 0, true);
        assert(b.delays == 1 && b.forgiven == 0);
}

/* One request of 4 KiB alone on the link, sent at *t with the CPU stall
 * clock at *stall, that takes lat ns while the clock advances by
 * stalled ns. */
static void lone_request(struct bdp *b, uint64_t *t, uint64_t *stall, uint64_t lat, uint64_t stalled) {
        struct bdp_send sd;

        bdp_on_send(b, *t, *stall, 4096, &sd);
        *t += lat;
        *stall += stalled;
        bdp_on_done(b, &sd, *t, *stall, true);
}

/* The delay signal with CPU stall beside the time: the same latency the
 * link does not explain is a delay without stall and forgiven with as
 * much stall during the request's lifetime (the scavenger does not
 * shrink); a queue on the link larger than the stall still counts. */
static void test_stall_filter(void) {
        struct bdp_send sd;
        uint64_t t = 1, stall = 7 * MS, lat, rtt_ns, quiet;
        struct bdp b;
        double tput;

        bdp_init(&b, NULL);
        simulate(&b, 1.25e8, 0.002, 256 << 10, 128, 3, &t, &tput);
        rtt_ns = (uint64_t) (bdp_rtt(&b) * 1e9);
        lat = 10 * rtt_ns;      /* about 9 round trips unexplained */
        quiet = 8 * rtt_ns + 20 * MS;   /* the signal's hold */
        assert(b.delays == 0 && b.forgiven == 0);
        /* No stall: a delay. */
        lone_request(&b, &t, &stall, lat, 0);
        assert(b.delays == 1 && b.forgiven == 0 && bdp_delayed(&b, t));
        t += quiet;
        assert(!bdp_delayed(&b, t));
        /* The same latency, the stall clock advancing as much: forgiven. */
        lone_request(&b, &t, &stall, lat, lat);
        assert(b.delays == 1 && b.forgiven == 1 && !bdp_delayed(&b, t));
        /* Stall for all but half a round trip of it (within the
         * tolerance, a round trip): forgiven. */
        lone_request(&b, &t, &stall, lat, lat - 3 * rtt_ns / 2);
        assert(b.delays == 1 && b.forgiven == 2 && !bdp_delayed(&b, t));
        /* A real queue on the link: 9 round trips unexplained, 2 of them
         * CPU stall; the other 7 still count. */
        lone_request(&b, &t, &stall, lat, 2 * rtt_ns);
        assert(b.delays == 2 && b.forgiven == 2 && bdp_delayed(&b, t));
        t += quiet;
        /* A request the link explains is neither, stall or not. */
        lone_request(&b, &t, &stall, rtt_ns, rtt_ns);
        lone_request(&b, &t, &stall, rtt_ns, 0);
        assert(b.delays == 2 && b.forgiven == 2 && !bdp_delayed(&b, t));
        /* A clock that stands still (no pressure information) gives
         * today's signal; one read in the other order (it went back)
         * forgives nothing either. */
        lone_request(&b, &t, &stall, lat, 0);
        assert(b.delays == 3 && b.forgiven == 2);
        t += quiet;
        bdp_on_send(&b, t, stall + lat, 4096, &sd);
        t += lat;
        bdp_on_done(&b, &sd, t, stall, true);
        assert(b.delays == 4 && b.forgiven == 2);
}

/*
 * The scavenger alone on a link of m->bw bytes/s and round trip m->rtt,
 * behind a server that spends m->srv s on each request and serves each
 * at m->srv_rate bytes/s at most (requests in parallel share the link
 * equally beyond that): its bytes in flight kept within its bound (ranges
 * of m->range, cut to what the bound has left, 4 KiB at least; one
 * request in ten a 4 KiB one, a chunk alone in its run), demand recent or
 * not throughout. Simulated for secs from *t (ns), which it advances.
 * Returns the bytes completed in the last second; *ret_max the largest
 * bound it had.
 */
struct scav_link {
        double bw, rtt, srv, srv_rate;
        uint64_t range;
};

static double scavenge(struct bdp *b, const struct scav_link *m, double secs, bool demand, uint64_t *t,
                       uint64_t *ret_max) {
        struct {
                bool used;
                struct bdp_send s;
                double start, left;
                uint64_t ahead, budget;
        } q[64] = { 0 };
        const double dt = 20e-6;
        unsigned steps = (unsigned) (secs / dt), sent = 0;
        uint64_t inflight = 0, max = 0;
        double done_last = 0;

        for (unsigned step = 0; step < steps; step++) {
                double now = step * dt;
                uint64_t now_ns = *t + (uint64_t) (now * 1e9), budget;
                unsigned active = 0;

                budget = bdp_scavenger_budget(b, now_ns, m->range, bdp_scavenger_max(b, m->range, 0.010, 16 << 20),
                                              demand);
                max = MAX(max, budget);
                for (unsigned i = 0; i < 64 && inflight < budget; i++) {
                        uint64_t len = MAX(MIN(m->range, budget - inflight), 4096u);

                        if (q[i].used)
                                continue;
                        if (++sent % 10 == 0)
                                len = 4096;
                        q[i].used = true;
                        q[i].start = now;
                        q[i].left = (double) len;
                        q[i].ahead = inflight;
                        q[i].budget = budget;
                        bdp_on_send(b, now_ns, 0, len, &q[i].s);
                        inflight += len;
                }
                for (unsigned i = 0; i < 64; i++)
                        active += q[i].used && now - q[i].start >= m->rtt + m->srv;
                for (unsigned i = 0; i < 64 && active; i++) {
                        if (!q[i].used || now - q[i].start < m->rtt + m->srv)
                                continue;
                        q[i].left -= MIN(m->srv_rate, m->bw / active) * dt;
                        if (q[i].left > 0)
                                continue;
                        q[i].used = false;
                        inflight -= q[i].s.bytes;
                        bdp_on_done(b, &q[i].s, now_ns, 0, true);
                        bdp_scavenger_on_done(b, now_ns, q[i].s.bytes, q[i].ahead, q[i].budget, m->range, true);
                        if (now >= secs - 1)
                                done_last += (double) q[i].s.bytes;
                }
        }
        *t += (uint64_t) (secs * 1e9);
        for (unsigned i = 0; i < 64; i++)
                if (q[i].used)
                        bdp_on_done(b, &q[i].s, *t, 0, false);
        *ret_max = max;
        return done_last;
}

/* The scavenger probes: at 1 Gbit/s and 2 ms behind a server that takes
 * 1 ms and serves a request at 60 MB/s at most (so that a range alone
 * takes 3 ms more than a 4 KiB request, and one range at a time gets a
 * third of the link), its bound grows from one range while no demand is
 * recent and no completion sees a queue, until the link is near full; it
 * is one range the moment demand is recent, grows again after; a delay
 * cuts it to one range too, halves its threshold, and stops its growth
 * while it lasts. */
static void test_scavenger_probe(void) {
        const struct scav_link m = { .bw = 1.25e8, .rtt = 0.002, .srv = 0.001, .srv_rate = 6e7, .range = 256 << 10 };
        uint64_t t = 1, max, before;
        struct bdp_send sd;
        struct bdp b;
        double got;

        bdp_init(&b, NULL);
        /* Small requests alone first: their round trip (3 ms) leaves out
         * what a range costs the server. */
        for (int i = 0; i < 3; i++) {
                bdp_on_send(&b, t, 0, 4096, &sd);
                t += (uint64_t) ((m.rtt + m.srv + 4096 / m.srv_rate) * 1e9);
                bdp_on_done(&b, &sd, t, 0, true);
        }
        got = scavenge(&b, &m, 6, false, &t, &max);
        assert(got >= 0.85 * m.bw);
        assert(max >= 8 * m.range);
        assert(b.delays == 0);  /* a range alone is no queue, though it takes longer than a small request */
        assert(bdp_capacity(&b) >= 0.85 * m.bw && bdp_capacity(&b) <= 1.1 * m.bw);
        /* Demand: one range at once; none grows while it is recent. */
        before = bdp_scavenger_budget(&b, t, m.range, 16 << 20, false);
        assert(before >= 4 * m.range);
        assert(bdp_scavenger_budget(&b, t, m.range, 16 << 20, true) == m.range);
        got = scavenge(&b, &m, 1, true, &t, &max);
        assert(max == m.range && got <= 0.5 * m.bw);
        /* Demand over: it grows again. */
        got = scavenge(&b, &m, 2, false, &t, &max);
        assert(max >= 4 * m.range && got >= 0.85 * m.bw);
        /* A 4 KiB request alone that takes ten round trips: a queue; one
         * range, the threshold half the bound (two ranges at least), no
         * growth while the signal lasts, growth after. */
        before = bdp_scavenger_budget(&b, t, m.range, 16 << 20, false);
        bdp_on_send(&b, t, 0, 4096, &sd);
        t += (uint64_t) (10 * bdp_rtt(&b) * 1e9);
        bdp_on_done(&b, &sd, t, 0, true);
        assert(bdp_delayed(&b, t));
        assert(bdp_scavenger_budget(&b, t, m.range, 16 << 20, false) == m.range);
        assert(b.sc_thresh == MAX(before / 2, 2 * m.range));
        bdp_scavenger_on_done(&b, t, m.range, 0, m.range, m.range, true);
        assert(bdp_scavenger_budget(&b, t, m.range, 16 << 20, false) == m.range);
        t += 200 * MS;
        assert(!bdp_delayed(&b, t));
        bdp_scavenger_on_done(&b, t, m.range, 0, m.range, m.range, true);
        assert(bdp_scavenger_budget(&b, t, m.range, 16 << 20, false) == 2 * m.range);
        /* Not sent with the bound full: no growth. */
        bdp_scavenger_on_done(&b, t, 4096, 0, 2 * m.range, m.range, true);
        assert(bdp_scavenger_budget(&b, t, m.range, 16 << 20, false) == 2 * m.range);
}

/* Profile batches: inside each, runs of chunks that lie end to end in a
 * pack, in pack order, the runs by their first position in the list;
 * zero chunks and repeats last; the batches in their order. */
static uint64_t fake_locate(uint64_t i, uint32_t *pack, uint64_t *offset, void *u) {
        (void) u;
        if (i >= 1000)
                return 0;               /* a zero chunk */
        *pack = (uint32_t) (i / 100);
        *offset = (i % 100) * 10;
        return 10;
}

static void test_profile_batch(void) {
        uint64_t v[] = { 205, 3, 1000, 4, 3, 101, 2, 7, 1, 6 };
        const uint64_t want[] = { 205, 3, 4, 1000, 3, 101, 1, 2, 7, 6 };
        uint64_t one[] = { 9, 8, 7 };

        /* Batches of 40 bytes (4 data chunks): [205 3 1000 4 3] [101 2 7 1] [6]. */
        assert(sched_profile_batch(v, 10, 40, 0, fake_locate, NULL) == 0);
        for (unsigned p = 0; p < 10; p++)
                assert(v[p] == want[p]);
        /* Batches of one chunk leave the order alone; so does batch 0. */
        assert(sched_profile_batch(one, 3, 1, 0, fake_locate, NULL) == 0);
        assert(one[0] == 9 && one[1] == 8 && one[2] == 7);
        assert(sched_profile_batch(one, 3, 0, 0, fake_locate, NULL) == 0);
        assert(one[0] == 9 && one[1] == 8 && one[2] == 7);
}

/* Runs across gaps: chunks at most gap bytes apart in a pack are one run
 * (so that the cursor finds them next to each other in the list), in
 * pack order at the place of the first; farther ones and other packs
 * stay apart. */
static void test_profile_batch_gaps(void) {
        /* Offsets (10-byte chunks): 3@30 5@50 9@90 1@10 107@70 (pack 1). */
        uint64_t v[] = { 9, 107, 3, 1, 5 };
        const uint64_t ten[] = { 9, 107, 1, 3, 5 }, thirty[] = { 1, 3, 5, 9, 107 };
        uint64_t w[5];

        /* Gap 0: none lies end to end with another: the order stays. */
        memcpy(w, v, sizeof v);
        assert(sched_profile_batch(w, 5, 1000, 0, fake_locate, NULL) == 0);
        assert(!memcmp(w, v, sizeof w));
        /* Gap 10: 1, 3, 5 are a run at the place of 3 (position 2); 9 is
         * 30 past 5's end. */
        memcpy(w, v, sizeof v);
        assert(sched_profile_batch(w, 5, 1000, 10, fake_locate, NULL) == 0);
        assert(!memcmp(w, ten, sizeof w));
        /* Gap 30: 1, 3, 5, 9 are one run at the place of 9 (the first). */
        memcpy(w, v, sizeof v);
        assert(sched_profile_batch(w, 5, 1000, 30, fake_locate, NULL) == 0);
        assert(!memcmp(w, thirty, sizeof w));
}

/* The gap a profile range reads through: the bandwidth-delay product,
 * bounded; a default before there is one; tiny without the background
 * stream. */
static void test_profile_gap(void) {
        struct bdp b;
        uint64_t t = 1;
        double tput;

        assert(sched_profile_gap(0, true) == SCHED_PROFILE_GAP_UNKNOWN);
        assert(sched_profile_gap(1000, true) == SCHED_PROFILE_GAP_MIN);
        assert(sched_profile_gap(300000, true) == 300000);
        assert(sched_profile_gap(100 << 20, true) == SCHED_PROFILE_GAP_MAX);
        assert(sched_profile_gap(UINT64_MAX, true) == SCHED_PROFILE_GAP_MAX);
        assert(SCHED_PROFILE_GAP_MIN <= SCHED_PROFILE_GAP_UNKNOWN && SCHED_PROFILE_GAP_UNKNOWN <= SCHED_PROFILE_GAP_MAX);
        /* Background off: tiny gaps only, whatever the link. */
        assert(sched_profile_gap(0, false) == SCHED_PROFILE_GAP_TINY);
        assert(sched_profile_gap(300000, false) == SCHED_PROFILE_GAP_TINY);
        assert(sched_profile_gap(UINT64_MAX, false) == SCHED_PROFILE_GAP_TINY);
        assert(SCHED_PROFILE_GAP_TINY < SCHED_PROFILE_GAP_MIN);
        /* From the estimates: 1 Gbit/s at 2 ms with 256 KiB requests moves
         * 250 KB a round trip (and the round trip counts a request's
         * transfer): what bdp_bytes says, within the bounds. */
        bdp_init(&b, NULL);
        simulate(&b, 1.25e8, 0.002, 256 << 10, 128, 3, &t, &tput);
        assert(sched_profile_gap(bdp_bytes(&b), true) >= 250000);
        assert(sched_profile_gap(bdp_bytes(&b), true) == MIN(bdp_bytes(&b), (uint64_t) SCHED_PROFILE_GAP_MAX));
        /* 10 Gbit/s at 10 ms: 12.5 MB a round trip, 1 MiB at most. */
        bdp_init(&b, NULL);
        t = 1;
        simulate(&b, 1.25e9, 0.010, 1 << 20, 128, 3, &t, &tput);
        assert(sched_profile_gap(bdp_bytes(&b), true) == SCHED_PROFILE_GAP_MAX);
}

int main(void) {
        test_gate();
        test_bdp();
        test_scavenger();
        test_stall_filter();
        test_scavenger_probe();
        test_profile_batch();
        test_profile_batch_gaps();
        test_profile_gap();
        printf("ok\n");
        return 0;
}
