/* SPDX-License-Identifier: Apache-2.0 */
#include "tls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#include "common/err.h"
#include "tls-psk.h"

struct nbdsrv_tls {
        SSL_CTX *ctx;
        struct nbdsrv_psk *psk;
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

/* TLS 1.3 external PSK lookup: a session carrying the identity's key, for
 * TLS_AES_128_GCM_SHA256 (SHA-256 is the hash GnuTLS binds external PSKs
 * with). Unknown identity: no session, and the handshake fails for want of
 * a certificate. */
static const char psk_unknown_identity[] = "the client's PSK identity is not in the --tls-psk file";

static int psk_find_session(SSL *ssl, const unsigned char *identity, size_t identity_len, SSL_SESSION **sess) {
        static const unsigned char aes128gcm_sha256[] = { 0x13, 0x01 };
        struct nbdsrv_tls *t = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
        const unsigned char *key;
        const SSL_CIPHER *cipher;
        SSL_SESSION *s;
        size_t len;

        *sess = NULL;
        key = nbdsrv_psk_find(t->psk, identity, identity_len, &len);
        if (!key) {
                SSL_set_app_data(ssl, (void *) &psk_unknown_identity);  /* for the failure's message */
                return 1;
        }
        cipher = SSL_CIPHER_find(ssl, aes128gcm_sha256);
        s = SSL_SESSION_new();
        if (!cipher || !s || SSL_SESSION_set1_master_key(s, key, len) != 1 || SSL_SESSION_set_cipher(s, cipher) != 1 ||
            SSL_SESSION_set_protocol_version(s, TLS1_3_VERSION) != 1) {
                SSL_SESSION_free(s);
                return 0;
        }
        *sess = s;
        return 1;
}

/* --tls-psk: keys instead of a certificate; TLS 1.3 only (OpenSSL's
 * TLS 1.2 PSK suites are outside its default security level). */
static int setup_psk(struct nbdsrv_tls *t, const char *psk_file, char *err, size_t errlen) {
        int r;

        r = nbdsrv_psk_load(psk_file, &t->psk, err, errlen);
        if (r < 0)
                return r;
        SSL_CTX_set_min_proto_version(t->ctx, TLS1_3_VERSION);
        /* A PSK is bound to one hash: offer only the SHA-256 suites, or a
         * client preferring AES-256 (SHA-384) would lose its PSK. */
        if (SSL_CTX_set_ciphersuites(t->ctx, "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256") != 1)
                return err_set(err, errlen, -EINVAL, "cannot set the TLS 1.3 cipher suites for PSK");
        SSL_CTX_set_app_data(t->ctx, t);
        SSL_CTX_set_psk_find_session_callback(t->ctx, psk_find_session);
        return 0;
}

int nbdsrv_tls_new(const char *cert, const char *key, const char *ca, const char *psk_file, struct nbdsrv_tls **ret,
                   char *err, size_t errlen) {
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
        if (psk_file) {
                r = setup_psk(t, psk_file, err, errlen);
                if (r < 0)
                        goto fail;
                *ret = t;
                return 0;
        }
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
        nbdsrv_psk_free(t->psk);
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
                else if (SSL_get_app_data(ssl) == psk_unknown_identity)
                        err_set(err, errlen, -EIO, "TLS handshake failed: %s", psk_unknown_identity);
                else if (t->psk && ERR_GET_REASON(ERR_peek_error()) == SSL_R_BINDER_DOES_NOT_VERIFY)
                        err_set(err, errlen, -EIO, "TLS handshake failed: %s (a wrong pre-shared key for the "
                                "client's identity)", nbdsrv_tls_error(why, sizeof why));
                else
                        err_set(err, errlen, -EIO, "TLS handshake failed: %s", nbdsrv_tls_error(why, sizeof why));
                SSL_free(ssl);
                return -EPROTO;
        }
        *ret = ssl;
        return 0;
}
