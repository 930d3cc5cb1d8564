/* repl.h: master/replica replication as the composition root sees it.
 *
 * What it is: the master side (replication id and offset, the backlog fed
 * by the engine's journal, PSYNC partial and full resynchronisation with the
 * snapshot encoding streamed over the socket, replicas' acknowledgements,
 * WAIT), the replica side (REPLICAOF/SLAVEOF, the handshake, loading the
 * master's snapshot, applying its stream, acknowledging, reconnecting and
 * continuing from the offset, relaying to chained replicas), INFO
 * replication, ROLE and FAILOVER, in Redis 7.0's words so that Sentinel and
 * clients work unchanged.  What it is not: no failure detection or election
 * (Sentinel or the operator decides), no snapshot files (replication.h).
 *
 * Wiring (main.c):
 *
 *     struct repl_config *rcfg = repl_config_register(conf);   // options
 *     ... cfg_load_all(...) ...
 *     struct repl *repl = repl_new(e, rcfg);
 *     srv = server_new(...);
 *     struct server_repl_ops ops;
 *     repl_ops(repl, &ops);
 *     server_set_repl_ops(srv, &ops);
 *     repl_start(repl, srv, sc, &env);     // its thread; connects when replicaof is set
 *     server_run(srv);                     // calls ops.stopping: the thread ends
 *     server_free(srv);
 *     repl_free(repl);
 *
 * Thread: its own thread and loop run the link to a master, the transfer of
 * full copies to replicas and the periodic work; the ops run on the
 * server's workers; the journal hook on whichever thread wrote. */
#ifndef REPLICATION_REPL_H
#define REPLICATION_REPL_H

#include <stdint.h>

#include "base/config.h"
#include "server.h"

struct eng;

/* The replication options, named as Redis names them (aliases too:
 * slaveof, slave-read-only, slave-priority...). */
struct repl_config {
    char *master_host; /* replicaof host port ("" / NULL: a master) */
    int64_t master_port;
    char *masterauth, *masteruser;
    int replica_read_only;
    int64_t backlog_size, backlog_ttl;
    int64_t replica_priority;
    int64_t repl_timeout, ping_period;
    int replica_announced;
    char *announce_ip;
    int64_t announce_port;
    int diskless_sync, serve_stale_data, lazy_flush, disable_tcp_nodelay;
    int64_t diskless_sync_delay, diskless_sync_max_replicas, min_replicas_to_write, min_replicas_max_lag;
    int diskless_load;
    int64_t shutdown_timeout;
};

/* Registers the options; returns where they land (one per process). */
struct repl_config *repl_config_register(struct cfg *c);

/* What replication tells other modules. */
struct repl_env {
    void *ud;
    /* This node became a master (1) or a replica (0): the bot starts or
     * stands by.  Called once at start too.  Any thread. */
    void (*on_role_change)(void *ud, int is_master);
};

/* Borrows e and cfg (they must outlive it).  The node starts as a replica
 * when cfg names a master. */
struct repl *repl_new(struct eng *e, struct repl_config *cfg);
/* The server's side of the contract (server.h), with ud = r. */
void repl_ops(struct repl *r, struct server_repl_ops *out);
/* Starts the thread.  Borrows sc: the port this node announces to its
 * master, the replicas' output buffer limit.  0 or -errno. */
int repl_start(struct repl *r, struct server *srv, const struct server_config *sc, const struct repl_env *env);
/* Stops the thread (the server calls it through ops.stopping). */
void repl_stop(struct repl *r);
void repl_free(struct repl *r);
/* Appends replication's Prometheus families (role, offset, lag per
 * replica, link, full and partial syncs) to out (metrics.c).  Any thread. */
void repl_metrics(struct repl *r, struct buf *out);
/* On a replica, "replica of host:port, link up|down" into out (readyz);
 * nothing on a master.  Any thread. */
void repl_status_text(struct repl *r, struct buf *out);
/* master_repl_offset now (a snapshot's offset).  Any thread. */
uint64_t repl_offset_of(void *r);

#endif
