/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The pack writer (packwriter.h). The current pack is a memfd; a full one
 * goes to the upload thread, which stores it under the digest it computes
 * in the same pass (source_blob_put_fd_unnamed) and records the digest in
 * the pack table, so writing the next pack overlaps uploading this one.
 */
#include "packwriter.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"

struct packwriter {
        struct blob_source *dst;
        uint64_t pack_size;
        /* the pack table; lock guards it (the upload thread fills in digests) */
        struct blkindex_pack *packs;
        uint32_t n_packs, cap_packs;
        /* the pack being written */
        int fd;
        uint32_t idx;
        uint64_t len;
        /* finished packs waiting for the upload thread */
        pthread_mutex_t lock;
        pthread_cond_t cond;
        pthread_t uploader;
        bool uploader_started, done;
        int err;
        struct {
                int fd;
                uint32_t idx;
                uint64_t len;
        } queue[PACKWRITER_QUEUE];
        unsigned head, n;
        struct packwriter_stats st;
};

int packwriter_new(struct blob_source *dst, uint64_t pack_size, struct packwriter **ret) {
        struct packwriter *pw = calloc(1, sizeof *pw);

        if (!pw)
                return -ENOMEM;
        pw->dst = dst;
        pw->pack_size = pack_size;
        pw->fd = -EBADF;
        pthread_mutex_init(&pw->lock, NULL);
        pthread_cond_init(&pw->cond, NULL);
        *ret = pw;
        return 0;
}

/* A new row in the pack table. */
static int table_add(struct packwriter *pw, const struct blkindex_pack *p, uint32_t *ret) {
        int r = 0;

        pthread_mutex_lock(&pw->lock);
        if (pw->n_packs >= BLKINDEX_MAX_PACKS) {
                r = -E2BIG;
                goto out;
        }
        if (pw->n_packs == pw->cap_packs) {
                uint32_t cap = pw->cap_packs ? pw->cap_packs * 2 : 16;
                struct blkindex_pack *v = realloc(pw->packs, cap * sizeof *v);
                if (!v) {
                        r = -ENOMEM;
                        goto out;
                }
                pw->packs = v;
                pw->cap_packs = cap;
        }
        pw->packs[pw->n_packs] = p ? *p : (struct blkindex_pack) { 0 };
        *ret = pw->n_packs++;
out:
        pthread_mutex_unlock(&pw->lock);
        return r;
}

int packwriter_add(struct packwriter *pw, const struct blkindex_pack *p, uint32_t *ret_pack) {
        return table_add(pw, p, ret_pack);
}

/* The upload thread: store each finished pack under the digest it hashes
 * to (one pass over its bytes), and record the digest in the table. */
static void *uploader(void *arg) {
        struct packwriter *pw = arg;

        pthread_mutex_lock(&pw->lock);
        for (;;) {
                struct digest d;
                uint32_t idx;
                uint64_t len;
                int fd, r;

                while (pw->n == 0 && !pw->done)
                        pthread_cond_wait(&pw->cond, &pw->lock);
                if (pw->n == 0)
                        break;
                fd = pw->queue[pw->head].fd;
                idx = pw->queue[pw->head].idx;
                len = pw->queue[pw->head].len;
                r = pw->err;
                pthread_mutex_unlock(&pw->lock);

                if (r >= 0)
                        r = source_blob_put_fd_unnamed(pw->dst, fd, len, &d);
                close(fd);

                pthread_mutex_lock(&pw->lock);
                if (r < 0 && !pw->err)
                        pw->err = r;
                if (r >= 0) {
                        pw->packs[idx] = (struct blkindex_pack) { .digest = d, .size = len };
                        pw->st.packs_new++;
                        if (r > 0) {
                                pw->st.blobs_uploaded++;
                                pw->st.bytes_uploaded += len;
                        }
                }
                pw->head = (pw->head + 1) % PACKWRITER_QUEUE;
                pw->n--;
                pthread_cond_broadcast(&pw->cond);
        }
        pthread_mutex_unlock(&pw->lock);
        return NULL;
}

/* Hand the current pack to the upload thread (waits while the queue is
 * full). Returns an earlier upload's error, if any. */
static int flush_pack(struct packwriter *pw) {
        int r;

        if (pw->fd < 0)
                return 0;
        if (!pw->uploader_started) {
                if (pthread_create(&pw->uploader, NULL, uploader, pw) != 0)
                        return -EAGAIN;
                pw->uploader_started = true;
        }
        pthread_mutex_lock(&pw->lock);
        while (pw->n == PACKWRITER_QUEUE)
                pthread_cond_wait(&pw->cond, &pw->lock);
        r = pw->err;
        if (r >= 0) {
                unsigned tail = (pw->head + pw->n) % PACKWRITER_QUEUE;

                pw->queue[tail].fd = TAKE_FD(pw->fd);
                pw->queue[tail].idx = pw->idx;
                pw->queue[tail].len = pw->len;
                pw->n++;
                pthread_cond_broadcast(&pw->cond);
        }
        pthread_mutex_unlock(&pw->lock);
        return r;
}

int packwriter_append(struct packwriter *pw, const void *buf, uint32_t len, uint32_t *ret_pack, uint64_t *ret_off) {
        int r;

        if (pw->fd >= 0 && pw->len + len > pw->pack_size) {
                r = flush_pack(pw);
                if (r < 0)
                        return r;
        }
        if (pw->fd < 0) {
                pw->fd = memfd_create("hocus-pack", MFD_CLOEXEC);
                if (pw->fd < 0)
                        return -errno;
                r = table_add(pw, NULL, &pw->idx);
                if (r < 0)
                        return r;
                pw->len = 0;
        }
        r = write_all(pw->fd, buf, len);
        if (r < 0)
                return r;
        *ret_pack = pw->idx;
        *ret_off = pw->len;
        pw->len += len;
        return 0;
}

/* Let the upload thread finish what is queued and exit. */
static void stop_uploader(struct packwriter *pw) {
        if (!pw->uploader_started)
                return;
        pthread_mutex_lock(&pw->lock);
        pw->done = true;
        pthread_cond_broadcast(&pw->cond);
        pthread_mutex_unlock(&pw->lock);
        pthread_join(pw->uploader, NULL);
        pw->uploader_started = false;
}

int packwriter_finish(struct packwriter *pw) {
        int r = flush_pack(pw);

        stop_uploader(pw);
        return r < 0 ? r : pw->err;
}

const struct blkindex_pack *packwriter_packs(const struct packwriter *pw, uint32_t *ret_n) {
        *ret_n = pw->n_packs;
        return pw->packs;
}

void packwriter_get_stats(const struct packwriter *pw, struct packwriter_stats *ret) {
        *ret = pw->st;
}

void packwriter_free(struct packwriter *pw) {
        if (!pw)
                return;
        stop_uploader(pw);
        while (pw->n) { /* never started: close what was queued */
                close(pw->queue[pw->head].fd);
                pw->head = (pw->head + 1) % PACKWRITER_QUEUE;
                pw->n--;
        }
        if (pw->fd >= 0)
                close(pw->fd);
        pthread_mutex_destroy(&pw->lock);
        pthread_cond_destroy(&pw->cond);
        free(pw->packs);
        free(pw);
}
