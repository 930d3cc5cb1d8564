/* cmd_info.c: INFO, in Redis 7.0's words.  Sentinel, redis_exporter and the
 * Grafana dashboards built on it parse this text field by field, so section
 * names, field names, their order and the framing follow redis-server 7.0.15:
 *
 *     # Server\r\n
 *     redis_version:7.0.15\r\n
 *     ...\r\n
 *     \r\n                      <- one empty line between sections, none after
 *     # Clients\r\n
 *     ...
 *
 * Sections come out in Redis's fixed order whatever the order asked.  Fields
 * we cannot measure (allocator internals, Lua memory) are left out rather
 * than invented; fields that are true constants here (no fork, no AOF) are
 * printed with their constant.
 *
 * Other modules own some sections (replication, later persistence) or add
 * their own: srv->hooks.info is called with every name asked and with every
 * built-in section selected, and a section it writes replaces ours of the
 * same name (see collect_hooked()).
 *
 * Not for: the numbers themselves, which live with their owners (workers,
 * engine, allocator); this file only reads and formats them.  Counters of
 * other workers are read without their owner's cooperation: a plain load of
 * an aligned 64-bit counter, stale by at most a few increments. */
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "sendbatch.h"
#include "server_int.h"

#ifndef OBENTCHI_VERSION
#define OBENTCHI_VERSION "0.0.0"
#endif
#define REDIS_COMPAT_VERSION "7.0.15"
#define INFO_MAX_NAMES 64

struct info_ctx {
    struct server *srv;
    struct client *cl;
    int64_t now_ms;
    /* one walk of the client registry, shared by the sections that need it */
    int have_clients;
    uint64_t nclients, nreplicas, nblocked, max_qbuf, max_obuf, mem_normal, mem_replicas;
};

typedef void info_section_fn(struct info_ctx *x, struct buf *o);

enum { SEC_DEFAULT = 1 << 0 }; /* part of plain INFO */

struct info_section {
    const char *name;   /* lower case, as asked */
    const char *header; /* as printed after "# " */
    unsigned flags;
    info_section_fn *fn;
};

/* ---- formatting helpers --------------------------------------------------- */

/* Redis's bytesToHuman(): 1023B, 1.00K, 12.34M... */
static void human(char *out, size_t cap, int64_t n)
{
    static const char units[] = "KMGTP";
    double d = (double)n;
    if (n < 1024) {
        snprintf(out, cap, "%lldB", (long long)n);
        return;
    }
    for (int i = 0; units[i]; i++) {
        d /= 1024;
        if (d < 1024 || !units[i + 1]) {
            snprintf(out, cap, "%.2f%c", d, units[i]);
            return;
        }
    }
}

static void put_human(struct buf *o, const char *field, int64_t n)
{
    char h[32];
    human(h, sizeof h, n);
    buf_printf(o, "%s:%lld\r\n%s_human:%s\r\n", field, (long long)n, field, h);
}

static void put_u64(struct buf *o, const char *field, uint64_t v)
{
    buf_printf(o, "%s:%llu\r\n", field, (unsigned long long)v);
}

static void put_zeros(struct buf *o, const char *const *fields)
{
    for (; *fields; fields++)
        buf_printf(o, "%s:0\r\n", *fields);
}

/* ---- sources -------------------------------------------------------------- */

static int64_t rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long long size = 0, resident = 0;
    if (!f)
        return 0;
    if (fscanf(f, "%lld %lld", &size, &resident) != 2)
        resident = 0;
    fclose(f);
    return resident * (int64_t)sysconf(_SC_PAGESIZE);
}

static uint64_t client_mem(const struct client *c)
{
    return sizeof *c + c->qbuf.cap + c->obuf.cap + c->wbuf.cap + (uint64_t)c->argv_cap * sizeof *c->argv;
}

/* Totals over the registry.  Fields of other workers' clients are read as
 * they are; only scalars, never their buffers' bytes. */
