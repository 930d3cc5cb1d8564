/* server_int.h: the protocol module's private structures: the server, its
 * worker threads, clients, the command table and the call context handed to
 * command handlers.  Only protocol/ files include this.
 *
 * Threads.  `shards` worker threads each run one libuv loop.  Every worker
 * listens on the same port (SO_REUSEPORT: the kernel spreads connections) and
 * owns the clients it accepted: a client's bytes are read, parsed, executed
 * and answered on its worker only.  Keys are not owned by threads: a command
 * locks the shards of its keys (engine.h), so any worker can serve any key and
 * multi-key commands stay atomic.  Work for a client of another worker
 * (CLIENT KILL, MONITOR lines, unblocking) goes through that worker's mailbox
 * (a locked list drained on a uv_async wake-up). */
#ifndef PROTOCOL_SERVER_INT_H
#define PROTOCOL_SERVER_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <uv.h>

#include "base/buf.h"
#include "base/config.h"
#include "engine.h"
#include "keytab.h"
#include "resp.h"
#include "server.h"

/* ---- commands ------------------------------------------------------------ */

enum cmd_flags {
    CMD_WRITE = 1 << 0,
    CMD_READONLY = 1 << 1,
    CMD_DENYOOM = 1 << 2,
    CMD_FAST = 1 << 3,
    CMD_NOAUTH = 1 << 4,    /* allowed before AUTH */
    CMD_ADMIN = 1 << 5,
    CMD_PUBSUB = 1 << 6,    /* allowed in RESP2 subscribe mode */
    CMD_NOMULTI = 1 << 7,   /* not queued by MULTI (executes or errors) */
    CMD_LOCKALL = 1 << 8,   /* needs every shard locked */
    CMD_NOLOCK = 1 << 9,    /* handler locks by itself (or needs no keys) */
    CMD_LOADING = 1 << 10,  /* allowed while loading */
    CMD_STALE = 1 << 11,    /* allowed on a replica with a broken link */
    CMD_BLOCKING = 1 << 12,
    CMD_NOSCRIPT = 1 << 13,
    CMD_SKIP_MONITOR = 1 << 14,
    CMD_SKIP_SLOWLOG = 1 << 15,
    CMD_LOCKFREE = 1 << 16, /* with CMD_NOLOCK: takes no engine lock at all, so
                               EXEC may run it under the transaction's locks */
};

struct call;
typedef void cmd_fn(struct call *k);
/* For commands whose keys are not a first/last/step run (ZUNIONSTORE,
 * LMPOP...): fills keys (positions) and returns how many, or -1 on a syntax
 * error that the handler will report. */
typedef int cmd_keys_fn(int argc, const struct eng_str *argv, int *pos, int max);

struct cmd_def {
    const char *name;   /* lower case */
    cmd_fn *fn;
    int arity;          /* -N: at least N */
    unsigned flags;
    int first, last, step;
    cmd_keys_fn *getkeys;
    const char *group;     /* COMMAND DOCS group: string, generic, server, connection... */
    const char *summary;
    const char *since;
    const char *complexity;
    const char *args;      /* COMMAND DOCS / hints: "key value [EX seconds|PX ms] ..." */
    int id;                /* index in the table, set at start; subcommands after the commands */
    /* Subcommands (Redis 7's CONFIG|GET...), rows of subcommands.def: each is
     * a command of its own for the dispatcher (arity, flags, keys, stats)
     * whose handler is, unless the row names one, its container's. */
    const char *fullname;       /* "config|get"; the name for a top-level command */
    const struct cmd_def *parent; /* the container of a subcommand, else NULL */
    const struct cmd_def *subs; /* a container's subcommands: nsubs rows */
    int nsubs;
    /* The rest of COMMAND DOCS (docs.def): doc flags, deprecation, history. */
    unsigned doc_flags;         /* enum cmd_doc_flags */
    const char *deprecated_since, *replaced_by;
    const struct cmd_history *history;
    int nhistory;
    const struct server_cmd *module; /* a row another module registered (server.h) */
};

