/* SPDX-License-Identifier: Apache-2.0 */
#include "overlay.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"

#define HEADER_SIZE 4096u
#define HEADER_FIELDS 80u               /* bytes covered by the checksum */
#define MAP_PAGE 4096u
#define WORDS_PER_PAGE (MAP_PAGE / 8)
#define BLOCKS_PER_WORD 32u
#define DATA_ALIGN (1u << 20)
#define N_STRIPES 256u
#define PATTERN_DATA UINT64_C(0x5555555555555555)
#define PATTERN_ZERO UINT64_C(0xAAAAAAAAAAAAAAAA)

struct overlay {
        char *path;
        int fd;
        uint64_t size;
        uint64_t nblocks;
        uint64_t map_offset, map_len, data_offset;
        struct digest image;

        uint64_t *map;                  /* map_len bytes, anonymous mapping */
        uint64_t map_words;
        uint64_t npages;
        uint64_t *dirty;                /* one bit per map page */

        pthread_mutex_t stripes[N_STRIPES];
        pthread_mutex_t flush_lock;
        uint64_t gen;                   /* atomic: bumped by every change */
        uint64_t flushed_gen;           /* under flush_lock */

        uint64_t n_data, n_zero, n_flushes;     /* atomic */
};

/* The layout for an image of `size` bytes. */
static void layout(uint64_t size, uint64_t *nblocks, uint64_t *map_offset, uint64_t *map_len,
                   uint64_t *data_offset) {
        uint64_t words;

        *nblocks = DIV_ROUND_UP(size, OVERLAY_BLOCK_SIZE);
        words = DIV_ROUND_UP(*nblocks, BLOCKS_PER_WORD);
        *map_offset = HEADER_SIZE;
        *map_len = DIV_ROUND_UP(words * 8, MAP_PAGE) * MAP_PAGE;
        if (*map_len == 0)
                *map_len = MAP_PAGE;
        *data_offset = DIV_ROUND_UP(*map_offset + *map_len, DATA_ALIGN) * DATA_ALIGN;
}

static void header_encode(const struct overlay *o, uint8_t h[HEADER_SIZE]) {
        struct digest sum;
        uint32_t v32;
        uint64_t v64;

        memset(h, 0, HEADER_SIZE);
        memcpy(h, OVERLAY_MAGIC, 8);
        v32 = htole32(OVERLAY_VERSION);
        memcpy(h + 8, &v32, 4);
        v32 = htole32(OVERLAY_BLOCK_SIZE);
        memcpy(h + 12, &v32, 4);
        v64 = htole64(o->size);
        memcpy(h + 16, &v64, 8);
        v64 = htole64(o->map_offset);
        memcpy(h + 24, &v64, 8);
        v64 = htole64(o->map_len);
        memcpy(h + 32, &v64, 8);
        v64 = htole64(o->data_offset);
        memcpy(h + 40, &v64, 8);
        memcpy(h + 48, o->image.b, DIGEST_LEN);
        digest_compute(h, HEADER_FIELDS, &sum);
        memcpy(h + HEADER_FIELDS, sum.b, DIGEST_LEN);
}

