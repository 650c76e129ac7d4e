/* SPDX-License-Identifier: Apache-2.0 */
#include "export.h"
#include "export-internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "blockd/origin.h"
#include "blockd/overlay.h"
#include "blockd/profile-learn.h"
#include "blockd/profile-rec.h"
#include "blockd/readahead.h"
#include "blockd/sched.h"
#include "chunkstore/coalesce.h"
#include "common/cleanup.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "registry-client/image.h"

bool export_name_valid(const char *name) {
        size_t n = strlen(name);

        if (n == 0 || n > 128 || name[0] == '.' || name[0] == '-')
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = name[i];
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                      c == '_' || c == '+' || c == '-'))
                        return false;
        }
        return true;
}

/* The attach ends: keep what it learned if it was cold (it fetched). */
static void learn_finish(struct export *e) {
        struct sched_export_stats ss;
        struct profile *p = NULL;
        uint64_t fetched = 0;

        __atomic_store_n(&e->learning, false, __ATOMIC_RELEASE);
        sched_export_get_stats(e->se, &ss);
        for (int c = 0; c < _SCHED_CLASS_MAX; c++)
                if (c != SCHED_BACKGROUND)
                        fetched += ss.chunks[c];
        if (profile_rec_snapshot(e->learn_rec, &p) >= 0)
                profile_learn_save(e->env.store, &e->img->manifest_digest, e->name, p, fetched);
        profile_free(p);
}

static void export_free(struct export *e) {
        if (!e)
                return;
        /* Before the scheduler forgets what this attach fetched. */
        if (e->learn_rec && e->se)
                learn_finish(e);
        /* Before the image and source it fetches from go. */
        sched_export_remove(e->se);
        sched_free(e->own_sched);
        profile_rec_free(e->rec);
        profile_rec_free(e->learn_rec);
        readahead_free(e->ra);
        coalesce_order_free(e->po);     /* after both that borrowed it */
        pthread_mutex_destroy(&e->profile_lock);
        if (e->ov) {
                int r = overlay_flush(e->ov);
                if (r < 0)
                        log_error_errno(r, "Export %s: final flush of overlay %s failed: %m", e->name,
                                        overlay_path(e->ov));
                overlay_close(e->ov);
        }
        image_free(e->img);
        source_free(e->src);
        free(e->verified);
        free(e->name);
        free(e->ref);
        free(e->vhost_user);
        free(e);
}

int export_open(const struct export_config *cfg, const struct export_env *env, struct export **ret, char *err,
                size_t errlen) {
        struct export *e;
        struct digest pin;
        char why[512] = "";
        uint64_t t0 = now_ns();
        int r;

        if (!export_name_valid(cfg->name))
                return err_set(err, errlen, -EINVAL,
                               "invalid export name '%s' (1-128 of A-Z a-z 0-9 . _ + -, not starting with . or -)",
                               cfg->name);
        e = calloc(1, sizeof *e);
        if (!e)
                return -ENOMEM;
        e->refs = 1;
        e->env = *env;
        pthread_mutex_init(&e->profile_lock, NULL);
        e->name = strdup(cfg->name);
        e->ref = strdup(cfg->ref);
        e->vhost_user = cfg->vhost_user ? strdup(cfg->vhost_user) : NULL;
        if (!e->name || !e->ref || (cfg->vhost_user && !e->vhost_user)) {
                r = -ENOMEM;
                goto fail;
        }
        if (cfg->manifest && digest_parse(cfg->manifest, &pin) < 0) {
                r = err_set(err, errlen, -EINVAL, "pinned manifest '%s' is not a sha256: digest", cfg->manifest);
                goto fail;
        }
        r = origin_open(cfg->ref, env->source, &e->src, why, sizeof why);
        if (r < 0) {
                if (r == -EINVAL && why[0])
                        err_set(err, errlen, r, "invalid reference: %s", why);
                else if (r == -EPROTONOSUPPORT)
                        err_set(err, errlen, r, "%s: this build cannot open docker:// references yet", cfg->ref);
                else
                        err_set(err, errlen, r, "cannot open '%s': %s", cfg->ref, strerror(-r));
                goto fail;
        }
        e->st.attach_connect_ns = now_ns() - t0;
        r = image_open_at(e->src, env->store, cfg->manifest ? &pin : NULL, &e->img, why, sizeof why);
        if (r < 0) {
                err_set(err, errlen, r, "%s", why[0] ? why : strerror(-r));
                goto fail;
        }
        e->x = e->img->index;
        e->st.attach_manifest_ns = e->img->manifest_ns;
        e->st.attach_index_ns = e->img->index_ns;
        e->verified = calloc((size_t) e->x->n_chunks + 1, sizeof *e->verified);
        if (!e->verified) {
                r = -ENOMEM;
                goto fail;
        }
        r = coalesce_order_new(e->x, &e->po);
        if (r < 0)
                goto fail;
        r = readahead_new(e->x, e->po, &e->ra);
        if (r < 0)
                goto fail;
        if (!e->env.sched) {
                r = sched_new(env->store, NULL, &e->own_sched);
                if (r < 0)
                        goto fail;
                e->env.sched = e->own_sched;
        }
        r = sched_export_add(e->env.sched, e->name, e->img, e->src, env->source ? env->source->max_connections : 0,
                             e->po, &e->se);
        if (r < 0)
                goto fail;
        if (cfg->overlay) {
                r = overlay_open(cfg->overlay, e->x->image_size, &e->img->manifest_digest, &e->ov, why, sizeof why);
                if (r < 0) {
                        err_set(err, errlen, r, "%s", why[0] ? why : strerror(-r));
                        goto fail;
                }
        }
        e->open_ns = t0;
        e->attached_ns = now_ns();
        e->st.attach_ns = e->attached_ns - t0;
        *ret = e;
        return 0;
fail:
        export_free(e);
        return r;
}

