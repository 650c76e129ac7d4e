/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A half's buffer and its two syscalls. Two kinds, chosen per half on first
 * use:
 *  - a pipe, filled and drained with splice(2): the bytes never enter
 *    userspace (socket pages are moved, not copied), which roughly doubles
 *    the emulator's ceiling on loopback;
 *  - segments in memory with readv/writev, for a half whose bytes must be
 *    seen (the flip fault), with --copy, or when the kernel refuses a pipe
 *    that large (unprivileged users past pipe-max-size).
 * Both hold at most h->cap bytes; the offsets in struct half are the same.
 *
 * Memory follows what is in flight, not h->cap: a segment of SEG_SIZE
 * bytes is taken when a read needs it (sized by what the socket holds),
 * given back once written out, and every segment goes when the half is
 * drained. An idle or request/response connection holds a segment or
 * none, so a new connection costs no large allocation (which glibc fills
 * byte by byte under MALLOC_PERTURB_, as meson test sets it). Segments
 * given back wait in a small pool for the next read: a stream reuses the
 * same warm pages instead of growing and trimming the heap per segment.
 */
#include "linkem.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/cleanup.h"

#define SEG_SIZE (64ULL << 10)
/* Segments one readv/writev may span: a syscall moves at most 1 MiB. */
#define IOV_SEGS 17
/* Free segments kept for reuse, process-wide (linkem has one thread). */
#define POOL_MAX 64

static struct {
        void *top;              /* each free segment's first word: the next */
        size_t n;
} pool;

static char *seg_get(void) {
        void *s = pool.top;

        if (!s)
                return malloc(SEG_SIZE);
        pool.top = *(void **) s;
        pool.n--;
        return s;
}

static void seg_put(char *s) {
        if (!s)
                return;
        if (pool.n == POOL_MAX) {
                free(s);
                return;
        }
        *(void **) s = pool.top;
        pool.top = s;
        pool.n++;
}

/* The slot of the segment holding stream offset off. Bytes in flight,
 * [out, in) with in - out <= cap, span at most cap / SEG_SIZE + 2
 * segments (cap need not be a multiple), hence that many slots. */
static char **seg_slot(struct half *h, uint64_t off) {
        return &h->segs[(off / SEG_SIZE) % h->n_slots];
}

/* Bytes [from, upto) of h were written out: free the segments they
 * ended, or every segment when that drained the half. */
static void seg_release(struct half *h, uint64_t from, uint64_t upto) {
        size_t i;

        if (upto == h->in) {
                for (i = 0; i < h->n_slots; i++) {
                        seg_put(h->segs[i]);
                        h->segs[i] = NULL;
                }
                return;
        }
        for (from -= from % SEG_SIZE; from + SEG_SIZE <= upto; from += SEG_SIZE) {
                char **s = seg_slot(h, from);

                seg_put(*s);
                *s = NULL;
        }
}

/* iovecs over stream bytes [from, from + n), at most IOV_SEGS of them,
 * allocating missing segments. The count (> 0) or -ENOMEM. */
static int seg_iov(struct half *h, uint64_t from, uint64_t n, struct iovec *iov) {
        int k = 0;

        while (n && k < IOV_SEGS) {
                char **s = seg_slot(h, from);
                uint64_t off = from % SEG_SIZE, len = MIN(n, SEG_SIZE - off);

                if (!*s) {
                        *s = seg_get();
                        if (!*s)
                                break;
                }
                iov[k++] = (struct iovec) { *s + off, len };
                from += len;
                n -= len;
        }
        return k ? k : -ENOMEM;
}

/* Make the buffer: a pipe of cap bytes when splice is wanted and
 * possible, else the (empty) segment slots. 0 or -ENOMEM. */
