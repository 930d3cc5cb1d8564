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
    char *pidfile;
    int appendonly; /* always "no": accepted so Redis config files and tools work */
    int64_t max_multibulk;
    int64_t notify_keyspace_events; /* letters as bits (pubsub.c), K/E included */
    int daemonize;  /* always "no" (server_new refuses "yes"): accepted for Redis config files */
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

/* Builds the server: engine, workers, listeners.  NULL with a message in err
 * when a listener cannot be opened. */
struct server *server_new(struct server_config *sc, struct cfg *conf, const char *conf_path, struct eng *e,
                          char *err, size_t errlen);
void server_set_hooks(struct server *s, const struct server_hooks *h);
/* Runs until SIGTERM/SIGINT or SHUTDOWN; returns the exit status. */
int server_run(struct server *s);
void server_free(struct server *s);

#endif