/* Check a header against what this overlay expects. */
static int header_check(const struct overlay *o, const uint8_t h[HEADER_SIZE], char *err, size_t errlen) {
        struct digest sum, image;
        uint32_t version, bs;
        uint64_t size, mo, ml, dof;
        char a[DIGEST_STRING_MAX], b[DIGEST_STRING_MAX];

        if (memcmp(h, OVERLAY_MAGIC, 8) != 0)
                return err_set(err, errlen, -EBADMSG, "not a hocus-blk overlay (bad magic)");
        digest_compute(h, HEADER_FIELDS, &sum);
        if (memcmp(h + HEADER_FIELDS, sum.b, DIGEST_LEN) != 0)
                return err_set(err, errlen, -EBADMSG, "overlay header is damaged (checksum mismatch)");
        memcpy(&version, h + 8, 4);
        memcpy(&bs, h + 12, 4);
        memcpy(&size, h + 16, 8);
        memcpy(&mo, h + 24, 8);
        memcpy(&ml, h + 32, 8);
        memcpy(&dof, h + 40, 8);
        memcpy(image.b, h + 48, DIGEST_LEN);
        if (le32toh(version) != OVERLAY_VERSION)
                return err_set(err, errlen, -EPROTONOSUPPORT, "overlay version %u is not supported",
                               le32toh(version));
        if (le32toh(bs) != OVERLAY_BLOCK_SIZE)
                return err_set(err, errlen, -EPROTONOSUPPORT, "overlay block size %u is not supported", le32toh(bs));
        if (!digest_equal(&image, &o->image))
                return err_set(err, errlen, -EMEDIUMTYPE, "overlay belongs to image %s, not %s",
                               digest_to_string(&image, a), digest_to_string(&o->image, b));
        if (le64toh(size) != o->size)
                return err_set(err, errlen, -EMEDIUMTYPE, "overlay is for %llu bytes, the image has %llu",
                               (unsigned long long) le64toh(size), (unsigned long long) o->size);
        if (le64toh(mo) != o->map_offset || le64toh(ml) != o->map_len || le64toh(dof) != o->data_offset)
                return err_set(err, errlen, -EBADMSG, "overlay layout does not match its size");
        return 0;
}

static inline unsigned get_state(const struct overlay *o, uint64_t b) {
        uint64_t w = __atomic_load_n(&o->map[b / BLOCKS_PER_WORD], __ATOMIC_ACQUIRE);

        return (unsigned) (w >> (2 * (b % BLOCKS_PER_WORD))) & 3;
}

static inline void mark_dirty(struct overlay *o, uint64_t word) {
        uint64_t page = word / WORDS_PER_PAGE;

        __atomic_fetch_or(&o->dirty[page / 64], UINT64_C(1) << (page % 64), __ATOMIC_RELEASE);
}

static void account(struct overlay *o, uint64_t old, uint64_t new) {
        int64_t dd = (int64_t) __builtin_popcountll(new & PATTERN_DATA) - __builtin_popcountll(old & PATTERN_DATA);
        int64_t dz = (int64_t) __builtin_popcountll(new & PATTERN_ZERO) - __builtin_popcountll(old & PATTERN_ZERO);

        if (dd)
                __atomic_fetch_add(&o->n_data, (uint64_t) dd, __ATOMIC_RELAXED);
        if (dz)
                __atomic_fetch_add(&o->n_zero, (uint64_t) dz, __ATOMIC_RELAXED);
}

/* Set blocks [b0, b1) to state s: whole words by exchange, the rest by
 * compare-and-swap, so a reader never sees an intermediate state. */
static void set_range(struct overlay *o, uint64_t b0, uint64_t b1, unsigned s) {
        uint64_t pattern = s == OVERLAY_DATA ? PATTERN_DATA : s == OVERLAY_ZERO ? PATTERN_ZERO : 0;

        while (b0 < b1) {
                uint64_t wi = b0 / BLOCKS_PER_WORD, first = b0 % BLOCKS_PER_WORD;
                uint64_t n = MIN(b1 - b0, BLOCKS_PER_WORD - first);
                uint64_t mask = n == BLOCKS_PER_WORD ? UINT64_MAX : ((UINT64_C(1) << (2 * n)) - 1) << (2 * first);
                uint64_t old = __atomic_load_n(&o->map[wi], __ATOMIC_RELAXED), new;

                do
                        new = (old & ~mask) | (pattern & mask);
                while (!__atomic_compare_exchange_n(&o->map[wi], &old, new, false, __ATOMIC_ACQ_REL,
                                                    __ATOMIC_RELAXED));
                if (new != old) {
                        account(o, old, new);
                        mark_dirty(o, wi);
                }
                b0 += n;
        }
}

const char *overlay_path(const struct overlay *o) {
        return o->path;
}

uint64_t overlay_size(const struct overlay *o) {
        return o->size;
}

