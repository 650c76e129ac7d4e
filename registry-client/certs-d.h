/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Registry TLS settings the way containers/image (skopeo, podman) finds
 * them (containers-certs.d(5)):
 *   - a per-registry directory HOST[:PORT] under the first of
 *     ~/.config/containers/certs.d (not as root), /etc/containers/certs.d,
 *     /etc/docker/certs.d that has one ($HOCUS_BLK_CERTS_D, a ':'-separated
 *     list of roots, replaces the three), or the one directory --cert-dir
 *     names (skopeo's --cert-dir: the files directly in it, for every
 *     registry). In it, *.crt are CAs trusted beside the system's, and
 *     NAME.cert with NAME.key a client certificate;
 *   - --ca-file, else $SSL_CERT_FILE: the CA bundle instead of the system's;
 *     $SSL_CERT_DIR: a hashed CA directory beside it;
 *   - --tls-verify=false (or insecure = true in registries.conf): no
 *     certificate check at all.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "http.h"
#include "source.h"

struct registry_tls {
        char *ca_pem;                   /* the *.crt files, concatenated */
        char *client_cert, *client_key;
        char *dir;                      /* the certs.d directory used, or NULL */
};

/* Fill hc's TLS fields for host ("HOST[:PORT]") from o, the environment
 * and certs.d; hc points into t, which must outlive the engine's creation.
 * insecure: registries.conf says so. -errno with a sentence in err for a
 * certs.d directory that cannot be read or a key without its certificate. */
int registry_tls_setup(const struct source_options *o, const char *host, bool insecure, struct registry_tls *t,
                       struct http_config *hc, char *err, size_t errlen);
void registry_tls_done(struct registry_tls *t);
