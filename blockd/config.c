/* SPDX-License-Identifier: Apache-2.0 */
/* The config file: inih reads it; keys go through the option tables. */
#include "blockd/config.h"

#include <errno.h>
#include <stdarg.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/err.h"

#define EXPORT_SECTION "export "

struct loader {
        struct blockd_config *c;
        const struct opt_table *const *tables;
        size_t n_tables;
        FILE *f;
        unsigned line;                  /* the line inih is on (counted by our reader) */
        unsigned section_line;          /* the line of the last [section] header */
        unsigned long_line;             /* first line too long for inih, 0 if none */
        char section[256];              /* the section the last export came from */
        unsigned *export_lines;         /* where each export's section was seen first */
        unsigned err_line;              /* first error of ours, 0 if none */
        char err[512];
};

/* inih's reader: one line per call, counted, so errors carry their line.
 * A line longer than inih takes is replaced by a comment and remembered
 * (inih would split it and misread the rest). */
static char *read_line(char *str, int num, void *stream) {
        struct loader *l = stream;
        _cleanup_free_ char *buf = NULL;
        size_t cap = 0;
        ssize_t n = getline(&buf, &cap, l->f);

        if (n < 0)
                return NULL;
        l->line++;
        if (buf[strspn(buf, " \t")] == '[')
                l->section_line = l->line;
        if (n >= num) {
                if (!l->long_line)
                        l->long_line = l->line;
                snprintf(str, (size_t) num, "#\n");
                return str;
        }
        memcpy(str, buf, (size_t) n + 1);
        return str;
}

