/* SPDX-License-Identifier: Apache-2.0 */
/* errors.c: status and CURLcode mapping, Retry-After, backoff, error bodies. */
#undef NDEBUG
#include <assert.h>
#include <curl/curl.h>
#include <errno.h>
#include <string.h>

#include "registry-client/errors.h"

static void test_status(void) {
        assert(http_status_to_errno(200) == 0);
        assert(http_status_to_errno(206) == 0);
        assert(http_status_to_errno(307) == 0);
        assert(http_status_to_errno(404) == -ENOENT);
        assert(http_status_to_errno(401) == -EACCES);
        assert(http_status_to_errno(403) == -EACCES);
        assert(http_status_to_errno(429) == -EAGAIN);
        assert(http_status_to_errno(500) == -EAGAIN);
        assert(http_status_to_errno(503) == -EAGAIN);
        assert(http_status_to_errno(501) == -EOPNOTSUPP);
        assert(http_status_to_errno(416) == -ERANGE);
        assert(http_status_to_errno(413) == -EFBIG);
        assert(http_status_to_errno(400) == -EINVAL);
        assert(http_status_to_errno(418) == -EPROTO);
        assert(http_status_transient(429) && http_status_transient(500) && http_status_transient(502) &&
               http_status_transient(503) && http_status_transient(504) && http_status_transient(408));
        assert(!http_status_transient(501) && !http_status_transient(404) && !http_status_transient(401) &&
               !http_status_transient(200));
}

static void test_curl(void) {
        assert(curl_code_to_errno(CURLE_OK) == 0);
        assert(curl_code_to_errno(CURLE_COULDNT_CONNECT) == -ECONNREFUSED);
        assert(curl_code_to_errno(CURLE_OPERATION_TIMEDOUT) == -ETIMEDOUT);
        assert(curl_code_to_errno(CURLE_PEER_FAILED_VERIFICATION) == -EKEYREJECTED);
        assert(curl_code_to_errno(CURLE_SSL_CONNECT_ERROR) == -EPROTO);
        assert(curl_code_to_errno(CURLE_RECV_ERROR) == -ECONNRESET);
        assert(curl_code_to_errno(CURLE_PARTIAL_FILE) == -EPIPE);
        assert(curl_code_to_errno(CURLE_COULDNT_RESOLVE_HOST) == -EHOSTUNREACH);
        assert(curl_code_transient(CURLE_COULDNT_CONNECT) && curl_code_transient(CURLE_RECV_ERROR) &&
               curl_code_transient(CURLE_OPERATION_TIMEDOUT) && curl_code_transient(CURLE_GOT_NOTHING));
        assert(!curl_code_transient(CURLE_PEER_FAILED_VERIFICATION) && !curl_code_transient(CURLE_OK) &&
               !curl_code_transient(CURLE_URL_MALFORMAT));
}

static void test_retry_after(void) {
        /* 2015-10-21T07:28:00Z */
        time_t now = 1445412480;

        assert(retry_after_parse("5", now) == 5000);
        assert(retry_after_parse(" 0 ", now) == 0);
        assert(retry_after_parse("120\r\n", now) == 120000);
        assert(retry_after_parse("Wed, 21 Oct 2015 07:28:10 GMT", now) == 10000);
        assert(retry_after_parse("Wed, 21 Oct 2015 07:27:00 GMT", now) == 0);
        assert(retry_after_parse("soon", now) == -EINVAL);
        assert(retry_after_parse("5s", now) == -EINVAL);
        assert(retry_after_parse("", now) == -EINVAL);
        assert(retry_after_parse(NULL, now) == -EINVAL);
        assert(retry_after_parse("99999999999", now) == -EINVAL);
}

static void test_backoff(void) {
        assert(backoff_ms(0, 200, 5000, 0) == 0);
        assert(backoff_ms(1, 200, 5000, 0) == 100);
        assert(backoff_ms(1, 200, 5000, UINT32_MAX) == 200);
        assert(backoff_ms(2, 200, 5000, UINT32_MAX) == 400);
        assert(backoff_ms(3, 200, 5000, 0) == 400);
        assert(backoff_ms(10, 200, 5000, UINT32_MAX) == 5000);
        assert(backoff_ms(60, 200, 5000, 0) == 2500);
        for (uint32_t r = 0; r < 1000; r++) {
                uint64_t d = backoff_ms(2, 200, 5000, r * 4294967u);
                assert(d >= 200 && d <= 400);
        }
}

static void test_error_text(void) {
        const char *body = "{\"errors\":[{\"code\":\"MANIFEST_UNKNOWN\",\"message\":\"manifest unknown\",\"detail\":{}},"
                           "{\"code\":\"DENIED\",\"message\":\"no\"}]}";
        char buf[128];

        assert(registry_error_text(body, strlen(body), buf, sizeof buf) == 0);
        assert(!strcmp(buf, "MANIFEST_UNKNOWN: manifest unknown; DENIED: no"));
        assert(registry_error_text("not json", 8, buf, sizeof buf) == -EINVAL && buf[0] == 0);
        assert(registry_error_text("{}", 2, buf, sizeof buf) == -EINVAL);
        assert(registry_error_text(NULL, 0, buf, sizeof buf) == -EINVAL);
        /* Truncation never overflows. */
        assert(registry_error_text(body, strlen(body), buf, 20) <= 0);
        assert(strlen(buf) < 20);
}

int main(void) {
        test_status();
        test_curl();
        test_retry_after();
        test_backoff();
        test_error_text();
        return 0;
}
