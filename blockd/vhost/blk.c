/* SPDX-License-Identifier: Apache-2.0 */
/* virtio-blk requests on an export (blk.h). */
#include <endian.h>
#include <errno.h>
#include <string.h>
#include <sys/uio.h>

#include "blockd/vhost/blk.h"
#include "blockd/vhost/protocol.h"
#include "common/cleanup.h"

#define SECTOR VIRTIO_BLK_SECTOR

uint64_t vblk_features(const struct export *e) {
        uint64_t f = (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_RING_F_INDIRECT_DESC) |
                     (1ull << VIRTIO_RING_F_EVENT_IDX) | (1ull << VIRTIO_F_NOTIFY_ON_EMPTY) |
                     (1ull << VIRTIO_BLK_F_SEG_MAX) | (1ull << VIRTIO_BLK_F_BLK_SIZE) |
                     (1ull << VIRTIO_BLK_F_FLUSH) | (1ull << VIRTIO_BLK_F_MQ);

        if (export_readonly(e))
                f |= 1ull << VIRTIO_BLK_F_RO;
        else
                f |= (1ull << VIRTIO_BLK_F_DISCARD) | (1ull << VIRTIO_BLK_F_WRITE_ZEROES);
        return f;
}

void vblk_config(const struct export *e, unsigned nq, struct virtio_blk_config *c) {
        uint32_t max_sectors = UINT32_MAX / SECTOR;

        memset(c, 0, sizeof *c);
        c->capacity = htole64(export_size(e) / SECTOR);
        c->seg_max = htole32(VBLK_SEG_MAX);
        c->blk_size = htole32(SECTOR);
        c->num_queues = htole16((uint16_t) nq);
        c->max_discard_sectors = htole32(max_sectors);
        c->max_discard_seg = htole32(VBLK_MAX_DISCARD_SEG);
        c->discard_sector_alignment = htole32(1);
        c->max_write_zeroes_sectors = htole32(max_sectors);
        c->max_write_zeroes_seg = htole32(VBLK_MAX_DISCARD_SEG);
        c->write_zeroes_may_unmap = 1;
}

/* A position in an iovec array. */
struct iovcur {
        const struct iovec *iov;
        unsigned n, i;
        size_t off;
};

/* Up to len bytes from the cursor as at most max iovecs (advancing it);
 * returns how many, with *got the bytes they hold. */
static unsigned iovcur_take(struct iovcur *c, uint64_t len, struct iovec *out, unsigned max, uint64_t *got) {
        unsigned k = 0;

        *got = 0;
        while (len > 0 && k < max && c->i < c->n) {
                size_t avail = c->iov[c->i].iov_len - c->off;
                size_t take = avail < len ? avail : (size_t) len;

                out[k++] = (struct iovec) { .iov_base = (char *) c->iov[c->i].iov_base + c->off, .iov_len = take };
                *got += take;
                len -= take;
                c->off += take;
                if (c->off == c->iov[c->i].iov_len) {
                        c->i++;
                        c->off = 0;
                }
        }
        return k;
}

/* Fill len bytes at the cursor from one export segment (skip bytes in). */
static int seg_fill(const struct export_seg *s, struct iovcur *c) {
        uint64_t done = 0;

        while (done < s->len) {
                struct iovec v[64];
                uint64_t got;
                unsigned k = iovcur_take(c, s->len - done, v, 64, &got);

                if (k == 0)
                        return -EIO;
                switch (s->kind) {
                case EXPORT_SEG_ZERO:
                        for (unsigned j = 0; j < k; j++)
                                memset(v[j].iov_base, 0, v[j].iov_len);
                        break;
                case EXPORT_SEG_MEM:
                        for (unsigned j = 0, o = 0; j < k; o += (unsigned) v[j].iov_len, j++)
                                memcpy(v[j].iov_base, (const char *) s->mem + done + o, v[j].iov_len);
                        break;
                case EXPORT_SEG_FD: {
                        /* Straight from the entry into the guest's buffers. */
                        struct iovec *p = v;
                        uint64_t left = got, at = s->fd_off + done;

                        while (left > 0) {
                                ssize_t n = preadv(s->fd, p, (int) k, (off_t) at);

                                if (n < 0 && errno == EINTR)
                                        continue;
                                if (n < 0)
                                        return -errno;
                                if (n == 0)
                                        return -EIO;
                                left -= (uint64_t) n;
                                at += (uint64_t) n;
                                while (n > 0 && (size_t) n >= p->iov_len) {
                                        n -= (ssize_t) p->iov_len;
                                        p++;
                                        k--;
                                }
                                if (n > 0) {
                                        p->iov_base = (char *) p->iov_base + n;
                                        p->iov_len -= (size_t) n;
                                }
                        }
                        break;
                }
                }
                done += got;
        }
        return 0;
}

