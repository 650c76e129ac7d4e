/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The fetch scheduler, whole (its pure parts are test-sched-policy.c),
 * over an in-memory image and a fake source that records every range
 * read, can hold reads at a gate, fail them or flip a byte. Everything is
 * asserted on orders and counts, never on time: waits poll for a state
 * (bounded by WAIT_NS, generous for a loaded machine), and the one check
 * that needs the reads to come faster than the scheduler's quiet period
 * is made only when they measurably did.
 */
#undef NDEBUG
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blockd/sched-bdp.h"
#include "blockd/sched-policy.h"
#include "blockd/sched.h"
#include "chunkstore/codec.h"
#include "common/cleanup.h"
#include "common/util.h"

#define CS (64u << 10)
#define NCHUNKS 64
#define MS 1000000ull
/* How long a wait for a state may take before the test calls it a hang. */
#define WAIT_NS (120000 * MS)

/* Poll cond every millisecond until it holds, at most WAIT_NS. */
#define WAIT_UNTIL(cond)                                                \
        do {                                                            \
                uint64_t wait_deadline_ = now_ns() + WAIT_NS;           \
                while (!(cond)) {                                       \
                        assert(now_ns() < wait_deadline_);              \
                        usleep(1000);                                   \
                }                                                       \
        } while (0)

/* --- A fake source: one pack, reads recorded, a gate, faults --- */

struct fake {
        pthread_mutex_t lock;
        pthread_cond_t cond;
        const uint8_t *pack;
        size_t pack_len;
        bool gate_closed;
        unsigned at_gate;
        int fail;               /* reads fail with this while set */
        int64_t flip_at;        /* flip the byte at this pack offset, once; -1 none */
        unsigned n_reads;
        struct {
                uint64_t off, len;
        } reads[4096];
};

static int fake_read(struct blob_source *s, const struct digest *d, uint64_t off, void *buf, size_t len) {
        struct fake *f = s->priv;
        int r = 0;

        pthread_mutex_lock(&f->lock);
        assert(f->n_reads < 4096);
        f->reads[f->n_reads].off = off;
        f->reads[f->n_reads++].len = len;
        f->at_gate++;
        pthread_cond_broadcast(&f->cond);
        while (f->gate_closed)
                pthread_cond_wait(&f->cond, &f->lock);
        f->at_gate--;
        if (f->fail)
                r = f->fail;
        else if (off + len > f->pack_len)
                r = -ERANGE;
        if (r == 0) {
                memcpy(buf, f->pack + off, len);
                if (f->flip_at >= 0 && (uint64_t) f->flip_at >= off && (uint64_t) f->flip_at < off + len) {
                        ((uint8_t *) buf)[f->flip_at - (int64_t) off] ^= 0xff;
                        f->flip_at = -1;
                }
        }
        pthread_mutex_unlock(&f->lock);
        return r;
}

static void fake_free(struct blob_source *s) {
        (void) s;
}

static const struct blob_source_ops fake_ops = {
        .name = "fake",
        .blob_read = fake_read,
        .free = fake_free,
};

static void fake_set(struct fake *f, bool gate_closed, int fail) {
        pthread_mutex_lock(&f->lock);
        f->gate_closed = gate_closed;
        f->fail = fail;
        pthread_cond_broadcast(&f->cond);
        pthread_mutex_unlock(&f->lock);
}

static unsigned fake_at_gate(struct fake *f) {
        unsigned n;

        pthread_mutex_lock(&f->lock);
        n = f->at_gate;
        pthread_mutex_unlock(&f->lock);
        return n;
}

/* Wait (bounded) until n reads are held at the gate. */
static void fake_wait_gate(struct fake *f, unsigned n) {
        WAIT_UNTIL(fake_at_gate(f) >= n);
}

static unsigned fake_reads(struct fake *f) {
        unsigned n;

        pthread_mutex_lock(&f->lock);
        n = f->n_reads;
        pthread_mutex_unlock(&f->lock);
        return n;
}

