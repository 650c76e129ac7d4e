/* SPDX-License-Identifier: Apache-2.0 */
#include "utf8.h"

#include <stdint.h>

size_t utf8_char_len(const char *s, size_t len) {
        const unsigned char *u = (const unsigned char *) s;
        uint32_t cp, min;
        size_t n;

        if (len == 0)
                return 0;
        if (u[0] < 0x80)
                return 1;
        if ((u[0] & 0xe0) == 0xc0) {
                n = 2;
                cp = u[0] & 0x1f;
                min = 0x80;
        } else if ((u[0] & 0xf0) == 0xe0) {
                n = 3;
                cp = u[0] & 0x0f;
                min = 0x800;
        } else if ((u[0] & 0xf8) == 0xf0) {
                n = 4;
                cp = u[0] & 0x07;
                min = 0x10000;
        } else {
                return 0;       /* a continuation byte, or 0xf8-0xff */
        }
        if (len < n)
                return 0;
        for (size_t i = 1; i < n; i++) {
                if ((u[i] & 0xc0) != 0x80)
                        return 0;
                cp = cp << 6 | (u[i] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
                return 0;
        return n;
}

bool utf8_valid(const char *s, size_t len, size_t *ret_bad) {
        size_t i = 0;

        while (i < len) {
                size_t n = utf8_char_len(s + i, len - i);
                if (n == 0) {
                        if (ret_bad)
                                *ret_bad = i;
                        return false;
                }
                i += n;
        }
        return true;
}
