/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The one place where foreign error codes become -errno: libcurl's
 * CURLcode and HTTP status codes, plus the small parsers that decide
 * whether and when to retry (Retry-After, backoff with jitter) and that
 * turn a registry's error body into a sentence. Pure functions, no I/O.
 *
 * Mapping (the contract of source.h):
 *   404                        -ENOENT
 *   401, 403                   -EACCES
 *   429, 5xx (but 501, 505)    -EAGAIN     (transient: retried first)
 *   408, stalls, timeouts      -ETIMEDOUT  (transient: retried first)
 *   connection refused         -ECONNREFUSED (transient: retried first)
 *   resets                     -ECONNRESET (transient: retried first)
 *   replies cut short          -EPIPE      (transient: retried first)
 *   untrusted certificate      -EKEYREJECTED
 *   TLS handshake failure      -EPROTO
 *   bad digest                 -EBADMSG (decided by the callers that hash)
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* 0 for 1xx-3xx, else the errno above (other 4xx: -EPROTO, 413 -EFBIG,
 * 405 -EOPNOTSUPP, 416 -ERANGE, 400 -EINVAL). */
int http_status_to_errno(long status);
/* True for statuses worth retrying: 408, 429, 500, 502, 503, 504 and other
 * 5xx except 501 and 505. */
bool http_status_transient(long status);

/* CURLcode (passed as int so that this header needs no curl.h) to -errno;
 * 0 for CURLE_OK. */
int curl_code_to_errno(int code);
/* True for connection-level failures worth retrying. */
bool curl_code_transient(int code);

/*
 * Parse a Retry-After value: delay-seconds or an HTTP-date (IMF-fixdate,
 * e.g. "Wed, 21 Oct 2015 07:28:00 GMT"). now is the wall clock. Returns
 * the delay in milliseconds (0 for a date in the past) or -EINVAL.
 */
int64_t retry_after_parse(const char *value, time_t now);

/*
 * Exponential backoff with jitter: for attempt n (1 = first retry) the
 * delay is uniformly spread over [d/2, d] where d = min(cap, base << (n-1)).
 * rnd is a random 32-bit value (passed in so that tests are exact).
 */
uint64_t backoff_ms(unsigned attempt, uint64_t base_ms, uint64_t cap_ms, uint32_t rnd);

/*
 * Turn a distribution-spec error body ({"errors":[{"code":..,"message":..}]})
 * into "CODE: message[; CODE: message]" in buf. Returns 0, or -EINVAL when
 * the body is not such a document (buf then holds "").
 */
int registry_error_text(const char *body, size_t len, char *buf, size_t buflen);