/* --- An in-memory image: NCHUNKS logical chunks, 8 of them zero --- */

static uint8_t chunk_data[NCHUNKS][CS];

static bool is_zero_chunk(uint64_t i) {
        return i % 8 == 7;
}

static void fill_data(void) {
        for (unsigned i = 0; i < NCHUNKS; i++)
                for (unsigned b = 0; b < CS; b++)
                        chunk_data[i][b] = is_zero_chunk(i) ? 0 : (uint8_t) (i * 131 + b * 7 + (b >> 9));
}

struct img {
        struct image image;
        struct blob_source src;
        struct fake fake;
        uint8_t *pack;
        uint32_t unique_of[NCHUNKS];    /* logical -> unique, or BLKINDEX_ZERO */
};

/* reverse: the pack holds the chunks in reverse logical order (so the
 * same digests sit elsewhere than in the forward image). */
static void img_make(struct img *m, bool reverse) {
        struct blkindex *x;
        uint32_t n = 0, order[NCHUNKS];

        memset(m, 0, sizeof *m);
        for (unsigned i = 0; i < NCHUNKS; i++)
                if (!is_zero_chunk(i))
                        order[n++] = i;
        assert(blkindex_new((uint64_t) NCHUNKS * CS, CS, 1, n, &x) == 0);
        m->pack = malloc((size_t) n * CS);
        assert(m->pack);
        for (uint32_t k = 0; k < n; k++) {
                uint32_t i = order[reverse ? n - 1 - k : k];

                memcpy(m->pack + (size_t) k * CS, chunk_data[i], CS);
                x->chunks[k] = (struct blkindex_chunk) { .offset = (uint64_t) k * CS, .stored_len = CS, .raw_len = CS,
                                                         .pack = 0, .codec = CODEC_RAW };
                digest_compute(chunk_data[i], CS, &x->chunks[k].digest);
                x->map[i] = k;
        }
        for (unsigned i = 0; i < NCHUNKS; i++)
                if (is_zero_chunk(i))
                        x->map[i] = BLKINDEX_ZERO;
        memcpy(m->unique_of, x->map, sizeof m->unique_of);
        digest_compute(m->pack, (size_t) n * CS, &x->packs[0].digest);
        x->packs[0].size = (uint64_t) n * CS;
        pthread_mutex_init(&m->fake.lock, NULL);
        pthread_cond_init(&m->fake.cond, NULL);
        m->fake.pack = m->pack;
        m->fake.pack_len = (size_t) n * CS;
        m->fake.flip_at = -1;
        m->src = (struct blob_source) { .ops = &fake_ops, .priv = &m->fake };
        m->image = (struct image) { .src = &m->src, .index = x };
}

static void img_free(struct img *m) {
        blkindex_free(m->image.index);
        free(m->pack);
        pthread_mutex_destroy(&m->fake.lock);
        pthread_cond_destroy(&m->fake.cond);
}

/* The pack offset of logical chunk i in m. */
static uint64_t pack_off(const struct img *m, uint64_t i) {
        return m->image.index->chunks[m->unique_of[i]].offset;
}

static char store_dir[64];

static struct chunkstore *store_new(void) {
        struct chunkstore *cs;
        char cmd[128];

        snprintf(cmd, sizeof cmd, "rm -rf '%s'", store_dir);
        assert(system(cmd) == 0);
        assert(chunkstore_open(store_dir, 0, &cs) == 0);
        return cs;
}

static int demand_ahead(struct sched_export *se, uint64_t i, uint64_t n_after, struct sched_ahead *ahead,
                        uint64_t *hinted) {
        struct sched_buf *b = NULL;
        int r = sched_demand(se, i, n_after, ahead, &b, hinted);

        if (r == 0) {
                assert(!memcmp(sched_buf_data(b), chunk_data[i], CS));
                sched_buf_put(b);
        }
        return r;
}

static int demand(struct sched_export *se, uint64_t i, uint64_t n_after, uint64_t *hinted) {
        return demand_ahead(se, i, n_after, NULL, hinted);
}

