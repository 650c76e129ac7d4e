/* SPDX-License-Identifier: Apache-2.0 */
/*
 * NBD server lifecycle: listening sockets, the accept thread, connections
 * and their threads (see server.h for the threading model), buffered
 * request parsing, kicking clients off an export, and shutdown.
 */
#include "server.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "blockd/sockets.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"
#include "conn.h"

#define THREAD_STACK (1u << 20)
#define SOCKET_SNDBUF (4 << 20)

int nbdsrv_new(const struct nbdsrv_config *cfg, const struct nbdsrv_exports *exports, struct nbdsrv **ret) {
        struct nbdsrv *s = calloc(1, sizeof *s);

        if (!s)
                return -ENOMEM;
        s->cfg = *cfg;
        if (!s->cfg.max_threads)
                s->cfg.max_threads = 16;
        {
                const struct nbdsrv_limits def = NBDSRV_LIMITS_DEFAULT;
                struct nbdsrv_limits *l = &s->cfg.limits;

                if (!l->max_connections)
                        l->max_connections = def.max_connections;
                if (!l->peer_connections)
                        l->peer_connections = def.peer_connections;
                if (!l->conn_buffer)
                        l->conn_buffer = def.conn_buffer;
                if (!l->buffer_total)
                        l->buffer_total = def.buffer_total;
                if (!l->handshake_timeout_s)
                        l->handshake_timeout_s = def.handshake_timeout_s;
        }
        s->exports = *exports;
        {
                long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
                s->max_spinners = ncpu > 1 ? (unsigned) ncpu - 1 : 0;
        }
        s->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (s->wake_fd < 0) {
                int r = -errno;
                free(s);
                return r;
        }
        pthread_mutex_init(&s->lock, NULL);
        pthread_cond_init(&s->cond, NULL);
        pthread_mutex_init(&s->budget_lock, NULL);
        pthread_cond_init(&s->budget_cond, NULL);
        *ret = s;
        return 0;
}

int nbdsrv_listen_unix(struct nbdsrv *s, const char *path) {
        int fd;

        if (s->n_listen == ARRAY_SIZE(s->listen_fds))
                return -ENOSPC;
        fd = unix_listen("nbd", path, 0660);
        if (fd < 0)
                return fd;
        s->unix_paths[s->n_listen] = strdup(path);
        s->listen_fds[s->n_listen++] = fd;
        return 0;
}

int nbdsrv_listen_tcp(struct nbdsrv *s, const char *host_port, unsigned *ret_port) {
        int fd;

        if (s->n_listen == ARRAY_SIZE(s->listen_fds))
                return -ENOSPC;
        fd = tcp_listen("nbd", host_port, ret_port);
        if (fd < 0)
                return fd;
        s->unix_paths[s->n_listen] = NULL;
        s->listen_fds[s->n_listen++] = fd;
        return 0;
}

/* --- Connections --- */

void conn_set_dead(struct conn *c, bool hard) {
        pthread_mutex_lock(&c->lock);
        c->dead = true;
        pthread_mutex_unlock(&c->lock);
        /* Wake a reader blocked in recv, or waiting for buffer room;
         * hard also fails pending writes. */
        (void) shutdown(c->io.fd, hard ? SHUT_RDWR : SHUT_RD);
        nbdsrv_budget_wake(c->srv);
}

/* Receive into the read buffer. In the transmission phase on a plain
 * socket, first poll for a short while without sleeping: at queue depth
 * 1 the next request usually arrives within microseconds of our reply,
 * and not going to sleep saves the wake-up (a cross-CPU interrupt and a
 * context switch), which is most of a cached read's latency. Bounded in
 * time and in the number of threads polling at once. */
