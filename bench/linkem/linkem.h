/* SPDX-License-Identifier: Apache-2.0 */
/*
 * linkem: a userspace TCP proxy that emulates a network link between a
 * client and a server on loopback (the kernel here has no netem).
 *
 * Model. Each direction of the link (UP: client to server, DOWN: server to
 * client) is a serial line of rate R followed by a propagation delay D,
 * shared by every connection, like a real link. Bytes read from a sending
 * socket wait in their connection's buffer until the link's round-robin
 * scheduler admits them, a quantum at a time; admission at the link's
 * virtual clock vt = max(vt, now) + n/R fixes their delivery time vt + D
 * exactly, whatever the timer granularity. Delivery times of one direction
 * only grow, so one FIFO of records per direction drives every timer, and
 * any number of requests are in flight at once (the bandwidth-delay
 * product sits in the buffers, not in a per-connection sleep).
 *
 * One thread, one epoll loop, edge-triggered non-blocking sockets.
 * Nothing here is thread-safe; every struct belongs to the loop.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#define LINKEM_MAX_FAULTS 16
#define NS_FOREVER UINT64_MAX

/* A minimal intrusive doubly-linked list. */
struct list_head {
        struct list_head *prev, *next;
};

static inline void list_init(struct list_head *h) {
        h->prev = h->next = h;
}

static inline bool list_empty(const struct list_head *h) {
        return h->next == h;
}

static inline void list_add_tail(struct list_head *n, struct list_head *h) {
        n->prev = h->prev;
        n->next = h;
        h->prev->next = n;
        h->prev = n;
}

static inline void list_add_head(struct list_head *n, struct list_head *h) {
        n->prev = h;
        n->next = h->next;
        h->next->prev = n;
        h->next = n;
}

/* Unlink n and leave it pointing at itself (so unlinking twice is safe). */
static inline void list_del(struct list_head *n) {
        n->prev->next = n->next;
        n->next->prev = n->prev;
        list_init(n);
}

#define list_entry(p, type, member) \
        ((type *) ((char *) (p) - __builtin_offsetof(type, member)))

enum { UP = 0, DOWN = 1 };

enum fault_kind {
        FAULT_RESET_AFTER,      /* RST the client after BYTES of response */
        FAULT_STALL,            /* stop forwarding for a while (or forever) */
        FAULT_FLIP_AT,          /* flip one byte of the response stream */
        FAULT_REFUSE,           /* refuse (all) or reset at accept (conn=K) */
};

struct fault {
        enum fault_kind kind;
        uint64_t bytes;         /* reset-after / flip-at offset / stall after */
        uint64_t stall_ns;      /* NS_FOREVER: never resume */
        uint64_t conn;          /* 1-based accept order; 0 = every connection */
};

struct options {
        struct sockaddr_storage listen_addr;
        socklen_t listen_len;
        struct sockaddr_storage connect_addr;
        socklen_t connect_len;
        uint64_t delay_ns[2];   /* one-way delay per direction */
        uint64_t rate[2];       /* bit/s per direction; 0 = unlimited */
        uint64_t buffer;        /* bytes per connection and direction; 0 = auto */
        bool handshake;         /* new connections pay one RTT, as TCP's does */
        bool splice;            /* zero-copy buffers where possible */
        uint64_t spin_ns;       /* busy-poll this long before a timer */
        struct fault faults[LINKEM_MAX_FAULTS];
        size_t n_faults;
        bool refuse_all;
        const char *port_file;
        const char *pidfile;
        const char *stats_file;
};

struct half;

/* Bytes of one half up to 'end' (and its EOF, when 'eof') are delivered
 * to the receiving side at 'due'. */
struct rec {
        struct half *h;
        uint64_t end;
        uint64_t due;
        bool eof;
};

/* One direction of the emulated link, shared by all connections. */
struct link {
        int dir;
        uint64_t rate;          /* bit/s; 0 = unlimited */
        uint64_t delay;         /* ns */
        uint64_t ps_per_byte;   /* serialisation time of a byte */
        uint64_t quantum;       /* bytes one half may send per turn */
        uint64_t burst_ns;      /* how far ahead of now the clock may run */
        uint64_t vt;            /* ns: the line is busy until then */
        uint64_t vt_frac;       /* ps below vt (< 1000) */
        bool backlogged;        /* bytes were left waiting at the last turn */
        struct rec *fifo;       /* ring of records, delivery order */
        size_t head, len, cap;
        struct list_head active; /* halves with bytes (or EOF) to admit */
        uint64_t late_sum, late_max, late_n; /* ns a delivery came after its due time */
};

