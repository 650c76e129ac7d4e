/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What happens when a range request ends. The fetcher's completion
 * (a backend thread, which must not block) only records the result and
 * queues the range; decoder threads then decode, verify and store each
 * chunk (bulk_chunk_store, the bulk engine's own step; with write-behind
 * the store insert is queued for an idle CPU, write-behind.h), and end
 * its job:
 * readers get the bytes, a chunk that did not match its digest is queued
 * again (SCHED_MAX_BAD fetches at most), a failed fetch is retried while
 * a reader still waits. Ranges a reader waits for are decoded first.
 * One line per range goes to the fetch log.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/debug-flags.h"
#include "common/log.h"
#include "common/util.h"
#include "registry-client/bulk.h"
#include "sched-internal.h"

#define RETRY_BASE_NS (100 * 1000000ull)       /* a reader's fetch: 100 ms doubling */
#define RETRY_MAX_NS (2 * NS)
#define LOG_LINE_MAX 4096

void sched_on_fetched(void *userdata, int r, const struct fetch_conn *conn) {
        struct sched_range *rg = userdata;
        struct sched *s = rg->s;
        uint64_t now = now_ns(), stall = cpu_stall_ns(&s->stall, now); /* a read: not under the lock */
        unsigned q;

        pthread_mutex_lock(&s->lock);
        rg->r = r;
        if (conn)
                rg->conn = *conn;
        rg->t1 = now;
        bdp_on_done(&s->bdp, &rg->bs, now, stall, r == 0);
        if (rg->cls == SCHED_BACKGROUND)
                bdp_scavenger_on_done(&s->bdp, now, rg->len, rg->bg_ahead, rg->bg_budget, s->bg_range, r == 0);
        /* The request slot is free (the window counts the network): the
         * range waits for a decoder now. */
        s->inflight[rg->cls]--;
        rg->se->net_inflight--;
        if (rg->cls != SCHED_DEMAND)
                rg->se->inflight_nondemand--;
        if (rg->cls == SCHED_BACKGROUND)
                s->bg_net_bytes -= MIN(s->bg_net_bytes, rg->len);
        s->backlog++;
        pthread_cond_signal(&s->wake);
        rg->urgent = rg->cls == SCHED_DEMAND;
        for (unsigned m = 0; m < rg->n && !rg->urgent; m++)
                rg->urgent = rg->jobs[m]->waiters > 0;
        q = rg->urgent ? 0 : 1;
        rg->next = NULL;
        if (s->dec_tail[q])
                s->dec_tail[q]->next = rg;
        else
                s->dec_head[q] = rg;
        s->dec_tail[q] = rg;
        pthread_cond_signal(&s->decode);
        pthread_mutex_unlock(&s->lock);
}

/* Errors worth retrying: the source may answer later. */
static bool transient(int r) {
        switch (r) {
        case -ENOENT:
        case -EACCES:
        case -EPERM:
        case -EKEYREJECTED:
        case -EINVAL:
        case -EBADMSG:
        case -EMEDIUMTYPE:
        case -ENOMEM:
        case -ECANCELED:
                return false;
        default:
                return true;
        }
}

/* Append logical chunk numbers as runs ("3-7,12") to buf at *pos. */
static void append_chunks(char *buf, size_t size, size_t *pos, const uint64_t *v, unsigned n) {
        for (unsigned m = 0; m < n && *pos + 48 < size;) {
                unsigned e = m;
                int w;

                while (e + 1 < n && v[e + 1] == v[e] + 1)
                        e++;
                if (e > m)
                        w = snprintf(buf + *pos, size - *pos, "%s%llu-%llu", m ? "," : "", (unsigned long long) v[m],
                                     (unsigned long long) v[e]);
                else
                        w = snprintf(buf + *pos, size - *pos, "%s%llu", m ? "," : "", (unsigned long long) v[m]);
                *pos += (size_t) w;
                m = e + 1;
                if (m < n && *pos + 48 >= size)
                        *pos += (size_t) snprintf(buf + *pos, size - *pos, ",...");
        }
}