/* Read [off, off+len) of e into the iovecs. */
static int do_read(struct export *e, uint64_t off, uint64_t len, const struct iovec *iov, unsigned n) {
        struct iovcur c = { .iov = iov, .n = n };
        struct export_read rd;
        struct export_seg segs[16];
        int k, r;

        if (len == 0)
                return 0;
        r = export_read_start(e, off, len, &rd);
        if (r < 0)
                return r;
        while ((k = export_read_next(&rd, segs, ARRAY_SIZE(segs))) > 0) {
                r = 0;
                for (int i = 0; i < k && r >= 0; i++)
                        r = seg_fill(&segs[i], &c);
                export_read_done(&rd, segs, (unsigned) k);
                if (r < 0)
                        return r;
        }
        return k;
}

/* Write the iovecs to e at off, piece by piece (no bounce buffer). */
static int do_write(struct export *e, uint64_t off, const struct iovec *iov, unsigned n) {
        for (unsigned i = 0; i < n; i++) {
                int r = export_pwrite(e, iov[i].iov_base, iov[i].iov_len, off, 0);

                if (r < 0)
                        return r;
                off += iov[i].iov_len;
        }
        return 0;
}

/* Copy len bytes out of the cursor into buf: 0 or -EIO if short. */
static int gather(struct iovcur *c, void *buf, size_t len) {
        struct iovec v[16];
        uint64_t got;
        size_t o = 0;

        while (o < len) {
                unsigned k = iovcur_take(c, len - o, v, ARRAY_SIZE(v), &got);

                if (k == 0)
                        return -EIO;
                for (unsigned j = 0; j < k; j++) {
                        memcpy((char *) buf + o, v[j].iov_base, v[j].iov_len);
                        o += v[j].iov_len;
                }
        }
        return 0;
}

/* Is [sector, +bytes) inside e? */
static bool in_range(const struct export *e, uint64_t sector, uint64_t bytes) {
        uint64_t size = export_size(e);

        return sector <= size / SECTOR && bytes <= size - sector * SECTOR;
}

/* DISCARD and WRITE_ZEROES: segments of 16 bytes after the header. */
static int do_ranges(struct export *e, uint32_t type, struct iovcur *c, uint64_t len) {
        if (len % sizeof(struct virtio_blk_discard_wz) || len / sizeof(struct virtio_blk_discard_wz) > VBLK_MAX_DISCARD_SEG)
                return -EINVAL;
        for (uint64_t i = 0; i < len / sizeof(struct virtio_blk_discard_wz); i++) {
                struct virtio_blk_discard_wz s;
                uint64_t sector, bytes;
                uint32_t flags;
                int r;

                r = gather(c, &s, sizeof s);
                if (r < 0)
                        return r;
                sector = le64toh(s.sector);
                bytes = (uint64_t) le32toh(s.num_sectors) * SECTOR;
                flags = le32toh(s.flags);
                if (!in_range(e, sector, bytes))
                        return -EINVAL;
                if (type == VIRTIO_BLK_T_DISCARD) {
                        if (flags)
                                return -EOPNOTSUPP;
                        r = export_trim(e, sector * SECTOR, bytes, 0);
                } else {
                        if (flags & ~VIRTIO_BLK_WZ_F_UNMAP)
                                return -EOPNOTSUPP;
                        r = export_zero(e, sector * SECTOR, bytes, flags & VIRTIO_BLK_WZ_F_UNMAP ? 0 : EXPORT_NO_HOLE);
                }
                if (r < 0)
                        return r;
        }
        return 0;
}

