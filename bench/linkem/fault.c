/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fault injection for reliability tests. Every offset counts bytes of a
 * connection's response stream (server to client) as forwarded to the
 * client, so a test can aim at "the 1000th byte of the blob" whatever the
 * link's timing. A fault applies to every connection, or with conn=K only
 * to the K-th one accepted (1-based).
 */
#include "linkem.h"

#include <inttypes.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"

/* Whether f targets connection id (conn=0: all of them). */
static bool fault_applies(const struct fault *f, uint64_t id) {
        return f->conn == 0 || f->conn == id;
}

/* "refuse,conn=K": the K-th connection is reset as soon as it is accepted.
 * (Plain "refuse" never listens at all, so clients get ECONNREFUSED.) */
bool fault_refuse_conn(const struct options *o, uint64_t id) {
        size_t i;

        for (i = 0; i < o->n_faults; i++)
                if (o->faults[i].kind == FAULT_REFUSE && o->faults[i].conn == id)
                        return true;
        return false;
}

/* Arm the faults that apply to a new connection; a stall at offset 0
 * starts now, before any byte is forwarded either way. */
void fault_setup(struct loop *lp, struct conn *c, uint64_t now) {
        const struct options *o = lp->o;
        size_t i;

        c->reset_at = c->flip_at = c->stall_at = UINT64_MAX;
        for (i = 0; i < o->n_faults; i++) {
                const struct fault *f = &o->faults[i];

                if (!fault_applies(f, c->id))
                        continue;
                switch (f->kind) {
                case FAULT_RESET_AFTER:
                        c->reset_at = MIN(c->reset_at, f->bytes);
                        break;
                case FAULT_FLIP_AT:
                        c->flip_at = MIN(c->flip_at, f->bytes);
                        break;
                case FAULT_STALL:
                        if (f->bytes < c->stall_at) {
                                c->stall_at = f->bytes;
                                c->stall_ns = f->stall_ns;
                        }
                        break;
                case FAULT_REFUSE:
                        break;
                }
        }
        if (c->stall_at == 0) {
                c->stall_at = UINT64_MAX;
                c->stall_until = c->stall_ns == NS_FOREVER ? NS_FOREVER : now + c->stall_ns;
                list_add_tail(&c->stalled, &lp->stalled);
                lp->faults_fired++;
                log_debug("conn %" PRIu64 ": stalled at accept", c->id);
        }
}

/* The response offset at which the writer must stop and call fault_fire. */
uint64_t fault_next_stop(const struct conn *c) {
        return MIN(c->reset_at, c->stall_at);
}

/* The response stream reached offset out, a stop point: reset the
 * connection or start its stall. */
void fault_fire(struct loop *lp, struct conn *c, uint64_t out) {
        if (out == c->reset_at) {
                lp->faults_fired++;
                log_debug("conn %" PRIu64 ": reset after %" PRIu64 " bytes", c->id, out);
                conn_close(lp, c, true);
                return;
        }
        if (out == c->stall_at) {
                uint64_t now = now_ns();

                c->stall_at = UINT64_MAX;
                c->stall_until = c->stall_ns == NS_FOREVER ? NS_FOREVER : now + c->stall_ns;
                list_add_tail(&c->stalled, &lp->stalled);
                lp->faults_fired++;
                log_debug("conn %" PRIu64 ": stalled after %" PRIu64 " bytes", c->id, out);
        }
}

/* Bytes [from, from + n) of h just landed in its buffer: flip the chosen
 * one if it is among them. */
void fault_flip(struct loop *lp, struct half *h, uint64_t from, uint64_t n) {
        struct conn *c = h->c;

        if (h->dir != DOWN || c->flip_at < from || c->flip_at >= from + n)
                return;
        *half_io_byte(h, c->flip_at) ^= (char) 0xff;
        log_debug("conn %" PRIu64 ": flipped byte %" PRIu64, c->id, c->flip_at);
        c->flip_at = UINT64_MAX;
        lp->faults_fired++;
}
