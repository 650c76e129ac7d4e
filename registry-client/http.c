/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The HTTP engine (http.h): a thread that owns a curl multi handle. The
 * loop takes new requests and cancels from a locked queue, drives the
 * transfers with curl_multi_perform/curl_multi_poll, and on completion
 * either schedules a retry (a list ordered by nothing: it is short) or
 * hands the request to its done callback.
 */
#include "http.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/debug-flags.h"
#include "common/log.h"
#include "common/util.h"
#include "errors.h"
#include "http-internal.h"

#ifndef HOCUS_VERSION
#define HOCUS_VERSION "0"
#endif

#define RETRY_AFTER_CAP_MS 60000

struct http_engine {
        struct http_config cfg;
        char *ca_file, *ca_path, *ca_pem, *client_cert, *client_key;
        CURLM *multi;
        pthread_t thread;
        bool thread_started;

        pthread_mutex_t lock;           /* guards the fields down to stats */
        struct http_req *queue, *queue_tail;
        uint64_t *cancels;
        size_t n_cancels, cap_cancels;
        bool stop;
        uint64_t next_id;
        struct http_stats stats;

        /* Engine thread only. */
        struct http_req *active;        /* in the multi handle */
        struct http_req *waiting;       /* retries not yet due */
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;

static void global_init(void) {
        (void) curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ---- engine ------------------------------------------------------------ */

static int configure(struct http_engine *e, struct http_req *r) {
        CURL *c = r->easy;
        long stall = e->cfg.stall_timeout_s;
        char range[64];

        curl_easy_setopt(c, CURLOPT_URL, r->url);
        curl_easy_setopt(c, CURLOPT_PRIVATE, r);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_ERRORBUFFER, r->errbuf);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, r->headers);
        curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, (long) e->cfg.connect_timeout_s);
        curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, stall);
        if (r->deadline_ns) {
                uint64_t now = now_ns();
                long ms = r->deadline_ns > now ? (long) ((r->deadline_ns - now) / 1000000) : 1;
                curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, ms > 0 ? ms : 1L);
        }
        if (e->ca_file)
                curl_easy_setopt(c, CURLOPT_CAINFO, e->ca_file);
        if (e->ca_path)
                curl_easy_setopt(c, CURLOPT_CAPATH, e->ca_path);
        if (e->ca_pem) {
                struct curl_blob b = { .data = e->ca_pem, .len = strlen(e->ca_pem), .flags = CURL_BLOB_NOCOPY };
                curl_easy_setopt(c, CURLOPT_CAINFO_BLOB, &b);
        }
        if (e->client_cert) {
                curl_easy_setopt(c, CURLOPT_SSLCERT, e->client_cert);
                curl_easy_setopt(c, CURLOPT_SSLKEY, e->client_key);
        }
        if (e->cfg.tls_no_verify) {
                curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
                curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
        }
        curl_easy_setopt(c, CURLOPT_HTTP_VERSION, (long) CURL_HTTP_VERSION_2TLS);
        /* Wait for a connection still coming up only where it may
         * multiplex (TLS: ALPN tells at the handshake). Over cleartext
         * HTTP the connection is HTTP/1.1, but libcurl would only learn
         * that from its first reply: a request would wait behind another
         * one's whole reply (the attach's manifest behind its GET /v2/). */
        curl_easy_setopt(c, CURLOPT_PIPEWAIT, strncasecmp(r->url, "https://", 8) ? 0L : 1L);
        curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, r->follow ? 1L : 0L);
        curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
        /* Never send credentials to a host a redirect points at. */
        curl_easy_setopt(c, CURLOPT_UNRESTRICTED_AUTH, 0L);
        curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, http_on_header);
        curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, http_on_write);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
        /* Bigger reads: fewer syscalls and callbacks per MiB (the curl
         * tool uses 100 KiB; the default is 16 KiB). */
        curl_easy_setopt(c, CURLOPT_BUFFERSIZE, 512L << 10);
        curl_easy_setopt(c, CURLOPT_USERAGENT, "hocus-blk/" HOCUS_VERSION);
        if (r->bearer) {
                curl_easy_setopt(c, CURLOPT_HTTPAUTH, CURLAUTH_BEARER);
                curl_easy_setopt(c, CURLOPT_XOAUTH2_BEARER, r->bearer);
        } else if (r->basic_user) {
                curl_easy_setopt(c, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
                curl_easy_setopt(c, CURLOPT_USERNAME, r->basic_user);
                curl_easy_setopt(c, CURLOPT_PASSWORD, r->basic_pass ? r->basic_pass : "");
        }
        if (!strcmp(r->method, "HEAD")) {
                curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
        } else if (!strcmp(r->method, "GET")) {
                curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
        } else if (r->has_body || !strcmp(r->method, "PUT") || !strcmp(r->method, "PATCH")) {
                curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
                curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t) (r->has_body ? r->body_len : 0));
                curl_easy_setopt(c, CURLOPT_READFUNCTION, http_on_read);
                curl_easy_setopt(c, CURLOPT_READDATA, r);
                curl_easy_setopt(c, CURLOPT_SEEKFUNCTION, http_on_seek);
                curl_easy_setopt(c, CURLOPT_SEEKDATA, r);
                curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, r->method);
        } else if (!strcmp(r->method, "POST")) {
                curl_easy_setopt(c, CURLOPT_POST, 1L);
                curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
                curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, 0L);
        } else {
                curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, r->method);
        }
        if (r->dst) {
                snprintf(range, sizeof range, "%llu-%llu", (unsigned long long) r->range_off,
                         (unsigned long long) (r->range_off + r->dst_len - 1));
                curl_easy_setopt(c, CURLOPT_RANGE, range);
        }
        return 0;
}

