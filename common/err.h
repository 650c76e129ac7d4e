/* SPDX-License-Identifier: Apache-2.0 */
/* The one way to say what went wrong into a caller's error buffer.
 *
 * Functions that can fail for reasons a person must read take
 * (char *err, size_t errlen) and return -errno; the sentence goes to err
 * through err_set(), so every failure is one line:
 *
 *         if (fd < 0)
 *                 return err_set(err, errlen, -errno, "cannot open '%s': %m", path);
 */
#pragma once

#include <stdarg.h>
#include <stddef.h>

/* Format the sentence into err (at most errlen - 1 bytes, always
 * NUL-terminated; nothing is written when err is NULL or errlen is 0) and
 * return r, a -errno, unchanged. "%m" in fmt says strerror(-r), whatever
 * errno holds; errno itself is the same on return as on entry. */
int err_set(char *err, size_t errlen, int r, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
int err_setv(char *err, size_t errlen, int r, const char *fmt, va_list ap) __attribute__((format(printf, 4, 0)));