static void walk_clients(struct info_ctx *x)
{
    struct server *srv = x->srv;
    if (x->have_clients)
        return;
    x->have_clients = 1;
    pthread_mutex_lock(&srv->clients_lock);
    for (struct client *c = srv->clients; c; c = c->next) {
        uint64_t pending = c->obuf.len + (c->wbuf.len - c->wpos);
        if (c->flags & CL_REPLICA) {
            x->nreplicas++;
            x->mem_replicas += client_mem(c);
        } else {
            x->nclients++;
            x->mem_normal += client_mem(c);
        }
        if (c->flags & CL_BLOCKED)
            x->nblocked++;
        if (c->qbuf.cap > x->max_qbuf)
            x->max_qbuf = c->qbuf.cap;
        if (pending > x->max_obuf)
            x->max_obuf = pending;
    }
    pthread_mutex_unlock(&srv->clients_lock);
}

struct worker_totals {
    uint64_t commands, conns, rejected, net_in, net_out, errors, ops;
};

static void sum_workers(struct info_ctx *x, struct worker_totals *t)
{
    memset(t, 0, sizeof *t);
    for (int i = 0; i < x->srv->nworkers; i++) {
        const struct worker *w = &x->srv->workers[i];
        uint64_t cmds = STAT_GET(w->commands), sample = STAT_GET(w->ops_sample_cmds);
        int64_t since = STAT_GET(w->ops_sample_ms), span = x->now_ms - since;
        t->commands += cmds;
        t->conns += STAT_GET(w->conns_received);
        t->rejected += STAT_GET(w->rejected_conns);
        t->net_in += STAT_GET(w->net_in);
        t->net_out += STAT_GET(w->net_out);
        t->errors += STAT_GET(w->errors);
        /* the worker's cron samples its counter once a second */
        if (since > 0 && span > 0 && cmds >= sample)
            t->ops += (cmds - sample) * 1000 / (uint64_t)span;
    }
}

/* ---- sections ------------------------------------------------------------- */

static void sec_server(struct info_ctx *x, struct buf *o)
{
    struct server *srv = x->srv;
    struct utsname u;
    char exe[1024];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    int64_t up = (x->now_ms - srv->start_ms) / 1000;
    if (uname(&u) < 0)
        strcpy(u.sysname, "?"), u.release[0] = u.machine[0] = '\0';
    exe[n > 0 ? n : 0] = '\0';
    buf_printf(o, "redis_version:%s\r\nobentchi_version:%s\r\n", REDIS_COMPAT_VERSION, OBENTCHI_VERSION);
    buf_puts(o, "redis_git_sha1:00000000\r\nredis_git_dirty:0\r\nredis_build_id:0\r\nredis_mode:standalone\r\n");
    buf_printf(o, "os:%s %s %s\r\narch_bits:%d\r\n", u.sysname, u.release, u.machine, (int)sizeof(long) * 8);
    buf_puts(o, "monotonic_clock:POSIX clock_gettime\r\nmultiplexing_api:epoll\r\natomicvar_api:c11-builtin\r\n");
#ifdef __GNUC__
    buf_printf(o, "gcc_version:%d.%d.%d\r\n", __GNUC__, __GNUC_MINOR__, __GNUC_PATCHLEVEL__);
#else
    buf_puts(o, "gcc_version:0.0.0\r\n");
#endif
    buf_printf(o, "process_id:%ld\r\nprocess_supervised:no\r\nrun_id:%s\r\ntcp_port:%lld\r\n", (long)getpid(),
               srv->run_id, (long long)srv->cfg->port);
    buf_printf(o, "server_time_usec:%lld\r\nuptime_in_seconds:%lld\r\nuptime_in_days:%lld\r\n",
               (long long)clock_wall_us(), (long long)up, (long long)(up / 86400));
    buf_printf(o, "hz:%lld\r\nconfigured_hz:%lld\r\nlru_clock:%lld\r\n", (long long)srv->cfg->hz,
               (long long)srv->cfg->hz, (long long)((x->now_ms / 1000) & ((1 << 24) - 1)));
    buf_printf(o, "executable:%s\r\nconfig_file:%s\r\nio_threads_active:%d\r\nio_threads:%d\r\nshards:%lld\r\n", exe,
               srv->conf_path ? srv->conf_path : "", srv->nworkers > 1, srv->nworkers, (long long)srv->cfg->shards);
}