/* One direction of one connection: reads src, writes dst. Offsets count
 * bytes of the stream: in >= sched >= deliv >= out, in - out <= cap. */
struct half {
        struct conn *c;
        int dir;
        int src, dst;           /* borrowed from the connection */
        char **segs;            /* n_slots segments, allocated as they fill (io.c), or */
        size_t n_slots;
        int pipe[2];            /* a pipe of cap bytes for splice(2) */
        bool use_splice;        /* wanted for this half (io.c decides) */
        size_t cap;
        uint64_t in, sched, deliv, out;
        bool readable, writable;
        bool pipe_full;         /* pipe slots ran out: read after a write */
        bool eof_in, eof_sched, eof_deliv, shut;
        struct list_head active; /* on link->active */
        struct list_head ready;  /* on loop->ready: more to do, budget spent */
};

/* epoll tags: what an event's data.ptr points at. */
enum ev_kind { EV_LISTEN, EV_SIGNAL, EV_CLIENT, EV_SERVER };
struct ev {
        enum ev_kind kind;
        struct conn *c;
};

struct conn {
        uint64_t id;            /* 1-based accept order */
        int cfd, sfd;
        struct ev ev_c, ev_s;
        bool splice;
        bool connecting;
        bool dead;              /* closed; freed once refs drops to 0 */
        unsigned refs;          /* records in the link FIFOs pointing here */
        uint64_t hold_until;    /* client bytes wait until then (handshake) */
        uint64_t stall_until;   /* 0: not stalled */
        struct half h[2];
        /* Faults that apply to this connection (response stream offsets). */
        uint64_t reset_at;      /* UINT64_MAX: none */
        uint64_t flip_at;
        uint64_t stall_at;
        uint64_t stall_ns;
        struct list_head node;  /* loop->conns or loop->dead */
        struct list_head held;  /* loop->held while hold_until > now */
        struct list_head stalled; /* loop->stalled */
};

struct loop {
        const struct options *o;
        int epfd, lfd, sigfd;
        struct ev ev_listen, ev_signal;
        struct link link[2];
        struct list_head conns, dead, held, stalled, ready;
        uint64_t next_id;
        uint64_t n_open, max_open;
        uint64_t faults_fired;
        uint64_t bytes_closed[2]; /* stream bytes of connections already freed */
        bool quit;
};

/* options.c */
int parse_duration(const char *s, uint64_t *ret_ns);
int parse_rate(const char *s, uint64_t *ret_bps);
int parse_address(const char *s, struct sockaddr_storage *ret, socklen_t *ret_len);
int parse_fault(const char *s, struct fault *ret);
int options_parse(int argc, char **argv, struct options *o);

/* link.c */
void link_init(struct link *l, int dir, uint64_t rate, uint64_t delay);
void link_free(struct link *l);
int link_enqueue(struct loop *lp, struct link *l, struct half *h, uint64_t now);
int link_admit(struct loop *lp, struct link *l, uint64_t now);
void link_deliver(struct loop *lp, struct link *l, uint64_t now);
uint64_t link_next_event(const struct link *l);
void link_forget(struct half *h);

/* conn.c */
int conn_accept(struct loop *lp);
void conn_event(struct loop *lp, struct ev *e, uint32_t events);
void half_pump(struct loop *lp, struct half *h);
void conn_close(struct loop *lp, struct conn *c, bool reset);
void conn_unref(struct loop *lp, struct conn *c);
void conn_timers(struct loop *lp, uint64_t now);
uint64_t conn_next_event(const struct loop *lp);
void conn_reap(struct loop *lp);
void conn_run_ready(struct loop *lp);
size_t conn_buffer_size(const struct options *o);

/* io.c */
ssize_t half_io_in(struct half *h, size_t max);
ssize_t half_io_out(struct half *h, size_t max);
char *half_io_byte(struct half *h, uint64_t off);
void half_io_free(struct half *h);
void half_io_pool_free(void);

/* fault.c */
void fault_setup(struct loop *lp, struct conn *c, uint64_t now);
bool fault_refuse_conn(const struct options *o, uint64_t id);
uint64_t fault_next_stop(const struct conn *c);
void fault_fire(struct loop *lp, struct conn *c, uint64_t out);
void fault_flip(struct loop *lp, struct half *h, uint64_t from, uint64_t n);

/* loop.c */
int loop_init(struct loop *lp, const struct options *o);
int loop_run(struct loop *lp);
void loop_free(struct loop *lp);
uint64_t loop_listen_port(const struct loop *lp);
int loop_write_stats(const struct loop *lp, const char *path);
void loop_log_stats(const struct loop *lp);