void overlay_get_stats(struct overlay *o, struct overlay_stats *ret) {
        ret->blocks_data = __atomic_load_n(&o->n_data, __ATOMIC_RELAXED);
        ret->blocks_zero = __atomic_load_n(&o->n_zero, __ATOMIC_RELAXED);
        ret->flushes = __atomic_load_n(&o->n_flushes, __ATOMIC_RELAXED);
}

/* Read the on-disk map into memory, touching only non-zero pages (an
 * untouched page of the anonymous mapping costs no memory). */
static int load_map(struct overlay *o, char *err, size_t errlen) {
        _cleanup_free_ uint8_t *buf = NULL;
        const size_t step = 256 * MAP_PAGE;

        buf = malloc(step);
        if (!buf)
                return -ENOMEM;
        for (uint64_t pos = 0; pos < o->map_len; pos += step) {
                size_t n = (size_t) MIN(step, o->map_len - pos);
                ssize_t got = pread_full(o->fd, buf, n, o->map_offset + pos);

                if (got < 0)
                        return err_set(err, errlen, (int) got, "cannot read the overlay map: %s", strerror((int) -got));
                if ((size_t) got != n)
                        return err_set(err, errlen, -EBADMSG, "overlay file is truncated");
                for (size_t p = 0; p < n; p += MAP_PAGE) {
                        if (buf_is_zero(buf + p, MAP_PAGE))
                                continue;
                        for (size_t i = 0; i < WORDS_PER_PAGE; i++) {
                                uint64_t w, wi = (pos + p) / 8 + i;

                                memcpy(&w, buf + p + i * 8, 8);
                                w = le64toh(w);
                                /* State 3 is invalid; so is anything past the last block. */
                                if ((w & PATTERN_DATA) & ((w & PATTERN_ZERO) >> 1))
                                        return err_set(err, errlen, -EBADMSG, "overlay map is damaged (invalid state)");
                                if (w && wi * BLOCKS_PER_WORD >= o->nblocks)
                                        return err_set(err, errlen, -EBADMSG, "overlay map is damaged (blocks past the end)");
                                if (wi >= o->map_words)
                                        continue;
                                if (w) {
                                        o->map[wi] = w;
                                        account(o, 0, w);
                                }
                        }
                }
        }
        return 0;
}

static struct overlay *overlay_alloc(const char *path, uint64_t size, const struct digest *image) {
        struct overlay *o = calloc(1, sizeof *o);

        if (!o)
                return NULL;
        o->fd = -EBADF;
        o->size = size;
        o->image = *image;
        layout(size, &o->nblocks, &o->map_offset, &o->map_len, &o->data_offset);
        o->map_words = o->map_len / 8;
        o->npages = o->map_len / MAP_PAGE;
        for (unsigned i = 0; i < N_STRIPES; i++)
                pthread_mutex_init(&o->stripes[i], NULL);
        pthread_mutex_init(&o->flush_lock, NULL);
        o->path = strdup(path);
        o->map = mmap(NULL, o->map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (o->map == MAP_FAILED)
                o->map = NULL;
        o->dirty = calloc(DIV_ROUND_UP(o->npages, 64), sizeof(uint64_t));
        if (!o->path || !o->map || !o->dirty) {
                overlay_close(o);
                return NULL;
        }
        return o;
}

void overlay_close(struct overlay *o) {
        if (!o)
                return;
        if (o->fd >= 0)
                close(o->fd);
        if (o->map)
                munmap(o->map, o->map_len);
        for (unsigned i = 0; i < N_STRIPES; i++)
                pthread_mutex_destroy(&o->stripes[i]);
        pthread_mutex_destroy(&o->flush_lock);
        free(o->dirty);
        free(o->path);
        free(o);
}

static int fsync_parent(const char *path) {
        _cleanup_free_ char *copy = strdup(path);
        _cleanup_close_ int dfd = -EBADF;

        if (!copy)
                return -ENOMEM;
        dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return -errno;
        return fsync(dfd) < 0 ? -errno : 0;
}

/* Create a new overlay file under a temp name and link it into place, so
 * a crash never leaves a half-made overlay at path. Returns a locked fd;
 * -EEXIST if someone else created path meanwhile. */
static int create_file(struct overlay *o, char *err, size_t errlen) {
        _cleanup_free_ char *tmp = NULL;
        _cleanup_close_ int fd = -EBADF;
        uint8_t h[HEADER_SIZE];
        char sfx[48];
        int r;

        tmp_suffix(sfx, sizeof sfx);
        if (asprintf(&tmp, "%s%s", o->path, sfx) < 0)
                return -ENOMEM;
        fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0)
                return err_set(err, errlen, -errno, "cannot create the overlay '%s': %m", o->path);
        header_encode(o, h);
        r = pwrite_all(fd, h, sizeof h, 0);
        if (r >= 0 && ftruncate(fd, (off_t) (o->data_offset + o->size)) < 0)
                r = -errno;
        if (r >= 0 && fsync(fd) < 0)
                r = -errno;
        if (r >= 0 && flock(fd, LOCK_EX | LOCK_NB) < 0)
                r = -errno;
        if (r >= 0 && link(tmp, o->path) < 0)
                r = -errno;
        (void) unlink(tmp);
        if (r == -EEXIST)
                return r;
        if (r < 0)
                return err_set(err, errlen, r, "cannot create overlay '%s': %s", o->path, strerror(-r));
        r = fsync_parent(o->path);
        if (r < 0)
                return err_set(err, errlen, r, "cannot sync the directory of '%s': %s", o->path, strerror(-r));
        return TAKE_FD(fd);
}