static void list_remove(struct http_req **head, struct http_req *r) {
        for (struct http_req **p = head; *p; p = &(*p)->next)
                if (*p == r) {
                        *p = r->next;
                        r->next = NULL;
                        return;
                }
}

const char *http_version_name(long v) {
        switch (v) {
        case CURL_HTTP_VERSION_1_0:
                return "HTTP/1.0";
        case CURL_HTTP_VERSION_1_1:
                return "HTTP/1.1";
        case CURL_HTTP_VERSION_2_0:
                return "HTTP/2";
        case CURL_HTTP_VERSION_3:
                return "HTTP/3";
        default:
                return NULL;
        }
}

/* Hand a finished request to its owner. r may be freed by done. */
static void finish(struct http_engine *e, struct http_req *r, int err) {
        r->r = err;
        if (debug_registry_http) {
                double ms = r->start_ns ? (double) (now_ns() - r->start_ns) / 1e6 : 0;
                if (err < 0)
                        log_debug("http: %s %s -> %s (%s) after %u attempt(s), %.1f ms", r->method, r->url,
                                  strerror(-err), r->errbuf[0] ? r->errbuf : "-", r->attempts, ms);
                else {
                        long v = 0;
                        if (r->easy)
                                curl_easy_getinfo(r->easy, CURLINFO_HTTP_VERSION, &v);
                        log_debug("http: %s %s -> %ld, %zu bytes, %.1f ms, attempt %u, %s", r->method, r->url,
                                  r->status, r->dst ? r->dst_got : r->resp_len, ms, r->attempts,
                                  http_version_name(v) ?: "HTTP");
                }
        }
        if (r->done)
                r->done(r);
}

static void start(struct http_engine *e, struct http_req *r) {
        CURLMcode mc;

        if (r->cancelled) {
                finish(e, r, -ECANCELED);
                return;
        }
        if (r->deadline_ns && now_ns() >= r->deadline_ns) {
                finish(e, r, -ETIMEDOUT);
                return;
        }
        if (!r->easy) {
                r->easy = curl_easy_init();
                if (!r->easy) {
                        finish(e, r, -ENOMEM);
                        return;
                }
        }
        configure(e, r);
        r->attempts++;
        r->start_ns = now_ns();
        mc = curl_multi_add_handle(e->multi, r->easy);
        if (mc != CURLM_OK) {
                finish(e, r, -ENOMEM);
                return;
        }
        r->next = e->active;
        e->active = r;
        pthread_mutex_lock(&e->lock);
        e->stats.requests++;
        pthread_mutex_unlock(&e->lock);
}

