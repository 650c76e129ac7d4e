/* SPDX-License-Identifier: Apache-2.0 */
/* What an export reports about itself: allocation status (NBD block
 * status) and its counters (export.h). */
#include "export.h"
#include "export-internal.h"

#include <errno.h>

#include "blockd/overlay.h"
#include "blockd/profile-rec.h"
#include "blockd/readahead.h"
#include "blockd/sched.h"
#include "common/cleanup.h"
#include "common/util.h"
#include "registry-client/image.h"

/* --- Allocation status --- */

static unsigned add_extent(struct export_extent *out, unsigned n, unsigned max, uint64_t len, uint32_t flags) {
        if (n && out[n - 1].flags == flags) {
                out[n - 1].len += len;
                return n;
        }
        if (n == max)
                return n;
        out[n] = (struct export_extent) { .len = len, .flags = flags };
        return n + 1;
}

/* Image extents for [off, end). Returns false when out is full. */
static bool image_extents(const struct export *e, uint64_t off, uint64_t end, struct export_extent *out,
                          unsigned *n, unsigned max) {
        const uint32_t cs = e->x->chunk_size;

        while (off < end) {
                uint64_t i = off / cs;
                uint64_t len = MIN(end, (i + 1) * cs) - off;
                uint32_t flags = e->x->map[i] == BLKINDEX_ZERO ? EXPORT_STATE_HOLE | EXPORT_STATE_ZERO : 0;
                unsigned before = *n;

                *n = add_extent(out, *n, max, len, flags);
                if (*n == before && (before == 0 || out[before - 1].flags != flags))
                        return false;
                off += len;
        }
        return true;
}

int export_extents(struct export *e, uint64_t off, uint64_t len, struct export_extent *out, unsigned max) {
        uint64_t end = off + len;
        unsigned n = 0;

        STAT_ADD(e, block_status, 1);
        if (!range_ok(e, off, len) || max == 0)
                return count_result(e, -EINVAL);
        while (off < end) {
                uint64_t run = end - off;
                enum overlay_state st = e->ov ? overlay_state_run(e->ov, off, run, &run) : OVERLAY_ABSENT;
                unsigned before = n;

                if (st == OVERLAY_ABSENT) {
                        if (!image_extents(e, off, off + run, out, &n, max))
                                break;
                } else {
                        uint32_t flags = st == OVERLAY_ZERO ? EXPORT_STATE_HOLE | EXPORT_STATE_ZERO : 0;
                        n = add_extent(out, n, max, run, flags);
                        if (n == before && (before == 0 || out[before - 1].flags != flags))
                                break;
                }
                off += run;
        }
        return (int) n;
}

/* --- Statistics --- */

void export_get_stats(struct export *e, struct export_stats *ret) {
        const uint64_t *src = (const uint64_t *) &e->st;
        uint64_t *dst = (uint64_t *) ret;
        struct sched_export_stats ss;

        for (size_t i = 0; i < sizeof *ret / sizeof(uint64_t); i++)
                dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
        ret->size = export_size(e);
        ret->clients = export_clients(e);
        if (e->ov) {
                struct overlay_stats os;
                overlay_get_stats(e->ov, &os);
                ret->overlay_data_bytes = os.blocks_data * OVERLAY_BLOCK_SIZE;
                ret->overlay_zero_bytes = os.blocks_zero * OVERLAY_BLOCK_SIZE;
        }
        sched_export_get_stats(e->se, &ss);
        ret->cache_misses = ss.chunks[SCHED_DEMAND];
        ret->bytes_fetched = ss.bytes[SCHED_DEMAND] + ss.bytes[SCHED_PROFILE] + ss.bytes[SCHED_BACKGROUND];
        ret->prefetch_queued = ss.profile_queued;
        ret->prefetch_done = ss.profile_done;
        ret->prefetch_active = ss.profile_active;
        ret->prefetch_fetched = ss.chunks[SCHED_PROFILE];
        ret->prefetch_bytes = ss.bytes[SCHED_PROFILE];
        ret->prefetch_gap_chunks = ss.profile_gap_chunks;
        ret->prefetch_gap_waste_bytes = ss.profile_gap_waste;
        ret->profile_bytes = ss.bytes[SCHED_PROFILE];
        ret->demand_requests = ss.requests[SCHED_DEMAND];
        ret->profile_requests = ss.requests[SCHED_PROFILE];
        ret->background_requests = ss.requests[SCHED_BACKGROUND];
        ret->demand_bytes = ss.bytes[SCHED_DEMAND];
        ret->background_bytes = ss.bytes[SCHED_BACKGROUND];
        ret->background_chunks = ss.chunks[SCHED_BACKGROUND];
        ret->bytes_needed = ss.needed_bytes;
        ret->hydrated_bytes = ss.hydrated_bytes;
        ret->image_bytes = ss.image_bytes;
        ret->demand_waits = ss.demand_waits;
        ret->demand_cold_waits = ss.demand_cold_waits;
        ret->demand_wait_ns = ss.demand_wait_ns;
        ret->demand_failures = ss.demand_failures;
        ret->fetch_errors = ss.fetch_errors;
        ret->digest_mismatches = ss.digest_mismatches;
        ret->cache_full_events = ss.cache_full_events;
        ret->background_state = ss.bg_state;
        if (e->src) {
                struct source_stats sst;

                source_get_stats(e->src, &sst);
                ret->mirror_reads = sst.mirror_reads;
                ret->mirror_skips = sst.mirror_skips;
                ret->http_connections = sst.connections;
                ret->http_demand_connections = sst.demand_connections;
        }
        pthread_mutex_lock(&e->profile_lock);
        ret->recording = __atomic_load_n(&e->recording, __ATOMIC_ACQUIRE);
        ret->recorded_entries = e->rec ? profile_rec_count(e->rec) : 0;
        readahead_counts(e->ra, &ret->readahead_issued, &ret->readahead_used, &ret->readahead_async);
        ret->readahead_wasted = ret->readahead_issued - MIN(ret->readahead_used, ret->readahead_issued);
        ret->learning = __atomic_load_n(&e->learning, __ATOMIC_ACQUIRE);
        ret->learned_entries = e->learn_rec ? profile_rec_count(e->learn_rec) : 0;
        pthread_mutex_unlock(&e->profile_lock);
}
