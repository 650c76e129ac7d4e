/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hocus-blk export REF DEST: the raw image back out, sparse and
 * byte-identical to what was pushed. Chunks come through the local chunk
 * store (hits are local reads, misses are fetched, verified and inserted).
 * A regular DEST is written under a temp name and renamed at the end, so a
 * failed export never leaves a file that looks complete.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chunkstore/codec.h"
#include "cli.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "common/progress.h"
#include "common/util.h"

static void help(void) {
        printf("Usage: hocus-blk export REF DEST [OPTIONS]\n\n"
               "Write the image REF to DEST as a raw image: a sparse regular file (created\n"
               "under a temp name and renamed when complete) or an existing block device.\n"
               "Chunks are read through the local chunk store and verified.\n\n"
               "Options:\n"
               "  --no-cache           bypass the chunk store\n"
               "  --threads N          parallel chunk readers (default 4)\n\n");
        cli_common_help();
}

struct export_job {
        struct image *img;
        struct chunkstore *store;
        int fd;
        bool blockdev;
        _Atomic uint64_t next;
        _Atomic uint64_t done_bytes;
        _Atomic uint64_t fetched;
        _Atomic uint64_t hits;
        _Atomic uint64_t misses;
        _Atomic int err;
        _Atomic uint64_t bad_chunk;
};

static void *export_worker(void *arg) {
        struct export_job *j = arg;
        const struct blkindex *x = j->img->index;
        void *buf = malloc(x->chunk_size), *scratch = malloc(codec_bound(x->chunk_size));

        if (!buf || !scratch) {
                j->err = -ENOMEM;
                goto out;
        }
        for (;;) {
                uint64_t i = atomic_fetch_add(&j->next, 1), fetched, off;
                uint32_t k, len;
                int r;

                if (i >= x->n_map || j->err)
                        break;
                off = i * x->chunk_size;
                len = blkindex_chunk_len(x, i);
                k = x->map[i];
                if (k == BLKINDEX_ZERO) {
                        if (j->blockdev) {
                                uint64_t range[2] = { off, len };
                                if (ioctl(j->fd, BLKZEROOUT, range) < 0) {
                                        j->err = -errno;
                                        break;
                                }
                        }
                        j->done_bytes += len;
                        continue;
                }
                r = image_get_chunk(j->img, j->store, k, buf, scratch, &fetched);
                if (r >= 0)
                        r = pwrite_all(j->fd, buf, len, off);
                if (r < 0) {
                        j->bad_chunk = i;
                        j->err = r;
                        break;
                }
                if (fetched) {
                        j->fetched += fetched;
                        j->misses++;
                } else {
                        j->hits++;
                }
                j->done_bytes += len;
        }
out:
        free(buf);
        free(scratch);
        return NULL;
}

/* Open DEST: a block device in place, else a temp file beside DEST. */
static int open_dest(const char *dest, char **ret_tmp, bool *ret_blockdev) {
        struct stat st;
        char sfx[48];
        _cleanup_free_ char *tmp = NULL;
        int fd;

        *ret_blockdev = false;
        *ret_tmp = NULL;
        if (stat(dest, &st) == 0) {
                if (S_ISBLK(st.st_mode)) {
                        fd = open(dest, O_WRONLY | O_CLOEXEC);
                        if (fd < 0)
                                return -errno;
                        *ret_blockdev = true;
                        return fd;
                }
                if (S_ISDIR(st.st_mode))
                        return -EISDIR;
        }
        tmp_suffix(sfx, sizeof sfx);
        if (asprintf(&tmp, "%s%s", dest, sfx) < 0)
                return -ENOMEM;
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0)
                return -errno;
        *ret_tmp = TAKE_PTR(tmp);
        return fd;
}

