/* SPDX-License-Identifier: Apache-2.0 */
/* An export's insides, shared by the files that make it up (export.c:
 * lifetime, reads and writes, profiles; export-status.c: allocation status
 * and statistics). Nothing outside blockd/export*.c includes this. */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "blockd/export.h"
#include "chunkstore/blkindex.h"

#define STAT_ADD(e, field, n) __atomic_fetch_add(&(e)->st.field, (n), __ATOMIC_RELAXED)

struct export {
        unsigned refs;                  /* atomic */
        unsigned clients;               /* atomic */
        char *name;
        char *ref;
        char *vhost_user;               /* NULL if none */
        struct export_env env;
        struct blob_source *src;
        struct image *img;
        const struct blkindex *x;       /* img->index */
        struct overlay *ov;             /* NULL: read-only */
        struct sched *own_sched;        /* when the env gave none */
        struct sched_export *se;        /* this export in the fetch scheduler */
        uint32_t *verified;             /* per unique chunk: the stamp of its store entry when this
                                         * process last hashed it (chunkfd_get), 0 = never */
        struct export_stats st;         /* atomic counters */
        /* Boot profiles: the recorder lives until the export is freed
         * (readers use it without a lock while recording is on). */
        pthread_mutex_t profile_lock;   /* rec creation */
        struct profile_rec *rec;
        bool recording;                 /* atomic */
        /* Learning (profile-learn.h): a second recorder, on from attach
         * until learn_until_ns. */
        struct profile_rec *learn_rec;
        bool learning;                  /* atomic */
        uint64_t learn_until_ns;        /* immutable once learning */
        struct coalesce_order *po;      /* the index's pack order, built once at attach and lent
                                         * to readahead and the scheduler (coalesce.h) */
        struct readahead *ra;           /* readahead for demand misses (readahead.h) */
        uint64_t open_ns, attached_ns;  /* now_ns() when export_open began and ended */
};

static inline int count_result(struct export *e, int r) {
        if (r < 0)
                STAT_ADD(e, errors, 1);
        return r;
}

static inline bool range_ok(const struct export *e, uint64_t off, uint64_t len) {
        return off <= e->x->image_size && len <= e->x->image_size - off;
}