static ssize_t recv_polling(struct conn *c, void *buf, size_t len) {
        struct nbdsrv *s = c->srv;
        unsigned n;

        if (!c->exp || nbdsrv_io_is_tls(&c->io) || !s->cfg.poll_us)
                return nbdsrv_io_recv(&c->io, buf, len);
        /* Polls that keep finding nothing mean the client is slower than
         * that (large transfers, an idle guest): stop polling, and look
         * again every 32nd wait. */
        if (c->poll_misses >= 3 && ++c->poll_skips < 32)
                return nbdsrv_io_recv(&c->io, buf, len);
        c->poll_skips = 0;
        n = __atomic_load_n(&s->spinners, __ATOMIC_RELAXED);
        while (n < s->max_spinners &&
               !__atomic_compare_exchange_n(&s->spinners, &n, n + 1, true, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
                ;
        if (n < s->max_spinners) {
                uint64_t deadline = now_ns() + (uint64_t) s->cfg.poll_us * 1000;
                ssize_t r;

                do {
                        r = recv(c->io.fd, buf, len, MSG_DONTWAIT);
                        if (r >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
                                __atomic_fetch_sub(&s->spinners, 1, __ATOMIC_RELEASE);
                                c->poll_misses = 0;
                                return r >= 0 ? r : -errno;
                        }
                } while (now_ns() < deadline);
                __atomic_fetch_sub(&s->spinners, 1, __ATOMIC_RELEASE);
                c->poll_misses++;
        }
        return nbdsrv_io_recv(&c->io, buf, len);
}

int conn_read(struct conn *c, void *buf, size_t len) {
        uint8_t *p = buf;

        while (len) {
                ssize_t n;

                if (c->rpos < c->rlen) {
                        size_t k = MIN(len, c->rlen - c->rpos);
                        memcpy(p, c->rbuf + c->rpos, k);
                        c->rpos += k;
                        p += k;
                        len -= k;
                        continue;
                }
                if (len >= CONN_RBUF / 2) {
                        /* Large payloads go straight to their buffer. */
                        n = nbdsrv_io_recv(&c->io, p, len);
                        if (n <= 0)
                                return n == 0 ? -ECONNRESET : (int) n;
                        p += n;
                        len -= (size_t) n;
                        continue;
                }
                c->rpos = c->rlen = 0;
                n = recv_polling(c, c->rbuf, CONN_RBUF);
                if (n <= 0)
                        return n == 0 ? -ECONNRESET : (int) n;
                c->rlen = (size_t) n;
        }
        return 0;
}

/* The connection's last thread. Everything the connection holds of the
 * daemon (its export reference above all) is let go before it leaves the
 * list: nbdsrv_shutdown() returns once the list is empty, and the daemon
 * then frees the exports and the scheduler they live in. What remains is
 * the connection's own memory, which nobody else sees. */
static void conn_destroy(struct conn *c) {
        struct nbdsrv *s = c->srv;
        struct export *e;

        /* The export goes first: once the connection is off the list,
         * nbdsrv_shutdown() may return and the daemon free the exports. */
        pthread_mutex_lock(&s->lock);
        e = c->exp;
        c->exp = NULL;
        pthread_mutex_unlock(&s->lock);
        if (e) {
                log_debug("nbd: client %llu disconnected from export %s", (unsigned long long) c->id, export_name(e));
                export_client_remove(e);
                export_unref(e);
        }

        pthread_mutex_lock(&s->lock);
        if (c->prev)
                c->prev->next = c->next;
        else
                s->conns = c->next;
        if (c->next)
                c->next->prev = c->prev;
        s->n_conns--;
        pthread_cond_broadcast(&s->cond);
        pthread_mutex_unlock(&s->lock);

        nbdsrv_io_close(&c->io);
        pthread_mutex_destroy(&c->read_lock);
        pthread_mutex_destroy(&c->write_lock);
        pthread_mutex_destroy(&c->lock);
        free(c->meta_export);
        free(c->rbuf);
        free(c);
}

/* A thread leaves the connection; the last one closes it. */
static void conn_thread_exit(struct conn *c) {
        bool last;

        pthread_mutex_lock(&c->lock);
        last = --c->threads == 0;
        pthread_mutex_unlock(&c->lock);
        if (last)
                conn_destroy(c);
}

/* Read the next request header, and a WRITE's payload into w->buf.
 * Caller holds read_lock. <0 ends the connection. */
static int read_request(struct worker *w, struct nbdsrv_request *rq) {
        struct conn *c = w->c;
        uint8_t h[NBD_REQUEST_SIZE];
        int r;

        r = conn_read(c, h, sizeof h);
        if (r < 0)
                return r;
        if (nbdsrv_decode_request(h, rq) < 0) {
                log_warning("nbd: client %llu (%s): bad request magic; disconnecting", (unsigned long long) c->id,
                            c->peer);
                __atomic_fetch_add(&c->srv->protocol_errors, 1, __ATOMIC_RELAXED);
                return -EPROTO;
        }
        if ((rq->type == NBD_CMD_READ || rq->type == NBD_CMD_WRITE) && rq->length > NBDSRV_BUDGET_FREE &&
            rq->length <= NBD_MAX_REQUEST && nbdsrv_budget_try(w, rq->length) < 0) {
                /* Out of room: stop reading from this client until replies
                 * drain (the ones gathered here first). */
                r = nbdsrv_flush_batch(w);
                if (r < 0)
                        return r;
                r = nbdsrv_budget_get(w, rq->length);
                if (r < 0)
                        return r;
        }
        if (rq->type != NBD_CMD_WRITE)
                return 0;
        if (rq->length > NBD_MAX_REQUEST) {
                /* We will not buffer it, and cannot skip it cheaply. */
                log_warning("nbd: client %llu (%s): %u-byte write exceeds the 32 MiB maximum; disconnecting",
                            (unsigned long long) c->id, c->peer, rq->length);
                __atomic_fetch_add(&c->srv->protocol_errors, 1, __ATOMIC_RELAXED);
                return -EPROTO;
        }
        r = worker_buf(w, rq->length);
        if (r < 0)
                return r;
        return conn_read(c, w->buf, rq->length);
}

static void *worker_thread(void *arg);

/* Start one more thread for the connection (it becomes the next reader). */
static void spawn(struct conn *c) {
        pthread_attr_t attr;
        pthread_t t;
        int r;

        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&attr, THREAD_STACK);
        r = pthread_create(&t, &attr, worker_thread, c);
        pthread_attr_destroy(&attr);
        if (r != 0) {
                log_debug("nbd: client %llu: cannot start a thread: %s", (unsigned long long) c->id, strerror(r));
                conn_thread_exit(c);    /* undo the count taken for it */
        }
}

/* Is a whole request (header, and a WRITE's payload) already buffered? */
static bool request_buffered(const struct conn *c) {
        const uint8_t *h = c->rbuf + c->rpos;

        if (conn_buffered(c) < NBD_REQUEST_SIZE)
                return false;
        if (nbd_get16(h + 6) != NBD_CMD_WRITE)
                return true;
        return conn_buffered(c) - NBD_REQUEST_SIZE >= nbd_get32(h + 24);
}

/* The transmission loop. The thread holding the read role parses the next
 * request; a read it can answer without blocking (nbdsrv_try_fast) it
 * answers itself, keeping the role, and replies to a run of such reads go
 * out in one write. Anything else: it hands the role on (starting another
 * thread if none is waiting), executes the request, replies, and queues
 * for the role again; until the connection dies. */
static void worker_loop(struct worker *w) {
        struct conn *c = w->c;

        for (;;) {
                struct nbdsrv_request rq;
                bool dead, more;
                int r;

                pthread_mutex_lock(&c->lock);
                c->waiting++;
                pthread_mutex_unlock(&c->lock);
                pthread_mutex_lock(&c->read_lock);
                pthread_mutex_lock(&c->lock);
                c->waiting--;
                dead = c->dead;
                pthread_mutex_unlock(&c->lock);
                if (dead) {
                        pthread_mutex_unlock(&c->read_lock);
                        return;
                }
                for (;;) {
                        /* Never wait for input with replies still unsent. */
                        if (w->batch_len && !request_buffered(c) && nbdsrv_flush_batch(w) < 0) {
                                pthread_mutex_unlock(&c->read_lock);
                                return;
                        }
                        r = read_request(w, &rq);
                        if (r < 0 || rq.type == NBD_CMD_DISC) {
                                if (r < 0 && r != -ECONNRESET && r != -EPROTO)
                                        log_debug("nbd: client %llu: read failed: %s", (unsigned long long) c->id,
                                                  strerror(-r));
                                if (r == 0)
                                        log_debug("nbd: client %llu: NBD_CMD_DISC", (unsigned long long) c->id);
                                (void) nbdsrv_flush_batch(w);
                                /* DISC: in-flight requests still get their replies. */
                                conn_set_dead(c, r == -EPROTO);
                                pthread_mutex_unlock(&c->read_lock);
                                return;
                        }
                        r = nbdsrv_try_fast(w, &rq, request_buffered(c));
                        if (r != 0)
                                nbdsrv_budget_put(w);
                        if (r < 0) {
                                pthread_mutex_unlock(&c->read_lock);
                                return;
                        }
                        if (r > 0) {
                                if (w->batch_len >= BATCH_FLUSH && nbdsrv_flush_batch(w) < 0) {
                                        pthread_mutex_unlock(&c->read_lock);
                                        return;
                                }
                                continue;
                        }
                        break;
                }
                /* The slow path. */
                if (nbdsrv_flush_batch(w) < 0) {
                        pthread_mutex_unlock(&c->read_lock);
                        return;
                }
                pthread_mutex_lock(&c->lock);
                more = c->waiting == 0 && c->threads < c->srv->cfg.max_threads && !c->dead;
                if (more)
                        c->threads++;
                pthread_mutex_unlock(&c->lock);
                pthread_mutex_unlock(&c->read_lock);
                if (more)
                        spawn(c);

                r = nbdsrv_execute(w, &rq);
                nbdsrv_budget_put(w);
                if (r < 0)
                        return;
                if (w->cap > (2u << 20)) {
                        free(w->buf);
                        w->buf = NULL;
                        w->cap = 0;
                }
        }
}

static void *worker_thread(void *arg) {
        struct worker *w = calloc(1, sizeof *w);
        struct conn *c = arg;

        if (w) {
                w->c = c;
                worker_loop(w);
                worker_free_buffers(w);
                free(w);
        }
        conn_thread_exit(c);
        return NULL;
}

/* The first thread of a connection: handshake, then transmission. */
static void *conn_main(void *arg) {
        struct conn *c = arg;
        struct worker *w = NULL;
        int r;

        r = nbdsrv_handshake(c);
        if (r <= 0) {
                if (r < 0) {
                        __atomic_fetch_add(&c->srv->handshake_failures, 1, __ATOMIC_RELAXED);
                        if (r != -EPROTO && r != -ENOENT)
                                log_debug("nbd: client %llu (%s): handshake ended: %s", (unsigned long long) c->id,
                                          c->peer, strerror(-r));
                }
                goto out;
        }
        export_client_add(c->exp);
        if (!__atomic_exchange_n(&c->handshake_deadline_ns, 0, __ATOMIC_ACQ_REL))
                goto out;       /* too late: nbdsrv_expire_handshakes() disconnected it */
        log_info("nbd: client %llu (%s) using export %s%s%s%s", (unsigned long long) c->id, c->peer,
                 export_name(c->exp), c->structured ? ", structured replies" : "",
                 c->meta_alloc ? ", base:allocation" : "", nbdsrv_io_is_tls(&c->io) ? ", TLS" : "");
        w = calloc(1, sizeof *w);
        if (!w)
                goto out;
        w->c = c;
        worker_loop(w);
        worker_free_buffers(w);
        free(w);
out:
        conn_thread_exit(c);
        return NULL;
}

/* The peer for the logs (buf), and who it is for the per-peer limit
 * (key): the process on a Unix socket, the IP address on TCP. */
static void describe_peer(int fd, char *buf, size_t len, char *key, size_t keylen) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        char ip[INET6_ADDRSTRLEN] = "?";

        snprintf(buf, len, "unknown");
        snprintf(key, keylen, "unknown");
        if (getpeername(fd, (struct sockaddr *) &ss, &sl) < 0)
                return;
        if (ss.ss_family == AF_UNIX) {
                struct ucred cr;
                socklen_t cl = sizeof cr;
                if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &cl) == 0) {
                        snprintf(buf, len, "unix pid %d uid %u", (int) cr.pid, (unsigned) cr.uid);
                        snprintf(key, keylen, "pid %d", (int) cr.pid);
                } else {
                        snprintf(buf, len, "unix");
                        snprintf(key, keylen, "unix");
                }
        } else if (ss.ss_family == AF_INET) {
                struct sockaddr_in *in = (struct sockaddr_in *) &ss;
                inet_ntop(AF_INET, &in->sin_addr, ip, sizeof ip);
                snprintf(buf, len, "%s:%u", ip, ntohs(in->sin_port));
                snprintf(key, keylen, "%s", ip);
        } else if (ss.ss_family == AF_INET6) {
                struct sockaddr_in6 *in = (struct sockaddr_in6 *) &ss;
                inet_ntop(AF_INET6, &in->sin6_addr, ip, sizeof ip);
                snprintf(buf, len, "[%s]:%u", ip, ntohs(in->sin6_port));
                snprintf(key, keylen, "%s", ip);
        }
}

