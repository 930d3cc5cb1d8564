/* repl_int.h: what the replication files share: the backlog
 * (repl_backlog.c), the replication state and its lock, the master side
 * (repl_master.c), the replica side (repl_replica.c), the options, INFO and
 * ROLE (repl_config.c).  Other modules include repl.h.
 *
 * Offsets are Redis's: master_repl_offset counts every byte ever put into
 * the stream; the backlog holds the last histlen of them, the first being
 * byte number first = offset - histlen + 1.  A replica that has everything
 * up to byte X asks for "PSYNC <replid> X+1".
 *
 * Locks: shard locks (the journal hook runs under them), then r->mu, then
 * workers' mailboxes.  r->mu guards everything below marked (mu). */
#ifndef REPLICATION_REPL_INT_H
#define REPLICATION_REPL_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "base/buf.h"
#include "engine.h"
#include "repl.h"
#include "resp.h"
#include "server.h"
#include "snap_int.h"

#define REPL_ID_LEN 40
#define REPL_MARK_LEN 40

/* ---- the backlog (repl_backlog.c) ------------------------------------------- */

struct repl_backlog {
    char *buf;
    size_t size;      /* capacity; 0: no backlog */
    size_t head;      /* where the next byte goes */
    uint64_t histlen; /* bytes held, <= size */
};

void repl_backlog_init(struct repl_backlog *b, size_t size);
void repl_backlog_release(struct repl_backlog *b);
void repl_backlog_append(struct repl_backlog *b, const void *p, size_t n);
/* Appends to out the last `n` bytes held (n <= histlen). */
void repl_backlog_tail(const struct repl_backlog *b, uint64_t n, struct buf *out);
/* The journal's command as RESP (a multibulk of argv). */
void repl_encode(struct buf *out, int argc, const struct eng_str *argv);
void repl_encode_select(struct buf *out, int db);

/* ---- replicas of this node (repl_master.c) ----------------------------------- */

enum repl_peer_state { PEER_WAIT_BGSAVE, PEER_SEND_BULK, PEER_ONLINE };

struct repl_peer {
    struct repl_peer *next;
    struct server_replica_info ri;
    int state;          /* (mu) */
    struct buf out;     /* (mu) stream not yet handed to its worker */
    int scheduled;      /* (mu) a pump is posted */
    uint64_t ack_off;   /* (mu) */
    int64_t ack_ms;     /* (mu) last acknowledgement (wall ms) */
    int64_t since_ms;
    uint64_t sync_off;  /* a full copy: the offset it was taken at */
    int killed;         /* (mu) over its output limit: closing */
};

/* A full copy on its way to a replica (repl thread). */
struct repl_xfer {
    struct repl_xfer *next;
    struct repl *r;
    struct server_conn conn;
    struct snap_child child;
    uv_pipe_t pipe;
    int started, closing, is_psync;
    char mark[REPL_MARK_LEN + 1];
    uint64_t bytes;
    int64_t t0_us;
};

/* ---- the link to our master (repl_replica.c) ----------------------------------- */

enum repl_link_state {
    LINK_NONE,        /* a master */
    LINK_CONNECT,     /* to connect (at the next cron) */
    LINK_CONNECTING,
    LINK_RECV_PONG,
    LINK_RECV_AUTH,
    LINK_RECV_PORT,
    LINK_RECV_IP,
    LINK_RECV_CAPA,
    LINK_RECV_PSYNC,
    LINK_TRANSFER,
    LINK_CONNECTED,
};

struct repl_link; /* repl_replica.c */

/* ---- FAILOVER ------------------------------------------------------------------ */

enum repl_failover_state { FO_NONE, FO_WAIT_SYNC, FO_IN_PROGRESS };

/* ---- the whole state ------------------------------------------------------------ */

struct repl {
    struct eng *eng;
    struct repl_config *cfg;
    struct server *srv;
    struct repl_env env;
    int64_t port;
    const struct server_config *sc; /* the replicas' output buffer limit */

