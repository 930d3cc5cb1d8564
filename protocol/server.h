/* server.h: the RESP server as the composition root sees it: its options, its
 * construction, its run loop.  Everything else about it is private
 * (server_int.h). */
#ifndef PROTOCOL_SERVER_H
#define PROTOCOL_SERVER_H

#include <stdint.h>

#include "base/buf.h"
#include "base/config.h"

struct eng;
struct eng_str;

/* Output buffer limit of one client class (client-output-buffer-limit). */
struct obuf_limit {
    int64_t hard, soft, soft_seconds;
};
enum { OBL_NORMAL, OBL_REPLICA, OBL_PUBSUB, OBL__COUNT };

/* The server's options.  Field names follow the option names. */
struct server_config {
    int64_t port;
    char *bind;            /* space-separated addresses */
    char *requirepass;
    int64_t maxclients;
    int64_t maxmemory;
    int maxmemory_policy;
    int64_t maxmemory_samples;
    char *dir;
    char *logfile;
    int loglevel;
    int log_format;
    int64_t databases;
    int64_t shards;
    int64_t io_threads; /* worker threads; 0 until main() settles it */
    int64_t proto_max_bulk_len;
    int64_t client_query_buffer_limit;
    struct obuf_limit obuf_limits[OBL__COUNT];
    int64_t timeout;
    int64_t tcp_backlog;
    int64_t tcp_keepalive;
    int64_t hz;
    int64_t slowlog_log_slower_than;
    int64_t slowlog_max_len;
    int64_t busy_reply_threshold;
    int64_t busy_poll_us; /* keep polling this long after a turn with work before sleeping */
    char *pidfile;
    int appendonly; /* always "no": accepted so Redis config files and tools work */
    int64_t max_multibulk;
    int64_t notify_keyspace_events; /* letters as bits (pubsub.c), K/E included */
    int daemonize;  /* always "no" (server_new refuses "yes"): accepted for Redis config files */
    int protected_mode; /* no password for default: only loopback clients (conn.c) */
    int io_uring;       /* answers of many sockets in one system call (sendbatch.h) */
};

/* Registers the server's option table; returns the struct its values land in
 * (one per process). */
struct server_config *server_options_register(struct cfg *c);
/* Lets run-time option changes reach the engine (maxmemory...). */
void server_options_bind_engine(struct eng *e);

/* Other modules plug into the server through hooks (no reverse dependency). */
struct server_hooks {
    void *ud;
    /* Extra INFO sections: called for every section name asked ("all" too);
     * append "# Name\r\n..." when the section is yours. */
    void (*info)(void *ud, const char *section, struct buf *out);
    /* SHUTDOWN SAVE / SAVE on shutdown: 0 ok, -1 failed (shutdown aborted). */
    int (*save_on_shutdown)(void *ud, int explicit_save);
    /* 1 when this node is a replica (HELLO's role). */
    int (*is_replica)(void *ud);
    /* The write journal (replication).  The engine's hooks belong to the
     * server (keyspace notifications, WATCH, blocked clients need them), so
     * the journal comes through here rather than eng_set_hooks(): do not
     * call eng_set_hooks() once the server exists.  Same contract as
     * struct eng_hooks.journal; "MULTI" and
     * "EXEC" wrap the writes of a transaction (eng_journal_multi). */
    void (*journal)(void *ud, int db, int argc, const struct eng_str *argv);
};

struct server;

/* ---- commands of other modules ------------------------------------------- */

struct eng_str;

/* A request as a module's handler sees it. */
struct server_cmd_call {
    int argc;
    const struct eng_str *argv; /* argv[0] is the command's name */
    struct buf *out;            /* the reply, written with resp.h's writers */
    int proto;                  /* 2 or 3 */
};
/* Returns 0, or -1 when it replied with an error (counted as failed). */
typedef int server_cmd_fn(void *ud, const struct server_cmd_call *k);

/* A command another module adds (the snapshot commands of replication/). */
struct server_cmd {
    const char *name; /* lower case */
    server_cmd_fn *fn;
    void *ud;
    int arity; /* as commands.def: -N is at least N */
    /* Space-separated, as Redis modules spell them: write readonly deny-oom
     * fast admin loading stale no-multi noscript no-monitor no-slowlog.  The
     * handler runs with no shard locked (it locks what it needs). */
    const char *flags;
    const char *group, *summary, *since, *args; /* COMMAND DOCS */
};

/* Adds rows to the command table; they are borrowed and must outlive the
 * server.  Call before server_new() (the table is built once, at its first
 * use).  A row named like a built-in command replaces it.  0, or -1 with a
 * message in err (unknown flag, too many rows, too late). */
int server_register_commands(const struct server_cmd *rows, int n, char *err, size_t errlen);
/* While on, commands without the loading flag get "-LOADING ..." (a
 * snapshot is being restored).  Any thread. */
void server_set_loading(struct server *s, int on);

/* ---- replication (replication/repl.h plugs in here) ----------------------- */

/* A client connection as replication names it: its worker and id.  A name
 * only: once the client is gone, operations on it do nothing. */
struct server_conn {
    int worker;
    uint64_t id;
};

