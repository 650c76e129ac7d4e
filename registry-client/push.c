/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Push pipeline: worker threads read, zero-check, hash and compress chunks
 * into a ring of slots; the calling thread consumes the slots in order
 * (so packs are laid out deterministically), deduplicates and appends
 * new chunks to the pack writer (packwriter.h), which uploads each pack
 * when it is full; publish.h then stores the index, config, profile and,
 * last, the manifest.
 */
#include "push.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "chunkstore/blkindex.h"
#include "chunkstore/chunker.h"
#include "chunkstore/digest-map.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "common/progress.h"
#include "common/util.h"
#include "packwriter.h"
#include "publish.h"

struct slot {
        uint64_t seq;
        bool ready;
        int err;
        bool zero;
        uint8_t *raw, *comp;
        uint32_t raw_len;
        uint32_t stored_len;
        uint8_t codec;
        struct digest d;
};

struct pipeline {
        pthread_mutex_t lock;
        pthread_cond_t cond;
        uint64_t next;          /* next position to claim */
        uint64_t consumed;      /* positions below this are consumed */
        bool stop;
        struct slot *slots;
        unsigned n_slots;
        int fd;
        const uint64_t *order;  /* logical chunk numbers, processing order */
        uint64_t n;
        uint64_t image_size;
        uint32_t chunk_size;
        enum codec codec;
        int level;
};

/* Read, zero-check, hash and compress one chunk into its slot. */
static int process_chunk(struct pipeline *p, struct slot *s, uint64_t chunk) {
        uint64_t off = chunk * p->chunk_size;
        uint32_t len = (uint32_t) MIN((uint64_t) p->chunk_size, p->image_size - off);
        ssize_t n;

        n = pread_full(p->fd, s->raw, len, off);
        if (n < 0)
                return (int) n;
        if ((size_t) n != len)
                return -EIO; /* the source shrank under us */
        s->raw_len = len;
        s->zero = buf_is_zero(s->raw, len);
        if (s->zero)
                return 0;
        digest_compute(s->raw, len, &s->d);
        s->codec = CODEC_RAW;
        s->stored_len = len;
        if (p->codec != CODEC_RAW) {
                ssize_t c = codec_compress(p->codec, p->level, s->raw, len, s->comp, codec_bound(p->chunk_size));
                /* Keep the compressed form only when it saves at least 1/32. */
                if (c > 0 && (size_t) c < len - len / 32) {
                        s->codec = (uint8_t) p->codec;
                        s->stored_len = (uint32_t) c;
                }
        }
        return 0;
}

static void *worker(void *arg) {
        struct pipeline *p = arg;

        pthread_mutex_lock(&p->lock);
        for (;;) {
                uint64_t j;
                struct slot *s;
                int r;

                if (p->stop || p->next >= p->n)
                        break;
                j = p->next++;
                s = &p->slots[j % p->n_slots];
                while (!p->stop && j >= p->consumed + p->n_slots)
                        pthread_cond_wait(&p->cond, &p->lock);
                if (p->stop)
                        break;
                pthread_mutex_unlock(&p->lock);
                r = process_chunk(p, s, p->order[j]);
                pthread_mutex_lock(&p->lock);
                s->err = r;
                s->seq = j;
                s->ready = true;
                pthread_cond_broadcast(&p->cond);
        }
        pthread_mutex_unlock(&p->lock);
        return NULL;
}

struct builder {
        struct blob_source *dst;
        const struct push_options *o;
        struct push_result *res;
        struct packwriter *pw;          /* the packs, new and from the base */
        /* growing tables */
        struct blkindex_chunk *chunks;
        uint32_t n_chunks, cap_chunks;
        uint32_t *map;
        struct digest_map *seen;        /* digest -> unique chunk */
        struct digest_map *base_seen;   /* digest -> base chunk */
        uint32_t *base_pack_map;        /* base pack -> our pack, or UINT32_MAX */
};

static int builder_add_chunk(struct builder *b, const struct blkindex_chunk *c, uint32_t *ret) {
        if (b->n_chunks == b->cap_chunks) {
                uint32_t cap = b->cap_chunks ? b->cap_chunks * 2 : 1024;
                struct blkindex_chunk *v = realloc(b->chunks, (size_t) cap * sizeof *v);
                if (!v)
                        return -ENOMEM;
                b->chunks = v;
                b->cap_chunks = cap;
        }
        if (b->n_chunks >= BLKINDEX_MAX_CHUNKS)
                return -E2BIG;
        b->chunks[b->n_chunks] = *c;
        *ret = b->n_chunks++;
        return digest_map_put(b->seen, &c->digest, *ret);
}

