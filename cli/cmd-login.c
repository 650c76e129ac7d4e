/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hocus-blk login REGISTRY / logout REGISTRY|--all: the containers auth
 * file, written where and as skopeo and podman write it (registry-client/
 * auth-file.h), so each reads what the other stored. login checks the
 * credentials against the registry first (GET /v2/, and a token without
 * scope where the registry hands out tokens), as `skopeo login` does.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "cli.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"
#include "registry-client/auth-file.h"
#include "registry-client/credentials.h"
#include "registry-client/ref.h"

#define PASSWORD_STDIN_MAX (1u << 20)

static void login_help(void) {
        printf("Usage: hocus-blk login REGISTRY [-u USER] [-p PASS | --password-stdin] [OPTIONS]\n\n"
               "Check credentials against REGISTRY (HOST[:PORT], optionally /NAMESPACE for\n"
               "credentials that only apply there) and store them in the containers auth file,\n"
               "where skopeo and podman read and write it: --authfile, else $REGISTRY_AUTH_FILE,\n"
               "else ${XDG_RUNTIME_DIR}/containers/auth.json, else /run/containers/UID/auth.json\n"
               "(mode 0600). Every hocus-blk command and blockd read it from there.\n\n"
               "Options:\n"
               "  -u, --username USER  user name\n"
               "  -p, --password PASS  password or token; other local users can see it while the\n"
               "                       program starts: prefer --password-stdin or --creds-file\n"
               "  --password-stdin     read the password (or token) from stdin\n"
               "  (without a password, login asks for it when stdin is a terminal)\n"
               "  (or --creds-file FILE with USER:PASS on its first line)\n\n");
        cli_common_help();
}

static void logout_help(void) {
        printf("Usage: hocus-blk logout REGISTRY | --all [OPTIONS]\n\n"
               "Remove the credentials for REGISTRY (or every registry's, with --all) from the\n"
               "auth file login writes (see 'hocus-blk login --help'). Credential helpers and\n"
               "other keys of the file are left alone.\n\n"
               "Options:\n"
               "  --all                every registry\n\n");
        cli_common_help();
}

/* Check user:pass against the registry: open it as a source without a
 * repository (GET /v2/ with the credentials). Logs the failure. */
static int verify(const char *key, const char *pair) {
        struct source_options o = common_source_options(&arg_common);
        struct image_ref *ref = calloc(1, sizeof *ref);
        struct blob_source *src = NULL;
        char err[512] = "";
        int r;

        if (!ref)
                return log_error_errno(ENOMEM, "Out of memory");
        ref->transport = REF_DOCKER;
        ref->registry = strndup(key, strcspn(key, "/"));
        ref->repository = strdup("");
        ref->text = strdup(key);
        if (!ref->registry || !ref->repository || !ref->text) {
                image_ref_free(ref);
                return log_error_errno(ENOMEM, "Out of memory");
        }
        o.creds = pair;
        o.auth_file = NULL;
        r = registry_open(ref, &o, &src, err, sizeof err);
        if (r < 0) {
                log_error_errno(r, "Login to %s failed: %s", ref->registry, err[0] ? err : strerror(-r));
                image_ref_free(ref);
                return r;
        }
        source_free(src);       /* frees ref */
        return 0;
}

/* The whole of stdin, without the line end. */
static int read_password_stdin(char **ret) {
        _cleanup_free_ char *buf = malloc(PASSWORD_STDIN_MAX + 1);
        size_t used = 0;

        if (!buf)
                return -ENOMEM;
        for (;;) {
                ssize_t n = read(STDIN_FILENO, buf + used, PASSWORD_STDIN_MAX - used);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return log_error_errno(errno, "--password-stdin: cannot read stdin: %m");
                if (n == 0)
                        break;
                used += (size_t) n;
                if (used == PASSWORD_STDIN_MAX)
                        return log_error_errno(E2BIG, "--password-stdin: more than 1 MiB on stdin");
        }
        while (used && (buf[used - 1] == '\n' || buf[used - 1] == '\r'))
                used--;
        buf[used] = 0;
        if (!used)
                return log_error_errno(EINVAL, "--password-stdin: stdin is empty");
        *ret = TAKE_PTR(buf);
        return 0;
}

/* Ask on the terminal, without echo (as skopeo login does). */
static int prompt_password(char **ret) {
        struct termios old, quiet;
        char *line = NULL;
        size_t cap = 0;
        ssize_t n;

        if (tcgetattr(STDIN_FILENO, &old) < 0)
                return -errno;
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t) ECHO;
        /* Echo off before the prompt, so that nothing typed after it shows. */
        (void) tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
        fputs("Password: ", stderr);
        fflush(stderr);
        n = getline(&line, &cap, stdin);
        (void) tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
        fputc('\n', stderr);
        if (n <= 0) {
                free(line);
                return -EINVAL;
        }
        line[strcspn(line, "\r\n")] = 0;
        *ret = line;
        return 0;
}