static void sec_clients(struct info_ctx *x, struct buf *o)
{
    walk_clients(x);
    put_u64(o, "connected_clients", x->nclients);
    buf_puts(o, "cluster_connections:0\r\n");
    buf_printf(o, "maxclients:%lld\r\n", (long long)x->srv->cfg->maxclients);
    put_u64(o, "client_recent_max_input_buffer", x->max_qbuf);
    put_u64(o, "client_recent_max_output_buffer", x->max_obuf);
    put_u64(o, "blocked_clients", x->nblocked);
    buf_puts(o, "tracking_clients:0\r\nclients_in_timeout_table:0\r\n");
}

static void sec_memory(struct info_ctx *x, struct buf *o)
{
    static const char *const zeros[] = {"mem_not_counted_for_evict", "mem_replication_backlog",
                                        "mem_total_replication_buffers", NULL};
    static const char *const tail[] = {"mem_cluster_links", "mem_aof_buffer", NULL};
    struct server *srv = x->srv;
    int64_t used = eng_used_memory(), rss = rss_bytes(), peak = alloc_peak();
    int64_t sys = (int64_t)sysconf(_SC_PHYS_PAGES) * (int64_t)sysconf(_SC_PAGESIZE);
    struct buf policy = BUF_INIT;
    walk_clients(x);
    int64_t overhead = (int64_t)(x->mem_normal + x->mem_replicas);
    if (peak < used)
        peak = used;
    if (overhead > used)
        overhead = used;
    put_human(o, "used_memory", used);
    put_human(o, "used_memory_rss", rss);
    put_human(o, "used_memory_peak", peak);
    buf_printf(o, "used_memory_peak_perc:%.2f%%\r\n", peak ? 100.0 * (double)used / (double)peak : 0.0);
    buf_printf(o, "used_memory_overhead:%lld\r\nused_memory_dataset:%lld\r\n", (long long)overhead,
               (long long)(used - overhead));
    buf_printf(o, "used_memory_dataset_perc:%.2f%%\r\n", used ? 100.0 * (double)(used - overhead) / (double)used : 0.0);
    put_human(o, "total_system_memory", sys);
    put_human(o, "maxmemory", srv->cfg->maxmemory);
    if (cfg_get(srv->conf, "maxmemory-policy", &policy) < 0)
        buf_puts(&policy, "noeviction");
    buf_printf(o, "maxmemory_policy:%s\r\n", policy.p);
    buf_release(&policy);
    buf_printf(o, "mem_fragmentation_ratio:%.2f\r\nmem_fragmentation_bytes:%lld\r\n",
               used ? (double)rss / (double)used : 0.0, (long long)(rss - used));
    put_zeros(o, zeros);
    put_u64(o, "mem_clients_slaves", x->mem_replicas);
    put_u64(o, "mem_clients_normal", x->mem_normal);
    put_zeros(o, tail);
    buf_printf(o, "mem_allocator:%s\r\nactive_defrag_running:0\r\nlazyfree_pending_objects:0\r\nlazyfreed_objects:0\r\n",
               alloc_name());
}

