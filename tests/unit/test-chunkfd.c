/* SPDX-License-Identifier: Apache-2.0 */
/* The chunk fd cache: verified once (while the file is unchanged), bounded,
 * pinned handles survive eviction, damaged entries are dropped and reported
 * (-ESTALE), an entry changed after it was verified is hashed again and
 * dropped, entries the store evicts are closed. */
#undef NDEBUG
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blockd/chunkfd.h"
#include "common/util.h"

#define N 100
#define LEN 4096

static void fill(uint8_t *buf, int i) {
        for (int k = 0; k < LEN; k++)
                buf[k] = (uint8_t) (i * 31 + k);
}

int main(void) {
        char dir[] = "/tmp/test-chunkfd.XXXXXX";
        struct chunkstore *cs;
        struct chunkfd_cache *c;
        struct chunkfd *pins[N], *h;
        struct chunkfd_stats st;
        struct digest ids[N], missing;
        uint8_t buf[LEN], got[LEN];
        uint32_t stamps[N], stamp0;
        uint32_t verified;

        assert(mkdtemp(dir));
        assert(chunkstore_open(dir, 0, &cs) == 0);
        for (int i = 0; i < N; i++) {
                fill(buf, i);
                digest_compute(buf, LEN, &ids[i]);
                assert(chunkstore_put(cs, &ids[i], buf, LEN) == 0);
        }
        assert(chunkfd_cache_new(cs, 32, &c) == 0);

        /* Not open yet: lookup says so; get opens and verifies. */
        assert(chunkfd_lookup(c, &ids[0], &h) == -ENOENT);
        verified = 0;
        assert(chunkfd_get(c, &ids[0], LEN, &verified, &h) == 0 && verified);
        stamp0 = verified;
        assert(pread(chunkfd_fd(h), got, LEN, 0) == LEN);
        fill(buf, 0);
        assert(memcmp(got, buf, LEN) == 0);
        chunkfd_put(c, h);
        assert(chunkfd_lookup(c, &ids[0], &h) == 0);
        chunkfd_put(c, h);
        chunkfd_get_stats(c, &st);
        assert(st.opens == 1 && st.verified == 1 && st.hits == 1);

        /* A caller that verified the same file before skips the hash;
         * one with another stamp does not. */
        verified = 0;
        assert(chunkfd_get(c, &ids[1], LEN, &verified, &h) == 0);
        chunkfd_put(c, h);
        chunkfd_forget(c, &ids[1]);
        chunkfd_get_stats(c, &st);
        assert(st.verified == 2 && st.open == 1);
        assert(chunkfd_get(c, &ids[1], LEN, &verified, &h) == 0);
        chunkfd_put(c, h);
        chunkfd_get_stats(c, &st);
        assert(st.verified == 2);
        chunkfd_forget(c, &ids[1]);
        verified = 12345;
        assert(chunkfd_get(c, &ids[1], LEN, &verified, &h) == 0 && verified != 12345);
        chunkfd_get_stats(c, &st);
        assert(st.verified == 3);
        /* Forgetting a pinned entry closes it at the last unpin. */
        chunkfd_forget(c, &ids[1]);
        assert(chunkfd_lookup(c, &ids[1], &pins[0]) == -ENOENT);
        fill(buf, 1);
        assert(pread(chunkfd_fd(h), got, LEN, 0) == LEN && memcmp(got, buf, LEN) == 0);
        chunkfd_get_stats(c, &st);
        assert(st.open == 2);
        chunkfd_put(c, h);
        chunkfd_get_stats(c, &st);
        assert(st.open == 1);
        (void) stamp0;

        /* Pin everything: nothing pinned is closed, whatever the bound. */
        for (int i = 0; i < N; i++) {
                stamps[i] = 0;
                assert(chunkfd_get(c, &ids[i], LEN, &stamps[i], &pins[i]) == 0);
        }
        for (int i = 0; i < N; i++) {
                fill(buf, i);
                assert(pread(chunkfd_fd(pins[i]), got, LEN, 0) == LEN && memcmp(got, buf, LEN) == 0);
        }
        chunkfd_get_stats(c, &st);
        assert(st.open == N);
        for (int i = 0; i < N; i++)
                chunkfd_put(c, pins[i]);
        /* Unpinned, the cache shrinks back to its bound (2 per shard here). */
        chunkfd_get_stats(c, &st);
        assert(st.open <= 32 && st.evictions >= N - 32);
        /* Hot entries survive a scan of cold ones (CLOCK second chance). */
        for (int round = 0; round < 3; round++)
                for (int i = 0; i < N; i++) {
                        assert(chunkfd_get(c, &ids[i], LEN, &stamps[i], &h) == 0);
                        chunkfd_put(c, h);
                }
        chunkfd_get_stats(c, &st);
        assert(st.open <= 32);

        /* The wrong size, or damaged bytes: dropped from the store, -ESTALE. */
        verified = 0;
        assert(chunkfd_get(c, &ids[5], LEN + 1, &verified, &h) == -ESTALE);
        assert(chunkstore_has(cs, &ids[5]) == 0);
        {
                char hex[DIGEST_HEX_LEN + 1], path[256];
                int fd;

                digest_to_hex(&ids[7], hex);
                snprintf(path, sizeof path, "%s/chunks/%.2s/%s", dir, hex, hex);
                assert(chmod(path, 0644) == 0);
                fd = open(path, O_WRONLY);
                assert(fd >= 0 && pwrite(fd, "X", 1, 100) == 1);
                close(fd);
                /* A fresh cache (a new process) must notice. */
                chunkfd_cache_free(c);
                assert(chunkfd_cache_new(cs, 32, &c) == 0);
                verified = 0;
                assert(chunkfd_get(c, &ids[7], LEN, &verified, &h) == -ESTALE);
                assert(chunkstore_has(cs, &ids[7]) == 0);
                chunkfd_get_stats(c, &st);
                assert(st.damaged == 1);
        }
        /* An open, verified entry written afterwards: the next use hashes
         * it again (its ctime moved), finds it changed, drops it. */
        {
                char hex[DIGEST_HEX_LEN + 1], path[256];
                int fd;

                verified = 0;
                assert(chunkfd_get(c, &ids[9], LEN, &verified, &h) == 0);
                chunkfd_put(c, h);
                assert(chunkfd_lookup(c, &ids[9], &h) == 0);
                chunkfd_put(c, h);
                digest_to_hex(&ids[9], hex);
                snprintf(path, sizeof path, "%s/chunks/%.2s/%s", dir, hex, hex);
                /* Touching the file without changing a byte: hashed again, kept. */
                usleep(20000);
                assert(utimensat(AT_FDCWD, path, NULL, 0) == 0);
                assert(chunkfd_lookup(c, &ids[9], &h) == -ESTALE);
                assert(chunkfd_get(c, &ids[9], LEN, &verified, &h) == 0);
                chunkfd_put(c, h);
                chunkfd_get_stats(c, &st);
                assert(st.reverified == 1 && st.changed == 0);
                assert(chunkfd_lookup(c, &ids[9], &h) == 0);
                chunkfd_put(c, h);
                /* A changed byte: dropped, -ESTALE, counted. */
                usleep(20000);
                assert(chmod(path, 0644) == 0);
                fd = open(path, O_WRONLY);
                assert(fd >= 0 && pwrite(fd, "Y", 1, 10) == 1);
                close(fd);
                assert(chunkfd_get(c, &ids[9], LEN, &verified, &h) == -ESTALE);
                assert(chunkstore_has(cs, &ids[9]) == 0);
                assert(chunkfd_lookup(c, &ids[9], &h) == -ENOENT);
                chunkfd_get_stats(c, &st);
                assert(st.reverified == 2 && st.changed == 1);
        }
        /* The periodic re-verification hashes open entries whatever
         * their stamp, finds a changed one and drops it. */
        {
                char hex[DIGEST_HEX_LEN + 1], path[256];
                int fd;

                verified = 0;
                assert(chunkfd_get(c, &ids[11], LEN, &verified, &h) == 0);
                chunkfd_put(c, h);
                assert(chunkfd_scrub(c, UINT64_MAX) == 0);
                digest_to_hex(&ids[11], hex);
                snprintf(path, sizeof path, "%s/chunks/%.2s/%s", dir, hex, hex);
                assert(chmod(path, 0644) == 0);
                fd = open(path, O_WRONLY);
                assert(fd >= 0 && pwrite(fd, "Z", 1, 20) == 1);
                close(fd);
                chunkfd_get_stats(c, &st);
                assert(st.changed == 1);
                assert(chunkfd_scrub(c, UINT64_MAX) == 1);
                chunkfd_get_stats(c, &st);
                assert(st.changed == 2);
                assert(chunkstore_has(cs, &ids[11]) == 0);
                assert(chunkfd_lookup(c, &ids[11], &h) == -ENOENT);
                /* A bounded pass stops early and goes on where it stopped. */
                assert(chunkfd_scrub(c, 1) == 0);
                assert(chunkfd_scrub_start(c, 1 << 20) == 0);
        }
        memset(&missing, 0x5a, sizeof missing);
        verified = 0;
        assert(chunkfd_get(c, &missing, LEN, &verified, &h) == -ENOENT);

        /* An entry stored by this process from bytes it verified
         * (chunkstore_put_verified_fd) and adopted: its first get is a
         * hit, no open and no hash; the fd reads the bytes; a second put
         * of the same entry gives no fd; written afterwards, it is hashed
         * again and dropped like any other. */
        {
                struct digest id;
                struct chunkfd_stats st0;
                char hex[DIGEST_HEX_LEN + 1], path[256];
                int fd;

                memset(buf, 0xa7, LEN);
                digest_compute(buf, LEN, &id);
                chunkfd_get_stats(c, &st0);
                assert(chunkstore_put_verified_fd(cs, &id, buf, LEN, &fd) == 0 && fd >= 0);
                chunkfd_adopt(c, &id, fd);
                assert(chunkstore_put_verified_fd(cs, &id, buf, LEN, &fd) == 0 && fd == -EBADF);
                verified = 0;
                assert(chunkfd_get(c, &id, LEN, &verified, &h) == 0 && verified);
                assert(pread(chunkfd_fd(h), got, LEN, 0) == LEN && memcmp(got, buf, LEN) == 0);
                assert((fcntl(chunkfd_fd(h), F_GETFL) & O_ACCMODE) == O_RDONLY);
                chunkfd_put(c, h);
                chunkfd_get_stats(c, &st);
                assert(st.adopted == st0.adopted + 1 && st.opens == st0.opens && st.verified == st0.verified);
                digest_to_hex(&id, hex);
                snprintf(path, sizeof path, "%s/chunks/%.2s/%s", dir, hex, hex);
                assert(chmod(path, 0644) == 0);
                fd = open(path, O_WRONLY);
                assert(fd >= 0 && pwrite(fd, "x", 1, 7) == 1);
                close(fd);
                assert(chunkfd_get(c, &id, LEN, &verified, &h) == -ESTALE);
                assert(chunkstore_has(cs, &id) == 0);
        }

        chunkfd_cache_free(c);
        chunkstore_free(cs);

        /* A bounded store closes what it evicts in the fd cache: the
         * blocks of evicted entries are freed, not held by open fds. */
        {
                struct chunkstore_stats ss;
                uint64_t used, max;

                assert(chunkstore_open(dir, 24 * LEN, &cs) == 0);
                assert(chunkfd_cache_new(cs, 1024, &c) == 0);
                for (int i = 0; i < N; i++) {
                        fill(buf, i);
                        assert(chunkstore_put(cs, &ids[i], buf, LEN) == 0);
                        verified = 0;
                        assert(chunkfd_get(c, &ids[i], LEN, &verified, &h) == 0);
                        chunkfd_put(c, h);
                }
                assert(chunkstore_stats(cs, &ss) == 0);
                chunkfd_get_stats(c, &st);
                chunkstore_usage(cs, &used, &max);
                assert(ss.disk_bytes <= max && used <= max);
                /* Only the entries still in the store are open. */
                assert(st.open <= ss.entries);
                chunkfd_cache_free(c);
                chunkstore_free(cs);
        }
        {
                char cmd[300];
                snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
                assert(system(cmd) == 0);
        }
        printf("chunkfd: ok\n");
        return 0;
}
