/* SPDX-License-Identifier: Apache-2.0 */
#include "control.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <json-c/json.h>

#include "chunkstore/profile.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "common/sockio.h"
#include "common/util.h"
#include "clientpool.h"
#include "ctlproto/counters.h"
#include "ctlproto/message.h"
#include "export.h"
#include "exports.h"
#include "metrics.h"
#include "nbd/server.h"
#include "profile-find.h"
#include "sched.h"
#include "sockets.h"

#define MAX_LINE (64u << 10)
#define DETACH_TIMEOUT_S 30

struct control {
        struct control_config cfg;
        char *path;
        bool kept;                      /* the socket outlives us (sockets.h): its path stays */
        struct clientpool *pool;
};

/* --- Responses --- */

static void add_u64(struct json_object *o, const char *key, uint64_t v) {
        json_object_object_add(o, key, json_object_new_int64((int64_t) v));
}

static struct json_object *describe(struct control *ctl, struct export *e) {
        struct json_object *o = json_object_new_object();
        char ds[DIGEST_STRING_MAX];
        _cleanup_free_ char *uri = ctl->cfg.ops->export_uri(ctl->cfg.userdata, export_name(e));
        _cleanup_free_ char *file = ctl->cfg.ops->export_file(ctl->cfg.userdata, export_name(e));
        _cleanup_free_ char *vhost = ctl->cfg.ops->export_vhost_user(ctl->cfg.userdata, export_name(e));

        json_object_object_add(o, "name", json_object_new_string(export_name(e)));
        json_object_object_add(o, "ref", json_object_new_string(export_ref_text(e)));
        json_object_object_add(o, "manifest", json_object_new_string(digest_to_string(export_manifest_digest(e), ds)));
        add_u64(o, "size", export_size(e));
        add_u64(o, "chunk_size", export_chunk_size(e));
        json_object_object_add(o, "readonly", json_object_new_boolean(export_readonly(e)));
        json_object_object_add(o, "overlay",
                               export_overlay_path(e) ? json_object_new_string(export_overlay_path(e)) : NULL);
        add_u64(o, "clients", export_clients(e));
        json_object_object_add(o, "uri", uri ? json_object_new_string(uri) : NULL);
        if (file)
                json_object_object_add(o, "file", json_object_new_string(file));
        if (vhost)
                json_object_object_add(o, "vhost_user", json_object_new_string(vhost));
        {
                struct export_stats st;
                char why[512] = "";
                bool online = export_online(e, why, sizeof why);

                json_object_object_add(o, "state", json_object_new_string(online ? "online" : "offline"));
                if (!online)
                        json_object_object_add(o, "error", json_object_new_string(why));
                export_get_stats(e, &st);
                json_object_object_add(o, "hydration_pct",
                                       json_object_new_double((double) (uint64_t) (export_stats_hydration(&st) * 1000.0) / 10.0));
        }
        return o;
}

/* An export that failed to attach and is retried: what `ls` shows of it. */
static struct json_object *describe_failed(const struct state_export *se, const char *why) {
        struct json_object *o = json_object_new_object();

        json_object_object_add(o, "name", json_object_new_string(se->name));
        json_object_object_add(o, "ref", json_object_new_string(se->ref));
        json_object_object_add(o, "manifest", se->manifest ? json_object_new_string(se->manifest) : NULL);
        json_object_object_add(o, "readonly", json_object_new_boolean(!se->overlay));
        json_object_object_add(o, "overlay", se->overlay ? json_object_new_string(se->overlay) : NULL);
        json_object_object_add(o, "state", json_object_new_string("failed"));
        json_object_object_add(o, "error", json_object_new_string(why));
        return o;
}

static struct json_object *export_stats_json(struct export *e) {
        struct json_object *o = json_object_new_object();
        struct export_stats st;

        export_get_stats(e, &st);
        json_object_object_add(o, "name", json_object_new_string(export_name(e)));
        export_stats_to_json(&st, o);
        json_object_object_add(o, "background",
                               json_object_new_string(sched_bg_state_name((enum sched_bg_state) st.background_state)));
        return o;
}

struct list_ctx {
        struct control *ctl;
        struct json_object *arr;
        const char *only;
        bool stats;
};

