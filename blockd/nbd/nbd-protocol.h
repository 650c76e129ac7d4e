/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The NBD wire format: the only copy in the tree. Constants follow the
 * names of the protocol document (NetworkBlockDevice/nbd doc/proto.md);
 * every multi-byte field is big-endian on the wire. The codec below
 * (blockd/nbd/codec.c) packs and unpacks the fixed headers (greeting,
 * option and option reply, request, simple reply, structured chunk,
 * NBD_INFO replies); handshake.c and transmission.c work on the decoded
 * structs and append the variable payloads after those headers (option
 * data, read offsets, error messages, block status descriptors) with the
 * nbd_put16/32/64 and nbd_get16/32/64 below; server.c peeks at a buffered
 * request's command and length with them.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Handshake magics. */
#define NBD_MAGIC UINT64_C(0x4e42444d41474943)          /* "NBDMAGIC" */
#define NBD_IHAVEOPT UINT64_C(0x49484156454F5054)       /* "IHAVEOPT" */
#define NBD_REP_MAGIC UINT64_C(0x0003e889045565a9)

/* Handshake flags (server) and client flags. */
#define NBD_FLAG_FIXED_NEWSTYLE (1u << 0)
#define NBD_FLAG_NO_ZEROES (1u << 1)
#define NBD_FLAG_C_FIXED_NEWSTYLE (1u << 0)
#define NBD_FLAG_C_NO_ZEROES (1u << 1)

/* Transmission flags. */
#define NBD_FLAG_HAS_FLAGS (1u << 0)
#define NBD_FLAG_READ_ONLY (1u << 1)
#define NBD_FLAG_SEND_FLUSH (1u << 2)
#define NBD_FLAG_SEND_FUA (1u << 3)
#define NBD_FLAG_ROTATIONAL (1u << 4)
#define NBD_FLAG_SEND_TRIM (1u << 5)
#define NBD_FLAG_SEND_WRITE_ZEROES (1u << 6)
#define NBD_FLAG_SEND_DF (1u << 7)
#define NBD_FLAG_CAN_MULTI_CONN (1u << 8)
#define NBD_FLAG_SEND_RESIZE (1u << 9)
#define NBD_FLAG_SEND_CACHE (1u << 10)
#define NBD_FLAG_SEND_FAST_ZERO (1u << 11)

/* Options. */
#define NBD_OPT_EXPORT_NAME 1
#define NBD_OPT_ABORT 2
#define NBD_OPT_LIST 3
#define NBD_OPT_PEEK_EXPORT 4
#define NBD_OPT_STARTTLS 5
#define NBD_OPT_INFO 6
#define NBD_OPT_GO 7
#define NBD_OPT_STRUCTURED_REPLY 8
#define NBD_OPT_LIST_META_CONTEXT 9
#define NBD_OPT_SET_META_CONTEXT 10
#define NBD_OPT_EXTENDED_HEADERS 11

/* Option replies. */
#define NBD_REP_ACK 1
#define NBD_REP_SERVER 2
#define NBD_REP_INFO 3
#define NBD_REP_META_CONTEXT 4
#define NBD_REP_FLAG_ERROR (1u << 31)
#define NBD_REP_ERR_UNSUP (NBD_REP_FLAG_ERROR | 1)
#define NBD_REP_ERR_POLICY (NBD_REP_FLAG_ERROR | 2)
#define NBD_REP_ERR_INVALID (NBD_REP_FLAG_ERROR | 3)
#define NBD_REP_ERR_PLATFORM (NBD_REP_FLAG_ERROR | 4)
#define NBD_REP_ERR_TLS_REQD (NBD_REP_FLAG_ERROR | 5)
#define NBD_REP_ERR_UNKNOWN (NBD_REP_FLAG_ERROR | 6)
#define NBD_REP_ERR_SHUTDOWN (NBD_REP_FLAG_ERROR | 7)
#define NBD_REP_ERR_BLOCK_SIZE_REQD (NBD_REP_FLAG_ERROR | 8)
#define NBD_REP_ERR_TOO_BIG (NBD_REP_FLAG_ERROR | 9)

/* NBD_REP_INFO types. */
#define NBD_INFO_EXPORT 0
#define NBD_INFO_NAME 1
#define NBD_INFO_DESCRIPTION 2
#define NBD_INFO_BLOCK_SIZE 3

/* Transmission: magics, commands, command flags. */
#define NBD_REQUEST_MAGIC UINT32_C(0x25609513)
#define NBD_SIMPLE_REPLY_MAGIC UINT32_C(0x67446698)
#define NBD_STRUCTURED_REPLY_MAGIC UINT32_C(0x668e33ef)

#define NBD_CMD_READ 0
#define NBD_CMD_WRITE 1
#define NBD_CMD_DISC 2
#define NBD_CMD_FLUSH 3
#define NBD_CMD_TRIM 4
#define NBD_CMD_CACHE 5
#define NBD_CMD_WRITE_ZEROES 6
#define NBD_CMD_BLOCK_STATUS 7
#define NBD_CMD_RESIZE 8

#define NBD_CMD_FLAG_FUA (1u << 0)
#define NBD_CMD_FLAG_NO_HOLE (1u << 1)
#define NBD_CMD_FLAG_DF (1u << 2)
#define NBD_CMD_FLAG_REQ_ONE (1u << 3)
#define NBD_CMD_FLAG_FAST_ZERO (1u << 4)

