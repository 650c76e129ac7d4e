/* SPDX-License-Identifier: Apache-2.0 */
/* Reference parsing: accepted forms and rejected ones with a reason. */
#undef NDEBUG
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "registry-client/ref.h"

static void ok(const char *s, int transport, const char *a, const char *b, const char *tag, const char *digest) {
        struct image_ref *r;
        char err[256] = "";

        if (image_ref_parse(s, &r, err, sizeof err) != 0) {
                fprintf(stderr, "rejected %s: %s\n", s, err);
                assert(0);
        }
        assert((int) r->transport == transport);
        if (transport == REF_OCI_LAYOUT)
                assert(!strcmp(r->layout_dir, a));
        else {
                assert(!strcmp(r->registry, a));
                assert(!strcmp(r->repository, b));
        }
        assert(tag ? (r->tag && !strcmp(r->tag, tag)) : !r->tag);
        assert(digest ? (r->digest && !strcmp(r->digest, digest)) : !r->digest);
        image_ref_free(r);
}

static void bad(const char *s, const char *want) {
        struct image_ref *r = NULL;
        char err[256] = "";

        assert(image_ref_parse(s, &r, err, sizeof err) == -EINVAL);
        assert(r == NULL);
        if (!strstr(err, want)) {
                fprintf(stderr, "%s: '%s' lacks '%s'\n", s, err, want);
                assert(0);
        }
}

#define D "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

int main(void) {
        ok("oci:/tmp/layout", REF_OCI_LAYOUT, "/tmp/layout", NULL, NULL, NULL);
        ok("oci:/tmp/layout:v1", REF_OCI_LAYOUT, "/tmp/layout", NULL, "v1", NULL);
        ok("oci:rel/dir:v1.2_x-y", REF_OCI_LAYOUT, "rel/dir", NULL, "v1.2_x-y", NULL);
        ok("oci:/tmp/lay:out/x:tag", REF_OCI_LAYOUT, "/tmp/lay:out/x", NULL, "tag", NULL);
        ok("oci:/tmp/layout@" D, REF_OCI_LAYOUT, "/tmp/layout", NULL, NULL, D);
        ok("docker://127.0.0.1:5000/ws", REF_DOCKER, "127.0.0.1:5000", "ws", "latest", NULL);
        ok("docker://registry.example/team/ws:v2", REF_DOCKER, "registry.example", "team/ws", "v2", NULL);
        ok("docker://localhost:5000/a/b-c__d.e@" D, REF_DOCKER, "localhost:5000", "a/b-c__d.e", NULL, D);

        bad("", "empty");
        bad("/tmp/disk.img", "is not a reference");
        bad("foo:bar", "is not a reference");
        bad("oci:", "missing directory");
        bad("oci::v1", "missing directory");
        bad("oci:/tmp/x:-bad", "invalid tag");
        bad("oci:/tmp/x@sha256:1234", "malformed digest");
        bad("oci:/tmp/x@md5:0123", "unsupported digest");
        bad("docker://", "want docker://");
        bad("docker://host", "want docker://");
        bad("docker://host/UPPER", "invalid repository");
        bad("docker://host/a//b", "invalid repository");
        bad("docker://host:99999/a", "invalid registry host");
        bad("docker://ho$t/a", "invalid registry host");
        bad("docker://host/a:v1@" D, "not both");
        bad("docker://host/a:", "invalid tag");
        printf("ok\n");
        return 0;
}