struct reader {
        struct sched_export *se;
        uint64_t i;
        struct sched_ahead *ahead;      /* NULL: none */
        int r;
        pthread_t t;
};

static void *reader_main(void *arg) {
        struct reader *rd = arg;

        rd->r = demand_ahead(rd->se, rd->i, 0, rd->ahead, NULL);
        return NULL;
}

static void wait_waiting(struct sched *s, unsigned n) {
        struct sched_stats st;

        WAIT_UNTIL((sched_get_stats(s, &st), st.demand_waiting >= n));
}

/* Wait (bounded) until se's background stream is done; its stats in st. */
static void wait_bg_done(struct sched_export *se, struct sched_export_stats *st) {
        WAIT_UNTIL((sched_export_get_stats(se, st), st->bg_state == SCHED_BG_DONE));
}

/* --- The scheduler, whole --- */

/* A miss fetches the rest of the read with it: one request. */
static void test_demand_coalesced(void) {
        struct chunkstore *cs = store_new();
        struct sched *s;
        struct sched_export *se;
        struct sched_export_stats st;
        struct img m;
        uint64_t hinted = 0;

        img_make(&m, false);
        assert(sched_new(cs, &(struct sched_options) { .background = false }, &s) == 0);
        assert(sched_export_add(s, "a", &m.image, &m.src, 0, NULL, &se) == 0);
        /* Chunks 2..9 (7 is zero): 2-6 and 8-9 are adjacent in the pack. */
        assert(demand(se, 2, 7, &hinted) == 0);
        assert(hinted == 0x7f - (1u << 4));     /* 3,4,5,6,8,9 (not zero chunk 7) */
        assert(fake_reads(&m.fake) == 1);
        assert(m.fake.reads[0].off == pack_off(&m, 2) && m.fake.reads[0].len == 7 * (uint64_t) CS);
        sched_export_get_stats(se, &st);
        assert(st.requests[SCHED_DEMAND] == 1 && st.chunks[SCHED_DEMAND] == 7);
        assert(st.needed_bytes == CS);  /* only chunk 2 was read so far */
        /* They are in the store now. */
        assert(demand(se, 3, 0, NULL) == -EAGAIN);
        assert(chunkstore_has(cs, &m.image.index->chunks[m.unique_of[9]].digest) == 1);
        sched_export_remove(se);
        sched_free(s);
        img_free(&m);
        chunkstore_free(cs);
}

/* A miss fetches the chunks readahead lists with it, in one request where
 * they follow it in the pack whatever their logical numbers. */
static void test_demand_ahead(void) {
        struct chunkstore *cs = store_new();
        struct sched *s;
        struct sched_export *se;
        struct img m;
        /* Reversed pack: 20, 19, 18, 17, 16, (15 is zero) 14 ... */
        const uint64_t list[] = { 19, 18, 17, 16, 15, 20 };
        struct sched_ahead ahead = { .chunks = list, .n = 6 };

        img_make(&m, true);
        assert(sched_new(cs, &(struct sched_options) { .background = false }, &s) == 0);
        assert(sched_export_add(s, "a", &m.image, &m.src, 0, NULL, &se) == 0);
        assert(demand_ahead(se, 20, 0, &ahead, NULL) == 0);
        assert(ahead.fetched == 0xf);   /* not the zero chunk, not the chunk read */
        assert(fake_reads(&m.fake) == 1);
        assert(m.fake.reads[0].off == pack_off(&m, 20) && m.fake.reads[0].len == 5 * (uint64_t) CS);
        /* Local (or on their way) now: listed again, not fetched again. */
        assert(demand_ahead(se, 21, 0, &ahead, NULL) == 0);
        assert(fake_reads(&m.fake) == 2);
        sched_export_remove(se);
        sched_free(s);
        img_free(&m);
        chunkstore_free(cs);

}

