/* server_metrics.c: the engine's and the RESP server's families for the
 * /metrics scrape (server.h: server_metrics), and the workers' liveness for
 * /healthz (server_alive).
 *
 * Counters are the ones INFO reads: per-worker counts (commands, per-command
 * calls, durations and histograms, connections) summed at scrape time, so
 * the hot path pays one increment in its own worker's memory, never a locked
 * instruction (STAT_ADD, server_int.h); a scrape may see a counter a moment
 * old.  Labels are bounded: databases and commands of
 * the command table only. */
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/metrics.h"
#include "server_int.h"

/* Per-command totals over every worker, then one histogram family. */
static void command_metrics(struct server *s, struct buf *out)
{
    int ncmds = cmd_id_count();
    struct cmd_stat *sum = xcalloc((size_t)ncmds, sizeof *sum);
    for (int w = 0; w < s->nworkers; w++) {
        const struct cmd_stat *st = s->workers[w].cmdstats;
        for (int i = 0; i < ncmds; i++) {
            sum[i].calls += STAT_GET(st[i].calls);
            sum[i].usec += STAT_GET(st[i].usec);
            sum[i].rejected += STAT_GET(st[i].rejected);
            sum[i].failed += STAT_GET(st[i].failed);
            for (int b = 0; b <= CMD_HIST_NB; b++)
                sum[i].hist[b] += STAT_GET(st[i].hist[b]);
        }
    }
    /* names by id: the top-level commands and their subcommands */
    const char **names = xcalloc((size_t)ncmds, sizeof *names);
    int ntop;
    const struct cmd_def *top = cmd_table(&ntop);
    for (int i = 0; i < ntop; i++) {
        if (top[i].id >= 0 && top[i].id < ncmds)
            names[top[i].id] = top[i].fullname ? top[i].fullname : top[i].name;
        for (int j = 0; j < top[i].nsubs; j++)
            if (top[i].subs[j].id >= 0 && top[i].subs[j].id < ncmds)
                names[top[i].subs[j].id] = top[i].subs[j].fullname;
    }
    metrics_family(out, "obentchi_commands_processed_total", "counter", "Commands run, by command.");
    for (int i = 0; i < ncmds; i++)
        if (sum[i].calls && names[i])
            metrics_sample_int(out, "obentchi_commands_processed_total", (const char *const[]){"cmd", names[i], NULL},
                               (int64_t)sum[i].calls);
    metrics_family(out, "obentchi_commands_failed_total", "counter", "Commands that replied with an error, by command.");
    for (int i = 0; i < ncmds; i++)
        if (sum[i].failed && names[i])
            metrics_sample_int(out, "obentchi_commands_failed_total", (const char *const[]){"cmd", names[i], NULL},
                               (int64_t)sum[i].failed);
    metrics_family(out, "obentchi_commands_rejected_total", "counter",
                   "Commands refused before running (arity, auth, OOM...), by command.");
    for (int i = 0; i < ncmds; i++)
        if (sum[i].rejected && names[i])
            metrics_sample_int(out, "obentchi_commands_rejected_total", (const char *const[]){"cmd", names[i], NULL},
                               (int64_t)sum[i].rejected);
    metrics_family(out, "obentchi_command_duration_seconds", "histogram", "Time commands took to run, by command.");
    struct metrics_hist h;
    double bounds[CMD_HIST_NB];
    for (int b = 0; b < CMD_HIST_NB; b++)
        bounds[b] = cmd_hist_bounds_us[b] / 1e6;
    for (int i = 0; i < ncmds; i++) {
        if (!sum[i].calls || !names[i])
            continue;
        metrics_hist_init(&h, bounds, CMD_HIST_NB);
        memcpy(h.counts, sum[i].hist, sizeof h.counts);
        h.sum = (double)sum[i].usec / 1e6;
        h.count = sum[i].calls;
        metrics_hist_write(out, "obentchi_command_duration_seconds", (const char *const[]){"cmd", names[i], NULL}, &h);
    }
    xfree(names);
    xfree(sum);
}

