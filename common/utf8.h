/* SPDX-License-Identifier: Apache-2.0 */
/*
 * UTF-8 as RFC 3629 defines it: no overlong forms, no surrogates
 * (U+D800-U+DFFF), nothing above U+10FFFF.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* The length (1-4) of the valid character that starts s (len bytes
 * available), or 0 when s does not start with one (len 0, a stray or
 * truncated byte, an overlong form, a surrogate, too large). */
size_t utf8_char_len(const char *s, size_t len);

/* True when all len bytes of s are valid UTF-8. *ret_bad (optional) gets
 * the offset of the first invalid byte otherwise. */
bool utf8_valid(const char *s, size_t len, size_t *ret_bad);
