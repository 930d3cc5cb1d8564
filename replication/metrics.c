/* metrics.c: replication's and the snapshots' Prometheus families for the
 * /metrics scrape (repl.h: repl_metrics, replication.h: repl_snap_metrics).
 *
 * Replication reads its state under r->mu, as INFO does.  A replica's lag
 * is labelled by its announced address (ip:port): bounded by the number of
 * replicas a master has, never by anything a user controls.  Snapshots are
 * read through their INFO section, the one place that state is published,
 * so the two never disagree. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/metrics.h"
#include "repl_int.h"
#include "replication.h"

void repl_metrics(struct repl *r, struct buf *out)
{
    int64_t now_ms = clock_wall_ms();
    pthread_mutex_lock(&r->mu);
    int replica = r->is_replica;
    uint64_t off = atomic_load(&r->offset);
    metrics_family(out, "obentchi_replication_role", "gauge", "1 for this node's role (master or replica).");
    metrics_sample_int(out, "obentchi_replication_role", (const char *const[]){"role", "master", NULL}, !replica);
    metrics_sample_int(out, "obentchi_replication_role", (const char *const[]){"role", "replica", NULL}, replica);
    metrics_family(out, "obentchi_replication_offset_bytes", "gauge", "master_repl_offset: bytes of the stream.");
    metrics_sample_int(out, "obentchi_replication_offset_bytes", NULL, (int64_t)off);
    metrics_family(out, "obentchi_replication_backlog_bytes", "gauge", "Bytes held in the replication backlog.");
    metrics_sample_int(out, "obentchi_replication_backlog_bytes", NULL, (int64_t)r->bl.histlen);
    metrics_family(out, "obentchi_connected_replicas_online", "gauge", "Replicas streaming from this master.");
    int online = 0;
    for (struct repl_peer *p = r->peers; p; p = p->next)
        online += p->state == PEER_ONLINE;
    metrics_sample_int(out, "obentchi_connected_replicas_online", NULL, online);
    /* labelled by the replica's announced address: bounded by the replicas */
    metrics_family(out, "obentchi_replica_lag_seconds", "gauge", "Seconds since each replica's last acknowledgement.");
    int n = 0;
    char who[96];
    for (struct repl_peer *p = r->peers; p && n < 64; p = p->next, n++) {
        snprintf(who, sizeof who, "%s:%lld", p->ri.ip, (long long)p->ri.listening_port);
        double lag = p->ack_ms ? (double)(now_ms - p->ack_ms) / 1000.0 : 0;
        metrics_sample(out, "obentchi_replica_lag_seconds", (const char *const[]){"replica", who, NULL},
                       lag < 0 ? 0 : lag);
    }
    metrics_family(out, "obentchi_replica_offset_lag_bytes", "gauge",
                   "Bytes of the stream each replica has not acknowledged.");
    n = 0;
    for (struct repl_peer *p = r->peers; p && n < 64; p = p->next, n++) {
        snprintf(who, sizeof who, "%s:%lld", p->ri.ip, (long long)p->ri.listening_port);
        metrics_sample_int(out, "obentchi_replica_offset_lag_bytes", (const char *const[]){"replica", who, NULL},
                           p->ack_off <= off ? (int64_t)(off - p->ack_off) : 0);
    }
    metrics_family(out, "obentchi_replication_link_up", "gauge",
                   "On a replica: 1 while the link to the master streams; 0 otherwise (always 0 on a master).");
    metrics_sample_int(out, "obentchi_replication_link_up", NULL, replica && r->link_state == LINK_CONNECTED);
    metrics_family(out, "obentchi_replication_link_down_since_seconds", "gauge",
                   "On a replica with its link down: seconds since it went down (0 when up or a master).");
    int64_t down = replica && r->link_state != LINK_CONNECTED && r->link_down_since
                       ? now_ms / 1000 - r->link_down_since
                       : 0;
    metrics_sample_int(out, "obentchi_replication_link_down_since_seconds", NULL, down < 0 ? 0 : down);
    pthread_mutex_unlock(&r->mu);
    metrics_family(out, "obentchi_replication_full_syncs_total", "counter", "Full copies sent to replicas.");
    metrics_sample_int(out, "obentchi_replication_full_syncs_total", NULL, (int64_t)atomic_load(&r->stat_sync_full));
    metrics_family(out, "obentchi_replication_partial_syncs_total", "counter",
                   "Partial resynchronisations (PSYNC continuations), by outcome.");
    metrics_sample_int(out, "obentchi_replication_partial_syncs_total", (const char *const[]){"result", "ok", NULL},
                       (int64_t)atomic_load(&r->stat_sync_partial_ok));
    metrics_sample_int(out, "obentchi_replication_partial_syncs_total", (const char *const[]){"result", "err", NULL},
                       (int64_t)atomic_load(&r->stat_sync_partial_err));
}