/* Place one processed chunk: zero, duplicate, from the base, or new. */
static int consume(struct builder *b, const struct slot *s, uint64_t chunk) {
        struct blkindex_chunk c = { 0 };
        int64_t k;
        uint32_t idx;
        int r;

        if (s->zero) {
                b->map[chunk] = BLKINDEX_ZERO;
                return 0;
        }
        k = digest_map_get(b->seen, &s->d);
        if (k >= 0) {
                b->map[chunk] = (uint32_t) k;
                b->res->chunks_dedup++;
                return 0;
        }
        if (b->base_seen && (k = digest_map_get(b->base_seen, &s->d)) >= 0) {
                const struct blkindex *bx = b->o->base->index;
                const struct blkindex_chunk *bc = &bx->chunks[k];

                if (b->base_pack_map[bc->pack] == UINT32_MAX) {
                        r = packwriter_add(b->pw, &bx->packs[bc->pack], &b->base_pack_map[bc->pack]);
                        if (r < 0)
                                return r;
                }
                c = *bc;
                c.pack = b->base_pack_map[bc->pack];
                r = builder_add_chunk(b, &c, &idx);
                if (r < 0)
                        return r;
                b->map[chunk] = idx;
                b->res->chunks_from_base++;
                return 0;
        }
        c.digest = s->d;
        c.stored_len = s->stored_len;
        c.raw_len = s->raw_len;
        c.codec = s->codec;
        r = packwriter_append(b->pw, s->codec == CODEC_RAW ? s->raw : s->comp, s->stored_len, &c.pack, &c.offset);
        if (r < 0)
                return r;
        r = builder_add_chunk(b, &c, &idx);
        if (r < 0)
                return r;
        b->map[chunk] = idx;
        b->res->stored_new += s->stored_len;
        b->res->raw_new += s->raw_len;
        return 0;
}

/* Copy a base pack into the destination when it is not there already:
 * cross-repository mount where the registry offers it, else a copy. */
static int ensure_base_pack(struct builder *b, const struct blkindex_pack *pk) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *buf = NULL;
        uint64_t have, off = 0;
        int r;

        r = source_blob_stat(b->dst, &pk->digest, &have);
        if (r == 0 && have == pk->size)
                return 0;
        r = source_blob_mount(b->dst, &pk->digest, b->o->base->src->ref);
        if (r == 0)
                return 0;
        fd = memfd_create("hocus-copy", MFD_CLOEXEC);
        buf = malloc(4 << 20);
        if (fd < 0 || !buf)
                return fd < 0 ? -errno : -ENOMEM;
        while (off < pk->size) {
                size_t n = (size_t) MIN((uint64_t) (4 << 20), pk->size - off);

                r = source_blob_read(b->o->base->src, &pk->digest, off, buf, n);
                if (r < 0)
                        return r;
                r = write_all(fd, buf, n);
                if (r < 0)
                        return r;
                off += n;
        }
        /* The destination's blob_put_fd never stores bytes under a digest
         * they do not hash to (source.h), so a bad copy fails here. */
        r = publish_blob_fd(b->dst, &pk->digest, fd, pk->size);
        if (r > 0) {
                b->res->blobs_uploaded++;
                b->res->bytes_uploaded += pk->size;
        }
        return r < 0 ? r : 0;
}

/* Processing order: the profile's chunks first, then the rest ascending. */
static int build_order(const uint64_t *data, uint64_t n_data, const struct push_options *o, uint64_t n_map,
                       uint64_t **ret) {
        _cleanup_free_ uint8_t *taken = NULL;
        uint64_t *order, k = 0;

        order = malloc(MAX(n_data, 1) * sizeof *order);
        taken = calloc(MAX(n_map, 1), 1);
        if (!order || !taken) {
                free(order);
                return -ENOMEM;
        }
        if (o->n_first_chunks) {
                /* Only chunks that hold data are worth placing first. */
                _cleanup_free_ uint8_t *is_data = calloc(MAX(n_map, 1), 1);
                if (!is_data) {
                        free(order);
                        return -ENOMEM;
                }
                for (uint64_t i = 0; i < n_data; i++)
                        is_data[data[i]] = 1;
                for (uint64_t i = 0; i < o->n_first_chunks; i++) {
                        uint64_t c = o->first_chunks[i];
                        if (c < n_map && is_data[c] && !taken[c]) {
                                taken[c] = 1;
                                order[k++] = c;
                        }
                }
        }
        for (uint64_t i = 0; i < n_data; i++)
                if (!taken[data[i]])
                        order[k++] = data[i];
        *ret = order;
        return 0;
}

