/* SPDX-License-Identifier: Apache-2.0 */
/*
 * HTTP requests (http.h): building them, and the libcurl callbacks that
 * fill in their responses on the engine thread (http.c drives them).
 */
#include "http.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"
#include "errors.h"
#include "http-internal.h"

/* ---- requests ---------------------------------------------------------- */

struct http_req *http_req_new(const char *method, const char *url) {
        struct http_req *r = calloc(1, sizeof *r);

        if (!r)
                return NULL;
        r->method = method;
        r->url = strdup(url);
        r->body_fd = -EBADF;
        r->content_length = -1;
        /* A 100-continue round trip per upload buys nothing here. */
        r->headers = curl_slist_append(NULL, "Expect:");
        if (!r->url || !r->headers) {
                http_req_free(r);
                return NULL;
        }
        return r;
}

static void free_secret(char **s) {
        if (*s) {
                explicit_bzero(*s, strlen(*s));
                free(*s);
                *s = NULL;
        }
}

static void clear_response(struct http_req *r) {
        free(r->resp_body);
        free(r->content_type);
        free(r->location);
        free(r->www_authenticate);
        free(r->docker_digest);
        free(r->range_hdr);
        free(r->retry_after);
        free(r->oci_subject);
        r->resp_body = r->content_type = r->location = r->www_authenticate = NULL;
        r->docker_digest = r->range_hdr = r->retry_after = r->oci_subject = NULL;
        r->resp_len = 0;
        r->content_length = -1;
}

void http_req_reset(struct http_req *r) {
        clear_response(r);
        r->r = 0;
        r->curl_code = 0;
        r->status = 0;
        r->dst_got = 0;
        r->range_ignored = false;
        r->dst_full = false;
        r->skip = 0;
        r->upload_pos = 0;
        r->internal_err = 0;
        r->cancelled = false;
        r->errbuf[0] = 0;
        r->local_port = 0;
        r->http_version = 0;
}

void http_req_free(struct http_req *r) {
        if (!r)
                return;
        clear_response(r);
        if (r->easy)
                curl_easy_cleanup(r->easy);
        curl_slist_free_all(r->headers);
        free_secret(&r->bearer);
        free_secret(&r->basic_user);
        free_secret(&r->basic_pass);
        free_secret(&r->body_owned);
        free(r->url);
        free(r);
}

int http_req_header(struct http_req *r, const char *line) {
        struct curl_slist *l = curl_slist_append(r->headers, line);

        if (!l)
                return -ENOMEM;
        r->headers = l;
        return 0;
}

int http_req_set_auth(struct http_req *r, const char *bearer, const char *user, const char *pass) {
        free_secret(&r->bearer);
        free_secret(&r->basic_user);
        free_secret(&r->basic_pass);
        if (bearer && !(r->bearer = strdup(bearer)))
                return -ENOMEM;
        if (user && !(r->basic_user = strdup(user)))
                return -ENOMEM;
        if (pass && !(r->basic_pass = strdup(pass)))
                return -ENOMEM;
        return 0;
}

/* ---- libcurl callbacks (engine thread) ---------------------------------- */

static int append(char **buf, size_t *len, const char *p, size_t n) {
        char *b = realloc(*buf, *len + n + 1);

        if (!b)
                return -ENOMEM;
        memcpy(b + *len, p, n);
        *len += n;
        b[*len] = 0;
        *buf = b;
        return 0;
}

size_t http_on_write(char *p, size_t size, size_t nmemb, void *u) {
        struct http_req *r = u;
        size_t len = size * nmemb;
        long status = 0;

        curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
        if (status < 200 || status >= 300) {
                /* Error (or redirect) bodies: keep the start for messages. */
                size_t keep = r->resp_len < ERROR_BODY_MAX ? MIN(len, ERROR_BODY_MAX - r->resp_len) : 0;
                if (keep && append(&r->resp_body, &r->resp_len, p, keep) < 0)
                        return 0;
                return len;
        }
        if (r->dst) {
                size_t in = len, copy;

                if (r->internal_err)
                        return 0;
                if (status != 206 && !r->range_ignored) {
                        /* The server ignored Range: skip to our offset. */
                        r->range_ignored = true;
                        r->skip = r->range_off;
                }
                if (r->skip) {
                        size_t k = (size_t) MIN((uint64_t) in, r->skip);
                        r->skip -= k;
                        p += k;
                        in -= k;
                }
                copy = MIN(in, r->dst_len - r->dst_got);
                memcpy((char *) r->dst + r->dst_got, p, copy);
                r->dst_got += copy;
                if (copy < in) {
                        if (status == 206) {
                                r->internal_err = -EPROTO; /* more than the range we asked for */
                                return 0;
                        }
                        r->dst_full = true; /* have what we need of a 200: stop */
                        return 0;
                }
                if (status != 206 && r->dst_got == r->dst_len) {
                        r->dst_full = true;
                        return 0;
                }
                return len;
        }
        if (r->body_max == 0)
                return len; /* not wanted */
        if (r->resp_len + len > r->body_max) {
                r->internal_err = -EFBIG;
                return 0;
        }
        if (append(&r->resp_body, &r->resp_len, p, len) < 0) {
                r->internal_err = -ENOMEM;
                return 0;
        }
        return len;
}