struct export *export_ref(struct export *e) {
        __atomic_fetch_add(&e->refs, 1, __ATOMIC_RELAXED);
        return e;
}

void export_unref(struct export *e) {
        if (e && __atomic_sub_fetch(&e->refs, 1, __ATOMIC_ACQ_REL) == 0)
                export_free(e);
}

unsigned export_refcount(const struct export *e) {
        return __atomic_load_n(&e->refs, __ATOMIC_ACQUIRE);
}

const char *export_name(const struct export *e) {
        return e->name;
}

const char *export_ref_text(const struct export *e) {
        return e->ref;
}

const char *export_vhost_user(const struct export *e) {
        return e->vhost_user;
}

const char *export_overlay_path(const struct export *e) {
        return e->ov ? overlay_path(e->ov) : NULL;
}

uint64_t export_size(const struct export *e) {
        return e->x->image_size;
}

bool export_readonly(const struct export *e) {
        return !e->ov;
}

uint32_t export_chunk_size(const struct export *e) {
        return e->x->chunk_size;
}

const struct digest *export_manifest_digest(const struct export *e) {
        return &e->img->manifest_digest;
}

struct chunkstore *export_chunkstore(struct export *e) {
        return e->env.store;
}

void export_meta_sync(struct export *e) {
        int r;

        if (!e->env.store)
                return;
        r = image_meta_sync(e->img, e->env.store);
        if (r < 0)
                log_warning_errno(r, "Export %s: syncing its manifest and index to disk failed: %m; "
                                     "after a crash they are fetched again", e->name);
}

bool export_online(struct export *e, char *why, size_t len) {
        return origin_online(e->src, why, len);
}

void export_client_add(struct export *e) {
        __atomic_fetch_add(&e->clients, 1, __ATOMIC_RELAXED);
}

void export_client_remove(struct export *e) {
        __atomic_fetch_sub(&e->clients, 1, __ATOMIC_RELAXED);
}

unsigned export_clients(const struct export *e) {
        return __atomic_load_n(&e->clients, __ATOMIC_RELAXED);
}


/* --- Reading --- */

_Static_assert(RA_MAX <= SCHED_AHEAD_MAX, "a readahead plan fits sched_demand's ahead list");

/* A read hit chunk i: when it was read ahead and reached its stream's
 * marker, the stream's next window is fetched with nobody waiting
 * (readahead on hit, readahead.h), so that a sequential reader does not
 * stall at the window's end. */
static void note_hit(struct export *e, uint64_t i) {
        struct ra_plan plan;
        struct sched_ahead ahead;

        if (!readahead_hit(e->ra, i))
                return;
        readahead_async(e->ra, i, sched_readahead_room(e->se), &plan);
        if (!plan.n)
                return;
        ahead = (struct sched_ahead) { .chunks = plan.chunks, .n = plan.n };
        if (sched_readahead(e->se, &ahead) >= 0 && ahead.fetched)
                readahead_fetched(e->ra, &plan, ahead.fetched);
}