enum cmd_doc_flags { CMD_DOC_DEPRECATED = 1 << 0, CMD_DOC_SYSCMD = 1 << 1 };

struct cmd_history {
    const char *since, *changes;
};

/* Every handler's prototype, from the table (CMDK rows: and their getkeys). */
#define CMD(name, fn, arity, flags, first, last, step, group, args) void fn(struct call *k);
#define CMDK(name, fn, arity, flags, getkeys, group, args) void fn(struct call *k); cmd_keys_fn getkeys;
#include "commands.def"
#undef CMDK
#undef CMD

const struct cmd_def *cmd_lookup(const char *name, size_t n);
/* The top-level commands (*n of them); subcommands hang off their containers. */
const struct cmd_def *cmd_table(int *n);
/* How many command ids there are, subcommands included: the size of arrays
 * indexed by cmd_def.id (command statistics). */
int cmd_id_count(void);
/* The subcommand of parent named by argv[1], or NULL. */
const struct cmd_def *cmd_lookup_sub(const struct cmd_def *parent, const char *name, size_t n);
/* A command by its full name, "config|get" included, or NULL. */
const struct cmd_def *cmd_lookup_full(const char *name, size_t n);
/* What a request runs, as Redis 7's lookupCommand(): a container's
 * subcommand when argv[1] names one.  NULL for an unknown command, and for an
 * unknown subcommand with *container set to the command that lacks it. */
const struct cmd_def *cmd_resolve(int argc, const struct eng_str *argv, const struct cmd_def **container);
/* cmd_resolve with rename-command applied: what a client's request runs. */
const struct cmd_def *cmd_resolve_client(int argc, const struct eng_str *argv, const struct cmd_def **container);
/* rename-command (the config): clients call `from` as `to` ("" disables
 * it); cmd_resolve_client applies it.  Start-up only.  0, or -1 with err. */
int cmd_rename_add(const char *from, const char *to, char *err, size_t errlen);
void cmd_renames_clear(void);
void cmd_renames_format(struct buf *out); /* CONFIG REWRITE's: "a \"b\"\nrename-command c \"\"" */

/* ---- clients ------------------------------------------------------------- */

enum client_flags {
    CL_CLOSE_AFTER_REPLY = 1 << 0,
    CL_CLOSE_ASAP = 1 << 1,
    CL_MONITOR = 1 << 2,
    CL_PUBSUB = 1 << 3,
    CL_BLOCKED = 1 << 4,
    CL_MULTI = 1 << 5,
    CL_DIRTY_CAS = 1 << 6,
    CL_DIRTY_EXEC = 1 << 7,
    CL_PAUSED = 1 << 8,     /* waiting for CLIENT PAUSE to end */
    CL_REPLICA = 1 << 9,
    CL_MASTER = 1 << 10,
    CL_CLOSING = 1 << 11,   /* uv_close issued */
    CL_NO_REPLY = 1 << 12,       /* CLIENT REPLY OFF */
    CL_REPLY_SKIP_NEXT = 1 << 13, /* CLIENT REPLY SKIP ran: skip the next reply */
    CL_REPLY_SKIP = 1 << 14,      /* this command's reply is skipped */
};

struct worker;