    pthread_mutex_t mu;
    /* (mu) who we are */
    int is_replica;
    char replid[REPL_ID_LEN + 1], replid2[REPL_ID_LEN + 1];
    int64_t second_off;       /* -1: none */
    _Atomic uint64_t offset;  /* master_repl_offset; written under mu */
    struct repl_backlog bl;
    int last_db;              /* the stream's SELECTed db, -1: send SELECT */
    _Atomic int journal_on;   /* a master with a backlog: the journal feeds it */
    uint64_t getack_end;      /* offset right after the last GETACK sent */
    struct repl_peer *peers;
    int npeers;
    /* (mu) our master, as REPLICAOF named it, and the link's state for INFO */
    char master_host[256];
    int64_t master_port;
    unsigned master_gen;      /* bumped on every REPLICAOF: the thread follows */
    int applying;             /* the thread applies its master's bytes (repl_replica.c) */
    int link_state;
    int64_t link_down_since;  /* wall s, 0: never up (INFO says -1) */
    _Atomic int64_t last_io_ms; /* the link's last read (any lock) */
    int64_t sync_start_ms;
    uint64_t sync_read;
    /* (mu) FAILOVER */
    int fo_state;
    char fo_host[256];
    int64_t fo_port;
    int fo_force;
    int64_t fo_deadline_ms;   /* 0: none */
    struct server_conn fo_target;
    /* INFO's sync_full, sync_partial_ok, sync_partial_err (metrics.c) */
    _Atomic uint64_t stat_sync_full, stat_sync_partial_ok, stat_sync_partial_err;
    /* (mu) full copies to start (the thread picks them up) */
    struct repl_xfer *xfer_new;

    /* the thread (its own loop) */
    uv_thread_t thread;
    uv_loop_t loop;
    uv_async_t wake;
    uv_timer_t cron;
    _Atomic int stop, running;
    struct repl_link *link;     /* thread only */
    unsigned link_gen;          /* thread only: master_gen the link was made for */
    int64_t link_retry_ms;
    struct repl_xfer *xfers;    /* thread only */
    struct server_pseudo *master_client; /* thread only */
    int64_t last_ping_ms, last_ack_ms;
};

/* repl_master.c */
void repl__journal(void *ud, int db, int argc, const struct eng_str *argv);
int repl__journal_wanted(void *ud);
/* Puts raw stream bytes into the backlog and every replica's stream (mu). */
void repl__feed_locked(struct repl *r, const void *p, size_t n);
/* A backlog for a master that never had one: a new replication id (mu). */
void repl__ensure_backlog_locked(struct repl *r);
void repl__new_replid(char out[REPL_ID_LEN + 1]);
/* Closes every replica's connection (they reconnect and PSYNC) (mu). */
void repl__drop_peers_locked(struct repl *r);
int repl__psync(void *ud, const struct server_replica_info *ri, int argc, const struct eng_str *argv,
                struct buf *out);
void repl__ack(void *ud, const struct server_conn *c, uint64_t off);
void repl__replica_closed(void *ud, const struct server_conn *c);
uint64_t repl__offset(void *ud);
int repl__acked(void *ud, uint64_t off);
void repl__request_acks(void *ud, uint64_t off);
/* Thread: transfers and the periodic work of a master. */
void repl__xfer_start_all(struct repl *r);
void repl__xfer_stop_all(struct repl *r);
void repl__master_cron(struct repl *r, int64_t now_ms);
int repl__failover(void *ud, int argc, const struct eng_str *argv, struct buf *out);
void repl__failover_cron(struct repl *r, int64_t now_ms);
void repl__failover_done(struct repl *r, int ok);
int repl__is_replica(void *ud);
/* 1 on the replication thread */
extern _Thread_local int repl__on_thread;

/* repl_replica.c */
int repl__replicaof(void *ud, int argc, const struct eng_str *argv, struct buf *out);
/* Becomes a replica of host:port, or a master when host is NULL (any
 * thread, no lock held).  Returns 0, or 1 when nothing changed. */
int repl__set_master(struct repl *r, const char *host, int64_t port, const char *why);
void repl__replica_cron(struct repl *r, int64_t now_ms);
void repl__link_follow(struct repl *r); /* thread: connect/drop as master_gen says */
void repl__link_free(struct repl *r);

/* metrics.c: INFO's sync_full, sync_partial_ok, sync_partial_err */
void repl__sync_stats(void *ud, uint64_t out[3]);

/* repl_config.c */
void repl__info(void *ud, const char *section, struct buf *out);
int repl__role(void *ud, struct buf *out);
void repl__config_bind(struct repl *r);

#endif