/* Many readers of one chunk, of two exports: one fetch. */
static void test_shared_fetch(void) {
        struct chunkstore *cs = store_new();
        struct sched *s;
        struct sched_export *a, *b;
        struct img ma, mb;
        struct reader rd[9];

        img_make(&ma, false);
        img_make(&mb, true);
        assert(sched_new(cs, &(struct sched_options) { .background = false }, &s) == 0);
        assert(sched_export_add(s, "a", &ma.image, &ma.src, 0, NULL, &a) == 0);
        assert(sched_export_add(s, "b", &mb.image, &mb.src, 0, NULL, &b) == 0);
        fake_set(&ma.fake, true, 0);
        for (int i = 0; i < 8; i++) {
                rd[i] = (struct reader) { .se = a, .i = 10 };
                assert(pthread_create(&rd[i].t, NULL, reader_main, &rd[i]) == 0);
        }
        fake_wait_gate(&ma.fake, 1);
        wait_waiting(s, 8);
        /* The same chunk through the other export waits for that fetch. */
        rd[8] = (struct reader) { .se = b, .i = 10 };
        assert(pthread_create(&rd[8].t, NULL, reader_main, &rd[8]) == 0);
        wait_waiting(s, 9);
        fake_set(&ma.fake, false, 0);
        for (int i = 0; i < 9; i++) {
                pthread_join(rd[i].t, NULL);
                assert(rd[i].r == 0);
        }
        assert(fake_reads(&ma.fake) == 1 && fake_reads(&mb.fake) == 0);
        /* What a fetched is a store hit for b. */
        assert(demand(b, 10, 0, NULL) == -EAGAIN);
        sched_export_remove(b);
        sched_export_remove(a);
        sched_free(s);
        img_free(&ma);
        img_free(&mb);
        chunkstore_free(cs);
}

/* With the background stream going (one request at a time), a demand
 * read of a far chunk starts before the stream's next request. */
static void test_demand_first(void) {
        struct chunkstore *cs = store_new();
        struct sched *s;
        struct sched_export *se;
        struct sched_export_stats st;
        struct img m;
        struct reader rd;

        img_make(&m, false);
        fake_set(&m.fake, true, 0);
        assert(sched_new(cs, &(struct sched_options) { .background = true, .range_max = CS, .min_window = 1, .max_window = 1 }, &s) == 0);
        assert(sched_export_add(s, "a", &m.image, &m.src, 3, NULL, &se) == 0);
        sched_background_start(se);
        fake_wait_gate(&m.fake, 1);     /* the stream's first request (chunk 0) */
        rd = (struct reader) { .se = se, .i = 60 };
        assert(pthread_create(&rd.t, NULL, reader_main, &rd) == 0);
        fake_wait_gate(&m.fake, 2);     /* the demand request */
        fake_set(&m.fake, false, 0);
        pthread_join(rd.t, NULL);
        assert(rd.r == 0);
        assert(m.fake.reads[0].off == pack_off(&m, 0));
        assert(m.fake.reads[1].off == pack_off(&m, 60));
        /* Then the stream goes on, and finishes: every chunk, once. */
        wait_bg_done(se, &st);
        assert(st.hydrated_chunks == st.image_chunks && st.hydrated_bytes == st.image_bytes);
        assert(st.chunks[SCHED_DEMAND] == 1 && st.chunks[SCHED_BACKGROUND] == st.image_chunks - 1);
        assert(fake_reads(&m.fake) == st.image_chunks);
        for (unsigned i = 2; i < m.fake.n_reads; i++)
                assert(m.fake.reads[i].off != pack_off(&m, 60));
        sched_export_remove(se);
        sched_free(s);
        img_free(&m);
        chunkstore_free(cs);
}

/* The stream waits while the start reads (hits, here: nothing to fetch),
 * and begins when the reads pause. */