/* A transfer ended: retry it, or finish it. */
static void completed(struct http_engine *e, struct http_req *r, CURLcode cc) {
        curl_off_t down = 0, up = 0;
        long conns = 0, version = 0;
        bool transient;
        int err;

        curl_multi_remove_handle(e->multi, r->easy);
        list_remove(&e->active, r);
        curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &r->status);
        curl_easy_getinfo(r->easy, CURLINFO_NUM_CONNECTS, &conns);
        curl_easy_getinfo(r->easy, CURLINFO_SIZE_DOWNLOAD_T, &down);
        curl_easy_getinfo(r->easy, CURLINFO_SIZE_UPLOAD_T, &up);
        curl_easy_getinfo(r->easy, CURLINFO_HTTP_VERSION, &version);
        curl_easy_getinfo(r->easy, CURLINFO_LOCAL_PORT, &r->local_port);
        r->http_version = version;
        pthread_mutex_lock(&e->lock);
        e->stats.connections += (uint64_t) conns;
        e->stats.bytes_down += (uint64_t) down;
        e->stats.bytes_up += (uint64_t) up;
        if (version)
                e->stats.http_version = version;
        pthread_mutex_unlock(&e->lock);
        r->curl_code = cc;

        if (r->cancelled) {
                finish(e, r, -ECANCELED);
                return;
        }
        if (cc == CURLE_WRITE_ERROR && r->dst_full && !r->internal_err)
                cc = CURLE_OK;
        if (r->internal_err && (cc == CURLE_WRITE_ERROR || cc == CURLE_ABORTED_BY_CALLBACK || cc == CURLE_READ_ERROR ||
                                cc == CURLE_OK)) {
                finish(e, r, r->internal_err);
                return;
        }
        err = cc != CURLE_OK ? curl_code_to_errno(cc) : 0;
        transient = cc != CURLE_OK ? curl_code_transient(cc) : http_status_transient(r->status);
        if (cc == CURLE_OK && r->dst && r->status / 100 == 2 && r->dst_got < r->dst_len) {
                err = -EPIPE; /* a short body */
                transient = true;
        }
        if (transient && r->retry_ok && r->attempts < e->cfg.max_attempts) {
                uint32_t rnd = 0;
                uint64_t delay, now = now_ns();
                int64_t ra;

                (void) random_bytes(&rnd, sizeof rnd);
                delay = backoff_ms(r->attempts, e->cfg.backoff_base_ms, e->cfg.backoff_cap_ms, rnd);
                if (cc == CURLE_OK && r->retry_after) {
                        ra = retry_after_parse(r->retry_after, time(NULL));
                        if (ra > (int64_t) delay)
                                delay = (uint64_t) MIN(ra, (int64_t) RETRY_AFTER_CAP_MS);
                }
                if (!r->deadline_ns || now + delay * 1000000 < r->deadline_ns) {
                        if (debug_registry_http)
                                log_debug("http: %s %s -> %s; retry %u in %llu ms", r->method, r->url,
                                          cc != CURLE_OK ? curl_easy_strerror(cc) : "transient status",
                                          r->attempts, (unsigned long long) delay);
                        if (cc == CURLE_OK && debug_registry_http)
                                log_debug("http: (status %ld)", r->status);
                        http_req_reset(r);
                        r->due_ns = now + delay * 1000000;
                        r->next = e->waiting;
                        e->waiting = r;
                        pthread_mutex_lock(&e->lock);
                        e->stats.retries++;
                        pthread_mutex_unlock(&e->lock);
                        return;
                }
        }
        finish(e, r, err);
}

static bool id_listed(const uint64_t *ids, size_t n, uint64_t id) {
        for (size_t i = 0; i < n; i++)
                if (ids[i] == id)
                        return true;
        return false;
}