static int open_existing(struct overlay *o, int fd, char *err, size_t errlen) {
        uint8_t h[HEADER_SIZE];
        struct stat st;
        ssize_t n;
        int r;

        if (flock(fd, LOCK_EX | LOCK_NB) < 0)
                return err_set(err, errlen, errno == EWOULDBLOCK ? -EBUSY : -errno,
                               "overlay '%s' is in use by another export or process", o->path);
        if (fstat(fd, &st) < 0)
                return err_set(err, errlen, -errno, "cannot stat '%s': %m", o->path);
        if (!S_ISREG(st.st_mode))
                return err_set(err, errlen, -EINVAL, "'%s' is not a regular file", o->path);
        n = pread_full(fd, h, sizeof h, 0);
        if (n < 0)
                return err_set(err, errlen, (int) n, "cannot read '%s': %s", o->path, strerror((int) -n));
        if ((size_t) n < sizeof h)
                return err_set(err, errlen, -EBADMSG, "'%s' is not a hocus-blk overlay (too short)", o->path);
        r = header_check(o, h, err, errlen);
        if (r < 0)
                return r;
        if ((uint64_t) st.st_size < o->data_offset + o->size)
                return err_set(err, errlen, -EBADMSG, "overlay '%s' is truncated (%llu bytes, want %llu)", o->path,
                               (unsigned long long) st.st_size, (unsigned long long) (o->data_offset + o->size));
        return 0;
}

int overlay_open(const char *path, uint64_t size, const struct digest *image, struct overlay **ret, char *err,
                 size_t errlen) {
        struct overlay *o;
        int r;

        if (size == 0)
                return err_set(err, errlen, -EINVAL, "cannot make an overlay for an empty image");
        o = overlay_alloc(path, size, image);
        if (!o)
                return -ENOMEM;
        for (int attempt = 0; attempt < 3; attempt++) {
                o->fd = open(path, O_RDWR | O_CLOEXEC);
                if (o->fd >= 0) {
                        r = open_existing(o, o->fd, err, errlen);
                        if (r >= 0)
                                r = load_map(o, err, errlen);
                        goto done;
                }
                if (errno != ENOENT) {
                        r = err_set(err, errlen, -errno, "cannot open overlay '%s': %m", path);
                        goto done;
                }
                r = create_file(o, err, errlen);
                if (r == -EEXIST)
                        continue;
                if (r >= 0) {
                        o->fd = r;
                        r = 0;
                        log_debug("Created overlay %s for %llu bytes", path, (unsigned long long) size);
                }
                goto done;
        }
        r = err_set(err, errlen, -EBUSY, "overlay '%s' keeps changing under us", path);
done:
        if (r < 0) {
                overlay_close(o);
                return r;
        }
        *ret = o;
        return 0;
}

