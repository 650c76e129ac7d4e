/* SPDX-License-Identifier: Apache-2.0 */
#include "exports.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "profile-find.h"

#define RETRY_MIN_NS (2 * 1000000000ull)
#define RETRY_MAX_NS (30 * 1000000000ull)

struct entry {
        struct state_export se;         /* what attaches it again; se.manifest: the pin */
        struct export *e;               /* NULL while being attached, or failed */
        bool attaching;                 /* an attach, retry or update is in progress */
        bool persist;                   /* in the state file */
        char *why;                      /* failed: the reason (retrying) */
        uint64_t next_retry_ns, backoff_ns;
        struct entry *next;
};

struct exports {
        struct export_env env;
        pthread_mutex_t lock;
        pthread_cond_t cond;            /* the retry thread waits on it */
        struct entry *head;             /* attach order */
        exports_kick_fn kick;
        void *kick_userdata;
        exports_attached_fn attached;
        void *attached_userdata;
        struct state *st;
        pthread_mutex_t save_lock;      /* saves in order; taken before lock */
        bool save_failed;
        pthread_t retry_thread;
        bool stopping;
        unsigned lookups;               /* profile lookups running (lookup_main) */
        pthread_cond_t lookups_done;    /* signalled when lookups drops to 0 */
};

static void entry_free(struct entry *en) {
        if (!en)
                return;
        state_export_clear(&en->se);
        free(en->why);
        free(en);
}

static struct entry *find(struct exports *x, const char *name) {
        for (struct entry *en = x->head; en; en = en->next)
                if (strcmp(en->se.name, name) == 0)
                        return en;
        return NULL;
}

/* Unlink en from the table (caller holds the lock). */
static void unlink_entry(struct exports *x, struct entry *en) {
        for (struct entry **pp = &x->head; *pp; pp = &(*pp)->next)
                if (*pp == en) {
                        *pp = en->next;
                        return;
                }
}

/* Write the table to the state directory, if there is one. */
static void save(struct exports *x) {
        struct state_export *v = NULL;
        size_t n = 0, cap = 0;
        int r = 0;

        if (!x->st)
                return;
        pthread_mutex_lock(&x->save_lock);
        pthread_mutex_lock(&x->lock);
        for (struct entry *en = x->head; en; en = en->next)
                cap += en->persist;
        v = calloc(cap ? cap : 1, sizeof *v);
        for (struct entry *en = x->head; v && en; en = en->next)
                if (en->persist && (r = state_export_copy(&en->se, &v[n])) >= 0)
                        n++;
        pthread_mutex_unlock(&x->lock);
        if (!v || r < 0)
                r = -ENOMEM;
        else
                r = state_save(x->st, v, n);
        if (r < 0 && !x->save_failed)
                log_error_errno(r, "Cannot save the export table in %s: %m; changes will not survive a restart",
                                state_dir(x->st));
        else if (r >= 0 && x->save_failed)
                log_info("Export table saved in %s again", state_dir(x->st));
        x->save_failed = r < 0;
        pthread_mutex_unlock(&x->save_lock);
        state_exports_free(v, n);
}

/* Open the export en describes (not under the lock). */
static int open_entry(struct exports *x, const struct state_export *se, bool pinned, struct export **ret, char *err,
                      size_t errlen) {
        struct export_config cfg = {
                .name = se->name,
                .ref = se->ref,
                .overlay = se->overlay,
                .profile = se->profile,
                .manifest = pinned ? se->manifest : NULL,
                .vhost_user = se->vhost_user,
        };

        return export_open(&cfg, &x->env, ret, err, errlen);
}

/* The published profile found for e is noted in its entry, so that a
 * start without the registry finds it locally. */
