/* SPDX-License-Identifier: Apache-2.0 */
#include "origin.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"

#define BACKOFF_MIN_NS (250 * 1000000ull)
#define BACKOFF_MAX_NS (5 * 1000000000ull)

/* An asynchronous read through the origin: the caller's aio, and ours
 * to the registry (its done notes the outcome, then calls the caller's). */
struct origin_aio {
        struct source_aio aio;
        struct source_aio *outer;
        struct origin *o;
        bool started;                   /* handed to the registry source */
        struct origin_aio *next;        /* deferred: failed from the thread */
};

struct origin {
        struct blob_source *self;
        struct source_options opts;
        pthread_mutex_t lock;
        pthread_cond_t cond;
        struct blob_source *inner;      /* set once, under lock; NULL until opened */
        bool connecting;                /* an open or a probe runs */
        bool probed;                    /* the first probe is over */
        bool down;                      /* the last probe failed: requests fail at once */
        bool online;                    /* the last request reached the registry */
        int last_r;                     /* why not, as -errno */
        char why[512];
        uint64_t next_try_ns, backoff_ns;
        struct origin_aio *deferred;
        bool stopping;
        pthread_t thread;
};

static const struct blob_source_ops origin_ops;

static bool network_error(int r) {
        switch (-r) {
        case ECONNREFUSED: case ETIMEDOUT: case EAGAIN: case ECONNRESET: case EHOSTUNREACH:
        case ENETUNREACH: case EHOSTDOWN: case ECONNABORTED: case EPIPE: case ENETDOWN:
                return true;
        default:
                return false;
        }
}

/* Note the outcome of a request: log transitions between online and
 * offline. Probes decide while one is due or failed. */
static void note(struct origin *o, int r) {
        bool was, now;

        if (r < 0 && !network_error(r))
                return;
        pthread_mutex_lock(&o->lock);
        if (!o->probed || o->down) {
                pthread_mutex_unlock(&o->lock);
                return;
        }
        was = o->online;
        now = o->online = r >= 0;
        if (!now) {
                o->last_r = r;
                if (o->inner)
                        source_strerror(o->inner, r, o->why, sizeof o->why);
        }
        pthread_mutex_unlock(&o->lock);
        if (was && !now)
                log_warning("Registry of %s unreachable: %s; cached data is still served", o->self->ref->text,
                            strerror(-r));
        else if (!was && now)
                log_info("Registry of %s reachable again", o->self->ref->text);
}

/* Open the registry source: no network (ping_lazy); its GET /v2/ is
 * the probe's. Caller holds no lock. */
static int open_inner(struct origin *o, struct blob_source **ret, char *err, size_t errlen) {
        struct source_options opts = o->opts;

        opts.ping_once = true;
        opts.ping_lazy = true;
        return source_open(o->self->ref->text, &opts, ret, err, errlen);
}

/* A probe failed (or the open): requests fail at once until the next
 * one, after a backoff. Caller holds the lock. */
static void set_down_locked(struct origin *o, int r, const char *err) {
        o->down = true;
        o->online = false;
        o->last_r = r;
        snprintf(o->why, sizeof o->why, "%s", err && err[0] ? err : strerror(-r));
        o->backoff_ns = o->backoff_ns ? MIN(o->backoff_ns * 2, BACKOFF_MAX_NS) : BACKOFF_MIN_NS;
        o->next_try_ns = now_ns() + o->backoff_ns;
}

/* One probe (not under the lock; the caller set connecting): GET /v2/,
 * tried once: the source's own retries (seconds, for requests) would
 * only delay a start with the registry down; the origin retries in the
 * background instead. The first runs beside the attach's requests (the
 * manifest, the index), not before them: they wait for its verdict only
 * when they fail. 0 when the registry is there. */
