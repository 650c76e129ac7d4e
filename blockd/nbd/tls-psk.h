/* SPDX-License-Identifier: Apache-2.0 */
/*
 * TLS pre-shared keys for NBD (--tls-psk FILE), in the file format that
 * GnuTLS's psktool writes and nbdkit, qemu-nbd and libnbd read: one
 * "IDENTITY:HEXKEY" per line. A client names its identity (libnbd: the
 * user part of an nbds:// URI) and proves it holds the key.
 */
#pragma once

#include <stddef.h>

struct nbdsrv_psk;

/* Parse path. -EINVAL (with the file and line in err) for a malformed
 * file, -ENOENT for an empty one, -errno. */
int nbdsrv_psk_load(const char *path, struct nbdsrv_psk **ret, char *err, size_t errlen);
/* Wipes the keys. */
void nbdsrv_psk_free(struct nbdsrv_psk *p);

/* The key of identity (not NUL-terminated: len bytes), or NULL. Borrowed. */
const unsigned char *nbdsrv_psk_find(const struct nbdsrv_psk *p, const void *identity, size_t len, size_t *ret_len);
