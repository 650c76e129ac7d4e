/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target: the NBD server as a client meets it, from the first
 * byte. Each input is what one client sends on a fresh connection
 * (handshake, then transmission); the server must answer or hang up, never
 * crash, never hang, and every connection must end once the client has
 * sent everything and closed its side. The exports are real: "ro" (and
 * the default "") read-only and "rw" with an overlay, over the image
 * $FUZZ_NBD_REF names (tests/fuzz/run.sh makes one with hocus-blk push).
 * Scratch files go under $TMPDIR.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "blockd/chunkfd.h"
#include "blockd/exports.h"
#include "blockd/nbd/server.h"
#include "blockd/sched.h"
#include "chunkstore/store.h"
#include "common/log.h"

static struct nbdsrv *srv;
static char sock_path[sizeof ((struct sockaddr_un *) 0)->sun_path];

static struct export *get_export(void *u, const char *name) {
        return exports_get(u, *name ? name : "ro");
}

static void for_each_export(void *u, void (*fn)(struct export *e, void *ctx), void *ctx) {
        exports_for_each(u, fn, ctx);
}

static void die(const char *what, int r) {
        fprintf(stderr, "fuzz-nbd: %s: %s\n", what, strerror(r < 0 ? -r : r));
        abort();
}

static void setup(void) {
        static struct source_options source;
        static char dir[4096], cache[4200], overlay[4200];
        const char *ref = getenv("FUZZ_NBD_REF"), *tmp = getenv("TMPDIR");
        struct chunkstore *store;
        struct chunkfd_cache *fds;
        struct sched *sched;
        struct exports *x;
        struct nbdsrv_config cfg = { .max_threads = 4, .use_sendfile = true };
        struct nbdsrv_exports nexp;
        char err[512];
        int r;

        if (!ref) {
                fprintf(stderr, "fuzz-nbd: set FUZZ_NBD_REF to an image (oci:DIR:TAG); tests/fuzz/run.sh does\n");
                exit(2);
        }
        log_set_level(LOG_LVL_ERR);
        signal(SIGPIPE, SIG_IGN);       /* as blockd: sendfile(2) and TLS writes to a closed peer */
        snprintf(dir, sizeof dir, "%s/fuzz-nbd.XXXXXX", tmp ? tmp : "/tmp");
        if (!mkdtemp(dir))
                die("mkdtemp", errno);
        snprintf(cache, sizeof cache, "%s/cache", dir);
        snprintf(overlay, sizeof overlay, "%s/rw.ovl", dir);
        snprintf(sock_path, sizeof sock_path, "%s/nbd.sock", dir);
        r = chunkstore_open(cache, 0, &store);
        if (r < 0)
                die("chunkstore_open", r);
        r = chunkfd_cache_new(store, 64, &fds);
        if (r < 0)
                die("chunkfd_cache_new", r);
        r = sched_new(store, &(struct sched_options) { .background = false }, &sched);
        if (r < 0)
                die("sched_new", r);
        r = exports_new(&(struct export_env) { .store = store, .fds = fds, .source = &source, .sched = sched }, &x);
        if (r < 0)
                die("exports_new", r);
        r = exports_attach(x, &(struct export_config) { .name = "ro", .ref = ref, .profile = "none" }, NULL, err,
                           sizeof err);
        if (r >= 0)
                r = exports_attach(x,
                                   &(struct export_config) { .name = "rw", .ref = ref, .overlay = overlay,
                                                             .profile = "none" },
                                   NULL, err, sizeof err);
        if (r < 0) {
                fprintf(stderr, "fuzz-nbd: cannot attach %s: %s\n", ref, err);
                exit(2);
        }
        nexp = (struct nbdsrv_exports) { .get = get_export, .for_each = for_each_export, .userdata = x };
        r = nbdsrv_new(&cfg, &nexp, &srv);
        if (r >= 0)
                r = nbdsrv_listen_unix(srv, sock_path);
        if (r >= 0)
                r = nbdsrv_start(srv);
        if (r < 0)
                die("starting the NBD server", r);
}

/* Send all of data, reading (and dropping) whatever the server says, until
 * it closes the connection. */
static void talk(const uint8_t *data, size_t size) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        uint8_t junk[65536];
        size_t sent = 0;
        int fd;

        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                die("socket", errno);
        memcpy(sa.sun_path, sock_path, strlen(sock_path) + 1);
        if (connect(fd, (struct sockaddr *) &sa, sizeof sa) < 0)
                die("connect", errno);
        if (size == 0)
                (void) shutdown(fd, SHUT_WR);
        for (;;) {
                struct pollfd p = { .fd = fd, .events = POLLIN | (sent < size ? POLLOUT : 0) };
                ssize_t n;

                if (poll(&p, 1, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        die("poll", errno);
                }
                if (p.revents & POLLIN) {
                        n = recv(fd, junk, sizeof junk, 0);
                        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
                                break;
                }
                if (sent < size && (p.revents & POLLOUT)) {
                        n = send(fd, data + sent, size - sent, MSG_NOSIGNAL);
                        if (n > 0) {
                                sent += (size_t) n;
                                if (sent == size)
                                        (void) shutdown(fd, SHUT_WR);
                        } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
                                /* The server hung up first: read what it said. */
                                sent = size;
                        }
                }
                if ((p.revents & (POLLHUP | POLLERR)) && !(p.revents & POLLIN))
                        break;
        }
        close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct nbdsrv_stats st;

        if (!srv)
                setup();
        talk(data, size);
        /* The connection ends on the server's side too before the next. */
        do {
                nbdsrv_get_stats(srv, &st);
                if (st.connections)
                        usleep(100);
        } while (st.connections);
        return 0;
}
