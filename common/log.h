/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Logging to stderr with levels. Library code (chunkstore, registry-client,
 * common) only uses log_debug(); whoever handles an error logs it once.
 * log_*_errno() return -abs(error), so "return log_error_errno(r, ...)"
 * both logs and propagates. "%m" prints strerror(error).
 *
 * Per-kind debug output is gated by the flags of debug-flags.h
 * ("-D registry.http=1"). Thread-safe: each message is written with one write(2).
 */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

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
/* Start each line with prefixes[level] (levels are syslog's) and nothing
 * else: for a reader that adds time and name itself and files lines by
 * priority, such as the journal ("<3>", sd-daemon.h's SD_ERR). NULL: off. */
void log_set_priority_prefixes(const char *const prefixes[8]);

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

/* A string from outside (a client, a file, the network) made safe to put
 * in a log line, so that it cannot forge lines or drive a terminal:
 * newline, CR and tab become \n \r \t, a backslash \\, other control
 * characters (C0, DEL, C1, U+2028/U+2029) and invalid UTF-8 \xNN per
 * byte; valid printable UTF-8 is kept. Cut to fit size (ending in "...").
 * Returns buf (size > 4); s NULL gives "(null)". log_escape_n takes len
 * bytes that may hold NULs. */
const char *log_escape(const char *s, char *buf, size_t size);
const char *log_escape_n(const void *s, size_t len, char *buf, size_t size);
/* A buffer size for log_escape that keeps a 100-character name whole. */
#define LOG_ESCAPE_MAX 512

