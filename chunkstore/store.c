/* SPDX-License-Identifier: Apache-2.0 */
#include "store.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"

#define STORE_MARKER "hocus-blk-cache"
#define STORE_MARKER_TEXT "hocus-blk chunk store v1\n"
/* Refresh an entry's recency at most this often (seconds). */
#define TOUCH_INTERVAL 60
/* Temp files older than this are debris from a crashed writer. */
#define STALE_TMP_SECONDS 3600
/* While full, a put looks for room at most this often (ns). */
#define FULL_RECHECK_NS 1000000000ull

struct chunkstore {
        char *dir;
        int dirfd;              /* DIR/chunks */
        int tmpfd;              /* DIR/tmp */
        uint64_t max_bytes;
        _Atomic uint64_t usage; /* estimate, only kept with max_bytes */
        _Atomic uint64_t added; /* bytes this process put, ever (with max_bytes) */
        pthread_mutex_t gc_lock;
        void (*evict_hook)(const struct digest *id, void *u);
        void *evict_u;
        _Atomic bool full;              /* a put met ENOSPC, no room seen since */
        _Atomic uint64_t full_free;     /* free bytes of the filesystem then */
        _Atomic uint64_t full_checked;  /* monotonic ns of the last look for room */
        _Atomic int shards[256];        /* DIR/chunks/XX opened once (0: not yet), for puts */
};

/* "ab/abcdef..." for an id. buf: at least 68 bytes. */
static void entry_path(const struct digest *id, char *buf) {
        char hex[DIGEST_HEX_LEN + 1];

        digest_to_hex(id, hex);
        buf[0] = hex[0];
        buf[1] = hex[1];
        buf[2] = '/';
        memcpy(buf + 3, hex, DIGEST_HEX_LEN + 1);
}