static int try_connect(struct origin *o) {
        struct blob_source *s;
        char err[512] = "";
        bool first;
        int r = 0;

        pthread_mutex_lock(&o->lock);
        s = o->inner;
        first = !o->probed;
        pthread_mutex_unlock(&o->lock);
        if (!s) {
                r = open_inner(o, &s, err, sizeof err);
                if (r >= 0) {
                        pthread_mutex_lock(&o->lock);
                        o->inner = s;
                        pthread_mutex_unlock(&o->lock);
                }
        }
        if (r >= 0)
                r = source_probe(s, err, sizeof err);
        pthread_mutex_lock(&o->lock);
        o->connecting = false;
        o->probed = true;
        if (r >= 0) {
                o->down = false;
                o->backoff_ns = 0;
        } else {
                set_down_locked(o, r, err);
        }
        pthread_cond_broadcast(&o->cond);
        pthread_mutex_unlock(&o->lock);
        if (r >= 0)
                note(o, 0);
        else if (first)
                log_warning("Registry of %s unreachable: %s; retrying in the background", o->self->ref->text, o->why);
        else
                log_debug("origin %s: connecting failed: %s (next try in %llu ms)", o->self->ref->text,
                          err[0] ? err : strerror(-r), (unsigned long long) (o->backoff_ns / 1000000));
        return r;
}

/* The registry source, probing first if it is down and it is time to
 * try; NULL with *ret_r set while it cannot be reached. *ret_early: the
 * first probe has no verdict yet. */
static struct blob_source *inner_get(struct origin *o, int *ret_r, bool *ret_early) {
        struct blob_source *s;
        bool try = false;

        pthread_mutex_lock(&o->lock);
        s = o->down ? NULL : o->inner;
        *ret_early = !o->probed;
        if (!s && !o->connecting && now_ns() >= o->next_try_ns)
                try = o->connecting = true;
        *ret_r = o->last_r;
        pthread_mutex_unlock(&o->lock);
        if (try && try_connect(o) >= 0) {
                pthread_mutex_lock(&o->lock);
                s = o->down ? NULL : o->inner;
                pthread_mutex_unlock(&o->lock);
        }
        if (!s) {
                pthread_mutex_lock(&o->lock);
                *ret_r = o->last_r;
                pthread_mutex_unlock(&o->lock);
        }
        return s;
}

/* Fails deferred reads and reconnects while the registry is away. */
static void *origin_thread(void *arg) {
        struct origin *o = arg;

        pthread_mutex_lock(&o->lock);
        while (!o->stopping) {
                struct origin_aio *list = o->deferred, *next;
                int r = o->last_r;

                if (list) {
                        o->deferred = NULL;
                        pthread_mutex_unlock(&o->lock);
                        for (; list; list = next) {
                                struct source_aio *outer = list->outer;
                                next = list->next;
                                outer->done(outer, r);
                                free(list);
                        }
                        pthread_mutex_lock(&o->lock);
                        continue;
                }
                if ((o->down || !o->probed) && !o->connecting && now_ns() >= o->next_try_ns) {
                        o->connecting = true;
                        pthread_mutex_unlock(&o->lock);
                        (void) try_connect(o);
                        pthread_mutex_lock(&o->lock);
                        continue;
                }
                if (o->probed && !o->down) {
                        pthread_cond_wait(&o->cond, &o->lock);
                } else {
                        uint64_t t = MAX(o->next_try_ns, now_ns() + 10000000ull);
                        struct timespec ts;
                        clock_gettime(CLOCK_MONOTONIC, &ts);
                        t -= now_ns();
                        ts.tv_sec += (time_t) (t / 1000000000ull);
                        ts.tv_nsec += (long) (t % 1000000000ull);
                        if (ts.tv_nsec >= 1000000000L) {
                                ts.tv_sec++;
                                ts.tv_nsec -= 1000000000L;
                        }
                        pthread_cond_timedwait(&o->cond, &o->lock, &ts);
                }
        }
        pthread_mutex_unlock(&o->lock);
        return NULL;
}

/* A request that failed before the first probe's verdict waits for it:
 * with the registry down (or not a registry), the probe's failure is the
 * one reported, as when the probe went first; with the registry there,
 * a network failure (tried once, standing in for the probe) is worth
 * another try. True for that try. */
static bool first_verdict(struct origin *o, int *r) {
        bool again;

        pthread_mutex_lock(&o->lock);
        while (!o->probed && !o->stopping)
                pthread_cond_wait(&o->cond, &o->lock);
        if (o->down)
                *r = o->last_r;
        again = !o->down && network_error(*r);
        pthread_mutex_unlock(&o->lock);
        return again;
}

#define FORWARD(o, call)                                                  \
        do {                                                              \
                int _r;                                                   \
                bool _early;                                              \
                struct blob_source *in = inner_get((o), &_r, &_early);    \
                if (!in)                                                  \
                        return _r;                                        \
                _r = (call);                                              \
                if (_r < 0 && _early && first_verdict((o), &_r))          \
                        _r = (call);                                      \
                note((o), _r);                                            \
                return _r;                                                \
        } while (0)

