/* SPDX-License-Identifier: Apache-2.0 */
/* hocus-blk: the command line. One cmd-*.c per subcommand. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "common/log.h"

static const struct {
        const char *name;
        int (*fn)(int argc, char **argv);
        const char *summary;
} commands[] = {
        { "push", cmd_push, "chunk a raw disk image and store it under a reference" },
        { "inspect", cmd_inspect, "show an image's manifest and index" },
        { "export", cmd_export, "write an image back out as a sparse raw file" },
        { "pull", cmd_pull, "fetch every chunk of an image into the local chunk store" },
        { "cache", cmd_cache, "chunk store: stats, verify, gc" },
        { "attach", cmd_attach, "serve an image from a running blockd" },
        { "detach", cmd_detach, "stop serving an export" },
        { "ls", cmd_ls, "list a running blockd's exports" },
        { "stats", cmd_stats, "per-export counters of a running blockd" },
        { "mount", cmd_mount, "mount the filesystem in an image (lazily, read-only by default)" },
        { "umount", cmd_umount, "undo hocus-blk mount" },
        { "record", cmd_record, "record a boot profile: run a command against a cold image" },
        { "profile", cmd_profile, "boot profiles: push, show, get, merge" },
        { "repack", cmd_repack, "rewrite an image's packs in boot-profile order" },
        { "login", cmd_login, "check and store registry credentials (the containers auth file)" },
        { "logout", cmd_logout, "remove stored registry credentials" },
};

static void usage(FILE *f) {
        fprintf(f, "Usage: hocus-blk COMMAND [OPTIONS] ...\n\n"
                   "Lazy-pulling block storage: disk images as content-addressed chunks in OCI registries.\n\n"
                   "Commands:\n");
        for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
                fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
        fprintf(f, "\nReferences: oci:DIR[:TAG] (an OCI image layout) or docker://HOST[:PORT]/REPO[:TAG|@sha256:HEX].\n"
                   "Run 'hocus-blk COMMAND --help' for a command's options.\n");
}

int main(int argc, char **argv) {
        const struct opt_table common = COMMON_OPTION_TABLE(&arg_common), *const tables[] = { &common };

        log_set_ident("hocus-blk");
        /* --creds out of sight of ps before anything else. */
        if (opt_hide_secrets(argc, argv, tables, 1) < 0) {
                log_error("Out of memory");
                return 1;
        }
        if (argc < 2) {
                usage(stderr);
                return 2;
        }
        if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
                usage(stdout);
                return 0;
        }
        if (!strcmp(argv[1], "--version")) {
                printf("hocus-blk %s\n", HOCUS_VERSION);
                return 0;
        }
        for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
                if (!strcmp(argv[1], commands[i].name))
                        return cli_exit_status(commands[i].fn(argc - 1, argv + 1));
        log_error("Unknown command '%s' (see 'hocus-blk --help')", argv[1]);
        return 2;
}