static void *engine_main(void *arg) {
        struct http_engine *e = arg;

        for (;;) {
                struct http_req *incoming, *r, *next;
                uint64_t *cancels;
                size_t n_cancels;
                bool stop;
                CURLMsg *msg;
                int running, left;
                long timeout_ms = 1000;
                uint64_t now;

                pthread_mutex_lock(&e->lock);
                incoming = e->queue;
                e->queue = e->queue_tail = NULL;
                cancels = e->cancels;
                n_cancels = e->n_cancels;
                e->cancels = NULL;
                e->n_cancels = e->cap_cancels = 0;
                stop = e->stop;
                pthread_mutex_unlock(&e->lock);

                /* Cancels: mark the new ones, abort the running and waiting. */
                for (r = incoming; r; r = r->next)
                        if (stop || id_listed(cancels, n_cancels, r->id))
                                r->cancelled = true;
                for (r = e->active; r; r = next) {
                        next = r->next;
                        if (stop || id_listed(cancels, n_cancels, r->id)) {
                                r->cancelled = true;
                                completed(e, r, CURLE_ABORTED_BY_CALLBACK);
                        }
                }
                for (r = e->waiting; r; r = next) {
                        next = r->next;
                        if (stop || id_listed(cancels, n_cancels, r->id)) {
                                list_remove(&e->waiting, r);
                                finish(e, r, -ECANCELED);
                        }
                }
                free(cancels);
                for (r = incoming; r; r = next) {
                        next = r->next;
                        r->next = NULL;
                        start(e, r);
                }
                if (stop) {
                        pthread_mutex_lock(&e->lock);
                        bool more = e->queue != NULL;
                        pthread_mutex_unlock(&e->lock);
                        if (!more && !e->active && !e->waiting)
                                break;
                        continue;
                }

                curl_multi_perform(e->multi, &running);
                while ((msg = curl_multi_info_read(e->multi, &left))) {
                        if (msg->msg != CURLMSG_DONE)
                                continue;
                        CURL *easy = msg->easy_handle;
                        CURLcode cc = msg->data.result;
                        struct http_req *done = NULL;

                        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **) &done);
                        completed(e, done, cc);
                }

                /* Due retries go back in; the next wake-up is the earliest. */
                now = now_ns();
                for (r = e->waiting; r; r = next) {
                        next = r->next;
                        if (r->due_ns <= now) {
                                list_remove(&e->waiting, r);
                                start(e, r);
                        } else {
                                long ms = (long) ((r->due_ns - now) / 1000000) + 1;
                                if (ms < timeout_ms)
                                        timeout_ms = ms;
                        }
                }
                pthread_mutex_lock(&e->lock);
                if (e->queue || e->n_cancels || e->stop)
                        timeout_ms = 0;
                pthread_mutex_unlock(&e->lock);
                if (timeout_ms > 0)
                        curl_multi_poll(e->multi, NULL, 0, (int) timeout_ms, NULL);
        }
        return NULL;
}

int http_engine_new(const struct http_config *c, struct http_engine **ret) {
        struct http_engine *e;

        pthread_once(&global_once, global_init);
        e = calloc(1, sizeof *e);
        if (!e)
                return -ENOMEM;
        e->cfg = *c;
        e->cfg.ca_file = e->cfg.ca_path = e->cfg.ca_pem = e->cfg.client_cert = e->cfg.client_key = NULL;
        if (!e->cfg.connect_timeout_s)
                e->cfg.connect_timeout_s = 10;
        if (!e->cfg.stall_timeout_s)
                e->cfg.stall_timeout_s = 30;
        if (!e->cfg.max_attempts)
                e->cfg.max_attempts = 5;
        if (!e->cfg.max_host_connections)
                e->cfg.max_host_connections = 16;
        if (!e->cfg.backoff_base_ms)
                e->cfg.backoff_base_ms = 200;
        if (!e->cfg.backoff_cap_ms)
                e->cfg.backoff_cap_ms = 5000;
        pthread_mutex_init(&e->lock, NULL);
        if ((c->ca_file && !(e->ca_file = strdup(c->ca_file))) || (c->ca_path && !(e->ca_path = strdup(c->ca_path))) ||
            (c->ca_pem && !(e->ca_pem = strdup(c->ca_pem))) ||
            (c->client_cert && !(e->client_cert = strdup(c->client_cert))) ||
            (c->client_key && !(e->client_key = strdup(c->client_key)))) {
                http_engine_free(e);
                return -ENOMEM;
        }
        e->next_id = 1;
        e->multi = curl_multi_init();
        if (!e->multi) {
                http_engine_free(e);
                return -ENOMEM;
        }
        curl_multi_setopt(e->multi, CURLMOPT_PIPELINING, (long) CURLPIPE_MULTIPLEX);
        curl_multi_setopt(e->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long) e->cfg.max_host_connections);
        curl_multi_setopt(e->multi, CURLMOPT_MAXCONNECTS, (long) e->cfg.max_host_connections * 2);
        if (pthread_create(&e->thread, NULL, engine_main, e) != 0) {
                http_engine_free(e);
                return -EAGAIN;
        }
        e->thread_started = true;
        *ret = e;
        return 0;
}

