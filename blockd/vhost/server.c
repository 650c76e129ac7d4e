/* SPDX-License-Identifier: Apache-2.0 */
/* The vhost-user-blk frontend: per-export sockets, the VMM's messages,
 * and the queue threads (server.h). */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "blockd/sockets.h"
#include "blockd/vhost/blk.h"
#include "blockd/vhost/inflight.h"
#include "blockd/vhost/proto.h"
#include "blockd/vhost/server.h"
#include "common/cleanup.h"
#include "common/log.h"

#define VHOST_QUEUES 8u                 /* queues we offer (GET_QUEUE_NUM) */
#define VHOST_QUEUE_SIZE_MAX 1024u

#define PROTOCOL_FEATURES                                                                                     \
        ((1ull << VHU_PROTOCOL_F_MQ) | (1ull << VHU_PROTOCOL_F_REPLY_ACK) | (1ull << VHU_PROTOCOL_F_CONFIG) | \
         (1ull << VHU_PROTOCOL_F_INFLIGHT_SHMFD) | (1ull << VHU_PROTOCOL_F_RESET_DEVICE) |                    \
         (1ull << VHU_PROTOCOL_F_CONFIGURE_MEM_SLOTS))

struct vhost_dev;

struct vq {
        struct vhost_dev *d;
        unsigned idx;
        struct vring vr;
        bool addr_set, enabled, running;
        int kick_fd, call_fd, stop_fd;
        pthread_mutex_t call_lock;      /* call_fd: the control thread swaps it */
        pthread_t thread;
        struct vring_req *req;
        uint16_t *resubmit;             /* heads in flight at the last restart */
        unsigned n_resubmit;
        bool warned;
};

struct vhost_dev {
        struct vhostfe *f;
        char *name, *path;
        int listen_fd, stop_fd;
        pthread_t thread;
        /* The connection (the device thread's; conn_fd and e also read
         * under f->lock by kicks). */
        int conn_fd;
        struct export *e;
        uint64_t features, protocol;
        pthread_rwlock_t mem_lock;      /* queue threads read guest memory under it */
        struct memtable mt;
        struct inflight *inflight;
        struct vq q[VHOST_QUEUES];
        struct vhost_dev *next;
};

struct vhostfe {
        char *dir;
        struct vhostfe_exports x;
        pthread_mutex_t lock;
        struct vhost_dev *devs;
};

static void call_notify(struct vq *q) {
        pthread_mutex_lock(&q->call_lock);
        if (q->call_fd >= 0)
                (void) eventfd_write(q->call_fd, 1);
        pthread_mutex_unlock(&q->call_lock);
}

/* Carry out one request taken off the ring and complete it. */
static void serve_one(struct vq *q, int got) {
        struct vhost_dev *d = q->d;
        int64_t n;

        if (got <= 0)
                return;
        n = vblk_handle(d->e, q->req);
        if (n < 0) {
                (void) vring_break(&q->vr, "request without a status byte");
                return;
        }
        vring_push(&q->vr, q->req->head, (uint32_t) MIN(n, (int64_t) UINT32_MAX));
        if (vring_need_notify(&q->vr))
                call_notify(q);
}

/* Take and carry out everything available, then sleep until kicked. */
static void serve_ring(struct vq *q) {
        struct vhost_dev *d = q->d;
        int r;

        pthread_rwlock_rdlock(&d->mem_lock);
        for (;;) {
                (void) vring_notify_enable(&q->vr, false);
                while ((r = vring_pop(&q->vr, &d->mt, q->req)) > 0)
                        serve_one(q, r);
                if (r < 0 || !vring_notify_enable(&q->vr, true))
                        break;
        }
        if (q->vr.broken && !q->warned) {
                q->warned = true;
                log_warning("vhost-user %s: queue %u stopped, the guest broke its rules: %s", d->name, q->idx,
                            q->vr.why);
        }
        pthread_rwlock_unlock(&d->mem_lock);
}