/* One piece [off, off+n) of unique chunk k (n within the chunk): an fd
 * segment on the store entry, or, after a miss, a memory segment with the
 * bytes the fetch verified. A miss fetches, with logical chunk i, the
 * missing chunks among the next n_after (the rest of the read) at demand
 * priority, so that adjacent ones go in one range request. */
static int chunk_seg(struct export_read *rd, uint64_t i, uint32_t k, uint64_t in_chunk, uint64_t n, uint64_t n_after,
                     struct export_seg *seg, unsigned *nowait_hits) {
        struct export *e = rd->e;
        const struct blkindex_chunk *c = &e->x->chunks[k];
        uint32_t *vstamp = &e->verified[k];

        if (nowait_hits) {
                /* Hits are counted by the caller once the whole call succeeded. */
                struct chunkfd *h;

                if (chunkfd_lookup(e->env.fds, &c->digest, &h) < 0)
                        return -EWOULDBLOCK;
                *seg = (struct export_seg) {
                        .kind = EXPORT_SEG_FD,
                        .len = n,
                        .fd = chunkfd_fd(h),
                        .fd_off = in_chunk,
                        .pin = h,
                };
                sched_note_hit(e->se, k);
                note_hit(e, i);
                (*nowait_hits)++;
                return 0;
        }

        for (int attempt = 0; attempt < 4; attempt++) {
                uint32_t stamp = __atomic_load_n(vstamp, __ATOMIC_RELAXED);
                struct sched_buf *buf;
                struct chunkfd *h;
                struct ra_plan plan;
                struct sched_ahead ahead;
                uint64_t hinted;
                int r;

                r = chunkfd_get(e->env.fds, &c->digest, c->raw_len, &stamp, &h);
                if (r == -ESTALE) {
                        /* Damaged, or changed after it was verified: dropped; fetch it. */
                        STAT_ADD(e, reverify_failures, 1);
                        __atomic_store_n(vstamp, 0, __ATOMIC_RELAXED);
                        r = -ENOENT;
                }
                if (r == 0) {
                        __atomic_store_n(vstamp, stamp, __ATOMIC_RELAXED);
                        *seg = (struct export_seg) {
                                .kind = EXPORT_SEG_FD,
                                .len = n,
                                .fd = chunkfd_fd(h),
                                .fd_off = in_chunk,
                                .pin = h,
                        };
                        sched_note_hit(e->se, k);
                        note_hit(e, i);
                        if (!(i >= rd->hint_base && i - rd->hint_base < 64 &&
                              (rd->hint_mask & (UINT64_C(1) << (i - rd->hint_base)))))
                                STAT_ADD(e, cache_hits, 1);
                        return 0;
                }
                if (r != -ENOENT)
                        return r;
                /* The rest of the read, and what the access pattern and
                 * the link's room add to it (readahead.h). */
                plan.n = 0;
                plan.cluster = false;
                if (n_after < RA_MAX) {
                        /* The room beyond the read: with it, one range
                         * when it is one run in a pack. */
                        uint64_t room = sched_readahead_room(e->se);

                        room = room > n_after + 1 ? room - n_after - 1 : 0;
                        readahead_miss(e->ra, i, i + n_after, room, &plan);
                }
                ahead = (struct sched_ahead) { .chunks = plan.chunks, .n = plan.n };
                r = sched_demand(e->se, i, n_after, &ahead, &buf, &hinted);
                if (ahead.fetched)
                        readahead_fetched(e->ra, &plan, ahead.fetched);
                if (r == -EAGAIN)
                        continue;       /* the store has it after all: look again */
                if (r < 0)
                        return r;
                if (hinted) {
                        rd->hint_base = i + 1;
                        rd->hint_mask = hinted;
                }
                *seg = (struct export_seg) {
                        .kind = EXPORT_SEG_MEM,
                        .len = n,
                        .mem = (const uint8_t *) sched_buf_data(buf) + in_chunk,
                        .owned = buf,
                };
                return 0;
        }
        return -EIO;
}

static void seg_release(struct export *e, struct export_seg *s) {
        chunkfd_put(e->env.fds, s->pin);
        sched_buf_put(s->owned);
        s->pin = NULL;
        s->owned = NULL;
}

