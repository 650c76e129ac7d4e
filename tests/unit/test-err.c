/* SPDX-License-Identifier: Apache-2.0 */
/*
 * err_set(), the one error-sentence helper: the format, truncation to the
 * buffer (always terminated, never past errlen), the -errno returned as
 * given, %m naming that error, errno untouched, NULL/0 buffers, and a
 * real caller (image_ref_parse) filling a short buffer.
 */
#undef NDEBUG
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/err.h"
#include "registry-client/ref.h"

static void test_format(void) {
        char buf[128];

        assert(err_set(buf, sizeof buf, -EINVAL, "bad %s at %d", "thing", 42) == -EINVAL);
        assert(!strcmp(buf, "bad thing at 42"));
        /* The value is returned as given, whatever it is. */
        assert(err_set(buf, sizeof buf, -EBADMSG, "x") == -EBADMSG);
        assert(err_set(buf, sizeof buf, -ENOTUNIQ, "y") == -ENOTUNIQ);
        assert(!strcmp(buf, "y"));
}

static void test_truncation(void) {
        char buf[8];

        memset(buf, 'Z', sizeof buf);
        assert(err_set(buf, 5, -EIO, "%s", "abcdefgh") == -EIO);
        assert(!strcmp(buf, "abcd"));
        assert(buf[5] == 'Z' && buf[7] == 'Z');         /* nothing past errlen */
        assert(err_set(buf, 1, -EIO, "abc") == -EIO);
        assert(buf[0] == 0);
        assert(err_set(buf, sizeof buf, -EIO, "1234567") == -EIO);
        assert(!strcmp(buf, "1234567"));
}

static void test_null(void) {
        char buf[4] = "abc";

        assert(err_set(NULL, 0, -ENOENT, "nothing %d", 1) == -ENOENT);
        assert(err_set(NULL, 100, -ENOENT, "nothing") == -ENOENT);
        assert(err_set(buf, 0, -ENOENT, "nothing") == -ENOENT);
        assert(!strcmp(buf, "abc"));
}

static void test_errno(void) {
        char buf[128], want[128];

        /* %m names the error given, not whatever errno holds... */
        errno = EPERM;
        assert(err_set(buf, sizeof buf, -ENOENT, "open: %m") == -ENOENT);
        snprintf(want, sizeof want, "open: %s", strerror(ENOENT));
        assert(!strcmp(buf, want));
        /* ...and errno is the caller's again afterwards. */
        assert(errno == EPERM);
        errno = EACCES;
        assert(err_set(NULL, 0, -ENOENT, "%m") == -ENOENT);
        assert(errno == EACCES);
        /* The common call: -errno and %m both from the failed call. */
        errno = ENOSPC;
        assert(err_set(buf, sizeof buf, -errno, "write: %m") == -ENOSPC);
        snprintf(want, sizeof want, "write: %s", strerror(ENOSPC));
        assert(!strcmp(buf, want));
        assert(errno == ENOSPC);
}

/* A real caller: the sentence lands, cut to the buffer, with the errno. */
static void test_caller(void) {
        struct image_ref *ref = NULL;
        char buf[128], small[10];

        assert(image_ref_parse("nope:x", &ref, buf, sizeof buf) == -EINVAL);
        assert(!ref);
        assert(strstr(buf, "'nope:x' is not a reference"));
        assert(image_ref_parse("nope:x", &ref, small, sizeof small) == -EINVAL);
        assert(strlen(small) == sizeof small - 1);
        assert(!strncmp(small, buf, sizeof small - 1));
        assert(image_ref_parse("nope:x", &ref, NULL, 0) == -EINVAL);
}

int main(void) {
        test_format();
        test_truncation();
        test_null();
        test_errno();
        test_caller();
        return 0;
}
