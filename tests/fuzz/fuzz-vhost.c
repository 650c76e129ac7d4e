/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target: blockd's vhost-user-blk backend from what a VMM and its
 * guest control. The first byte picks what the rest is:
 *   even: the byte stream a VMM sends on the socket, read message by
 *         message with the codec (blockd/vhost/proto.c) until it fails;
 *   odd:  the guest's memory (a memfd, as a VMM shares it) holding a split
 *         virtqueue's rings and descriptor tables, which the queue code
 *         (blockd/vhost/vring.c) takes requests from until the ring is
 *         empty or broken; every buffer of every request is written over,
 *         so a translation outside the memory would be caught.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "blockd/vhost/memtable.h"
#include "blockd/vhost/proto.h"
#include "blockd/vhost/vring.h"

#define MEM (64u << 10)
#define UVA 0x10000000ull

static void fuzz_codec(const uint8_t *data, size_t size) {
        struct vhu_msg m;
        int sv[2];

        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
                abort();
        if (size && write(sv[1], data, size) != (ssize_t) size)
                abort();
        close(sv[1]);
        while (vhu_recv(sv[0], &m) == 0) {
                if (vhu_check(&m) != 0)
                        abort();        /* vhu_recv let through what vhu_check refuses */
                (void) vhu_request_name(m.hdr.request);
                vhu_msg_close_fds(&m);
        }
        close(sv[0]);
}

static void fuzz_vring(const uint8_t *data, size_t size) {
        static struct vring_req req;
        struct vhu_mem_region r = { .gpa = 0x1000, .size = MEM, .uaddr = UVA, .mmap_offset = 0 };
        struct memtable mt;
        struct vring vr = { 0 };
        int fd;

        fd = memfd_create("fuzz-guest", MFD_CLOEXEC);
        if (fd < 0 || ftruncate(fd, MEM) < 0)
                abort();
        if (size > MEM)
                size = MEM;
        if (size && pwrite(fd, data, size, 0) != (ssize_t) size)
                abort();
        memtable_init(&mt);
        if (memtable_add(&mt, &r, fd) < 0)
                abort();
        vr.num = 16u << (size ? data[0] % 4 : 0);
        vr.desc_uaddr = UVA;
        vr.avail_uaddr = UVA + 0x2000;
        vr.used_uaddr = UVA + 0x3000;
        vr.event_idx = size > 1 && (data[1] & 1);
        vr.indirect = size > 1 && (data[1] & 2);
        if (vring_map(&vr, &mt) == 0) {
                for (unsigned n = 0; n < 4 * vr.num; n++) {
                        if (vring_pop(&vr, &mt, &req) <= 0)
                                break;
                        for (unsigned i = 0; i < req.n_out + req.n_in; i++)
                                memset(req.iov[i].iov_base, 0xa5, req.iov[i].iov_len);
                        vring_push(&vr, req.head, (uint32_t) req.in_len);
                        (void) vring_need_notify(&vr);
                }
                (void) vring_notify_enable(&vr, true);
        }
        memtable_clear(&mt);
        close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size == 0)
                return 0;
        if (data[0] & 1)
                fuzz_vring(data + 1, size - 1);
        else
                fuzz_codec(data + 1, size - 1);
        return 0;
}
