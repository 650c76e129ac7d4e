/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: registries.conf (registries-conf.c's TOML subset). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "registry-client/registries-conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct regconf *c = calloc(1, sizeof *c);
        const struct regconf_registry *e;
        char err[256], *s;

        if (!c)
                return 0;
        if (regconf_parse(c, (const char *) data, size, "fuzz", err, sizeof err) == 0) {
                e = regconf_find(c, "example.com/foo/img");
                if (e && regconf_rewrite(e, e->n_mirrors ? e->mirrors[0].location : NULL, "example.com/foo/img", &s) == 0)
                        free(s);
        }
        regconf_free(c);
        return 0;
}
