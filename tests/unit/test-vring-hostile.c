/* SPDX-License-Identifier: Apache-2.0 */
/* blockd/vhost: the virtqueue code fed crafted descriptor tables in a
 * memfd "guest memory" (loops, indices out of range, buffers outside the
 * memory table, bad indirect tables, overlong chains) must mark the queue
 * broken with a reason and never touch memory outside the table; good
 * chains become the right iovecs; event idx decides interrupts; the
 * memory table refuses bad regions; the message codec refuses bad sizes;
 * inflight tracking gives back what was in flight, oldest first. */
#undef NDEBUG
#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "blockd/vhost/inflight.h"
#include "blockd/vhost/memtable.h"
#include "blockd/vhost/proto.h"
#include "blockd/vhost/vring.h"

#define GPA 0x100000ull                 /* guest-physical base of the memory */
#define UVA 0x7f0000000000ull           /* where the "VMM" has it */
#define MEM (1u << 20)
#define DESC 0x0000u                    /* ring offsets in the memory */
#define AVAIL 0x8000u
#define USED 0x10000u
#define DATA 0x40000u

static uint8_t *guest;                  /* the test's view of the memory */
static int memfd;
static struct memtable mt;
static struct vring vr;
static struct vring_req req;

static struct vring_desc *desc(unsigned i) {
        return (struct vring_desc *) (guest + DESC) + i;
}
static struct vring_avail *avail(void) {
        return (struct vring_avail *) (guest + AVAIL);
}
static struct vring_used *used(void) {
        return (struct vring_used *) (guest + USED);
}

static void set_desc(unsigned i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next) {
        *desc(i) = (struct vring_desc) { .addr = addr, .len = len, .flags = flags, .next = next };
}

/* A fresh queue of num entries over zeroed rings. */
static void setup(unsigned num) {
        memset(guest, 0, MEM);
        memset(&vr, 0, sizeof vr);
        vr.num = num;
        vr.desc_uaddr = UVA + DESC;
        vr.avail_uaddr = UVA + AVAIL;
        vr.used_uaddr = UVA + USED;
        vr.indirect = true;
        assert(vring_map(&vr, &mt) == 0);
}

/* Offer head as the next available entry. */
static void offer(uint16_t head) {
        avail()->ring[avail()->idx % vr.num] = head;
        avail()->idx++;
}

static void expect_broken(const char *what) {
        assert(vring_pop(&vr, &mt, &req) == -EIO);
        assert(vr.broken);
        if (!strstr(vr.why, what)) {
                fprintf(stderr, "expected '%s', got '%s'\n", what, vr.why);
                abort();
        }
        /* Broken stays broken. */
        assert(vring_pop(&vr, &mt, &req) == -EIO);
}

static void test_good_chain(void) {
        setup(16);
        set_desc(3, GPA + DATA, 16, VRING_DESC_F_NEXT, 7);
        set_desc(7, GPA + DATA + 4096, 512, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 9);
        set_desc(9, GPA + DATA + 8192, 1, VRING_DESC_F_WRITE, 0);
        offer(3);
        assert(vring_pop(&vr, &mt, &req) == 1);
        assert(req.head == 3 && req.n_out == 1 && req.n_in == 2);
        assert(req.out_len == 16 && req.in_len == 513);
        assert(req.iov[0].iov_base == memtable_gpa(&mt, GPA + DATA, 1) && req.iov[0].iov_len == 16);
        assert(req.iov[1].iov_base == memtable_gpa(&mt, GPA + DATA + 4096, 1) && req.iov[2].iov_len == 1);
        assert(vring_pop(&vr, &mt, &req) == 0);
        vring_push(&vr, 3, 513);
        assert(used()->idx == 1 && used()->ring[0].id == 3 && used()->ring[0].len == 513);
        assert(!vr.broken);
}