/* What a replica said before PSYNC (REPLCONF), and where it is. */
struct server_replica_info {
    struct server_conn conn;
    char ip[64];          /* REPLCONF ip-address, else the peer address */
    int64_t listening_port; /* REPLCONF listening-port, 0 if not told */
    unsigned capa;        /* SERVER_CAPA_* */
};
enum { SERVER_CAPA_EOF = 1 << 0, SERVER_CAPA_PSYNC2 = 1 << 1 };

/* The replication commands' work, done by replication/.  Each runs on the
 * calling client's worker, writes its whole reply (RESP, in proto) to out
 * and returns 0, or -1 when that reply is an error. */
struct server_repl_ops {
    void *ud;
    /* The write journal (takes the place of server_hooks.journal). */
    void (*journal)(void *ud, int db, int argc, const struct eng_str *argv);
    /* Whether journal keeps what it gets now (eng_hooks.journal_wanted). */
    int (*journal_wanted)(void *ud);
    /* The "# Replication" INFO section (called for every section asked). */
    void (*info)(void *ud, const char *section, struct buf *out);
    int (*replicaof)(void *ud, int argc, const struct eng_str *argv, struct buf *out);
    int (*role)(void *ud, struct buf *out);
    int (*failover)(void *ud, int argc, const struct eng_str *argv, struct buf *out);
    /* PSYNC/SYNC from a replica.  Returns 1 when the connection became a
     * replica (its output then belongs to replication), 0 when it replied
     * something else, -1 on an error reply. */
    int (*psync)(void *ud, const struct server_replica_info *ri, int argc, const struct eng_str *argv,
                 struct buf *out);
    /* REPLCONF ACK <offset> from a replica connection (no reply). */
    void (*ack)(void *ud, const struct server_conn *c, uint64_t offset);
    /* A replica's connection closed (on its worker). */
    void (*replica_closed)(void *ud, const struct server_conn *c);
    /* WAIT: master_repl_offset now; how many replicas acknowledged offset
     * (-1: this node is a replica, WAIT is refused); ask replicas for an
     * acknowledgement of offset (REPLCONF GETACK). */
    uint64_t (*offset)(void *ud);
    int (*acked)(void *ud, uint64_t offset);
    void (*request_acks)(void *ud, uint64_t offset);
    int (*is_replica)(void *ud); /* HELLO's role */
    /* The server is stopping: called once its main loop ended, before the
     * workers stop (replication's thread must stop posting to them). */
    void (*stopping)(void *ud);
    /* INFO stats' sync_full, sync_partial_ok, sync_partial_err (NULL: 0s). */
    void (*sync_stats)(void *ud, uint64_t out[3]);
};
void server_set_repl_ops(struct server *s, const struct server_repl_ops *ops);
/* replica-read-only on a replica: clients' writes get -READONLY.  Any thread. */
void server_set_read_only(struct server *s, int on);
int server_is_loading(struct server *s);
/* FAILOVER: writes wait (as CLIENT PAUSE WRITE, with no end) while on; off
 * resumes them (they then meet -READONLY when this node became a replica). */
void server_pause_writes(struct server *s, int on);
/* Re-checks WAIT's blocked clients (acknowledgements came).  Any thread. */
void server_acks_changed(struct server *s);

/* Any thread: appends bytes to c's output (in posting order); runs fn on
 * c's worker with c's output buffer, then flushes it (fn is not called when
 * c has gone); closes c. */
void server_conn_send(struct server *s, const struct server_conn *c, const void *p, size_t n);
typedef void server_conn_fn(void *ud, const struct server_conn *c, struct buf *out);
void server_conn_call(struct server *s, const struct server_conn *c, server_conn_fn *fn, void *ud);
void server_conn_kill(struct server *s, const struct server_conn *c);

/* The replication stream's "master client" (Redis's server.master): no
 * connection, runs requests on the calling thread through the dispatcher,
 * and its writes pass a read-only replica.  One thread at a time. */
struct server_pseudo;
struct server_pseudo *server_pseudo_new(struct server *s);
/* Runs one request; its reply goes to reply (NULL: dropped). */
void server_pseudo_exec(struct server_pseudo *p, int argc, const struct eng_str *argv, struct buf *reply);
/* Forgets a half-received transaction and returns to db 0 (a new master). */
void server_pseudo_reset(struct server_pseudo *p);
int server_pseudo_in_multi(const struct server_pseudo *p);
/* The db its next command runs in, and a change of it (after a full copy:
 * the stream's db comes with the offset). */
int server_pseudo_db(const struct server_pseudo *p);
void server_pseudo_select(struct server_pseudo *p, int db);
void server_pseudo_free(struct server_pseudo *p);

/* Builds the server: engine, workers, listeners.  NULL with a message in err
 * when a listener cannot be opened. */
struct server *server_new(struct server_config *sc, struct cfg *conf, const char *conf_path, struct eng *e,
                          char *err, size_t errlen);
void server_set_hooks(struct server *s, const struct server_hooks *h);

/* ---- observation (server_metrics.c) ----------------------------------------- */

/* Appends the engine's and the server's Prometheus families (keys per db,
 * expired/evicted keys, memory, clients, commands with duration histograms)
 * to out.  Any thread. */
void server_metrics(struct server *s, struct buf *out);
/* 1 when every worker's cron ran within max_age_ms (the workers turn). */
int server_alive(struct server *s, int64_t max_age_ms);
/* Runs until SIGTERM/SIGINT or SHUTDOWN; returns the exit status. */
int server_run(struct server *s);
void server_free(struct server *s);

#endif