static void list_one(struct export *e, void *u) {
        struct list_ctx *l = u;

        if (l->only && strcmp(l->only, export_name(e)) != 0)
                return;
        json_object_array_add(l->arr, l->stats ? export_stats_json(e) : describe(l->ctl, e));
}

static void list_failed(const struct state_export *se, const char *why, void *u) {
        struct list_ctx *l = u;

        if (l->stats || (l->only && strcmp(l->only, se->name) != 0))
                return;
        json_object_array_add(l->arr, describe_failed(se, why));
}

/* --- Commands --- */

/* attach with "update": resolve the export's reference again. */
static struct json_object *cmd_update(struct control *ctl, const char *name) {
        struct json_object *o;
        struct export *e;
        char err[512] = "";
        bool changed = false;
        int r;

        r = exports_update(ctl->cfg.src.exports, name, DETACH_TIMEOUT_S, &changed, err, sizeof err);
        if (r < 0) {
                char n[LOG_ESCAPE_MAX], why[LOG_ESCAPE_MAX];
                log_warning("Control: update of %s failed: %s", log_escape(name, n, sizeof n),
                            log_escape(err[0] ? err : strerror(-r), why, sizeof why));
                return ctlproto_error(r, err);
        }
        e = exports_get(ctl->cfg.src.exports, name);
        if (!e)
                return ctlproto_error(-ENOENT, "the export was detached meanwhile");
        o = ctlproto_ok();
        json_object_object_add(o, "export", describe(ctl, e));
        json_object_object_add(o, "changed", json_object_new_boolean(changed));
        export_unref(e);
        return o;
}

static struct json_object *cmd_attach(struct control *ctl, struct json_object *req) {
        struct export_config cfg = {
                .name = ctlproto_get_string(req, "name"),
                .ref = ctlproto_get_string(req, "ref"),
                .overlay = ctlproto_get_string(req, "overlay"),
                .profile = ctlproto_get_string(req, "profile"),
                .vhost_user = ctlproto_get_string(req, "vhost_user"),
        };
        struct json_object *o;
        struct export *e;
        char err[512] = "";
        int r;

        struct json_object *upd;

        if (cfg.name && json_object_object_get_ex(req, "update", &upd) && json_object_get_boolean(upd))
                return cmd_update(ctl, cfg.name);
        if (!cfg.name || !cfg.ref)
                return ctlproto_error(-EINVAL, "attach needs \"name\" and \"ref\"");
        if (cfg.overlay && cfg.overlay[0] != '/')
                return ctlproto_error(-EINVAL, "the overlay path must be absolute");
        if (cfg.vhost_user && cfg.vhost_user[0] != '/')
                return ctlproto_error(-EINVAL, "the vhost-user socket path must be absolute");
        r = exports_attach(ctl->cfg.src.exports, &cfg, &e, err, sizeof err);
        if (r < 0) {
                char n[LOG_ESCAPE_MAX], f[LOG_ESCAPE_MAX], why[LOG_ESCAPE_MAX];
                log_warning("Control: attach %s %s failed: %s", log_escape(cfg.name, n, sizeof n),
                            log_escape(cfg.ref, f, sizeof f), log_escape(err[0] ? err : strerror(-r), why, sizeof why));
                return ctlproto_error(r, err);
        }
        o = ctlproto_ok();
        json_object_object_add(o, "export", describe(ctl, e));
        export_unref(e);
        return o;
}

static struct json_object *cmd_detach(struct control *ctl, struct json_object *req) {
        const char *name = ctlproto_get_string(req, "name");
        char err[512] = "";
        int r;

        if (!name)
                return ctlproto_error(-EINVAL, "detach needs \"name\"");
        r = exports_detach(ctl->cfg.src.exports, name, DETACH_TIMEOUT_S, err, sizeof err);
        return r < 0 ? ctlproto_error(r, err) : ctlproto_ok();
}

static struct json_object *cmd_list(struct control *ctl, struct json_object *req, bool stats) {
        const struct metrics_sources *d = &ctl->cfg.src;
        struct list_ctx l = { .ctl = ctl, .arr = json_object_new_array(), .only = ctlproto_get_string(req, "name"), .stats = stats };
        struct json_object *o;

