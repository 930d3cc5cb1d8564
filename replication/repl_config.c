/* repl_config.c: replication's options (named, aliased and defaulted as in
 * Redis 7.0), and what it reports: the "# Replication" INFO section and
 * ROLE, field for field in Redis's format, since Sentinel, redis_exporter
 * and client libraries parse them.
 *
 * replicaof reads the live role: CONFIG GET and CONFIG REWRITE show the
 * master REPLICAOF last named (Sentinel rewrites the file after a switch). */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/num.h"
#include "repl_int.h"

static struct repl_config rc_;
static struct repl *the_repl; /* the live role, for replicaof's CONFIG GET */

void repl__config_bind(struct repl *r) { the_repl = r; }

/* replicaof <host> <port>, or "" / "no one": a master. */
static int set_replicaof(const struct cfg_option *o, int argc, const char *const *argv, int append, char *err,
                         size_t errlen)
{
    struct repl_config *c = o->storage;
    if (argc == 0 || (argc == 1 && !argv[0][0]) ||
        (argc == 2 && !strcasecmp(argv[0], "no") && !strcasecmp(argv[1], "one"))) {
        xfree(c->master_host);
        c->master_host = NULL;
        c->master_port = 0;
        return 0;
    }
    int64_t port;
    if (argc != 2 || num_parse_i64(argv[1], strlen(argv[1]), &port) < 0 || port < 0 || port > 65535) {
        snprintf(err, errlen, "Invalid master port");
        return -1;
    }
    xfree(c->master_host);
    c->master_host = xstrdup(argv[0]);
    c->master_port = port;
    return 0;
}

static void get_replicaof(const struct cfg_option *o, struct buf *out)
{
    const struct repl_config *c = o->storage;
    if (the_repl) {
        pthread_mutex_lock(&the_repl->mu);
        if (the_repl->is_replica)
            buf_printf(out, "%s %lld", the_repl->master_host, (long long)the_repl->master_port);
        pthread_mutex_unlock(&the_repl->mu);
        return;
    }
    if (c->master_host && *c->master_host)
        buf_printf(out, "%s %lld", c->master_host, (long long)c->master_port);
}

static int apply_read_only(const struct cfg_option *o, char *err, size_t errlen)
{
    if (the_repl && the_repl->srv) {
        pthread_mutex_lock(&the_repl->mu);
        int replica = the_repl->is_replica;
        pthread_mutex_unlock(&the_repl->mu);
        server_set_read_only(the_repl->srv, replica && rc_.replica_read_only);
    }
    return 0;
}

/* A new size starts an empty backlog, as Redis's resizeReplicationBacklog
 * may: a replica then continues only from what comes next. */
static int apply_backlog(const struct cfg_option *o, char *err, size_t errlen)
{
    if (!the_repl)
        return 0;
    pthread_mutex_lock(&the_repl->mu);
    if (the_repl->bl.size && the_repl->bl.size != (size_t)rc_.backlog_size) {
        repl_backlog_release(&the_repl->bl);
        repl_backlog_init(&the_repl->bl, (size_t)rc_.backlog_size);
    }
    pthread_mutex_unlock(&the_repl->mu);
    return 0;
}

static const char *const diskless_load[] = {"disabled", "on-empty-db", "swapdb", NULL};

#define R_BOOL(n, a, f, d, ap) \
    {.name = n, .alias = a, .type = CFG_BOOL, .storage = &rc_.f, .dflt = d, .apply = ap}
#define R_INT(n, a, f, d, lo, hi) \
    {.name = n, .alias = a, .type = CFG_INT, .storage = &rc_.f, .dflt = d, .min = lo, .max = hi}
#define R_STR(n, a, f, d, fl) {.name = n, .alias = a, .type = CFG_STRING, .flags = fl, .storage = &rc_.f, .dflt = d}

