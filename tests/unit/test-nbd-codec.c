/* SPDX-License-Identifier: Apache-2.0 */
/* The NBD codec: byte layouts from the protocol document, magics checked,
 * errno mapping. */
#undef NDEBUG
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "blockd/nbd/nbd-protocol.h"

int main(void) {
        uint8_t b[200];
        struct nbdsrv_request rq;
        struct nbdsrv_option opt;

        nbdsrv_encode_greeting(b, NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
        assert(memcmp(b, "NBDMAGICIHAVEOPT\x00\x03", 18) == 0);

        memcpy(b, "IHAVEOPT\x00\x00\x00\x07\x00\x00\x01\x02", 16);
        assert(nbdsrv_decode_option(b, &opt) == 0);
        assert(opt.option == NBD_OPT_GO && opt.length == 0x102);
        b[0] = 'X';
        assert(nbdsrv_decode_option(b, &opt) == -EBADMSG);

        nbdsrv_encode_option_reply(b, NBD_OPT_LIST, NBD_REP_ERR_UNSUP, 5);
        assert(memcmp(b, "\x00\x03\xe8\x89\x04\x55\x65\xa9\x00\x00\x00\x03\x80\x00\x00\x01\x00\x00\x00\x05", 20) == 0);

        assert(nbdsrv_encode_export_name_reply(b, 0x0102030405060708ULL, 0x1234, true) == 10);
        assert(memcmp(b, "\x01\x02\x03\x04\x05\x06\x07\x08\x12\x34", 10) == 0);
        memset(b, 0xff, sizeof b);
        assert(nbdsrv_encode_export_name_reply(b, 1, 1, false) == 134);
        for (int i = 10; i < 134; i++)
                assert(b[i] == 0);

        assert(nbdsrv_encode_info_export(b, 512, NBD_FLAG_HAS_FLAGS | NBD_FLAG_READ_ONLY) == 12);
        assert(memcmp(b, "\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x00\x03", 12) == 0);
        assert(nbdsrv_encode_info_block_size(b, 1, 4096, 1u << 25) == 14);
        assert(memcmp(b, "\x00\x03\x00\x00\x00\x01\x00\x00\x10\x00\x02\x00\x00\x00", 14) == 0);

        memcpy(b, "\x25\x60\x95\x13\x00\x01\x00\x00\xaa\xbb\xcc\xdd\xee\xff\x00\x11"
                  "\x00\x00\x00\x00\x00\x10\x00\x00\x00\x00\x10\x00", 28);
        assert(nbdsrv_decode_request(b, &rq) == 0);
        assert(rq.flags == NBD_CMD_FLAG_FUA && rq.type == NBD_CMD_READ);
        assert(rq.handle == 0xaabbccddeeff0011ULL && rq.offset == 0x100000 && rq.length == 4096);
        b[3] = 0x14;
        assert(nbdsrv_decode_request(b, &rq) == -EBADMSG);

        nbdsrv_encode_simple_reply(b, NBD_EINVAL, 7);
        assert(memcmp(b, "\x67\x44\x66\x98\x00\x00\x00\x16\x00\x00\x00\x00\x00\x00\x00\x07", 16) == 0);
        nbdsrv_encode_chunk_header(b, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_OFFSET_HOLE, 9, 12);
        assert(memcmp(b, "\x66\x8e\x33\xef\x00\x01\x00\x02\x00\x00\x00\x00\x00\x00\x00\x09\x00\x00\x00\x0c", 20) == 0);

        assert(nbdsrv_errno_to_nbd(0) == 0);
        assert(nbdsrv_errno_to_nbd(-EROFS) == NBD_EPERM);
        assert(nbdsrv_errno_to_nbd(-EPERM) == NBD_EPERM);
        assert(nbdsrv_errno_to_nbd(-EINVAL) == NBD_EINVAL);
        assert(nbdsrv_errno_to_nbd(-EDQUOT) == NBD_ENOSPC);
        assert(nbdsrv_errno_to_nbd(-EFBIG) == NBD_ENOSPC);
        assert(nbdsrv_errno_to_nbd(-ENOTSUP) == NBD_ENOTSUP);
        assert(nbdsrv_errno_to_nbd(-ESHUTDOWN) == NBD_ESHUTDOWN);
        assert(nbdsrv_errno_to_nbd(-EBADMSG) == NBD_EIO);
        assert(nbdsrv_errno_to_nbd(-ETIMEDOUT) == NBD_EIO);
        assert(nbdsrv_errno_to_nbd(EOVERFLOW) == NBD_EOVERFLOW);

        assert(strcmp(nbdsrv_cmd_name(NBD_CMD_BLOCK_STATUS), "BLOCK_STATUS") == 0);
        assert(strcmp(nbdsrv_cmd_name(999), "unknown") == 0);
        assert(strcmp(nbdsrv_opt_name(NBD_OPT_SET_META_CONTEXT), "NBD_OPT_SET_META_CONTEXT") == 0);
        assert(strcmp(nbdsrv_opt_name(0x80000000u), "unknown") == 0);
        printf("nbd codec: ok\n");
        return 0;
}