void http_engine_free(struct http_engine *e) {
        if (!e)
                return;
        if (e->thread_started) {
                pthread_mutex_lock(&e->lock);
                e->stop = true;
                pthread_mutex_unlock(&e->lock);
                curl_multi_wakeup(e->multi);
                pthread_join(e->thread, NULL);
        }
        if (e->multi)
                curl_multi_cleanup(e->multi);
        free(e->cancels);
        free(e->ca_file);
        free(e->ca_path);
        free(e->ca_pem);
        free(e->client_cert);
        free(e->client_key);
        pthread_mutex_destroy(&e->lock);
        free(e);
}

void http_engine_stats(struct http_engine *e, struct http_stats *ret) {
        pthread_mutex_lock(&e->lock);
        *ret = e->stats;
        pthread_mutex_unlock(&e->lock);
}

uint64_t http_submit(struct http_engine *e, struct http_req *r) {
        uint64_t id;

        r->next = NULL;
        pthread_mutex_lock(&e->lock);
        r->engine = e;
        id = r->id = e->next_id++;
        if (e->queue_tail)
                e->queue_tail->next = r;
        else
                e->queue = r;
        e->queue_tail = r;
        pthread_mutex_unlock(&e->lock);
        curl_multi_wakeup(e->multi);
        return id;
}

void http_cancel(struct http_engine *e, uint64_t id) {
        pthread_mutex_lock(&e->lock);
        if (e->n_cancels == e->cap_cancels) {
                size_t cap = e->cap_cancels ? e->cap_cancels * 2 : 16;
                uint64_t *v = realloc(e->cancels, cap * sizeof *v);
                if (!v) {
                        pthread_mutex_unlock(&e->lock);
                        return;
                }
                e->cancels = v;
                e->cap_cancels = cap;
        }
        e->cancels[e->n_cancels++] = id;
        pthread_mutex_unlock(&e->lock);
        curl_multi_wakeup(e->multi);
}

void http_cancel_req(struct http_engine *e, struct http_req *r) {
        uint64_t id;

        pthread_mutex_lock(&e->lock);
        id = r->engine == e ? r->id : 0;
        pthread_mutex_unlock(&e->lock);
        if (id)
                http_cancel(e, id);
}

void http_wait_init(struct http_wait *w) {
        pthread_mutex_init(&w->lock, NULL);
        pthread_cond_init(&w->cond, NULL);
        w->done = false;
}

void http_wait_signal(struct http_wait *w) {
        pthread_mutex_lock(&w->lock);
        w->done = true;
        pthread_cond_broadcast(&w->cond);
        pthread_mutex_unlock(&w->lock);
}

void http_wait_wait(struct http_wait *w) {
        pthread_mutex_lock(&w->lock);
        while (!w->done)
                pthread_cond_wait(&w->cond, &w->lock);
        pthread_mutex_unlock(&w->lock);
}

bool http_wait_until(struct http_wait *w, uint64_t until_ns) {
        bool done;

        pthread_mutex_lock(&w->lock);
        while (!w->done) {
                uint64_t now = now_ns(), d;
                struct timespec ts;

                if (now >= until_ns)
                        break;
                /* The condition's clock is CLOCK_REALTIME: wait relative. */
                d = until_ns - now;
                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_sec += (time_t) (d / 1000000000ull);
                ts.tv_nsec += (long) (d % 1000000000ull);
                if (ts.tv_nsec >= 1000000000L) {
                        ts.tv_sec++;
                        ts.tv_nsec -= 1000000000L;
                }
                pthread_cond_timedwait(&w->cond, &w->lock, &ts);
        }
        done = w->done;
        pthread_mutex_unlock(&w->lock);
        return done;
}

void http_wait_destroy(struct http_wait *w) {
        pthread_mutex_destroy(&w->lock);
        pthread_cond_destroy(&w->cond);
}

static void run_done(struct http_req *r) {
        http_wait_signal(r->userdata);
}

int http_run(struct http_engine *e, struct http_req *r) {
        struct http_wait w;

        http_wait_init(&w);
        r->done = run_done;
        r->userdata = &w;
        http_submit(e, r);
        http_wait_wait(&w);
        http_wait_destroy(&w);
        r->done = NULL;
        return r->r;
}