static int o_manifest_get(struct blob_source *s, const char *reference, char **ret_mt, char **ret_body,
                          size_t *ret_len) {
        FORWARD(s->priv, in->ops->manifest_get(in, reference, ret_mt, ret_body, ret_len));
}

static int o_manifest_put(struct blob_source *s, const char *tag, const char *mt, const char *at, const void *body,
                          size_t len) {
        FORWARD(s->priv, in->ops->manifest_put(in, tag, mt, at, body, len));
}

static int o_blob_stat(struct blob_source *s, const struct digest *d, uint64_t *ret_size) {
        FORWARD(s->priv, in->ops->blob_stat(in, d, ret_size));
}

static int o_blob_read(struct blob_source *s, const struct digest *d, uint64_t off, void *buf, size_t len) {
        FORWARD(s->priv, in->ops->blob_read(in, d, off, buf, len));
}

static int o_blob_put_fd(struct blob_source *s, const struct digest *d, int fd, uint64_t size) {
        FORWARD(s->priv, in->ops->blob_put_fd(in, d, fd, size));
}

static int o_referrers_get(struct blob_source *s, const struct digest *d, char **ret_body, size_t *ret_len) {
        FORWARD(s->priv,
                in->ops->referrers_get ? in->ops->referrers_get(in, d, ret_body, ret_len) : -EOPNOTSUPP);
}

static void o_aio_done(struct source_aio *a, int r) {
        struct origin_aio *oa = a->userdata;
        struct source_aio *outer = oa->outer;

        if (r != -ECANCELED)
                note(oa->o, r);
        outer->local_port = a->local_port;
        outer->protocol = a->protocol;
        outer->demand_conn = a->demand_conn;
        /* oa stays valid until the caller's done returned: a cancel may
         * come until then. */
        outer->done(outer, r);
        free(oa);
}

static int o_blob_read_async(struct blob_source *s, struct source_aio *a) {
        struct origin *o = s->priv;
        struct origin_aio *oa = calloc(1, sizeof *oa);
        struct blob_source *in;
        int r;

        if (!oa)
                return -ENOMEM;
        oa->outer = a;
        oa->o = o;
        oa->aio = (struct source_aio) {
                .digest = a->digest, .off = a->off, .buf = a->buf, .len = a->len,
                .deadline_ns = a->deadline_ns, .demand = a->demand, .done = o_aio_done, .userdata = oa,
        };
        a->backend = oa;
        pthread_mutex_lock(&o->lock);
        in = o->down ? NULL : o->inner;
        if (!in) {
                /* Failed from the thread: never inside this call. */
                oa->next = o->deferred;
                o->deferred = oa;
                pthread_cond_broadcast(&o->cond);
                pthread_mutex_unlock(&o->lock);
                return 0;
        }
        oa->started = true;
        pthread_mutex_unlock(&o->lock);
        r = in->ops->blob_read_async ? source_blob_read_async(in, &oa->aio) : -EOPNOTSUPP;
        if (r < 0) {
                a->backend = NULL;
                free(oa);
        }
        return r;
}

static void o_blob_read_cancel(struct blob_source *s, struct source_aio *a) {
        struct origin *o = s->priv;
        struct origin_aio *oa = a->backend;
        struct blob_source *in;
        bool started;

        pthread_mutex_lock(&o->lock);
        in = o->inner;
        started = oa && oa->started;
        pthread_mutex_unlock(&o->lock);
        /* A deferred read fails soon anyway. */
        if (in && started)
                source_blob_read_cancel(in, &oa->aio);
}

static void o_stats(struct blob_source *s, struct source_stats *ret) {
        struct origin *o = s->priv;
        struct blob_source *in;

        pthread_mutex_lock(&o->lock);
        in = o->inner;
        pthread_mutex_unlock(&o->lock);
        if (in)
                source_get_stats(in, ret);
        else
                *ret = (struct source_stats) { 0 };
}

static const char *o_describe_error(struct blob_source *s, int r, char *buf, size_t len) {
        struct origin *o = s->priv;
        struct blob_source *in;
        bool online;

        pthread_mutex_lock(&o->lock);
        in = o->inner;
        online = o->online && !o->down;
        if (!in || !online)
                snprintf(buf, len, "%s", o->why[0] ? o->why : strerror(-r));
        pthread_mutex_unlock(&o->lock);
        if (in && online)
                return source_strerror(in, r, buf, len);
        return buf;
}