        exports_for_each(d->exports, list_one, &l);
        exports_for_each_failed(d->exports, list_failed, &l);
        if (l.only && json_object_array_length(l.arr) == 0) {
                char msg[300];
                json_object_put(l.arr);
                snprintf(msg, sizeof msg, "no export named '%s'", l.only);
                return ctlproto_error(-ENOENT, msg);
        }
        o = ctlproto_ok();
        json_object_object_add(o, "exports", l.arr);
        if (stats) {
                struct json_object *s = json_object_new_object(), *f = json_object_new_object();
                struct nbdsrv_stats ns = { 0 };
                struct chunkfd_stats fs;

                if (d->nbd)
                        nbdsrv_get_stats(d->nbd, &ns);
                add_u64(s, "connections", ns.connections);
                add_u64(s, "connections_total", ns.connections_total);
                add_u64(s, "requests", ns.requests);
                add_u64(s, "handshake_failures", ns.handshake_failures);
                add_u64(s, "protocol_errors", ns.protocol_errors);
                json_object_object_add(o, "nbd", s);
                chunkfd_get_stats(d->fds, &fs);
                add_u64(f, "open", fs.open);
                add_u64(f, "hits", fs.hits);
                add_u64(f, "opens", fs.opens);
                add_u64(f, "verified", fs.verified);
                add_u64(f, "damaged", fs.damaged);
                add_u64(f, "evictions", fs.evictions);
                add_u64(f, "reverified", fs.reverified);
                add_u64(f, "changed", fs.changed);
                add_u64(f, "adopted", fs.adopted);
                json_object_object_add(o, "chunkfd", f);
                if (d->sched) {
                        struct json_object *fo = json_object_new_object();
                        struct sched_stats ss;

                        sched_get_stats(d->sched, &ss);
                        add_u64(fo, "window", ss.window);
                        add_u64(fo, "inflight_demand", ss.inflight[SCHED_DEMAND]);
                        add_u64(fo, "inflight_profile", ss.inflight[SCHED_PROFILE]);
                        add_u64(fo, "inflight_background", ss.inflight[SCHED_BACKGROUND]);
                        add_u64(fo, "demand_queued", ss.demand_queued);
                        add_u64(fo, "demand_waiting", ss.demand_waiting);
                        json_object_object_add(fo, "bandwidth", json_object_new_double(ss.bandwidth));
                        json_object_object_add(fo, "rtt_s", json_object_new_double(ss.rtt));
                        add_u64(fo, "requests", ss.requests);
                        add_u64(fo, "bytes", ss.bytes);
                        add_u64(fo, "errors", ss.errors);
                        add_u64(fo, "retries", ss.retries);
                        add_u64(fo, "mismatches", ss.mismatches);
                        add_u64(fo, "timeouts", ss.timeouts);
                        add_u64(fo, "bg_inflight_bytes", ss.bg_inflight_bytes);
                        add_u64(fo, "bg_budget", ss.bg_budget);
                        add_u64(fo, "bg_shrinks", ss.bg_shrinks);
                        add_u64(fo, "delays", ss.delays);
                        add_u64(fo, "delays_forgiven", ss.delays_forgiven);
                        add_u64(fo, "demand_bg_ahead_max", ss.demand_bg_ahead_max);
                        add_u64(fo, "write_behind_queued", ss.wb.queued);
                        add_u64(fo, "write_behind_queued_bytes", ss.wb.queued_bytes);
                        add_u64(fo, "write_behind_max_bytes", ss.wb.max_bytes);
                        add_u64(fo, "write_behind_deferred", ss.wb.deferred);
                        add_u64(fo, "write_behind_stored", ss.wb.stored);
                        add_u64(fo, "write_behind_flushed", ss.wb.flushed);
                        add_u64(fo, "write_behind_failed", ss.wb.failed);
                        add_u64(fo, "write_behind_inline", ss.wb.full);
                        add_u64(fo, "write_behind_hits", ss.wb.hits);
                        json_object_object_add(o, "fetch", fo);
                }
                add_u64(o, "uptime_s", (now_ns() - d->start_ns) / 1000000000ull);
        }
        return o;
}