static void sec_persistence(struct info_ctx *x, struct buf *o)
{
    static const char *const head[] = {"loading",          "async_loading",        "current_cow_peak",
                                       "current_cow_size", "current_cow_size_age", NULL};
    static const char *const mid[] = {"current_save_keys_processed", "current_save_keys_total", NULL};
    static const char *const tail[] = {
        "rdb_saves",   "rdb_last_cow_size",       "rdb_last_load_keys_expired", "rdb_last_load_keys_loaded",
        "aof_enabled", "aof_rewrite_in_progress", "aof_rewrite_scheduled",      NULL};
    put_zeros(o, head);
    buf_puts(o, "current_fork_perc:0.00\r\n");
    put_zeros(o, mid);
    put_u64(o, "rdb_changes_since_last_save", eng_dirty(x->srv->eng));
    buf_printf(o, "rdb_bgsave_in_progress:0\r\nrdb_last_save_time:%lld\r\n", (long long)(x->srv->start_ms / 1000));
    buf_puts(o, "rdb_last_bgsave_status:ok\r\nrdb_last_bgsave_time_sec:-1\r\nrdb_current_bgsave_time_sec:-1\r\n");
    put_zeros(o, tail);
    buf_puts(o, "aof_last_rewrite_time_sec:-1\r\naof_current_rewrite_time_sec:-1\r\n"
                "aof_last_bgrewrite_status:ok\r\naof_rewrites:0\r\naof_rewrites_consecutive_failures:0\r\n"
                "aof_last_write_status:ok\r\naof_last_cow_size:0\r\nmodule_fork_in_progress:0\r\n"
                "module_fork_last_cow_size:0\r\n");
}

static void sec_stats(struct info_ctx *x, struct buf *o)
{
    static const char *const repl[] = {"total_net_repl_input_bytes", "total_net_repl_output_bytes", NULL};
    static const char *const sync[] = {"sync_full", "sync_partial_ok", "sync_partial_err", NULL};
    static const char *const evict[] = {"evicted_clients", "total_eviction_exceeded_time",
                                        "current_eviction_exceeded_time", NULL};
    static const char *const misc[] = {"pubsub_channels",
                                       "pubsub_patterns",
                                       "pubsubshard_channels",
                                       "latest_fork_usec",
                                       "total_forks",
                                       "migrate_cached_sockets",
                                       "slave_expires_tracked_keys",
                                       "active_defrag_hits",
                                       "active_defrag_misses",
                                       "active_defrag_key_hits",
                                       "active_defrag_key_misses",
                                       "total_active_defrag_time",
                                       "current_active_defrag_time",
                                       "tracking_total_keys",
                                       "tracking_total_items",
                                       "tracking_total_prefixes",
                                       "unexpected_error_replies",
                                       NULL};
    struct worker_totals t;
    struct eng_stats es;
    sum_workers(x, &t);
    eng_stats(x->srv->eng, &es);
    put_u64(o, "total_connections_received", t.conns);
    put_u64(o, "total_commands_processed", t.commands);
    put_u64(o, "instantaneous_ops_per_sec", t.ops);
    put_u64(o, "total_net_input_bytes", t.net_in);
    put_u64(o, "total_net_output_bytes", t.net_out);
    put_zeros(o, repl);
    put_u64(o, "rejected_connections", t.rejected);
    if (x->srv->repl.sync_stats) { /* replication counts them */
        uint64_t st[3];
        x->srv->repl.sync_stats(x->srv->repl.ud, st);
        for (int i = 0; sync[i]; i++)
            put_u64(o, sync[i], st[i]);
    } else {
        put_zeros(o, sync);
    }
    put_u64(o, "expired_keys", es.expired);
    buf_printf(o, "expired_stale_perc:%.2f\r\nexpired_time_cap_reached_count:0\r\n", (double)es.expired_stale_perc);
    put_u64(o, "expire_cycle_cpu_milliseconds", es.expire_cycle_cpu_us / 1000);
    put_u64(o, "evicted_keys", es.evicted);
    put_zeros(o, evict);
    put_u64(o, "keyspace_hits", es.hits);
    put_u64(o, "keyspace_misses", es.misses);
    put_zeros(o, misc);
    put_u64(o, "total_error_replies", t.errors);
    buf_puts(o, "dump_payload_sanitizations:0\r\nio_threaded_reads_processed:0\r\nio_threaded_writes_processed:0\r\n");
    uint64_t batches, sends;
    sendbatch_counts(&batches, &sends); /* replies of many sockets in one system call */
    buf_printf(o, "io_uring:%s\r\n", sendbatch_state());
    put_u64(o, "io_uring_batches", batches);
    put_u64(o, "io_uring_batched_sends", sends);
}