static struct cfg_option table[] = {
    {.name = "replicaof", .alias = "slaveof", .type = CFG_SPECIAL, .flags = CFG_MULTIARG | CFG_IMMUTABLE,
     .storage = &rc_, .dflt = "", .set = set_replicaof, .get = get_replicaof},
    R_STR("masterauth", NULL, masterauth, "", CFG_SECRET | CFG_FILE_OK),
    R_STR("masteruser", NULL, masteruser, "", 0),
    R_BOOL("replica-read-only", "slave-read-only", replica_read_only, "yes", apply_read_only),
    {.name = "repl-backlog-size", .type = CFG_MEMORY, .storage = &rc_.backlog_size, .dflt = "1mb",
     .min = 16 * 1024, .max = INT64_MAX, .apply = apply_backlog},
    R_INT("repl-backlog-ttl", NULL, backlog_ttl, "3600", 0, INT32_MAX),
    R_INT("replica-priority", "slave-priority", replica_priority, "100", 0, INT32_MAX),
    R_INT("repl-timeout", NULL, repl_timeout, "60", 1, INT32_MAX),
    R_INT("repl-ping-replica-period", "repl-ping-slave-period", ping_period, "10", 1, INT32_MAX),
    R_BOOL("replica-announced", NULL, replica_announced, "yes", NULL),
    R_STR("replica-announce-ip", "slave-announce-ip", announce_ip, "", 0),
    R_INT("replica-announce-port", "slave-announce-port", announce_port, "0", 0, 65535),
    /* Copies always go over the socket, at once: accepted for Redis config files. */
    R_BOOL("repl-diskless-sync", NULL, diskless_sync, "yes", NULL),
    R_INT("repl-diskless-sync-delay", NULL, diskless_sync_delay, "5", 0, INT32_MAX),
    R_INT("repl-diskless-sync-max-replicas", NULL, diskless_sync_max_replicas, "0", 0, INT32_MAX),
    {.name = "repl-diskless-load", .type = CFG_ENUM, .storage = &rc_.diskless_load, .dflt = "disabled",
     .enum_names = diskless_load},
    R_BOOL("replica-serve-stale-data", "slave-serve-stale-data", serve_stale_data, "yes", NULL),
    R_BOOL("replica-lazy-flush", "slave-lazy-flush", lazy_flush, "no", NULL),
    R_BOOL("repl-disable-tcp-nodelay", NULL, disable_tcp_nodelay, "no", NULL),
    R_INT("min-replicas-to-write", "min-slaves-to-write", min_replicas_to_write, "0", 0, INT32_MAX),
    R_INT("min-replicas-max-lag", "min-slaves-max-lag", min_replicas_max_lag, "10", 0, INT32_MAX),
    R_INT("shutdown-timeout", NULL, shutdown_timeout, "10", 0, INT32_MAX),
};

struct repl_config *repl_config_register(struct cfg *c)
{
    cfg_register(c, table, sizeof table / sizeof table[0]);
    return &rc_;
}

/* ---- INFO ---------------------------------------------------------------------------- */

static const char *peer_state_name(int s)
{
    return s == PEER_ONLINE ? "online" : s == PEER_SEND_BULK ? "send_bulk" : "wait_bgsave";
}

static const char *failover_state_name(int s)
{
    return s == FO_WAIT_SYNC ? "waiting-for-sync" : s == FO_IN_PROGRESS ? "failover-in-progress" : "no-failover";
}

static void info_replica_locked(struct repl *r, struct buf *o, int64_t now_ms)
{
    int up = r->link_state == LINK_CONNECTED;
    uint64_t off = atomic_load(&r->offset);
    buf_printf(o, "master_host:%s\r\nmaster_port:%lld\r\n", r->master_host, (long long)r->master_port);
    buf_printf(o, "master_link_status:%s\r\n", up ? "up" : "down");
    int64_t io = atomic_load(&r->last_io_ms);
    buf_printf(o, "master_last_io_seconds_ago:%lld\r\n", up ? (long long)((now_ms - io) / 1000) : -1LL);
    buf_printf(o, "master_sync_in_progress:%d\r\n", r->link_state == LINK_TRANSFER);
    buf_printf(o, "slave_read_repl_offset:%llu\r\nslave_repl_offset:%llu\r\n", (unsigned long long)off,
               (unsigned long long)off);
    if (r->link_state == LINK_TRANSFER) {
        buf_printf(o, "master_sync_total_bytes:-1\r\nmaster_sync_read_bytes:%llu\r\n",
                   (unsigned long long)r->sync_read);
        buf_printf(o, "master_sync_left_bytes:-1\r\nmaster_sync_perc:0.00\r\n");
        buf_printf(o, "master_sync_last_io_seconds_ago:%lld\r\n", (long long)((now_ms - io) / 1000));
    }
    if (!up)
        buf_printf(o, "master_link_down_since_seconds:%lld\r\n",
                   r->link_down_since ? (long long)(now_ms / 1000 - r->link_down_since) : -1LL);
    buf_printf(o, "slave_priority:%lld\r\nslave_read_only:%d\r\nreplica_announced:%d\r\n",
               (long long)r->cfg->replica_priority, r->cfg->replica_read_only, r->cfg->replica_announced);
}