static void test_background_settles(void) {
        struct chunkstore *cs = store_new();
        struct sched *s;
        struct sched_export *se;
        struct sched_export_stats st;
        struct img m;
        uint64_t t0, prev, longest = 0;
        unsigned early;

        img_make(&m, false);
        assert(sched_new(cs, &(struct sched_options) { .background = true }, &s) == 0);
        assert(sched_export_add(s, "a", &m.image, &m.src, 0, NULL, &se) == 0);
        t0 = prev = now_ns();
        sched_export_note_read(se);
        sched_background_start(se);
        for (int i = 0; i < 20; i++) {  /* 100 ms of reads, 5 ms apart: never quiet for 250 ms */
                uint64_t before;

                usleep(5000);
                before = now_ns();
                sched_export_note_read(se);
                longest = MAX(longest, now_ns() - prev);
                prev = before;
        }
        early = fake_reads(&m.fake);
        longest = MAX(longest, now_ns() - prev);
        /* The stream may begin after 250 ms without a read, or 5 s after it
         * was let start: check that it did not only when the reads
         * measurably came faster (a loaded machine may pause this thread). */
        if (longest < 250 * MS && now_ns() - t0 < 5000 * MS)
                assert(early == 0);
        else
                fprintf(stderr, "background_settles: reads paused %llu ms (the machine is busy); the early-start check is skipped\n",
                        (unsigned long long) (longest / MS));
        wait_bg_done(se, &st);
        assert(fake_reads(&m.fake) > 0 && st.hydrated_chunks == st.image_chunks);
        sched_export_remove(se);
        sched_free(s);
        img_free(&m);
        chunkstore_free(cs);
}

/* Wait (bounded) until se's profile list is through. */
static void profile_wait(struct sched_export *se, struct sched_export_stats *st) {
        WAIT_UNTIL((sched_export_get_stats(se, st), !st->profile_active));
}

/* Profile positions in their order, adjacent ones in one request. */
static void test_profile(void) {
        struct chunkstore *cs = store_new();
        struct sched *s;
        struct sched_export *se;
        struct sched_export_stats st;
        struct img m;
        const uint64_t list[] = { 20, 3, 4, 5, 7, 40, 4 };

        img_make(&m, false);
        assert(sched_new(cs,
                         &(struct sched_options) { .background = false, .min_window = 1, .max_window = 1,
                                                   .profile_batch = 1 },
                         &s) == 0);
        assert(sched_export_add(s, "a", &m.image, &m.src, 0, NULL, &se) == 0);
        assert(sched_profile_set(se, list, 7) == 0);
        profile_wait(se, &st);
        assert(st.profile_queued == 7 && st.profile_done == 7);
        assert(st.chunks[SCHED_PROFILE] == 5 && st.requests[SCHED_PROFILE] == 3);
        assert(fake_reads(&m.fake) == 3);
        assert(m.fake.reads[0].off == pack_off(&m, 20) && m.fake.reads[0].len == CS);
        assert(m.fake.reads[1].off == pack_off(&m, 3) && m.fake.reads[1].len == 3 * (uint64_t) CS);
        assert(m.fake.reads[2].off == pack_off(&m, 40) && m.fake.reads[2].len == CS);
        sched_export_remove(se);
        sched_free(s);
        img_free(&m);
        chunkstore_free(cs);
}

/* The default batches: chunks adjacent in the pack but apart in the
 * profile are fetched in one request, which starts when the first of
 * them would have. */
static void test_profile_batched(void) {
        struct chunkstore *cs = store_new();
        struct sched *s;
        struct sched_export *se;
        struct sched_export_stats st;
        struct img m;
        const uint64_t list[] = { 3, 10, 4, 11, 5, 12 };

        img_make(&m, false);
        assert(sched_new(cs, &(struct sched_options) { .background = false, .min_window = 1, .max_window = 1 }, &s) == 0);
        assert(sched_export_add(s, "a", &m.image, &m.src, 0, NULL, &se) == 0);
        assert(sched_profile_set(se, list, 6) == 0);
        profile_wait(se, &st);
        assert(st.profile_queued == 6 && st.profile_done == 6);
        assert(st.chunks[SCHED_PROFILE] == 6 && st.requests[SCHED_PROFILE] == 2);
        assert(fake_reads(&m.fake) == 2);
        assert(m.fake.reads[0].off == pack_off(&m, 3) && m.fake.reads[0].len == 3 * (uint64_t) CS);
        assert(m.fake.reads[1].off == pack_off(&m, 10) && m.fake.reads[1].len == 3 * (uint64_t) CS);
        sched_export_remove(se);
        sched_free(s);
        img_free(&m);
        chunkstore_free(cs);
}