/* A master that never had replicas.  The replication module replaces this
 * section through the hook. */
static void sec_replication(struct info_ctx *x, struct buf *o)
{
    buf_puts(o, "role:master\r\nconnected_slaves:0\r\nmaster_failover_state:no-failover\r\n");
    buf_printf(o, "master_replid:%s\r\n", x->srv->run_id);
    buf_puts(o, "master_replid2:0000000000000000000000000000000000000000\r\nmaster_repl_offset:0\r\n"
                "second_repl_offset:-1\r\nrepl_backlog_active:0\r\nrepl_backlog_size:1048576\r\n"
                "repl_backlog_first_byte_offset:0\r\nrepl_backlog_histlen:0\r\n");
}

static void put_tv(struct buf *o, const char *field, struct timeval tv)
{
    buf_printf(o, "%s:%ld.%06ld\r\n", field, (long)tv.tv_sec, (long)tv.tv_usec);
}

static void sec_cpu(struct info_ctx *x, struct buf *o)
{
    struct rusage self, kids;
    memset(&self, 0, sizeof self);
    memset(&kids, 0, sizeof kids);
    getrusage(RUSAGE_SELF, &self);
    getrusage(RUSAGE_CHILDREN, &kids);
    put_tv(o, "used_cpu_sys", self.ru_stime);
    put_tv(o, "used_cpu_user", self.ru_utime);
    put_tv(o, "used_cpu_sys_children", kids.ru_stime);
    put_tv(o, "used_cpu_user_children", kids.ru_utime);
}

static void sec_empty(struct info_ctx *x, struct buf *o) {}

/* One command's line, once it was called or rejected (as Redis), then its
 * subcommands' (cmdstat_config|get...): a container's own line counts only
 * what ran as the container itself (COMMAND alone). */
static void commandstats_of(struct info_ctx *x, const struct cmd_def *c, struct buf *o)
{
    struct cmd_stat s = {0};
    for (int w = 0; w < x->srv->nworkers; w++) {
        const struct cmd_stat *ws = &x->srv->workers[w].cmdstats[c->id];
        s.calls += STAT_GET(ws->calls);
        s.usec += STAT_GET(ws->usec);
        s.rejected += STAT_GET(ws->rejected);
        s.failed += STAT_GET(ws->failed);
    }
    if (s.calls || s.rejected || s.failed)
        buf_printf(o, "cmdstat_%s:calls=%llu,usec=%llu,usec_per_call=%.2f,rejected_calls=%llu,failed_calls=%llu\r\n",
                   c->fullname, (unsigned long long)s.calls, (unsigned long long)s.usec,
                   s.calls ? (double)s.usec / (double)s.calls : 0.0, (unsigned long long)s.rejected,
                   (unsigned long long)s.failed);
    for (int i = 0; i < c->nsubs; i++)
        commandstats_of(x, &c->subs[i], o);
}

static void sec_commandstats(struct info_ctx *x, struct buf *o)
{
    int n;
    const struct cmd_def *t = cmd_table(&n);
    for (int i = 0; i < n; i++)
        commandstats_of(x, &t[i], o);
}

static void sec_cluster(struct info_ctx *x, struct buf *o) { buf_puts(o, "cluster_enabled:0\r\n"); }

