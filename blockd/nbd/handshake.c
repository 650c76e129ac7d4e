/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The fixed newstyle handshake and option haggling (doc/proto.md,
 * "Handshake"): EXPORT_NAME, ABORT, LIST, STARTTLS, INFO, GO,
 * STRUCTURED_REPLY, LIST_META_CONTEXT and SET_META_CONTEXT with
 * base:allocation. Unknown options get NBD_REP_ERR_UNSUP and the next
 * option is parsed; malformed ones NBD_REP_ERR_INVALID. The session ends
 * without a reply on a broken stream (bad magic, unknown client flags, an
 * option too large to skip, too many options, data sent after STARTTLS
 * before our answer, a handshake past its timeout) and, as the protocol
 * has no error reply for it, on an EXPORT_NAME that is malformed, names
 * no export, or comes before TLS when TLS is required.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"
#include "conn.h"
#include "nbd-protocol.h"

#define HS_DONE 1       /* enter transmission */
#define HS_END 0        /* the client ended the session */

uint16_t nbdsrv_tflags(const struct conn *c, const struct export *e) {
        uint16_t f = NBD_FLAG_HAS_FLAGS | NBD_FLAG_CAN_MULTI_CONN | NBD_FLAG_SEND_CACHE;

        if (export_readonly(e))
                f |= NBD_FLAG_READ_ONLY;
        else
                f |= NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA | NBD_FLAG_SEND_TRIM | NBD_FLAG_SEND_WRITE_ZEROES |
                     NBD_FLAG_SEND_FAST_ZERO;
        if (c->structured)
                f |= NBD_FLAG_SEND_DF;
        return f;
}

static int send_all(struct conn *c, const void *a, size_t alen, const void *b, size_t blen) {
        struct iovec iov[2] = { { (void *) a, alen }, { (void *) b, blen } };

        return nbdsrv_io_writev(&c->io, iov, blen ? 2 : 1, 0);
}

/* One option reply with an optional payload. */
static int reply(struct conn *c, uint32_t opt, uint32_t type, const void *data, size_t len) {
        uint8_t h[NBD_OPTION_REPLY_SIZE];

        nbdsrv_encode_option_reply(h, opt, type, (uint32_t) len);
        return send_all(c, h, sizeof h, data, len);
}