enum overlay_state overlay_state_run(struct overlay *o, uint64_t off, uint64_t len, uint64_t *ret_len) {
        uint64_t end = MIN(off + len, o->size);
        uint64_t b = off / OVERLAY_BLOCK_SIZE, next = b + 1;
        unsigned s = get_state(o, b);
        uint64_t pattern = s == OVERLAY_DATA ? PATTERN_DATA : s == OVERLAY_ZERO ? PATTERN_ZERO : 0;

        while (next * OVERLAY_BLOCK_SIZE < end) {
                if (next % BLOCKS_PER_WORD == 0 &&
                    __atomic_load_n(&o->map[next / BLOCKS_PER_WORD], __ATOMIC_ACQUIRE) == pattern) {
                        next += BLOCKS_PER_WORD;
                        continue;
                }
                if (get_state(o, next) != s)
                        break;
                next++;
        }
        *ret_len = MIN(next * OVERLAY_BLOCK_SIZE, end) - off;
        return (enum overlay_state) s;
}

int overlay_read(struct overlay *o, void *buf, size_t len, uint64_t off) {
        ssize_t n = pread_full(o->fd, buf, len, o->data_offset + off);

        if (n < 0)
                return (int) n;
        if ((size_t) n < len)
                memset((char *) buf + n, 0, len - (size_t) n); /* sparse tail */
        return 0;
}

int overlay_data_fd(struct overlay *o, uint64_t off, uint64_t *ret_file_off) {
        *ret_file_off = o->data_offset + off;
        return o->fd;
}

static inline uint64_t block_len(const struct overlay *o, uint64_t b) {
        return MIN((uint64_t) OVERLAY_BLOCK_SIZE, o->size - b * OVERLAY_BLOCK_SIZE);
}

/* Write n bytes (src, or zeroes when src is NULL) at boff inside block b,
 * which the write does not cover whole. A block that is not DATA yet is
 * rewritten whole: its other bytes come from below (ABSENT) or are zero
 * (ZERO), so whatever an earlier lost write left in the file never shows. */
static int write_partial(struct overlay *o, uint64_t b, size_t boff, size_t n, const void *src,
                         overlay_below_fn below, void *userdata) {
        pthread_mutex_t *lock = &o->stripes[b % N_STRIPES];
        uint8_t blk[OVERLAY_BLOCK_SIZE];
        uint64_t blen = block_len(o, b), foff = o->data_offset + b * OVERLAY_BLOCK_SIZE;
        unsigned s;
        int r;

        pthread_mutex_lock(lock);
        s = get_state(o, b);
        if (s == OVERLAY_DATA) {
                if (src) {
                        r = pwrite_all(o->fd, src, n, foff + boff);
                } else {
                        memset(blk, 0, n);
                        r = pwrite_all(o->fd, blk, n, foff + boff);
                }
                goto out;
        }
        if (s == OVERLAY_ABSENT) {
                r = below(userdata, blk, blen, b * OVERLAY_BLOCK_SIZE);
                if (r < 0)
                        goto out;
        } else {
                memset(blk, 0, blen);
        }
        if (src)
                memcpy(blk + boff, src, n);
        else
                memset(blk + boff, 0, n);
        r = pwrite_all(o->fd, blk, blen, foff);
        if (r >= 0)
                set_range(o, b, b + 1, OVERLAY_DATA);
out:
        pthread_mutex_unlock(lock);
        return r;
}

/* Release (or, with no_hole, allocate) the file space of blocks [b0, b1).
 * Space only: ZERO blocks are never read from the file. */