static void note_profile_blob(struct exports *x, struct export *e, const struct digest *blob) {
        char ds[DIGEST_STRING_MAX];
        bool changed = false;

        digest_to_string(blob, ds);
        pthread_mutex_lock(&x->lock);
        for (struct entry *en = x->head; en; en = en->next)
                if (en->e == e && (!en->se.profile_blob || strcmp(en->se.profile_blob, ds) != 0)) {
                        char *b = strdup(ds);
                        if (b) {
                                free(en->se.profile_blob);
                                en->se.profile_blob = b;
                                changed = true;
                        }
                }
        pthread_mutex_unlock(&x->lock);
        if (changed)
                save(x);
}

struct lookup {
        struct exports *x;
        struct export *e;               /* a reference */
        char *profile, *known_blob;
};

static void lookup_free(struct lookup *l) {
        export_unref(l->e);
        free(l->profile);
        free(l->known_blob);
        free(l);
}

/* The manifest and index made durable (the attach wrote them without
 * fsync), then the boot profile (profile-find.h; none with profile
 * "none") and the background stream, which goes after it. The export
 * serves reads meanwhile: neither the fsyncs nor a lookup of several
 * round trips (referrers, the tag fallback, the profile blob) is in the
 * way of the first read. */
static void lookup_run(struct exports *x, struct export *e, const char *profile, const char *known_blob) {
        struct profile_prefetch_info info = { 0 };

        export_meta_sync(e);
        if (profile && !strcmp(profile, "none"))
                return;
        (void) profile_prefetch_attach(e, profile, known_blob, &info);
        export_profile_lookup(e, false);
        export_background_start(e);
        if (info.has_blob)
                note_profile_blob(x, e, &info.blob);
}

static void *lookup_main(void *arg) {
        struct lookup *l = arg;
        struct exports *x = l->x;

        lookup_run(x, l->e, l->profile, l->known_blob);
        lookup_free(l);
        pthread_mutex_lock(&x->lock);
        if (--x->lookups == 0)
                pthread_cond_broadcast(&x->lookups_done);
        pthread_mutex_unlock(&x->lock);
        return NULL;
}

/* After an export is in the table: its vhost-user socket, its learning,
 * then its profile and the background stream, looked for on a thread of
 * their own (here, if one cannot be started). */
static void started(struct exports *x, struct export *e, const char *profile, const char *known_blob) {
        struct lookup *l;
        pthread_attr_t attr;
        pthread_t t;
        int r = -ENOMEM;

        pthread_mutex_lock(&x->lock);
        exports_attached_fn fn = x->attached;
        void *ud = x->attached_userdata;
        pthread_mutex_unlock(&x->lock);
        if (fn)
                fn(ud, e);
        profile_learn_attach(e, profile);
        if (profile && !strcmp(profile, "none"))
                export_background_start(e);     /* the thread only syncs */
        else
                export_profile_lookup(e, true);
        l = calloc(1, sizeof *l);
        if (l) {
                l->x = x;
                l->e = export_ref(e);
                l->profile = profile ? strdup(profile) : NULL;
                l->known_blob = known_blob ? strdup(known_blob) : NULL;
        }
        if (l && (!profile || l->profile) && (!known_blob || l->known_blob)) {
                pthread_mutex_lock(&x->lock);
                x->lookups++;
                pthread_mutex_unlock(&x->lock);
                pthread_attr_init(&attr);
                pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
                r = -pthread_create(&t, &attr, lookup_main, l);
                pthread_attr_destroy(&attr);
                if (r >= 0)
                        return;
                pthread_mutex_lock(&x->lock);
                x->lookups--;
                pthread_mutex_unlock(&x->lock);
        }
        if (l)
                lookup_free(l);
        log_warning_errno(r, "Export %s: cannot start a thread for the profile lookup (%m); looking here",
                          export_name(e));
        lookup_run(x, e, profile, known_blob);
}

