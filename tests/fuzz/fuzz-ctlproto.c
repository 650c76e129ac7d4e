/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target: the control protocol from the bytes a client sends.
 * The input is cut into lines as the control socket does; each line goes
 * through the daemon's own dispatch (blockd/control.c: ctlproto parsing,
 * UTF-8 checks, the commands against an empty export table over a real
 * chunk store) and its answer through ctlproto_send to a socket, read
 * back, and it must be one line of UTF-8 that ctlproto_parse accepts. A
 * first line "GET ..." is answered as HTTP, as the socket does. The
 * client's side (ctlproto_answer_errno, ctlproto_get_string) reads each
 * line as an answer too.
 *
 * Requests that would reach outside the process are not run: an attach
 * (or update) runs only when its ref is missing or under a directory that
 * does not exist, so it fails at its checks or at opening the image.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <json-c/json.h>

#include "blockd/chunkfd.h"
#include "blockd/control.h"
#include "blockd/ctlproto/message.h"
#include "blockd/exports.h"
#include "blockd/metrics.h"
#include "chunkstore/store.h"
#include "common/log.h"
#include "common/sockio.h"
#include "common/utf8.h"
#include "common/util.h"
#include "registry-client/source.h"

#define SAFE_REF "oci:/nonexistent-hocus-fuzz/"
#define MAX_LINE (64u << 10)

static struct control *ctl;
static struct metrics_sources src;
static int sv[2] = { -1, -1 };
static char *reply_buf;

static char *no_uri(void *u, const char *name) {
        return NULL;
}

static const struct control_ops ops = { .export_uri = no_uri, .export_file = no_uri };

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
        static struct source_options source;
        static char dir[4096];
        const char *tmp = getenv("TMPDIR");
        struct control_config cfg = { .ops = &ops };
        struct chunkstore *store;
        struct chunkfd_cache *fds;
        struct exports *x;

        log_set_level(LOG_LVL_ERR);
        snprintf(dir, sizeof dir, "%s/fuzz-ctlproto.XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(dir) || chunkstore_open(dir, 0, &store) < 0 || chunkfd_cache_new(store, 64, &fds) < 0)
                abort();
        {
                struct export_env env = { .store = store, .fds = fds, .source = &source };
                if (exports_new(&env, &x) < 0)
                        abort();
        }
        src = (struct metrics_sources) { .exports = x, .fds = fds, .start_ns = now_ns() };
        cfg.src = src;
        if (control_new(&cfg, &ctl) < 0 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
                abort();
        /* Room for the largest answer in the socket: nothing reads it
         * while it is written. */
        {
                int size = 8 << 20;
                (void) setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
                (void) setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
        }
        reply_buf = malloc(16u << 20);
        if (!reply_buf)
                abort();
        return 0;
}

/* Everything written to sv[0] so far. */
static size_t drain(void) {
        size_t len = 0;

        for (;;) {
                ssize_t n = recv(sv[1], reply_buf + len, (16u << 20) - len, MSG_DONTWAIT);
                if (n <= 0)
                        return len;
                len += (size_t) n;
        }
}

/* Would this request touch anything outside the process? */
static bool safe(struct json_object *req) {
        const char *cmd = ctlproto_get_string(req, "cmd"), *ref = ctlproto_get_string(req, "ref");

        if (!cmd || strcmp(cmd, "attach") != 0)
                return true;
        return !ref || (strncmp(ref, SAFE_REF, strlen(SAFE_REF)) == 0 && !strstr(ref, ".."));
}

static void one_line(const char *line, size_t len) {
        struct json_object *req, *resp;
        size_t n;

        /* The client's reading of a line as an answer. */
        if (ctlproto_parse(line, len, &req) == 0) {
                (void) ctlproto_answer_errno(req);
                (void) ctlproto_get_string(req, "error");
                if (!safe(req)) {
                        json_object_put(req);
                        return;
                }
                json_object_put(req);
        }
        resp = control_dispatch(ctl, line, len);
        if (!resp || ctlproto_send(sv[0], resp, 0, -1) < 0)
                abort();
        json_object_put(resp);
        n = drain();
        /* One line of UTF-8 JSON, which the client can read. */
        if (n == 0 || reply_buf[n - 1] != '\n' || memchr(reply_buf, '\n', n) != reply_buf + n - 1 ||
            !utf8_valid(reply_buf, n, NULL) || ctlproto_parse(reply_buf, n - 1, &resp) < 0)
                abort();
        json_object_put(resp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const char *p = (const char *) data, *end = p + size;
        bool first = true;

        while (p < end) {
                const char *nl = memchr(p, '\n', (size_t) (end - p));
                size_t len;
                char *line;

                if (!nl)
                        break;          /* the socket waits for the rest */
                len = (size_t) (nl - p);
                if (len > MAX_LINE)
                        break;          /* "request line too long" */
                line = strndup(p, len);
                if (!line)
                        abort();
                if (first && len >= 4 && !memcmp(p, "GET ", 4)) {
                        metrics_http_answer(&src, sv[0], line, 0, -1);
                        drain();
                        free(line);
                        return 0;
                }
                first = false;
                if (len > 0 && p[len - 1] == '\r')
                        len--;
                if (len > 0)
                        one_line(p, len);
                free(line);
                p = nl + 1;
        }
        return 0;
}
