/* SPDX-License-Identifier: Apache-2.0 */
/* blockd's state file (blockd/state.h): a round trip of every field, the
 * atomic replacement (no temp file left, the old table intact until the
 * rename), the lock between two daemons, and corrupt files refused with a
 * sentence that names the file and says what to do. */
#undef NDEBUG
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blockd/state.h"
#include "common/cleanup.h"
#include "common/util.h"

#define D1 "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define D2 "sha256:fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"

static char dir[256];

static unsigned files_in(const char *d) {
        DIR *dh = opendir(d);
        struct dirent *de;
        unsigned n = 0;

        assert(dh);
        while ((de = readdir(dh)))
                n += de->d_name[0] != '.';
        closedir(dh);
        return n;
}

static void test_round_trip(void) {
        struct state_export in[3] = {
                { .name = (char *) "ws", .ref = (char *) "docker://127.0.0.1:5000/ws:v1", .manifest = (char *) D1,
                  .overlay = (char *) "/var/lib/ws.ovl", .profile = (char *) "auto", .profile_blob = (char *) D2,
                  .added_by = STATE_BY_ATTACH },
                { .name = (char *) "ro", .ref = (char *) "oci:/srv/l:v1", .manifest = (char *) D2,
                  .added_by = STATE_BY_COMMAND_LINE },
                { .name = (char *) "c", .ref = (char *) "oci:/x \"quoted\"", .profile = (char *) "none",
                  .added_by = STATE_BY_CONFIG },
        };
        struct state_export *out = NULL;
        struct state *st = NULL;
        char err[512] = "";
        size_t n = 99;

        assert(state_open(dir, &st, err, sizeof err) == 0);
        /* No file yet: an empty table. */
        assert(state_load(st, &out, &n, err, sizeof err) == 0 && n == 0);
        assert(state_save(st, in, 3) == 0);
        assert(state_load(st, &out, &n, err, sizeof err) == 0);
        assert(n == 3);
        for (size_t i = 0; i < n; i++) {
                assert(!strcmp(out[i].name, in[i].name));
                assert(!strcmp(out[i].ref, in[i].ref));
#define SAME(f) assert((!out[i].f && !in[i].f) || (out[i].f && in[i].f && !strcmp(out[i].f, in[i].f)))
                SAME(manifest);
                SAME(overlay);
                SAME(profile);
                SAME(profile_blob);
                assert(out[i].added_by == in[i].added_by);
        }
        state_exports_free(out, n);
        /* Saving fewer replaces the table; detach is a save without it. */
        assert(state_save(st, in + 1, 1) == 0);
        assert(state_load(st, &out, &n, err, sizeof err) == 0 && n == 1 && !strcmp(out[0].name, "ro"));
        state_exports_free(out, n);
        /* Nothing but the lock and the table in the directory: no temp file. */
        assert(files_in(dir) == 2);
        state_free(st);
}

/* A second daemon cannot take the directory; it can once the first is gone. */
static void test_lock(void) {
        struct state *a = NULL, *b = NULL;
        char err[512] = "";

        assert(state_open(dir, &a, err, sizeof err) == 0);
        assert(state_open(dir, &b, err, sizeof err) == -EBUSY);
        assert(strstr(err, "in use by another blockd"));
        assert(strstr(err, "pid "));
        state_free(a);
        assert(state_open(dir, &b, err, sizeof err) == 0);
        state_free(b);
}

/* The file is replaced by rename: a writer killed before it (a temp file
 * left behind, nothing renamed) leaves the old table as it was. */
static void test_atomic(void) {
        struct state_export one = { .name = (char *) "keep", .ref = (char *) "oci:/k", .manifest = (char *) D1 };
        struct state_export *out = NULL;
        struct state *st = NULL;
        char path[512], err[512];
        size_t n;
        int fd;

        assert(state_open(dir, &st, err, sizeof err) == 0);
        assert(state_save(st, &one, 1) == 0);
        snprintf(path, sizeof path, "%s/%s.tmp-crashed", dir, STATE_FILE);
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        assert(fd >= 0);
        assert(write(fd, "{\"version\":1,\"exp", 17) == 17);
        close(fd);
        assert(state_load(st, &out, &n, err, sizeof err) == 0 && n == 1 && !strcmp(out[0].name, "keep"));
        state_exports_free(out, n);
        unlink(path);
        state_free(st);
}

static void expect_corrupt(const char *json, const char *why) {
        struct state_export *out = NULL;
        struct state *st = NULL;
        char path[512], err[512] = "";
        size_t n = 0;

        snprintf(path, sizeof path, "%s/%s", dir, STATE_FILE);
        assert(write_file_atomic(AT_FDCWD, path, json, strlen(json), 0600) == 0);
        assert(state_open(dir, &st, err, sizeof err) == 0);
        assert(state_load(st, &out, &n, err, sizeof err) == -EBADMSG);
        if (!strstr(err, why) || !strstr(err, path) || !strstr(err, "move it away")) {
                fprintf(stderr, "for %s: got '%s', wanted '%s'\n", json, err, why);
                abort();
        }
        assert(!out);
        state_free(st);
}

static void test_corrupt(void) {
        expect_corrupt("", "truncated");
        expect_corrupt("{\"version\":1,\"exports\":[{\"name\":\"a\"", "truncated");
        expect_corrupt("{\"version\":1,\"exports\":[]} x", "trailing bytes");
        expect_corrupt("[1,2]", "not a JSON object");
        expect_corrupt("{\"exports\":[]}", "no \"version\"");
        expect_corrupt("{\"version\":2,\"exports\":[]}", "version 2");
        expect_corrupt("{\"version\":1}", "no \"exports\" array");
        expect_corrupt("{\"version\":1,\"exports\":[{\"ref\":\"oci:/a\"}]}", "export 1 has no \"name\"");
        expect_corrupt("{\"version\":1,\"exports\":[{\"name\":\"a\",\"ref\":\"oci:/a\",\"manifest\":\"sha256:12\"}]}",
                       "\"manifest\" is not a sha256: digest");
        expect_corrupt("{\"version\":1,\"exports\":[{\"name\":\"a\",\"ref\":\"oci:/a\"},{\"name\":\"a\",\"ref\":\"oci:/b\"}]}",
                       "listed twice");
        expect_corrupt("{\"version\":1,\"exports\":[{\"name\":\"a\",\"ref\":\"oci:/a\",\"added_by\":\"magic\"}]}",
                       "unknown \"added_by\"");
        expect_corrupt("{\"version\":1,\"exports\":[{\"name\":\"a\",\"ref\":7}]}", "not a non-empty string");
}

int main(void) {
        char tmpl[] = "/tmp/hocus-test.state.XXXXXX";
        char cmd[512];

        assert(mkdtemp(tmpl));
        snprintf(dir, sizeof dir, "%s/state/dir", tmpl);        /* created on open */
        test_round_trip();
        test_lock();
        test_atomic();
        test_corrupt();
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpl);
        assert(system(cmd) == 0);
        return 0;
}