/* The pin of an attached entry: the manifest it opened. Caller holds the lock. */
static int set_pin(struct entry *en, struct export *e) {
        char ds[DIGEST_STRING_MAX];
        char *m = strdup(digest_to_string(export_manifest_digest(e), ds));

        if (!m)
                return -ENOMEM;
        if (en->se.manifest && strcmp(en->se.manifest, m) != 0) {
                /* Another image: the profile found for the old one is not its. */
                free(en->se.profile_blob);
                en->se.profile_blob = NULL;
        }
        free(en->se.manifest);
        en->se.manifest = m;
        return 0;
}

/* Retries exports that failed to attach, with backoff, until stopped. */
static void *retry_main(void *arg) {
        struct exports *x = arg;

        pthread_mutex_lock(&x->lock);
        while (!x->stopping) {
                uint64_t now = now_ns(), next = UINT64_MAX;
                struct entry *due = NULL;
                struct state_export se = { 0 };
                struct export *e = NULL;
                char err[512] = "";
                int r;

                for (struct entry *en = x->head; en; en = en->next) {
                        if (!en->why || en->attaching)
                                continue;
                        if (en->next_retry_ns <= now) {
                                due = en;
                                break;
                        }
                        next = MIN(next, en->next_retry_ns);
                }
                if (!due) {
                        if (next == UINT64_MAX) {
                                pthread_cond_wait(&x->cond, &x->lock);
                        } else {
                                struct timespec ts;
                                uint64_t t = next - now;
                                clock_gettime(CLOCK_MONOTONIC, &ts);
                                ts.tv_sec += (time_t) (t / 1000000000ull);
                                ts.tv_nsec += (long) (t % 1000000000ull);
                                if (ts.tv_nsec >= 1000000000L) {
                                        ts.tv_sec++;
                                        ts.tv_nsec -= 1000000000L;
                                }
                                pthread_cond_timedwait(&x->cond, &x->lock, &ts);
                        }
                        continue;
                }
                due->attaching = true;
                r = state_export_copy(&due->se, &se);
                pthread_mutex_unlock(&x->lock);
                if (r >= 0)
                        r = open_entry(x, &se, se.manifest != NULL, &e, err, sizeof err);
                pthread_mutex_lock(&x->lock);
                due->attaching = false;
                if (r >= 0 && set_pin(due, e) >= 0) {
                        due->e = e;
                        free(due->why);
                        due->why = NULL;
                        pthread_mutex_unlock(&x->lock);
                        log_info("Attached export %s: %s, %llu bytes (after failing to at first)", export_name(e),
                                 export_ref_text(e), (unsigned long long) export_size(e));
                        save(x);
                        started(x, e, se.profile, se.profile_blob);
                        state_export_clear(&se);
                        pthread_mutex_lock(&x->lock);
                        continue;
                }
                state_export_clear(&se);
                if (r >= 0) {
                        export_unref(e);
                        r = -ENOMEM;
                }
                if (!due->why || strcmp(due->why, err[0] ? err : strerror(-r)) != 0) {
                        log_warning("Export %s still cannot be attached: %s; retrying", due->se.name,
                                    err[0] ? err : strerror(-r));
                        free(due->why);
                        due->why = strdup(err[0] ? err : strerror(-r));
                }
                due->backoff_ns = MIN(due->backoff_ns * 2, RETRY_MAX_NS);
                due->next_retry_ns = now_ns() + due->backoff_ns;
        }
        pthread_mutex_unlock(&x->lock);
        return NULL;
}

int exports_new(const struct export_env *env, struct exports **ret) {
        struct exports *x = calloc(1, sizeof *x);
        pthread_condattr_t ca;
        int r;

        if (!x)
                return -ENOMEM;
        x->env = *env;
        pthread_mutex_init(&x->lock, NULL);
        pthread_mutex_init(&x->save_lock, NULL);
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&x->cond, &ca);
        pthread_condattr_destroy(&ca);
        pthread_cond_init(&x->lookups_done, NULL);
        r = -pthread_create(&x->retry_thread, NULL, retry_main, x);
        if (r < 0) {
                pthread_cond_destroy(&x->cond);
                pthread_cond_destroy(&x->lookups_done);
                pthread_mutex_destroy(&x->lock);
                pthread_mutex_destroy(&x->save_lock);
                free(x);
                return r;
        }
        *ret = x;
        return 0;
}

