/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hocus-blk export REF DEST: the raw image back out, sparse and
 * byte-identical to what was pushed. The bulk engine moves each unique
 * chunk once (store hits are local reads; misses are fetched in coalesced
 * ranges, verified and inserted) and write_chunk puts it wherever the map
 * uses it.
 * A regular DEST is written under a temp name and renamed at the end, so a
 * failed export never leaves a file that looks complete.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "json-out.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"
#include "registry-client/bulk.h"

static void help(void) {
        printf("Usage: hocus-blk export REF DEST [OPTIONS]\n\n"
               "Write the image REF to DEST as a raw image: a sparse regular file (created\n"
               "under a temp name and renamed when complete) or an existing block device.\n"
               "Chunks are read through the local chunk store and verified.\n\n"
               "Options:\n"
               "  --no-cache           bypass the chunk store\n"
               "  --threads N          threads decoding, verifying and writing chunks (default:\n"
               "                       one per CPU, at most 8)\n"
               "  --json               print the result as a JSON object\n\n");
        cli_common_help();
}

struct export_job {
        const struct blkindex *x;
        int fd;
        bool blockdev;
        uint64_t *first;                /* unique chunk -> its first logical chunk, or UINT64_MAX */
        uint64_t *next;                 /* logical chunk -> the next one with the same unique chunk */
        _Atomic uint64_t bad_chunk;     /* a logical chunk, for the error message */
        _Atomic int write_err;          /* writing DEST failed with this */
};

/* A verified chunk: write it wherever the map uses it. Called by the
 * engine's decoder threads, several at once. */
static int write_chunk(void *userdata, uint32_t k, int r, const void *stored, const void *raw) {
        struct export_job *j = userdata;
        const struct blkindex *x = j->x;

        (void) stored;
        j->bad_chunk = j->first[k];
        if (r < 0)
                return r;
        for (uint64_t i = j->first[k]; i != UINT64_MAX; i = j->next[i]) {
                uint32_t len = blkindex_chunk_len(x, i);

                if (len != x->chunks[k].raw_len)
                        return -EBADMSG;
                j->bad_chunk = i;
                r = pwrite_all(j->fd, raw, len, i * x->chunk_size);
                if (r < 0) {
                        j->write_err = r;
                        return r;
                }
        }
        return 0;
}

/* Index the map by unique chunk: the chunks to move (each once), and for
 * each the logical chunks that use it. */
static int plan_export(struct export_job *j, uint32_t **ret_chunks, uint32_t *ret_n) {
        const struct blkindex *x = j->x;
        _cleanup_free_ uint64_t *last = malloc(MAX(x->n_chunks, 1u) * sizeof *last);
        uint32_t *chunks = malloc(MAX(x->n_chunks, 1u) * sizeof *chunks), n = 0;

        j->first = malloc(MAX(x->n_chunks, 1u) * sizeof *j->first);
        j->next = malloc(MAX(x->n_map, 1u) * sizeof *j->next);
        if (!last || !chunks || !j->first || !j->next) {
                free(chunks);
                return -ENOMEM;
        }
        for (uint32_t k = 0; k < x->n_chunks; k++)
                j->first[k] = last[k] = UINT64_MAX;
        for (uint64_t i = 0; i < x->n_map; i++) {
                uint32_t k = x->map[i];

                j->next[i] = UINT64_MAX;
                if (k == BLKINDEX_ZERO)
                        continue;
                if (last[k] == UINT64_MAX) {
                        j->first[k] = i;
                        chunks[n++] = k;
                } else {
                        j->next[last[k]] = i;
                }
                last[k] = i;
        }
        *ret_chunks = chunks;
        *ret_n = n;
        return 0;
}

/* A block device may hold old data where the image has zero chunks:
 * zero them, a run of zero chunks at a time. */
