/* SPDX-License-Identifier: Apache-2.0 */
/*
 * linkem's command line: durations ("1ms"), rates in bits per second as tc
 * writes them ("1gbit"), HOST:PORT addresses and fault specifications.
 * Everything returns 0 or -errno; main() reports errors.
 */
#include "linkem.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"

/* A non-negative decimal number; *ret_end points at the unit. */
static int parse_number(const char *s, double *ret, const char **ret_end) {
        char *end;
        double v;

        if (!s || !*s || *s == '-' || *s == '+')
                return -EINVAL;
        errno = 0;
        v = strtod(s, &end);
        if (errno || end == s || !isfinite(v) || v < 0)
                return -EINVAL;
        *ret = v;
        *ret_end = end;
        return 0;
}

/* "0", "250us", "1ms", "1.5s", "2000ns". A unit is required but for 0. */
int parse_duration(const char *s, uint64_t *ret_ns) {
        static const struct { const char *unit; double mul; } units[] = {
                { "ns", 1 }, { "us", 1e3 }, { "ms", 1e6 }, { "s", 1e9 },
        };
        const char *end;
        double v;
        size_t i;
        int r;

        r = parse_number(s, &v, &end);
        if (r < 0)
                return r;
        if (*end == 0) {
                if (v != 0)
                        return -EINVAL;
                *ret_ns = 0;
                return 0;
        }
        for (i = 0; i < ARRAY_SIZE(units); i++)
                if (strcasecmp(end, units[i].unit) == 0) {
                        if (v * units[i].mul > 1e18)
                                return -ERANGE;
                        *ret_ns = (uint64_t) llround(v * units[i].mul);
                        return 0;
                }
        return -EINVAL;
}

/* Bits per second, decimal as tc writes them: "1gbit", "100mbit", "2.5g",
 * "500kbit", "1000000". "0", "none" and "unlimited" mean no cap. Bytes per
 * second ("bps", which tc and everyone else disagree on) are rejected. */
int parse_rate(const char *s, uint64_t *ret_bps) {
        static const struct { const char *unit; double mul; } units[] = {
                { "", 1 }, { "bit", 1 },
                { "k", 1e3 }, { "kbit", 1e3 }, { "m", 1e6 }, { "mbit", 1e6 },
                { "g", 1e9 }, { "gbit", 1e9 }, { "t", 1e12 }, { "tbit", 1e12 },
        };
        const char *end;
        double v;
        size_t i;
        int r;

        if (s && (strcasecmp(s, "none") == 0 || strcasecmp(s, "unlimited") == 0)) {
                *ret_bps = 0;
                return 0;
        }
        r = parse_number(s, &v, &end);
        if (r < 0)
                return r;
        for (i = 0; i < ARRAY_SIZE(units); i++)
                if (strcasecmp(end, units[i].unit) == 0) {
                        v *= units[i].mul;
                        if (v > 1e15 || (v > 0 && v < 1000))
                                return -ERANGE;
                        *ret_bps = (uint64_t) llround(v);
                        return 0;
                }
        return -EINVAL;
}

/* "HOST:PORT" or "[V6]:PORT"; numeric port, HOST may be a name. */
int parse_address(const char *s, struct sockaddr_storage *ret, socklen_t *ret_len) {
        struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                                  .ai_flags = AI_NUMERICSERV };
        struct addrinfo *res = NULL;
        char host[256];
        const char *colon, *h = s;
        size_t hlen;
        int r;

        colon = strrchr(s, ':');
        if (!colon || colon == s || !colon[1])
                return -EINVAL;
        hlen = (size_t) (colon - s);
        if (s[0] == '[') {
                if (hlen < 2 || s[hlen - 1] != ']')
                        return -EINVAL;
                h = s + 1;
                hlen -= 2;
        }
        if (hlen >= sizeof(host))
                return -ENAMETOOLONG;
        memcpy(host, h, hlen);
        host[hlen] = 0;
        r = getaddrinfo(host, colon + 1, &hints, &res);
        if (r != 0)
                return r == EAI_SYSTEM ? -errno : -EADDRNOTAVAIL;
        if (res->ai_addrlen > sizeof(*ret)) {
                freeaddrinfo(res);
                return -EINVAL;
        }
        memset(ret, 0, sizeof(*ret));
        memcpy(ret, res->ai_addr, res->ai_addrlen);
        *ret_len = res->ai_addrlen;
        freeaddrinfo(res);
        return 0;
}

