/* SPDX-License-Identifier: Apache-2.0 */
/*
 * TLS for the NBD server (NBD_OPT_STARTTLS), with OpenSSL: an X.509
 * server certificate and key, and optionally a CA that client
 * certificates must chain to (mutual TLS; clients without a certificate
 * are then refused). TLS 1.2 is the minimum, as the protocol requires.
 * Or pre-shared keys instead of certificates (psk_file, tls-psk.h): TLS
 * 1.3 external PSKs (RFC 8446 4.2.11, with (EC)DHE where the client
 * offers it), which GnuTLS clients (libnbd, qemu) negotiate; a client
 * whose identity or key is not in the file fails the handshake.
 */
#pragma once

#include <stddef.h>

#include <openssl/ssl.h>

struct nbdsrv_tls;

/* Load the certificate chain, key and (if ca is not NULL) the client CA;
 * or, with psk_file (cert, key and ca NULL), the pre-shared keys. err
 * gets a reason (OpenSSL's) on failure. */
int nbdsrv_tls_new(const char *cert, const char *key, const char *ca, const char *psk_file, struct nbdsrv_tls **ret,
                   char *err, size_t errlen);
void nbdsrv_tls_free(struct nbdsrv_tls *t);

/* Run the server side of a TLS handshake on a blocking socket (its
 * receive timeout bounds the wait). Returns the session, or -errno with a
 * reason in err. */
int nbdsrv_tls_accept(struct nbdsrv_tls *t, int fd, SSL **ret, char *err, size_t errlen);

/* Describe the last OpenSSL error of this thread into buf. */
const char *nbdsrv_tls_error(char *buf, size_t len);
