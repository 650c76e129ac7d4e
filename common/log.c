/* SPDX-License-Identifier: Apache-2.0 */
#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"

static int log_level = LOG_LVL_INFO;
static const char *log_ident = "hocus-blk";
static bool log_timestamps;
static const char *const *log_prefixes;

void log_set_level(int level) {
        log_level = level;
}

int log_get_level(void) {
        return log_level;
}

void log_set_ident(const char *ident) {
        log_ident = ident;
}

void log_set_timestamps(bool on) {
        log_timestamps = on;
}

void log_set_priority_prefixes(const char *const prefixes[8]) {
        log_prefixes = prefixes;
}

static const char *level_name(int level) {
        switch (level) {
        case LOG_LVL_ERR:
                return "error";
        case LOG_LVL_WARNING:
                return "warning";
        case LOG_LVL_NOTICE:
                return "notice";
        case LOG_LVL_INFO:
                return "info";
        default:
                return "debug";
        }
}

/* Control characters in a formatted message (a string from outside that
 * a caller did not pass through log_escape()) become \n, \r or \xNN: one
 * message is one line, whatever it holds. Returns msg, or out. */
static const char *one_line(const char *msg, char *out, size_t size) {
        size_t o = 0;

        if (!msg[strcspn(msg, "\x01\x02\x03\x04\x05\x06\x07\x08\n\x0b\x0c\r\x0e\x0f\x10\x11\x12\x13"
                              "\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f\x7f")])
                return msg;
        for (const unsigned char *p = (const unsigned char *) msg; *p && o + 5 < size; p++) {
                if (*p == '\n')
                        o += (size_t) snprintf(out + o, size - o, "\\n");
                else if (*p == '\r')
                        o += (size_t) snprintf(out + o, size - o, "\\r");
                else if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
                        o += (size_t) snprintf(out + o, size - o, "\\x%02x", *p);
                else
                        out[o++] = (char) *p;
        }
        out[o] = 0;
        return out;
}

/* Format one line and write it with a single write(2), so lines from
 * several threads never interleave. */
int log_internalv(int level, int error, const char *func, const char *fmt, va_list ap) {
        char msg[2048], esc[2048], line[2300];
        const char *m;
        int saved = errno;
        int n;

        if (error < 0)
                error = -error;
        if (level > log_level)
                goto out;

        errno = error;
        n = vsnprintf(msg, sizeof msg, fmt, ap);
        for (n = n < 0 ? 0 : MIN(n, (int) sizeof msg - 1); n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'); n--)
                msg[n - 1] = 0;         /* a trailing newline (some library messages have one) goes */
        m = one_line(msg, esc, sizeof esc);
        if (log_prefixes) {
                n = snprintf(line, sizeof line, "%s%s%s%s\n", log_prefixes[level & 7], m,
                             level == LOG_LVL_DEBUG && func ? " @" : "", level == LOG_LVL_DEBUG && func ? func : "");
        } else if (log_timestamps) {
                struct timespec ts;
                struct tm tm;

                clock_gettime(CLOCK_REALTIME, &ts);
                gmtime_r(&ts.tv_sec, &tm);
                n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s[%d] %s: %s%s%s\n",
                             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                             tm.tm_sec, ts.tv_nsec / 1000000, log_ident, (int) getpid(),
                             level_name(level), m, level == LOG_LVL_DEBUG && func ? " @" : "",
                             level == LOG_LVL_DEBUG && func ? func : "");
        } else if (level <= LOG_LVL_WARNING) {
                n = snprintf(line, sizeof line, "%s: %s: %s\n", log_ident, level_name(level), m);
        } else if (level == LOG_LVL_DEBUG) {
                n = snprintf(line, sizeof line, "%s: debug: %s\n", log_ident, m);
        } else {
                n = snprintf(line, sizeof line, "%s: %s\n", log_ident, m);
        }
        if (n > 0) {
                if ((size_t) n >= sizeof line) {
                        n = sizeof line - 1;
                        line[n - 1] = '\n';
                }
                (void) !write(STDERR_FILENO, line, (size_t) n);
        }
out:
        errno = saved;
        return -error;
}

int log_internal(int level, int error, const char *func, const char *fmt, ...) {
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = log_internalv(level, error, func, fmt, ap);
        va_end(ap);
        return r;
}