static void *queue_main(void *arg) {
        struct vq *q = arg;
        struct vhost_dev *d = q->d;

        pthread_rwlock_rdlock(&d->mem_lock);
        for (unsigned i = 0; i < q->n_resubmit; i++)
                serve_one(q, vring_take_head(&q->vr, &d->mt, q->resubmit[i], q->req));
        pthread_rwlock_unlock(&d->mem_lock);
        if (q->n_resubmit)
                log_info("vhost-user %s: queue %u: %u requests in flight at the last disconnect carried out",
                         d->name, q->idx, q->n_resubmit);
        for (;;) {
                struct pollfd p[2] = { { .fd = q->kick_fd, .events = POLLIN }, { .fd = q->stop_fd, .events = POLLIN } };
                eventfd_t v;

                serve_ring(q);
                if (poll(p, 2, -1) < 0 && errno != EINTR)
                        break;
                if (p[1].revents)
                        break;
                if (p[0].revents & (POLLERR | POLLNVAL))
                        break;
                if (p[0].revents & POLLIN)
                        (void) eventfd_read(q->kick_fd, &v);
        }
        return NULL;
}

static void queue_stop(struct vq *q) {
        eventfd_t v;

        if (!q->running)
                return;
        (void) eventfd_write(q->stop_fd, 1);
        pthread_join(q->thread, NULL);
        (void) eventfd_read(q->stop_fd, &v);
        q->running = false;
}

/* Start serving q once it has everything it needs (control thread). */
static int queue_maybe_start(struct vq *q) {
        struct vhost_dev *d = q->d;
        bool enabled = q->enabled || !(d->features & (1ull << VHU_F_PROTOCOL_FEATURES));
        struct inflight_queue *iq;
        int r;

        if (q->running || !enabled || q->kick_fd < 0 || !q->addr_set || q->vr.num == 0)
                return 0;
        q->vr.event_idx = d->features & (1ull << VIRTIO_RING_F_EVENT_IDX);
        q->vr.indirect = d->features & (1ull << VIRTIO_RING_F_INDIRECT_DESC);
        q->vr.broken = false;
        q->vr.why = NULL;
        q->warned = false;
        r = vring_map(&q->vr, &d->mt);
        if (r < 0)
                return log_error_errno(r, "vhost-user %s: queue %u: the ring is not in guest memory", d->name, q->idx);
        iq = d->inflight && inflight_queue_size(d->inflight) == q->vr.num ? inflight_get_queue(d->inflight, q->idx) : NULL;
        q->vr.inflight = iq;
        q->n_resubmit = 0;
        if (iq) {
                free(q->resubmit);
                q->resubmit = calloc(q->vr.num, sizeof *q->resubmit);
                if (!q->resubmit)
                        return -ENOMEM;
                q->n_resubmit = inflight_recover(iq, q->vr.used_idx, q->resubmit, q->vr.num);
                q->vr.last_avail = (uint16_t) (q->vr.used_idx + q->n_resubmit);
        }
        r = -pthread_create(&q->thread, NULL, queue_main, q);
        if (r < 0)
                return log_error_errno(r, "vhost-user %s: cannot start queue %u: %m", d->name, q->idx);
        q->running = true;
        return 0;
}

/* Forget everything the VMM set up (disconnect, RESET_DEVICE). */
static void dev_reset(struct vhost_dev *d) {
        for (unsigned i = 0; i < VHOST_QUEUES; i++) {
                struct vq *q = &d->q[i];

                queue_stop(q);
                if (q->kick_fd >= 0)
                        close(q->kick_fd);
                pthread_mutex_lock(&q->call_lock);
                if (q->call_fd >= 0)
                        close(q->call_fd);
                q->call_fd = -1;
                pthread_mutex_unlock(&q->call_lock);
                q->kick_fd = -1;
                free(q->resubmit);
                q->resubmit = NULL;
                q->n_resubmit = 0;
                q->addr_set = q->enabled = false;
                memset(&q->vr, 0, sizeof q->vr);
        }
        pthread_rwlock_wrlock(&d->mem_lock);
        memtable_clear(&d->mt);
        pthread_rwlock_unlock(&d->mem_lock);
        inflight_free(d->inflight);
        d->inflight = NULL;
        d->features = d->protocol = 0;
}

