/* SPDX-License-Identifier: Apache-2.0 */
#include "partition.h"

#include <blkid/blkid.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/cleanup.h"
#include "common/err.h"
#include "common/util.h"

/* GPT partition types of a Linux root (discoverable partitions spec). */
static const char *const root_types[] = {
        "4f68bce3-e8cd-4db1-96e7-fbcaf984b709", /* x86-64 */
        "b921b045-1df0-41c3-af44-4c6f280d3fae", /* arm64 */
        "44479540-f297-41b2-9af7-d131d5f0458a", /* x86 */
};

bool fstype_is_linux(const char *t) {
        static const char *const linux_fs[] = { "ext2", "ext3", "ext4", "xfs", "btrfs", "f2fs", "erofs",
                                                "squashfs", "jfs", "reiserfs", "nilfs2" };

        for (size_t i = 0; i < ARRAY_SIZE(linux_fs); i++)
                if (!strcmp(t, linux_fs[i]))
                        return true;
        return false;
}

static void copy_value(blkid_probe pr, const char *name, char *buf, size_t len) {
        const char *v = NULL;

        buf[0] = 0;
        if (blkid_probe_lookup_value(pr, name, &v, NULL) == 0 && v)
                snprintf(buf, len, "%s", v);
}

/* The filesystem in [offset, offset+size) of fd, if any. */
static void probe_fs(int fd, uint64_t offset, uint64_t size, struct part *p) {
        blkid_probe pr = blkid_new_probe();

        if (!pr)
                return;
        if (blkid_probe_set_device(pr, fd, (blkid_loff_t) offset, (blkid_loff_t) size) == 0) {
                blkid_probe_enable_superblocks(pr, 1);
                blkid_probe_set_superblocks_flags(pr, BLKID_SUBLKS_TYPE | BLKID_SUBLKS_LABEL | BLKID_SUBLKS_USAGE);
                blkid_probe_enable_partitions(pr, 0);
                if (blkid_do_safeprobe(pr) == 0) {
                        copy_value(pr, "TYPE", p->fstype, sizeof p->fstype);
                        copy_value(pr, "LABEL", p->label, sizeof p->label);
                }
        }
        blkid_free_probe(pr);
}

void disk_layout_done(struct disk_layout *l) {
        free(l->parts);
        memset(l, 0, sizeof *l);
}

int disk_probe(int fd, uint64_t size, struct disk_layout *ret, char *err, size_t errlen) {
        struct disk_layout l = { .size = size };
        blkid_probe pr;
        blkid_partlist pl;
        int r, n;

        pr = blkid_new_probe();
        if (!pr)
                return -ENOMEM;
        if (blkid_probe_set_device(pr, fd, 0, (blkid_loff_t) size) < 0) {
                blkid_free_probe(pr);
                return err_set(err, errlen, -EIO, "cannot read the image to probe it");
        }
        blkid_probe_enable_superblocks(pr, 1);
        blkid_probe_set_superblocks_flags(pr, BLKID_SUBLKS_TYPE | BLKID_SUBLKS_LABEL | BLKID_SUBLKS_USAGE);
        blkid_probe_enable_partitions(pr, 1);
        blkid_probe_set_partitions_flags(pr, BLKID_PARTS_ENTRY_DETAILS);
        r = blkid_do_safeprobe(pr);
        if (r < 0) {
                blkid_free_probe(pr);
                return err_set(err, errlen, r == -2 ? -ENOTUNIQ : -EIO,
                               r == -2 ? "the image start looks like several things at once (blkid is ambivalent)"
                                    : "probing the image failed (I/O error reading it?)");
        }
        copy_value(pr, "PTTYPE", l.pttype, sizeof l.pttype);
        if (!l.pttype[0]) {
                /* A bare filesystem (or nothing we know). */
                l.parts = calloc(1, sizeof *l.parts);
                if (!l.parts) {
                        blkid_free_probe(pr);
                        return -ENOMEM;
                }
                l.n_parts = 1;
                l.parts[0].size = size;
                copy_value(pr, "TYPE", l.parts[0].fstype, sizeof l.parts[0].fstype);
                copy_value(pr, "LABEL", l.parts[0].label, sizeof l.parts[0].label);
                blkid_free_probe(pr);
                *ret = l;
                return 0;
        }
        pl = blkid_probe_get_partitions(pr);
        n = pl ? blkid_partlist_numof_partitions(pl) : 0;
        l.parts = calloc((size_t) MAX(n, 1), sizeof *l.parts);
        if (!l.parts) {
                blkid_free_probe(pr);
                return -ENOMEM;
        }
        for (int i = 0; i < n; i++) {
                blkid_partition par = blkid_partlist_get_partition(pl, i);
                struct part *p = &l.parts[l.n_parts];
                const char *s;
                int t;

                if (!par)
                        continue;
                p->number = blkid_partition_get_partno(par);
                p->offset = (uint64_t) blkid_partition_get_start(par) * 512;
                p->size = (uint64_t) blkid_partition_get_size(par) * 512;
                if ((s = blkid_partition_get_type_string(par)))
                        snprintf(p->ptype, sizeof p->ptype, "%s", s);
                else if ((t = blkid_partition_get_type(par)))
                        snprintf(p->ptype, sizeof p->ptype, "0x%02x", t);
                if ((s = blkid_partition_get_name(par)))
                        snprintf(p->name, sizeof p->name, "%s", s);
                p->container = blkid_partition_is_extended(par);
                if (p->offset >= size || p->size > size - p->offset)
                        p->size = p->offset >= size ? 0 : size - p->offset;  /* past the end: clip */
                if (!p->container && p->size)
                        probe_fs(fd, p->offset, p->size, p);
                l.n_parts++;
        }
        blkid_free_probe(pr);
        *ret = l;
        return 0;
}

