/* SPDX-License-Identifier: Apache-2.0 */
#include "log.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "utf8.h"

/* A valid multi-byte character that is a control or a line break:
 * C1 controls (U+0080-U+009F), LINE and PARAGRAPH SEPARATOR. */
static bool unsafe_char(const unsigned char *u, size_t n) {
        return (n == 2 && u[0] == 0xc2 && u[1] < 0xa0) ||
               (n == 3 && u[0] == 0xe2 && u[1] == 0x80 && (u[2] == 0xa8 || u[2] == 0xa9));
}

/* The escaped form of the character at s[0..n), into out (>= 17 bytes). */
static size_t escape_char(const unsigned char *u, size_t n, char *out) {
        size_t k = 0;

        if (n == 1) {
                switch (u[0]) {
                case '\n':
                        return (size_t) snprintf(out, 17, "\\n");
                case '\r':
                        return (size_t) snprintf(out, 17, "\\r");
                case '\t':
                        return (size_t) snprintf(out, 17, "\\t");
                case '\\':
                        return (size_t) snprintf(out, 17, "\\\\");
                default:
                        if (u[0] >= 0x20 && u[0] < 0x7f) {
                                out[0] = (char) u[0];
                                return 1;
                        }
                }
        } else if (n > 1 && !unsafe_char(u, n)) {
                memcpy(out, u, n);
                return n;
        }
        for (size_t i = 0; i < (n ? n : 1); i++)
                k += (size_t) snprintf(out + k, 17 - k, "\\x%02x", u[i]);
        return k;
}

const char *log_escape_n(const void *s, size_t len, char *buf, size_t size) {
        const unsigned char *u = s;
        size_t o = 0, i = 0, cut = 0;   /* cut: the last end of a character with room for "..." */

        if (size < 5)
                return size ? (buf[0] = 0, buf) : buf;
        if (!s) {
                snprintf(buf, size, "(null)");
                return buf;
        }
        while (i < len) {
                char tmp[17];
                size_t n = utf8_char_len((const char *) u + i, len - i), k;

                k = escape_char(u + i, n, tmp);
                if (o + k > size - 1) {
                        memcpy(buf + cut, "...", 4);
                        return buf;
                }
                memcpy(buf + o, tmp, k);
                o += k;
                i += n ? n : 1;
                if (o + 4 <= size)
                        cut = o;
        }
        buf[o] = 0;
        return buf;
}

const char *log_escape(const char *s, char *buf, size_t size) {
        return log_escape_n(s, s ? strlen(s) : 0, buf, size);
}