/* One "key=value" or "key" option of a fault spec into f. */
static int fault_option(char *opt, struct fault *f, bool first) {
        char *val = strchr(opt, '=');
        uint64_t v;
        int r;

        if (val)
                *val++ = 0;
        if (first) {
                if (strcmp(opt, "refuse") == 0 && !val) {
                        f->kind = FAULT_REFUSE;
                        return 0;
                }
                if (!val)
                        return -EINVAL;
                if (strcmp(opt, "stall") == 0) {
                        f->kind = FAULT_STALL;
                        if (strcmp(val, "inf") == 0 || strcmp(val, "forever") == 0) {
                                f->stall_ns = NS_FOREVER;
                                return 0;
                        }
                        r = parse_duration(val, &f->stall_ns);
                        if (r == -EINVAL && isdigit((unsigned char) val[strlen(val) - 1])) {
                                /* bare seconds: "stall=5" */
                                char buf[64];

                                if (snprintf(buf, sizeof(buf), "%ss", val) >= (int) sizeof(buf))
                                        return -EINVAL;
                                r = parse_duration(buf, &f->stall_ns);
                        }
                        return r;
                }
                r = parse_size(val, &v);
                if (r < 0)
                        return r;
                if (strcmp(opt, "reset-after") == 0)
                        f->kind = FAULT_RESET_AFTER;
                else if (strcmp(opt, "flip-at") == 0)
                        f->kind = FAULT_FLIP_AT;
                else
                        return -EINVAL;
                f->bytes = v;
                return 0;
        }
        if (!val)
                return -EINVAL;
        if (strcmp(opt, "conn") == 0) {
                r = parse_size(val, &v);
                if (r < 0 || v == 0)
                        return -EINVAL;
                f->conn = v;
                return 0;
        }
        if (strcmp(opt, "after") == 0 && f->kind == FAULT_STALL)
                return parse_size(val, &f->bytes);
        return -EINVAL;
}

/* "reset-after=BYTES", "stall=SECONDS|inf[,after=BYTES]", "flip-at=OFFSET",
 * "refuse"; each may end with ",conn=K" (only the K-th connection). */
int parse_fault(const char *s, struct fault *ret) {
        struct fault f = { .conn = 0 };
        char buf[256], *save = NULL, *tok;
        bool first = true;
        int r;

        if (!s || strlen(s) >= sizeof(buf))
                return -EINVAL;
        strcpy(buf, s);
        for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                r = fault_option(tok, &f, first);
                if (r < 0)
                        return r;
                first = false;
        }
        if (first)
                return -EINVAL;
        *ret = f;
        return 0;
}

/* The --help text. */
static void usage(FILE *f) {
        fprintf(f,
"usage: linkem --connect HOST:PORT [--listen HOST:PORT] [options]\n"
"\n"
"A TCP proxy that emulates a link: one-way delay and a rate cap per\n"
"direction, shared by all connections, plus fault injection.\n"
"\n"
"  --listen ADDR        where to accept (default 127.0.0.1:0: a free port)\n"
"  --connect ADDR       the server every connection is forwarded to\n"
"  --delay D            one-way delay each way, e.g. 1ms (RTT = 2 x D)\n"
"  --delay-up D, --delay-down D   one direction only (up: client->server)\n"
"  --rate R             cap each direction, e.g. 1gbit, 10gbit (0: none)\n"
"  --rate-up R, --rate-down R     one direction only\n"
"  --buffer SIZE        most bytes held per connection and direction (default: auto)\n"
"  --no-handshake-rtt   don't charge new connections the TCP handshake RTT\n"
"  --copy               copy through memory instead of splice(2) (slower)\n"
"  --spin D             busy-poll D before each timer (sharper delays, more CPU)\n"
"  --fault SPEC         repeatable; offsets count the response stream:\n"
"        reset-after=BYTES      RST the client after BYTES of response\n"
"        stall=SECONDS|inf[,after=BYTES]  stop forwarding (both ways)\n"
"        flip-at=OFFSET         flip one byte (xor 0xff) of the response\n"
"        refuse                 refuse every connection (ECONNREFUSED)\n"
"      ...,conn=K: only the K-th accepted connection (refuse,conn=K: RST)\n"
"  --port-file F        write the listening port to F once ready\n"
"  --pidfile F          write the pid to F once ready (removed at exit)\n"
"  --stats F            write JSON counters to F at exit and on SIGUSR1\n"
"  -v, --verbose        debug log of every connection\n"
"\n"
"The port is also printed on stdout. SIGTERM or SIGINT exits cleanly.\n");
}

/* Parse argv into o. 0 to run, 1 when --help was printed, -errno on bad
 * usage (already reported). */