/* Whether the store holds logical chunk i's bytes. */
static bool stored(struct chunkstore *cs, uint64_t i) {
        struct digest d;

        digest_compute(chunk_data[i], CS, &d);
        return chunkstore_has(cs, &d) > 0;
}

/* Profile chunks a gap apart in the pack: with the background stream on,
 * a range reads through a one-chunk gap (whatever the link: 64 KiB is
 * the least gap read through) and stores the chunk in it, but never
 * through 29 chunks (1.8 MiB: more than a profile range holds); a chunk
 * local already in a gap is read and counted as waste. With the stream
 * off, no gap of a chunk is read through. */
static void test_profile_gaps(bool background) {
        struct chunkstore *cs = store_new();
        struct sched *s;
        struct sched_export *se;
        struct sched_export_stats st;
        struct img m;
        /* In the pack: 3, [4], 5 ... 29 chunks ... 40, [41], 42. */
        const uint64_t list[] = { 3, 5, 40, 42 };

        img_make(&m, false);
        assert(sched_new(cs, &(struct sched_options) { .background = background, .min_window = 1, .max_window = 1 },
                         &s) == 0);
        assert(sched_export_add(s, "a", &m.image, &m.src, 0, NULL, &se) == 0);
        /* Chunk 4 is local before the profile starts. */
        assert(demand(se, 4, 0, NULL) == 0);
        assert(fake_reads(&m.fake) == 1);
        assert(sched_profile_set(se, list, 4) == 0);
        profile_wait(se, &st);
        assert(st.profile_queued == 4 && st.profile_done == 4);
        if (background) {
                assert(st.requests[SCHED_PROFILE] == 2 && fake_reads(&m.fake) == 3);
                assert(m.fake.reads[1].off == pack_off(&m, 3) && m.fake.reads[1].len == 3 * (uint64_t) CS);
                assert(m.fake.reads[2].off == pack_off(&m, 40) && m.fake.reads[2].len == 3 * (uint64_t) CS);
                assert(st.chunks[SCHED_PROFILE] == 5 && st.profile_gap_chunks == 1);
                assert(st.profile_gap_waste == CS);
                assert(stored(cs, 41));
        } else {
                assert(st.requests[SCHED_PROFILE] == 4 && fake_reads(&m.fake) == 5);
                for (unsigned r = 1; r < 5; r++)
                        assert(m.fake.reads[r].off == pack_off(&m, list[r - 1]) && m.fake.reads[r].len == CS);
                assert(st.chunks[SCHED_PROFILE] == 4 && st.profile_gap_chunks == 0 && st.profile_gap_waste == 0);
                assert(!stored(cs, 41));
        }
        for (unsigned p = 0; p < 4; p++)
                assert(stored(cs, list[p]));
        sched_export_remove(se);
        sched_free(s);
        img_free(&m);
        chunkstore_free(cs);
}

/* A flipped byte: the chunk is fetched again, the reader gets it right;
 * a source that keeps failing ends in -EIO at the fetch timeout, and a
 * source that comes back serves again. */