struct client {
    uv_tcp_t tcp;
    struct worker *w;
    uint64_t id;
    unsigned flags;
    int proto, db, authed;
    struct acl_user *user;      /* who AUTH made it (acl.h); NULL: the default user */
    char *name;                 /* CLIENT SETNAME; guarded by srv->clients_lock */
    char addr[64], laddr[64];
    int fd;
    int64_t ctime_ms, last_ms;  /* creation, last interaction (wall ms) */
    /* input */
    struct buf qbuf;
    size_t qpos;                /* bytes of qbuf already executed */
    struct resp_req_reader rd;
    struct eng_str *argv;       /* scratch for the current request */
    int argv_cap;
    const struct cmd_def *last_cmd;
    /* output */
    struct buf obuf;            /* replies not yet handed to the kernel */
    struct buf wbuf;            /* bytes of the write in flight */
    size_t wpos;
    uv_write_t wreq;
    int writing;
    int flush_queued;           /* on w->flushq: replies go out after this loop turn's reads */
    struct client *flush_next;
    int64_t obuf_soft_since_ms; /* when the soft limit was first exceeded, 0 = not */
    uint64_t net_in, net_out;
    /* registry (srv->clients_lock) and worker list */
    struct client *prev, *next;
    struct client *wprev, *wnext;
    struct kt_node idnode; /* in w->byid, keyed by the bytes of id */
    /* extension state of other features (transactions, pub/sub, blocking) */
    void *multi, *pubsub, *blocked;
    /* replication (cmd_repl.c): WAIT's wait, what REPLCONF told before
     * PSYNC, and master_repl_offset after this client's last write */
    void *waiting;
    struct server_replica_info *repl;
    uint64_t woff;
};

/* ---- workers --------------------------------------------------------- */

struct msg {
    struct msg *next;
    int kind;          /* enum msg_kind */
    uint64_t client_id;
    size_t len;
    char data[];
};
enum msg_kind {
    MSG_KILL = 1, MSG_WRITE, MSG_RESUME, MSG_STOP, MSG_CALLBACK,
    MSG_CLOSE,     /* close the client, not counted as a kill (replication) */
    MSG_CONN_CALL, /* data: server_conn_fn *, void *ud; run with the client's obuf */
};

/* Command durations for obentchi_command_duration_seconds (server_metrics.c):
 * upper bounds in microseconds, a count per bucket, the last one +Inf. */
#define CMD_HIST_NB 16
static const uint32_t cmd_hist_bounds_us[CMD_HIST_NB] = {10,    25,    50,    100,    250,    500,    1000,   2500,
                                                        5000,  10000, 25000, 50000,  100000, 250000, 500000, 1000000};
static inline int cmd_hist_bucket(int64_t us)
{
    int i = 0;
    while (i < CMD_HIST_NB && us > (int64_t)cmd_hist_bounds_us[i])
        i++;
    return i;
}

/* A worker's counters (struct worker's, its cmdstats): only that worker adds
 * to them; INFO and /metrics read them on any thread, CONFIG RESETSTAT
 * zeroes them from the thread that runs it.  Relaxed atomic loads and
 * stores, each a plain move on x86-64 and arm64: a reader sees a value a
 * moment old, never a torn one, and no access is a data race.  An add that
 * races with a reset may survive it, which a reset tolerates. */
#define STAT_GET(f) __atomic_load_n(&(f), __ATOMIC_RELAXED)
#define STAT_SET(f, v) __atomic_store_n(&(f), (v), __ATOMIC_RELAXED)
#define STAT_ADD(f, n) STAT_SET(f, STAT_GET(f) + (n))

struct cmd_stat {
    uint64_t calls, usec, rejected, failed;
    uint64_t hist[CMD_HIST_NB + 1]; /* durations (cmd_hist_bounds_us) */
};