static void set_header(char **slot, const char *v, size_t n, bool join) {
        char *s;

        if (join && *slot) {
                if (asprintf(&s, "%s, %.*s", *slot, (int) n, v) < 0)
                        return;
                free(*slot);
                *slot = s;
                return;
        }
        s = strndup(v, n);
        if (s) {
                free(*slot);
                *slot = s;
        }
}

size_t http_on_header(char *p, size_t size, size_t nmemb, void *u) {
        struct http_req *r = u;
        size_t len = size * nmemb, nlen;
        const char *colon, *v;
        size_t vlen;

        if (len >= 5 && !strncmp(p, "HTTP/", 5)) {
                /* A new response (redirect hop, 100 Continue): forget the
                 * previous response's headers. */
                clear_response(r);
                return len;
        }
        colon = memchr(p, ':', len);
        if (!colon)
                return len;
        nlen = (size_t) (colon - p);
        v = colon + 1;
        vlen = len - nlen - 1;
        while (vlen && (*v == ' ' || *v == '\t')) {
                v++;
                vlen--;
        }
        while (vlen && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n' || v[vlen - 1] == ' '))
                vlen--;
#define IS(name) (nlen == strlen(name) && !strncasecmp(p, name, nlen))
        if (IS("Content-Type"))
                set_header(&r->content_type, v, vlen, false);
        else if (IS("Location"))
                set_header(&r->location, v, vlen, false);
        else if (IS("WWW-Authenticate"))
                set_header(&r->www_authenticate, v, vlen, true);
        else if (IS("Docker-Content-Digest"))
                set_header(&r->docker_digest, v, vlen, false);
        else if (IS("Range"))
                set_header(&r->range_hdr, v, vlen, false);
        else if (IS("Retry-After"))
                set_header(&r->retry_after, v, vlen, false);
        else if (IS("OCI-Subject"))
                set_header(&r->oci_subject, v, vlen, false);
        else if (IS("Content-Length")) {
                char tmp[32];
                if (vlen < sizeof tmp) {
                        memcpy(tmp, v, vlen);
                        tmp[vlen] = 0;
                        r->content_length = strtoll(tmp, NULL, 10);
                }
        } else if (IS("Content-Range") && r->dst) {
                /* "bytes START-END/TOTAL": START must be our offset. */
                char tmp[96];
                unsigned long long start;
                if (vlen < sizeof tmp) {
                        memcpy(tmp, v, vlen);
                        tmp[vlen] = 0;
                        if (sscanf(tmp, "bytes %llu-", &start) != 1 || start != r->range_off)
                                r->internal_err = -EPROTO;
                }
        }
#undef IS
        return len;
}

size_t http_on_read(char *buf, size_t size, size_t nmemb, void *u) {
        struct http_req *r = u;
        size_t want = (size_t) MIN((uint64_t) (size * nmemb), r->body_len - r->upload_pos);
        ssize_t n;

        if (want == 0)
                return 0;
        if (r->body_buf) {
                memcpy(buf, (const char *) r->body_buf + r->upload_pos, want);
                n = (ssize_t) want;
        } else {
                n = pread_full(r->body_fd, buf, want, r->body_off + r->upload_pos);
                if (n <= 0) {
                        r->internal_err = n < 0 ? (int) n : -EIO;
                        return CURL_READFUNC_ABORT;
                }
        }
        r->upload_pos += (uint64_t) n;
        return (size_t) n;
}

int http_on_seek(void *u, curl_off_t off, int origin) {
        struct http_req *r = u;

        if (origin != SEEK_SET || off < 0 || (uint64_t) off > r->body_len)
                return CURL_SEEKFUNC_CANTSEEK;
        r->upload_pos = (uint64_t) off;
        return CURL_SEEKFUNC_OK;
}