/* After the memory table changed: find the running rings again. Caller
 * holds mem_lock for writing. */
static void remap_rings(struct vhost_dev *d) {
        for (unsigned i = 0; i < VHOST_QUEUES; i++) {
                struct vq *q = &d->q[i];

                if (q->running && vring_map(&q->vr, &d->mt) < 0)
                        (void) vring_break(&q->vr, "ring not in the new memory table");
        }
}

static int set_mem_table(struct vhost_dev *d, struct vhu_msg *m) {
        int r = 0;

        if (m->nfds != m->p.mem.nregions)
                return -EINVAL;
        pthread_rwlock_wrlock(&d->mem_lock);
        memtable_clear(&d->mt);
        for (unsigned i = 0; i < m->p.mem.nregions && r >= 0; i++)
                r = memtable_add(&d->mt, &m->p.mem.regions[i], m->fds[i]);
        if (r < 0)
                memtable_clear(&d->mt);
        remap_rings(d);
        pthread_rwlock_unlock(&d->mem_lock);
        return r;
}

static int mem_reg(struct vhost_dev *d, struct vhu_msg *m, bool add) {
        int r;

        if (add && m->nfds != 1)
                return -EINVAL;
        pthread_rwlock_wrlock(&d->mem_lock);
        r = add ? memtable_add(&d->mt, &m->p.mem1.region, m->fds[0]) : memtable_remove(&d->mt, &m->p.mem1.region);
        remap_rings(d);
        pthread_rwlock_unlock(&d->mem_lock);
        return r;
}

/* The queue a message names, or NULL. */
static struct vq *msg_queue(struct vhost_dev *d, uint32_t idx) {
        return idx < VHOST_QUEUES ? &d->q[idx] : NULL;
}

static int get_inflight(struct vhost_dev *d, struct vhu_msg *m, int sock) {
        struct vhu_inflight reply = m->p.inflight;
        _cleanup_close_ int fd = -EBADF;
        uint64_t size;
        int r;

        r = inflight_create(reply.num_queues, reply.queue_size, &fd, &size);
        if (r < 0)
                return r;
        reply.mmap_size = size;
        reply.mmap_offset = 0;
        return vhu_reply(sock, m, &reply, sizeof reply, fd);
}

static int set_inflight(struct vhost_dev *d, struct vhu_msg *m) {
        struct inflight *inf;
        int r;

        if (m->nfds != 1)
                return -EINVAL;
        for (unsigned i = 0; i < VHOST_QUEUES; i++)
                if (d->q[i].running)
                        return -EBUSY;
        r = inflight_map(m->fds[0], m->p.inflight.mmap_size, m->p.inflight.mmap_offset, m->p.inflight.num_queues,
                         m->p.inflight.queue_size, &inf);
        if (r < 0)
                return r;
        inflight_free(d->inflight);
        d->inflight = inf;
        return 0;
}

/* Act on one message. Returns 0 or -errno (the REPLY_ACK status); a
 * request we must answer has been answered when it returns >= 0 with
 * *replied set. Fatal trouble returns -EPROTO. */