static int run_pipeline(struct builder *b, struct pipeline *p, unsigned threads) {
        pthread_t tids[64];
        unsigned started = 0;
        struct progress prog;
        int r = 0;

        if (threads > ARRAY_SIZE(tids))
                threads = ARRAY_SIZE(tids);
        for (; started < threads; started++)
                if (pthread_create(&tids[started], NULL, worker, p) != 0)
                        break;
        if (started == 0)
                return -EAGAIN;
        if (b->o->progress)
                progress_start(&prog, "push", p->n * (uint64_t) p->chunk_size);
        for (uint64_t j = 0; j < p->n; j++) {
                struct slot *s = &p->slots[j % p->n_slots];

                pthread_mutex_lock(&p->lock);
                while (!(s->ready && s->seq == j))
                        pthread_cond_wait(&p->cond, &p->lock);
                pthread_mutex_unlock(&p->lock);
                r = s->err;
                if (r >= 0)
                        r = consume(b, s, p->order[j]);
                pthread_mutex_lock(&p->lock);
                s->ready = false;
                p->consumed = j + 1;
                if (r < 0)
                        p->stop = true;
                pthread_cond_broadcast(&p->cond);
                pthread_mutex_unlock(&p->lock);
                if (r < 0)
                        break;
                if (b->o->progress)
                        progress_update(&prog, (j + 1) * (uint64_t) p->chunk_size);
        }
        if (b->o->progress)
                progress_end(&prog);
        for (unsigned i = 0; i < started; i++)
                pthread_join(tids[i], NULL);
        return r;
}

static int index_base(struct builder *b) {
        const struct blkindex *bx = b->o->base->index;
        int r;

        r = digest_map_new(bx->n_chunks, &b->base_seen);
        if (r < 0)
                return r;
        for (uint32_t i = 0; i < bx->n_chunks; i++) {
                r = digest_map_put(b->base_seen, &bx->chunks[i].digest, i);
                if (r < 0)
                        return r;
        }
        b->base_pack_map = malloc(MAX(bx->n_packs, 1u) * sizeof *b->base_pack_map);
        if (!b->base_pack_map)
                return -ENOMEM;
        for (uint32_t i = 0; i < bx->n_packs; i++)
                b->base_pack_map[i] = UINT32_MAX;
        return 0;
}

/* Make sure the base packs the image uses are in the destination, then
 * publish the index, config, optional profile and finally the manifest. */
static int finish(struct builder *b, uint64_t image_size, uint32_t chunk_size, uint64_t n_map, const char *tag) {
        struct blkindex x = {
                .image_size = image_size,
                .chunk_size = chunk_size,
                .n_chunks = b->n_chunks,
                .n_map = n_map,
                .chunks = b->chunks,
                .map = b->map,
        };
        struct publish_result pr;
        int r;

        if (b->base_pack_map)
                for (uint32_t i = 0; i < b->o->base->index->n_packs; i++)
                        if (b->base_pack_map[i] != UINT32_MAX) {
                                r = ensure_base_pack(b, &b->o->base->index->packs[i]);
                                if (r < 0)
                                        return r;
                        }
        x.packs = (struct blkindex_pack *) packwriter_packs(b->pw, &x.n_packs);
        r = publish_image(b->dst, tag, &x, b->o->profile, b->o->profile_len, &pr);
        if (r < 0)
                return r;
        b->res->manifest_digest = pr.manifest_digest;
        b->res->manifest_size = pr.manifest_size;
        b->res->index_size = pr.index_size;
        b->res->blobs_uploaded += pr.blobs_uploaded;
        b->res->bytes_uploaded += pr.bytes_uploaded;
        return 0;
}