struct worker {
    int id;
    struct server *srv;
    uv_loop_t loop;
    uv_thread_t thread;
    uv_tcp_t listeners[8];
    int nlisteners;
    uv_async_t wake;
    uv_timer_t cron;
    pthread_mutex_t mbox_lock;
    struct msg *mbox_head, *mbox_tail;
    /* A message the worker posts to itself (a blocked client of its own
     * served, a PUBLISH to its own subscriber) is read at the end of the
     * loop iteration (self_check), with self_idle keeping the loop from
     * sleeping meanwhile: no eventfd write and read, no extra iteration. */
    uv_check_t self_check;
    uv_idle_t self_idle;
    int self_posted;
    /* Busy polling (busy-poll-us): after a turn that served clients the loop
     * polls without sleeping until spin_until, so that a client answering
     * at once finds the worker awake and its send need not wake a thread. */
    uv_idle_t spin_idle;
    int spinning;
    uint64_t spin_until; /* uv_hrtime() ns */
    /* Clients that read and got replies in this loop iteration: their
     * replies go out together once every readable connection was served
     * (self_check), as Redis writes in beforeSleep, so that a peer
     * waiting on many connections wakes once for many replies. */
    struct client *flushq;
    struct sendbatch *batch; /* made at the first turn with two clients to answer */
    int nobatch;             /* io_uring is not to be had: one send each */
    struct client *clients; /* this worker's clients (wprev/wnext) */
    struct keytab byid;     /* the same clients by id: mailbox messages name clients by id */
    int nclients;
    struct cmd_stat *cmdstats; /* per command id */
    uint64_t commands, conns_received, rejected_conns, net_in, net_out, errors;
    uint64_t ops_sample_cmds;
    int64_t ops_sample_ms;
    int stopping;
};

/* ---- the server ------------------------------------------------------ */

struct slowlog_entry {
    uint64_t id;
    int64_t time, usec;
    int argc;
    struct eng_str *argv; /* owned copies, clipped as Redis does */
    char addr[64], name[64];
};

struct server {
    struct server_config *cfg;
    struct cfg *conf;         /* the option registry (CONFIG GET/SET) */
    char *conf_path;          /* config file, for CONFIG REWRITE */
    struct eng *eng;
    struct worker *workers;
    int nworkers;
    uv_loop_t *main_loop;
    uv_async_t main_wake;
    _Atomic int shutdown_asked;
    _Atomic int loading;      /* server_set_loading: -LOADING for most commands */
    int shutdown_flags;       /* SHUTDOWN_SAVE / NOSAVE */
    /* clients registry */
    pthread_mutex_t clients_lock;
    struct client *clients;
    _Atomic uint64_t next_client_id;
    _Atomic int nclients;
    _Atomic int nmonitors;
    /* CLIENT PAUSE */
    _Atomic int64_t pause_until_ms;
    _Atomic int pause_all; /* 1: ALL, 0: WRITE */
    /* slowlog */
    pthread_mutex_t slowlog_lock;
    struct slowlog_entry *slowlog;
    int slowlog_len, slowlog_head;
    uint64_t slowlog_next_id;
    /* stats */
    int64_t start_ms;
    char run_id[41];
    _Atomic uint64_t stat_kills;
    struct server_hooks hooks;
    /* Features inside protocol/ that keep per-client state (transactions,
     * pub/sub, blocking) clean up through this when a client goes away. */
    struct {
        void (*on_close)(struct client *c);
        void (*on_reset)(struct client *c); /* RESET */
    } hooks_internal;
    /* Registries of transactions (WATCH), pub/sub and blocked clients, each
     * behind its own lock (multi.c, pubsub.c, blocking.c). */
    struct watch_reg *watch;
    struct pubsub *pubsub;
    struct block_reg *blocking;
    /* replication/'s side of REPLICAOF, PSYNC, WAIT... (cmd_repl.c) */
    struct server_repl_ops repl;
    _Atomic int read_only;    /* server_set_read_only */
    struct wait_reg *waits;   /* WAIT's blocked clients */
};

/* ---- the call context handed to handlers -------------------------------- */

struct call {
    struct server *srv;
    struct client *cl;
    const struct cmd_def *cmd;
    int argc;
    const struct eng_str *argv;
    struct eng_ctx ec;        /* locks as the command's key spec asked */
    struct buf *out;          /* where replies go */
    int proto;
    int failed;               /* set by reply_error: counts failed_calls */
};

