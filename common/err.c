/* SPDX-License-Identifier: Apache-2.0 */
/* err_set(): the sentence for an error buffer; see err.h. */
#include <errno.h>
#include <stdio.h>

#include "common/err.h"

int err_setv(char *err, size_t errlen, int r, const char *fmt, va_list ap) {
        int saved = errno;

        if (!err || !errlen)
                return r;
        /* glibc's %m reads errno: point it at the error being described. */
        errno = r < 0 ? -r : saved;
        (void) vsnprintf(err, errlen, fmt, ap);
        errno = saved;
        return r;
}

int err_set(char *err, size_t errlen, int r, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        r = err_setv(err, errlen, r, fmt, ap);
        va_end(ap);
        return r;
}