int options_parse(int argc, char **argv, struct options *o) {
        enum { OPT_DELAY_UP = 256, OPT_DELAY_DOWN, OPT_RATE_UP, OPT_RATE_DOWN,
               OPT_BUFFER, OPT_NO_HS, OPT_COPY, OPT_SPIN, OPT_PORT_FILE, OPT_PIDFILE, OPT_STATS };
        static const struct option longopts[] = {
                { "listen", required_argument, NULL, 'l' },
                { "connect", required_argument, NULL, 'c' },
                { "delay", required_argument, NULL, 'd' },
                { "delay-up", required_argument, NULL, OPT_DELAY_UP },
                { "delay-down", required_argument, NULL, OPT_DELAY_DOWN },
                { "rate", required_argument, NULL, 'r' },
                { "rate-up", required_argument, NULL, OPT_RATE_UP },
                { "rate-down", required_argument, NULL, OPT_RATE_DOWN },
                { "buffer", required_argument, NULL, OPT_BUFFER },
                { "no-handshake-rtt", no_argument, NULL, OPT_NO_HS },
                { "copy", no_argument, NULL, OPT_COPY },
                { "spin", required_argument, NULL, OPT_SPIN },
                { "fault", required_argument, NULL, 'f' },
                { "port-file", required_argument, NULL, OPT_PORT_FILE },
                { "pidfile", required_argument, NULL, OPT_PIDFILE },
                { "stats", required_argument, NULL, OPT_STATS },
                { "verbose", no_argument, NULL, 'v' },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        bool have_connect = false;
        uint64_t v;
        int c, r;

        *o = (struct options) { .handshake = true, .splice = true };
        r = parse_address("127.0.0.1:0", &o->listen_addr, &o->listen_len);
        if (r < 0)
                return r;
        while ((c = getopt_long(argc, argv, "l:c:d:r:f:vh", longopts, NULL)) >= 0) {
                const char *what = NULL;

                switch (c) {
                case 'l':
                        r = parse_address(optarg, &o->listen_addr, &o->listen_len);
                        what = "listen address";
                        break;
                case 'c':
                        r = parse_address(optarg, &o->connect_addr, &o->connect_len);
                        have_connect = true;
                        what = "connect address";
                        break;
                case 'd':
                        r = parse_duration(optarg, &v);
                        o->delay_ns[UP] = o->delay_ns[DOWN] = v;
                        what = "delay";
                        break;
                case OPT_DELAY_UP:
                case OPT_DELAY_DOWN:
                        r = parse_duration(optarg, &o->delay_ns[c == OPT_DELAY_UP ? UP : DOWN]);
                        what = "delay";
                        break;
                case 'r':
                        r = parse_rate(optarg, &v);
                        o->rate[UP] = o->rate[DOWN] = v;
                        what = "rate";
                        break;
                case OPT_RATE_UP:
                case OPT_RATE_DOWN:
                        r = parse_rate(optarg, &o->rate[c == OPT_RATE_UP ? UP : DOWN]);
                        what = "rate";
                        break;
                case OPT_BUFFER:
                        r = parse_size(optarg, &o->buffer);
                        if (r == 0 && (o->buffer < 4096 || o->buffer > (1ULL << 30)))
                                r = -ERANGE;
                        what = "buffer size";
                        break;
                case OPT_NO_HS:
                        o->handshake = false;
                        break;
                case OPT_COPY:
                        o->splice = false;
                        break;
                case OPT_SPIN:
                        r = parse_duration(optarg, &o->spin_ns);
                        what = "spin time";
                        break;
                case 'f':
                        if (o->n_faults == LINKEM_MAX_FAULTS) {
                                r = -E2BIG;
                        } else {
                                r = parse_fault(optarg, &o->faults[o->n_faults]);
                                if (r == 0 && o->faults[o->n_faults].kind == FAULT_REFUSE &&
                                    o->faults[o->n_faults].conn == 0)
                                        o->refuse_all = true;
                                o->n_faults++;
                        }
                        what = "fault";
                        break;
                case OPT_PORT_FILE:
                        o->port_file = optarg;
                        break;
                case OPT_PIDFILE:
                        o->pidfile = optarg;
                        break;
                case OPT_STATS:
                        o->stats_file = optarg;
                        break;
                case 'v':
                        log_set_level(LOG_LVL_DEBUG);
                        break;
                case 'h':
                        usage(stdout);
                        return 1;
                default:
                        usage(stderr);
                        return -EINVAL;
                }
                if (what && r < 0)
                        return log_error_errno(r, "Invalid %s '%s': %m", what, optarg);
        }
        if (optind < argc) {
                log_error("Unexpected argument '%s'", argv[optind]);
                return -EINVAL;
        }
        if (!have_connect) {
                log_error("--connect HOST:PORT is required");
                return -EINVAL;
        }
        return 0;
}