/* record: {"name":N,"action":"start"} starts (or restarts) recording;
 * "save" writes what was recorded so far to "path" (absolute), "stop"
 * also ends the recording (path optional). */
static struct json_object *cmd_record(struct control *ctl, struct json_object *req) {
        const char *name = ctlproto_get_string(req, "name"), *action = ctlproto_get_string(req, "action"), *path = ctlproto_get_string(req, "path");
        _cleanup_free_ void *buf = NULL;
        struct profile *p = NULL;
        struct json_object *o;
        struct export *e;
        size_t len;
        char msg[300];
        int r;

        if (!name || !action)
                return ctlproto_error(-EINVAL, "record needs \"name\" and \"action\" (start, save, stop)");
        if (path && path[0] != '/')
                return ctlproto_error(-EINVAL, "the profile path must be absolute");
        if (strcmp(action, "start") && strcmp(action, "save") && strcmp(action, "stop"))
                return ctlproto_error(-EINVAL, "record actions are start, save and stop");
        if (!strcmp(action, "save") && !path)
                return ctlproto_error(-EINVAL, "record save needs \"path\"");
        e = exports_get(ctl->cfg.src.exports, name);
        if (!e) {
                snprintf(msg, sizeof msg, "no export named '%s'", name);
                return ctlproto_error(-ENOENT, msg);
        }
        if (!strcmp(action, "start")) {
                r = export_record_start(e);
                export_unref(e);
                if (r < 0)
                        return ctlproto_error(r, NULL);
                log_info("Export %s: recording its boot profile", name);
                return ctlproto_ok();
        }
        r = export_record_get(e, !strcmp(action, "stop"), &p);
        export_unref(e);
        if (r == -ENODATA)
                return ctlproto_error(r, "the export is not being recorded");
        if (r >= 0 && path) {
                r = profile_encode(p, &buf, &len);
                if (r >= 0)
                        r = write_file_atomic(AT_FDCWD, path, buf, len, 0644);
                if (r < 0) {
                        snprintf(msg, sizeof msg, "cannot write %s: %s", path, strerror(-r));
                        profile_free(p);
                        return ctlproto_error(r, msg);
                }
                char esc[LOG_ESCAPE_MAX];
                log_info("Export %s: saved its boot profile (%u ranges) to %s", name, p->count,
                         log_escape(path, esc, sizeof esc));
        }
        if (r < 0)
                return ctlproto_error(r, NULL);
        o = ctlproto_ok();
        add_u64(o, "entries", p->count);
        profile_free(p);
        return o;
}

/* prefetch: {"name":N[,"profile":"auto"|FILE]}: find the profile again
 * (or use a file) and prefetch in its order. */
static struct json_object *cmd_prefetch(struct control *ctl, struct json_object *req) {
        const char *name = ctlproto_get_string(req, "name"), *how = ctlproto_get_string(req, "profile");
        struct profile_prefetch_info info = { 0 };
        struct json_object *o;
        struct export *e;
        char msg[300];
        int r;

        if (!name)
                return ctlproto_error(-EINVAL, "prefetch needs \"name\"");
        e = exports_get(ctl->cfg.src.exports, name);
        if (!e) {
                snprintf(msg, sizeof msg, "no export named '%s'", name);
                return ctlproto_error(-ENOENT, msg);
        }
        r = profile_prefetch_attach(e, how, NULL, &info);
        export_unref(e);
        if (r < 0)
                return ctlproto_error(r, "the profile cannot be used (see blockd's log)");
        o = ctlproto_ok();
        json_object_object_add(o, "started", json_object_new_boolean(r > 0));
        if (r > 0) {
                json_object_object_add(o, "source", json_object_new_string(info.source));
                add_u64(o, "chunks", info.chunks);
        }
        return o;
}

static struct json_object *cmd_metrics(struct control *ctl) {
        _cleanup_free_ char *text = NULL;
        struct json_object *o;
        size_t len;
        int r;

        r = metrics_render(&ctl->cfg.src, &text, &len);
        if (r < 0)
                return ctlproto_error(r, NULL);
        o = ctlproto_ok();
        json_object_object_add(o, "text", json_object_new_string_len(text, (int) len));
        return o;
}