int image_push(int src_fd, struct blob_source *dst, const char *tag, const struct push_options *o,
               struct push_result *ret) {
        struct push_result res = { 0 };
        struct builder b = {
                .dst = dst,
                .o = o,
                .res = &res,
        };
        struct pipeline p = { .fd = src_fd };
        _cleanup_free_ uint64_t *data = NULL, *order = NULL;
        uint32_t chunk_size = o->chunk_size ? o->chunk_size : PUSH_DEFAULT_CHUNK_SIZE;
        uint64_t image_size, n_data, n_map, t0 = now_ns();
        unsigned threads = o->threads;
        int r, q;

        if (chunk_size < BLKINDEX_MIN_CHUNK || chunk_size > BLKINDEX_MAX_CHUNK || (chunk_size & (chunk_size - 1)))
                return -EDOM;
        r = source_image_size(src_fd, &image_size);
        if (r < 0)
                return r;
        if (image_size > BLKINDEX_MAX_IMAGE)
                return -EFBIG;
        n_map = blkindex_map_len(image_size, chunk_size);
        r = chunker_data_chunks(src_fd, image_size, chunk_size, &data, &n_data, &res.data_bytes);
        if (r < 0)
                return r;
        r = build_order(data, n_data, o, n_map, &order);
        if (r < 0)
                return r;

        b.map = malloc(MAX(n_map, 1) * sizeof *b.map);
        r = b.map ? digest_map_new(n_data, &b.seen) : -ENOMEM;
        if (r >= 0)
                r = packwriter_new(dst, o->pack_size ? o->pack_size : PUSH_DEFAULT_PACK_SIZE, &b.pw);
        if (r < 0)
                goto out;
        for (uint64_t i = 0; i < n_map; i++)
                b.map[i] = BLKINDEX_ZERO;
        if (o->base) {
                r = index_base(&b);
                if (r < 0)
                        goto out;
        }

        if (threads == 0) {
                long n = sysconf(_SC_NPROCESSORS_ONLN);
                threads = n > 0 ? (unsigned) n : 1;
        }
        pthread_mutex_init(&p.lock, NULL);
        pthread_cond_init(&p.cond, NULL);
        p.order = order;
        p.n = n_data;
        p.image_size = image_size;
        p.chunk_size = chunk_size;
        p.codec = o->codec;
        p.level = o->level;
        p.n_slots = threads * 4;
        p.slots = calloc(p.n_slots, sizeof *p.slots);
        if (!p.slots) {
                r = -ENOMEM;
                goto out_pipeline;
        }
        for (unsigned i = 0; i < p.n_slots; i++) {
                p.slots[i].raw = malloc(chunk_size);
                p.slots[i].comp = malloc(codec_bound(chunk_size));
                if (!p.slots[i].raw || !p.slots[i].comp) {
                        r = -ENOMEM;
                        goto out_pipeline;
                }
        }
        r = run_pipeline(&b, &p, threads);
        q = packwriter_finish(b.pw);
        if (r >= 0)
                r = q;
        if (r >= 0) {
                struct packwriter_stats ps;

                packwriter_get_stats(b.pw, &ps);
                res.packs_new = ps.packs_new;
                res.blobs_uploaded += ps.blobs_uploaded;
                res.bytes_uploaded += ps.bytes_uploaded;
        }
        if (r >= 0)
                r = finish(&b, image_size, chunk_size, n_map, tag);
        if (r >= 0) {
                res.image_size = image_size;
                res.chunk_size = chunk_size;
                res.chunks_total = n_map;
                res.chunks_unique = b.n_chunks;
                res.chunks_zero = 0;
                for (uint64_t i = 0; i < n_map; i++)
                        res.chunks_zero += b.map[i] == BLKINDEX_ZERO;
                res.seconds = (double) (now_ns() - t0) / 1e9;
                *ret = res;
        }
out_pipeline:
        if (p.slots)
                for (unsigned i = 0; i < p.n_slots; i++) {
                        free(p.slots[i].raw);
                        free(p.slots[i].comp);
                }
        free(p.slots);
        pthread_mutex_destroy(&p.lock);
        pthread_cond_destroy(&p.cond);
out:
        packwriter_free(b.pw);
        digest_map_free(b.seen);
        digest_map_free(b.base_seen);
        free(b.base_pack_map);
        free(b.chunks);
        free(b.map);
        return r;
}
