/* SPDX-License-Identifier: Apache-2.0 */
/* Writing the containers auth file (registry-client/auth-file.h): keys
 * normalised as skopeo does, the file created 0600 in a new 0700
 * directory, entries added beside other keys and read back by
 * credentials.c, removal of one and of all (credHelpers kept), refusal
 * when a helper owns the registry, and a file that is not JSON. */
#undef NDEBUG
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "registry-client/auth-file.h"
#include "registry-client/credentials.h"

static char dir[256], path[300];

static char *slurp(void) {
        char *text;
        size_t len;

        assert(read_file_all(AT_FDCWD, path, 1 << 20, &text, &len) == 0);
        return text;
}

static void check_creds(const char *registry, const char *user, const char *pass) {
        struct credentials c = { 0 };
        char *helper = NULL, *text = slurp();

        assert(auth_file_lookup(text, strlen(text), registry, "r", &c, &helper) == 0);
        assert(!strcmp(c.username, user) && !strcmp(c.password, pass));
        credentials_done(&c);
        free(text);
}

int main(void) {
        char key[256], err[512], buf[4096], cmd[300];
        struct stat st;
        char *text;
        static char big[3001];

        /* Keys. */
        assert(auth_file_key("registry.example:5000", key, sizeof key) == 0 && !strcmp(key, "registry.example:5000"));
        assert(auth_file_key("docker://r.example/ns/", key, sizeof key) == 0 && !strcmp(key, "r.example/ns"));
        assert(auth_file_key("https://r.example/v1/", key, sizeof key) == 0 && !strcmp(key, "r.example"));
        assert(auth_file_key("http://r.example", key, sizeof key) == 0 && !strcmp(key, "r.example"));
        assert(auth_file_key("", key, sizeof key) == -EINVAL);
        assert(auth_file_key("docker://", key, sizeof key) == -EINVAL);
        assert(auth_file_key("/x", key, sizeof key) == -EINVAL);
        assert(auth_file_key("r.example", key, 4) == -EINVAL);

        /* Where: explicit, $REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR, /run/containers/UID. */
        setenv("REGISTRY_AUTH_FILE", "/env.json", 1);
        setenv("XDG_RUNTIME_DIR", "/xdg", 1);
        assert(!strcmp(auth_file_write_path("/x.json", buf, sizeof buf), "/x.json"));
        assert(!strcmp(auth_file_write_path(NULL, buf, sizeof buf), "/env.json"));
        unsetenv("REGISTRY_AUTH_FILE");
        assert(!strcmp(auth_file_write_path(NULL, buf, sizeof buf), "/xdg/containers/auth.json"));
        unsetenv("XDG_RUNTIME_DIR");
        snprintf(cmd, sizeof cmd, "/run/containers/%u/auth.json", (unsigned) getuid());
        assert(!strcmp(auth_file_write_path(NULL, buf, sizeof buf), cmd));

        snprintf(dir, sizeof dir, "%s/hocus-test.authfile.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
        assert(mkdtemp(dir));
        snprintf(path, sizeof path, "%s/new/containers/auth.json", dir);

        /* A new file in a new directory: 0600, 0700. */
        assert(auth_file_store(path, "r.example", "alice", "pw:with:colons", err, sizeof err) == 0);
        assert(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
        snprintf(buf, sizeof buf, "%s/new/containers", dir);
        assert(stat(buf, &st) == 0 && (st.st_mode & 0777) == 0700);
        check_creds("r.example", "alice", "pw:with:colons");
        /* A long token beside it; other keys survive. */
        memset(big, 'T', sizeof big - 1);
        {
                static const char seed[] = "{\"credHelpers\":{\"h.example\":\"pass\"},\"auths\":{}}";
                assert(write_file_atomic(AT_FDCWD, path, seed, strlen(seed), 0600) == 0);
        }
        assert(auth_file_store(path, "r.example", "oauth2accesstoken", big, err, sizeof err) == 0);
        assert(auth_file_store(path, "s.example:5000", "bob", "x", err, sizeof err) == 0);
        check_creds("r.example", "oauth2accesstoken", big);
        check_creds("s.example:5000", "bob", "x");
        text = slurp();
        assert(strstr(text, "\"h.example\""));
        free(text);
        /* A helper owns h.example (and h.example/ns). */
        assert(auth_file_store(path, "h.example/ns", "a", "b", err, sizeof err) == -ENOTSUP);
        assert(strstr(err, "docker-credential-pass"));
        /* Remove one, then a missing one, then all. */
        assert(auth_file_remove(path, "r.example", err, sizeof err) == 0);
        text = slurp();
        assert(!strstr(text, "\"r.example\"") && strstr(text, "\"s.example:5000\""));
        free(text);
        assert(auth_file_remove(path, "r.example", err, sizeof err) == -ENOENT);
        assert(strstr(err, "has no entry for r.example"));
        assert(auth_file_remove(path, NULL, err, sizeof err) == 0);
        text = slurp();
        assert(!strstr(text, "s.example") && strstr(text, "\"h.example\""));
        free(text);
        /* Not JSON: refused, untouched. */
        assert(write_file_atomic(AT_FDCWD, path, "{nope", 5, 0600) == 0);
        assert(auth_file_store(path, "r.example", "a", "b", err, sizeof err) == -EBADMSG);
        assert(strstr(err, "is not a JSON object"));
        text = slurp();
        assert(!strcmp(text, "{nope"));
        free(text);
        snprintf(buf, sizeof buf, "%s/none.json", dir);
        assert(auth_file_remove(buf, "r.example", err, sizeof err) == -ENOENT);

        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        assert(system(cmd) == 0);
        return 0;
}
