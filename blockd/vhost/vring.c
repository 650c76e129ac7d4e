/* SPDX-License-Identifier: Apache-2.0 */
/* A split virtqueue over the guest memory table, with event idx and
 * hostile-guest checks (vring.h). */
#include <endian.h>
#include <errno.h>
#include <string.h>

#include "blockd/vhost/inflight.h"
#include "blockd/vhost/vring.h"

int vring_break(struct vring *vr, const char *why) {
        if (!vr->broken) {
                vr->broken = true;
                vr->why = why;
        }
        return -EIO;
}

int vring_map(struct vring *vr, const struct memtable *mt) {
        if (vr->num == 0 || vr->num > VRING_MAX_SIZE || (vr->num & (vr->num - 1)))
                return -EINVAL;
        vr->desc = memtable_uva(mt, vr->desc_uaddr, vring_desc_bytes(vr->num));
        vr->avail = memtable_uva(mt, vr->avail_uaddr, vring_avail_bytes(vr->num));
        vr->used = memtable_uva(mt, vr->used_uaddr, vring_used_bytes(vr->num));
        if (!vr->desc || !vr->avail || !vr->used || ((uintptr_t) vr->desc & 15) || ((uintptr_t) vr->avail & 1) ||
            ((uintptr_t) vr->used & 3)) {
                vring_unmap(vr);
                return -EFAULT;
        }
        vr->used_idx = le16toh(__atomic_load_n(&vr->used->idx, __ATOMIC_ACQUIRE));
        vr->signalled_valid = false;
        return 0;
}

void vring_unmap(struct vring *vr) {
        vr->desc = NULL;
        vr->avail = NULL;
        vr->used = NULL;
}

static uint16_t avail_idx(const struct vring *vr) {
        return le16toh(__atomic_load_n(&vr->avail->idx, __ATOMIC_ACQUIRE));
}

/* Append the guest buffer of d to req, in or out. */
static int add_buffer(struct vring *vr, const struct memtable *mt, const struct vring_desc *d, struct vring_req *req) {
        uint64_t addr = le64toh(d->addr);
        uint32_t len = le32toh(d->len);
        bool in = le16toh(d->flags) & VRING_DESC_F_WRITE;
        unsigned n = req->n_out + req->n_in;
        int r;

        if (!in && req->n_in > 0)
                return vring_break(vr, "readable buffer after a writable one");
        if (len == 0)
                return 0;
        r = memtable_gpa_iov(mt, addr, len, req->iov + n, VRING_MAX_SEGS - n);
        if (r == -E2BIG)
                return vring_break(vr, "request has too many buffers");
        if (r < 0)
                return vring_break(vr, "buffer outside guest memory");
        if (in) {
                req->n_in += (unsigned) r;
                req->in_len += len;
        } else {
                req->n_out += (unsigned) r;
                req->out_len += len;
        }
        return 0;
}

/* Walk an indirect table (copied descriptor by descriptor). */
static int walk_indirect(struct vring *vr, const struct memtable *mt, const struct vring_desc *ind,
                         struct vring_req *req) {
        uint32_t len = le32toh(ind->len);
        const struct vring_desc *table;
        unsigned count, i = 0, steps = 0;

        if (!vr->indirect)
                return vring_break(vr, "indirect descriptor not negotiated");
        if (le16toh(ind->flags) & VRING_DESC_F_NEXT)
                return vring_break(vr, "indirect descriptor with NEXT");
        if (len == 0 || len % sizeof(struct vring_desc) || len / sizeof(struct vring_desc) > VRING_MAX_SEGS)
                return vring_break(vr, "bad indirect table length");
        count = len / sizeof(struct vring_desc);
        table = memtable_gpa(mt, le64toh(ind->addr), len);
        if (!table)
                return vring_break(vr, "indirect table outside guest memory");
        for (;;) {
                struct vring_desc d;
                int r;

                memcpy(&d, &table[i], sizeof d);
                if (++steps > count)
                        return vring_break(vr, "indirect chain loops");
                if (le16toh(d.flags) & VRING_DESC_F_INDIRECT)
                        return vring_break(vr, "nested indirect descriptor");
                r = add_buffer(vr, mt, &d, req);
                if (r < 0)
                        return r;
                if (!(le16toh(d.flags) & VRING_DESC_F_NEXT))
                        return 0;
                i = le16toh(d.next);
                if (i >= count)
                        return vring_break(vr, "indirect next out of range");
        }
}

