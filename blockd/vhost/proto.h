/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The vhost-user message codec: reading one message (header, payload,
 * passed descriptors) from the VMM's socket with every size checked
 * against what its request carries, and writing replies. The one place
 * that knows the framing; protocol.h has the structs.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "blockd/vhost/protocol.h"

struct vhu_msg {
        struct vhu_hdr hdr;
        union vhu_payload p;
        int fds[VHU_MAX_FDS];
        unsigned nfds;
};

/* Read one message. 0, -ECONNRESET at end of stream, -EPROTO for a bad
 * header or a payload whose size does not fit the request (the
 * connection cannot be trusted after that), other -errno. On success the
 * caller owns msg->fds (vhu_msg_close_fds); on failure none are open. */
int vhu_recv(int fd, struct vhu_msg *msg);
/* Check a decoded message (header and payload sizes) as vhu_recv does:
 * 0 or -EPROTO. For the fuzzer and for vhu_recv. */
int vhu_check(const struct vhu_msg *msg);
/* Close the descriptors a message carried (those not taken: set to -1). */
void vhu_msg_close_fds(struct vhu_msg *msg);
/* Take the message's first descriptor (-EBADF if none). */
int vhu_msg_take_fd(struct vhu_msg *msg);

/* Reply to req with size bytes of payload (and fd, or -1). 0 or -errno. */
int vhu_reply(int sock, const struct vhu_msg *req, const void *payload, uint32_t size, int fd);
/* The REPLY_ACK answer: a u64 status (0 = success). */
int vhu_reply_ack(int sock, const struct vhu_msg *req, int status);
/* The name of a request, for logs ("?" when unknown). */
const char *vhu_request_name(uint32_t request);
