/* SPDX-License-Identifier: Apache-2.0 */
/* The overlay against a byte model: writes, zeroes, trims at random
 * (aligned and not), persistence across reopen, what survives a "crash"
 * (close without flush), and refusal of foreign or damaged overlays. */
#undef NDEBUG
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blockd/overlay.h"
#include "common/cleanup.h"
#include "common/util.h"

#define SIZE ((1u << 20) + 1000u)      /* not a multiple of the block size */
#define BS OVERLAY_BLOCK_SIZE
#define NBLK ((SIZE + BS - 1) / BS)

static uint8_t below_byte(uint64_t off) {
        return (uint8_t) ((off * 7 + 3) ^ (off >> 12));
}

static int below(void *u, void *buf, size_t len, uint64_t off) {
        (void) u;
        for (size_t i = 0; i < len; i++)
                ((uint8_t *) buf)[i] = below_byte(off + i);
        return 0;
}

static uint64_t rnd(uint64_t n) {
        return (uint64_t) random() % n;
}

/* Read [off, off+len) the way an export does: overlay over below. */
static void merged_read(struct overlay *o, uint8_t *buf, uint64_t off, uint64_t len) {
        while (len) {
                uint64_t run;
                enum overlay_state st = overlay_state_run(o, off, len, &run);

                assert(run > 0 && run <= len);
                if (st == OVERLAY_ABSENT)
                        below(NULL, buf, run, off);
                else if (st == OVERLAY_ZERO)
                        memset(buf, 0, run);
                else
                        assert(overlay_read(o, buf, run, off) == 0);
                buf += run;
                off += run;
                len -= run;
        }
}

static void check_all(struct overlay *o, const uint8_t *model) {
        static uint8_t got[SIZE];

        merged_read(o, got, 0, SIZE);
        for (size_t i = 0; i < SIZE; i++)
                if (got[i] != model[i]) {
                        fprintf(stderr, "mismatch at %zu: got %u want %u\n", i, got[i], model[i]);
                        abort();
                }
}

static void random_op(struct overlay *o, uint8_t *model, int op) {
        uint64_t off = rnd(SIZE), len = 1 + rnd(MIN(SIZE - off, 3 * BS + 100));
        static uint8_t buf[4 * BS + 200];

        if (rnd(3) == 0) {              /* aligned */
                off = off / BS * BS;
                len = MIN(SIZE - off, (len + BS - 1) / BS * BS);
        }
        switch (op) {
        case 0:
                for (uint64_t i = 0; i < len; i++)
                        buf[i] = (uint8_t) random();
                assert(overlay_write(o, buf, len, off, rnd(8) == 0, below, NULL) == 0);
                memcpy(model + off, buf, len);
                break;
        case 1:
                assert(overlay_zero(o, off, len, rnd(2), false, below, NULL) == 0);
                memset(model + off, 0, len);
                break;
        case 2: {
                /* Only whole blocks inside the range are trimmed (to zero). */
                uint64_t a = (off + BS - 1) / BS * BS, end = off + len, b = end == SIZE ? SIZE : end / BS * BS;
                assert(overlay_trim(o, off, len, false) == 0);
                if (b > a)
                        memset(model + a, 0, b - a);
                break;
        }
        }
}