/* Append a zero segment, merging with a preceding one. */
static unsigned add_zero(struct export_seg *segs, unsigned n, uint64_t len) {
        if (n && segs[n - 1].kind == EXPORT_SEG_ZERO) {
                segs[n - 1].len += len;
                return n;
        }
        segs[n] = (struct export_seg) { .kind = EXPORT_SEG_ZERO, .len = len };
        return n + 1;
}

/* Image segments for [off, end), at most max - n more. Advances *off. */
static int image_segs(struct export_read *rd, uint64_t *off, uint64_t end, struct export_seg *segs, unsigned n,
                      unsigned max, unsigned *nowait_hits) {
        struct export *e = rd->e;
        const uint32_t cs = e->x->chunk_size;

        while (*off < end && n < max) {
                uint64_t i = *off / cs, in = *off % cs;
                uint64_t len = MIN(end - *off, (uint64_t) blkindex_chunk_len(e->x, i) - in);
                uint32_t k = e->x->map[i];
                int r;

                if (k == BLKINDEX_ZERO) {
                        n = add_zero(segs, n, len);
                } else {
                        uint64_t n_after = (end - 1) / cs - i;

                        r = chunk_seg(rd, i, k, in, len, n_after, &segs[n], nowait_hits);
                        if (r == -EWOULDBLOCK)
                                return r;
                        if (r < 0) {
                                char hex[DIGEST_HEX_LEN + 1];
                                log_debug("Export %s: chunk %llu (%s) at offset %llu: %s", e->name,
                                          (unsigned long long) i, digest_to_hex(&e->x->chunks[k].digest, hex),
                                          (unsigned long long) *off, strerror(-r));
                                return r;
                        }
                        n++;
                }
                *off += len;
        }
        return (int) n;
}

/* Segments for [rd->off, rd->end), overlay over image (or image only). */
static int resolve(struct export_read *rd, struct export_seg *segs, unsigned max, bool with_overlay,
                   unsigned *nowait_hits) {
        struct export *e = rd->e;
        unsigned n = 0;
        int r;

        while (rd->off < rd->end && n < max) {
                uint64_t run = rd->end - rd->off, start = rd->off;
                enum overlay_state st = OVERLAY_ABSENT;

                if (with_overlay && e->ov)
                        st = overlay_state_run(e->ov, rd->off, rd->end - rd->off, &run);
                switch (st) {
                case OVERLAY_ABSENT:
                        r = image_segs(rd, &rd->off, start + run, segs, n, max, nowait_hits);
                        if (r < 0) {
                                rd->err_off = rd->off;
                                export_read_done(rd, segs, n);
                                return r;
                        }
                        n = (unsigned) r;
                        break;
                case OVERLAY_DATA: {
                        uint64_t foff;
                        int fd = overlay_data_fd(e->ov, rd->off, &foff);
                        segs[n++] = (struct export_seg) { .kind = EXPORT_SEG_FD, .len = run, .fd = fd, .fd_off = foff };
                        rd->off += run;
                        break;
                }
                case OVERLAY_ZERO:
                        n = add_zero(segs, n, run);
                        rd->off += run;
                        break;
                }
        }
        return (int) n;
}

int export_read_start(struct export *e, uint64_t off, uint64_t len, struct export_read *rd) {
        if (!range_ok(e, off, len)) {
                STAT_ADD(e, errors, 1);
                return -EINVAL;
        }
        *rd = (struct export_read) { .e = e, .off = off, .end = off + len, .err_off = off };
        if (__atomic_load_n(&e->recording, __ATOMIC_ACQUIRE))
                profile_rec_note(e->rec, off, len);
        if (__atomic_load_n(&e->learning, __ATOMIC_ACQUIRE)) {
                if (now_ns() < e->learn_until_ns)
                        profile_rec_note(e->learn_rec, off, len);
                else
                        __atomic_store_n(&e->learning, false, __ATOMIC_RELEASE);
        }
        STAT_ADD(e, reads, 1);
        STAT_ADD(e, bytes_read, len);
        sched_export_note_read(e->se);
        return 0;
}

/* The first read's bytes are ready: how long after the attach began. */
static void note_first_read(struct export *e) {
        uint64_t zero = 0;

        if (__atomic_load_n(&e->st.first_read_ns, __ATOMIC_RELAXED) == 0)
                (void) __atomic_compare_exchange_n(&e->st.first_read_ns, &zero, MAX(now_ns() - e->open_ns, (uint64_t) 1), false,
                                                   __ATOMIC_RELAXED, __ATOMIC_RELAXED);
}

