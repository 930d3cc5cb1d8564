/* replication.h: point-in-time snapshots of the whole keyspace, to MongoDB or to
 * local files, and the restore at start, as the composition root sees them.
 *
 * What it is: the snapshot scheduler (Redis's `save` rules, SAVE, BGSAVE
 * [SCHEDULE], LASTSAVE, SHUTDOWN SAVE), the INFO persistence section, and
 * the restore of the newest complete snapshot at start, all run by one
 * background thread that owns the MongoDB client.  The point in time is a
 * fork(): the child walks its copy-on-write copy of the engine and streams
 * frames back through a pipe (snapshot_fork.c).  The loops never block on
 * any of it.
 *
 * Wiring (main.c):
 *
 *     struct repl_snap_config *rc = repl_options_register(conf);  // options
 *     ... cfg_load_all(...) ...; repl_options_check(err, sizeof err) ...
 *     struct repl_snap *snap = repl_snap_new(e, rc);
 *     server_register_commands(repl_snap_commands(snap, &n), n, err, sizeof err);
 *     srv = server_new(...);
 *     server_set_hooks(srv, &(struct server_hooks){.ud = snap, .info = repl_snap_info,
 *                      .save_on_shutdown = repl_snap_save_on_shutdown});
 *     repl_snap_start(snap, &env);   // restores (LOADING meanwhile), then schedules
 *     server_run(srv);
 *     repl_snap_free(snap);          // before the engine goes
 *
 * Thread: the hooks and commands may be called from any thread. */
#ifndef REPLICATION_REPLICATION_H
#define REPLICATION_REPLICATION_H

#include <stdint.h>

#include "base/buf.h"
#include "base/config.h"
#include "server.h"

struct eng;

enum repl_restore_from { REPL_RESTORE_AUTO, REPL_RESTORE_MONGO, REPL_RESTORE_FILE, REPL_RESTORE_NONE };

#define REPL_MAX_SAVE_RULES 16
struct repl_save_rule {
    int64_t seconds, changes;
};

/* The snapshot options (options.c), named as the options are. */
struct repl_snap_config {
    struct repl_save_rule save[REPL_MAX_SAVE_RULES]; /* read with repl_options_rules() */
    int nsave;
    char *dbfilename;
    int64_t snapshot_keep;
    int64_t snapshot_chunk_size;
    char *mongo_uri;
    char *mongo_database;
    char *mongo_collection;
    char *mongo_write_concern;
    int restore_from; /* enum repl_restore_from */
    int snapshot_method; /* enum snap_method: versioned (no fork) or fork */
};

/* Registers the snapshot options; returns where their values land (one per
 * process). */
struct repl_snap_config *repl_options_register(struct cfg *c);
/* Checks the options as loaded at start (dbfilename is a plain name,
 * restore-from mongo has a mongo-uri...).  0, or -1 with a message. */
int repl_options_check(char *err, size_t errlen);
/* A consistent copy of the save rules (CONFIG SET may change them at any
 * time); returns how many. */
int repl_options_rules(struct repl_save_rule out[REPL_MAX_SAVE_RULES]);
/* A copy of dbfilename (xmalloc'ed). */
char *repl_options_dbfilename(void);

/* What the snapshot code needs from other modules, as callbacks. */
struct repl_snap_env {
    void *ud;
    /* LOADING on or off (the protocol's server_set_loading). */
    void (*set_loading)(void *ud, int on);
    /* The replication offset at the snapshot's instant; called with every
     * shard locked.  NULL: 0. */
    uint64_t (*repl_offset)(void *ud);
};

/* Borrows e and cfg (they must outlive it). */
struct repl_snap *repl_snap_new(struct eng *e, struct repl_snap_config *cfg);
/* SAVE, BGSAVE, LASTSAVE rows for server_register_commands (owned by s). */
const struct server_cmd *repl_snap_commands(struct repl_snap *s, int *n);
/* Starts the background thread: restores first (restore-from), with
 * set_loading on meanwhile, then runs the save rules.  0 or -errno. */
int repl_snap_start(struct repl_snap *s, const struct repl_snap_env *env);
/* Stops the thread (a running child is killed: the snapshot is not
 * completed) and frees s.  NULL is fine. */
/* 1 while the restore at start runs (LOADING).  Any thread. */
int repl_snap_loading(struct repl_snap *s);
void repl_snap_free(struct repl_snap *s);

/* Appends the snapshots' Prometheus families (last success time, duration,
 * size, failures) to out (metrics.c).  Any thread. */
void repl_snap_metrics(struct repl_snap *s, struct buf *out);
/* server_hooks: the "# Persistence" INFO section. */
void repl_snap_info(void *ud, const char *section, struct buf *out);
/* server_hooks: a foreground snapshot before shutdown when explicit_save
 * (SHUTDOWN SAVE) or when save rules are set; none while loading.
 * 0, or -1 when it failed. */
int repl_snap_save_on_shutdown(void *ud, int explicit_save);

#endif