static int half_io_setup(struct half *h) {
        int p[2];

        if (h->use_splice && pipe2(p, O_NONBLOCK | O_CLOEXEC) == 0) {
                if (fcntl(p[1], F_SETPIPE_SZ, (int) h->cap) >= (int) h->cap) {
                        h->pipe[0] = p[0];
                        h->pipe[1] = p[1];
                        return 0;
                }
                (void) close(p[0]);
                (void) close(p[1]);
        }
        h->use_splice = false;
        h->n_slots = h->cap / SEG_SIZE + 2;
        h->segs = calloc(h->n_slots, sizeof(*h->segs));
        return h->segs ? 0 : -ENOMEM;
}

/* Read up to max bytes from h->src into the buffer. The count, 0 at EOF,
 * -EAGAIN when the socket is drained, -ENOBUFS when it is not but the
 * pipe has no slot left (socket pages may fill a pipe's slots before its
 * byte capacity; a write will make room), or another -errno. */
ssize_t half_io_in(struct half *h, size_t max) {
        struct iovec iov[IOV_SEGS];
        int queued = 0, k, r;
        uint64_t want;
        ssize_t n;

        if (h->pipe[0] < 0 && !h->segs) {
                r = half_io_setup(h);
                if (r < 0)
                        return r;
        }
        if (h->pipe[0] >= 0) {
                n = splice(h->src, NULL, h->pipe[1], NULL, max, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
                /* EAGAIN with bytes queued on the socket means a full pipe,
                 * but only if the pipe holds something: with an empty pipe
                 * it is a packet that landed in the socket's backlog during
                 * the call, and an EPOLLIN for it is on its way. */
                if (n < 0 && errno == EAGAIN && h->in > h->out) {
                        if (ioctl(h->src, FIONREAD, &queued) == 0 && queued > 0)
                                return -ENOBUFS;
                }
                return n < 0 ? -errno : n;
        }
        /* Room for what the socket holds, and at least to the end of the
         * segment at h->in (bytes may land after the ioctl; with none, the
         * read still sees an EOF or an EAGAIN). */
        if (ioctl(h->src, FIONREAD, &queued) < 0 || queued < 0)
                queued = 0;
        want = MAX((uint64_t) queued, SEG_SIZE - h->in % SEG_SIZE);
        k = seg_iov(h, h->in, MIN(max, want), iov);
        if (k < 0)
                return k;
        n = readv(h->src, iov, k);
        if (n <= 0 && h->out == h->in)
                seg_release(h, h->in, h->in);   /* drop a segment made for nothing */
        return n < 0 ? -errno : n;
}

/* Write up to max buffered bytes to h->dst, freeing the segments written
 * out. The count or -errno (-EAGAIN when the socket is full). */
ssize_t half_io_out(struct half *h, size_t max) {
        struct iovec iov[IOV_SEGS];
        ssize_t n;
        int k;

        if (h->pipe[0] >= 0) {
                n = splice(h->pipe[0], NULL, h->dst, NULL, max, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
                return n < 0 ? -errno : n;
        }
        k = seg_iov(h, h->out, max, iov);
        if (k < 0)
                return k;
        n = writev(h->dst, iov, k);
        if (n < 0)
                return -errno;
        seg_release(h, h->out, h->out + (uint64_t) n);
        return n;
}

/* The byte at stream offset off, which must be buffered in memory. */
char *half_io_byte(struct half *h, uint64_t off) {
        return *seg_slot(h, off) + off % SEG_SIZE;
}

/* Free the pool of spare segments (at exit). */
void half_io_pool_free(void) {
        while (pool.top) {
                void *s = pool.top;

                pool.top = *(void **) s;
                free(s);
        }
        pool.n = 0;
}

/* Release the buffer. Safe to call twice. */
void half_io_free(struct half *h) {
        size_t i;

        closep(&h->pipe[0]);
        closep(&h->pipe[1]);
        h->pipe[0] = h->pipe[1] = -EBADF;
        for (i = 0; h->segs && i < h->n_slots; i++)
                seg_put(h->segs[i]);
        free(h->segs);
        h->segs = NULL;
}