static int handle(struct vhost_dev *d, struct vhu_msg *m, int sock, bool *replied) {
        struct vq *q;
        uint64_t u;
        int r;

        *replied = false;
        switch (m->hdr.request) {
        case VHU_GET_FEATURES:
                u = vblk_features(d->e) | (1ull << VHU_F_PROTOCOL_FEATURES);
                *replied = true;
                return vhu_reply(sock, m, &u, sizeof u, -1);
        case VHU_SET_FEATURES:
                d->features = m->p.u64 & (vblk_features(d->e) | (1ull << VHU_F_PROTOCOL_FEATURES));
                return 0;
        case VHU_GET_PROTOCOL_FEATURES:
                u = PROTOCOL_FEATURES;
                *replied = true;
                return vhu_reply(sock, m, &u, sizeof u, -1);
        case VHU_SET_PROTOCOL_FEATURES:
                d->protocol = m->p.u64 & PROTOCOL_FEATURES;
                return 0;
        case VHU_GET_QUEUE_NUM:
                u = VHOST_QUEUES;
                *replied = true;
                return vhu_reply(sock, m, &u, sizeof u, -1);
        case VHU_GET_MAX_MEM_SLOTS:
                u = MEMTABLE_MAX;
                *replied = true;
                return vhu_reply(sock, m, &u, sizeof u, -1);
        case VHU_SET_OWNER:
        case VHU_RESET_OWNER:
                return 0;
        case VHU_RESET_DEVICE:
                dev_reset(d);
                return 0;
        case VHU_SET_MEM_TABLE:
                return set_mem_table(d, m);
        case VHU_ADD_MEM_REG:
                return mem_reg(d, m, true);
        case VHU_REM_MEM_REG:
                return mem_reg(d, m, false);
        case VHU_SET_VRING_NUM:
                q = msg_queue(d, m->p.state.index);
                if (!q || q->running || m->p.state.num == 0 || m->p.state.num > VHOST_QUEUE_SIZE_MAX ||
                    (m->p.state.num & (m->p.state.num - 1)))
                        return -EINVAL;
                q->vr.num = m->p.state.num;
                return 0;
        case VHU_SET_VRING_ADDR:
                q = msg_queue(d, m->p.addr.index);
                if (!q || q->running)
                        return -EINVAL;
                q->vr.desc_uaddr = m->p.addr.desc;
                q->vr.avail_uaddr = m->p.addr.avail;
                q->vr.used_uaddr = m->p.addr.used;
                q->addr_set = true;
                return queue_maybe_start(q);
        case VHU_SET_VRING_BASE:
                q = msg_queue(d, m->p.state.index);
                if (!q || q->running)
                        return -EINVAL;
                q->vr.last_avail = (uint16_t) m->p.state.num;
                return 0;
        case VHU_GET_VRING_BASE: {
                struct vhu_vring_state s = m->p.state;

                q = msg_queue(d, s.index);
                if (!q)
                        return -EPROTO;
                queue_stop(q);
                s.num = q->vr.last_avail;
                if (q->kick_fd >= 0)
                        close(q->kick_fd);
                q->kick_fd = -1;
                q->enabled = false;
                vring_unmap(&q->vr);
                *replied = true;
                return vhu_reply(sock, m, &s, sizeof s, -1);
        }
        case VHU_SET_VRING_KICK:
        case VHU_SET_VRING_CALL:
        case VHU_SET_VRING_ERR: {
                int fd = m->p.u64 & VHU_VRING_NOFD ? -1 : vhu_msg_take_fd(m);

                q = msg_queue(d, m->p.u64 & VHU_VRING_IDX_MASK);
                if (!q || (fd < 0 && !(m->p.u64 & VHU_VRING_NOFD))) {
                        if (fd >= 0)
                                close(fd);
                        return -EINVAL;
                }
                if (m->hdr.request == VHU_SET_VRING_ERR) {
                        if (fd >= 0)
                                close(fd);
                        return 0;
                }
                if (m->hdr.request == VHU_SET_VRING_CALL) {
                        pthread_mutex_lock(&q->call_lock);
                        if (q->call_fd >= 0)
                                close(q->call_fd);
                        q->call_fd = fd;
                        pthread_mutex_unlock(&q->call_lock);
                        return 0;
                }
                if (fd < 0)
                        return -EOPNOTSUPP;     /* polling the ring: not offered */
                queue_stop(q);
                if (q->kick_fd >= 0)
                        close(q->kick_fd);
                q->kick_fd = fd;
                return queue_maybe_start(q);
        }
        case VHU_SET_VRING_ENABLE:
                q = msg_queue(d, m->p.state.index);
                if (!q)
                        return -EINVAL;
                q->enabled = m->p.state.num != 0;
                if (!q->enabled) {
                        queue_stop(q);
                        return 0;
                }
                return queue_maybe_start(q);
        case VHU_GET_CONFIG: {
                struct virtio_blk_config cfg;
                struct vhu_config c = m->p.config;

                vblk_config(d->e, VHOST_QUEUES, &cfg);
                if (c.offset > sizeof cfg || c.size > sizeof cfg - c.offset) {
                        *replied = true;
                        return vhu_reply(sock, m, &c, VHU_CONFIG_HDR, -1);      /* size 0: failure */
                }
                memcpy(c.payload, (uint8_t *) &cfg + c.offset, c.size);
                *replied = true;
                return vhu_reply(sock, m, &c, VHU_CONFIG_HDR + c.size, -1);
        }
        case VHU_SET_CONFIG:
                return 0;       /* nothing writable: writeback is not offered */
        case VHU_GET_INFLIGHT_FD:
                r = get_inflight(d, m, sock);
                *replied = r >= 0;
                return r;
        case VHU_SET_INFLIGHT_FD:
                return set_inflight(d, m);
        case VHU_SET_BACKEND_REQ_FD:
                return 0;       /* not offered; the descriptor is closed with the message */
        default:
                log_warning("vhost-user %s: the VMM sent %s (%u), which is not offered; disconnecting", d->name,
                            vhu_request_name(m->hdr.request), m->hdr.request);
                return -EPROTO;
        }
}