/* Structured reply chunks. */
#define NBD_REPLY_FLAG_DONE (1u << 0)
#define NBD_REPLY_TYPE_NONE 0
#define NBD_REPLY_TYPE_OFFSET_DATA 1
#define NBD_REPLY_TYPE_OFFSET_HOLE 2
#define NBD_REPLY_TYPE_BLOCK_STATUS 5
#define NBD_REPLY_TYPE_ERROR ((1u << 15) | 1)
#define NBD_REPLY_TYPE_ERROR_OFFSET ((1u << 15) | 2)

/* base:allocation status flags. */
#define NBD_STATE_HOLE (1u << 0)
#define NBD_STATE_ZERO (1u << 1)

/* Error values on the wire (not host errno values). */
#define NBD_EPERM 1
#define NBD_EIO 5
#define NBD_ENOMEM 12
#define NBD_EINVAL 22
#define NBD_ENOSPC 28
#define NBD_EOVERFLOW 75
#define NBD_ENOTSUP 95
#define NBD_ESHUTDOWN 108

/* Sizes of the fixed parts of messages. */
#define NBD_GREETING_SIZE 18            /* NBDMAGIC, IHAVEOPT, 16-bit flags */
#define NBD_OPTION_HEADER_SIZE 16       /* IHAVEOPT, option, length */
#define NBD_OPTION_REPLY_SIZE 20        /* magic, option, type, length */
#define NBD_EXPORT_NAME_REPLY_SIZE 10   /* size, flags (+124 zeroes) */
#define NBD_REQUEST_SIZE 28
#define NBD_SIMPLE_REPLY_SIZE 16
#define NBD_CHUNK_HEADER_SIZE 20

/* Protocol limits. */
#define NBD_MAX_STRING 4096             /* names, queries, messages */
#define NBD_MAX_STRING_SHOULD 256

/* A decoded request header. */
struct nbdsrv_request {
        uint16_t flags;
        uint16_t type;
        uint64_t handle;
        uint64_t offset;
        uint32_t length;
};

/* A decoded option header. */
struct nbdsrv_option {
        uint32_t option;
        uint32_t length;
};

/* Big-endian field access on byte buffers (no alignment assumed). */
static inline void nbd_put16(uint8_t *p, uint16_t v) {
        p[0] = (uint8_t) (v >> 8);
        p[1] = (uint8_t) v;
}
static inline void nbd_put32(uint8_t *p, uint32_t v) {
        nbd_put16(p, (uint16_t) (v >> 16));
        nbd_put16(p + 2, (uint16_t) v);
}
static inline void nbd_put64(uint8_t *p, uint64_t v) {
        nbd_put32(p, (uint32_t) (v >> 32));
        nbd_put32(p + 4, (uint32_t) v);
}
static inline uint16_t nbd_get16(const uint8_t *p) {
        return (uint16_t) ((uint16_t) p[0] << 8 | p[1]);
}
static inline uint32_t nbd_get32(const uint8_t *p) {
        return (uint32_t) nbd_get16(p) << 16 | nbd_get16(p + 2);
}
static inline uint64_t nbd_get64(const uint8_t *p) {
        return (uint64_t) nbd_get32(p) << 32 | nbd_get32(p + 4);
}

/* --- The codec (codec.c) --- */

/* Server greeting: NBDMAGIC, IHAVEOPT, handshake flags. */
void nbdsrv_encode_greeting(uint8_t out[NBD_GREETING_SIZE], uint16_t hflags);
/* Option header: 0, or -EBADMSG when the magic is not IHAVEOPT. */
int nbdsrv_decode_option(const uint8_t in[NBD_OPTION_HEADER_SIZE], struct nbdsrv_option *ret);
void nbdsrv_encode_option_reply(uint8_t out[NBD_OPTION_REPLY_SIZE], uint32_t option, uint32_t type,
                                uint32_t length);
/* Reply to NBD_OPT_EXPORT_NAME: size, flags and, unless no_zeroes, 124
 * zero bytes. Returns the number of bytes used in out (10 or 134). */
size_t nbdsrv_encode_export_name_reply(uint8_t out[NBD_EXPORT_NAME_REPLY_SIZE + 124], uint64_t size,
                                       uint16_t tflags, bool no_zeroes);
/* NBD_REP_INFO payloads. Return the payload length. */
size_t nbdsrv_encode_info_export(uint8_t out[12], uint64_t size, uint16_t tflags);
size_t nbdsrv_encode_info_block_size(uint8_t out[14], uint32_t min, uint32_t pref, uint32_t max);

/* Request header: 0, or -EBADMSG when the magic is wrong. */
int nbdsrv_decode_request(const uint8_t in[NBD_REQUEST_SIZE], struct nbdsrv_request *ret);
void nbdsrv_encode_simple_reply(uint8_t out[NBD_SIMPLE_REPLY_SIZE], uint32_t nbd_error, uint64_t handle);
void nbdsrv_encode_chunk_header(uint8_t out[NBD_CHUNK_HEADER_SIZE], uint16_t flags, uint16_t type,
                                uint64_t handle, uint32_t length);

/* Map a -errno (or errno) to the protocol's error value. The one place
 * host errors become wire errors. */
uint32_t nbdsrv_errno_to_nbd(int r);

/* Names for logs ("READ", "NBD_OPT_GO", ...); "unknown" otherwise. */
const char *nbdsrv_cmd_name(uint16_t type);
const char *nbdsrv_opt_name(uint32_t option);