static int zero_blockdev(int fd, const struct blkindex *x) {
        for (uint64_t i = 0; i < x->n_map;) {
                uint64_t e = i;

                if (x->map[i] != BLKINDEX_ZERO) {
                        i++;
                        continue;
                }
                while (e < x->n_map && x->map[e] == BLKINDEX_ZERO)
                        e++;
                uint64_t range[2] = { i * x->chunk_size, MIN(e * x->chunk_size, x->image_size) - i * x->chunk_size };
                if (ioctl(fd, BLKZEROOUT, range) < 0)
                        return -errno;
                i = e;
        }
        return 0;
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
                { "json", no_argument, NULL, 'j' },
                { NULL, 0, NULL, 0 },
        };
        struct blob_source *src = NULL;
        struct image *img = NULL;
        struct chunkstore *store = NULL;
        _cleanup_free_ char *tmp = NULL;
        _cleanup_free_ uint32_t *chunks = NULL;
        struct export_job j = { .fd = -EBADF };
        struct bulk_options o = { .flags = BULK_READ_STORED, .gap_max = BULK_DEFAULT_GAP, .progress = "export",
                                  .chunk = write_chunk, .userdata = &j };
        struct bulk_result res;
        bool use_cache = true, json = false;
        uint32_t n_chunks = 0;
        uint64_t t0, v;
        int c, r;

        while ((c = cli_getopt(argc, argv, COMMON_SHORT_OPTIONS, cli_options(options))) >= 0) {
                switch (c) {
                case 'n':
                        use_cache = false;
                        break;
                case 'j':
                        json = true;
                        break;
                case 't':
                        if (parse_size(optarg, &v) < 0 || v < 1 || v > 64)
                                return cli_usage_error("export", "--threads wants 1 to 64");
                        o.decoders = (unsigned) v;
                        break;
                default:
                        r = cli_other_option("export", c, optarg, help);
                        if (r <= 0)
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

        j.x = img->index;
        t0 = now_ns();
        r = plan_export(&j, &chunks, &n_chunks);
        if (r < 0) {
                log_error_errno(r, "Cannot plan the export: %m");
                goto out;
        }
        if (j.blockdev) {
                r = zero_blockdev(j.fd, j.x);
                if (r < 0) {
                        log_error_errno(r, "Cannot zero the holes of '%s': %m", dest);
                        goto out;
                }
        }
        r = bulk_run(img, store, chunks, n_chunks, &o, &res);
        if (r < 0) {
                if (j.write_err)
                        log_error_errno(r, "Export of '%s' failed: cannot write '%s': %s", argv[optind], dest,
                                        strerror(-r));
                else if (r == -EBADMSG)
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

                if (json) {
                        struct json_object *jo = json_object_new_object();

                        json_add_str(jo, "reference", argv[optind]);
                        json_add_str(jo, "destination", dest);
                        json_add_u64(jo, "image_size", img->index->image_size);
                        json_add_u64(jo, "fetched_chunks", res.chunks_fetched);
                        json_add_u64(jo, "fetched_bytes", res.stored_fetched);
                        json_add_u64(jo, "cached_chunks", res.chunks_read);
                        json_add_double(jo, "seconds", secs);
                        cli_json_print(jo, false);
                } else
                        printf("Exported %s to %s: %s in %.2f s; fetched %s (%llu chunks), %llu chunks from the cache, %s/s\n",
                               argv[optind], dest, format_size(img->index->image_size, a, sizeof a), secs,
                               format_size(res.stored_fetched, b, sizeof b), (unsigned long long) res.chunks_fetched,
                               (unsigned long long) res.chunks_read,
                               format_size(secs > 0 ? (uint64_t) ((double) img->index->image_size / secs) : 0, cbuf,
                                           sizeof cbuf));
        }
        r = 0;
out:
        if (j.fd >= 0)
                close(j.fd);
        if (tmp)
                (void) unlink(tmp);
        free(j.first);
        free(j.next);
        chunkstore_free(store);
        image_free(img);
        source_free(src);
        return r;
}
