/* SPDX-License-Identifier: Apache-2.0 */
/*
 * containers-registries.conf(5) (registries-conf.h).
 *
 * Why a hand-written TOML reader: Debian ships no maintained C TOML
 * library (tomlc99 is not packaged; libcpptoml, toml11 and toml++ are
 * C++), and registries.conf uses a small part of TOML: tables and arrays
 * of tables, bare and quoted keys, basic and literal strings, booleans,
 * arrays (of strings: unqualified-search-registries) and the odd number.
 * This reads exactly that part, skips what it does not need (unknown keys,
 * tables, inline tables, numbers, dates), and refuses the rest (multi-line
 * strings) with the file and line, so a configuration it cannot read is
 * an error and never half-read silently. tests/fuzz/fuzz-regconf.c fuzzes
 * it; tests/unit/test-registries-conf.c holds the cases.
 */
#include "registries-conf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/err.h"
#include "common/util.h"

#define REGCONF_FILE_MAX (1u << 20)
#define REGCONF_DROPINS_MAX 256
#define NEST_MAX 16

enum section { SEC_TOP, SEC_REGISTRY, SEC_MIRROR, SEC_OTHER };

struct parser {
        const char *p, *end;
        unsigned line;
        const char *file;
        char *err;
        size_t errlen;
};

/* A parsed value: only strings and booleans are kept. */
enum vtype { V_STRING, V_BOOL, V_OTHER };
struct value {
        enum vtype type;
        char *s;
        bool b;
};

static int perr(struct parser *ps, const char *what) {
        return err_set(ps->err, ps->errlen, -EINVAL, "%s:%u: %s", ps->file, ps->line, what);
}

static void skip_ws(struct parser *ps) {
        while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t'))
                ps->p++;
}

static void skip_comment(struct parser *ps) {
        if (ps->p < ps->end && *ps->p == '#')
                while (ps->p < ps->end && *ps->p != '\n')
                        ps->p++;
}

/* Whitespace, comments and newlines (inside arrays). */
static void skip_blank(struct parser *ps) {
        for (;;) {
                skip_ws(ps);
                skip_comment(ps);
                if (ps->p < ps->end && (*ps->p == '\n' || *ps->p == '\r')) {
                        if (*ps->p == '\n')
                                ps->line++;
                        ps->p++;
                        continue;
                }
                return;
        }
}

/* The end of a line: whitespace, a comment, then a newline or the end. */
static int end_of_line(struct parser *ps) {
        skip_ws(ps);
        skip_comment(ps);
        if (ps->p < ps->end && *ps->p == '\r')
                ps->p++;
        if (ps->p == ps->end)
                return 0;
        if (*ps->p != '\n')
                return perr(ps, "unexpected text after the value (one key = value per line)");
        ps->p++;
        ps->line++;
        return 0;
}

static void put_utf8(char *out, size_t *n, unsigned long cp) {
        if (cp < 0x80) {
                out[(*n)++] = (char) cp;
        } else if (cp < 0x800) {
                out[(*n)++] = (char) (0xc0 | (cp >> 6));
                out[(*n)++] = (char) (0x80 | (cp & 0x3f));
        } else if (cp < 0x10000) {
                out[(*n)++] = (char) (0xe0 | (cp >> 12));
                out[(*n)++] = (char) (0x80 | ((cp >> 6) & 0x3f));
                out[(*n)++] = (char) (0x80 | (cp & 0x3f));
        } else {
                out[(*n)++] = (char) (0xf0 | (cp >> 18));
                out[(*n)++] = (char) (0x80 | ((cp >> 12) & 0x3f));
                out[(*n)++] = (char) (0x80 | ((cp >> 6) & 0x3f));
                out[(*n)++] = (char) (0x80 | (cp & 0x3f));
        }
}