int export_read_next(struct export_read *rd, struct export_seg *segs, unsigned max) {
        const bool nowait = rd->flags & EXPORT_READ_NOWAIT;
        uint64_t start = rd->off;
        unsigned hits = 0;
        int r;

        if (max == 0)
                return -EINVAL;
        r = resolve(rd, segs, max, true, nowait ? &hits : NULL);
        if (r == -EWOULDBLOCK) {
                /* Not an error: rewind; the caller retries without NOWAIT. */
                rd->off = start;
                rd->err_off = start;
        } else if (r < 0) {
                STAT_ADD(rd->e, errors, 1);
        } else if (hits) {
                STAT_ADD(rd->e, cache_hits, hits);
        }
        if (r >= 0 && rd->off >= rd->end)
                note_first_read(rd->e);
        return r;
}

void export_read_done(struct export_read *rd, struct export_seg *segs, unsigned n) {
        for (unsigned i = 0; i < n; i++)
                seg_release(rd->e, &segs[i]);
}

int export_seg_copy(const struct export_seg *s, void *buf, uint64_t skip, uint64_t len) {
        ssize_t got;

        switch (s->kind) {
        case EXPORT_SEG_ZERO:
                memset(buf, 0, len);
                return 0;
        case EXPORT_SEG_MEM:
                memcpy(buf, (const uint8_t *) s->mem + skip, len);
                return 0;
        case EXPORT_SEG_FD:
                got = pread_full(s->fd, buf, len, s->fd_off + skip);
                if (got < 0)
                        return (int) got;
                if ((uint64_t) got != len)
                        return -EIO;    /* entry or overlay shorter than it claims */
                return 0;
        }
        return -EINVAL;
}

int export_seg_copy_nowait(const struct export_seg *s, void *buf, uint64_t skip, uint64_t len) {
        struct iovec iov = { buf, len };
        ssize_t got;

        if (s->kind != EXPORT_SEG_FD)
                return export_seg_copy(s, buf, skip, len);
        do
                got = preadv2(s->fd, &iov, 1, (off_t) (s->fd_off + skip), RWF_NOWAIT);
        while (got < 0 && errno == EINTR);
        if (got < 0)
                return errno == EAGAIN || errno == EOPNOTSUPP ? -EWOULDBLOCK : -errno;
        if ((uint64_t) got != len)
                return -EWOULDBLOCK;    /* partly cached (or short: the blocking read will tell) */
        return 0;
}

/* Copy [off, off+len) into buf, with or without the overlay. */
static int read_into(struct export *e, void *buf, size_t len, uint64_t off, bool with_overlay) {
        struct export_read rd = { .e = e, .off = off, .end = off + len, .err_off = off };
        struct export_seg segs[16];
        uint8_t *p = buf;
        int n, r = 0;

        while (rd.off < rd.end) {
                n = resolve(&rd, segs, 16, with_overlay, NULL);
                if (n < 0)
                        return n;
                for (int i = 0; i < n && r >= 0; i++) {
                        r = export_seg_copy(&segs[i], p, 0, segs[i].len);
                        p += segs[i].len;
                }
                export_read_done(&rd, segs, (unsigned) n);
                if (r < 0)
                        return r;
        }
        return 0;
}

int export_pread(struct export *e, void *buf, size_t len, uint64_t off) {
        struct export_read rd;
        int r;

        r = export_read_start(e, off, len, &rd);
        if (r < 0)
                return r;
        r = read_into(e, buf, len, off, true);
        if (r < 0)
                STAT_ADD(e, errors, 1);
        else
                note_first_read(e);
        return r;
}

int export_cache(struct export *e, uint64_t off, uint64_t len) {
        struct export_read rd = { .e = e, .off = off, .end = off + len, .err_off = off };
        struct export_seg segs[16];
        int n;

        if (!range_ok(e, off, len))
                return count_result(e, -EINVAL);
        while (rd.off < rd.end) {
                n = resolve(&rd, segs, 16, true, NULL);
                if (n < 0)
                        return count_result(e, n);
                export_read_done(&rd, segs, (unsigned) n);
        }
        return 0;
}

/* --- Writing --- */

/* The layer below the overlay, for completing partial blocks. */
static int below_read(void *userdata, void *buf, size_t len, uint64_t off) {
        return read_into(userdata, buf, len, off, false);
}

static int write_check(struct export *e, uint64_t off, uint64_t len) {
        if (!e->ov)
                return -EROFS;
        if (!range_ok(e, off, len))
                return -ENOSPC;
        return 0;
}