void repl__sync_stats(void *ud, uint64_t out[3])
{
    struct repl *r = ud;
    out[0] = atomic_load(&r->stat_sync_full);
    out[1] = atomic_load(&r->stat_sync_partial_ok);
    out[2] = atomic_load(&r->stat_sync_partial_err);
}

void repl_status_text(struct repl *r, struct buf *out)
{
    pthread_mutex_lock(&r->mu);
    if (r->is_replica)
        buf_printf(out, "replica of %s:%lld, link %s", r->master_host, (long long)r->master_port,
                   r->link_state == LINK_CONNECTED ? "up" : "down");
    pthread_mutex_unlock(&r->mu);
}

/* ---- snapshots ------------------------------------------------------------ */

/* The value of "field:" in INFO text, or def. */
static int64_t info_field(const char *text, const char *field, int64_t def)
{
    size_t n = strlen(field);
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (!strncmp(p, field, n) && p[n] == ':')
            return strtoll(p + n + 1, NULL, 10);
    return def;
}

static int info_is(const char *text, const char *field, const char *value)
{
    size_t n = strlen(field), v = strlen(value);
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (!strncmp(p, field, n) && p[n] == ':')
            return !strncmp(p + n + 1, value, v) && (p[n + 1 + v] == '\r' || p[n + 1 + v] == '\n');
    return 0;
}

void repl_snap_metrics(struct repl_snap *s, struct buf *out)
{
    struct buf info = BUF_INIT;
    repl_snap_info(s, "persistence", &info);
    const char *t = info.p ? info.p : "";
    metrics_family(out, "obentchi_snapshot_last_success_time_seconds", "gauge",
                   "When the last snapshot completed (Unix time; the start time before any).");
    metrics_sample_int(out, "obentchi_snapshot_last_success_time_seconds", NULL, info_field(t, "rdb_last_save_time", 0));
    metrics_family(out, "obentchi_snapshot_last_duration_seconds", "gauge", "How long the last snapshot took.");
    metrics_sample_int(out, "obentchi_snapshot_last_duration_seconds", NULL,
                       info_field(t, "rdb_last_bgsave_time_sec", -1));
    metrics_family(out, "obentchi_snapshot_last_size_bytes", "gauge", "Bytes written by the last snapshot.");
    metrics_sample_int(out, "obentchi_snapshot_last_size_bytes", NULL, info_field(t, "snapshot_last_bytes", 0));
    metrics_family(out, "obentchi_snapshot_last_keys", "gauge", "Keys in the last snapshot.");
    metrics_sample_int(out, "obentchi_snapshot_last_keys", NULL, info_field(t, "snapshot_last_keys", 0));
    metrics_family(out, "obentchi_snapshot_last_fork_seconds", "gauge", "The last snapshot's fork pause.");
    metrics_sample(out, "obentchi_snapshot_last_fork_seconds", NULL,
                   (double)info_field(t, "snapshot_last_fork_usec", 0) / 1e6);
    metrics_family(out, "obentchi_snapshot_last_ok", "gauge", "1 when the last snapshot succeeded.");
    metrics_sample_int(out, "obentchi_snapshot_last_ok", NULL, info_is(t, "rdb_last_bgsave_status", "ok"));
    metrics_family(out, "obentchi_snapshots_total", "counter", "Snapshots completed.");
    metrics_sample_int(out, "obentchi_snapshots_total", NULL, info_field(t, "rdb_saves", 0));
    metrics_family(out, "obentchi_snapshot_failures_total", "counter", "Snapshots that failed.");
    metrics_sample_int(out, "obentchi_snapshot_failures_total", NULL, info_field(t, "snapshot_failures", 0));
    metrics_family(out, "obentchi_snapshot_in_progress", "gauge", "1 while a snapshot runs.");
    metrics_sample_int(out, "obentchi_snapshot_in_progress", NULL, info_field(t, "rdb_bgsave_in_progress", 0));
    buf_release(&info);
}
