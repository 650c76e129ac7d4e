/* SPDX-License-Identifier: Apache-2.0 */
/* The NBD codec: packs and unpacks the messages of nbd-protocol.h. */
#include <errno.h>
#include <string.h>

#include "nbd-protocol.h"

void nbdsrv_encode_greeting(uint8_t out[NBD_GREETING_SIZE], uint16_t hflags) {
        nbd_put64(out, NBD_MAGIC);
        nbd_put64(out + 8, NBD_IHAVEOPT);
        nbd_put16(out + 16, hflags);
}

int nbdsrv_decode_option(const uint8_t in[NBD_OPTION_HEADER_SIZE], struct nbdsrv_option *ret) {
        if (nbd_get64(in) != NBD_IHAVEOPT)
                return -EBADMSG;
        ret->option = nbd_get32(in + 8);
        ret->length = nbd_get32(in + 12);
        return 0;
}

void nbdsrv_encode_option_reply(uint8_t out[NBD_OPTION_REPLY_SIZE], uint32_t option, uint32_t type,
                                uint32_t length) {
        nbd_put64(out, NBD_REP_MAGIC);
        nbd_put32(out + 8, option);
        nbd_put32(out + 12, type);
        nbd_put32(out + 16, length);
}

size_t nbdsrv_encode_export_name_reply(uint8_t out[NBD_EXPORT_NAME_REPLY_SIZE + 124], uint64_t size,
                                       uint16_t tflags, bool no_zeroes) {
        nbd_put64(out, size);
        nbd_put16(out + 8, tflags);
        if (no_zeroes)
                return NBD_EXPORT_NAME_REPLY_SIZE;
        memset(out + NBD_EXPORT_NAME_REPLY_SIZE, 0, 124);
        return NBD_EXPORT_NAME_REPLY_SIZE + 124;
}

size_t nbdsrv_encode_info_export(uint8_t out[12], uint64_t size, uint16_t tflags) {
        nbd_put16(out, NBD_INFO_EXPORT);
        nbd_put64(out + 2, size);
        nbd_put16(out + 10, tflags);
        return 12;
}

size_t nbdsrv_encode_info_block_size(uint8_t out[14], uint32_t min, uint32_t pref, uint32_t max) {
        nbd_put16(out, NBD_INFO_BLOCK_SIZE);
        nbd_put32(out + 2, min);
        nbd_put32(out + 6, pref);
        nbd_put32(out + 10, max);
        return 14;
}

int nbdsrv_decode_request(const uint8_t in[NBD_REQUEST_SIZE], struct nbdsrv_request *ret) {
        if (nbd_get32(in) != NBD_REQUEST_MAGIC)
                return -EBADMSG;
        ret->flags = nbd_get16(in + 4);
        ret->type = nbd_get16(in + 6);
        ret->handle = nbd_get64(in + 8);
        ret->offset = nbd_get64(in + 16);
        ret->length = nbd_get32(in + 24);
        return 0;
}

void nbdsrv_encode_simple_reply(uint8_t out[NBD_SIMPLE_REPLY_SIZE], uint32_t nbd_error, uint64_t handle) {
        nbd_put32(out, NBD_SIMPLE_REPLY_MAGIC);
        nbd_put32(out + 4, nbd_error);
        nbd_put64(out + 8, handle);
}

void nbdsrv_encode_chunk_header(uint8_t out[NBD_CHUNK_HEADER_SIZE], uint16_t flags, uint16_t type,
                                uint64_t handle, uint32_t length) {
        nbd_put32(out, NBD_STRUCTURED_REPLY_MAGIC);
        nbd_put16(out + 4, flags);
        nbd_put16(out + 6, type);
        nbd_put64(out + 8, handle);
        nbd_put32(out + 16, length);
}

uint32_t nbdsrv_errno_to_nbd(int r) {
        if (r < 0)
                r = -r;
        switch (r) {
        case 0:
                return 0;
        case EPERM:
        case EACCES:
        case EROFS:
                return NBD_EPERM;
        case ENOMEM:
                return NBD_ENOMEM;
        case EINVAL:
        case ERANGE:
                return NBD_EINVAL;
        case ENOSPC:
        case EDQUOT:
        case EFBIG:
                return NBD_ENOSPC;
        case EOVERFLOW:
                return NBD_EOVERFLOW;
        case ENOTSUP:
                return NBD_ENOTSUP;
        case ESHUTDOWN:
                return NBD_ESHUTDOWN;
        default:
                /* EIO, EBADMSG (a chunk failed verification), ETIMEDOUT,
                 * EAGAIN, ENOENT (a blob vanished), ECONNREFUSED, ... */
                return NBD_EIO;
        }
}

const char *nbdsrv_cmd_name(uint16_t type) {
        static const char *const names[] = {
                [NBD_CMD_READ] = "READ",
                [NBD_CMD_WRITE] = "WRITE",
                [NBD_CMD_DISC] = "DISC",
                [NBD_CMD_FLUSH] = "FLUSH",
                [NBD_CMD_TRIM] = "TRIM",
                [NBD_CMD_CACHE] = "CACHE",
                [NBD_CMD_WRITE_ZEROES] = "WRITE_ZEROES",
                [NBD_CMD_BLOCK_STATUS] = "BLOCK_STATUS",
                [NBD_CMD_RESIZE] = "RESIZE",
        };
        return type < sizeof names / sizeof names[0] && names[type] ? names[type] : "unknown";
}

const char *nbdsrv_opt_name(uint32_t option) {
        static const char *const names[] = {
                [NBD_OPT_EXPORT_NAME] = "NBD_OPT_EXPORT_NAME",
                [NBD_OPT_ABORT] = "NBD_OPT_ABORT",
                [NBD_OPT_LIST] = "NBD_OPT_LIST",
                [NBD_OPT_PEEK_EXPORT] = "NBD_OPT_PEEK_EXPORT",
                [NBD_OPT_STARTTLS] = "NBD_OPT_STARTTLS",
                [NBD_OPT_INFO] = "NBD_OPT_INFO",
                [NBD_OPT_GO] = "NBD_OPT_GO",
                [NBD_OPT_STRUCTURED_REPLY] = "NBD_OPT_STRUCTURED_REPLY",
                [NBD_OPT_LIST_META_CONTEXT] = "NBD_OPT_LIST_META_CONTEXT",
                [NBD_OPT_SET_META_CONTEXT] = "NBD_OPT_SET_META_CONTEXT",
                [NBD_OPT_EXTENDED_HEADERS] = "NBD_OPT_EXTENDED_HEADERS",
        };
        return option < sizeof names / sizeof names[0] && names[option] ? names[option] : "unknown";
}
