/* SPDX-License-Identifier: Apache-2.0 */
#include "chunker.h"

#include <errno.h>
#include <stdbool.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"

int source_image_size(int fd, uint64_t *ret) {
        struct stat st;

        if (fstat(fd, &st) < 0)
                return -errno;
        if (S_ISREG(st.st_mode)) {
                *ret = (uint64_t) st.st_size;
                return 0;
        }
        if (S_ISBLK(st.st_mode)) {
                uint64_t size;
                if (ioctl(fd, BLKGETSIZE64, &size) < 0)
                        return -errno;
                *ret = size;
                return 0;
        }
        return S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
}

struct list {
        uint64_t *v;
        uint64_t n, cap;
};

static int list_add(struct list *l, uint64_t x) {
        if (l->n && l->v[l->n - 1] >= x)
                return 0; /* already listed (regions share a chunk) */
        if (l->n == l->cap) {
                uint64_t cap = l->cap ? l->cap * 2 : 1024;
                uint64_t *v = realloc(l->v, cap * sizeof *v);
                if (!v)
                        return -ENOMEM;
                l->v = v;
                l->cap = cap;
        }
        l->v[l->n++] = x;
        return 0;
}

int chunker_data_chunks(int fd, uint64_t size, uint32_t chunk_size, uint64_t **ret_list, uint64_t *ret_n,
                        uint64_t *ret_data_bytes) {
        struct list l = { 0 };
        uint64_t pos = 0, data_bytes = 0;
        bool seek_ok = true;
        int r = 0;

        while (pos < size) {
                off_t data, hole;

                data = lseek(fd, (off_t) pos, SEEK_DATA);
                if (data < 0) {
                        if (errno == ENXIO)
                                break; /* only a hole up to the end */
                        if (errno == EINVAL || errno == EOPNOTSUPP) {
                                seek_ok = false;
                                break;
                        }
                        r = -errno;
                        goto fail;
                }
                hole = lseek(fd, data, SEEK_HOLE);
                if (hole < 0) {
                        r = -errno;
                        goto fail;
                }
                if ((uint64_t) hole > size)
                        hole = (off_t) size;
                if (hole <= data)
                        break;
                data_bytes += (uint64_t) (hole - data);
                for (uint64_t c = (uint64_t) data / chunk_size; c <= ((uint64_t) hole - 1) / chunk_size; c++) {
                        r = list_add(&l, c);
                        if (r < 0)
                                goto fail;
                }
                pos = (uint64_t) hole;
        }
        if (!seek_ok) {
                uint64_t n = (size + chunk_size - 1) / chunk_size;

                l.n = 0;
                for (uint64_t c = 0; c < n; c++) {
                        r = list_add(&l, c);
                        if (r < 0)
                                goto fail;
                }
                data_bytes = size;
        }
        *ret_list = l.v;
        *ret_n = l.n;
        if (ret_data_bytes)
                *ret_data_bytes = data_bytes;
        return 0;
fail:
        free(l.v);
        return r;
}