static int zero_space(struct overlay *o, uint64_t b0, uint64_t b1, bool no_hole) {
        off_t off = (off_t) (o->data_offset + b0 * OVERLAY_BLOCK_SIZE);
        off_t len = (off_t) ((b1 - b0) * OVERLAY_BLOCK_SIZE);

        if (no_hole) {
                if (fallocate(o->fd, FALLOC_FL_KEEP_SIZE, off, len) < 0 && errno != EOPNOTSUPP)
                        return -errno;
                return 0;
        }
        if (fallocate(o->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len) < 0)
                log_debug("overlay: cannot punch a hole in %s: %m", o->path);
        return 0;
}

/* Split [off, off+len) into a partial head block, whole blocks and a
 * partial tail block. A block is whole when the range covers it up to
 * the end of the image. */
struct split {
        uint64_t head_b, head_off, head_len;    /* head_len 0: none */
        uint64_t mid_b0, mid_b1;                /* whole blocks */
        uint64_t tail_b, tail_len;              /* tail_len 0: none */
};

static void split_range(const struct overlay *o, uint64_t off, uint64_t len, struct split *s) {
        uint64_t end = off + len;
        uint64_t b = off / OVERLAY_BLOCK_SIZE;

        memset(s, 0, sizeof *s);
        if (off % OVERLAY_BLOCK_SIZE) {
                uint64_t bend = MIN((b + 1) * OVERLAY_BLOCK_SIZE, o->size);
                s->head_b = b;
                s->head_off = off % OVERLAY_BLOCK_SIZE;
                s->head_len = MIN(end, bend) - off;
                off += s->head_len;
                b++;
        }
        s->mid_b0 = s->mid_b1 = b;
        while (off < end) {
                uint64_t bend = MIN((b + 1) * OVERLAY_BLOCK_SIZE, o->size);
                if (end < bend) {
                        s->tail_b = b;
                        s->tail_len = end - off;
                        break;
                }
                off = bend;
                b++;
                s->mid_b1 = b;
        }
}

static int finish(struct overlay *o, bool fua) {
        __atomic_fetch_add(&o->gen, 1, __ATOMIC_RELEASE);
        return fua ? overlay_flush(o) : 0;
}

int overlay_write(struct overlay *o, const void *buf, size_t len, uint64_t off, bool fua, overlay_below_fn below,
                  void *userdata) {
        const uint8_t *p = buf;
        struct split s;
        int r;

        if (off > o->size || len > o->size - off)
                return -ENOSPC;
        if (len == 0)
                return fua ? overlay_flush(o) : 0;
        split_range(o, off, len, &s);
        if (s.head_len) {
                r = write_partial(o, s.head_b, s.head_off, s.head_len, p, below, userdata);
                if (r < 0)
                        return r;
                p += s.head_len;
        }
        if (s.mid_b1 > s.mid_b0) {
                uint64_t n = MIN(s.mid_b1 * OVERLAY_BLOCK_SIZE, o->size) - s.mid_b0 * OVERLAY_BLOCK_SIZE;
                r = pwrite_all(o->fd, p, n, o->data_offset + s.mid_b0 * OVERLAY_BLOCK_SIZE);
                if (r < 0)
                        return r;
                set_range(o, s.mid_b0, s.mid_b1, OVERLAY_DATA);
                p += n;
        }
        if (s.tail_len) {
                r = write_partial(o, s.tail_b, 0, s.tail_len, p, below, userdata);
                if (r < 0)
                        return r;
        }
        return finish(o, fua);
}

bool overlay_zero_is_fast(const struct overlay *o, uint64_t off, uint64_t len) {
        struct split s;

        if (off > o->size || len > o->size - off)
                return false;
        split_range(o, off, len, &s);
        return s.head_len == 0 && s.tail_len == 0;
}