static void test_hostile_chains(void) {
        setup(16);
        set_desc(0, GPA + DATA, 16, VRING_DESC_F_NEXT, 1);
        set_desc(1, GPA + DATA, 16, VRING_DESC_F_NEXT, 0);
        offer(0);
        expect_broken("loops");

        setup(16);
        set_desc(0, GPA + DATA, 16, VRING_DESC_F_NEXT, 16);
        offer(0);
        expect_broken("next index out of range");

        setup(16);
        offer(21);
        expect_broken("head index out of range");

        setup(16);
        avail()->idx = 17;
        expect_broken("ran ahead");

        setup(16);
        set_desc(0, 0xdead00000000ull, 16, 0, 0);
        offer(0);
        expect_broken("outside guest memory");

        /* Straddling the end of the memory, below its start, wrapping. */
        setup(16);
        set_desc(0, GPA + MEM - 8, 16, 0, 0);
        offer(0);
        expect_broken("outside guest memory");
        setup(16);
        set_desc(0, GPA - 8, 16, 0, 0);
        offer(0);
        expect_broken("outside guest memory");
        setup(16);
        set_desc(0, UINT64_MAX - 4, 16, 0, 0);
        offer(0);
        expect_broken("outside guest memory");

        setup(16);
        set_desc(0, GPA + DATA, 16, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 1);
        set_desc(1, GPA + DATA, 16, 0, 0);
        offer(0);
        expect_broken("readable buffer after a writable one");

        /* A chain as long as a big queue, of more buffers than we take. */
        setup(2048);
        for (unsigned i = 0; i < 1100; i++)
                set_desc(i, GPA + DATA + i, 1, i < 1099 ? VRING_DESC_F_NEXT : 0, (uint16_t) (i + 1));
        offer(0);
        expect_broken("too many buffers");
}

static void test_indirect(void) {
        struct vring_desc *t = (struct vring_desc *) (guest + DATA + 0x10000);

        setup(8);
        t[0] = (struct vring_desc) { GPA + DATA, 16, VRING_DESC_F_NEXT, 2 };
        t[2] = (struct vring_desc) { GPA + DATA + 4096, 4096, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 1 };
        t[1] = (struct vring_desc) { GPA + DATA + 8192, 1, VRING_DESC_F_WRITE, 0 };
        set_desc(5, GPA + DATA + 0x10000, 3 * 16, VRING_DESC_F_INDIRECT, 0);
        offer(5);
        assert(vring_pop(&vr, &mt, &req) == 1);
        assert(req.head == 5 && req.n_out == 1 && req.n_in == 2 && req.in_len == 4097);

        setup(8);
        vr.indirect = false;
        set_desc(0, GPA + DATA + 0x10000, 16, VRING_DESC_F_INDIRECT, 0);
        offer(0);
        expect_broken("not negotiated");

        setup(8);
        t[0] = (struct vring_desc) { GPA + DATA, 16, VRING_DESC_F_INDIRECT, 0 };
        set_desc(0, GPA + DATA + 0x10000, 16, VRING_DESC_F_INDIRECT, 0);
        offer(0);
        expect_broken("nested");

        setup(8);
        set_desc(0, GPA + DATA + 0x10000, 16, VRING_DESC_F_INDIRECT | VRING_DESC_F_NEXT, 1);
        offer(0);
        expect_broken("indirect descriptor");

        setup(8);
        set_desc(0, GPA + DATA, 16, VRING_DESC_F_NEXT, 1);
        set_desc(1, GPA + DATA + 0x10000, 16, VRING_DESC_F_INDIRECT, 0);
        offer(0);
        expect_broken("inside a chain");

        setup(8);
        set_desc(0, GPA + DATA + 0x10000, 0, VRING_DESC_F_INDIRECT, 0);
        offer(0);
        expect_broken("bad indirect table length");
        setup(8);
        set_desc(0, GPA + DATA + 0x10000, 24, VRING_DESC_F_INDIRECT, 0);
        offer(0);
        expect_broken("bad indirect table length");
        setup(8);
        set_desc(0, GPA + DATA, (VRING_MAX_SEGS + 1) * 16, VRING_DESC_F_INDIRECT, 0);
        offer(0);
        expect_broken("bad indirect table length");

        setup(8);
        set_desc(0, GPA + MEM - 16, 32, VRING_DESC_F_INDIRECT, 0);
        offer(0);
        expect_broken("indirect table outside");

        setup(8);
        t[0] = (struct vring_desc) { GPA + DATA, 16, VRING_DESC_F_NEXT, 1 };
        t[1] = (struct vring_desc) { GPA + DATA, 16, VRING_DESC_F_NEXT, 0 };
        set_desc(0, GPA + DATA + 0x10000, 32, VRING_DESC_F_INDIRECT, 0);
        offer(0);
        expect_broken("indirect chain loops");

        setup(8);
        t[0] = (struct vring_desc) { GPA + DATA, 16, VRING_DESC_F_NEXT, 9 };
        set_desc(0, GPA + DATA + 0x10000, 32, VRING_DESC_F_INDIRECT, 0);
        offer(0);
        expect_broken("indirect next out of range");
}

