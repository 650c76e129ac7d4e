/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Logging to stderr with levels. Library code (chunkstore, registry-client,
 * common) only uses log_debug(); whoever handles an error logs it once.
 * log_*_errno() return -abs(error), so "return log_error_errno(r, ...)"
 * both logs and propagates. "%m" prints strerror(error).
 *
 * Debug is per module: debug_flag("registry.http") is nonzero when the user
 * passed "-D registry.http=1" (or -v, which turns every flag on at level 1).
 * Thread-safe: each message is written with one write(2).
 */
#pragma once

#include <stdarg.h>
#include <stdbool.h>

enum {
        LOG_LVL_ERR = 3,
        LOG_LVL_WARNING = 4,
        LOG_LVL_NOTICE = 5,
        LOG_LVL_INFO = 6,
        LOG_LVL_DEBUG = 7,
};

void log_set_level(int level);
int log_get_level(void);
/* Program name printed before each line, e.g. "blockd". Borrowed pointer. */
void log_set_ident(const char *ident);
/* Prefix lines with a timestamp and level (daemon style). */
void log_set_timestamps(bool on);

int log_internal(int level, int error, const char *func, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
int log_internalv(int level, int error, const char *func, const char *fmt, va_list ap)
        __attribute__((format(printf, 4, 0)));

#define log_full_errno(level, error, ...) \
        log_internal((level), (error), __func__, __VA_ARGS__)

#define log_error_errno(error, ...) log_full_errno(LOG_LVL_ERR, (error), __VA_ARGS__)
#define log_warning_errno(error, ...) log_full_errno(LOG_LVL_WARNING, (error), __VA_ARGS__)
#define log_debug_errno(error, ...) log_full_errno(LOG_LVL_DEBUG, (error), __VA_ARGS__)
#define log_error(...) log_full_errno(LOG_LVL_ERR, 0, __VA_ARGS__)
#define log_warning(...) log_full_errno(LOG_LVL_WARNING, 0, __VA_ARGS__)
#define log_notice(...) log_full_errno(LOG_LVL_NOTICE, 0, __VA_ARGS__)
#define log_info(...) log_full_errno(LOG_LVL_INFO, 0, __VA_ARGS__)
#define log_debug(...)                                                  \
        ({                                                              \
                if (log_get_level() >= LOG_LVL_DEBUG)                   \
                        log_full_errno(LOG_LVL_DEBUG, 0, __VA_ARGS__);  \
        })

/* "-D name=value" (value defaults to 1). 0 or -EINVAL. */
int debug_flag_parse(const char *assignment);
/* Turn every flag on at this value unless set explicitly (-v). */
void debug_flags_set_default(int value);
/* Current value of a flag; 0 when unset. Cheap enough for per-request use. */
int debug_flag(const char *name);