static void fetch_log(struct sched *s, const struct sched_range *rg, const uint64_t *is, const uint64_t *bad,
                      unsigned n_bad) {
        char line[LOG_LINE_MAX], res[64];
        size_t pos;

        if (s->log_fd < 0 && !debug_sched_fetch)
                return;
        if (rg->r == 0)
                snprintf(res, sizeof res, "ok");
        else
                snprintf(res, sizeof res, "%s", strerrorname_np(-rg->r) ?: "error");
        pos = (size_t) snprintf(line, sizeof line, "fetch class=%s export=%s chunks=", sched_class_name(rg->cls),
                                rg->se->name);
        append_chunks(line, sizeof line, &pos, is, rg->n);
        pos += (size_t) snprintf(line + pos, sizeof line - pos,
                                 " pack=%u offset=%llu bytes=%llu start=%.6f end=%.6f result=%s bg_ahead=%llu bg_budget=%llu",
                                 rg->pack, (unsigned long long) rg->off, (unsigned long long) rg->len,
                                 (double) (rg->t0 - s->t0) / 1e9, (double) (rg->t1 - s->t0) / 1e9, res,
                                 (unsigned long long) rg->bg_ahead, (unsigned long long) rg->bg_budget);
        /* The connection (our port: one per TCP connection) and whether
         * it was one of the demand connections (source_options.demand_conns). */
        if (rg->conn.local_port && pos + 96 < sizeof line)
                pos += (size_t) snprintf(line + pos, sizeof line - pos, " conn=%s:%u proto=%s",
                                         rg->conn.demand ? "demand" : "shared", rg->conn.local_port,
                                         rg->conn.protocol ?: "-");
        if (n_bad && pos + 64 < sizeof line) {
                pos += (size_t) snprintf(line + pos, sizeof line - pos, " bad=");
                append_chunks(line, sizeof line, &pos, bad, n_bad);
        }
        pos = MIN(pos, sizeof line - 2);
        if (debug_sched_fetch)
                log_debug("%.*s", (int) pos, line);
        if (s->log_fd >= 0) {
                line[pos++] = '\n';
                pthread_mutex_lock(&s->log_lock);
                (void) write_all(s->log_fd, line, pos);
                pthread_mutex_unlock(&s->log_lock);
        }
}

/* End one job of a finished range. r: the range's result, or the chunk's
 * own (decode) result. Returns true when the chunk is given up on. Caller
 * holds the lock. */
static bool end_job(struct sched *s, struct sched_range *rg, struct sched_job *j, int r, struct sched_buf *buf,
                    bool stored, uint64_t now) {
        struct sched_export *se = rg->se;

        j->inflight = false;
        if (r == 0) {
                se->st.chunks[rg->cls]++;
                if (debug_export_fetch)
                        log_debug("Export %s: fetch %s chunk %llu (%u bytes)", se->name, sched_class_name(rg->cls),
                                  (unsigned long long) j->i, se->x->chunks[j->k].stored_len);
                j->stored = stored;
                sched_complete(s, j, 0, buf);
                return false;
        }
        if (r == -EBADMSG && rg->r == 0) {
                /* The range arrived, this chunk's bytes are wrong. */
                char hex[DIGEST_HEX_LEN + 1];

                j->bad++;
                se->st.digest_mismatches++;
                s->st.mismatches++;
                log_warning("Export %s: chunk %llu (%s) from pack %u does not match its digest (fetch %u of %u)%s",
                            se->name, (unsigned long long) j->i, digest_to_hex(&j->d, hex), rg->pack, j->bad,
                            SCHED_MAX_BAD, j->bad < SCHED_MAX_BAD ? "; fetching it again" : "");
                if (j->bad < SCHED_MAX_BAD && !se->removing && (j->waiters || j->cls == SCHED_DEMAND)) {
                        sched_requeue(s, j, now);
                        return false;
                }
                sched_complete(s, j, j->bad >= SCHED_MAX_BAD ? -EIO : -EBADMSG, NULL);
                return true;
        }
        if (transient(r) && j->waiters && !se->removing) {
                uint64_t d = MIN(RETRY_BASE_NS << MIN(j->attempts, 10), MIN(RETRY_MAX_NS, s->o.fetch_timeout_ns / 4));

                j->attempts++;
                j->last_err = r;
                s->st.retries++;
                sched_requeue(s, j, now + sched_jitter(s, d));
                return false;
        }
        sched_complete(s, j, r, NULL);
        return true;
}