static void o_free(struct blob_source *s) {
        struct origin *o = s->priv;
        struct origin_aio *d, *next;

        if (!o)
                return;
        pthread_mutex_lock(&o->lock);
        o->stopping = true;
        pthread_cond_broadcast(&o->cond);
        pthread_mutex_unlock(&o->lock);
        pthread_join(o->thread, NULL);
        for (d = o->deferred; d; d = next) {
                next = d->next;
                d->outer->done(d->outer, -ECANCELED);
                free(d);
        }
        source_free(o->inner);
        pthread_cond_destroy(&o->cond);
        pthread_mutex_destroy(&o->lock);
        free(o);
}

static int o_blob_bad(struct blob_source *s, const struct digest *d) {
        struct origin *o = s->priv;
        struct blob_source *in;

        pthread_mutex_lock(&o->lock);
        in = o->inner;
        pthread_mutex_unlock(&o->lock);
        return source_blob_bad(in, d);
}

static const char *o_served_by(struct blob_source *s, const struct digest *d, char *buf, size_t len) {
        struct origin *o = s->priv;
        struct blob_source *in;

        pthread_mutex_lock(&o->lock);
        in = o->inner;
        pthread_mutex_unlock(&o->lock);
        return source_served_by(in, d, buf, len);
}

static const struct blob_source_ops origin_ops = {
        .name = "origin",
        .manifest_get = o_manifest_get,
        .manifest_put = o_manifest_put,
        .blob_stat = o_blob_stat,
        .blob_read = o_blob_read,
        .blob_put_fd = o_blob_put_fd,
        .referrers_get = o_referrers_get,
        .blob_read_async = o_blob_read_async,
        .blob_read_cancel = o_blob_read_cancel,
        .blob_bad = o_blob_bad,
        .served_by = o_served_by,
        .stats = o_stats,
        .describe_error = o_describe_error,
        .free = o_free,
};

int origin_open(const char *text, const struct source_options *opts, struct blob_source **ret, char *err,
                size_t errlen) {
        static const struct source_options defaults = { 0 };
        struct image_ref *ref;
        struct blob_source *s;
        struct origin *o;
        pthread_condattr_t ca;
        int r;

        r = image_ref_parse(text, &ref, err, errlen);
        if (r < 0)
                return r;
        if (ref->transport != REF_DOCKER)
                return source_open_ref(ref, opts, ret);
        s = calloc(1, sizeof *s);
        o = calloc(1, sizeof *o);
        if (!s || !o) {
                free(s);
                free(o);
                image_ref_free(ref);
                return -ENOMEM;
        }
        s->ops = &origin_ops;
        s->ref = ref;
        s->priv = o;
        o->self = s;
        o->opts = opts ? *opts : defaults;
        pthread_mutex_init(&o->lock, NULL);
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&o->cond, &ca);
        pthread_condattr_destroy(&ca);
        /* Opened here (no network), probed at once by the thread. */
        o->online = true;
        r = open_inner(o, &o->inner, o->why, sizeof o->why);
        if (r < 0) {
                char msg[sizeof o->why];
                memcpy(msg, o->why, sizeof msg);
                o->probed = true;
                set_down_locked(o, r, msg);
                log_warning("Registry of %s unreachable: %s; retrying in the background", text, o->why);
        }
        r = -pthread_create(&o->thread, NULL, origin_thread, o);
        if (r < 0) {
                s->priv = NULL;
                source_free(s);
                source_free(o->inner);
                pthread_cond_destroy(&o->cond);
                pthread_mutex_destroy(&o->lock);
                free(o);
                return r;
        }
        *ret = s;
        return 0;
}

bool origin_online(struct blob_source *s, char *why, size_t len) {
        struct origin *o;
        bool online;

        if (!s || s->ops != &origin_ops)
                return true;
        o = s->priv;
        pthread_mutex_lock(&o->lock);
        /* Known once the first probe has its verdict (as when it went
         * before the attach). */
        while (!o->probed && !o->stopping)
                pthread_cond_wait(&o->cond, &o->lock);
        online = o->inner && o->online && !o->down;
        if (!online && why)
                snprintf(why, len, "%s", o->why[0] ? o->why : "registry not reached yet");
        pthread_mutex_unlock(&o->lock);
        return online;
}