void exports_set_attached(struct exports *x, exports_attached_fn fn, void *userdata) {
        pthread_mutex_lock(&x->lock);
        x->attached = fn;
        x->attached_userdata = userdata;
        pthread_mutex_unlock(&x->lock);
}

void exports_set_kick(struct exports *x, exports_kick_fn fn, void *userdata) {
        pthread_mutex_lock(&x->lock);
        x->kick = fn;
        x->kick_userdata = userdata;
        pthread_mutex_unlock(&x->lock);
}

void exports_set_state(struct exports *x, struct state *st) {
        pthread_mutex_lock(&x->save_lock);
        x->st = st;
        pthread_mutex_unlock(&x->save_lock);
        save(x);
}

int exports_free(struct exports *x) {
        int ret = 0;

        if (!x)
                return 0;
        pthread_mutex_lock(&x->lock);
        x->stopping = true;
        pthread_cond_broadcast(&x->cond);
        pthread_mutex_unlock(&x->lock);
        pthread_join(x->retry_thread, NULL);
        /* Lookups end within the request timeout; they use the table. */
        pthread_mutex_lock(&x->lock);
        while (x->lookups)
                pthread_cond_wait(&x->lookups_done, &x->lock);
        pthread_mutex_unlock(&x->lock);
        while (x->head) {
                struct entry *en = x->head;

                x->head = en->next;
                if (en->e) {
                        int r = export_flush(en->e);
                        if (r < 0) {
                                log_error_errno(r, "Export %s: flushing the overlay failed: %m", en->se.name);
                                if (ret == 0)
                                        ret = r;
                        }
                        export_unref(en->e);
                }
                entry_free(en);
        }
        pthread_cond_destroy(&x->cond);
        pthread_cond_destroy(&x->lookups_done);
        pthread_mutex_destroy(&x->lock);
        pthread_mutex_destroy(&x->save_lock);
        free(x);
        return ret;
}

int exports_add(struct exports *x, const struct state_export *se, bool retry, struct export **ret, char *err,
                size_t errlen) {
        struct entry *en, **tail;
        struct export *e = NULL;
        int r;

        if (!export_name_valid(se->name))
                return err_set(err, errlen, -EINVAL,
                               "invalid export name '%s' (1-128 of A-Z a-z 0-9 . _ + -, not starting with . or -)",
                               se->name);
        en = calloc(1, sizeof *en);
        if (!en || state_export_copy(se, &en->se) < 0) {
                free(en);
                return -ENOMEM;
        }
        en->attaching = true;
        en->persist = retry;            /* a restored export stays saved while it attaches */
        pthread_mutex_lock(&x->lock);
        if (find(x, se->name)) {
                pthread_mutex_unlock(&x->lock);
                entry_free(en);
                return err_set(err, errlen, -EEXIST, "an export named '%s' already exists", se->name);
        }
        for (tail = &x->head; *tail; tail = &(*tail)->next)
                ;
        *tail = en;             /* reserved; invisible to lookups until e is set */
        pthread_mutex_unlock(&x->lock);

        r = open_entry(x, se, se->manifest != NULL, &e, err, errlen);

        pthread_mutex_lock(&x->lock);
        en->attaching = false;
        if (r >= 0 && (r = set_pin(en, e)) < 0)
                export_unref(e);
        if (r >= 0) {
                en->e = e;
                en->persist = true;
        } else if (retry && r != -EINVAL && r != -ENOMEM) {
                en->why = strdup(err && err[0] ? err : strerror(-r));
                if (!en->why)
                        en->why = strdup("out of memory");
                en->backoff_ns = RETRY_MIN_NS;
                en->next_retry_ns = now_ns() + RETRY_MIN_NS;
                pthread_cond_broadcast(&x->cond);
        } else {
                unlink_entry(x, en);
        }
        pthread_mutex_unlock(&x->lock);
        if (r < 0 && !en->why) {
                entry_free(en);
                return r;
        }
        save(x);
        if (r < 0) {
                log_error("Cannot attach export %s: %s; retrying in the background", se->name,
                          err && err[0] ? err : strerror(-r));
                return 0;
        }
        log_info("Attached export %s: %s, %llu bytes%s%s, manifest %s", se->name, se->ref,
                 (unsigned long long) export_size(e), se->overlay ? ", overlay " : ", read-only",
                 se->overlay ? se->overlay : "", en->se.manifest);
        started(x, e, se->profile, se->profile_blob);
        if (ret)
                *ret = export_ref(e);
        return 0;
}