struct json_object *control_dispatch(struct control *ctl, const char *line, size_t len) {
        struct json_object *req, *resp;
        const char *cmd;
        char esc[LOG_ESCAPE_MAX];
        int r;

        r = ctlproto_parse(line, len, &req);
        if (r == -EILSEQ)
                return ctlproto_error(r, "request is not valid UTF-8 (or a string holds \\u0000): send UTF-8 text");
        if (r < 0)
                return ctlproto_error(-EINVAL, "malformed request: want one JSON object per line");
        cmd = ctlproto_get_string(req, "cmd");
        log_debug("Control: %s", cmd ? log_escape(cmd, esc, sizeof esc) : "(no cmd)");
        if (!cmd)
                resp = ctlproto_error(-EINVAL, "request has no \"cmd\"");
        else if (!strcmp(cmd, "attach"))
                resp = cmd_attach(ctl, req);
        else if (!strcmp(cmd, "detach"))
                resp = cmd_detach(ctl, req);
        else if (!strcmp(cmd, "list"))
                resp = cmd_list(ctl, req, false);
        else if (!strcmp(cmd, "stats"))
                resp = cmd_list(ctl, req, true);
        else if (!strcmp(cmd, "metrics"))
                resp = cmd_metrics(ctl);
        else if (!strcmp(cmd, "record"))
                resp = cmd_record(ctl, req);
        else if (!strcmp(cmd, "prefetch"))
                resp = cmd_prefetch(ctl, req);
        else if (!strcmp(cmd, "ping")) {
                resp = ctlproto_ok();
                json_object_object_add(resp, "version", json_object_new_string(HOCUS_VERSION));
        } else {
                char msg[192];
                snprintf(msg, sizeof msg, "unknown command '%.64s' (attach, detach, list, stats, metrics, record, prefetch, ping)", cmd);
                resp = ctlproto_error(-EINVAL, msg);
        }
        json_object_put(req);
        return resp;
}

/* --- Connections --- */

/* Answer o on the client within the request timeout. 0 or -errno. */
static int reply(struct control *ctl, struct clientpool_client *pc, struct json_object *o) {
        return ctlproto_send(clientpool_fd(pc), o, deadline_after(ctl->cfg.request_timeout_ns), clientpool_cancel_fd(pc));
}

static void reply_error(struct control *ctl, struct clientpool_client *pc, int r, const char *msg) {
        struct json_object *e = ctlproto_error(r, msg);

        (void) reply(ctl, pc, e);
        json_object_put(e);
}

/*
 * One client: requests, one line each, answered in order. Between
 * requests the client is idle (closed after the idle timeout, or sooner to
 * make room for a new client at the cap); once a request's first byte is
 * in, the whole line must arrive within the request timeout, and so must
 * the answer leave. A client that sends slowly or stops reading holds a
 * slot no longer than that. A first line "GET ..." is HTTP: the metrics.
 */
