/* SPDX-License-Identifier: Apache-2.0 */
#include "exports.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "profile-find.h"

struct entry {
        char *name;
        struct export *e;               /* NULL while being attached */
        struct entry *next;
};

struct exports {
        struct export_env env;
        pthread_mutex_t lock;
        struct entry *head;             /* attach order */
        exports_kick_fn kick;
        void *kick_userdata;
};

int exports_new(const struct export_env *env, struct exports **ret) {
        struct exports *x = calloc(1, sizeof *x);

        if (!x)
                return -ENOMEM;
        x->env = *env;
        pthread_mutex_init(&x->lock, NULL);
        *ret = x;
        return 0;
}

void exports_set_kick(struct exports *x, exports_kick_fn fn, void *userdata) {
        pthread_mutex_lock(&x->lock);
        x->kick = fn;
        x->kick_userdata = userdata;
        pthread_mutex_unlock(&x->lock);
}

int exports_free(struct exports *x) {
        int ret = 0;

        if (!x)
                return 0;
        while (x->head) {
                struct entry *en = x->head;

                x->head = en->next;
                if (en->e) {
                        int r = export_flush(en->e);
                        if (r < 0) {
                                log_error_errno(r, "Export %s: flushing the overlay failed: %m", en->name);
                                if (ret == 0)
                                        ret = r;
                        }
                        export_unref(en->e);
                }
                free(en->name);
                free(en);
        }
        pthread_mutex_destroy(&x->lock);
        free(x);
        return ret;
}

static struct entry *find(struct exports *x, const char *name) {
        for (struct entry *en = x->head; en; en = en->next)
                if (strcmp(en->name, name) == 0)
                        return en;
        return NULL;
}

int exports_attach(struct exports *x, const struct export_config *cfg, struct export **ret, char *err,
                   size_t errlen) {
        struct entry *en, **tail;
        struct export *e;
        int r;

        if (!export_name_valid(cfg->name))
                return err_set(err, errlen, -EINVAL,
                               "invalid export name '%s' (1-128 of A-Z a-z 0-9 . _ + -, not starting with . or -)",
                               cfg->name);
        en = calloc(1, sizeof *en);
        if (!en || !(en->name = strdup(cfg->name))) {
                free(en);
                return -ENOMEM;
        }
        pthread_mutex_lock(&x->lock);
        if (find(x, cfg->name)) {
                pthread_mutex_unlock(&x->lock);
                free(en->name);
                free(en);
                return err_set(err, errlen, -EEXIST, "an export named '%s' already exists", cfg->name);
        }
        for (tail = &x->head; *tail; tail = &(*tail)->next)
                ;
        *tail = en;             /* reserved; invisible to lookups until e is set */
        pthread_mutex_unlock(&x->lock);

        r = export_open(cfg, &x->env, &e, err, errlen);

        pthread_mutex_lock(&x->lock);
        if (r < 0) {
                for (tail = &x->head; *tail != en; tail = &(*tail)->next)
                        ;
                *tail = en->next;
        } else {
                en->e = e;
        }
        pthread_mutex_unlock(&x->lock);
        if (r < 0) {
                free(en->name);
                free(en);
                return r;
        }
        log_info("Attached export %s: %s, %llu bytes%s%s", cfg->name, cfg->ref, (unsigned long long) export_size(e),
                 cfg->overlay ? ", overlay " : ", read-only", cfg->overlay ? cfg->overlay : "");
        (void) profile_prefetch_attach(e, cfg->profile, NULL);
        export_background_start(e);     /* after the profile, which goes first */
        if (ret)
                *ret = export_ref(e);
        return 0;
}

int exports_detach(struct exports *x, const char *name, unsigned timeout_s, char *err, size_t errlen) {
        struct entry *en, **pp;
        exports_kick_fn kick;
        void *kick_ud;
        uint64_t deadline = now_ns() + (uint64_t) timeout_s * 1000000000ull, next_kick = 0;
        bool hard = false;
        struct export *e;
        int r;

        pthread_mutex_lock(&x->lock);
        for (pp = &x->head; *pp; pp = &(*pp)->next)
                if (strcmp((*pp)->name, name) == 0 && (*pp)->e)
                        break;
        en = *pp;
        if (!en) {
                pthread_mutex_unlock(&x->lock);
                return err_set(err, errlen, -ENOENT, "no export named '%s'", name);
        }
        *pp = en->next;
        kick = x->kick;
        kick_ud = x->kick_userdata;
        pthread_mutex_unlock(&x->lock);
        e = en->e;

        export_prefetch_cancel(e);
        /* New clients cannot find it now; send the current ones away. */
        while (export_clients(e) > 0) {
                uint64_t now = now_ns();
                if (now >= next_kick && kick) {
                        kick(kick_ud, e, hard);
                        next_kick = now + 1000000000ull;
                }
                if (!hard && now >= deadline) {
                        log_warning("Export %s: %u clients still busy after %u s; disconnecting them", name,
                                    export_clients(e), timeout_s);
                        hard = true;
                        next_kick = 0;
                }
                usleep(10 * 1000);
        }
        /* The last connections drop their references as they close. Wait
         * to hold the last one, so that the overlay is closed (and its
         * lock released) when detach returns. */
        for (int i = 0; export_refcount(e) > 1 && i < 500; i++)
                usleep(10 * 1000);
        r = export_flush(e);
        if (r < 0)
                log_error_errno(r, "Export %s: flushing the overlay failed: %m", name);
        export_unref(e);
        free(en->name);
        free(en);
        log_info("Detached export %s", name);
        return r < 0 ? err_set(err, errlen, r, "flushing the overlay failed: %s", strerror(-r)) : 0;
}

struct export *exports_get(struct exports *x, const char *name) {
        struct export *e = NULL;

        pthread_mutex_lock(&x->lock);
        for (struct entry *en = x->head; en; en = en->next)
                if (en->e && (name[0] == 0 || strcmp(en->name, name) == 0)) {
                        e = export_ref(en->e);
                        break;
                }
        pthread_mutex_unlock(&x->lock);
        return e;
}

void exports_for_each(struct exports *x, void (*fn)(struct export *e, void *ctx), void *ctx) {
        struct export **list = NULL;
        size_t n = 0, cap = 0;

        pthread_mutex_lock(&x->lock);
        for (struct entry *en = x->head; en; en = en->next) {
                if (!en->e)
                        continue;
                if (n == cap) {
                        struct export **l = realloc(list, (cap ? cap * 2 : 16) * sizeof *l);
                        if (!l)
                                break;
                        list = l;
                        cap = cap ? cap * 2 : 16;
                }
                list[n++] = export_ref(en->e);
        }
        pthread_mutex_unlock(&x->lock);
        for (size_t i = 0; i < n; i++) {
                fn(list[i], ctx);
                export_unref(list[i]);
        }
        free(list);
}

unsigned exports_count(struct exports *x) {
        unsigned n = 0;

        pthread_mutex_lock(&x->lock);
        for (struct entry *en = x->head; en; en = en->next)
                n += en->e != NULL;
        pthread_mutex_unlock(&x->lock);
        return n;
}
