/* SPDX-License-Identifier: Apache-2.0 */
/* The vhost-user message codec (proto.h). */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "blockd/vhost/proto.h"
#include "common/util.h"

/* Payload sizes: exact for fixed structs; SET_MEM_TABLE and GET_CONFIG /
 * SET_CONFIG are checked against their own counts. */
static int payload_ok(const struct vhu_msg *m) {
        uint32_t s = m->hdr.size;

        switch (m->hdr.request) {
        case VHU_GET_FEATURES:
        case VHU_GET_PROTOCOL_FEATURES:
        case VHU_GET_QUEUE_NUM:
        case VHU_GET_MAX_MEM_SLOTS:
        case VHU_SET_OWNER:
        case VHU_RESET_OWNER:
        case VHU_RESET_DEVICE:
        case VHU_GET_STATUS:
                return s == 0 || s == sizeof(uint64_t);
        case VHU_SET_FEATURES:
        case VHU_SET_PROTOCOL_FEATURES:
        case VHU_SET_VRING_KICK:
        case VHU_SET_VRING_CALL:
        case VHU_SET_VRING_ERR:
        case VHU_SET_LOG_BASE:
        case VHU_SET_STATUS:
                return s == sizeof(uint64_t);
        case VHU_SET_VRING_NUM:
        case VHU_SET_VRING_BASE:
        case VHU_GET_VRING_BASE:
        case VHU_SET_VRING_ENABLE:
                return s == sizeof(struct vhu_vring_state);
        case VHU_SET_VRING_ADDR:
                return s == sizeof(struct vhu_vring_addr);
        case VHU_SET_MEM_TABLE:
                return s >= 8 && m->p.mem.nregions <= VHU_MAX_MEM_REGIONS &&
                       s == 8 + m->p.mem.nregions * sizeof(struct vhu_mem_region);
        case VHU_ADD_MEM_REG:
        case VHU_REM_MEM_REG:
                return s == sizeof(struct vhu_mem_single);
        case VHU_GET_CONFIG:
        case VHU_SET_CONFIG:
                return s >= VHU_CONFIG_HDR && m->p.config.size <= VHU_MAX_CONFIG &&
                       s == VHU_CONFIG_HDR + m->p.config.size;
        case VHU_GET_INFLIGHT_FD:
        case VHU_SET_INFLIGHT_FD:
                return s == sizeof(struct vhu_inflight);
        default:
                /* Unknown requests: any size that fits; the server refuses them. */
                return 1;
        }
}

int vhu_check(const struct vhu_msg *m) {
        if ((m->hdr.flags & VHU_VERSION_MASK) != VHU_VERSION || (m->hdr.flags & VHU_FLAG_REPLY))
                return -EPROTO;
        if (m->hdr.size > sizeof m->p)
                return -EPROTO;
        return payload_ok(m) ? 0 : -EPROTO;
}

void vhu_msg_close_fds(struct vhu_msg *m) {
        for (unsigned i = 0; i < m->nfds; i++)
                if (m->fds[i] >= 0)
                        (void) close(m->fds[i]);
        m->nfds = 0;
}

int vhu_msg_take_fd(struct vhu_msg *m) {
        int fd;

        if (m->nfds == 0 || m->fds[0] < 0)
                return -EBADF;
        fd = m->fds[0];
        m->fds[0] = -1;
        return fd;
}

/* Exactly len bytes, or -ECONNRESET when the VMM hangs up first. */
static int recv_full(int fd, void *buf, size_t len) {
        ssize_t n = read_full(fd, buf, len);

        if (n < 0)
                return (int) n;
        return (size_t) n < len ? -ECONNRESET : 0;
}

int vhu_recv(int fd, struct vhu_msg *m) {
        union {
                char buf[CMSG_SPACE(sizeof(int) * VHU_MAX_FDS)];
                struct cmsghdr align;
        } ctl;
        struct iovec iov = { .iov_base = &m->hdr, .iov_len = sizeof m->hdr };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf };
        ssize_t n;
        int r;

        memset(m, 0, sizeof *m);
        do
                n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return -errno;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
                size_t k;

                if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
                        continue;
                k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                for (size_t i = 0; i < k; i++) {
                        int f;

                        memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof f);
                        if (m->nfds < VHU_MAX_FDS)
                                m->fds[m->nfds++] = f;
                        else
                                (void) close(f);
                }
        }
        if (n == 0) {
                vhu_msg_close_fds(m);
                return -ECONNRESET;
        }
        if ((size_t) n < sizeof m->hdr) {
                r = recv_full(fd, (char *) &m->hdr + n, sizeof m->hdr - (size_t) n);
                if (r < 0)
                        goto fail;
        }
        r = -EPROTO;
        if (mh.msg_flags & MSG_CTRUNC || m->hdr.size > sizeof m->p)
                goto fail;
        r = recv_full(fd, &m->p, m->hdr.size);
        if (r < 0)
                goto fail;
        r = vhu_check(m);
        if (r < 0)
                goto fail;
        return 0;