/* A basic ("...") or literal ('...') string at ps->p, on one line. */
static int parse_string(struct parser *ps, char **ret) {
        char q = *ps->p, *out;
        size_t n = 0;

        if (ps->end - ps->p >= 3 && ps->p[1] == q && ps->p[2] == q)
                return perr(ps, "multi-line strings are not supported here");
        ps->p++;
        /* Escapes only shrink, except \u (6 -> at most 4 bytes). */
        out = malloc((size_t) (ps->end - ps->p) + 1);
        if (!out)
                return -ENOMEM;
        for (;;) {
                char c;

                if (ps->p == ps->end || *ps->p == '\n') {
                        free(out);
                        return perr(ps, "unterminated string");
                }
                c = *ps->p++;
                if (c == q)
                        break;
                if (c == '\\' && q == '"') {
                        if (ps->p == ps->end)
                                continue;
                        c = *ps->p++;
                        switch (c) {
                        case 'b': out[n++] = '\b'; break;
                        case 't': out[n++] = '\t'; break;
                        case 'n': out[n++] = '\n'; break;
                        case 'f': out[n++] = '\f'; break;
                        case 'r': out[n++] = '\r'; break;
                        case '"': out[n++] = '"'; break;
                        case '\\': out[n++] = '\\'; break;
                        case 'u':
                        case 'U': {
                                unsigned digits = c == 'u' ? 4 : 8;
                                unsigned long cp = 0;

                                for (unsigned i = 0; i < digits; i++) {
                                        char h = ps->p < ps->end ? *ps->p++ : 0;
                                        int v = h >= '0' && h <= '9'   ? h - '0'
                                                : h >= 'a' && h <= 'f' ? h - 'a' + 10
                                                : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                                                       : -1;
                                        if (v < 0) {
                                                free(out);
                                                return perr(ps, "bad \\u escape in a string");
                                        }
                                        cp = cp << 4 | (unsigned long) v;
                                }
                                if (cp == 0 || cp > 0x10ffff || (cp >= 0xd800 && cp < 0xe000)) {
                                        free(out);
                                        return perr(ps, "bad \\u escape in a string");
                                }
                                put_utf8(out, &n, cp);
                                break;
                        }
                        default:
                                free(out);
                                return perr(ps, "unknown escape in a string");
                        }
                        continue;
                }
                if (c == 0 || (c > 0 && c < 0x20 && c != '\t')) {
                        free(out);
                        return perr(ps, "control character in a string");
                }
                out[n++] = c;
        }
        out[n] = 0;
        *ret = out;
        return 0;
}