int exports_attach(struct exports *x, const struct export_config *cfg, struct export **ret, char *err,
                   size_t errlen) {
        struct state_export se = {
                .name = (char *) cfg->name,
                .ref = (char *) cfg->ref,
                .overlay = (char *) cfg->overlay,
                .profile = (char *) cfg->profile,
                .manifest = (char *) cfg->manifest,
                .vhost_user = (char *) cfg->vhost_user,
                .added_by = STATE_BY_ATTACH,
        };

        return exports_add(x, &se, false, ret, err, errlen);
}

/* Send e's clients away (hard after timeout_s), then wait to hold the
 * last reference besides the caller's. */
static void drain(struct exports *x, struct export *e, const char *name, unsigned timeout_s) {
        uint64_t deadline = now_ns() + (uint64_t) timeout_s * 1000000000ull, next_kick = 0;
        exports_kick_fn kick;
        void *kick_ud;
        bool hard = false;

        pthread_mutex_lock(&x->lock);
        kick = x->kick;
        kick_ud = x->kick_userdata;
        pthread_mutex_unlock(&x->lock);
        export_prefetch_cancel(e);
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
        /* A profile lookup still running holds a reference: it ends
         * within the request timeout. */
        while (export_profile_lookup_running(e))
                usleep(10 * 1000);
        /* The last connections drop their references as they close. Wait
         * to hold the last one, so that the overlay is closed (and its
         * lock released) when we return. */
        for (int i = 0; export_refcount(e) > 1 && i < 500; i++)
                usleep(10 * 1000);
}

/* Under x->lock: the entry named NAME, neither unknown nor in the middle
 * of an attach or update (detach and update refuse both alike). */
static int find_settled(struct exports *x, const char *name, struct entry **ret, char *err, size_t errlen) {
        struct entry *en = find(x, name);

        if (!en || (!en->e && !en->why))
                return err_set(err, errlen, -ENOENT, "no export named '%s'", name);
        if (en->attaching)
                return err_set(err, errlen, -EBUSY, "export '%s' is being attached or updated; try again", name);
        *ret = en;
        return 0;
}

int exports_detach(struct exports *x, const char *name, unsigned timeout_s, char *err, size_t errlen) {
        struct entry *en;
        struct export *e;
        int r;

        pthread_mutex_lock(&x->lock);
        r = find_settled(x, name, &en, err, errlen);
        if (r < 0) {
                pthread_mutex_unlock(&x->lock);
                return r;
        }
        unlink_entry(x, en);
        pthread_mutex_unlock(&x->lock);
        save(x);
        e = en->e;
        if (!e) {
                log_info("Detached export %s (it had failed to attach: %s)", name, en->why);
                entry_free(en);
                return 0;
        }
        drain(x, e, name, timeout_s);
        r = export_flush(e);
        if (r < 0)
                log_error_errno(r, "Export %s: flushing the overlay failed: %m", name);
        export_unref(e);
        entry_free(en);
        log_info("Detached export %s", name);
        return r < 0 ? err_set(err, errlen, r, "flushing the overlay failed: %s", strerror(-r)) : 0;
}

