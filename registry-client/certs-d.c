/* SPDX-License-Identifier: Apache-2.0 */
/* Registry TLS settings: certs.d, SSL_CERT_*, --tls-verify (certs-d.h). */
#include "certs-d.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/err.h"
#include "common/util.h"

#define CERTS_FILES_MAX 64
#define CA_PEM_MAX (1u << 20)

void registry_tls_done(struct registry_tls *t) {
        free(t->ca_pem);
        free(t->client_cert);
        free(t->client_key);
        free(t->dir);
        *t = (struct registry_tls) { 0 };
}

static bool is_dir(const char *path) {
        struct stat st;
        return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The directory for host: --cert-dir, or ROOT/HOST under the first root
 * that has it. NULL in *ret when there is none. */
static int find_dir(const struct source_options *o, const char *host, char **ret) {
        const char *env = getenv("HOCUS_BLK_CERTS_D"), *home = getenv("HOME");
        _cleanup_free_ char *roots = NULL;
        char *save = NULL;

        *ret = NULL;
        if (o->cert_dir) {
                *ret = strdup(o->cert_dir);
                return *ret ? 0 : -ENOMEM;
        }
        if (env && *env)
                roots = strdup(env);
        else if (asprintf(&roots, "%s%s%s/etc/containers/certs.d:/etc/docker/certs.d",
                          geteuid() != 0 && home && *home ? home : "",
                          geteuid() != 0 && home && *home ? "/.config/containers/certs.d" : "",
                          geteuid() != 0 && home && *home ? ":" : "") < 0)
                roots = NULL;
        if (!roots)
                return -ENOMEM;
        for (char *root = strtok_r(roots, ":", &save); root; root = strtok_r(NULL, ":", &save)) {
                _cleanup_free_ char *d = NULL;

                if (asprintf(&d, "%s/%s", root, host) < 0)
                        return -ENOMEM;
                if (is_dir(d)) {
                        *ret = TAKE_PTR(d);
                        return 0;
                }
        }
        return 0;
}

static int by_name(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

static bool ends_with(const char *s, const char *suffix) {
        size_t l = strlen(s), n = strlen(suffix);
        return l > n && !strcmp(s + l - n, suffix);
}

/* Read dir's *.crt, *.cert and *.key into t. */
static int read_dir(struct registry_tls *t, const char *dir, char *err, size_t errlen) {
        char *names[CERTS_FILES_MAX];
        size_t n = 0, pem_len = 0;
        struct dirent *de;
        DIR *d;
        int r = 0;

        d = opendir(dir);
        if (!d)
                return err_set(err, errlen, -errno, "cannot read the certificate directory %s: %m", dir);
        while ((de = readdir(d)) && n < CERTS_FILES_MAX) {
                if (de->d_name[0] == '.' ||
                    !(ends_with(de->d_name, ".crt") || ends_with(de->d_name, ".cert") || ends_with(de->d_name, ".key")))
                        continue;
                if (!(names[n] = strdup(de->d_name))) {
                        r = -ENOMEM;
                        break;
                }
                n++;
        }
        closedir(d);
        qsort(names, n, sizeof names[0], by_name);
        for (size_t i = 0; i < n && r == 0; i++) {
                _cleanup_free_ char *path = NULL, *buf = NULL, *other = NULL;
                const char *name = names[i];
                size_t len, base = strlen(name) - (ends_with(name, ".cert") ? 5 : 4);

                if (asprintf(&path, "%s/%s", dir, name) < 0) {
                        r = -ENOMEM;
                        break;
                }
                if (ends_with(name, ".crt")) {
                        char *v;

                        r = read_file_all(AT_FDCWD, path, CA_PEM_MAX, &buf, &len);
                        if (r < 0) {
                                r = err_set(err, errlen, r, "cannot read the CA certificate %s: %m", path);
                                break;
                        }
                        if (pem_len + len + 2 > CA_PEM_MAX) {
                                r = err_set(err, errlen, -EFBIG, "the CA certificates in %s exceed %u bytes", dir,
                                            CA_PEM_MAX);
                                break;
                        }
                        v = realloc(t->ca_pem, pem_len + len + 2);
                        if (!v) {
                                r = -ENOMEM;
                                break;
                        }
                        t->ca_pem = v;
                        memcpy(t->ca_pem + pem_len, buf, len);
                        pem_len += len;
                        t->ca_pem[pem_len++] = '\n';
                        t->ca_pem[pem_len] = 0;
                        continue;
                }
                /* NAME.cert needs NAME.key and the other way round. */
                if (asprintf(&other, "%s/%.*s%s", dir, (int) base, name, ends_with(name, ".cert") ? ".key" : ".cert") < 0) {
                        r = -ENOMEM;
                        break;
                }
                if (access(other, R_OK) < 0) {
                        r = err_set(err, errlen, -ENOENT, "%s has no %s beside it (a client certificate needs both)",
                                    path, other);
                        break;
                }
                if (ends_with(name, ".cert") && !t->client_cert) {
                        t->client_cert = TAKE_PTR(path);
                        t->client_key = TAKE_PTR(other);
                }
        }
        for (size_t i = 0; i < n; i++)
                free(names[i]);
        return r;
}

int registry_tls_setup(const struct source_options *o, const char *host, bool insecure, struct registry_tls *t,
                       struct http_config *hc, char *err, size_t errlen) {
        const char *file = getenv("SSL_CERT_FILE"), *dir = getenv("SSL_CERT_DIR");
        int r;

        *t = (struct registry_tls) { 0 };
        hc->ca_file = o->ca_file ? o->ca_file : file && *file ? file : NULL;
        hc->ca_path = dir && *dir ? dir : NULL;
        hc->tls_no_verify = o->tls_no_verify || insecure;
        r = find_dir(o, host, &t->dir);
        if (r < 0)
                return r;
        if (t->dir) {
                r = read_dir(t, t->dir, err, errlen);
                if (r < 0) {
                        registry_tls_done(t);
                        return r;
                }
        }
        hc->ca_pem = t->ca_pem;
        hc->client_cert = t->client_cert;
        hc->client_key = t->client_key;
        return 0;
}