/* An error reply with a human-readable message. */
static int reply_error(struct conn *c, uint32_t opt, uint32_t type, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
static int reply_error(struct conn *c, uint32_t opt, uint32_t type, const char *fmt, ...) {
        char msg[512];
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        if (n < 0)
                n = 0;
        if (log_get_level() >= LOG_LVL_DEBUG) {
                /* The message quotes what the client sent (names, queries). */
                char esc[LOG_ESCAPE_MAX];
                log_debug("nbd: client %llu: %s: %s", (unsigned long long) c->id, nbdsrv_opt_name(opt),
                          log_escape_n(msg, MIN((size_t) n, sizeof msg - 1), esc, sizeof esc));
        }
        return reply(c, opt, type, msg, MIN((size_t) n, sizeof msg - 1));
}

/* A length-prefixed string from an option's data; *pos advances. NULL
 * (after logging nothing) when it does not fit or is too long. */
static char *take_string(const uint8_t *data, uint32_t len, uint32_t *pos, uint32_t slen) {
        char *s;

        if (slen > NBD_MAX_STRING || slen > len - *pos)
                return NULL;
        if (memchr(data + *pos, 0, slen))
                return NULL;
        s = strndup((const char *) data + *pos, slen);
        if (s)
                *pos += slen;
        return s;
}

static int take_u32(const uint8_t *data, uint32_t len, uint32_t *pos, uint32_t *ret) {
        if (len - *pos < 4)
                return -EINVAL;
        *ret = nbd_get32(data + *pos);
        *pos += 4;
        return 0;
}

struct list_ctx {
        struct conn *c;
        int r;
};

static void list_one(struct export *e, void *u) {
        struct list_ctx *l = u;
        const char *name = export_name(e), *desc = export_ref_text(e);
        size_t nl = strlen(name), dl = MIN(strlen(desc), (size_t) NBD_MAX_STRING);
        _cleanup_free_ uint8_t *p = malloc(4 + nl + dl);

        if (l->r < 0)
                return;
        if (!p) {
                l->r = -ENOMEM;
                return;
        }
        nbd_put32(p, (uint32_t) nl);
        memcpy(p + 4, name, nl);
        memcpy(p + 4 + nl, desc, dl);
        l->r = reply(l->c, NBD_OPT_LIST, NBD_REP_SERVER, p, 4 + nl + dl);
}

static int opt_list(struct conn *c, uint32_t len) {
        struct list_ctx l = { .c = c };

        if (len != 0)
                return reply_error(c, NBD_OPT_LIST, NBD_REP_ERR_INVALID, "NBD_OPT_LIST takes no data");
        c->srv->exports.for_each(c->srv->exports.userdata, list_one, &l);
        if (l.r < 0)
                return l.r;
        return reply(c, NBD_OPT_LIST, NBD_REP_ACK, NULL, 0);
}

/* INFO and GO. Returns HS_DONE after a successful GO. */
static int opt_info_go(struct conn *c, uint32_t opt, const uint8_t *data, uint32_t len) {
        _cleanup_free_ char *name = NULL;
        uint32_t pos = 0, nlen;
        uint16_t nreq;
        bool want_name = false, want_desc = false, want_bs = false;
        struct export *e;
        uint8_t buf[NBD_MAX_STRING + 2];
        size_t n;
        int r;

        if (take_u32(data, len, &pos, &nlen) < 0 || len - pos < 2 || nlen > len - pos - 2)
                return reply_error(c, opt, NBD_REP_ERR_INVALID, "malformed request (name length)");
        name = take_string(data, len, &pos, nlen);
        if (!name)
                return reply_error(c, opt, NBD_REP_ERR_INVALID, "malformed export name");
        nreq = nbd_get16(data + pos);
        pos += 2;
        if ((uint32_t) nreq * 2 != len - pos)
                return reply_error(c, opt, NBD_REP_ERR_INVALID, "malformed request (information list)");
        for (uint16_t i = 0; i < nreq; i++) {
                uint16_t t = nbd_get16(data + pos + 2 * i);
                want_name |= t == NBD_INFO_NAME;
                want_desc |= t == NBD_INFO_DESCRIPTION;
                want_bs |= t == NBD_INFO_BLOCK_SIZE;
        }

        e = c->srv->exports.get(c->srv->exports.userdata, name);
        if (!e)
                return reply_error(c, opt, NBD_REP_ERR_UNKNOWN, "no export named '%s'", name);

        n = nbdsrv_encode_info_export(buf, export_size(e), nbdsrv_tflags(c, e));
        r = reply(c, opt, NBD_REP_INFO, buf, n);
        if (r >= 0 && want_name) {
                const char *cn = export_name(e);
                nbd_put16(buf, NBD_INFO_NAME);
                memcpy(buf + 2, cn, strlen(cn));
                r = reply(c, opt, NBD_REP_INFO, buf, 2 + strlen(cn));
        }
        if (r >= 0 && want_desc) {
                const char *d = export_ref_text(e);
                size_t dl = MIN(strlen(d), (size_t) NBD_MAX_STRING);
                nbd_put16(buf, NBD_INFO_DESCRIPTION);
                memcpy(buf + 2, d, dl);
                r = reply(c, opt, NBD_REP_INFO, buf, 2 + dl);
        }
        if (r >= 0 && want_bs) {
                /* Any alignment works; 4 KiB avoids read-modify-write in
                 * the overlay; a single request may move 32 MiB. */
                n = nbdsrv_encode_info_block_size(buf, 1, 4096, NBD_MAX_REQUEST);
                r = reply(c, opt, NBD_REP_INFO, buf, n);
        }
        if (r >= 0)
                r = reply(c, opt, NBD_REP_ACK, NULL, 0);
        if (r < 0 || opt == NBD_OPT_INFO) {
                export_unref(e);
                return r;
        }
        /* Meta contexts count only for the export they were set for. */
        if (c->meta_alloc && (!c->meta_export || strcmp(c->meta_export, name) != 0))
                c->meta_alloc = false;
        c->exp = e;
        c->tflags = nbdsrv_tflags(c, e);
        return HS_DONE;
}

static int opt_export_name(struct conn *c, const uint8_t *data, uint32_t len) {
        uint8_t buf[NBD_EXPORT_NAME_REPLY_SIZE + 124];
        _cleanup_free_ char *name = NULL;
        struct export *e;
        size_t n;
        int r;

        if (len > NBD_MAX_STRING || memchr(data, 0, len)) {
                log_warning("nbd: client %llu: malformed NBD_OPT_EXPORT_NAME; disconnecting", (unsigned long long) c->id);
                return -EPROTO;
        }
        name = strndup((const char *) data, len);
        if (!name)
                return -ENOMEM;
        e = c->srv->exports.get(c->srv->exports.userdata, name);
        if (!e) {
                /* This option cannot fail politely: the protocol says hang up. */
                char esc[LOG_ESCAPE_MAX];
                log_warning("nbd: client %llu asked for unknown export '%s'; disconnecting", (unsigned long long) c->id,
                            log_escape(name, esc, sizeof esc));
                return -ENOENT;
        }
        c->meta_alloc = c->meta_alloc && c->meta_export && strcmp(c->meta_export, name) == 0;
        c->tflags = nbdsrv_tflags(c, e);
        n = nbdsrv_encode_export_name_reply(buf, export_size(e), c->tflags, c->no_zeroes);
        r = send_all(c, buf, n, NULL, 0);
        if (r < 0) {
                export_unref(e);
                return r;
        }
        c->exp = e;
        return HS_DONE;
}

/* Does a query select base:allocation? For LIST, "base:" is a wildcard. */
static bool query_matches(const char *q, bool list) {
        if (strcmp(q, "base:allocation") == 0)
                return true;
        return list && strcmp(q, "base:") == 0;
}

static int opt_meta(struct conn *c, uint32_t opt, const uint8_t *data, uint32_t len) {
        const bool list = opt == NBD_OPT_LIST_META_CONTEXT;
        _cleanup_free_ char *name = NULL;
        uint32_t pos = 0, nlen, nq;
        bool match = false;
        struct export *e;
        uint8_t buf[4 + 32];
        int r;

        if (!list) {
                /* SET replaces the selection, even when it fails. */
                c->meta_alloc = false;
                free(c->meta_export);
                c->meta_export = NULL;
        }
        if (!c->structured)
                return reply_error(c, opt, NBD_REP_ERR_INVALID, "negotiate NBD_OPT_STRUCTURED_REPLY first");
        if (take_u32(data, len, &pos, &nlen) < 0 || !(name = take_string(data, len, &pos, nlen)) ||
            take_u32(data, len, &pos, &nq) < 0)
                return reply_error(c, opt, NBD_REP_ERR_INVALID, "malformed request");
        /* Parse every query before answering: a malformed one fails all. */
        {
                uint32_t p = pos;
                for (uint32_t i = 0; i < nq; i++) {
                        uint32_t ql;
                        _cleanup_free_ char *q = NULL;
                        if (take_u32(data, len, &p, &ql) < 0 || !(q = take_string(data, len, &p, ql)))
                                return reply_error(c, opt, NBD_REP_ERR_INVALID, "malformed query %u", i);
                        if (!strchr(q, ':'))
                                return reply_error(c, opt, NBD_REP_ERR_INVALID, "query '%s' has no namespace", q);
                        match |= query_matches(q, list);
                }
                if (p != len)
                        return reply_error(c, opt, NBD_REP_ERR_INVALID, "trailing data after the queries");
        }
        e = c->srv->exports.get(c->srv->exports.userdata, name);
        if (!e)
                return reply_error(c, opt, NBD_REP_ERR_UNKNOWN, "no export named '%s'", name);
        export_unref(e);
        if (list && nq == 0)
                match = true;
        if (match) {
                nbd_put32(buf, list ? 0 : NBD_META_ID_ALLOCATION);
                memcpy(buf + 4, "base:allocation", 15);
                r = reply(c, opt, NBD_REP_META_CONTEXT, buf, 4 + 15);
                if (r < 0)
                        return r;
                if (!list) {
                        c->meta_alloc = true;
                        c->meta_export = TAKE_PTR(name);
                }
        }
        return reply(c, opt, NBD_REP_ACK, NULL, 0);
}

static int opt_starttls(struct conn *c, uint32_t len) {
        char err[256];
        int r;

        if (len != 0)
                return reply_error(c, NBD_OPT_STARTTLS, NBD_REP_ERR_INVALID, "NBD_OPT_STARTTLS takes no data");
        if (c->srv->cfg.tls_mode == NBDSRV_TLS_OFF || !c->srv->cfg.tls)
                return reply_error(c, NBD_OPT_STARTTLS, NBD_REP_ERR_POLICY, "TLS is not enabled on this server");
        if (!c->fixed)
                return reply_error(c, NBD_OPT_STARTTLS, NBD_REP_ERR_POLICY, "TLS needs fixed newstyle negotiation");
        if (nbdsrv_io_is_tls(&c->io))
                return reply_error(c, NBD_OPT_STARTTLS, NBD_REP_ERR_INVALID, "TLS is already on");
        if (c->rpos != c->rlen) {
                /* The client may not send anything before our ACK. */
                log_warning("nbd: client %llu sent data after NBD_OPT_STARTTLS; disconnecting",
                            (unsigned long long) c->id);
                return -EPROTO;
        }
        r = reply(c, NBD_OPT_STARTTLS, NBD_REP_ACK, NULL, 0);
        if (r < 0)
                return r;
        r = nbdsrv_io_starttls(&c->io, c->srv->cfg.tls, err, sizeof err);
        if (r < 0) {
                log_warning("nbd: client %llu (%s): %s", (unsigned long long) c->id, c->peer, err);
                return r;
        }
        /* No negotiation state survives the upgrade. */
        c->structured = false;
        c->meta_alloc = false;
        free(c->meta_export);
        c->meta_export = NULL;
        log_debug("nbd: client %llu: TLS established (%s)", (unsigned long long) c->id, SSL_get_version(c->io.ssl));
        return 0;
}

/* Skip an option's data we will not read into memory. */
static int discard(struct conn *c, uint32_t len) {
        uint8_t junk[4096];

        while (len) {
                uint32_t n = MIN(len, (uint32_t) sizeof junk);
                int r = conn_read(c, junk, n);
                if (r < 0)
                        return r;
                len -= n;
        }
        return 0;
}

/* One option. Returns HS_DONE, HS_END, 2 to continue, or <0. */
static int handle_option(struct conn *c) {
        uint8_t h[NBD_OPTION_HEADER_SIZE];
        _cleanup_free_ uint8_t *data = NULL;
        struct nbdsrv_option o;
        bool need_tls;
        int r;

        r = conn_read(c, h, sizeof h);
        if (r < 0)
                return r;
        if (nbdsrv_decode_option(h, &o) < 0) {
                log_warning("nbd: client %llu (%s): bad option magic; disconnecting", (unsigned long long) c->id,
                            c->peer);
                return -EPROTO;
        }
        if (++c->n_options > NBD_MAX_OPTIONS) {
                log_warning("nbd: client %llu (%s): too many options; disconnecting", (unsigned long long) c->id,
                            c->peer);
                return -EPROTO;
        }
        log_debug("nbd: client %llu: %s (%u bytes)", (unsigned long long) c->id, nbdsrv_opt_name(o.option), o.length);
        if (o.length > NBD_MAX_OPTION) {
                if (o.option == NBD_OPT_EXPORT_NAME || o.length > NBD_MAX_OPTION_DISCARD) {
                        log_warning("nbd: client %llu (%s): option %u with %u bytes of data; disconnecting",
                                    (unsigned long long) c->id, c->peer, o.option, o.length);
                        return -EPROTO;
                }
                r = discard(c, o.length);
                if (r < 0)
                        return r;
                r = reply_error(c, o.option, NBD_REP_ERR_TOO_BIG, "option data too large (%u bytes)", o.length);
                return r < 0 ? r : 2;
        }
        data = malloc(o.length ? o.length : 1);
        if (!data)
                return -ENOMEM;
        r = conn_read(c, data, o.length);
        if (r < 0)
                return r;

        need_tls = c->srv->cfg.tls_mode == NBDSRV_TLS_REQUIRE && !nbdsrv_io_is_tls(&c->io);
        if (need_tls && o.option != NBD_OPT_STARTTLS && o.option != NBD_OPT_ABORT) {
                if (o.option == NBD_OPT_EXPORT_NAME) {
                        log_warning("nbd: client %llu (%s): NBD_OPT_EXPORT_NAME without TLS; disconnecting",
                                    (unsigned long long) c->id, c->peer);
                        return -EPROTO;
                }
                r = reply_error(c, o.option, NBD_REP_ERR_TLS_REQD, "this server requires TLS (NBD_OPT_STARTTLS)");
                return r < 0 ? r : 2;
        }

        switch (o.option) {
        case NBD_OPT_EXPORT_NAME:
                return opt_export_name(c, data, o.length);
        case NBD_OPT_ABORT:
                (void) reply(c, o.option, NBD_REP_ACK, NULL, 0);
                return HS_END;
        case NBD_OPT_LIST:
                r = opt_list(c, o.length);
                break;
        case NBD_OPT_STARTTLS:
                r = opt_starttls(c, o.length);
                break;
        case NBD_OPT_INFO:
        case NBD_OPT_GO:
                r = opt_info_go(c, o.option, data, o.length);
                if (r == HS_DONE)
                        return r;
                break;
        case NBD_OPT_STRUCTURED_REPLY:
                if (o.length != 0) {
                        r = reply_error(c, o.option, NBD_REP_ERR_INVALID, "NBD_OPT_STRUCTURED_REPLY takes no data");
                        break;
                }
                c->structured = true;
                r = reply(c, o.option, NBD_REP_ACK, NULL, 0);
                break;
        case NBD_OPT_LIST_META_CONTEXT:
        case NBD_OPT_SET_META_CONTEXT:
                r = opt_meta(c, o.option, data, o.length);
                break;
        default:
                r = reply_error(c, o.option, NBD_REP_ERR_UNSUP, "option %u is not supported", o.option);
                break;
        }
        return r < 0 ? r : 2;
}

int nbdsrv_handshake(struct conn *c) {
        uint8_t g[NBD_GREETING_SIZE], cf[4];
        uint32_t flags;
        int r;

        nbdsrv_encode_greeting(g, NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
        r = send_all(c, g, sizeof g, NULL, 0);
        if (r < 0)
                return r;
        r = conn_read(c, cf, sizeof cf);
        if (r < 0)
                return r;
        flags = nbd_get32(cf);
        if (flags & ~(uint32_t) (NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES)) {
                log_warning("nbd: client %llu (%s): unknown client flags 0x%x; disconnecting", (unsigned long long) c->id,
                            c->peer, flags);
                return -EPROTO;
        }
        c->fixed = flags & NBD_FLAG_C_FIXED_NEWSTYLE;
        c->no_zeroes = flags & NBD_FLAG_C_NO_ZEROES;
        if (!c->fixed && c->srv->cfg.tls_mode == NBDSRV_TLS_REQUIRE) {
                log_warning("nbd: client %llu (%s) cannot do TLS (no fixed newstyle) and TLS is required",
                            (unsigned long long) c->id, c->peer);
                return -EPROTO;
        }
        /* The whole handshake has a deadline, however the client paces
         * its bytes: nbdsrv_expire_handshakes() (limits.c) hangs up. */
        for (;;) {
                r = handle_option(c);
                if (r != 2)
                        return r;
        }
}