static void serve(struct clientpool_client *pc, void *userdata) {
        struct control *ctl = userdata;
        int fd = clientpool_fd(pc), cancel = clientpool_cancel_fd(pc);
        _cleanup_free_ char *buf = malloc(MAX_LINE + 1);
        uint64_t deadline = 0;          /* of the request coming in */
        size_t len = 0;
        bool first = true;

        while (buf) {
                char *nl = memchr(buf, '\n', len), *end;
                ssize_t n;

                if (!nl) {
                        if (len == MAX_LINE) {
                                reply_error(ctl, pc, -EMSGSIZE, "request line too long");
                                break;
                        }
                        if (len == 0) {
                                clientpool_set_idle(pc, true);
                                n = recv_until(fd, buf, MAX_LINE, deadline_after(ctl->cfg.idle_timeout_ns), cancel);
                                if (!clientpool_set_idle(pc, false))
                                        break;
                                deadline = deadline_after(ctl->cfg.request_timeout_ns);
                        } else {
                                n = recv_until(fd, buf + len, MAX_LINE - len, deadline, cancel);
                        }
                        if (n == -ETIMEDOUT && len > 0) {
                                log_debug("Control: a client did not send its request within the request timeout");
                                reply_error(ctl, pc, -ETIMEDOUT, "the request did not arrive in time (see blockd --request-timeout)");
                        }
                        if (n <= 0)
                                break;
                        len += (size_t) n;
                        continue;
                }
                if (first && strncmp(buf, "GET ", 4) == 0) {
                        /* HTTP: the rest of the head, within the same deadline. */
                        while (!memmem(buf, len, "\r\n\r\n", 4) && !memmem(buf, len, "\n\n", 2) && len < MAX_LINE) {
                                n = recv_until(fd, buf + len, MAX_LINE - len, deadline, cancel);
                                if (n <= 0)
                                        return;
                                len += (size_t) n;
                        }
                        *nl = 0;
                        metrics_http_answer(&ctl->cfg.src, fd, buf, deadline_after(ctl->cfg.request_timeout_ns), cancel);
                        break;
                }
                first = false;
                end = nl > buf && nl[-1] == '\r' ? nl - 1 : nl;
                if (end > buf) {
                        struct json_object *resp = control_dispatch(ctl, buf, (size_t) (end - buf));
                        int r = reply(ctl, pc, resp);
                        json_object_put(resp);
                        if (r < 0) {
                                log_debug_errno(r, "Control: dropping a client that did not take its answer: %m");
                                break;
                        }
                }
                len -= (size_t) (nl + 1 - buf);
                memmove(buf, nl + 1, len);
                deadline = deadline_after(ctl->cfg.request_timeout_ns);        /* the next one, if it began */
        }
}

/* At the cap with every client busy: say so, in one send that cannot block. */
static void refuse(int fd, void *userdata) {
        struct control *ctl = userdata;
        struct json_object *e;
        char msg[256];

        snprintf(msg, sizeof msg,
                 "blockd is serving %u control clients, all busy (--control-max-clients); try again", ctl->cfg.max_clients);
        e = ctlproto_error(-EBUSY, msg);
        (void) ctlproto_send(fd, e, 0, -1);
        json_object_put(e);
}

int control_new(const struct control_config *cfg, struct control **ret) {
        struct control *ctl = calloc(1, sizeof *ctl);

        if (!ctl)
                return -ENOMEM;
        ctl->cfg = *cfg;
        if (!ctl->cfg.max_clients)
                ctl->cfg.max_clients = CONTROL_MAX_CLIENTS_DEFAULT;
        if (!ctl->cfg.request_timeout_ns)
                ctl->cfg.request_timeout_ns = CONTROL_REQUEST_TIMEOUT_DEFAULT_S * 1000000000ull;
        if (!ctl->cfg.idle_timeout_ns)
                ctl->cfg.idle_timeout_ns = CONTROL_IDLE_TIMEOUT_DEFAULT_S * 1000000000ull;
        *ret = ctl;
        return 0;
}

void control_free(struct control *ctl) {
        if (!ctl)
                return;
        free(ctl->path);
        free(ctl);
}

int control_start(const struct control_config *cfg, const char *path, struct control **ret) {
        struct clientpool_config pcfg = { .what = "Control", .serve = serve, .refuse = refuse };
        struct control *ctl;
        int fd, r;

        r = control_new(cfg, &ctl);
        if (r < 0)
                return r;
        ctl->path = strdup(path);
        if (!ctl->path) {
                control_free(ctl);
                return -ENOMEM;
        }
        fd = unix_listen("control", path, 0600);
        if (fd < 0) {
                control_free(ctl);
                return fd;
        }
        pcfg.max_clients = ctl->cfg.max_clients;
        pcfg.userdata = ctl;
        ctl->kept = socket_is_kept(fd);
        r = clientpool_start(&pcfg, fd, &ctl->pool);
        if (r < 0) {
                if (!ctl->kept)
                        (void) unlink(path);
                control_free(ctl);
                return r;
        }
        *ret = ctl;
        return 0;
}

unsigned control_stop(struct control *ctl) {
        unsigned left;

        if (!ctl)
                return 0;
        left = clientpool_stop(ctl->pool, ctl->cfg.request_timeout_ns);
        if (!ctl->kept)
                (void) unlink(ctl->path);
        if (left > 0)
                return left;    /* the abandoned requests still use ctl */
        control_free(ctl);
        return 0;
}
