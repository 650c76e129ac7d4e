/* SPDX-License-Identifier: Apache-2.0 */
/* Scope-based cleanup helpers (GCC/Clang cleanup attribute). */
#pragma once

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static inline void freep(void *p) {
        free(*(void **) p);
}

static inline void closep(int *fd) {
        if (*fd >= 0) {
                int saved = errno;
                (void) close(*fd);
                errno = saved;
        }
}

static inline void fclosep(FILE **f) {
        if (*f)
                (void) fclose(*f);
}

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _cleanup_free_ _cleanup_(freep)
#define _cleanup_close_ _cleanup_(closep)
#define _cleanup_fclose_ _cleanup_(fclosep)

/* Define a cleanup function for a type with a NULL-tolerant destructor. */
#define DEFINE_CLEANUP_FUNC(type, func)                   \
        static inline void func##p(type **p) {            \
                if (*p)                                   \
                        func(*p);                         \
        }

/* Take ownership: return the value and reset the variable. */
#define TAKE_PTR(p)                                       \
        ({                                                \
                __typeof__(p) _p_ = (p);                  \
                (p) = NULL;                               \
                _p_;                                      \
        })
#define TAKE_FD(fd)                                       \
        ({                                                \
                int _fd_ = (fd);                          \
                (fd) = -EBADF;                            \
                _fd_;                                     \
        })

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#define DIV_ROUND_UP(n, d) (((n) + (d) - 1) / (d))
#define _unused_ __attribute__((unused))
