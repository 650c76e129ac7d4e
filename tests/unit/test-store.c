/* SPDX-License-Identifier: Apache-2.0 */
/* The local chunk store: verified inserts, two processes inserting the
 * same chunks at once, a writer killed mid-insert, corrupt entries, and
 * LRU eviction within the bound. */
#undef NDEBUG
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "chunkstore/store.h"
#include "common/util.h"

#define N 200
#define LEN (64 * 1024)

static char dir[256];

static void fill(uint8_t *buf, unsigned i) {
        for (size_t k = 0; k < LEN; k += 4)
                memcpy(buf + k, &(uint32_t){ i * 2654435761u + (uint32_t) k }, 4);
}

static void entry_file(const struct digest *d, char *out, size_t n) {
        char hex[65];
        digest_to_hex(d, hex);
        snprintf(out, n, "%s/chunks/%.2s/%s", dir, hex, hex);
}

static void test_basic(struct chunkstore *cs) {
        uint8_t *buf = malloc(LEN), *out = malloc(LEN);
        struct digest d, wrong;

        fill(buf, 1);
        digest_compute(buf, LEN, &d);
        assert(chunkstore_has(cs, &d) == 0);
        assert(chunkstore_get(cs, &d, out, LEN) == -ENOENT);
        memset(&wrong, 7, sizeof wrong);
        assert(chunkstore_put(cs, &wrong, buf, LEN) == -EBADMSG); /* bytes must match the name */
        assert(chunkstore_has(cs, &wrong) == 0);
        assert(chunkstore_put(cs, &d, buf, LEN) == 0);
        assert(chunkstore_put(cs, &d, buf, LEN) == 0); /* idempotent */
        assert(chunkstore_has(cs, &d) == 1);
        assert(chunkstore_get(cs, &d, out, LEN) == 0);
        assert(!memcmp(buf, out, LEN));
        free(buf);
        free(out);
}

/* Two processes insert the same N chunks at the same time. */
static void test_concurrent(void) {
        pid_t pids[2];
        struct chunkstore *cs;
        struct chunkstore_stats st;

        for (int p = 0; p < 2; p++) {
                pids[p] = fork();
                assert(pids[p] >= 0);
                if (pids[p] == 0) {
                        struct chunkstore *c;
                        uint8_t *buf = malloc(LEN);
                        if (chunkstore_open(dir, 0, &c) < 0)
                                _exit(2);
                        for (unsigned i = 0; i < N; i++) {
                                unsigned k = p ? N - 1 - i : i; /* opposite orders meet in the middle */
                                struct digest d;
                                fill(buf, 1000 + k);
                                digest_compute(buf, LEN, &d);
                                if (chunkstore_put(c, &d, buf, LEN) < 0)
                                        _exit(3);
                        }
                        _exit(0);
                }
        }
        for (int p = 0; p < 2; p++) {
                int status;
                assert(waitpid(pids[p], &status, 0) == pids[p]);
                assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        }
        assert(chunkstore_open(dir, 0, &cs) == 0);
        assert(chunkstore_verify_all(cs, NULL, NULL, &st) == 0);
        assert(st.entries == N + 1);
        for (unsigned k = 0; k < N; k++) {
                uint8_t *buf = malloc(LEN), *out = malloc(LEN);
                struct digest d;
                fill(buf, 1000 + k);
                digest_compute(buf, LEN, &d);
                assert(chunkstore_get(cs, &d, out, LEN) == 0);
                assert(!memcmp(buf, out, LEN));
                free(buf);
                free(out);
        }
        chunkstore_free(cs);
}

/* A writer killed at random points never leaves a visible partial entry. */
static void test_killed_writer(void) {
        struct chunkstore *cs;
        int bad;

        for (int round = 0; round < 20; round++) {
                pid_t pid = fork();
                assert(pid >= 0);
                if (pid == 0) {
                        struct chunkstore *c;
                        size_t big = 8u << 20; /* big entries: kills land mid-write */
                        uint8_t *buf = malloc(big);
                        if (chunkstore_open(dir, 0, &c) < 0)
                                _exit(2);
                        for (unsigned i = 0;; i++) {
                                struct digest d;
                                memset(buf, (int) (i + (unsigned) round * 97), big);
                                buf[0] = (uint8_t) round;
                                buf[1] = (uint8_t) i;
                                digest_compute(buf, big, &d);
                                (void) chunkstore_put_verified(c, &d, buf, big);
                        }
                }
                usleep(1000 + (useconds_t) (rand() % 20000));
                kill(pid, SIGKILL);
                waitpid(pid, NULL, 0);
        }
        assert(chunkstore_open(dir, 0, &cs) == 0);
        bad = chunkstore_verify_all(cs, NULL, NULL, NULL);
        assert(bad == 0);
        chunkstore_free(cs);
}