static void accept_one(struct nbdsrv *s, int lfd) {
        struct conn *c;
        pthread_attr_t attr;
        pthread_t t;
        char peer[sizeof c->peer], key[sizeof c->peer_key];
        int fd, one = 1, r;

        fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
                if (errno == EMFILE || errno == ENFILE) {
                        log_warning("nbd: cannot accept: %m");
                        usleep(100 * 1000);
                }
                return;
        }
        describe_peer(fd, peer, sizeof peer, key, sizeof key);
        /* Only this thread adds connections: what it admits here is
         * still within the limits when it is added below. */
        pthread_mutex_lock(&s->lock);
        if (s->stopping || !nbdsrv_admit(s, key)) {
                pthread_mutex_unlock(&s->lock);
                close(fd);
                return;
        }
        pthread_mutex_unlock(&s->lock);
        (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        (void) setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
        {
                /* Room for a whole large reply in the socket, so a sender
                 * is not woken up several times per MiB. FORCE needs
                 * CAP_NET_ADMIN; otherwise the sysctl wmem_max caps it. */
                int sz = SOCKET_SNDBUF;
                if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof sz) < 0)
                        (void) setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
        }

        c = calloc(1, sizeof *c);
        if (!c || !(c->rbuf = malloc(CONN_RBUF))) {
                free(c);
                close(fd);
                return;
        }
        c->srv = s;
        nbdsrv_io_init(&c->io, fd);
        memcpy(c->peer, peer, sizeof peer);
        memcpy(c->peer_key, key, sizeof key);
        c->handshake_deadline_ns = now_ns() + (uint64_t) s->cfg.limits.handshake_timeout_s * 1000000000ull;
        pthread_mutex_init(&c->read_lock, NULL);
        pthread_mutex_init(&c->write_lock, NULL);
        pthread_mutex_init(&c->lock, NULL);
        c->threads = 1;

        pthread_mutex_lock(&s->lock);
        c->id = ++s->next_id;
        c->next = s->conns;
        if (s->conns)
                s->conns->prev = c;
        s->conns = c;
        s->n_conns++;
        pthread_mutex_unlock(&s->lock);
        __atomic_fetch_add(&s->connections_total, 1, __ATOMIC_RELAXED);
        log_debug("nbd: client %llu connected (%s)", (unsigned long long) c->id, c->peer);

        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&attr, THREAD_STACK);
        r = pthread_create(&t, &attr, conn_main, c);
        pthread_attr_destroy(&attr);
        if (r != 0) {
                log_warning("nbd: cannot start a connection thread: %s", strerror(r));
                conn_thread_exit(c);
        }
}

