/* SPDX-License-Identifier: Apache-2.0 */
#include "errors.h"

#include <curl/curl.h>
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int http_status_to_errno(long status) {
        if (status >= 100 && status < 400)
                return 0;
        switch (status) {
        case 400:
                return -EINVAL;
        case 401:
        case 403:
                return -EACCES;
        case 404:
                return -ENOENT;
        case 405:
        case 501:
        case 505:
                return -EOPNOTSUPP;
        case 408:
                return -ETIMEDOUT;
        case 413:
                return -EFBIG;
        case 416:
                return -ERANGE;
        case 429:
                return -EAGAIN;
        default:
                return status >= 500 && status < 600 ? -EAGAIN : -EPROTO;
        }
}

bool http_status_transient(long status) {
        if (status == 408 || status == 429)
                return true;
        return status >= 500 && status < 600 && status != 501 && status != 505;
}

int curl_code_to_errno(int code) {
        switch ((CURLcode) code) {
        case CURLE_OK:
                return 0;
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_RESOLVE_PROXY:
                return -EHOSTUNREACH;
        case CURLE_COULDNT_CONNECT:
                return -ECONNREFUSED;
        case CURLE_OPERATION_TIMEDOUT:
                return -ETIMEDOUT;
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_SSL_CACERT_BADFILE:
        case CURLE_SSL_ISSUER_ERROR:
                return -EKEYREJECTED;
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_SSL_CERTPROBLEM:
        case CURLE_SSL_CIPHER:
        case CURLE_USE_SSL_FAILED:
                return -EPROTO;
        case CURLE_SEND_ERROR:
        case CURLE_RECV_ERROR:
        case CURLE_GOT_NOTHING:
        case CURLE_HTTP2:
        case CURLE_HTTP2_STREAM:
        case CURLE_HTTP3:
                return -ECONNRESET;
        case CURLE_PARTIAL_FILE:
                return -EPIPE;          /* the reply was cut short */
        case CURLE_WEIRD_SERVER_REPLY:
        case CURLE_UNSUPPORTED_PROTOCOL:
        case CURLE_TOO_MANY_REDIRECTS:
        case CURLE_BAD_CONTENT_ENCODING:
                return -EPROTO;
        case CURLE_URL_MALFORMAT:
                return -EINVAL;
        case CURLE_OUT_OF_MEMORY:
                return -ENOMEM;
        case CURLE_ABORTED_BY_CALLBACK:
                return -ECANCELED;
        case CURLE_READ_ERROR:
        case CURLE_WRITE_ERROR:
        default:
                return -EIO;
        }
}

bool curl_code_transient(int code) {
        switch ((CURLcode) code) {
        case CURLE_COULDNT_CONNECT:
        case CURLE_OPERATION_TIMEDOUT:
        case CURLE_SEND_ERROR:
        case CURLE_RECV_ERROR:
        case CURLE_GOT_NOTHING:
        case CURLE_PARTIAL_FILE:
        case CURLE_HTTP2:
        case CURLE_HTTP2_STREAM:
                return true;
        default:
                return false;
        }
}

int64_t retry_after_parse(const char *value, time_t now) {
        struct tm tm;
        const char *end;
        time_t when;

        if (!value)
                return -EINVAL;
        while (*value == ' ' || *value == '\t')
                value++;
        if (*value >= '0' && *value <= '9') {
                char *e;
                unsigned long long s = strtoull(value, &e, 10);

                while (*e == ' ' || *e == '\t' || *e == '\r' || *e == '\n')
                        e++;
                if (*e || s > 86400ULL * 365)
                        return -EINVAL;
                return (int64_t) s * 1000;
        }
        memset(&tm, 0, sizeof tm);
        end = strptime(value, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        if (!end)
                return -EINVAL;
        while (*end == ' ' || *end == '\r' || *end == '\n')
                end++;
        if (*end)
                return -EINVAL;
        when = timegm(&tm);
        if (when == (time_t) -1)
                return -EINVAL;
        return when <= now ? 0 : (int64_t) (when - now) * 1000;
}

uint64_t backoff_ms(unsigned attempt, uint64_t base_ms, uint64_t cap_ms, uint32_t rnd) {
        uint64_t d = base_ms;

        if (attempt == 0)
                return 0;
        for (unsigned i = 1; i < attempt && d < cap_ms; i++)
                d *= 2;
        if (d > cap_ms)
                d = cap_ms;
        /* Half fixed, half random: never zero, never a thundering herd. */
        return d / 2 + (d - d / 2) * (uint64_t) rnd / UINT32_MAX;
}

int registry_error_text(const char *body, size_t len, char *buf, size_t buflen) {
        struct json_tokener *tok;
        struct json_object *root, *errors;
        size_t used = 0;
        int r = -EINVAL;

        if (buflen)
                buf[0] = 0;
        if (!body || !len)
                return -EINVAL;
        tok = json_tokener_new();
        if (!tok)
                return -ENOMEM;
        root = json_tokener_parse_ex(tok, body, (int) len);
        json_tokener_free(tok);
        if (!root || !json_object_object_get_ex(root, "errors", &errors) ||
            !json_object_is_type(errors, json_type_array))
                goto out;
        for (size_t i = 0; i < json_object_array_length(errors) && i < 4; i++) {
                struct json_object *e = json_object_array_get_idx(errors, i), *code, *msg;
                const char *c = json_object_object_get_ex(e, "code", &code) ? json_object_get_string(code) : NULL;
                const char *m = json_object_object_get_ex(e, "message", &msg) ? json_object_get_string(msg) : NULL;
                int n;

                if (!c && !m)
                        continue;
                n = snprintf(buf + used, buflen - used, "%s%s%s%s", used ? "; " : "", c ? c : "", c && m ? ": " : "",
                             m ? m : "");
                if (n < 0 || (size_t) n >= buflen - used)
                        break;
                used += (size_t) n;
                r = 0;
        }
out:
        json_object_put(root);
        return r;
}