static void test_corrupt(void) {
        struct chunkstore *cs;
        uint8_t *buf = malloc(LEN), *out = malloc(LEN);
        struct digest d;
        char path[512];
        int fd, found = 0;

        assert(chunkstore_open(dir, 0, &cs) == 0);
        fill(buf, 5000);
        digest_compute(buf, LEN, &d);
        assert(chunkstore_put(cs, &d, buf, LEN) == 0);
        entry_file(&d, path, sizeof path);
        /* Flip one byte in place (entries are 0444; root ignores that). */
        fd = open(path, O_WRONLY);
        assert(fd >= 0);
        assert(pwrite(fd, "X", 1, 100) == 1);
        close(fd);
        /* get never serves it, and drops it */
        assert(chunkstore_get(cs, &d, out, LEN) == -ENOENT);
        assert(chunkstore_has(cs, &d) == 0);
        /* verify finds a corrupted entry */
        assert(chunkstore_put(cs, &d, buf, LEN) == 0);
        fd = open(path, O_WRONLY);
        assert(pwrite(fd, "Y", 1, 7) == 1);
        close(fd);
        assert(chunkstore_verify_all(cs, NULL, NULL, NULL) == 1);
        assert(chunkstore_has(cs, &d) == 0);
        (void) found;
        chunkstore_free(cs);
        free(buf);
        free(out);
}

static void test_eviction(void) {
        char edir[300];
        struct chunkstore *cs;
        struct chunkstore_stats st, rm;
        uint8_t *buf = malloc(LEN);
        struct digest first, last;
        uint64_t max = 50 * LEN;

        snprintf(edir, sizeof edir, "%s-evict", dir);
        assert(chunkstore_open(edir, max, &cs) == 0);
        for (unsigned i = 0; i < 200; i++) {
                struct digest d;
                struct timespec ts[2];
                char path[512], hex[65];

                fill(buf, 9000 + i);
                digest_compute(buf, LEN, &d);
                assert(chunkstore_put(cs, &d, buf, LEN) == 0);
                /* Age entries so LRU order is well defined. */
                digest_to_hex(&d, hex);
                snprintf(path, sizeof path, "%s/chunks/%.2s/%s", edir, hex, hex);
                ts[0].tv_sec = ts[1].tv_sec = 1000000 + i;
                ts[0].tv_nsec = ts[1].tv_nsec = 0;
                assert(utimensat(AT_FDCWD, path, ts, 0) == 0);
                if (i == 0)
                        first = d;
                last = d;
                assert(chunkstore_stats(cs, &st) == 0);
                assert(st.bytes <= max); /* the bound holds after every put */
        }
        assert(chunkstore_has(cs, &first) == 0); /* oldest went */
        assert(chunkstore_has(cs, &last) == 1);  /* newest stayed */
        assert(chunkstore_gc(cs, 10 * LEN, &rm) == 0);
        assert(chunkstore_stats(cs, &st) == 0);
        assert(st.bytes <= 10 * LEN && st.entries == 10);
        assert(chunkstore_has(cs, &last) == 1);
        chunkstore_free(cs);
        free(buf);
}

int main(void) {
        struct chunkstore *cs;
        char cmd[600];

        snprintf(dir, sizeof dir, "/tmp/test-store.%d", getpid());
        assert(chunkstore_open(dir, 0, &cs) == 0);
        test_basic(cs);
        chunkstore_free(cs);
        test_concurrent();
        test_killed_writer();
        test_corrupt();
        test_eviction();
        snprintf(cmd, sizeof cmd, "rm -rf %s %s-evict", dir, dir);
        assert(system(cmd) == 0);
        printf("ok\n");
        return 0;
}