int vring_take_head(struct vring *vr, const struct memtable *mt, uint16_t head, struct vring_req *req) {
        unsigned i = head, steps = 0;

        if (vr->broken || !vr->desc)
                return -EIO;
        if (head >= vr->num)
                return vring_break(vr, "head index out of range");
        req->head = head;
        req->n_out = req->n_in = 0;
        req->out_len = req->in_len = 0;
        for (;;) {
                struct vring_desc d;
                int r;

                memcpy(&d, &vr->desc[i], sizeof d);
                if (++steps > vr->num)
                        return vring_break(vr, "descriptor chain loops");
                if (le16toh(d.flags) & VRING_DESC_F_INDIRECT) {
                        if (steps > 1 || (le16toh(d.flags) & VRING_DESC_F_NEXT))
                                return vring_break(vr, "indirect descriptor inside a chain");
                        r = walk_indirect(vr, mt, &d, req);
                        return r < 0 ? r : 1;
                }
                r = add_buffer(vr, mt, &d, req);
                if (r < 0)
                        return r;
                if (!(le16toh(d.flags) & VRING_DESC_F_NEXT))
                        return 1;
                i = le16toh(d.next);
                if (i >= vr->num)
                        return vring_break(vr, "next index out of range");
        }
}

int vring_pop(struct vring *vr, const struct memtable *mt, struct vring_req *req) {
        uint16_t avail, head;
        int r;

        if (vr->broken || !vr->desc)
                return vr->broken ? -EIO : 0;
        avail = avail_idx(vr);
        if (avail == vr->last_avail)
                return 0;
        if ((uint16_t) (avail - vr->last_avail) > vr->num)
                return vring_break(vr, "available index ran ahead of the queue");
        head = le16toh(__atomic_load_n(&vr->avail->ring[vr->last_avail & (vr->num - 1)], __ATOMIC_RELAXED));
        r = vring_take_head(vr, mt, head, req);
        if (r < 0)
                return r;
        vr->last_avail++;
        if (vr->inflight)
                inflight_begin(vr->inflight, head);
        if (vr->event_idx)
                __atomic_store_n((uint16_t *) &vr->used->ring[vr->num], htole16(vr->last_avail),
                                 __ATOMIC_RELAXED);
        return 1;
}

void vring_push(struct vring *vr, uint16_t head, uint32_t len) {
        struct vring_used_elem *e;

        if (!vr->used)
                return;
        if (vr->inflight)
                inflight_batch(vr->inflight, head);
        e = &vr->used->ring[vr->used_idx & (vr->num - 1)];
        __atomic_store_n(&e->id, htole32(head), __ATOMIC_RELAXED);
        __atomic_store_n(&e->len, htole32(len), __ATOMIC_RELAXED);
        vr->used_idx++;
        __atomic_store_n(&vr->used->idx, htole16(vr->used_idx), __ATOMIC_RELEASE);
        if (vr->inflight)
                inflight_end(vr->inflight, head, vr->used_idx);
}

/* virtio 2.7.10: does moving the used index from old to new pass event? */
static bool need_event(uint16_t event, uint16_t new, uint16_t old) {
        return (uint16_t) (new - event - 1) < (uint16_t) (new - old);
}

bool vring_need_notify(struct vring *vr) {
        uint16_t old, event;
        bool valid;

        if (!vr->avail)
                return false;
        /* Our used index must be visible before we read what the guest
         * asked for, or we race with it going to sleep. */
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        if (!vr->event_idx)
                return !(le16toh(__atomic_load_n(&vr->avail->flags, __ATOMIC_RELAXED)) & VRING_AVAIL_F_NO_INTERRUPT);
        old = vr->signalled_used;
        valid = vr->signalled_valid;
        vr->signalled_used = vr->used_idx;
        vr->signalled_valid = true;
        if (!valid)
                return true;
        event = le16toh(__atomic_load_n(&vr->avail->ring[vr->num], __ATOMIC_RELAXED));
        return need_event(event, vr->used_idx, old);
}

bool vring_notify_enable(struct vring *vr, bool on) {
        if (!vr->used)
                return false;
        if (vr->event_idx) {
                if (on)
                        __atomic_store_n((uint16_t *) &vr->used->ring[vr->num], htole16(vr->last_avail),
                                         __ATOMIC_RELAXED);
        } else {
                __atomic_store_n(&vr->used->flags, htole16(on ? 0 : VRING_USED_F_NO_NOTIFY), __ATOMIC_RELAXED);
        }
        if (!on)
                return false;
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        return !vr->broken && avail_idx(vr) != vr->last_avail;
}