int cmd_login(int argc, char **argv) {
        static const struct option options[] = {
                { "username", required_argument, NULL, 'u' },
                { "password", required_argument, NULL, 'p' },
                { "password-stdin", no_argument, NULL, 'S' },
                { NULL, 0, NULL, 0 },
        };
        _cleanup_free_ char *user = NULL, *pass = NULL, *pair = NULL;
        struct credentials cf = { 0 };
        char key[1024], path[4096], err[512] = "";
        bool from_stdin = false;
        int c, r;

        while ((c = cli_getopt(argc, argv, COMMON_SHORT_OPTIONS "u:p:", cli_options(options))) >= 0) {
                switch (c) {
                case 'u':
                        free(user);
                        user = strdup(optarg);
                        if (!user)
                                return log_error_errno(ENOMEM, "Out of memory");
                        break;
                case 'p':
                        free(pass);
                        pass = strdup(optarg);
                        if (!pass)
                                return log_error_errno(ENOMEM, "Out of memory");
                        /* Out of /proc/PID/cmdline as soon as we can. */
                        memset(optarg, 'x', strlen(optarg));
                        break;
                case 'S':
                        from_stdin = true;
                        break;
                default:
                        r = cli_other_option("login", c, optarg, login_help);
                        if (r <= 0)
                                return r;
                }
        }
        if (argc - optind != 1)
                return cli_usage_error("login", "login takes one REGISTRY");
        if (auth_file_key(argv[optind], key, sizeof key) < 0)
                return cli_usage_error("login", "'%s' is not a registry (HOST[:PORT][/NAMESPACE])", argv[optind]);
        if (from_stdin && pass)
                return cli_usage_error("login", "give --password or --password-stdin, not both");
        if (from_stdin) {
                r = read_password_stdin(&pass);
                if (r < 0)
                        return r;
        }
        /* --creds / --creds-file / $HOCUS_BLK_CREDS fill what -u/-p left. */
        if (!user || !pass) {
                struct source_options o = common_source_options(&arg_common);
                if (o.creds && credentials_from_pair(o.creds, &cf) == 0) {
                        if (!user)
                                user = TAKE_PTR(cf.username);
                        if (!pass)
                                pass = TAKE_PTR(cf.password);
                }
                credentials_done(&cf);
        }
        if (!user)
                return cli_usage_error("login", "login needs a user name: -u USER (or --creds-file FILE)");
        if (!pass && isatty(STDIN_FILENO) == 1)
                (void) prompt_password(&pass);
        if (!pass)
                return cli_usage_error("login",
                                       "login needs a password: --password-stdin, -p PASS, or --creds-file FILE");
        if (!*user || strchr(user, ':'))
                return cli_usage_error("login", "a user name must be non-empty and without ':'");
        if (asprintf(&pair, "%s:%s", user, pass) < 0)
                return log_error_errno(ENOMEM, "Out of memory");
        r = verify(key, pair);
        explicit_bzero(pair, strlen(pair));
        if (r < 0)
                goto out;
        auth_file_write_path(arg_common.source.auth_file, path, sizeof path);
        r = auth_file_store(path, key, user, pass, err, sizeof err);
        if (r < 0) {
                log_error_errno(r, "Cannot store the credentials: %s", err[0] ? err : strerror(-r));
                goto out;
        }
        printf("Login Succeeded! (%s in %s)\n", key, path);
out:
        explicit_bzero(pass, strlen(pass));
        return r;
}

int cmd_logout(int argc, char **argv) {
        static const struct option options[] = {
                { "all", no_argument, NULL, 'A' },
                { NULL, 0, NULL, 0 },
        };
        char key[1024], path[4096], err[512] = "";
        bool all = false;
        int c, r;

        while ((c = cli_getopt(argc, argv, COMMON_SHORT_OPTIONS, cli_options(options))) >= 0) {
                switch (c) {
                case 'A':
                        all = true;
                        break;
                default:
                        r = cli_other_option("logout", c, optarg, logout_help);
                        if (r <= 0)
                                return r;
                }
        }
        if (argc - optind != (all ? 0 : 1))
                return cli_usage_error("logout", "logout takes one REGISTRY, or --all");
        if (!all && auth_file_key(argv[optind], key, sizeof key) < 0)
                return cli_usage_error("logout", "'%s' is not a registry (HOST[:PORT][/NAMESPACE])", argv[optind]);
        auth_file_write_path(arg_common.source.auth_file, path, sizeof path);
        r = auth_file_remove(path, all ? NULL : key, err, sizeof err);
        if (r == -ENOENT && !all)
                return log_error_errno(r, "Not logged in to %s: %s", key, err);
        if (r == -ENOENT)
                r = 0;
        if (r < 0)
                return log_error_errno(r, "Cannot log out: %s", err[0] ? err : strerror(-r));
        if (all)
                printf("Removed every registry's credentials from %s\n", path);
        else
                printf("Removed the credentials for %s from %s\n", key, path);
        return 0;
}