static void *accept_thread(void *arg) {
        struct nbdsrv *s = arg;
        struct pollfd p[ARRAY_SIZE(s->listen_fds) + 1];

        for (unsigned i = 0; i < s->n_listen; i++)
                p[i] = (struct pollfd) { .fd = s->listen_fds[i], .events = POLLIN };
        p[s->n_listen] = (struct pollfd) { .fd = s->wake_fd, .events = POLLIN };
        for (;;) {
                int r = poll(p, s->n_listen + 1, nbdsrv_expire_handshakes(s));

                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        log_error_errno(errno, "nbd: poll failed: %m");
                        break;
                }
                if (p[s->n_listen].revents)
                        break;
                for (unsigned i = 0; i < s->n_listen; i++)
                        if (p[i].revents & POLLIN)
                                accept_one(s, p[i].fd);
        }
        return NULL;
}

int nbdsrv_start(struct nbdsrv *s) {
        int r;

        if (s->n_listen == 0)
                return -EDESTADDRREQ;
        r = pthread_create(&s->accept_thread, NULL, accept_thread, s);
        if (r != 0)
                return -r;
        s->started = true;
        return 0;
}

void nbdsrv_kick_export(struct nbdsrv *s, struct export *e, bool hard) {
        pthread_mutex_lock(&s->lock);
        for (struct conn *c = s->conns; c; c = c->next)
                if (c->exp == e) {
                        __atomic_store_n(&c->kicked, true, __ATOMIC_RELAXED);
                        conn_set_dead(c, hard);
                }
        pthread_mutex_unlock(&s->lock);
}