static void test_faults(void) {
        struct chunkstore *cs = store_new();
        struct sched *s;
        struct sched_export *se;
        struct sched_export_stats st;
        struct img m;

        img_make(&m, false);
        assert(sched_new(cs, &(struct sched_options) { .background = false, .fetch_timeout_ns = 300 * MS }, &s) == 0);
        assert(sched_export_add(s, "a", &m.image, &m.src, 0, NULL, &se) == 0);
        m.fake.flip_at = (int64_t) pack_off(&m, 5) + 1234;
        assert(demand(se, 5, 0, NULL) == 0);
        assert(fake_reads(&m.fake) == 2);
        sched_export_get_stats(se, &st);
        assert(st.digest_mismatches == 1 && st.chunks[SCHED_DEMAND] == 1 && st.requests[SCHED_DEMAND] == 2);

        fake_set(&m.fake, false, -ECONNREFUSED);
        uint64_t t0 = now_ns();
        assert(demand(se, 9, 0, NULL) == -EIO);
        assert(now_ns() - t0 >= 300 * MS);                                   /* not before the timeout */
        assert(fake_reads(&m.fake) > 3);                                     /* retried meanwhile */
        sched_export_get_stats(se, &st);
        assert(st.demand_failures == 1 && st.fetch_errors >= 2);
        fake_set(&m.fake, false, 0);
        assert(demand(se, 9, 0, NULL) == 0);
        /* Permanent errors are not retried. */
        fake_set(&m.fake, false, -ENOENT);
        unsigned before = fake_reads(&m.fake);
        assert(demand(se, 11, 0, NULL) == -EIO);
        assert(fake_reads(&m.fake) == before + 1);
        fake_set(&m.fake, false, 0);
        sched_export_remove(se);
        sched_free(s);
        img_free(&m);
        chunkstore_free(cs);
}

/* An export goes while a reader of another export waits for one of its
 * fetches: the reader gets the chunk anyway (from that fetch if it won
 * the race, else through its own export). */
struct remover {
        struct sched_export *se;
        pthread_t t;
};

static void *remover_main(void *arg) {
        struct remover *rm = arg;

        sched_export_remove(rm->se);
        return NULL;
}

static void test_remove_while_shared(void) {
        struct chunkstore *cs = store_new();
        struct sched *s;
        struct sched_export *a, *b;
        struct img ma, mb;
        struct reader rb;
        struct remover rm;
        const uint64_t list[] = { 30 };

        img_make(&ma, false);
        img_make(&mb, true);
        assert(sched_new(cs, &(struct sched_options) { .background = false }, &s) == 0);
        assert(sched_export_add(s, "a", &ma.image, &ma.src, 0, NULL, &a) == 0);
        assert(sched_export_add(s, "b", &mb.image, &mb.src, 0, NULL, &b) == 0);
        fake_set(&ma.fake, true, 0);
        assert(sched_profile_set(a, list, 1) == 0);
        fake_wait_gate(&ma.fake, 1);
        rb = (struct reader) { .se = b, .i = 30 };
        assert(pthread_create(&rb.t, NULL, reader_main, &rb) == 0);
        wait_waiting(s, 1);
        rm = (struct remover) { .se = a };
        assert(pthread_create(&rm.t, NULL, remover_main, &rm) == 0);
        usleep(50000);  /* usually a is going by now; either way the read must succeed */
        fake_set(&ma.fake, false, 0);
        pthread_join(rm.t, NULL);
        pthread_join(rb.t, NULL);
        assert(rb.r == 0);
        assert(fake_reads(&mb.fake) <= 1);
        /* A shared fetch that fails for good fails every waiter. */
        fake_set(&mb.fake, false, -ENOENT);
        assert(demand(b, 33, 0, NULL) == -EIO);
        fake_set(&mb.fake, false, 0);
        sched_export_remove(b);
        sched_free(s);
        img_free(&ma);
        img_free(&mb);
        chunkstore_free(cs);
}

int main(void) {
        char dir[] = "/tmp/hocus-sched-XXXXXX";


        assert(mkdtemp(dir));
        snprintf(store_dir, sizeof store_dir, "%s/store", dir);
        fill_data();
        test_demand_coalesced();
        test_demand_ahead();
        test_shared_fetch();
        test_demand_first();
        test_background_settles();
        test_profile();
        test_profile_batched();
        test_profile_gaps(true);
        test_profile_gaps(false);
        test_faults();
        test_remove_while_shared();

        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        assert(system(cmd) == 0);
        printf("ok\n");
        return 0;
}