int export_pwrite(struct export *e, const void *buf, size_t len, uint64_t off, unsigned flags) {
        int r;

        STAT_ADD(e, writes, 1);
        r = write_check(e, off, len);
        if (r >= 0)
                r = overlay_write(e->ov, buf, len, off, flags & EXPORT_FUA, below_read, e);
        if (r >= 0)
                STAT_ADD(e, bytes_written, len);
        return count_result(e, r);
}

int export_zero(struct export *e, uint64_t off, uint64_t len, unsigned flags) {
        int r;

        STAT_ADD(e, zeroes, 1);
        r = write_check(e, off, len);
        if (r >= 0 && (flags & EXPORT_FAST) && !overlay_zero_is_fast(e->ov, off, len))
                return -ENOTSUP;        /* not an error: the client asked */
        if (r >= 0)
                r = overlay_zero(e->ov, off, len, flags & EXPORT_NO_HOLE, flags & EXPORT_FUA, below_read, e);
        return count_result(e, r);
}

int export_trim(struct export *e, uint64_t off, uint64_t len, unsigned flags) {
        int r;

        STAT_ADD(e, trims, 1);
        if (!e->ov)
                r = -EROFS;
        else if (!range_ok(e, off, len))
                r = -EINVAL;
        else
                r = overlay_trim(e->ov, off, len, flags & EXPORT_FUA);
        return count_result(e, r);
}

int export_flush(struct export *e) {
        STAT_ADD(e, flushes, 1);
        if (!e->ov)
                return 0;
        return count_result(e, overlay_flush(e->ov));
}

/* --- Boot profiles --- */

int export_record_start(struct export *e) {
        int r = 0;

        pthread_mutex_lock(&e->profile_lock);
        if (!e->rec)
                r = profile_rec_new(e->x->image_size, e->x->chunk_size, &e->rec);
        else
                profile_rec_reset(e->rec);
        if (r >= 0)
                __atomic_store_n(&e->recording, true, __ATOMIC_RELEASE);
        pthread_mutex_unlock(&e->profile_lock);
        return r;
}

int export_record_get(struct export *e, bool stop, struct profile **ret) {
        int r;

        pthread_mutex_lock(&e->profile_lock);
        if (!e->rec) {
                pthread_mutex_unlock(&e->profile_lock);
                return -ENODATA;
        }
        if (stop)
                __atomic_store_n(&e->recording, false, __ATOMIC_RELEASE);
        r = profile_rec_snapshot(e->rec, ret);
        pthread_mutex_unlock(&e->profile_lock);
        return r;
}

int export_learn_start(struct export *e) {
        int r = 0;

        if (!e->env.learn_window_ns)
                return 0;
        pthread_mutex_lock(&e->profile_lock);
        if (!e->learn_rec) {
                r = profile_rec_new(e->x->image_size, e->x->chunk_size, &e->learn_rec);
                if (r >= 0) {
                        e->learn_until_ns = now_ns() + e->env.learn_window_ns;
                        __atomic_store_n(&e->learning, true, __ATOMIC_RELEASE);
                }
        }
        pthread_mutex_unlock(&e->profile_lock);
        return r;
}

int export_prefetch(struct export *e, const uint64_t *chunks, size_t n, bool learned) {
        int r = sched_profile_set(e->se, chunks, n);

        if (r >= 0)
                __atomic_store_n(&e->st.prefetch_learned, learned, __ATOMIC_RELAXED);
        return r;
}

void export_profile_lookup(struct export *e, bool running) {
        __atomic_store_n(&e->st.profile_lookup, running, __ATOMIC_RELEASE);
        if (!running)
                __atomic_store_n(&e->st.profile_lookup_ns, MAX(now_ns() - e->attached_ns, (uint64_t) 1), __ATOMIC_RELAXED);
}

bool export_profile_lookup_running(struct export *e) {
        return __atomic_load_n(&e->st.profile_lookup, __ATOMIC_ACQUIRE);
}

void export_prefetch_cancel(struct export *e) {
        sched_profile_cancel(e->se);
}

void export_background_start(struct export *e) {
        sched_background_start(e->se);
}

struct blob_source *export_source(struct export *e) {
        return e->src;
}

const struct image_manifest *export_image_manifest(const struct export *e) {
        return e->img->manifest;
}

uint64_t export_manifest_size(const struct export *e) {
        return e->img->manifest_size;
}