int overlay_zero(struct overlay *o, uint64_t off, uint64_t len, bool no_hole, bool fua, overlay_below_fn below,
                 void *userdata) {
        struct split s;
        int r;

        if (off > o->size || len > o->size - off)
                return -ENOSPC;
        split_range(o, off, len, &s);
        if (s.head_len) {
                r = write_partial(o, s.head_b, s.head_off, s.head_len, NULL, below, userdata);
                if (r < 0)
                        return r;
        }
        if (s.mid_b1 > s.mid_b0) {
                set_range(o, s.mid_b0, s.mid_b1, OVERLAY_ZERO);
                r = zero_space(o, s.mid_b0, s.mid_b1, no_hole);
                if (r < 0)
                        return r;
        }
        if (s.tail_len) {
                r = write_partial(o, s.tail_b, 0, s.tail_len, NULL, below, userdata);
                if (r < 0)
                        return r;
        }
        return finish(o, fua);
}

int overlay_trim(struct overlay *o, uint64_t off, uint64_t len, bool fua) {
        struct split s;

        if (off > o->size || len > o->size - off)
                return -EINVAL;
        split_range(o, off, len, &s);
        if (s.mid_b1 > s.mid_b0) {
                set_range(o, s.mid_b0, s.mid_b1, OVERLAY_ZERO);
                (void) zero_space(o, s.mid_b0, s.mid_b1, false);
        }
        return finish(o, fua);
}

int overlay_flush(struct overlay *o) {
        _cleanup_free_ uint8_t *snap = NULL;
        _cleanup_free_ uint64_t *pages = NULL;
        uint64_t gen, n = 0;
        int r = 0;

        pthread_mutex_lock(&o->flush_lock);
        gen = __atomic_load_n(&o->gen, __ATOMIC_ACQUIRE);
        if (gen == o->flushed_gen)
                goto out;

        /* 1. Snapshot the dirty map pages. Every DATA entry in them was set
         * after its bytes were written, so step 2 makes those durable. */
        for (uint64_t i = 0; i < DIV_ROUND_UP(o->npages, 64); i++)
                n += (uint64_t) __builtin_popcountll(__atomic_load_n(&o->dirty[i], __ATOMIC_ACQUIRE));
        if (n) {
                uint64_t k = 0;

                snap = malloc(n * MAP_PAGE);
                pages = malloc(n * sizeof *pages);
                if (!snap || !pages) {
                        r = -ENOMEM;
                        goto out;
                }
                for (uint64_t i = 0; i < DIV_ROUND_UP(o->npages, 64) && k < n; i++) {
                        uint64_t bits = __atomic_exchange_n(&o->dirty[i], 0, __ATOMIC_ACQ_REL);

                        while (bits && k < n) {
                                uint64_t page = i * 64 + (uint64_t) __builtin_ctzll(bits);
                                uint8_t *dst = snap + k * MAP_PAGE;

                                bits &= bits - 1;
                                for (uint64_t w = 0; w < WORDS_PER_PAGE; w++) {
                                        uint64_t v = htole64(__atomic_load_n(&o->map[page * WORDS_PER_PAGE + w],
                                                                             __ATOMIC_ACQUIRE));
                                        memcpy(dst + w * 8, &v, 8);
                                }
                                pages[k++] = page;
                        }
                        /* Pages set dirty after the count: keep them for the next flush. */
                        if (bits)
                                __atomic_fetch_or(&o->dirty[i], bits, __ATOMIC_RELEASE);
                }
                n = k;
        }

        /* 2. The data. */
        if (fdatasync(o->fd) < 0) {
                r = -errno;
                goto redirty;
        }
        /* 3. The map, then make it durable. */
        for (uint64_t k = 0; k < n; k++) {
                r = pwrite_all(o->fd, snap + k * MAP_PAGE, MAP_PAGE, o->map_offset + pages[k] * MAP_PAGE);
                if (r < 0)
                        goto redirty;
        }
        if (n && fdatasync(o->fd) < 0) {
                r = -errno;
                goto redirty;
        }
        o->flushed_gen = gen;
        __atomic_fetch_add(&o->n_flushes, 1, __ATOMIC_RELAXED);
        goto out;
redirty:
        for (uint64_t k = 0; k < n; k++)
                __atomic_fetch_or(&o->dirty[pages[k] / 64], UINT64_C(1) << (pages[k] % 64), __ATOMIC_RELEASE);
out:
        pthread_mutex_unlock(&o->flush_lock);
        return r;
}