void nbdsrv_shutdown(struct nbdsrv *s, unsigned grace_s) {
        struct timespec deadline;
        uint64_t one = 1;
        bool forced = false;

        if (s->started) {
                (void) write(s->wake_fd, &one, sizeof one);
                pthread_join(s->accept_thread, NULL);
                s->started = false;
        }
        for (unsigned i = 0; i < s->n_listen; i++) {
                socket_unlisten(s->listen_fds[i], s->unix_paths[i]);
                free(s->unix_paths[i]);
        }
        s->n_listen = 0;

        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_sec += grace_s;
        pthread_mutex_lock(&s->lock);
        s->stopping = true;
        /* Not kicked: a request already read is carried out and answered,
         * one not read yet stays unanswered. Either way a client that
         * reconnects (qemu's reconnect-delay) carries on with the next
         * process; an ESHUTDOWN reply would be an I/O error to it. */
        for (struct conn *c = s->conns; c; c = c->next)
                conn_set_dead(c, false);
        while (s->n_conns > 0) {
                if (!forced && pthread_cond_timedwait(&s->cond, &s->lock, &deadline) == ETIMEDOUT) {
                        log_warning("nbd: %u connections did not finish within %u s; closing them", s->n_conns,
                                    grace_s);
                        for (struct conn *c = s->conns; c; c = c->next)
                                conn_set_dead(c, true);
                        forced = true;
                } else if (forced) {
                        pthread_cond_wait(&s->cond, &s->lock);
                }
        }
        pthread_mutex_unlock(&s->lock);
}

void nbdsrv_free(struct nbdsrv *s) {
        if (!s)
                return;
        nbdsrv_shutdown(s, 10);
        close(s->wake_fd);
        pthread_mutex_destroy(&s->lock);
        pthread_cond_destroy(&s->cond);
        pthread_mutex_destroy(&s->budget_lock);
        pthread_cond_destroy(&s->budget_cond);
        free(s);
}

void nbdsrv_get_stats(struct nbdsrv *s, struct nbdsrv_stats *ret) {
        pthread_mutex_lock(&s->lock);
        ret->connections = s->n_conns;
        pthread_mutex_unlock(&s->lock);
        ret->connections_total = __atomic_load_n(&s->connections_total, __ATOMIC_RELAXED);
        ret->handshake_failures = __atomic_load_n(&s->handshake_failures, __ATOMIC_RELAXED);
        ret->protocol_errors = __atomic_load_n(&s->protocol_errors, __ATOMIC_RELAXED);
        ret->requests = __atomic_load_n(&s->requests, __ATOMIC_RELAXED);
}