int exports_update(struct exports *x, const char *name, unsigned timeout_s, bool *ret_changed, char *err,
                   size_t errlen) {
        struct state_export se;
        struct export *old, *e = NULL;
        struct entry *en;
        char ds[DIGEST_STRING_MAX];
        int r;

        pthread_mutex_lock(&x->lock);
        r = find_settled(x, name, &en, err, errlen);
        if (r >= 0 && !en->e)
                r = err_set(err, errlen, -EAGAIN, "export '%s' is not attached yet (%s)", name, en->why);
        if (r < 0) {
                pthread_mutex_unlock(&x->lock);
                return r;
        }
        if (!export_readonly(en->e)) {
                pthread_mutex_unlock(&x->lock);
                return err_set(err, errlen, -EMEDIUMTYPE,
                               "export '%s' is writable: its overlay holds writes against manifest %s; detach it and "
                               "attach the new image with a new overlay",
                               name, en->se.manifest);
        }
        r = state_export_copy(&en->se, &se);
        if (r < 0) {
                pthread_mutex_unlock(&x->lock);
                return r;
        }
        en->attaching = true;
        pthread_mutex_unlock(&x->lock);

        r = open_entry(x, &se, false, &e, err, errlen);
        pthread_mutex_lock(&x->lock);
        en->attaching = false;
        old = en->e;
        if (r >= 0 && digest_equal(export_manifest_digest(e), export_manifest_digest(old))) {
                pthread_mutex_unlock(&x->lock);
                export_unref(e);
                state_export_clear(&se);
                *ret_changed = false;
                log_info("Export %s: %s still names manifest %s", name, export_ref_text(old),
                         digest_to_string(export_manifest_digest(old), ds));
                return 0;
        }
        if (r >= 0 && (r = set_pin(en, e)) < 0)
                export_unref(e);
        if (r < 0) {
                pthread_mutex_unlock(&x->lock);
                state_export_clear(&se);
                return r;
        }
        en->e = e;              /* new clients get the new image from now on */
        pthread_mutex_unlock(&x->lock);
        save(x);
        log_info("Export %s: updated to manifest %s (was %s)", name, en->se.manifest,
                 digest_to_string(export_manifest_digest(old), ds));
        started(x, e, se.profile, NULL);
        state_export_clear(&se);
        drain(x, old, name, timeout_s);
        export_unref(old);
        *ret_changed = true;
        return 0;
}

struct export *exports_get(struct exports *x, const char *name) {
        struct export *e = NULL;

        pthread_mutex_lock(&x->lock);
        for (struct entry *en = x->head; en; en = en->next)
                if (en->e && (name[0] == 0 || strcmp(en->se.name, name) == 0)) {
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

void exports_for_each_failed(struct exports *x, void (*fn)(const struct state_export *se, const char *why, void *ctx),
                             void *ctx) {
        struct state_export *v = NULL;
        char **why = NULL;
        size_t n = 0, cap = 0;

        pthread_mutex_lock(&x->lock);
        for (struct entry *en = x->head; en; en = en->next)
                cap += !en->e && en->why;
        if (cap) {
                v = calloc(cap, sizeof *v);
                why = calloc(cap, sizeof *why);
        }
        for (struct entry *en = x->head; v && why && en; en = en->next)
                if (!en->e && en->why && state_export_copy(&en->se, &v[n]) >= 0) {
                        why[n] = strdup(en->why);
                        n++;
                }
        pthread_mutex_unlock(&x->lock);
        for (size_t i = 0; i < n; i++) {
                fn(&v[i], why[i] ? why[i] : "", ctx);
                free(why[i]);
        }
        free(why);
        state_exports_free(v, n);
}

unsigned exports_count(struct exports *x) {
        unsigned n = 0;

        pthread_mutex_lock(&x->lock);
        for (struct entry *en = x->head; en; en = en->next)
                n += en->e != NULL;
        pthread_mutex_unlock(&x->lock);
        return n;
}
