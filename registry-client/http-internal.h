/* SPDX-License-Identifier: Apache-2.0 */
/* Private to the HTTP engine: the libcurl callbacks (http-req.c) that
 * configure() in http.c installs on every transfer. Engine thread only. */
#pragma once

#include <curl/curl.h>
#include <stddef.h>

#define ERROR_BODY_MAX (16u << 10)

size_t http_on_write(char *p, size_t size, size_t nmemb, void *u);
size_t http_on_header(char *p, size_t size, size_t nmemb, void *u);
size_t http_on_read(char *buf, size_t size, size_t nmemb, void *u);
int http_on_seek(void *u, curl_off_t off, int origin);
