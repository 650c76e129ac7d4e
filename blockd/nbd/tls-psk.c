/* SPDX-License-Identifier: Apache-2.0 */
#include "tls-psk.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/err.h"
#include "common/util.h"

#define PSK_FILE_MAX (1u << 20)
#define PSK_KEY_MAX 512         /* bytes; psktool makes 32 */

struct psk_entry {
        char *identity;
        unsigned char *key;
        size_t len;
};

struct nbdsrv_psk {
        struct psk_entry *v;
        size_t n;
};

void nbdsrv_psk_free(struct nbdsrv_psk *p) {
        if (!p)
                return;
        for (size_t i = 0; i < p->n; i++) {
                free(p->v[i].identity);
                explicit_bzero(p->v[i].key, p->v[i].len);
                free(p->v[i].key);
        }
        free(p->v);
        free(p);
}

/* One "IDENTITY:HEXKEY" line into p. */
static int add_line(struct nbdsrv_psk *p, char *line, const char *path, unsigned lineno, char *err, size_t errlen) {
        char *colon = strchr(line, ':');
        size_t hex, len;
        struct psk_entry *v, e = { 0 };

        if (!colon || colon == line)
                return err_set(err, errlen, -EINVAL, "%s line %u: not IDENTITY:HEXKEY (the psktool format)", path,
                               lineno);
        *colon = 0;
        hex = strlen(colon + 1);
        len = hex / 2;
        if (hex == 0 || hex % 2 || len > PSK_KEY_MAX)
                return err_set(err, errlen, -EINVAL, "%s line %u: the key of '%s' is not an even number of hex digits "
                               "(at most %u bytes)", path, lineno, line, PSK_KEY_MAX);
        for (size_t i = 0; i < p->n; i++)
                if (!strcmp(p->v[i].identity, line))
                        return err_set(err, errlen, -EINVAL, "%s line %u: identity '%s' appears twice", path, lineno,
                                       line);
        e.identity = strdup(line);
        e.key = malloc(len);
        e.len = len;
        v = reallocarray(p->v, p->n + 1, sizeof *v);
        if (!e.identity || !e.key || !v) {
                if (v)
                        p->v = v;
                free(e.identity);
                free(e.key);
                return -ENOMEM;
        }
        p->v = v;
        if (hex_decode(colon + 1, e.key, len) < 0) {
                free(e.identity);
                explicit_bzero(e.key, len);
                free(e.key);
                return err_set(err, errlen, -EINVAL, "%s line %u: the key of '%s' is not hex", path, lineno, line);
        }
        p->v[p->n++] = e;
        return 0;
}

int nbdsrv_psk_load(const char *path, struct nbdsrv_psk **ret, char *err, size_t errlen) {
        _cleanup_free_ char *text = NULL;
        struct nbdsrv_psk *p;
        char *line;
        unsigned lineno = 0;
        size_t len;
        int r;

        r = read_file_all(AT_FDCWD, path, PSK_FILE_MAX, &text, &len);
        if (r < 0)
                return err_set(err, errlen, r, "cannot read TLS PSK file '%s': %m", path);
        p = calloc(1, sizeof *p);
        if (!p) {
                r = -ENOMEM;
                goto out;
        }
        /* Line by line, counting for messages (blank lines are skipped). */
        for (char *s = text; s && *s; s = line) {
                line = strchr(s, '\n');
                if (line)
                        *line++ = 0;
                lineno++;
                s[strcspn(s, "\r")] = 0;
                if (!*s)
                        continue;
                r = add_line(p, s, path, lineno, err, errlen);
                if (r < 0)
                        goto out;
        }
        if (p->n == 0) {
                r = err_set(err, errlen, -ENOENT, "TLS PSK file '%s' holds no IDENTITY:HEXKEY line", path);
                goto out;
        }
        *ret = p;
        p = NULL;
        r = 0;
out:
        explicit_bzero(text, len);
        nbdsrv_psk_free(p);
        return r;
}

const unsigned char *nbdsrv_psk_find(const struct nbdsrv_psk *p, const void *identity, size_t len, size_t *ret_len) {
        for (size_t i = 0; i < p->n; i++)
                if (strlen(p->v[i].identity) == len && !memcmp(p->v[i].identity, identity, len)) {
                        *ret_len = p->v[i].len;
                        return p->v[i].key;
                }
        return NULL;
}