static void sec_keyspace(struct info_ctx *x, struct buf *o)
{
    for (int db = 0; db < (int)x->srv->cfg->databases; db++) {
        struct eng_db_info d;
        eng_db_info(x->srv->eng, db, &d);
        if (!d.keys && !d.expires)
            continue;
        buf_printf(o, "db%d:keys=%llu,expires=%llu,avg_ttl=%lld\r\n", db, (unsigned long long)d.keys,
                   (unsigned long long)d.expires, (long long)d.avg_ttl_ms);
    }
}

/* Redis 7.0's order.  "all" selects every row; plain INFO the SEC_DEFAULT ones. */
static const struct info_section sections[] = {
    {"server", "Server", SEC_DEFAULT, sec_server},
    {"clients", "Clients", SEC_DEFAULT, sec_clients},
    {"memory", "Memory", SEC_DEFAULT, sec_memory},
    {"persistence", "Persistence", SEC_DEFAULT, sec_persistence},
    {"stats", "Stats", SEC_DEFAULT, sec_stats},
    {"replication", "Replication", SEC_DEFAULT, sec_replication},
    {"cpu", "CPU", SEC_DEFAULT, sec_cpu},
    {"modules", "Modules", SEC_DEFAULT, sec_empty},
    {"commandstats", "Commandstats", 0, sec_commandstats},
    {"errorstats", "Errorstats", SEC_DEFAULT, sec_empty},
    {"latencystats", "Latencystats", 0, sec_empty},
    {"cluster", "Cluster", SEC_DEFAULT, sec_cluster},
    {"keyspace", "Keyspace", SEC_DEFAULT, sec_keyspace},
};
#define NSECTIONS ((int)(sizeof sections / sizeof sections[0]))

static int section_index(const char *name)
{
    for (int i = 0; i < NSECTIONS; i++)
        if (!strcmp(sections[i].name, name))
            return i;
    return -1;
}

/* ---- sections from other modules ------------------------------------------- */

struct hooked {
    char name[64];   /* lower-cased header text */
    struct buf text; /* "# Header\r\n" and its field lines */
    int used;
};

struct hooked_list {
    struct hooked *v;
    int n, cap;
};

static void lower_copy(char *dst, size_t cap, const char *src, size_t n)
{
    size_t i;
    for (i = 0; i < n && i + 1 < cap; i++)
        dst[i] = (char)(src[i] >= 'A' && src[i] <= 'Z' ? src[i] + 32 : src[i]);
    dst[i] = '\0';
}

static struct hooked *hooked_find(struct hooked_list *l, const char *name)
{
    for (int i = 0; i < l->n; i++)
        if (!strcmp(l->v[i].name, name))
            return &l->v[i];
    return NULL;
}

/* Splits what a hook wrote into sections (one per "# " line), dropping empty
 * lines so that the framing is ours.  A section already known keeps its first
 * text: a hook may answer both "replication" and "all" with the same text. */
static void hooked_parse(struct hooked_list *l, const char *p, size_t n)
{
    struct hooked *cur = NULL;
    int skip = 0;
    while (n) {
        const char *nl = memchr(p, '\n', n);
        size_t len = nl ? (size_t)(nl - p) : n, adv = nl ? len + 1 : n;
        if (len && p[len - 1] == '\r')
            len--;
        if (len >= 2 && p[0] == '#' && p[1] == ' ') {
            char name[64];
            lower_copy(name, sizeof name, p + 2, len - 2);
            skip = hooked_find(l, name) != NULL;
            if (!skip) {
                if (l->n == l->cap) {
                    l->cap = l->cap ? 2 * l->cap : 4;
                    l->v = xrealloc(l->v, sizeof *l->v * (size_t)l->cap);
                }
                cur = &l->v[l->n++];
                memset(cur, 0, sizeof *cur);
                strcpy(cur->name, name);
            }
        }
        if (len && cur && !skip) {
            buf_append(&cur->text, p, len);
            buf_puts(&cur->text, "\r\n");
        }
        p += adv, n -= adv;
    }
}