/* Replies (write to k->out). */
void reply_ok(struct call *k);
void reply_error(struct call *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Reports an engine/base error code in Redis's words. */
void reply_errcode(struct call *k, int code);
void reply_syntax(struct call *k);
/* HSCAN/SSCAN's common start: cursor, then the key (card() gives its size,
 * or an error such as WRONGTYPE), then MATCH/COUNT.  Returns 1 to go on,
 * 0 when the key is missing or empty (the empty scan is replied), -1 after
 * an error reply. */
int arg_scan_container(struct call *k, int (*card)(struct eng_ctx *, const char *, size_t, int64_t *),
                       uint64_t *cursor, const char **pat, size_t *plen, int64_t *count);
/* A HELP subcommand's reply: one simple string per line. */
void reply_help(struct call *k, const char *const *lines, size_t n);
void reply_nokey(struct call *k);
void reply_empty_scan(struct call *k); /* [0, []] */
/* Strings copied under the engine's locks (keys, members), replied after. */
struct bulklist {
    struct buf bytes;
    struct buf lens; /* size_t per string */
    int64_t n;
};
#define BULKLIST_INIT {BUF_INIT, BUF_INIT, 0}
void bulklist_add(void *ud, const char *p, size_t n); /* ud: struct bulklist */
/* An array of the strings; releases the list. */
void reply_bulklist(struct call *k, struct bulklist *l);
/* A SCAN-family reply: [next cursor, [the strings]]; releases the list. */
void reply_scan(struct call *k, uint64_t next, struct bulklist *l);

/* Argument helpers that reply on failure (Redis's ...OrReply). */
int arg_i64(struct call *k, int i, int64_t *out);
int arg_i64_range(struct call *k, int i, int64_t lo, int64_t hi, const char *what, int64_t *out);
int arg_double(struct call *k, int i, long double *out);
int arg_is(const struct call *k, int i, const char *word); /* case-insensitive */
/* A NUL-terminated copy of argv[i] (xmalloc). */
char *arg_strdup(const struct call *k, int i);
int arg_scan_cursor(struct call *k, int i, uint64_t *out); /* SCAN cursor, strtoul rules */
int arg_scan_opts(struct call *k, int i, const char **pat, size_t *plen, int64_t *count, int *type);

/* Clients. */
struct client *client_new(struct worker *w);
/* Makes an accepted client known: CLIENT LIST, its worker's list and id table. */
void client_register(struct client *c);
void client_close(struct client *c);  /* now, from the client's worker */
void client_flush(struct client *c);
void client_flush_queued(struct worker *w);
/* Runs the commands waiting in c's query buffer (after a pause or block). */
void client_process_input(struct client *c);
/* CLIENT LIST line for one client. */
void client_describe(struct server *srv, struct client *c, struct buf *out);
/* Delivers a message to the worker that owns client id (kill, write...). */
void worker_post(struct worker *w, int kind, uint64_t client_id, const void *data, size_t len);
struct worker *worker_current(void);
/* Accept callback of the listeners (listener->data is the worker). */
void conn_accept(uv_stream_t *listener, int status);

/* Dispatch one request of c (argv valid until return).  Returns 0 when the
 * request was consumed, 1 when it must wait (CLIENT PAUSE) and be retried. */
int dispatch_request(struct client *c, int argc, const struct eng_str *argv);
/* Execute a command with its locks taken (used by dispatch and EXEC). */
void call_command(struct call *k);
/* The shards of the command's keys, locked into k->ec. */
void lock_for_command(struct call *k);

/* Runs k's handler with k->ec already locked by the caller (EXEC), with the
 * statistics and slow log of call_command. */
void call_locked(struct call *k);
/* The keys of a request by its table row (first/last/step or getkeys).
 * Returns 0 with the keys in *out, or CMD_LOCKALL / CMD_NOLOCK when the
 * command locks everything or by itself.  out borrows argv. */
struct key_list {
    struct eng_str *v;
    int n, cap;
    struct eng_str stack[16];
};
void key_list_init(struct key_list *l);
void key_list_push(struct key_list *l, struct eng_str key);
void key_list_release(struct key_list *l);
int command_keys(const struct cmd_def *cmd, int argc, const struct eng_str *argv, struct key_list *out);
/* The client whose request this thread is running, or NULL (cron, bot). */
struct client *client_current(void);

/* ---- transactions, pub/sub, blocking ------------------------------------ */

/* features.c: creates the registries, installs the engine's notify/modified/
 * ready hooks (and the journal forwarder) and the client close/reset hooks. */
void features_init(struct server *s);
void features_free(struct server *s);
void features_set_journal(struct server *s); /* after server_set_hooks */

/* multi.c.  MULTI/EXEC/DISCARD/WATCH/UNWATCH, QUIT and RESET run inside
 * MULTI; anything else is queued by the dispatcher. */
int multi_is_control(const struct cmd_def *cmd);
void multi_queue(struct client *c, const struct cmd_def *cmd, int argc, const struct eng_str *argv);
unsigned multi_queued_flags(const struct client *c); /* union of the queued rows' flags */
int multi_executing(const struct client *c);         /* inside EXEC: blocking commands don't block */
void multi_client_gone(struct client *c);            /* close, RESET: discard and unwatch */
struct watch_reg *watch_reg_new(void);
void watch_reg_free(struct watch_reg *r);
/* Engine hook: a key (NULL: every key of db, db -1: of every db) changed. */
void watch_touch(struct server *s, int db, const char *key, size_t klen);

/* pubsub.c */
struct pubsub *pubsub_new(void);
void pubsub_free(struct pubsub *p);
void pubsub_client_gone(struct client *c); /* close, RESET: unsubscribes all */
/* Engine hook: a keyspace event (called under shard locks; only posts). */
void pubsub_notify(struct server *s, int db, int cls, const char *event, const char *key, size_t klen);
/* Channels, patterns and shard channels with subscribers (INFO stats). */
void pubsub_counts(struct server *s, uint64_t *channels, uint64_t *patterns, uint64_t *shard);
/* notify-keyspace-events: parse/format the letters, and the engine's mask. */
int notify_flags_parse(const char *s, int64_t *flags);
void notify_flags_format(int64_t flags, struct buf *out);
unsigned notify_engine_mask(int64_t flags);

/* blocking.c */
struct block_reg *block_reg_new(void);
void block_reg_free(struct block_reg *r);
void blocking_client_gone(struct client *c); /* close: leaves no registry entry */
/* CLIENT UNBLOCK: 1 when client id was waiting in a blocking pop (it gets the
 * timeout's reply, or the UNBLOCKED error), 0 otherwise. */
int blocking_unblock(struct server *s, uint64_t id, int error);
/* Engine hook: a list/zset key got elements (under shard locks; records). */
void blocking_ready(struct server *s, int db, const char *key, size_t klen);
/* Serves the clients blocked on keys that got elements, in arrival order.
 * Call with no engine lock held, after any command that may push. */
void blocking_serve_ready(struct server *srv);

void slowlog_push(struct server *srv, struct client *c, int argc, const struct eng_str *argv, int64_t usec);
void monitor_feed(struct server *srv, struct client *c, int argc, const struct eng_str *argv);
/* k's arguments as MONITOR and the slow log show them: passwords (AUTH's,
 * HELLO's AUTH username password) read "(redacted)", as in Redis 7.  Returns
 * k->argv, or a copy in *copy (new; the caller xfrees it, valid with k). */
const struct eng_str *args_for_log(const struct call *k, struct eng_str **copy);

/* cmd_repl.c: WAIT's registry, and the cleanup of a closing client. */
struct wait_reg *wait_reg_new(void);
void wait_reg_free(struct wait_reg *r);
void repl_client_gone(struct client *c);

/* Sections of INFO, written in Redis's format. */
void info_write(struct server *srv, struct client *cl, const char *section, struct buf *out);

#endif