static int fail_at(struct loader *l, unsigned line, int r, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Remember the first error (the handler cannot stop inih), at line.
 * Returns 0, which tells inih the line failed. */
static int fail_at(struct loader *l, unsigned line, int r, const char *fmt, ...) {
        va_list ap;

        if (l->err_line)
                return 0;
        l->err_line = line;
        va_start(ap, fmt);
        (void) err_setv(l->err, sizeof l->err, r, fmt, ap);
        va_end(ap);
        return 0;
}

/* An error on the line inih is on. */
#define fail(l, ...) fail_at((l), (l)->line, __VA_ARGS__)

static int push_string(char ***v, size_t *n, char *s) {
        char **a;

        if (!s)
                return -ENOMEM;
        a = realloc(*v, (*n + 1) * sizeof *a);
        if (!a) {
                free(s);
                return -ENOMEM;
        }
        a[(*n)++] = s;
        *v = a;
        return 0;
}

/* A key of an [export NAME] section. */
static int export_key(struct loader *l, const char *section, const char *name, const char *value) {
        struct blockd_config *c = l->c;
        const char *ename = section + strlen(EXPORT_SECTION);
        struct export_config *e;
        const char **field;

        while (*ename == ' ')
                ename++;
        if (strcmp(section, l->section) != 0 || l->export_lines[c->n_exports - 1] != l->section_line) {
                /* A new section: a new export. */
                struct export_config *a;
                unsigned *lines;

                if (!export_name_valid(ename))
                        return fail_at(l, l->section_line, -EINVAL,
                                    "invalid export name '%s' (1-128 of A-Z a-z 0-9 . _ + -, not starting with . or -)",
                                    ename);
                if (blockd_config_export(c, ename))
                        return fail_at(l, l->section_line, -EEXIST, "[export %s] appears twice", ename);
                a = realloc(c->exports, (c->n_exports + 1) * sizeof *a);
                if (!a)
                        return fail(l, -ENOMEM, "out of memory");
                c->exports = a;
                lines = realloc(l->export_lines, (c->n_exports + 1) * sizeof *lines);
                if (!lines)
                        return fail(l, -ENOMEM, "out of memory");
                l->export_lines = lines;
                lines[c->n_exports] = l->section_line;
                c->exports[c->n_exports] = (struct export_config) { .name = strdup(ename) };
                if (!c->exports[c->n_exports++].name)
                        return fail(l, -ENOMEM, "out of memory");
                snprintf(l->section, sizeof l->section, "%s", section);
        }
        e = &c->exports[c->n_exports - 1];
        if (!strcmp(name, "ref"))
                field = &e->ref;
        else if (!strcmp(name, "overlay"))
                field = &e->overlay;
        else if (!strcmp(name, "profile"))
                field = &e->profile;
        else if (!strcmp(name, "vhost-user"))
                field = &e->vhost_user;
        else
                return fail(l, -ENOENT, "unknown key '%s' in [export %s] (ref, overlay, profile, vhost-user)", name,
                            ename);
        if (*field)
                return fail(l, -EEXIST, "%s given twice in [export %s]", name, ename);
        if (!*value)
                return fail(l, -EINVAL, "%s wants a value", name);
        *field = strdup(value);
        return *field ? 1 : fail(l, -ENOMEM, "out of memory");
}

/* inih's handler: one name = value under section. */
static int handle(void *user, const char *section, const char *name, const char *value) {
        struct loader *l = user;
        struct blockd_config *c = l->c;
        char why[512];
        char *v, *kv;
        int r;

        if (l->err_line)
                return 0;
        if (!strcmp(section, "blockd")) {
                v = strdup(value);
                if (!v || push_string(&c->values, &c->n_values, v) < 0)
                        return fail(l, -ENOMEM, "out of memory");
                r = opt_apply_config(l->tables, l->n_tables, name, v, why, sizeof why);
                if (r < 0)
                        return fail(l, r, "%s", why);
                if (asprintf(&kv, "%s=%s", name, value) < 0 || push_string(&c->settings, &c->n_settings, kv) < 0)
                        return fail(l, -ENOMEM, "out of memory");
                return 1;
        }
        if (!strncmp(section, EXPORT_SECTION, strlen(EXPORT_SECTION)))
                return export_key(l, section, name, value);
        if (!section[0])
                return fail(l, -EINVAL, "'%s' comes before any section ([blockd] or [export NAME])", name);
        return fail_at(l, l->section_line, -EINVAL, "unknown section [%s] (want [blockd] or [export NAME])", section);
}

/* What inih found wrong with a line it did not hand to us. */
static void syntax_reason(const char *path, unsigned line, char *err, size_t errlen) {
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        _cleanup_free_ char *buf = NULL;
        size_t cap = 0;
        const char *p;

        for (unsigned i = 0; f && i < line; i++)
                if (getline(&buf, &cap, f) < 0)
                        break;
        p = buf ? buf + strspn(buf, " \t") : "";
        if (*p == '[')
                snprintf(err, errlen, "%s:%u: a section header needs its closing ']'", path, line);
        else
                snprintf(err, errlen, "%s:%u: expected 'key = value', a [section] or a # comment", path, line);
}

int blockd_config_load(const char *path, const struct opt_table *const *tables, size_t n_tables,
                       struct blockd_config **ret, char *err, size_t errlen) {
        struct blockd_config *c = calloc(1, sizeof *c);
        struct loader l = { .c = c, .tables = tables, .n_tables = n_tables };
        int r;

        if (!c)
                return err_set(err, errlen, -ENOMEM, "out of memory");
        c->path = strdup(path);
        l.f = fopen(path, "re");
        if (!c->path || !l.f) {
                r = err_set(err, errlen, c->path ? -errno : -ENOMEM, "%s: %m", path);
                goto fail;
        }
        r = ini_parse_stream(read_line, &l, handle, &l);
        fclose(l.f);
        {
                /* The first of: a line too long, a syntax error (inih's
                 * answer), a key or value we refused. */
                unsigned syntax = r > 0 ? (unsigned) r : 0, first = 0;

                if (l.long_line)
                        first = l.long_line;
                if (syntax && (!first || syntax < first))
                        first = syntax;
                if (l.err_line && (!first || l.err_line <= first))
                        first = l.err_line;
                if (first && first == l.long_line && first != l.err_line) {
                        r = err_set(err, errlen, -EINVAL, "%s:%u: line longer than %d characters", path, first,
                                    INI_MAX_LINE - 1);
                        goto fail;
                }
                if (first && first == l.err_line) {
                        r = err_set(err, errlen, -EINVAL, "%s:%u: %s", path, first, l.err);
                        goto fail;
                }
                if (first) {
                        syntax_reason(path, first, err, errlen);
                        r = -EINVAL;
                        goto fail;
                }
        }
        if (r < 0) {
                r = err_set(err, errlen, -ENOMEM, "%s: out of memory", path);
                goto fail;
        }
        for (size_t i = 0; i < c->n_exports; i++)
                if (!c->exports[i].ref) {
                        r = err_set(err, errlen, -EINVAL, "%s:%u: [export %s] has no ref", path, l.export_lines[i],
                                    c->exports[i].name);
                        goto fail;
                }
        free(l.export_lines);
        *ret = c;
        return 0;
fail:
        free(l.export_lines);
        blockd_config_free(c);
        return r;
}

void blockd_config_free(struct blockd_config *c) {
        if (!c)
                return;
        for (size_t i = 0; i < c->n_exports; i++) {
                free((char *) c->exports[i].name);
                free((char *) c->exports[i].ref);
                free((char *) c->exports[i].overlay);
                free((char *) c->exports[i].profile);
                free((char *) c->exports[i].vhost_user);
        }
        free(c->exports);
        for (size_t i = 0; i < c->n_settings; i++)
                free(c->settings[i]);
        free(c->settings);
        for (size_t i = 0; i < c->n_values; i++)
                free(c->values[i]);
        free(c->values);
        free(c->path);
        free(c);
}

const struct export_config *blockd_config_export(const struct blockd_config *c, const char *name) {
        for (size_t i = 0; c && i < c->n_exports; i++)
                if (!strcmp(c->exports[i].name, name))
                        return &c->exports[i];
        return NULL;
}

/* Equal strings, NULL only equal to NULL. */
static bool str_eq(const char *a, const char *b) {
        return a == b || (a && b && !strcmp(a, b));
}

bool export_config_equal(const struct export_config *a, const struct export_config *b) {
        return str_eq(a->name, b->name) && str_eq(a->ref, b->ref) && str_eq(a->overlay, b->overlay) &&
               str_eq(a->profile, b->profile) && str_eq(a->vhost_user, b->vhost_user);
}