/* Serve one connected VMM until it goes or we stop. */
static void serve_conn(struct vhost_dev *d, int sock) {
        for (;;) {
                struct pollfd p[3] = { { .fd = sock, .events = POLLIN }, { .fd = d->stop_fd, .events = POLLIN },
                                       { .fd = d->listen_fd, .events = POLLIN } };
                struct vhu_msg m;
                bool replied;
                int r;

                if (poll(p, 3, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        return;
                }
                if (p[1].revents)
                        return;
                /* The VMM's messages first: one that closed and connected
                 * again is seen going before its new connection is taken
                 * for a second VMM (which is refused). */
                if (!p[0].revents) {
                        int extra = p[2].revents & POLLIN ? accept4(d->listen_fd, NULL, NULL, SOCK_CLOEXEC) : -1;

                        if (extra >= 0) {
                                log_warning("vhost-user %s: a second VMM connected while one is served; closed it",
                                            d->name);
                                close(extra);
                        }
                        continue;
                }
                r = vhu_recv(sock, &m);
                if (r == -ECONNRESET)
                        return;
                if (r < 0) {
                        log_warning_errno(r, "vhost-user %s: bad message from the VMM (%s, %u bytes: %m); disconnecting",
                                          d->name, vhu_request_name(m.hdr.request), m.hdr.size);
                        return;
                }
                log_debug("vhost-user %s: %s", d->name, vhu_request_name(m.hdr.request));
                r = handle(d, &m, sock, &replied);
                vhu_msg_close_fds(&m);
                if (r == -EPROTO)
                        return;
                if (r < 0)
                        log_warning_errno(r, "vhost-user %s: %s failed: %m", d->name, vhu_request_name(m.hdr.request));
                if (!replied && (m.hdr.flags & VHU_FLAG_NEED_REPLY) && (d->protocol & (1ull << VHU_PROTOCOL_F_REPLY_ACK)))
                        r = vhu_reply_ack(sock, &m, r);
                else if (r < 0 && !replied)
                        return;         /* a failure the VMM would not hear of: drop it, it will see */
                if (r < 0 && replied)
                        return;         /* the reply could not be sent */
        }
}

static void *dev_main(void *arg) {
        struct vhost_dev *d = arg;

        for (;;) {
                struct pollfd p[2] = { { .fd = d->listen_fd, .events = POLLIN }, { .fd = d->stop_fd, .events = POLLIN } };
                struct export *e;
                int sock;

                if (poll(p, 2, -1) < 0 && errno != EINTR)
                        break;
                if (p[1].revents)
                        break;
                if (!(p[0].revents & POLLIN))
                        continue;
                sock = accept4(d->listen_fd, NULL, NULL, SOCK_CLOEXEC);
                if (sock < 0)
                        continue;
                e = d->f->x.get(d->f->x.userdata, d->name);
                if (!e) {
                        log_warning("vhost-user %s: a VMM connected, but the export is not attached; closed", d->name);
                        close(sock);
                        continue;
                }
                export_client_add(e);
                pthread_mutex_lock(&d->f->lock);
                d->e = e;
                d->conn_fd = sock;
                pthread_mutex_unlock(&d->f->lock);
                log_info("vhost-user %s: VMM connected", d->name);
                serve_conn(d, sock);
                dev_reset(d);
                pthread_mutex_lock(&d->f->lock);
                d->e = NULL;
                d->conn_fd = -1;
                pthread_mutex_unlock(&d->f->lock);
                close(sock);
                export_client_remove(e);
                export_unref(e);
                log_info("vhost-user %s: VMM disconnected", d->name);
        }
        return NULL;
}

static void dev_free(struct vhost_dev *d) {
        if (!d)
                return;
        (void) eventfd_write(d->stop_fd, 1);
        pthread_join(d->thread, NULL);
        socket_unlisten(d->listen_fd, d->path);
        for (unsigned i = 0; i < VHOST_QUEUES; i++) {
                close(d->q[i].stop_fd);
                free(d->q[i].req);
                pthread_mutex_destroy(&d->q[i].call_lock);
        }
        close(d->stop_fd);
        pthread_rwlock_destroy(&d->mem_lock);
        free(d->name);
        free(d->path);
        free(d);
}

char *vhostfe_socket_path(struct vhostfe *f, const char *name) {
        char *p = NULL;

        pthread_mutex_lock(&f->lock);
        for (struct vhost_dev *d = f->devs; d; d = d->next)
                if (strcmp(d->name, name) == 0)
                        p = strdup(d->path);
        pthread_mutex_unlock(&f->lock);
        return p;
}

/* A device serving name on path, its thread started. */
static int dev_new(struct vhostfe *f, const char *name, const char *path, struct vhost_dev **ret) {
        struct vhost_dev *d = calloc(1, sizeof *d);
        int r = -ENOMEM;

        if (!d)
                return -ENOMEM;
        d->f = f;
        d->listen_fd = d->stop_fd = d->conn_fd = -1;
        pthread_rwlock_init(&d->mem_lock, NULL);
        memtable_init(&d->mt);
        for (unsigned i = 0; i < VHOST_QUEUES; i++) {
                struct vq *q = &d->q[i];

                q->d = d;
                q->idx = i;
                q->kick_fd = q->call_fd = -1;
                pthread_mutex_init(&q->call_lock, NULL);
                q->stop_fd = eventfd(0, EFD_CLOEXEC);
                q->req = malloc(sizeof *q->req);
                if (q->stop_fd < 0 || !q->req)
                        goto fail;
        }
        d->name = strdup(name);
        d->path = strdup(path);
        d->stop_fd = eventfd(0, EFD_CLOEXEC);
        if (!d->name || !d->path || d->stop_fd < 0)
                goto fail;
        d->listen_fd = unix_listen("vhost-user", path, 0600);
        if (d->listen_fd < 0) {
                r = d->listen_fd;
                goto fail;
        }
        r = -pthread_create(&d->thread, NULL, dev_main, d);
        if (r < 0) {
                socket_unlisten(d->listen_fd, d->path);
                goto fail;
        }
        *ret = d;
        return 0;
fail:
        for (unsigned i = 0; i < VHOST_QUEUES; i++) {
                if (d->q[i].stop_fd >= 0)
                        close(d->q[i].stop_fd);
                free(d->q[i].req);
                pthread_mutex_destroy(&d->q[i].call_lock);
        }
        if (d->stop_fd >= 0)
                close(d->stop_fd);
        pthread_rwlock_destroy(&d->mem_lock);
        free(d->name);
        free(d->path);
        free(d);
        return r;
}

int vhostfe_new(const char *dir, const struct vhostfe_exports *x, struct vhostfe **ret) {
        struct vhostfe *f = calloc(1, sizeof *f);

        if (!f)
                return -ENOMEM;
        f->dir = dir ? strdup(dir) : NULL;
        if (dir && !f->dir) {
                free(f);
                return -ENOMEM;
        }
        f->x = *x;
        pthread_mutex_init(&f->lock, NULL);
        *ret = f;
        return 0;
}

int vhostfe_add(struct vhostfe *f, struct export *e) {
        _cleanup_free_ char *path = NULL;
        struct vhost_dev *d;
        int r;

        if (!f)
                return 0;
        if (export_vhost_user(e))
                path = strdup(export_vhost_user(e));
        else if (f->dir && asprintf(&path, "%s/%s.sock", f->dir, export_name(e)) < 0)
                path = NULL;
        else if (!f->dir)
                return 0;
        if (!path)
                return -ENOMEM;
        pthread_mutex_lock(&f->lock);
        for (d = f->devs; d; d = d->next)
                if (strcmp(d->name, export_name(e)) == 0)
                        break;
        pthread_mutex_unlock(&f->lock);
        if (d)
                return 0;
        r = dev_new(f, export_name(e), path, &d);
        if (r < 0)
                return log_error_errno(r, "vhost-user %s: cannot listen on %s: %s", export_name(e), path,
                                       r == -EADDRINUSE ? "another process serves it" : strerror(-r));
        pthread_mutex_lock(&f->lock);
        d->next = f->devs;
        f->devs = d;
        pthread_mutex_unlock(&f->lock);
        log_info("vhost-user-blk %s on %s", export_name(e), path);
        return 0;
}

void vhostfe_kick_export(struct vhostfe *f, struct export *e, bool hard) {
        struct vhost_dev *gone = NULL;
        struct export *now;

        if (!f)
                return;
        now = f->x.get(f->x.userdata, export_name(e));
        pthread_mutex_lock(&f->lock);
        for (struct vhost_dev **pp = &f->devs; *pp;) {
                struct vhost_dev *d = *pp;

                if (d->e == e && d->conn_fd >= 0)
                        (void) shutdown(d->conn_fd, SHUT_RDWR);
                if (!now && strcmp(d->name, export_name(e)) == 0) {
                        *pp = d->next;
                        d->next = gone;
                        gone = d;
                        continue;
                }
                pp = &d->next;
        }
        pthread_mutex_unlock(&f->lock);
        if (now)
                export_unref(now);
        while (gone) {
                struct vhost_dev *d = gone;

                gone = d->next;
                log_info("vhost-user %s: socket %s removed", d->name, d->path);
                dev_free(d);
        }
}

void vhostfe_free(struct vhostfe *f) {
        if (!f)
                return;
        while (f->devs) {
                struct vhost_dev *d = f->devs;

                f->devs = d->next;
                pthread_mutex_lock(&f->lock);
                if (d->conn_fd >= 0)
                        (void) shutdown(d->conn_fd, SHUT_RDWR);
                pthread_mutex_unlock(&f->lock);
                dev_free(d);
        }
        pthread_mutex_destroy(&f->lock);
        free(f->dir);
        free(f);
}