static void test_map(void) {
        memset(&vr, 0, sizeof vr);
        vr.num = 3;
        assert(vring_map(&vr, &mt) == -EINVAL);
        vr.num = 65536;
        assert(vring_map(&vr, &mt) == -EINVAL);
        vr.num = 256;
        vr.desc_uaddr = UVA + MEM - 16;
        vr.avail_uaddr = UVA + AVAIL;
        vr.used_uaddr = UVA + USED;
        assert(vring_map(&vr, &mt) == -EFAULT);
        assert(vring_pop(&vr, &mt, &req) == 0);         /* unmapped: nothing, no crash */
        vr.desc_uaddr = GPA + DESC;                     /* a guest address is not a VMM address */
        assert(vring_map(&vr, &mt) == -EFAULT);
}

static void test_event_idx(void) {
        uint16_t *used_event, *avail_event;

        setup(16);
        vr.event_idx = true;
        used_event = &avail()->ring[16];
        avail_event = (uint16_t *) &used()->ring[16];
        for (unsigned i = 0; i < 4; i++) {
                set_desc(i, GPA + DATA, 1, VRING_DESC_F_WRITE, 0);
                offer((uint16_t) i);
        }
        assert(vring_pop(&vr, &mt, &req) == 1);
        assert(*avail_event == 1);
        vring_push(&vr, req.head, 1);
        assert(vring_need_notify(&vr));                 /* the first one always */
        *used_event = 0;
        assert(vring_pop(&vr, &mt, &req) == 1);
        vring_push(&vr, req.head, 1);
        assert(!vring_need_notify(&vr));                /* the guest asked at 0, got it */
        *used_event = 2;
        assert(vring_pop(&vr, &mt, &req) == 1);
        vring_push(&vr, req.head, 1);
        assert(vring_need_notify(&vr));                 /* used idx passed 2 */
        assert(vring_pop(&vr, &mt, &req) == 1);
        assert(!vring_notify_enable(&vr, true));        /* all taken */
        offer(0);
        assert(vring_notify_enable(&vr, true));         /* one waiting */

        /* Without event idx: the NO_INTERRUPT flag. */
        setup(16);
        avail()->flags = VRING_AVAIL_F_NO_INTERRUPT;
        assert(!vring_need_notify(&vr));
        avail()->flags = 0;
        assert(vring_need_notify(&vr));
        vring_notify_enable(&vr, false);
        assert(used()->flags == VRING_USED_F_NO_NOTIFY);
}

static void test_memtable(void) {
        struct memtable t;
        struct vhu_mem_region a = { .gpa = 0, .size = 8192, .uaddr = 0x1000000, .mmap_offset = 0 };
        struct vhu_mem_region b = { .gpa = 8192, .size = 8192, .uaddr = 0x2000000, .mmap_offset = 8192 };
        struct iovec iov[4];

        memtable_init(&t);
        assert(memtable_add(&t, &a, memfd) == 0);
        assert(memtable_add(&t, &b, memfd) == 0);
        struct vhu_mem_region over = { .gpa = 4096, .size = 8192, .uaddr = 0x3000000 };
        assert(memtable_add(&t, &over, memfd) == -EINVAL);
        struct vhu_mem_region empty = { .gpa = 1 << 30, .size = 0 };
        assert(memtable_add(&t, &empty, memfd) == -EINVAL);
        struct vhu_mem_region wrap = { .gpa = UINT64_MAX - 10, .size = 4096 };
        assert(memtable_add(&t, &wrap, memfd) == -EINVAL);
        assert(memtable_add(&t, &(struct vhu_mem_region) { .gpa = 1 << 30, .size = 4096 }, -1) < 0);
        /* A region reaching past the end of its file (it would SIGBUS on use). */
        struct vhu_mem_region past = { .gpa = 1 << 30, .size = 8192, .uaddr = 0x4000000, .mmap_offset = MEM - 4096 };
        assert(memtable_add(&t, &past, memfd) == -EINVAL);
        /* A range across both regions: two iovecs, the second from b's offset. */
        assert(memtable_gpa_iov(&t, 4096, 8192, iov, 4) == 2);
        assert(iov[0].iov_len == 4096 && iov[1].iov_len == 4096);
        assert(iov[1].iov_base == (uint8_t *) memtable_uva(&t, 0x2000000, 1));
        assert(memtable_gpa_iov(&t, 4096, 8192, iov, 1) == -E2BIG);
        assert(memtable_gpa_iov(&t, 4096, 16384, iov, 4) == -EFAULT);
        assert(memtable_gpa(&t, 4096, 8192) == NULL);   /* not in one region */
        assert(memtable_uva(&t, 0x2000000 + 8191, 1) != NULL);
        assert(memtable_uva(&t, 0x2000000 + 8192, 1) == NULL);
        assert(memtable_remove(&t, &a) == 0);
        assert(memtable_remove(&t, &a) == -ENOENT);
        assert(memtable_gpa(&t, 0, 1) == NULL);
        memtable_clear(&t);
}

