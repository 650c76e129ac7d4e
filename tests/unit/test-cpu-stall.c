/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The CPU stall clock (blockd/cpu-stall.h): the pressure file's "some"
 * total, read again at most every CPU_STALL_SAMPLE_NS; standing at 0
 * without the file or with one it cannot parse; callers on several
 * threads at once, with no lock of theirs (the scheduler reads it before
 * it takes its lock).
 */
#undef NDEBUG
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blockd/cpu-stall.h"

static void put(const char *path, const char *text) {
        FILE *f = fopen(path, "w");

        assert(f);
        assert(fputs(text, f) >= 0);
        assert(fclose(f) == 0);
}

#define CALLERS 4
#define CALLS 20000

struct caller {
        struct cpu_stall *c;
        unsigned n;
        uint64_t base;          /* the first call's time, about */
        uint64_t want;          /* what every call returns */
        bool wrong;
};

/* Calls, each a third more than a sample interval after its last (a read
 * is due at almost every one), interleaved with the other callers'. */
static void *call(void *arg) {
        struct caller *a = arg;

        for (unsigned i = 1; i <= CALLS; i++)
                if (cpu_stall_ns(a->c, a->base + (uint64_t) (i * CALLERS + a->n) * CPU_STALL_SAMPLE_NS / 3) != a->want)
                        a->wrong = true;
        return NULL;
}

/* Every caller sees want at each call, whoever reads the file; calls
 * from base on (later than any before). */
static void callers(struct cpu_stall *c, uint64_t base, uint64_t want) {
        pthread_t t[CALLERS];
        struct caller a[CALLERS];

        for (unsigned n = 0; n < CALLERS; n++) {
                a[n] = (struct caller) { .c = c, .n = n, .base = base, .want = want };
                assert(pthread_create(&t[n], NULL, call, &a[n]) == 0);
        }
        for (unsigned n = 0; n < CALLERS; n++) {
                assert(pthread_join(t[n], NULL) == 0);
                assert(!a[n].wrong);
        }
}

int main(void) {
        char dir[] = "/tmp/hocus-test.XXXXXX", path[64];
        struct cpu_stall c;
        uint64_t us;

        assert(cpu_stall_parse("some avg10=0.00 avg60=1.50 avg300=7.63 total=18848382688\n"
                               "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n", &us) == 0);
        assert(us == 18848382688ull);
        assert(cpu_stall_parse("full avg10=0.00 avg60=0.00 avg300=0.00 total=5\n", &us) == -EBADMSG);
        assert(cpu_stall_parse("some avg10=0.00\nfull total=5\n", &us) == -EBADMSG);
        assert(cpu_stall_parse("some total=x\n", &us) == -EBADMSG);
        assert(cpu_stall_parse("", &us) == -EBADMSG);

        assert(mkdtemp(dir));
        snprintf(path, sizeof path, "%s/cpu", dir);
        /* No file: the clock stands at 0. */
        assert(cpu_stall_open(&c, path) == -ENOENT);
        assert(!cpu_stall_available(&c));
        assert(cpu_stall_ns(&c, 1) == 0 && cpu_stall_ns(&c, 10 * CPU_STALL_SAMPLE_NS) == 0);
        cpu_stall_close(&c);
        /* A file it cannot parse: the same. */
        put(path, "garbage\n");
        assert(cpu_stall_open(&c, path) == -EBADMSG);
        assert(!cpu_stall_available(&c) && cpu_stall_ns(&c, 1) == 0);
        cpu_stall_close(&c);
        /* Read at open, again once a sample interval has passed, not before. */
        put(path, "some avg10=0.00 avg60=0.00 avg300=0.00 total=1000\nfull avg10=0.00 total=0\n");
        assert(cpu_stall_open(&c, path) == 0 && cpu_stall_available(&c));
        assert(cpu_stall_ns(&c, 5 * CPU_STALL_SAMPLE_NS) == 1000000);
        put(path, "some avg10=0.00 avg60=0.00 avg300=0.00 total=3000\nfull avg10=0.00 total=0\n");
        assert(cpu_stall_ns(&c, 5 * CPU_STALL_SAMPLE_NS + 1) == 1000000);
        assert(cpu_stall_ns(&c, 6 * CPU_STALL_SAMPLE_NS) == 3000000);
        /* It never goes back; a file that stops parsing stops the clock. */
        put(path, "some avg10=0.00 avg60=0.00 avg300=0.00 total=2000\n");
        assert(cpu_stall_ns(&c, 7 * CPU_STALL_SAMPLE_NS) == 3000000);
        put(path, "gone\n");
        assert(cpu_stall_ns(&c, 8 * CPU_STALL_SAMPLE_NS) == 3000000 && !cpu_stall_available(&c));
        cpu_stall_close(&c);
        /* Several callers at once: one reads while the others take the
         * last value, the same one here; a file that stops parsing is
         * closed once and the clock stands where it was. */
        put(path, "some avg10=0.00 avg60=0.00 avg300=0.00 total=4000\n");
        assert(cpu_stall_open(&c, path) == 0);
        callers(&c, 0, 4000000);
        put(path, "gone\n");
        callers(&c, (uint64_t) (CALLS + 1) * CALLERS * CPU_STALL_SAMPLE_NS, 4000000);
        assert(!cpu_stall_available(&c));
        cpu_stall_close(&c);
        /* The real one, when this kernel has it. */
        if (cpu_stall_open(&c, NULL) == 0) {
                us = cpu_stall_ns(&c, 1);
                assert(cpu_stall_ns(&c, 1 + CPU_STALL_SAMPLE_NS) >= us);
        }
        cpu_stall_close(&c);
        assert(unlink(path) == 0 && rmdir(dir) == 0);
        printf("ok\n");
        return 0;
}
