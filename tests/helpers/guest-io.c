/* guest-io DEVICE RANDOM_READS: the read benchmark that runs inside the VM
 * (bench/vhost.sh; built static by tests/helpers/mkinitramfs.sh into the
 * initramfs). One sequential pass over DEVICE in 1 MiB O_DIRECT reads, then
 * RANDOM_READS 4 KiB O_DIRECT reads at offsets from a fixed xorshift sequence
 * (the same offsets on every run). Prints, on stdout:
 *   HOCUS-BENCH seq bytes=N ns=T
 *   HOCUS-BENCH rand4k reads=N ns=T
 * Times come from CLOCK_MONOTONIC inside the guest. Exit 1 on any error. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/fs.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define SEQ_BS (1024 * 1024)
#define RAND_BS 4096

static uint64_t now_ns(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

/* xorshift64: a fixed, cheap sequence of offsets. */
static uint64_t next_rand(uint64_t *s) {
        *s ^= *s << 13;
        *s ^= *s >> 7;
        *s ^= *s << 17;
        return *s;
}

int main(int argc, char **argv) {
        uint64_t size, done = 0, t0, seed = 0x9e3779b97f4a7c15u;
        long reads, i;
        void *buf;
        int fd;

        if (argc != 3) {
                fprintf(stderr, "usage: guest-io DEVICE RANDOM_READS\n");
                return 2;
        }
        reads = strtol(argv[2], NULL, 10);
        fd = open(argv[1], O_RDONLY | O_DIRECT);
        if (fd < 0 || ioctl(fd, BLKGETSIZE64, &size) < 0) {
                perror(argv[1]);
                return 1;
        }
        if (posix_memalign(&buf, 4096, SEQ_BS) != 0)
                return 1;

        t0 = now_ns();
        while (done < size) {
                size_t want = size - done < SEQ_BS ? (size_t) (size - done) : SEQ_BS;
                ssize_t n = pread(fd, buf, want, (off_t) done);

                if (n <= 0) {
                        perror("sequential read");
                        return 1;
                }
                done += (uint64_t) n;
        }
        printf("HOCUS-BENCH seq bytes=%llu ns=%llu\n", (unsigned long long) done,
               (unsigned long long) (now_ns() - t0));
        fflush(stdout);

        t0 = now_ns();
        for (i = 0; i < reads; i++) {
                off_t off = (off_t) (next_rand(&seed) % (size / RAND_BS)) * RAND_BS;

                if (pread(fd, buf, RAND_BS, off) != RAND_BS) {
                        perror("random read");
                        return 1;
                }
        }
        printf("HOCUS-BENCH rand4k reads=%ld ns=%llu\n", reads,
               (unsigned long long) (now_ns() - t0));
        free(buf);
        close(fd);
        return 0;
}