/* Send raw bytes as one message and decode it. */
static int codec(const void *buf, size_t len) {
        struct vhu_msg m;
        int sv[2], r;

        assert(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
        assert(write(sv[1], buf, len) == (ssize_t) len);
        close(sv[1]);
        r = vhu_recv(sv[0], &m);
        if (r == 0)
                vhu_msg_close_fds(&m);
        close(sv[0]);
        return r;
}

static void test_codec(void) {
        struct {
                struct vhu_hdr h;
                uint8_t p[300];
        } __attribute__((packed)) m = { { VHU_SET_VRING_NUM, VHU_VERSION, 8 }, { 0 } };

        assert(codec(&m, sizeof m.h + 8) == 0);
        m.h.size = 4;
        assert(codec(&m, sizeof m.h + 4) == -EPROTO);
        m.h.size = 8;
        m.h.flags = 2;
        assert(codec(&m, sizeof m.h + 8) == -EPROTO);   /* bad version */
        m.h.flags = VHU_VERSION;
        assert(codec(&m, sizeof m.h + 4) == -ECONNRESET); /* cut short */
        m.h.request = VHU_SET_MEM_TABLE;
        m.h.size = 8 + 32;
        m.p[0] = 9;                                      /* nregions beyond 8 */
        assert(codec(&m, sizeof m.h + 40) == -EPROTO);
        m.p[0] = 2;                                      /* 2 regions need 72 bytes */
        assert(codec(&m, sizeof m.h + 40) == -EPROTO);
        m.h.request = VHU_GET_CONFIG;
        m.h.size = 12 + 20;
        memset(m.p, 0, 12);
        m.p[4] = 60;                                     /* size says 60, 20 sent */
        assert(codec(&m, sizeof m.h + 32) == -EPROTO);
        m.h.size = 0xffff;
        assert(codec(&m, sizeof m.h) == -EPROTO);        /* larger than any payload */
}

static void test_inflight(void) {
        struct inflight *inf;
        struct inflight_queue *q;
        uint16_t heads[8];
        uint64_t size;
        int fd;

        assert(inflight_create(0, 128, &fd, &size) == -EINVAL);
        assert(inflight_create(2, 8, &fd, &size) == 0);
        assert(size == 2 * inflight_queue_bytes(8));
        assert(inflight_map(fd, size - 1, 0, 2, 8, &inf) == -EINVAL);
        assert(inflight_map(fd, size, 0, 2, 8, &inf) == 0);
        q = inflight_get_queue(inf, 1);
        assert(q && !inflight_get_queue(inf, 2));
        inflight_begin(q, 3);
        inflight_begin(q, 5);
        inflight_begin(q, 1);
        inflight_begin(q, 200);                          /* out of range: ignored */
        inflight_batch(q, 5);
        inflight_end(q, 5, 1);
        /* "Restart": a new mapping of the same memory. */
        inflight_free(inf);
        assert(inflight_map(fd, size, 0, 2, 8, &inf) == 0);
        q = inflight_get_queue(inf, 1);
        assert(inflight_recover(q, 1, heads, 8) == 2);
        assert(heads[0] == 3 && heads[1] == 1);
        /* A completion cut off after the used ring moved: head 3 is done. */
        inflight_batch(q, 3);
        assert(inflight_recover(q, 2, heads, 8) == 1 && heads[0] == 1);
        assert(inflight_recover(inflight_get_queue(inf, 0), 0, heads, 8) == 0);
        inflight_free(inf);
        close(fd);
}

int main(void) {
        struct vhu_mem_region r = { .gpa = GPA, .size = MEM, .uaddr = UVA, .mmap_offset = 0 };

        memfd = memfd_create("guest", MFD_CLOEXEC);
        assert(memfd >= 0 && ftruncate(memfd, MEM) == 0);
        guest = mmap(NULL, MEM, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
        assert(guest != MAP_FAILED);
        memtable_init(&mt);
        assert(memtable_add(&mt, &r, memfd) == 0);

        test_good_chain();
        test_hostile_chains();
        test_indirect();
        test_map();
        test_event_idx();
        test_memtable();
        test_codec();
        test_inflight();

        memtable_clear(&mt);
        munmap(guest, MEM);
        close(memfd);
        return 0;
}