void repl__info(void *ud, const char *section, struct buf *o)
{
    struct repl *r = ud;
    if (strcasecmp(section, "replication") && strcasecmp(section, "all") && strcasecmp(section, "everything") &&
        strcasecmp(section, "default"))
        return;
    int64_t now_ms = clock_wall_ms();
    pthread_mutex_lock(&r->mu);
    buf_printf(o, "# Replication\r\nrole:%s\r\n", r->is_replica ? "slave" : "master");
    if (r->is_replica)
        info_replica_locked(r, o, now_ms);
    buf_printf(o, "connected_slaves:%d\r\n", r->npeers);
    int i = 0;
    for (struct repl_peer *p = r->peers; p; p = p->next, i++) {
        int64_t lag = (now_ms - p->ack_ms) / 1000;
        buf_printf(o, "slave%d:ip=%s,port=%lld,state=%s,offset=%llu,lag=%lld\r\n", i, p->ri.ip,
                   (long long)p->ri.listening_port, peer_state_name(p->state), (unsigned long long)p->ack_off,
                   (long long)(lag < 0 ? 0 : lag));
    }
    uint64_t off = atomic_load(&r->offset);
    buf_printf(o, "master_failover_state:%s\r\n", failover_state_name(r->fo_state));
    buf_printf(o, "master_replid:%s\r\nmaster_replid2:%s\r\n", r->replid, r->replid2);
    buf_printf(o, "master_repl_offset:%llu\r\nsecond_repl_offset:%lld\r\n", (unsigned long long)off,
               (long long)r->second_off);
    buf_printf(o, "repl_backlog_active:%d\r\nrepl_backlog_size:%lld\r\n", r->bl.size != 0,
               (long long)r->cfg->backlog_size);
    buf_printf(o, "repl_backlog_first_byte_offset:%llu\r\nrepl_backlog_histlen:%llu\r\n",
               r->bl.size ? (unsigned long long)(off - r->bl.histlen + 1) : 0ULL,
               (unsigned long long)r->bl.histlen);
    pthread_mutex_unlock(&r->mu);
}

/* ---- ROLE -------------------------------------------------------------------------------- */

static const char *link_state_name(int s)
{
    switch (s) {
    case LINK_NONE:
        return "none";
    case LINK_CONNECT:
        return "connect";
    case LINK_CONNECTING:
        return "connecting";
    case LINK_TRANSFER:
        return "sync";
    case LINK_CONNECTED:
        return "connected";
    default:
        return "handshake";
    }
}

int repl__role(void *ud, struct buf *out)
{
    struct repl *r = ud;
    pthread_mutex_lock(&r->mu);
    uint64_t off = atomic_load(&r->offset);
    if (r->is_replica) {
        resp_w_array(out, 5);
        resp_w_bulkstr(out, "slave");
        resp_w_bulkstr(out, r->master_host);
        resp_w_int(out, r->master_port);
        resp_w_bulkstr(out, link_state_name(r->link_state));
        resp_w_int(out, r->link_state == LINK_CONNECTED ? (int64_t)off : -1);
    } else {
        resp_w_array(out, 3);
        resp_w_bulkstr(out, "master");
        resp_w_int(out, (int64_t)off);
        int n = 0;
        for (struct repl_peer *p = r->peers; p; p = p->next)
            n += p->state == PEER_ONLINE;
        resp_w_array(out, n);
        for (struct repl_peer *p = r->peers; p; p = p->next) {
            if (p->state != PEER_ONLINE)
                continue;
            resp_w_array(out, 3);
            resp_w_bulkstr(out, p->ri.ip);
            resp_w_bulk_i64(out, p->ri.listening_port);
            resp_w_bulk_i64(out, (int64_t)p->ack_off);
        }
    }
    pthread_mutex_unlock(&r->mu);
    return 0;
}
