/* SPDX-License-Identifier: Apache-2.0 */
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"

ssize_t read_full(int fd, void *buf, size_t len) {
        size_t done = 0;

        while (done < len) {
                ssize_t n = read(fd, (char *) buf + done, len - done);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        break;
                done += (size_t) n;
        }
        return (ssize_t) done;
}

ssize_t pread_full(int fd, void *buf, size_t len, uint64_t off) {
        size_t done = 0;

        while (done < len) {
                ssize_t n = pread(fd, (char *) buf + done, len - done, (off_t) (off + done));
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        break;
                done += (size_t) n;
        }
        return (ssize_t) done;
}

int write_all(int fd, const void *buf, size_t len) {
        size_t done = 0;

        while (done < len) {
                ssize_t n = write(fd, (const char *) buf + done, len - done);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                done += (size_t) n;
        }
        return 0;
}

int pwrite_all(int fd, const void *buf, size_t len, uint64_t off) {
        size_t done = 0;

        while (done < len) {
                ssize_t n = pwrite(fd, (const char *) buf + done, len - done, (off_t) (off + done));
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                done += (size_t) n;
        }
        return 0;
}

int read_file_all(int dirfd, const char *path, size_t max, char **ret_buf, size_t *ret_len) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *buf = NULL;
        size_t len = 0, cap;
        struct stat st;

        fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EINVAL;
        if ((uint64_t) st.st_size > max)
                return -EFBIG;
        /* Read to EOF rather than trusting st_size: files in /proc and
         * /sys report 0 and the file may change under us. */
        cap = (size_t) st.st_size + 1;
        if (cap < 4096)
                cap = 4096;
        for (;;) {
                ssize_t n;

                if (len + 1 >= cap) {
                        char *b;

                        if (cap > max)
                                return -EFBIG;
                        cap = MIN(cap * 2, max + 2);
                        b = realloc(buf, cap);
                        if (!b)
                                return -ENOMEM;
                        buf = b;
                } else if (!buf) {
                        buf = malloc(cap);
                        if (!buf)
                                return -ENOMEM;
                }
                n = read(fd, buf + len, cap - 1 - len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        break;
                len += (size_t) n;
                if (len > max)
                        return -EFBIG;
        }
        buf[len] = 0;
        *ret_buf = TAKE_PTR(buf);
        if (ret_len)
                *ret_len = len;
        return 0;
}

void tmp_suffix(char *buf, size_t len) {
        uint64_t r = 0;

        (void) random_bytes(&r, sizeof r);
        snprintf(buf, len, ".tmp.%d.%016llx", (int) getpid(), (unsigned long long) r);
}

int write_file_atomic(int dirfd, const char *path, const void *buf, size_t len, mode_t mode) {
        return write_file_atomic_full(dirfd, path, buf, len, mode, true);
}

int write_file_atomic_full(int dirfd, const char *path, const void *buf, size_t len, mode_t mode, bool sync) {
        char tmp[4096], sfx[48];
        _cleanup_close_ int fd = -EBADF;
        int r;

        tmp_suffix(sfx, sizeof sfx);
        if (snprintf(tmp, sizeof tmp, "%s%s", path, sfx) >= (int) sizeof tmp)
                return -ENAMETOOLONG;
        fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
        if (fd < 0)
                return -errno;
        r = write_all(fd, buf, len);
        if (r < 0)
                goto out_unlink;
        if ((sync && fsync(fd) < 0) || renameat(dirfd, tmp, dirfd, path) < 0) {
                r = -errno;
                goto out_unlink;
        }
        return 0;
out_unlink:
        (void) unlinkat(dirfd, tmp, 0);
        return r;
}

int mkdir_p(const char *path, mode_t mode) {
        _cleanup_free_ char *p = strdup(path);
        char *s;

        if (!p)
                return -ENOMEM;
        for (s = p + 1; *s; s++) {
                if (*s != '/')
                        continue;
                *s = 0;
                if (mkdir(p, mode) < 0 && errno != EEXIST)
                        return -errno;
                *s = '/';
        }
        if (mkdir(p, mode) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}

int parse_size(const char *s, uint64_t *ret) {
        char *end;
        double v;
        uint64_t mul = 1;

        if (!s || !*s || *s == '-')
                return -EINVAL;
        errno = 0;
        v = strtod(s, &end);
        if (errno || end == s || v < 0 || !isfinite(v))
                return -EINVAL;
        while (*end == ' ')
                end++;
        switch (*end) {
        case 0:
                break;
        case 'b': case 'B':
                end++;
                break;
        case 'k': case 'K':
                mul = 1ULL << 10;
                end++;
                break;
        case 'm': case 'M':
                mul = 1ULL << 20;
                end++;
                break;
        case 'g': case 'G':
                mul = 1ULL << 30;
                end++;
                break;
        case 't': case 'T':
                mul = 1ULL << 40;
                end++;
                break;
        default:
                return -EINVAL;
        }
        if (mul > 1) {
                if (*end == 'i')
                        end++;
                if (*end == 'B' || *end == 'b')
                        end++;
        }
        if (*end)
                return -EINVAL;
        if (v * (double) mul >= 18446744073709551615.0)
                return -ERANGE;
        if (mul == 1 && v != (double) (uint64_t) v)
                return -EINVAL;
        *ret = (uint64_t) (v * (double) mul);
        return 0;
}

const char *format_size(uint64_t n, char *buf, size_t len) {
        static const char *units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
        double v = (double) n;
        unsigned u = 0;

        while (v >= 1024 && u + 1 < ARRAY_SIZE(units)) {
                v /= 1024;
                u++;
        }
        if (u == 0)
                snprintf(buf, len, "%llu B", (unsigned long long) n);
        else
                snprintf(buf, len, "%.1f %s", v, units[u]);
        return buf;
}

uint64_t now_ns(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000ULL + (uint64_t) ts.tv_nsec;
}

bool buf_is_zero(const void *buf, size_t len) {
        const unsigned char *p = buf;
        size_t i = 0;

        /* Check the first 16 bytes byte-wise, then compare the buffer with
         * itself shifted by 16: memcmp is vectorised and fast. */
        for (; i < len && i < 16; i++)
                if (p[i])
                        return false;
        if (len <= 16)
                return true;
        return memcmp(p, p + 16, len - 16) == 0;
}

void hex_encode(const void *buf, size_t len, char *out) {
        static const char digits[] = "0123456789abcdef";
        const unsigned char *p = buf;

        for (size_t i = 0; i < len; i++) {
                out[2 * i] = digits[p[i] >> 4];
                out[2 * i + 1] = digits[p[i] & 15];
        }
        out[2 * len] = 0;
}

static int hexval(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

int hex_decode(const char *s, void *out, size_t len) {
        unsigned char *o = out;

        for (size_t i = 0; i < len; i++) {
                int hi = hexval(s[2 * i]), lo;

                if (hi < 0)
                        return -EINVAL;
                lo = hexval(s[2 * i + 1]);
                if (lo < 0)
                        return -EINVAL;
                o[i] = (unsigned char) (hi << 4 | lo);
        }
        if (s[2 * len] != 0)
                return -EINVAL;
        return 0;
}

int random_bytes(void *buf, size_t len) {
        size_t done = 0;

        while (done < len) {
                ssize_t n = getrandom((char *) buf + done, len - done, 0);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                done += (size_t) n;
        }
        return 0;
}
