/* SPDX-License-Identifier: Apache-2.0 */
/* Small I/O, parsing and time helpers. All return 0 (or a count) or -errno. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Full reads and writes, restarting on EINTR and short transfers.
 * read_full/pread_full return the number of bytes read, which is short
 * only at end of file. */
ssize_t read_full(int fd, void *buf, size_t len);
ssize_t pread_full(int fd, void *buf, size_t len, uint64_t off);
int write_all(int fd, const void *buf, size_t len);
int pwrite_all(int fd, const void *buf, size_t len, uint64_t off);

/* Read a whole (small) file into a NUL-terminated buffer, at most max bytes. */
int read_file_all(int dirfd, const char *path, size_t max, char **ret_buf, size_t *ret_len);

/* Write a file atomically: temp file in the same directory, fsync, rename. */
int write_file_atomic(int dirfd, const char *path, const void *buf, size_t len, mode_t mode);
/* The same without the fsync (sync = false): readers see the whole file or
 * none, but a crash may leave it empty or torn until the caller syncs it. */
int write_file_atomic_full(int dirfd, const char *path, const void *buf, size_t len, mode_t mode, bool sync);

/* mkdir -p, mode for new directories. */
int mkdir_p(const char *path, mode_t mode);

/* "4096", "256K", "256KiB", "1M", "1.5G", "100GiB": binary units. */
int parse_size(const char *s, uint64_t *ret);
/* "1.5 GiB"; buf must hold at least 16 bytes. Returns buf. */
const char *format_size(uint64_t n, char *buf, size_t len);

/* Monotonic clock. */
uint64_t now_ns(void);
static inline double now_s(void) {
        return (double) now_ns() / 1e9;
}

/* True when every byte of buf is zero (word at a time). */
bool buf_is_zero(const void *buf, size_t len);

/* Lowercase hex of len bytes into out (2*len+1 bytes). */
void hex_encode(const void *buf, size_t len, char *out);
/* Parse exactly 2*len hex digits. 0 or -EINVAL. */
int hex_decode(const char *s, void *out, size_t len);

/* Fill buf with random bytes from getrandom(2). */
int random_bytes(void *buf, size_t len);

/* A reasonably unique temp name suffix: ".tmp.<pid>.<random>". */
void tmp_suffix(char *buf, size_t len);