static void hooked_call(struct server *srv, struct hooked_list *l, const char *name)
{
    struct buf tmp = BUF_INIT;
    if (srv->hooks.info)
        srv->hooks.info(srv->hooks.ud, name, &tmp);
    if (srv->repl.info)
        srv->repl.info(srv->repl.ud, name, &tmp);
    hooked_parse(l, tmp.p, tmp.len);
    buf_release(&tmp);
}

/* The hook hears every name asked, then every built-in section selected that
 * was not asked by name (a hook written for "replication" only still shows
 * in plain INFO). */
static void collect_hooked(struct server *srv, char names[][64], int nnames, unsigned long sel, struct hooked_list *l)
{
    if (!srv->hooks.info && !srv->repl.info)
        return;
    for (int i = 0; i < nnames; i++)
        hooked_call(srv, l, names[i]);
    for (int s = 0; s < NSECTIONS; s++) {
        int asked = 0;
        if (!(sel & (1ul << s)))
            continue;
        for (int i = 0; i < nnames && !asked; i++)
            asked = !strcmp(names[i], sections[s].name);
        if (!asked)
            hooked_call(srv, l, sections[s].name);
    }
}

/* ---- assembly -------------------------------------------------------------- */

static unsigned long select_sections(char names[][64], int nnames)
{
    unsigned long sel = 0;
    for (int i = 0; i < nnames; i++) {
        int all = !strcmp(names[i], "all") || !strcmp(names[i], "everything");
        int dflt = !strcmp(names[i], "default");
        int idx = section_index(names[i]);
        for (int s = 0; s < NSECTIONS; s++)
            if (all || (dflt && (sections[s].flags & SEC_DEFAULT)) || s == idx)
                sel |= 1ul << s;
    }
    return sel;
}

static void begin_section(struct buf *out, int *count)
{
    if ((*count)++)
        buf_puts(out, "\r\n");
}

/* INFO text for the (lower-cased) names; none means "default". */
static void info_generate(struct server *srv, struct client *cl, char names[][64], int nnames, struct buf *out)
{
    struct info_ctx x = {.srv = srv, .cl = cl, .now_ms = clock_wall_ms()};
    struct hooked_list hooked = {0};
    unsigned long sel = select_sections(names, nnames);
    int count = 0;
    collect_hooked(srv, names, nnames, sel, &hooked);
    for (int s = 0; s < NSECTIONS; s++) {
        if (!(sel & (1ul << s)))
            continue;
        struct hooked *h = hooked_find(&hooked, sections[s].name);
        begin_section(out, &count);
        if (h) {
            buf_append(out, h->text.p, h->text.len);
            h->used = 1;
            continue;
        }
        buf_printf(out, "# %s\r\n", sections[s].header);
        sections[s].fn(&x, out);
    }
    /* sections of other modules, after ours as Redis puts module sections */
    for (int i = 0; i < hooked.n; i++) {
        struct hooked *h = &hooked.v[i];
        if (!h->used && section_index(h->name) < 0) {
            begin_section(out, &count);
            buf_append(out, h->text.p, h->text.len);
        }
        buf_release(&h->text);
    }
    xfree(hooked.v);
}

void info_write(struct server *srv, struct client *cl, const char *section, struct buf *out)
{
    char names[1][64];
    lower_copy(names[0], sizeof names[0], section && *section ? section : "default",
               section && *section ? strlen(section) : 7);
    info_generate(srv, cl, names, 1, out);
}

void cmd_info(struct call *k)
{
    char names[INFO_MAX_NAMES][64];
    int n = 0;
    struct buf text = BUF_INIT;
    for (int i = 1; i < k->argc && n < INFO_MAX_NAMES; i++)
        lower_copy(names[n++], sizeof names[0], k->argv[i].p, k->argv[i].n);
    if (!n)
        strcpy(names[n++], "default");
    info_generate(k->srv, k->cl, names, n, &text);
    resp_w_verbatim(k->out, k->proto, "txt", text.p ? text.p : "", text.len);
    buf_release(&text);
}