static bool bare_char(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

/* A key: bare or quoted parts joined by dots ("registry.mirror"). */
static int parse_key(struct parser *ps, char **ret) {
        _cleanup_free_ char *key = NULL;
        size_t n = 0;

        for (;;) {
                _cleanup_free_ char *part = NULL;
                char *k;
                int r;

                skip_ws(ps);
                if (ps->p < ps->end && (*ps->p == '"' || *ps->p == '\'')) {
                        r = parse_string(ps, &part);
                        if (r < 0)
                                return r;
                } else {
                        const char *s = ps->p;
                        while (ps->p < ps->end && bare_char(*ps->p))
                                ps->p++;
                        if (ps->p == s)
                                return perr(ps, "expected a key");
                        part = strndup(s, (size_t) (ps->p - s));
                        if (!part)
                                return -ENOMEM;
                }
                k = realloc(key, n + strlen(part) + 2);
                if (!k)
                        return -ENOMEM;
                key = k;
                if (n)
                        key[n++] = '.';
                strcpy(key + n, part);
                n += strlen(part);
                skip_ws(ps);
                if (ps->p < ps->end && *ps->p == '.') {
                        ps->p++;
                        continue;
                }
                break;
        }
        *ret = TAKE_PTR(key);
        return 0;
}

static int parse_value(struct parser *ps, struct value *v, unsigned depth);

/* [ v, v, ... ] (over lines, trailing comma allowed) or { k = v, ... }. */
static int parse_compound(struct parser *ps, unsigned depth) {
        char close = *ps->p == '[' ? ']' : '}';
        bool table = close == '}';

        if (depth >= NEST_MAX)
                return perr(ps, "values nested too deeply");
        ps->p++;
        for (;;) {
                struct value item = { 0 };
                int r;

                if (table)
                        skip_ws(ps);
                else
                        skip_blank(ps);
                if (ps->p < ps->end && *ps->p == close) {
                        ps->p++;
                        return 0;
                }
                if (table) {
                        _cleanup_free_ char *k = NULL;
                        r = parse_key(ps, &k);
                        if (r < 0)
                                return r;
                        if (ps->p == ps->end || *ps->p != '=')
                                return perr(ps, "expected '=' in an inline table");
                        ps->p++;
                }
                r = parse_value(ps, &item, depth + 1);
                free(item.s);
                if (r < 0)
                        return r;
                if (table)
                        skip_ws(ps);
                else
                        skip_blank(ps);
                if (ps->p < ps->end && *ps->p == ',') {
                        ps->p++;
                        continue;
                }
                if (ps->p < ps->end && *ps->p == close) {
                        ps->p++;
                        return 0;
                }
                return perr(ps, table ? "expected ',' or '}' in an inline table" : "expected ',' or ']' in an array");
        }
}

static int parse_value(struct parser *ps, struct value *v, unsigned depth) {
        const char *s;

        skip_ws(ps);
        if (ps->p == ps->end || *ps->p == '\n' || *ps->p == '#')
                return perr(ps, "expected a value");
        if (*ps->p == '"' || *ps->p == '\'') {
                v->type = V_STRING;
                return parse_string(ps, &v->s);
        }
        if (*ps->p == '[' || *ps->p == '{') {
                v->type = V_OTHER;
                return parse_compound(ps, depth);
        }
        /* true, false, numbers, dates: one bare token. */
        s = ps->p;
        while (ps->p < ps->end && (bare_char(*ps->p) || *ps->p == '.' || *ps->p == ':' || *ps->p == '+'))
                ps->p++;
        if (ps->p == s)
                return perr(ps, "expected a value");
        if (ps->p - s == 4 && !memcmp(s, "true", 4)) {
                v->type = V_BOOL;
                v->b = true;
        } else if (ps->p - s == 5 && !memcmp(s, "false", 5)) {
                v->type = V_BOOL;
                v->b = false;
        } else {
                v->type = V_OTHER;
        }
        return 0;
}

/* ---- the registries.conf semantics --------------------------------------- */

static void registry_done(struct regconf_registry *e) {
        free(e->prefix);
        free(e->location);
        for (size_t i = 0; i < e->n_mirrors; i++)
                free(e->mirrors[i].location);
        free(e->mirrors);
        free(e->file);
        *e = (struct regconf_registry) { 0 };
}

void regconf_free(struct regconf *c) {
        if (!c)
                return;
        for (size_t i = 0; i < c->n_regs; i++)
                registry_done(&c->regs[i]);
        free(c->regs);
        free(c);
}

static int want_string(struct parser *ps, const char *key, struct value *v, char **dst) {
        if (v->type != V_STRING)
                return err_set(ps->err, ps->errlen, -EINVAL, "%s:%u: %s wants a string", ps->file, ps->line, key);
        free(*dst);
        *dst = TAKE_PTR(v->s);
        return 0;
}

static int want_bool(struct parser *ps, const char *key, struct value *v, bool *dst) {
        if (v->type != V_BOOL)
                return err_set(ps->err, ps->errlen, -EINVAL, "%s:%u: %s wants true or false", ps->file, ps->line, key);
        *dst = v->b;
        return 0;
}

static int set_registry_key(struct parser *ps, struct regconf_registry *e, const char *key, struct value *v) {
        if (!strcmp(key, "prefix"))
                return want_string(ps, key, v, &e->prefix);
        if (!strcmp(key, "location"))
                return want_string(ps, key, v, &e->location);
        if (!strcmp(key, "insecure"))
                return want_bool(ps, key, v, &e->insecure);
        if (!strcmp(key, "blocked"))
                return want_bool(ps, key, v, &e->blocked);
        if (!strcmp(key, "mirror-by-digest-only"))
                return want_bool(ps, key, v, &e->digest_only);
        return 0;
}

static int set_mirror_key(struct parser *ps, struct regconf_mirror *m, const char *key, struct value *v) {
        _cleanup_free_ char *pull = NULL;
        int r;

        if (!strcmp(key, "location"))
                return want_string(ps, key, v, &m->location);
        if (!strcmp(key, "insecure"))
                return want_bool(ps, key, v, &m->insecure);
        if (strcmp(key, "pull-from-mirror") != 0)
                return 0;
        r = want_string(ps, key, v, &pull);
        if (r < 0)
                return r;
        if (!strcmp(pull, "all") || !*pull)
                m->pull = REGCONF_PULL_ALL;
        else if (!strcmp(pull, "digest-only"))
                m->pull = REGCONF_PULL_DIGEST_ONLY;
        else if (!strcmp(pull, "tag-only"))
                m->pull = REGCONF_PULL_TAG_ONLY;
        else
                return err_set(ps->err, ps->errlen, -EINVAL,
                               "%s:%u: pull-from-mirror is \"all\", \"digest-only\" or \"tag-only\", not \"%s\"",
                               ps->file, ps->line, pull);
        return 0;
}

/* The entries of one file, complete: check them and merge into c by prefix. */
static int merge(struct regconf *c, struct regconf_registry *regs, size_t n, const char *file, char *err,
                 size_t errlen) {
        for (size_t i = 0; i < n; i++) {
                struct regconf_registry *e = &regs[i];
                size_t j;

                if (!e->prefix && !e->location)
                        return err_set(err, errlen, -EINVAL, "%s: a [[registry]] has neither prefix nor location", file);
                if (!e->prefix && !(e->prefix = strdup(e->location)))
                        return -ENOMEM;
                if (!e->prefix[0] || strchr(e->prefix, '@') || (e->prefix[0] == '*' && strncmp(e->prefix, "*.", 2)))
                        return err_set(err, errlen, -EINVAL, "%s: prefix \"%s\" is not HOST[:PORT][/NAMESPACE] or *.DOMAIN",
                                       file, e->prefix);
                if (e->prefix[0] == '*' && e->location)
                        return err_set(err, errlen, -EINVAL, "%s: a wildcard prefix (\"%s\") cannot have a location",
                                       file, e->prefix);
                for (size_t m = 0; m < e->n_mirrors; m++)
                        if (!e->mirrors[m].location || !e->mirrors[m].location[0])
                                return err_set(err, errlen, -EINVAL, "%s: a mirror of \"%s\" has no location", file,
                                               e->prefix);
                if (!(e->file = strdup(file)))
                        return -ENOMEM;
                for (j = 0; j < c->n_regs; j++)
                        if (!strcmp(c->regs[j].prefix, e->prefix))
                                break;
                if (j == c->n_regs) {
                        struct regconf_registry *v = reallocarray(c->regs, c->n_regs + 1, sizeof *v);
                        if (!v)
                                return -ENOMEM;
                        c->regs = v;
                        c->n_regs++;
                } else {
                        registry_done(&c->regs[j]);
                }
                c->regs[j] = *e;
                *e = (struct regconf_registry) { 0 };
        }
        return 0;
}

int regconf_parse(struct regconf *c, const char *text, size_t len, const char *file, char *err, size_t errlen) {
        struct parser ps = { .p = text, .end = text + len, .line = 1, .file = file, .err = err, .errlen = errlen };
        struct regconf_registry *regs = NULL;
        enum section sec = SEC_TOP;
        size_t n = 0;
        int r = 0;

        while (ps.p < ps.end) {
                _cleanup_free_ char *key = NULL;
                struct value v = { 0 };

                skip_ws(&ps);
                if (ps.p < ps.end && *ps.p == '[') {
                        bool array = ps.end - ps.p >= 2 && ps.p[1] == '[';

                        ps.p += array ? 2 : 1;
                        r = parse_key(&ps, &key);
                        if (r < 0)
                                goto out;
                        if (ps.end - ps.p < (array ? 2 : 1) || ps.p[0] != ']' || (array && ps.p[1] != ']')) {
                                r = perr(&ps, array ? "expected ']]' after the table name" : "expected ']' after the table name");
                                goto out;
                        }
                        ps.p += array ? 2 : 1;
                        if (array && !strcmp(key, "registry")) {
                                struct regconf_registry *nv = reallocarray(regs, n + 1, sizeof *nv);
                                if (!nv) {
                                        r = -ENOMEM;
                                        goto out;
                                }
                                regs = nv;
                                regs[n++] = (struct regconf_registry) { 0 };
                                sec = SEC_REGISTRY;
                        } else if (array && !strcmp(key, "registry.mirror")) {
                                struct regconf_registry *e;
                                struct regconf_mirror *mv;

                                if (!n) {
                                        r = perr(&ps, "[[registry.mirror]] before any [[registry]]");
                                        goto out;
                                }
                                e = &regs[n - 1];
                                mv = reallocarray(e->mirrors, e->n_mirrors + 1, sizeof *mv);
                                if (!mv) {
                                        r = -ENOMEM;
                                        goto out;
                                }
                                e->mirrors = mv;
                                e->mirrors[e->n_mirrors++] = (struct regconf_mirror) { 0 };
                                sec = SEC_MIRROR;
                        } else {
                                sec = SEC_OTHER;
                        }
                        r = end_of_line(&ps);
                        if (r < 0)
                                goto out;
                        continue;
                }
                if (ps.p < ps.end && (*ps.p == '#' || *ps.p == '\n' || *ps.p == '\r')) {
                        r = end_of_line(&ps);
                        if (r < 0)
                                goto out;
                        continue;
                }
                if (ps.p == ps.end)
                        break;
                r = parse_key(&ps, &key);
                if (r < 0)
                        goto out;
                if (ps.p == ps.end || *ps.p != '=') {
                        r = perr(&ps, "expected '=' after the key");
                        goto out;
                }
                ps.p++;
                r = parse_value(&ps, &v, 0);
                if (r == 0 && sec == SEC_REGISTRY)
                        r = set_registry_key(&ps, &regs[n - 1], key, &v);
                else if (r == 0 && sec == SEC_MIRROR)
                        r = set_mirror_key(&ps, &regs[n - 1].mirrors[regs[n - 1].n_mirrors - 1], key, &v);
                free(v.s);
                if (r == 0)
                        r = end_of_line(&ps);
                if (r < 0)
                        goto out;
        }
        r = merge(c, regs, n, file, err, errlen);
out:
        for (size_t i = 0; i < n; i++)
                registry_done(&regs[i]);
        free(regs);
        return r;
}

/* ---- files ------------------------------------------------------------------ */

/* Parse path into c; *found when it exists. */
static int load_file(struct regconf *c, const char *path, bool *found, char *err, size_t errlen) {
        _cleanup_free_ char *buf = NULL;
        size_t len;
        int r;

        r = read_file_all(AT_FDCWD, path, REGCONF_FILE_MAX, &buf, &len);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return err_set(err, errlen, r, "cannot read %s: %m", path);
        if (found)
                *found = true;
        return regconf_parse(c, buf, len, path, err, errlen);
}

static int by_name(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

/* The *.conf files of dir, in name order. */
static int load_dir(struct regconf *c, const char *dir, char *err, size_t errlen) {
        char *names[REGCONF_DROPINS_MAX];
        size_t n = 0;
        struct dirent *de;
        DIR *d;
        int r = 0;

        d = opendir(dir);
        if (!d)
                return errno == ENOENT || errno == ENOTDIR ? 0 : err_set(err, errlen, -errno, "cannot read %s: %m", dir);
        while ((de = readdir(d)) && n < REGCONF_DROPINS_MAX) {
                size_t l = strlen(de->d_name);
                if (de->d_name[0] == '.' || l < 6 || strcmp(de->d_name + l - 5, ".conf") != 0)
                        continue;
                if (asprintf(&names[n], "%s/%s", dir, de->d_name) < 0) {
                        r = -ENOMEM;
                        break;
                }
                n++;
        }
        closedir(d);
        qsort(names, n, sizeof names[0], by_name);
        for (size_t i = 0; i < n; i++) {
                if (r == 0)
                        r = load_file(c, names[i], NULL, err, errlen);
                free(names[i]);
        }
        return r;
}

int regconf_load(struct regconf **ret, char *err, size_t errlen) {
        const char *env = getenv("CONTAINERS_REGISTRIES_CONF"), *home = getenv("HOME");
        _cleanup_free_ char *user = NULL, *user_d = NULL;
        struct regconf *c;
        bool found = false;
        int r;

        c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;
        if (env && *env) {
                r = load_file(c, env, &found, err, errlen);
                if (r == 0 && !found)
                        r = err_set(err, errlen, -ENOENT, "$CONTAINERS_REGISTRIES_CONF names %s, which does not exist", env);
                goto out;
        }
        if (home && *home && (asprintf(&user, "%s/.config/containers/registries.conf", home) < 0 ||
                              asprintf(&user_d, "%s/.config/containers/registries.conf.d", home) < 0)) {
                r = -ENOMEM;
                goto out;
        }
        r = user ? load_file(c, user, &found, err, errlen) : 0;
        if (r == 0 && !found)
                r = load_file(c, "/etc/containers/registries.conf", NULL, err, errlen);
        if (r == 0)
                r = load_dir(c, "/etc/containers/registries.conf.d", err, errlen);
        if (r == 0 && user_d)
                r = load_dir(c, user_d, err, errlen);
out:
        if (r < 0) {
                regconf_free(c);
                return r;
        }
        *ret = c;
        return 0;
}

/* ---- lookup ----------------------------------------------------------------- */

/* How many bytes of name the prefix covers, or 0 when it does not match. */
static size_t match_len(const char *prefix, const char *name) {
        size_t pl = strlen(prefix), hl;

        if (!strncmp(prefix, "*.", 2)) {
                hl = strcspn(name, "/");
                /* "*.example.com" matches "a.example.com" and "a.b.example.com". */
                if (hl > pl - 1 && !strncmp(name + hl - (pl - 1), prefix + 1, pl - 1))
                        return hl;
                return 0;
        }
        if (strncmp(prefix, name, pl) != 0)
                return 0;
        return name[pl] == 0 || name[pl] == '/' ? pl : 0;
}

const struct regconf_registry *regconf_find(const struct regconf *c, const char *name) {
        const struct regconf_registry *best = NULL;
        size_t best_len = 0;

        for (size_t i = 0; c && i < c->n_regs; i++) {
                size_t l = match_len(c->regs[i].prefix, name);
                /* A literal prefix beats a wildcard covering as much. */
                if (l > best_len || (l && l == best_len && best->prefix[0] == '*')) {
                        best = &c->regs[i];
                        best_len = l;
                }
        }
        return best;
}

int regconf_rewrite(const struct regconf_registry *e, const char *location, const char *name, char **ret) {
        size_t l = match_len(e->prefix, name);

        if (!location)
                location = e->location;
        if (!location || !l) {
                *ret = strdup(name);
        } else if (asprintf(ret, "%s%s", location, name + l) < 0) {
                *ret = NULL;
        }
        return *ret ? 0 : -ENOMEM;
}