int main(void) {
        char dir[] = "/tmp/test-overlay.XXXXXX", path[256];
        static uint8_t model[SIZE], flushed[SIZE];
        struct digest img = { { 1, 2, 3 } }, other = { { 9 } };
        struct overlay *o = NULL, *o2 = NULL;
        struct overlay_stats st;
        char err[256];
        int r;

        srandom(42);
        assert(mkdtemp(dir));
        snprintf(path, sizeof path, "%s/ov", dir);
        below(NULL, model, SIZE, 0);

        assert(overlay_open(path, SIZE, &img, &o, err, sizeof err) == 0);
        check_all(o, model);

        /* A second opener is refused while the first holds it. */
        r = overlay_open(path, SIZE, &img, &o2, err, sizeof err);
        assert(r == -EBUSY);

        /* Random operations against the model. */
        for (int i = 0; i < 2000; i++) {
                random_op(o, model, (int) rnd(3));
                if (i % 100 == 0)
                        check_all(o, model);
                if (i % 500 == 0)
                        assert(overlay_flush(o) == 0);
        }
        check_all(o, model);
        assert(overlay_flush(o) == 0);
        memcpy(flushed, model, SIZE);
        overlay_get_stats(o, &st);
        assert(st.blocks_data > 0 && st.blocks_zero > 0 && st.flushes >= 1);
        overlay_close(o);

        /* Reopen: everything flushed is there. */
        assert(overlay_open(path, SIZE, &img, &o, err, sizeof err) == 0);
        check_all(o, flushed);
        {
                struct overlay_stats st2;
                overlay_get_stats(o, &st2);
                assert(st2.blocks_data == st.blocks_data && st2.blocks_zero == st.blocks_zero);
        }

        /* "Crash": change things without a flush and close. Every block must
         * read as it was at the flush or as the latest write left it. */
        for (int i = 0; i < 300; i++)
                random_op(o, model, (int) rnd(3));
        overlay_close(o);
        assert(overlay_open(path, SIZE, &img, &o, err, sizeof err) == 0);
        {
                static uint8_t got[SIZE];
                merged_read(o, got, 0, SIZE);
                for (uint64_t b = 0; b < NBLK; b++) {
                        uint64_t a = b * BS, n = MIN((uint64_t) BS, SIZE - a);
                        assert(memcmp(got + a, flushed + a, n) == 0 || memcmp(got + a, model + a, n) == 0);
                }
                memcpy(model, got, SIZE);
        }
        /* Whole-export zero, then a partial write into a zeroed block. */
        assert(overlay_zero_is_fast(o, 0, SIZE));
        assert(!overlay_zero_is_fast(o, 1, BS));
        assert(overlay_zero(o, 0, SIZE, false, true, below, NULL) == 0);
        memset(model, 0, SIZE);
        assert(overlay_write(o, "hello", 5, 3 * BS + 17, true, below, NULL) == 0);
        memcpy(model + 3 * BS + 17, "hello", 5);
        check_all(o, model);
        /* Out of range. */
        assert(overlay_write(o, "x", 1, SIZE, false, below, NULL) == -ENOSPC);
        assert(overlay_trim(o, SIZE - 1, 2, false) == -EINVAL);
        overlay_close(o);
        assert(overlay_open(path, SIZE, &img, &o, err, sizeof err) == 0);
        check_all(o, model);
        overlay_close(o);

        /* Another image, another size: refused. */
        assert(overlay_open(path, SIZE, &other, &o, err, sizeof err) == -EMEDIUMTYPE);
        assert(strstr(err, "belongs to image"));
        assert(overlay_open(path, SIZE + BS, &img, &o, err, sizeof err) == -EMEDIUMTYPE);

        /* A damaged map entry (state 3) and a damaged header are refused. */
        {
                int fd = open(path, O_RDWR);
                uint8_t bad = 0xff, h;
                assert(fd >= 0);
                assert(pwrite(fd, &bad, 1, 4096) == 1);
                close(fd);
                assert(overlay_open(path, SIZE, &img, &o, err, sizeof err) == -EBADMSG);
                fd = open(path, O_RDWR);
                bad = 0;
                assert(pwrite(fd, &bad, 1, 4096) == 1);
                assert(pread(fd, &h, 1, 20) == 1);
                h ^= 1;
                assert(pwrite(fd, &h, 1, 20) == 1);
                close(fd);
                assert(overlay_open(path, SIZE, &img, &o, err, sizeof err) == -EBADMSG);
                assert(strstr(err, "damaged"));
        }
        unlink(path);
        rmdir(dir);
        printf("overlay: ok\n");
        return 0;
}
