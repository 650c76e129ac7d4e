/* SPDX-License-Identifier: Apache-2.0 */
/* credentials.c: auth.json / config.json parsing and the lookup order. */
#undef NDEBUG
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "registry-client/credentials.h"

static int lookup(const char *text, const char *reg, const char *repo, struct credentials *c, char **helper) {
        memset(c, 0, sizeof *c);
        *helper = NULL;
        return auth_file_lookup(text, strlen(text), reg, repo, c, helper);
}

static void test_auth_file(void) {
        struct credentials c;
        char *h;
        /* alice:pw, bob:pw2, carol:p:w (a ':' in the password) */
        const char *f = "{\"auths\":{"
                        "\"reg.example\":{\"auth\":\"YWxpY2U6cHc=\"},"
                        "\"reg.example/team\":{\"auth\":\"Ym9iOnB3Mg==\"},"
                        "\"https://legacy.example/v1/\":{\"auth\":\"Y2Fyb2w6cDp3\"},"
                        "\"tok.example\":{\"identitytoken\":\"refresh-me\"},"
                        "\"empty.example\":{},"
                        "\"reg.example:5000\":{\"username\":\"u\",\"password\":\"p\"}"
                        "}}";

        assert(lookup(f, "reg.example", "other/app", &c, &h) == 0);
        assert(!strcmp(c.username, "alice") && !strcmp(c.password, "pw"));
        credentials_done(&c);
        /* The most specific namespace wins, on path boundaries only. */
        assert(lookup(f, "reg.example", "team/app", &c, &h) == 0 && !strcmp(c.username, "bob"));
        credentials_done(&c);
        assert(lookup(f, "reg.example", "teamx/app", &c, &h) == 0 && !strcmp(c.username, "alice"));
        credentials_done(&c);
        assert(lookup(f, "legacy.example", "x", &c, &h) == 0 && !strcmp(c.username, "carol") &&
               !strcmp(c.password, "p:w"));
        credentials_done(&c);
        assert(lookup(f, "tok.example", "x", &c, &h) == 0 && !c.username && !strcmp(c.identity_token, "refresh-me"));
        credentials_done(&c);
        assert(lookup(f, "reg.example:5000", "x", &c, &h) == 0 && !strcmp(c.username, "u") && !strcmp(c.password, "p"));
        credentials_done(&c);
        assert(lookup(f, "empty.example", "x", &c, &h) == -ENOENT);
        assert(lookup(f, "nowhere.example", "x", &c, &h) == -ENOENT);

        /* credHelpers wins for its host; credsStore is the default. */
        const char *g = "{\"auths\":{\"a.example\":{\"auth\":\"YWxpY2U6cHc=\"}},"
                        "\"credHelpers\":{\"a.example\":\"pass\"},\"credsStore\":\"desktop\"}";
        assert(lookup(g, "a.example", "x", &c, &h) == 1 && !strcmp(h, "pass"));
        free(h);
        assert(lookup(g, "b.example", "x", &c, &h) == 1 && !strcmp(h, "desktop"));
        free(h);

        /* Malformed. */
        assert(lookup("{not json", "a", "b", &c, &h) == -EBADMSG);
        assert(lookup("{\"auths\":{\"a\":{\"auth\":\"!!!!\"}}}", "a", "b", &c, &h) == -EBADMSG);
        assert(lookup("{\"auths\":{\"a\":{\"auth\":\"bm9jb2xvbg==\"}}}", "a", "b", &c, &h) == -EBADMSG); /* "nocolon" */
        assert(lookup("[]", "a", "b", &c, &h) == -EBADMSG);
}

static void test_pair(void) {
        struct credentials c = { 0 };

        assert(credentials_from_pair("user:pa:ss", &c) == 0 && !strcmp(c.username, "user") && !strcmp(c.password, "pa:ss"));
        credentials_done(&c);
        assert(credentials_from_pair(":x", &c) == -EINVAL);
        assert(credentials_from_pair("x", &c) == -EINVAL);
}

/* The lookup order over real files. */
static void test_order(void) {
        char dir[] = "/tmp/hocus-creds-XXXXXX", path[512];
        struct source_options o = { 0 };
        struct credentials c;
        FILE *f;

        assert(mkdtemp(dir));
        setenv("HOME", dir, 1);
        unsetenv("REGISTRY_AUTH_FILE");
        unsetenv("DOCKER_CONFIG");
        unsetenv("XDG_CONFIG_HOME");
        setenv("XDG_RUNTIME_DIR", dir, 1);
        assert(credentials_find(&o, "r.example", "x", &c) == -ENOENT);

        snprintf(path, sizeof path, "%s/.docker", dir);
        assert(mkdir(path, 0700) == 0);
        snprintf(path, sizeof path, "%s/.docker/config.json", dir);
        assert((f = fopen(path, "w")));
        fputs("{\"auths\":{\"r.example\":{\"auth\":\"ZG9ja2VyOmQ=\"}}}", f); /* docker:d */
        fclose(f);
        assert(credentials_find(&o, "r.example", "x", &c) == 0 && !strcmp(c.username, "docker"));
        assert(strstr(c.from, ".docker/config.json"));
        credentials_done(&c);

        snprintf(path, sizeof path, "%s/containers", dir);
        assert(mkdir(path, 0700) == 0);
        snprintf(path, sizeof path, "%s/containers/auth.json", dir);
        assert((f = fopen(path, "w")));
        fputs("{\"auths\":{\"r.example\":{\"auth\":\"cG9kbWFuOnA=\"}}}", f); /* podman:p */
        fclose(f);
        assert(credentials_find(&o, "r.example", "x", &c) == 0 && !strcmp(c.username, "podman"));
        credentials_done(&c);
        /* ... but another host falls through to the docker file. */
        assert(credentials_find(&o, "other.example", "x", &c) == -ENOENT);

        /* An explicit file is the only one read. */
        snprintf(path, sizeof path, "%s/explicit.json", dir);
        assert((f = fopen(path, "w")));
        fputs("{\"auths\":{}}", f);
        fclose(f);
        o.auth_file = path;
        assert(credentials_find(&o, "r.example", "x", &c) == -ENOENT);
        o.auth_file = NULL;
        setenv("REGISTRY_AUTH_FILE", path, 1);
        assert(credentials_find(&o, "r.example", "x", &c) == -ENOENT);
        unsetenv("REGISTRY_AUTH_FILE");

        /* --creds wins over everything. */
        o.creds = "cli:pw";
        assert(credentials_find(&o, "r.example", "x", &c) == 0 && !strcmp(c.username, "cli") && !strcmp(c.from, "--creds"));
        credentials_done(&c);

        /* A missing helper is -ENOPKG (named in the error), not a crash. */
        assert(credential_helper_get("hocus-no-such-helper", "r.example", &c) == -ENOPKG);
        assert(credential_helper_get("../evil", "r.example", &c) == -EINVAL);

        snprintf(path, sizeof path, "rm -rf '%s'", dir);
        assert(system(path) == 0);
}

int main(void) {
        test_auth_file();
        test_pair();
        test_order();
        return 0;
}
