/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What is on a disk image, read in user space with libblkid (the kernels
 * we run on may have no partition-table support at all, so `losetup -P`
 * is no help): a bare filesystem, or a GPT or MBR partition table and the
 * filesystem in each partition. Reading through the FUSE file fetches only
 * the few chunks the probes touch.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct part {
        int number;             /* as in the table (1-based); 0 for a bare filesystem */
        uint64_t offset, size;  /* bytes */
        char fstype[32];        /* "" when no filesystem was recognised */
        char label[64];
        char ptype[64];         /* GPT type UUID or MBR type "0x83" */
        char name[64];          /* GPT partition name */
        bool container;         /* an MBR extended partition */
};

struct disk_layout {
        char pttype[16];        /* "gpt", "dos", or "" for a bare filesystem / nothing */
        uint64_t size;
        struct part *parts;     /* a bare filesystem is one part with number 0 */
        size_t n_parts;
};

/* Probe fd (size bytes). err gets a reason on failure. */
int disk_probe(int fd, uint64_t size, struct disk_layout *ret, char *err, size_t errlen);
void disk_layout_done(struct disk_layout *l);

/* Filesystems we mount and call "Linux filesystems" when choosing a partition. */
bool fstype_is_linux(const char *fstype);

/*
 * The partition to mount: number (>0) if given, else the only partition
 * holding a Linux filesystem (or, among several, the only one typed as a
 * Linux root partition). -ENOENT (no such partition / no filesystem) or
 * -ENOTUNIQ (ambiguous) with a sentence in err.
 */
int disk_choose(const struct disk_layout *l, int number, const struct part **ret, char *err, size_t errlen);

/* A table of the partitions, one per line, for error messages and -v. */
void disk_describe(const struct disk_layout *l, char *buf, size_t len);
