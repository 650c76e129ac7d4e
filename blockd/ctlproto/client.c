/* SPDX-License-Identifier: Apache-2.0 */
#include "client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/err.h"
#include "common/sockio.h"
#include "common/util.h"
#include "message.h"

#define MAX_RESPONSE (16u << 20)

const char *control_default_path(char *buf, size_t len) {
        const char *e = getenv("HOCUS_BLK_CONTROL");

        if (e && *e) {
                snprintf(buf, len, "%s", e);
                return buf;
        }
        if (geteuid() == 0) {
                snprintf(buf, len, "/run/hocus-blk/control.sock");
                return buf;
        }
        e = getenv("XDG_RUNTIME_DIR");
        if (e && *e) {
                snprintf(buf, len, "%s/hocus-blk/control.sock", e);
                return buf;
        }
        return NULL;
}

int control_call(const char *path, struct json_object *req, struct json_object **ret, char *err, size_t errlen) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *buf = NULL;
        size_t len = 0, cap = 0;
        struct json_object *resp;
        char *nl;
        int r, send_r;

        if (strlen(path) >= sizeof sa.sun_path)
                return err_set(err, errlen, -ENAMETOOLONG, "control socket path is too long");
        strcpy(sa.sun_path, path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return err_set(err, errlen, -errno, "socket: %m");
        if (connect(fd, (struct sockaddr *) &sa, sizeof sa) < 0) {
                r = -errno;
                return err_set(err, errlen, r, "cannot reach blockd at %s: %s%s", path, strerror(-r),
                               r == -ENOENT || r == -ECONNREFUSED ? " (is blockd running with --control?)" : "");
        }
        /* A failed send (blockd closed the connection: it may have said
         * why first, e.g. that it has too many clients) still reads what
         * blockd sent. Never SIGPIPE. */
        send_r = ctlproto_send(fd, req, DEADLINE_NEVER, -1);
        for (;;) {
                ssize_t n;

                if (len + 4096 > cap) {
                        char *p;
                        cap = cap ? cap * 2 : 65536;
                        if (cap > MAX_RESPONSE)
                                return err_set(err, errlen, -EMSGSIZE, "response from blockd is too large");
                        p = realloc(buf, cap);
                        if (!p)
                                return -ENOMEM;
                        buf = p;
                }
                n = read(fd, buf + len, cap - len - 1);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (send_r < 0 || errno == ECONNRESET)
                                break;
                        return err_set(err, errlen, -errno, "cannot read from blockd: %m");
                }
                if (n == 0)
                        break;
                len += (size_t) n;
                buf[len] = 0;
                if (memchr(buf, '\n', len))
                        break;
        }
        nl = len ? memchr(buf, '\n', len) : NULL;
        if (!nl && send_r < 0)
                return err_set(err, errlen, send_r, "blockd at %s closed the connection before taking the request (%s)",
                               path, strerror(-send_r));
        if (!nl)
                return err_set(err, errlen, -EPROTO, "blockd at %s closed the connection without answering", path);
        if (ctlproto_parse(buf, (size_t) (nl - buf), &resp) < 0)
                return err_set(err, errlen, -EPROTO, "blockd sent a malformed response");
        *ret = resp;
        return 0;
}