static void client_metrics(struct server *s, struct buf *out)
{
    uint64_t normal = 0, replicas = 0, blocked = 0, conns = 0, rejected = 0;
    pthread_mutex_lock(&s->clients_lock);
    for (struct client *c = s->clients; c; c = c->next) {
        if (c->flags & CL_REPLICA)
            replicas++;
        else
            normal++;
        if (c->flags & CL_BLOCKED)
            blocked++;
    }
    pthread_mutex_unlock(&s->clients_lock);
    for (int w = 0; w < s->nworkers; w++) {
        conns += STAT_GET(s->workers[w].conns_received);
        rejected += STAT_GET(s->workers[w].rejected_conns);
    }
    metrics_family(out, "obentchi_connected_clients", "gauge", "Client connections (replicas not counted).");
    metrics_sample_int(out, "obentchi_connected_clients", NULL, (int64_t)normal);
    metrics_family(out, "obentchi_connected_replicas", "gauge", "Replica connections.");
    metrics_sample_int(out, "obentchi_connected_replicas", NULL, (int64_t)replicas);
    metrics_family(out, "obentchi_blocked_clients", "gauge", "Clients waiting in a blocking command.");
    metrics_sample_int(out, "obentchi_blocked_clients", NULL, (int64_t)blocked);
    metrics_family(out, "obentchi_connections_received_total", "counter", "Connections accepted.");
    metrics_sample_int(out, "obentchi_connections_received_total", NULL, (int64_t)conns);
    metrics_family(out, "obentchi_rejected_connections_total", "counter", "Connections refused (maxclients).");
    metrics_sample_int(out, "obentchi_rejected_connections_total", NULL, (int64_t)rejected);
}

static void engine_metrics(struct server *s, struct buf *out)
{
    struct eng_stats es;
    eng_stats(s->eng, &es);
    int ndb = eng_config(s->eng)->ndb;
    struct eng_db_info *d = xcalloc((size_t)ndb, sizeof *d);
    for (int db = 0; db < ndb; db++)
        eng_db_info(s->eng, db, &d[db]);
    char dbs[16];
    /* databases holding keys, and db0 always (a family with a sample) */
    metrics_family(out, "obentchi_db_keys", "gauge", "Keys per database.");
    for (int db = 0; db < ndb; db++)
        if (d[db].keys || db == 0) {
            snprintf(dbs, sizeof dbs, "db%d", db);
            metrics_sample_int(out, "obentchi_db_keys", (const char *const[]){"db", dbs, NULL}, (int64_t)d[db].keys);
        }
    metrics_family(out, "obentchi_db_keys_expiring", "gauge", "Keys with a TTL per database.");
    for (int db = 0; db < ndb; db++)
        if (d[db].keys || db == 0) {
            snprintf(dbs, sizeof dbs, "db%d", db);
            metrics_sample_int(out, "obentchi_db_keys_expiring", (const char *const[]){"db", dbs, NULL},
                               (int64_t)d[db].expires);
        }
    xfree(d);
    metrics_family(out, "obentchi_expired_keys_total", "counter", "Keys deleted because their TTL passed.");
    metrics_sample_int(out, "obentchi_expired_keys_total", NULL, (int64_t)es.expired);
    metrics_family(out, "obentchi_evicted_keys_total", "counter", "Keys evicted by maxmemory.");
    metrics_sample_int(out, "obentchi_evicted_keys_total", NULL, (int64_t)es.evicted);
    metrics_family(out, "obentchi_keyspace_hits_total", "counter", "Key lookups that found the key.");
    metrics_sample_int(out, "obentchi_keyspace_hits_total", NULL, (int64_t)es.hits);
    metrics_family(out, "obentchi_keyspace_misses_total", "counter", "Key lookups that did not find the key.");
    metrics_sample_int(out, "obentchi_keyspace_misses_total", NULL, (int64_t)es.misses);
    metrics_family(out, "obentchi_memory_used_bytes", "gauge", "Memory allocated by the server (INFO used_memory).");
    metrics_sample_int(out, "obentchi_memory_used_bytes", NULL, eng_used_memory());
    metrics_family(out, "obentchi_memory_max_bytes", "gauge", "maxmemory (0: no limit).");
    metrics_sample_int(out, "obentchi_memory_max_bytes", NULL, s->cfg->maxmemory);
    metrics_family(out, "obentchi_loading", "gauge", "1 while a snapshot is being restored.");
    metrics_sample_int(out, "obentchi_loading", NULL, atomic_load(&s->loading));
}

void server_metrics(struct server *s, struct buf *out)
{
    engine_metrics(s, out);
    client_metrics(s, out);
    command_metrics(s, out);
}

int server_alive(struct server *s, int64_t max_age_ms)
{
    int64_t now = clock_wall_ms();
    for (int w = 0; w < s->nworkers; w++) {
        int64_t t = STAT_GET(s->workers[w].ops_sample_ms);
        /* the cron stamps it about once a second (the start time before
         * its first tick) */
        if (now - t > max_age_ms)
            return 0;
    }
    return 1;
}