int cmd_export(int argc, char **argv) {
        static const struct option options[] = {
                { "no-cache", no_argument, NULL, 'n' },
                { "threads", required_argument, NULL, 't' },
                { NULL, 0, NULL, 0 },
        };
        struct blob_source *src = NULL;
        struct image *img = NULL;
        struct chunkstore *store = NULL;
        _cleanup_free_ char *tmp = NULL;
        struct export_job j = { .fd = -EBADF };
        pthread_t tids[64];
        unsigned threads = 4, started = 0;
        bool use_cache = true;
        struct progress p;
        uint64_t t0, v;
        int c, r;

        while ((c = getopt_long(argc, argv, COMMON_SHORT_OPTIONS, cli_options(options), NULL)) >= 0) {
                switch (c) {
                case 'n':
                        use_cache = false;
                        break;
                case 't':
                        if (parse_size(optarg, &v) < 0 || v < 1 || v > 64)
                                return cli_usage_error("export", "--threads wants 1 to 64");
                        threads = (unsigned) v;
                        break;
                case '?':
                        return cli_usage_error("export", "unknown option");
                default:
                        r = cli_common_option(c, optarg);
                        if (r == 2) {
                                help();
                                return 0;
                        }
                        if (r < 0)
                                return r;
                }
        }
        if (argc - optind != 2)
                return cli_usage_error("export", "export takes REF and DEST");
        const char *dest = argv[optind + 1];

        r = cli_open_image(argv[optind], &src, &img);
        if (r < 0)
                return r;
        if (use_cache) {
                r = cli_open_cache(0, &store);
                if (r < 0)
                        goto out;
        }
        j.fd = open_dest(dest, &tmp, &j.blockdev);
        if (j.fd < 0) {
                r = log_error_errno(j.fd, "Cannot write '%s': %m", dest);
                goto out;
        }
        if (j.blockdev) {
                uint64_t size;
                if (ioctl(j.fd, BLKGETSIZE64, &size) < 0 || size < img->index->image_size) {
                        r = log_error_errno(ENOSPC, "Block device '%s' is smaller than the image", dest);
                        goto out;
                }
        } else if (ftruncate(j.fd, (off_t) img->index->image_size) < 0) {
                r = log_error_errno(errno, "Cannot size '%s': %m", tmp);
                goto out;
        }

        j.img = img;
        j.store = store;
        t0 = now_ns();
        for (; started < threads; started++)
                if (pthread_create(&tids[started], NULL, export_worker, &j) != 0)
                        break;
        progress_start(&p, "export", img->index->image_size);
        while (started && j.done_bytes < img->index->image_size && !j.err) {
                usleep(100000);
                progress_update(&p, j.done_bytes);
        }
        for (unsigned i = 0; i < started; i++)
                pthread_join(tids[i], NULL);
        progress_end(&p);
        r = started ? j.err : -EAGAIN;
        if (r < 0) {
                if (r == -EBADMSG)
                        log_error("Chunk %llu of '%s' does not match its digest: refusing to write unverified data",
                                  (unsigned long long) j.bad_chunk, argv[optind]);
                else {
                        char why[512];
                        log_error_errno(r, "Export of '%s' failed at chunk %llu: %s", argv[optind],
                                        (unsigned long long) j.bad_chunk, source_strerror(src, r, why, sizeof why));
                }
                goto out;
        }
        if (fsync(j.fd) < 0) {
                r = log_error_errno(errno, "Cannot flush '%s': %m", dest);
                goto out;
        }
        if (tmp && rename(tmp, dest) < 0) {
                r = log_error_errno(errno, "Cannot rename '%s' to '%s': %m", tmp, dest);
                goto out;
        }
        if (tmp) {
                free(tmp);
                tmp = NULL;
        }
        {
                double secs = (double) (now_ns() - t0) / 1e9;
                char a[32], b[32], cbuf[32];

                printf("Exported %s to %s: %s in %.2f s; fetched %s (%llu chunks), %llu chunks from the cache, %s/s\n",
                       argv[optind], dest, format_size(img->index->image_size, a, sizeof a), secs,
                       format_size(j.fetched, b, sizeof b), (unsigned long long) j.misses,
                       (unsigned long long) j.hits,
                       format_size(secs > 0 ? (uint64_t) ((double) img->index->image_size / secs) : 0, cbuf, sizeof cbuf));
        }
        r = 0;
out:
        if (j.fd >= 0)
                close(j.fd);
        if (tmp)
                (void) unlink(tmp);
        chunkstore_free(store);
        image_free(img);
        source_free(src);
        return r;
}