static bool is_root_type(const char *ptype) {
        for (size_t i = 0; i < ARRAY_SIZE(root_types); i++)
                if (!strcasecmp(ptype, root_types[i]))
                        return true;
        return false;
}

void disk_describe(const struct disk_layout *l, char *buf, size_t len) {
        size_t o = 0;

        buf[0] = 0;
        for (size_t i = 0; i < l->n_parts && o < len; i++) {
                const struct part *p = &l->parts[i];
                char sz[32];
                int n;

                format_size(p->size, sz, sizeof sz);
                if (p->number == 0)
                        n = snprintf(buf + o, len - o, "  the whole image: %s%s%s%s\n",
                                     p->fstype[0] ? p->fstype : "no recognised filesystem", p->label[0] ? " \"" : "",
                                     p->label, p->label[0] ? "\"" : "");
                else
                        n = snprintf(buf + o, len - o, "  partition %d: %s at %llu, %s%s%s%s%s%s\n", p->number, sz,
                                     (unsigned long long) p->offset,
                                     p->container ? "extended (a container)"
                                     : p->fstype[0] ? p->fstype : "no recognised filesystem",
                                     p->label[0] ? " label \"" : "", p->label, p->label[0] ? "\"" : "",
                                     p->name[0] ? ", named " : "", p->name);
                if (n < 0)
                        break;
                o += (size_t) n;
        }
        if (o > 0 && o < len && buf[o - 1] == '\n')
                buf[o - 1] = 0;
}

int disk_choose(const struct disk_layout *l, int number, const struct part **ret, char *err, size_t errlen) {
        const struct part *pick = NULL, *root = NULL;
        unsigned linux_n = 0, root_n = 0;

        if (number > 0) {
                if (!l->pttype[0])
                        return err_set(err, errlen, -ENOENT, "--partition %d: the image has no partition table (it holds %s)",
                                       number, l->n_parts && l->parts[0].fstype[0] ? l->parts[0].fstype : "nothing recognised");
                for (size_t i = 0; i < l->n_parts; i++)
                        if (l->parts[i].number == number)
                                pick = &l->parts[i];
                if (!pick)
                        return err_set(err, errlen, -ENOENT, "the %s partition table has no partition %d",
                                       l->pttype, number);
                if (pick->container)
                        return err_set(err, errlen, -EMEDIUMTYPE, "partition %d is an extended partition (a container)", number);
                *ret = pick;
                return 0;
        }
        if (!l->pttype[0]) {
                *ret = &l->parts[0];
                return 0;
        }
        for (size_t i = 0; i < l->n_parts; i++) {
                const struct part *p = &l->parts[i];
                if (p->container || !fstype_is_linux(p->fstype))
                        continue;
                linux_n++;
                pick = p;
                if (is_root_type(p->ptype)) {
                        root_n++;
                        root = p;
                }
        }
        if (linux_n == 1) {
                *ret = pick;
                return 0;
        }
        if (linux_n > 1 && root_n == 1) {
                *ret = root;
                return 0;
        }
        return err_set(err, errlen, linux_n ? -ENOTUNIQ : -ENOENT,
                       linux_n ? "the %s partition table has %u partitions with Linux filesystems: choose one with --partition N"
                            : "the %s partition table has no partition with a Linux filesystem%.0u",
                       l->pttype, linux_n);
}
