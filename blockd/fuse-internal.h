/* SPDX-License-Identifier: Apache-2.0 */
/* Private to the FUSE frontend: shared by fuse.c (life cycle, workers)
 * and fuse-ops.c (the operations). */
#pragma once

#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdbool.h>
#include <time.h>

#include "blockd/fuse.h"

#define DEFAULT_THREADS 8
#define MAX_THREADS 64
#define MAX_IO (1u << 20)               /* largest read or write we ask for */
#define ATTR_TIMEOUT 1.0
#define READ_SEGS 64
#define EXTENTS_BATCH 256
#define UNKNOWN_INO 0xffffffffu          /* readdir: the inode is not known yet */

/* A file the kernel knows (it holds nlookup references to the inode). */
struct node {
        fuse_ino_t ino;
        char *name;
        struct export *e;               /* our reference; NULL once kicked */
        uint64_t nlookup;               /* kernel references */
        unsigned opens;                 /* open handles */
        unsigned clients;               /* of those, counted as export clients */
        struct node *next;
};

struct fusefe {
        struct fusefe_exports x;
        struct fuse_session *se;
        char *dir;
        struct timespec start;
        uid_t uid;
        gid_t gid;
        pthread_mutex_t lock;           /* nodes, next_ino */
        struct node *nodes;
        fuse_ino_t next_ino;
        unsigned n_threads;
        pthread_t threads[MAX_THREADS];
        bool stopping;                  /* atomic */
        bool failed;                    /* atomic: on_failure called */
        void (*on_failure)(void *userdata);
        void *userdata;
        void *zeroes;                   /* MAX_IO zero bytes for holes in replies */
};

/* The operations table (fuse-ops.c). */
extern const struct fuse_lowlevel_ops fusefe_ops;
/* Unlink and free n (caller holds f->lock); returns its export reference
 * for the caller to drop outside the lock. */
struct export *fusefe_node_free(struct fusefe *f, struct node *n);