static uint8_t status_of(int r) {
        if (r >= 0)
                return VIRTIO_BLK_S_OK;
        return r == -EOPNOTSUPP || r == -ENOTSUP ? VIRTIO_BLK_S_UNSUPP : VIRTIO_BLK_S_IOERR;
}

int64_t vblk_handle(struct export *e, struct vring_req *req) {
        struct iovec *in = req->iov + req->n_out, *last;
        struct iovcur out = { .iov = req->iov, .n = req->n_out };
        struct virtio_blk_outhdr h;
        uint64_t data_len, out_data, written = 1;
        unsigned n_data;
        uint8_t *status;
        uint32_t type;
        int r;

        if (req->n_in == 0)
                return -EIO;
        /* The status byte is the last byte of the last in buffer; the data
         * buffers are the in buffers before it. */
        last = &in[req->n_in - 1];
        status = (uint8_t *) last->iov_base + last->iov_len - 1;
        data_len = req->in_len - 1;
        n_data = req->n_in;
        if (last->iov_len == 1)
                n_data--;
        else
                last->iov_len--;        /* the status byte is not data */

        if (gather(&out, &h, sizeof h) < 0) {
                *status = VIRTIO_BLK_S_IOERR;
                return 1;
        }
        type = le32toh(h.type);
        out_data = req->out_len - sizeof h;
        switch (type) {
        case VIRTIO_BLK_T_IN:
                if (le64toh(h.sector) > UINT64_MAX / SECTOR || !in_range(e, le64toh(h.sector), data_len))
                        r = -EINVAL;
                else
                        r = do_read(e, le64toh(h.sector) * SECTOR, data_len, in, n_data);
                if (r >= 0)
                        written += data_len;
                break;
        case VIRTIO_BLK_T_OUT: {
                struct iovec v[VRING_MAX_SEGS];
                uint64_t got;
                unsigned k = iovcur_take(&out, out_data, v, VRING_MAX_SEGS, &got);

                if (export_readonly(e))
                        r = -EROFS;
                else if (le64toh(h.sector) > UINT64_MAX / SECTOR || !in_range(e, le64toh(h.sector), out_data))
                        r = -EINVAL;
                else
                        r = do_write(e, le64toh(h.sector) * SECTOR, v, k);
                break;
        }
        case VIRTIO_BLK_T_FLUSH:
                r = export_flush(e);
                break;
        case VIRTIO_BLK_T_GET_ID: {
                char id[VIRTIO_BLK_ID_BYTES] = { 0 };
                struct iovcur c = { .iov = in, .n = n_data };
                struct iovec v[VIRTIO_BLK_ID_BYTES];
                uint64_t got, o = 0;
                unsigned k;

                memcpy(id, export_name(e), strnlen(export_name(e), sizeof id));
                k = iovcur_take(&c, MIN(data_len, sizeof id), v, ARRAY_SIZE(v), &got);
                for (unsigned j = 0; j < k; o += v[j].iov_len, j++)
                        memcpy(v[j].iov_base, id + o, v[j].iov_len);
                written += got;
                r = 0;
                break;
        }
        case VIRTIO_BLK_T_DISCARD:
        case VIRTIO_BLK_T_WRITE_ZEROES:
                r = export_readonly(e) ? -EROFS : do_ranges(e, type, &out, out_data);
                break;
        default:
                r = -EOPNOTSUPP;
                break;
        }
        *status = status_of(r);
        return (int64_t) (r < 0 && type == VIRTIO_BLK_T_IN ? 1 : written);
}