fail:
        vhu_msg_close_fds(m);
        return r;
}

int vhu_reply(int sock, const struct vhu_msg *req, const void *payload, uint32_t size, int fd) {
        struct vhu_hdr h = { .request = req->hdr.request, .flags = VHU_VERSION | VHU_FLAG_REPLY, .size = size };
        struct iovec iov[2] = { { .iov_base = &h, .iov_len = sizeof h }, { .iov_base = (void *) payload, .iov_len = size } };
        union {
                char buf[CMSG_SPACE(sizeof(int))];
                struct cmsghdr align;
        } ctl;
        struct msghdr mh = { .msg_iov = iov, .msg_iovlen = size ? 2 : 1 };
        ssize_t n;

        if (fd >= 0) {
                struct cmsghdr *c;

                memset(&ctl, 0, sizeof ctl);
                mh.msg_control = ctl.buf;
                mh.msg_controllen = sizeof ctl.buf;
                c = CMSG_FIRSTHDR(&mh);
                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_RIGHTS;
                c->cmsg_len = CMSG_LEN(sizeof(int));
                memcpy(CMSG_DATA(c), &fd, sizeof fd);
        }
        do
                n = sendmsg(sock, &mh, MSG_NOSIGNAL);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return -errno;
        /* A Unix stream socket takes a small message whole or not at all. */
        return (size_t) n == sizeof h + size ? 0 : -EIO;
}

int vhu_reply_ack(int sock, const struct vhu_msg *req, int status) {
        uint64_t v = status ? 1 : 0;

        return vhu_reply(sock, req, &v, sizeof v, -1);
}

const char *vhu_request_name(uint32_t request) {
        static const char *const names[] = {
                [VHU_GET_FEATURES] = "GET_FEATURES",
                [VHU_SET_FEATURES] = "SET_FEATURES",
                [VHU_SET_OWNER] = "SET_OWNER",
                [VHU_RESET_OWNER] = "RESET_OWNER",
                [VHU_SET_MEM_TABLE] = "SET_MEM_TABLE",
                [VHU_SET_LOG_BASE] = "SET_LOG_BASE",
                [VHU_SET_LOG_FD] = "SET_LOG_FD",
                [VHU_SET_VRING_NUM] = "SET_VRING_NUM",
                [VHU_SET_VRING_ADDR] = "SET_VRING_ADDR",
                [VHU_SET_VRING_BASE] = "SET_VRING_BASE",
                [VHU_GET_VRING_BASE] = "GET_VRING_BASE",
                [VHU_SET_VRING_KICK] = "SET_VRING_KICK",
                [VHU_SET_VRING_CALL] = "SET_VRING_CALL",
                [VHU_SET_VRING_ERR] = "SET_VRING_ERR",
                [VHU_GET_PROTOCOL_FEATURES] = "GET_PROTOCOL_FEATURES",
                [VHU_SET_PROTOCOL_FEATURES] = "SET_PROTOCOL_FEATURES",
                [VHU_GET_QUEUE_NUM] = "GET_QUEUE_NUM",
                [VHU_SET_VRING_ENABLE] = "SET_VRING_ENABLE",
                [VHU_SET_BACKEND_REQ_FD] = "SET_BACKEND_REQ_FD",
                [VHU_GET_CONFIG] = "GET_CONFIG",
                [VHU_SET_CONFIG] = "SET_CONFIG",
                [VHU_GET_INFLIGHT_FD] = "GET_INFLIGHT_FD",
                [VHU_SET_INFLIGHT_FD] = "SET_INFLIGHT_FD",
                [VHU_RESET_DEVICE] = "RESET_DEVICE",
                [VHU_GET_MAX_MEM_SLOTS] = "GET_MAX_MEM_SLOTS",
                [VHU_ADD_MEM_REG] = "ADD_MEM_REG",
                [VHU_REM_MEM_REG] = "REM_MEM_REG",
                [VHU_SET_STATUS] = "SET_STATUS",
                [VHU_GET_STATUS] = "GET_STATUS",
        };

        if (request < sizeof names / sizeof names[0] && names[request])
                return names[request];
        return "?";
}