int chunkstore_open(const char *dir, uint64_t max_bytes, struct chunkstore **ret) {
        struct chunkstore *cs;
        _cleanup_close_ int top = -EBADF;
        _cleanup_free_ char *marker = NULL;
        int r;

        r = mkdir_p(dir, 0755);
        if (r < 0)
                return r;
        top = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (top < 0)
                return -errno;
        r = read_file_all(top, STORE_MARKER, 4096, &marker, NULL);
        if (r == -ENOENT) {
                r = write_file_atomic(top, STORE_MARKER, STORE_MARKER_TEXT, strlen(STORE_MARKER_TEXT), 0644);
                if (r < 0)
                        return r;
        } else if (r < 0) {
                return r;
        } else if (strcmp(marker, STORE_MARKER_TEXT) != 0) {
                return -EPROTONOSUPPORT;
        }
        if ((mkdirat(top, "chunks", 0755) < 0 && errno != EEXIST) ||
            (mkdirat(top, "tmp", 0755) < 0 && errno != EEXIST))
                return -errno;

        cs = calloc(1, sizeof *cs);
        if (!cs)
                return -ENOMEM;
        cs->dirfd = cs->tmpfd = -EBADF;
        pthread_mutex_init(&cs->gc_lock, NULL);
        cs->dir = strdup(dir);
        cs->dirfd = openat(top, "chunks", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        cs->tmpfd = openat(top, "tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (!cs->dir || cs->dirfd < 0 || cs->tmpfd < 0) {
                r = cs->dir ? -errno : -ENOMEM;
                chunkstore_free(cs);
                return r;
        }
        cs->max_bytes = max_bytes;
        if (max_bytes) {
                struct chunkstore_stats st;

                r = chunkstore_stats(cs, &st);
                if (r < 0) {
                        chunkstore_free(cs);
                        return r;
                }
                cs->usage = st.disk_bytes;
        }
        *ret = cs;
        return 0;
}

void chunkstore_free(struct chunkstore *cs) {
        if (!cs)
                return;
        if (cs->dirfd >= 0)
                close(cs->dirfd);
        if (cs->tmpfd >= 0)
                close(cs->tmpfd);
        for (size_t i = 0; i < ARRAY_SIZE(cs->shards); i++)
                if (cs->shards[i] > 0)
                        close(cs->shards[i]);
        pthread_mutex_destroy(&cs->gc_lock);
        free(cs->dir);
        free(cs);
}

const char *chunkstore_dir(const struct chunkstore *cs) {
        return cs->dir;
}

int chunkstore_subdir(const struct chunkstore *cs, const char *name, bool create) {
        _cleanup_free_ char *path = NULL;
        int fd;

        if (asprintf(&path, "%s/%s", cs->dir, name) < 0)
                return -ENOMEM;
        if (create && mkdir(path, 0755) < 0 && errno != EEXIST)
                return -errno;
        fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        return fd < 0 ? -errno : fd;
}

void chunkstore_set_evict_hook(struct chunkstore *cs, void (*fn)(const struct digest *id, void *u), void *u) {
        cs->evict_hook = fn;
        cs->evict_u = u;
}

/* Free bytes of the store's filesystem for an unprivileged writer; 0 when
 * unknown. */
static uint64_t fs_free(struct chunkstore *cs) {
        struct statvfs sv;

        if (fstatvfs(cs->dirfd, &sv) < 0)
                return 0;
        return (uint64_t) sv.f_bavail * sv.f_frsize;
}

static uint64_t mono_ns(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000ull + (uint64_t) ts.tv_nsec;
}

/* A put met ENOSPC (or EDQUOT): remember how much the filesystem had free. */
static void enter_full(struct chunkstore *cs) {
        atomic_store(&cs->full_free, fs_free(cs));
        atomic_store(&cs->full_checked, mono_ns());
        if (!atomic_exchange(&cs->full, true))
                log_debug("chunk store %s: the filesystem is full", cs->dir);
}

bool chunkstore_full(struct chunkstore *cs) {
        return atomic_load(&cs->full);
}

bool chunkstore_room(struct chunkstore *cs, uint64_t need) {
        if (!atomic_load(&cs->full))
                return true;
        atomic_store(&cs->full_checked, mono_ns());
        if (fs_free(cs) < atomic_load(&cs->full_free) + need)
                return false;
        atomic_store(&cs->full, false);
        log_debug("chunk store %s: the filesystem has room again", cs->dir);
        return true;
}

/* Whether a put of len bytes may write: always, unless the store is full
 * and, looked at once a second at most, still is. */
static bool may_write(struct chunkstore *cs, size_t len) {
        if (!atomic_load(&cs->full))
                return true;
        if (mono_ns() - atomic_load(&cs->full_checked) < FULL_RECHECK_NS)
                return false;
        return chunkstore_room(cs, len);
}

void chunkstore_usage(struct chunkstore *cs, uint64_t *ret_used, uint64_t *ret_max) {
        *ret_used = cs->max_bytes ? atomic_load(&cs->usage) : 0;
        *ret_max = cs->max_bytes;
}

int chunkstore_has(struct chunkstore *cs, const struct digest *id) {
        char path[80];

        entry_path(id, path);
        if (faccessat(cs->dirfd, path, F_OK, AT_EACCESS) == 0)
                return 1;
        return errno == ENOENT ? 0 : -errno;
}

/* Refresh recency for LRU, cheaply: only when the mtime is stale. */
static void touch_fd(int fd, const struct stat *st) {
        struct timespec now;

        clock_gettime(CLOCK_REALTIME, &now);
        if (now.tv_sec - st->st_mtim.tv_sec >= TOUCH_INTERVAL)
                (void) futimens(fd, NULL);
}

int chunkstore_open_entry(struct chunkstore *cs, const struct digest *id, uint64_t *ret_size) {
        char path[80];
        struct stat st;
        int fd;

        entry_path(id, path);
        fd = openat(cs->dirfd, path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0) {
                int r = -errno;
                close(fd);
                return r;
        }
        touch_fd(fd, &st);
        if (ret_size)
                *ret_size = (uint64_t) st.st_size;
        return fd;
}

int chunkstore_verify_fd(int fd, const struct digest *id, size_t len) {
        struct digest d;
        uint64_t size;
        int r;

        r = digest_fd(fd, &d, &size);
        if (r < 0)
                return r;
        if (size != len || !digest_equal(&d, id))
                return -EBADMSG;
        return 0;
}

int chunkstore_drop(struct chunkstore *cs, const struct digest *id) {
        char path[80];

        entry_path(id, path);
        if (unlinkat(cs->dirfd, path, 0) < 0 && errno != ENOENT)
                return -errno;
        return 0;
}

int chunkstore_get(struct chunkstore *cs, const struct digest *id, void *buf, size_t len) {
        _cleanup_close_ int fd = -EBADF;
        struct digest d;
        uint64_t size;
        ssize_t n;
        char hex[DIGEST_HEX_LEN + 1];

        fd = chunkstore_open_entry(cs, id, &size);
        if (fd < 0)
                return fd;
        if (size == len) {
                n = pread_full(fd, buf, len, 0);
                if (n < 0)
                        return (int) n;
                if ((size_t) n == len) {
                        digest_compute(buf, len, &d);
                        if (digest_equal(&d, id))
                                return 0;
                }
        }
        log_debug("chunk store: entry %s is damaged (size %llu, want %zu), dropping it",
                  digest_to_hex(id, hex), (unsigned long long) size, len);
        (void) chunkstore_drop(cs, id);
        return -ENOENT;
}

/* Write bytes into an unnamed file in dir and return its fd, or fall back
 * to a named temp file in tmp/ (ret_tmpname set) where O_TMPFILE is not
 * supported. */
static int write_temp(struct chunkstore *cs, int shardfd, const void *buf, size_t len, char *ret_tmpname,
                      size_t namelen) {
        _cleanup_close_ int fd = -EBADF;
        int r;

        ret_tmpname[0] = 0;
        fd = openat(shardfd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0444);
        if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
                char sfx[48];

                tmp_suffix(sfx, sizeof sfx);
                snprintf(ret_tmpname, namelen, "chunk%s", sfx);
                fd = openat(cs->tmpfd, ret_tmpname, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
                if (fd < 0)
                        ret_tmpname[0] = 0;
        }
        if (fd < 0)
                return -errno;
        r = write_all(fd, buf, len);
        if (r < 0) {
                if (ret_tmpname[0])
                        (void) unlinkat(cs->tmpfd, ret_tmpname, 0);
                return r;
        }
        return TAKE_FD(fd);
}

/* The shard directory of path ("ab/..."), created if needed and opened
 * once per store: a put is then no directory lookup and no open of its
 * own. The fd stays the store's; callers do not close it. */
static int open_shard(struct chunkstore *cs, const char *path) {
        char shard[3] = { path[0], path[1], 0 };
        unsigned i = (unsigned) strtoul(shard, NULL, 16);
        int fd, none = 0;

        assert(i < ARRAY_SIZE(cs->shards));
        fd = atomic_load(&cs->shards[i]);
        if (fd > 0)
                return fd;
        fd = openat(cs->dirfd, shard, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0 && errno == ENOENT) {
                if (mkdirat(cs->dirfd, shard, 0755) < 0 && errno != EEXIST)
                        return -errno;
                fd = openat(cs->dirfd, shard, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        }
        if (fd < 0)
                return -errno;
        if (fd == 0) {
                /* 0 marks "not opened yet": move it. */
                int moved = fcntl(fd, F_DUPFD_CLOEXEC, 3);

                close(fd);
                if (moved < 0)
                        return -errno;
                fd = moved;
        }
        if (!atomic_compare_exchange_strong(&cs->shards[i], &none, fd)) {
                /* Another thread was first: use its fd. */
                close(fd);
                fd = none;
        }
        return fd;
}

/* Count an entry of len allocated bytes in; over the bound, evict. */
static void account_put(struct chunkstore *cs, uint64_t len) {
        uint64_t usage;

        if (!cs->max_bytes)
                return;
        atomic_fetch_add(&cs->added, len);
        usage = atomic_fetch_add(&cs->usage, len) + len;
        if (usage <= cs->max_bytes)
                return;
        /* Over the bound: evict down to 90% so eviction is not run on
         * every put. One thread evicts at a time; one that crossed the
         * bound meanwhile waits and looks again (carrying on would leave
         * its entry over the bound: the running pass may have listed the
         * store before it was linked). */
        pthread_mutex_lock(&cs->gc_lock);
        if (atomic_load(&cs->usage) > cs->max_bytes)
                (void) chunkstore_gc(cs, cs->max_bytes - cs->max_bytes / 10, NULL);
        pthread_mutex_unlock(&cs->gc_lock);
}

/* Write and link the entry at path; fills *ret_blocks with the bytes it
 * occupies and, when ret_fd is given, *ret_fd with a read-only fd on the
 * linked entry (-EBADF if it cannot be opened: the entry is in anyway).
 * 0, -EEXIST, -errno. */
static int put_entry(struct chunkstore *cs, const char *path, const void *buf, size_t len, uint64_t *ret_blocks,
                     int *ret_fd) {
        char tmpname[96], procpath[64];
        _cleanup_close_ int fd = -EBADF;
        struct stat st;
        int shard, r;

        shard = open_shard(cs, path);
        if (shard < 0)
                return shard;
        fd = write_temp(cs, shard, buf, len, tmpname, sizeof tmpname);
        if (fd < 0)
                return fd;
        *ret_blocks = fstat(fd, &st) == 0 ? (uint64_t) st.st_blocks * 512 : len;
        if (tmpname[0]) {
                /* Named fallback: link (not rename) so an existing entry
                 * is never replaced, then drop the temp name. */
                r = linkat(cs->tmpfd, tmpname, cs->dirfd, path, 0) < 0 ? -errno : 0;
                (void) unlinkat(cs->tmpfd, tmpname, 0);
                if (r == 0 && ret_fd)
                        *ret_fd = openat(cs->dirfd, path, O_RDONLY | O_CLOEXEC);
        } else {
                snprintf(procpath, sizeof procpath, "/proc/self/fd/%d", fd);
                r = linkat(AT_FDCWD, procpath, cs->dirfd, path, AT_SYMLINK_FOLLOW) < 0 ? -errno : 0;
                /* The same inode, read-only: no lookup of the new name. */
                if (r == 0 && ret_fd)
                        *ret_fd = open(procpath, O_RDONLY | O_CLOEXEC);
        }
        if (ret_fd && *ret_fd < 0)
                *ret_fd = -EBADF;
        return r;
}

int chunkstore_put_verified(struct chunkstore *cs, const struct digest *id, const void *buf, size_t len) {
        return chunkstore_put_verified_fd(cs, id, buf, len, NULL);
}

int chunkstore_put_verified_fd(struct chunkstore *cs, const struct digest *id, const void *buf, size_t len,
                               int *ret_fd) {
        char path[80];
        uint64_t blocks = 0;
        int r;

        if (ret_fd)
                *ret_fd = -EBADF;
        entry_path(id, path);
        if (faccessat(cs->dirfd, path, F_OK, AT_EACCESS) == 0)
                return 0;
        if (!may_write(cs, len))
                return -ENOSPC;
        r = put_entry(cs, path, buf, len, &blocks, ret_fd);
        if (r == -EEXIST)
                return 0;
        if (r == -ENOSPC || r == -EDQUOT) {
                enter_full(cs);
                return -ENOSPC;
        }
        if (r < 0)
                return r;
        atomic_store(&cs->full, false);
        account_put(cs, blocks);
        return 0;
}

int chunkstore_put(struct chunkstore *cs, const struct digest *id, const void *buf, size_t len) {
        struct digest d;

        digest_compute(buf, len, &d);
        if (!digest_equal(&d, id))
                return -EBADMSG;
        return chunkstore_put_verified(cs, id, buf, len);
}

/* Call fn for every entry: shard fd, entry name, stat. Stops on fn < 0. */
static int for_each_entry(struct chunkstore *cs,
                          int (*fn)(int shardfd, const char *name, const struct stat *st, void *u), void *u) {
        _cleanup_close_ int top = -EBADF;
        DIR *d;
        struct dirent *de;
        int r = 0;

        top = openat(cs->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (top < 0)
                return -errno;
        d = fdopendir(TAKE_FD(top));
        if (!d)
                return -errno;
        while (r >= 0 && (de = readdir(d))) {
                int sfd;
                DIR *sd;
                struct dirent *e;

                if (strlen(de->d_name) != 2 || de->d_name[0] == '.')
                        continue;
                sfd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (sfd < 0)
                        continue;
                sd = fdopendir(sfd);
                if (!sd) {
                        close(sfd);
                        continue;
                }
                while (r >= 0 && (e = readdir(sd))) {
                        struct stat st;

                        if (e->d_name[0] == '.')
                                continue;
                        if (fstatat(dirfd(sd), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
                                continue;
                        r = fn(dirfd(sd), e->d_name, &st, u);
                }
                closedir(sd);
        }
        closedir(d);
        return r;
}

static int stats_one(int shardfd _unused_, const char *name _unused_, const struct stat *st, void *u) {
        struct chunkstore_stats *s = u;

        s->entries++;
        s->bytes += (uint64_t) st->st_size;
        s->disk_bytes += (uint64_t) st->st_blocks * 512;
        return 0;
}

int chunkstore_stats(struct chunkstore *cs, struct chunkstore_stats *ret) {
        struct chunkstore_stats s = { 0 };
        int r;

        r = for_each_entry(cs, stats_one, &s);
        if (r < 0)
                return r;
        *ret = s;
        return 0;
}

struct verify_ctx {
        void (*bad)(const char *, const char *, void *);
        void *u;
        int n_bad;
        struct chunkstore_stats checked;
};

static int verify_one(int shardfd, const char *name, const struct stat *st, void *u) {
        struct verify_ctx *v = u;
        _cleanup_close_ int fd = -EBADF;
        struct digest want, got;
        const char *reason = NULL;
        int r;

        v->checked.entries++;
        v->checked.bytes += (uint64_t) st->st_size;
        if (digest_parse_hex(name, &want) < 0) {
                reason = "name is not a digest";
        } else {
                fd = openat(shardfd, name, O_RDONLY | O_CLOEXEC);
                if (fd < 0)
                        return 0; /* evicted meanwhile */
                r = digest_fd(fd, &got, NULL);
                if (r < 0)
                        reason = "unreadable";
                else if (!digest_equal(&want, &got))
                        reason = "content does not match its digest";
        }
        if (!reason)
                return 0;
        v->n_bad++;
        (void) unlinkat(shardfd, name, 0);
        if (v->bad)
                v->bad(name, reason, v->u);
        return 0;
}

int chunkstore_verify_all(struct chunkstore *cs, void (*bad)(const char *name, const char *reason, void *u),
                          void *userdata, struct chunkstore_stats *ret_checked) {
        struct verify_ctx v = { .bad = bad, .u = userdata };
        int r;

        r = for_each_entry(cs, verify_one, &v);
        if (r < 0)
                return r;
        if (ret_checked)
                *ret_checked = v.checked;
        return v.n_bad;
}

struct gc_entry {
        struct timespec mtime;
        uint64_t size, blocks;  /* st_size; allocated bytes */
        char path[68];
};

struct gc_list {
        struct gc_entry *e;
        size_t n, cap;
        uint64_t total;
};

static int gc_collect(int shardfd _unused_, const char *name, const struct stat *st, void *u) {
        struct gc_list *l = u;

        if (strlen(name) != DIGEST_HEX_LEN)
                return 0;
        if (l->n == l->cap) {
                size_t cap = l->cap ? l->cap * 2 : 4096;
                struct gc_entry *e = realloc(l->e, cap * sizeof *e);
                if (!e)
                        return -ENOMEM;
                l->e = e;
                l->cap = cap;
        }
        l->e[l->n].mtime = st->st_mtim;
        l->e[l->n].size = (uint64_t) st->st_size;
        l->e[l->n].blocks = (uint64_t) st->st_blocks * 512;
        snprintf(l->e[l->n].path, sizeof l->e[l->n].path, "%.2s/%s", name, name);
        l->n++;
        l->total += l->e[l->n - 1].blocks;
        return 0;
}

static int gc_cmp(const void *a, const void *b) {
        const struct gc_entry *x = a, *y = b;

        if (x->mtime.tv_sec != y->mtime.tv_sec)
                return x->mtime.tv_sec < y->mtime.tv_sec ? -1 : 1;
        if (x->mtime.tv_nsec != y->mtime.tv_nsec)
                return x->mtime.tv_nsec < y->mtime.tv_nsec ? -1 : 1;
        return strcmp(x->path, y->path);
}

/* Remove temp files a crashed writer left in tmp/. */
static void gc_tmp(struct chunkstore *cs) {
        _cleanup_close_ int fd = -EBADF;
        DIR *d;
        struct dirent *de;
        time_t now = time(NULL);

        fd = openat(cs->tmpfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return;
        d = fdopendir(TAKE_FD(fd));
        if (!d)
                return;
        while ((de = readdir(d))) {
                struct stat st;

                if (de->d_name[0] == '.')
                        continue;
                if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                    now - st.st_mtime > STALE_TMP_SECONDS)
                        (void) unlinkat(dirfd(d), de->d_name, 0);
        }
        closedir(d);
}

int chunkstore_gc(struct chunkstore *cs, uint64_t max_bytes, struct chunkstore_stats *ret_removed) {
        struct gc_list l = { 0 };
        struct chunkstore_stats removed = { 0 };
        uint64_t added = atomic_load(&cs->added);
        int r;

        gc_tmp(cs);
        r = for_each_entry(cs, gc_collect, &l);
        if (r < 0) {
                free(l.e);
                return r;
        }
        if (l.total > max_bytes) {
                qsort(l.e, l.n, sizeof *l.e, gc_cmp);
                for (size_t i = 0; i < l.n && l.total > max_bytes; i++) {
                        struct digest d;

                        if (unlinkat(cs->dirfd, l.e[i].path, 0) < 0)
                                continue;
                        l.total -= l.e[i].blocks;
                        removed.entries++;
                        removed.bytes += l.e[i].size;
                        removed.disk_bytes += l.e[i].blocks;
                        /* Its blocks stay taken while it is open: let
                         * whoever keeps entries open close it. */
                        if (cs->evict_hook && digest_parse_hex(l.e[i].path + 3, &d) == 0)
                                cs->evict_hook(&d, cs->evict_u);
                }
        }
        /* Puts that ran during the walk may be missing from it: count them
         * on top (an entry the walk did see is then counted twice, which
         * only makes the next pass come a little early). */
        if (cs->max_bytes)
                cs->usage = l.total + (atomic_load(&cs->added) - added);
        free(l.e);
        if (ret_removed)
                *ret_removed = removed;
        return 0;
}
