/* SPDX-License-Identifier: Apache-2.0 */
#include "tls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#include "common/err.h"

struct nbdsrv_tls {
        SSL_CTX *ctx;
};

const char *nbdsrv_tls_error(char *buf, size_t len) {
        unsigned long e = ERR_get_error();

        if (!e)
                snprintf(buf, len, "unknown TLS error");
        else
                ERR_error_string_n(e, buf, len);
        ERR_clear_error();
        return buf;
}

int nbdsrv_tls_new(const char *cert, const char *key, const char *ca, struct nbdsrv_tls **ret, char *err,
                   size_t errlen) {
        struct nbdsrv_tls *t;
        char why[256];
        int r;

        t = calloc(1, sizeof *t);
        if (!t)
                return -ENOMEM;
        t->ctx = SSL_CTX_new(TLS_server_method());
        if (!t->ctx) {
                r = err_set(err, errlen, -ENOMEM, "cannot create a TLS context: %s", nbdsrv_tls_error(why, sizeof why));
                goto fail;
        }
        SSL_CTX_set_min_proto_version(t->ctx, TLS1_2_VERSION);
        SSL_CTX_set_options(t->ctx, SSL_OP_NO_RENEGOTIATION);
        SSL_CTX_set_mode(t->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
        if (SSL_CTX_use_certificate_chain_file(t->ctx, cert) != 1) {
                r = err_set(err, errlen, -EINVAL, "cannot load TLS certificate '%s': %s", cert,
                            nbdsrv_tls_error(why, sizeof why));
                goto fail;
        }
        if (SSL_CTX_use_PrivateKey_file(t->ctx, key, SSL_FILETYPE_PEM) != 1) {
                r = err_set(err, errlen, -EINVAL, "cannot load TLS key '%s': %s", key, nbdsrv_tls_error(why, sizeof why));
                goto fail;
        }
        if (SSL_CTX_check_private_key(t->ctx) != 1) {
                r = err_set(err, errlen, -EINVAL, "TLS key '%s' does not match certificate '%s'", key, cert);
                goto fail;
        }
        if (ca) {
                STACK_OF(X509_NAME) *names;

                if (SSL_CTX_load_verify_locations(t->ctx, ca, NULL) != 1) {
                        r = err_set(err, errlen, -EINVAL, "cannot load TLS CA '%s': %s", ca,
                                    nbdsrv_tls_error(why, sizeof why));
                        goto fail;
                }
                names = SSL_load_client_CA_file(ca);
                if (names)
                        SSL_CTX_set_client_CA_list(t->ctx, names);
                SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
        }
        *ret = t;
        return 0;
fail:
        nbdsrv_tls_free(t);
        return r;
}

void nbdsrv_tls_free(struct nbdsrv_tls *t) {
        if (!t)
                return;
        SSL_CTX_free(t->ctx);
        free(t);
}

int nbdsrv_tls_accept(struct nbdsrv_tls *t, int fd, SSL **ret, char *err, size_t errlen) {
        char why[256];
        SSL *ssl;
        int r;

        ERR_clear_error();
        ssl = SSL_new(t->ctx);
        if (!ssl)
                return err_set(err, errlen, -ENOMEM, "cannot create a TLS session");
        if (SSL_set_fd(ssl, fd) != 1) {
                SSL_free(ssl);
                return err_set(err, errlen, -EIO, "cannot attach the TLS session");
        }
        r = SSL_accept(ssl);
        if (r != 1) {
                int e = SSL_get_error(ssl, r);

                if (e == SSL_ERROR_SYSCALL && errno)
                        err_set(err, errlen, -EIO, "TLS handshake failed: %s", strerror(errno));
                else if (e == SSL_ERROR_SYSCALL || e == SSL_ERROR_ZERO_RETURN)
                        err_set(err, errlen, -EIO, "TLS handshake failed: the client closed the connection");
                else
                        err_set(err, errlen, -EIO, "TLS handshake failed: %s", nbdsrv_tls_error(why, sizeof why));
                SSL_free(ssl);
                return -EPROTO;
        }
        *ret = ssl;
        return 0;
}