/* Decode, verify and store the chunks of a range, then end its jobs. */
static void finish_range(struct sched *s, struct sched_range *rg) {
        struct sched_export *se = rg->se;
        struct sched_buf *bufs[SCHED_RANGE_CHUNKS] = { NULL };
        int res[SCHED_RANGE_CHUNKS];
        bool stored[SCHED_RANGE_CHUNKS] = { false };
        uint64_t is[SCHED_RANGE_CHUNKS], bad[SCHED_RANGE_CHUNKS], first_failed = UINT64_MAX, now;
        uint64_t first_unstored = UINT64_MAX;
        unsigned n_bad = 0;
        bool failed = false, full = false;

        for (unsigned m = 0; m < rg->n; m++) {
                const struct sched_job *j = rg->jobs[m];
                const struct blkindex_chunk *c = &se->x->chunks[j->k];
                int r, fd = -EBADF;
                bool behind;

                /* Read without the lock: immutable while the job is in flight. */
                is[m] = j->i;
                res[m] = rg->r;
                if (rg->r < 0)
                        continue;
                bufs[m] = sched_buf_new(c->raw_len);
                if (!bufs[m]) {
                        res[m] = -ENOMEM;
                        continue;
                }
                /* Verified, its store insert written behind: served from
                 * bufs[m] until it is in the store (write-behind.h). A full
                 * queue, or a full store (its ENOSPC path), inserts here. */
                behind = s->wb && !chunkstore_full(s->store);
                res[m] = bulk_chunk_store(behind ? NULL : s->store, c,
                                          (const uint8_t *) rg->buf + (c->offset - rg->off), bufs[m]->data, &r,
                                          s->fds ? &fd : NULL);
                if (res[m] == 0 && behind && write_behind_push(s->wb, &c->digest, bufs[m]) == -ENOBUFS)
                        r = chunkstore_put_verified_fd(s->store, &c->digest, bufs[m]->data, c->raw_len,
                                                       s->fds ? &fd : NULL);
                /* Kept open as verified before readers hear of it. */
                if (fd >= 0)
                        chunkfd_adopt(s->fds, &c->digest, TAKE_FD(fd));
                if (res[m] < 0) {
                        if (res[m] == -EBADMSG)
                                bad[n_bad++] = j->i;
                        sched_buf_put(TAKE_PTR(bufs[m]));
                        continue;
                }
                if (r == -ENOSPC) {
                        /* Served from memory, not stored; said once (below). */
                        full = true;
                        first_unstored = MIN(first_unstored, j->i);
                } else if (r < 0) {
                        log_warning_errno(r, "Export %s: cannot store chunk %llu: %m", se->name, (unsigned long long) j->i);
                }
                stored[m] = r >= 0;
        }
        /* The verdict goes back to the source: a mirror that served these
         * bytes is put aside, and the chunks are fetched again elsewhere. */
        if (n_bad)
                (void) source_blob_bad(se->src, &se->x->packs[rg->pack].digest);

        pthread_mutex_lock(&s->lock);
        now = now_ns();
        if (full)
                sched_cache_full(s, se, first_unstored, rg->cls == SCHED_BACKGROUND);
        if (rg->pooled && s->n_pool < SCHED_BUF_POOL) {
                s->pool[s->n_pool++] = TAKE_PTR(rg->buf);
        }
        se->st.requests[rg->cls]++;
        s->st.requests++;
        if (rg->r == 0) {
                se->st.bytes[rg->cls] += rg->len;
                s->st.bytes += rg->len;
        } else if (rg->r != -ECANCELED) {
                se->st.fetch_errors++;
                s->st.errors++;
        }
        for (unsigned m = 0; m < rg->n; m++) {
                struct sched_job *j = rg->jobs[m];

                if (end_job(s, rg, j, res[m], bufs[m], stored[m], now)) {
                        failed = true;
                        first_failed = MIN(first_failed, j->i);
                }
                sched_job_unref(j);
        }
        if (rg->cls == SCHED_BACKGROUND) {
                se->bg_inflight--;
                s->bg_pending -= (uint64_t) rg->n * se->x->chunk_size;
                if (failed && !se->removing)
                        sched_background_failed(se, first_failed, now);
                else if (!failed)
                        se->bg_failures = 0;
        }
        if (rg->cls == SCHED_DEMAND)
                s->last_demand_ns = now;
        pthread_mutex_unlock(&s->lock);

        /* Still counted in flight: a removal waits, so se stays. */
        fetch_log(s, rg, is, bad, n_bad);

        pthread_mutex_lock(&s->lock);
        s->backlog--;
        se->inflight--;
        if (se->removing)
                pthread_cond_broadcast(&s->changed);
        pthread_cond_signal(&s->wake);
        pthread_mutex_unlock(&s->lock);
        free(rg->buf);
        free(rg);
}

void *sched_decoder_main(void *arg) {
        struct sched *s = arg;

        pthread_mutex_lock(&s->lock);
        for (;;) {
                struct sched_range *rg = NULL;
                unsigned q;

                while (!s->dec_head[0] && !s->dec_head[1] && !s->decoders_stop)
                        pthread_cond_wait(&s->decode, &s->lock);
                q = s->dec_head[0] ? 0 : 1;
                rg = s->dec_head[q];
                if (!rg)
                        break;
                s->dec_head[q] = rg->next;
                if (!s->dec_head[q])
                        s->dec_tail[q] = NULL;
                pthread_mutex_unlock(&s->lock);
                finish_range(s, rg);
                pthread_mutex_lock(&s->lock);
        }
        pthread_mutex_unlock(&s->lock);
        return NULL;
}
