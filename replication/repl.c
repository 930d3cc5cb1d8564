/* repl.c: replication's lifecycle and thread, and FAILOVER.
 *
 * The thread runs one libuv loop: the link to our master (repl_replica.c),
 * the pipes of full copies on their way to replicas (repl_master.c), and a
 * cron every 100 ms (reconnects, acknowledgements every second, PINGs to
 * replicas, timeouts, FAILOVER's progress).  Other threads wake it through
 * one uv_async (REPLICAOF, a new full copy, an acknowledgement FAILOVER
 * waits for).
 *
 * FAILOVER (Redis 6.2's coordinated switch): writes are paused, the target
 * (or the first replica) must acknowledge our whole stream, then this node
 * becomes its replica and asks "PSYNC <replid> <offset> FAILOVER", on which
 * the target promotes itself and continues us from the offset; the writes
 * paused meanwhile then meet -READONLY.  A timeout aborts (or, with FORCE,
 * goes on with the target anyway); a refused PSYNC aborts: master again. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/num.h"
#include "repl_int.h"

#define CRON_MS 100

struct repl *repl_new(struct eng *e, struct repl_config *cfg)
{
    struct repl *r = xcalloc(1, sizeof *r);
    r->eng = e;
    r->cfg = cfg;
    pthread_mutex_init(&r->mu, NULL);
    repl__new_replid(r->replid);
    memset(r->replid2, '0', REPL_ID_LEN);
    r->second_off = -1;
    r->last_db = -1;
    if (cfg->master_host && *cfg->master_host) {
        r->is_replica = 1;
        snprintf(r->master_host, sizeof r->master_host, "%s", cfg->master_host);
        r->master_port = cfg->master_port;
        r->link_state = LINK_CONNECT;
        eng_set_replica(e, 1);
    }
    repl__config_bind(r);
    return r;
}

/* Redis 7's shutdown of a master: writes pause and lagging replicas get up
 * to shutdown-timeout seconds to acknowledge everything, so that a planned
 * restart (and the failover Sentinel then makes) loses no write. */
static void shutdown_wait(struct repl *r)
{
    int64_t timeout_ms = r->cfg->shutdown_timeout * 1000;
    pthread_mutex_lock(&r->mu);
    int wait = !r->is_replica && r->npeers && timeout_ms > 0;
    pthread_mutex_unlock(&r->mu);
    if (!wait)
        return;
    server_pause_writes(r->srv, 1);
    repl__request_acks(r, atomic_load(&r->offset));
    uint64_t off = atomic_load(&r->offset);
    int64_t t0 = clock_wall_ms();
    int lagging = 1;
    while (lagging && clock_wall_ms() - t0 < timeout_ms) {
        lagging = 0;
        pthread_mutex_lock(&r->mu);
        for (struct repl_peer *p = r->peers; p; p = p->next)
            lagging |= p->state == PEER_ONLINE && p->ack_off < off;
        pthread_mutex_unlock(&r->mu);
        if (lagging)
            uv_sleep(10);
    }
    if (lagging)
        log_warn("shutting down with lagging replicas", "waited_ms=%lld", (long long)(clock_wall_ms() - t0));
    else
        log_info("replicas are in sync: shutting down", "waited_ms=%lld", (long long)(clock_wall_ms() - t0));
}

static void stopping(void *ud)
{
    shutdown_wait(ud);
    repl_stop(ud);
}

void repl_ops(struct repl *r, struct server_repl_ops *o)
{
    *o = (struct server_repl_ops){
        .ud = r,
        .journal = repl__journal,
        .journal_wanted = repl__journal_wanted,
        .info = repl__info,
        .replicaof = repl__replicaof,
        .role = repl__role,
        .failover = repl__failover,
        .psync = repl__psync,
        .ack = repl__ack,
        .replica_closed = repl__replica_closed,
        .offset = repl__offset,
        .acked = repl__acked,
        .request_acks = repl__request_acks,
        .is_replica = repl__is_replica,
        .stopping = stopping,
        .sync_stats = repl__sync_stats,
    };
}

int repl__is_replica(void *ud)
{
    struct repl *r = ud;
    pthread_mutex_lock(&r->mu);
    int v = r->is_replica;
    pthread_mutex_unlock(&r->mu);
    return v;
}

/* ---- the thread ---------------------------------------------------------------------- */

static void on_wake(uv_async_t *a)
{
    struct repl *r = a->data;
    if (atomic_load(&r->stop)) {
        repl__link_free(r);
        repl__xfer_stop_all(r);
        uv_close((uv_handle_t *)&r->wake, NULL);
        uv_close((uv_handle_t *)&r->cron, NULL);
        return;
    }
    repl__xfer_start_all(r);
    repl__link_follow(r);
    repl__failover_cron(r, clock_wall_ms());
}

static void on_cron(uv_timer_t *t)
{
    struct repl *r = t->data;
    int64_t now = clock_wall_ms();
    repl__xfer_start_all(r);
    repl__replica_cron(r, now);
    repl__master_cron(r, now);
    repl__failover_cron(r, now);
}

_Thread_local int repl__on_thread;

static void thread_main(void *arg)
{
    struct repl *r = arg;
    repl__on_thread = 1;
    uv_run(&r->loop, UV_RUN_DEFAULT);
}

int repl_start(struct repl *r, struct server *srv, const struct server_config *sc, const struct repl_env *env)
{
    r->srv = srv;
    r->port = sc->port;
    r->sc = sc;
    if (env)
        r->env = *env;
    r->master_client = server_pseudo_new(srv);
    pthread_mutex_lock(&r->mu);
    int replica = r->is_replica;
    pthread_mutex_unlock(&r->mu);
    server_set_read_only(srv, replica && r->cfg->replica_read_only);
    if (uv_loop_init(&r->loop) < 0)
        return -1;
    uv_async_init(&r->loop, &r->wake, on_wake);
    r->wake.data = r;
    uv_timer_init(&r->loop, &r->cron);
    r->cron.data = r;
    uv_timer_start(&r->cron, on_cron, CRON_MS, CRON_MS);
    atomic_store(&r->running, 1);
    if (uv_thread_create(&r->thread, thread_main, r) < 0) {
        atomic_store(&r->running, 0);
        return -1;
    }
    if (r->env.on_role_change)
        r->env.on_role_change(r->env.ud, !replica);
    if (replica)
        uv_async_send(&r->wake);
    return 0;
}

void repl_stop(struct repl *r)
{
    if (!r || !atomic_load(&r->running))
        return;
    atomic_store(&r->stop, 1);
    uv_async_send(&r->wake);
    uv_thread_join(&r->thread);
    atomic_store(&r->running, 0);
    uv_run(&r->loop, UV_RUN_NOWAIT); /* close callbacks still due */
    uv_loop_close(&r->loop);
    server_pseudo_free(r->master_client); /* needs the server, which outlives this call */
    r->master_client = NULL;
}

void repl_free(struct repl *r)
{
    if (!r)
        return;
    repl_stop(r);
    while (r->peers) {
        struct repl_peer *p = r->peers;
        r->peers = p->next;
        buf_release(&p->out);
        xfree(p);
    }
    repl_backlog_release(&r->bl);
    repl__config_bind(NULL);
    pthread_mutex_destroy(&r->mu);
    xfree(r);
}

/* ---- FAILOVER ------------------------------------------------------------------------- */

static void failover_abort_locked(struct repl *r, const char *why)
{
    log_warn("FAILOVER aborted", "why=\"%s\"", why);
    r->fo_state = FO_NONE;
    r->fo_deadline_ms = 0;
}

static int parse_failover(int argc, const struct eng_str *argv, char *host, int64_t *port, int *force,
                          int64_t *timeout, int *abort_, struct buf *out)
{
    for (int i = 1; i < argc; i++) {
        if (argv[i].n == 2 && !strncasecmp(argv[i].p, "to", 2) && i + 2 < argc) {
            snprintf(host, 256, "%.*s", (int)(argv[i + 1].n < 255 ? argv[i + 1].n : 255), argv[i + 1].p);
            if (num_parse_i64(argv[i + 2].p, argv[i + 2].n, port) < 0) {
                resp_w_error(out, "ERR value is not an integer or out of range");
                return -1;
            }
            i += 2;
        } else if (argv[i].n == 7 && !strncasecmp(argv[i].p, "timeout", 7) && i + 1 < argc) {
            if (num_parse_i64(argv[i + 1].p, argv[i + 1].n, timeout) < 0) {
                resp_w_error(out, "ERR value is not an integer or out of range");
                return -1;
            }
            if (*timeout <= 0) {
                resp_w_error(out, "ERR FAILOVER timeout must be greater than 0");
                return -1;
            }
            i++;
        } else if (argv[i].n == 5 && !strncasecmp(argv[i].p, "force", 5)) {
            *force = 1;
        } else if (argv[i].n == 5 && !strncasecmp(argv[i].p, "abort", 5)) {
            *abort_ = 1;
        } else {
            resp_w_error(out, "ERR syntax error");
            return -1;
        }
    }
    return 0;
}

static struct repl_peer *peer_by_addr(struct repl *r, const char *host, int64_t port)
{
    for (struct repl_peer *p = r->peers; p; p = p->next)
        if (!strcasecmp(p->ri.ip, host) && p->ri.listening_port == port)
            return p;
    return NULL;
}

int repl__failover(void *ud, int argc, const struct eng_str *argv, struct buf *out)
{
    struct repl *r = ud;
    char host[256] = "";
    int64_t port = 0, timeout = 0;
    int force = 0, abort_ = 0;
    if (parse_failover(argc, argv, host, &port, &force, &timeout, &abort_, out) < 0)
        return -1;
    const char *err = NULL;
    pthread_mutex_lock(&r->mu);
    if (abort_) {
        if (r->fo_state == FO_NONE) {
            err = "ERR No failover in progress.";
        } else {
            int was = r->fo_state;
            failover_abort_locked(r, "Failover manually aborted");
            pthread_mutex_unlock(&r->mu);
            if (was == FO_IN_PROGRESS)
                repl__set_master(r, NULL, 0, "FAILOVER aborted");
            server_pause_writes(r->srv, 0);
            resp_w_simple(out, "OK");
            return 0;
        }
    } else if (force && (!timeout || !host[0])) {
        err = "ERR FAILOVER with force option requires both a timeout and target HOST and IP.";
    } else if (r->is_replica) {
        err = "ERR FAILOVER is not valid when server is a replica.";
    } else if (!r->npeers) {
        err = "ERR FAILOVER requires connected replicas.";
    } else if (r->fo_state != FO_NONE) {
        err = "ERR FAILOVER already in progress.";
    } else if (host[0]) {
        struct repl_peer *p = peer_by_addr(r, host, port);
        if (!p)
            err = "ERR FAILOVER target HOST and PORT is not a replica.";
        else if (p->state != PEER_ONLINE)
            err = "ERR FAILOVER target replica is not online.";
        else
            r->fo_target = p->ri.conn;
    }
    if (err) {
        pthread_mutex_unlock(&r->mu);
        resp_w_error(out, err);
        return -1;
    }
    snprintf(r->fo_host, sizeof r->fo_host, "%s", host);
    r->fo_port = port;
    r->fo_force = force;
    r->fo_deadline_ms = timeout ? clock_wall_ms() + timeout : 0;
    r->fo_state = FO_WAIT_SYNC;
    server_pause_writes(r->srv, 1);
    pthread_mutex_unlock(&r->mu);
    repl__request_acks(r, atomic_load(&r->offset));
    log_info("FAILOVER requested", "to=%s:%lld timeout_ms=%lld force=%d", host[0] ? host : "any", (long long)port,
             (long long)timeout, force);
    if (atomic_load(&r->running))
        uv_async_send(&r->wake);
    resp_w_simple(out, "OK");
    return 0;
}

/* The thread: is the target in sync yet, has the time run out? */
void repl__failover_cron(struct repl *r, int64_t now_ms)
{
    char host[256];
    int64_t port;
    pthread_mutex_lock(&r->mu);
    if (r->fo_state != FO_WAIT_SYNC) {
        pthread_mutex_unlock(&r->mu);
        return;
    }
    uint64_t off = atomic_load(&r->offset);
    struct repl_peer *pick = NULL;
    for (struct repl_peer *p = r->peers; p && !pick; p = p->next) {
        int target = !r->fo_host[0] || (p->ri.conn.id == r->fo_target.id && p->ri.conn.worker == r->fo_target.worker);
        if (target && p->state == PEER_ONLINE && p->ack_off >= off)
            pick = p;
    }
    if (!pick && r->fo_deadline_ms && now_ms > r->fo_deadline_ms) {
        if (r->fo_force && r->fo_host[0]) {
            log_warn("FAILOVER: the target did not catch up in time, going on (FORCE)", "%s", "");
            snprintf(host, sizeof host, "%s", r->fo_host);
            port = r->fo_port;
            goto proceed;
        }
        failover_abort_locked(r, "Replica never caught up before timeout");
        pthread_mutex_unlock(&r->mu);
        server_pause_writes(r->srv, 0);
        return;
    }
    if (!pick) {
        pthread_mutex_unlock(&r->mu);
        return;
    }
    snprintf(host, sizeof host, "%s", pick->ri.ip);
    port = pick->ri.listening_port;
proceed:
    r->fo_state = FO_IN_PROGRESS;
    /* become its replica (repl__set_master would end the failover state) */
    r->is_replica = 1;
    atomic_store(&r->journal_on, 0);
    snprintf(r->master_host, sizeof r->master_host, "%s", host);
    r->master_port = port;
    r->link_state = LINK_CONNECT;
    r->master_gen++;
    repl__drop_peers_locked(r);
    pthread_mutex_unlock(&r->mu);
    eng_set_replica(r->eng, 1);
    server_set_read_only(r->srv, r->cfg->replica_read_only);
    log_info("FAILOVER: the target is in sync, switching", "target=%s:%lld offset=%llu", host, (long long)port,
             (unsigned long long)off);
    if (r->env.on_role_change)
        r->env.on_role_change(r->env.ud, 0);
    repl__link_follow(r);
}

/* The link: the target answered our PSYNC FAILOVER (ok) or did not. */
void repl__failover_done(struct repl *r, int ok)
{
    pthread_mutex_lock(&r->mu);
    int in_progress = r->fo_state == FO_IN_PROGRESS;
    if (in_progress)
        r->fo_state = FO_NONE;
    pthread_mutex_unlock(&r->mu);
    if (!in_progress)
        return;
    if (ok) {
        log_info("FAILOVER: the target is now our master", "%s", "");
    } else {
        log_warn("FAILOVER: the target refused the PSYNC, master again", "%s", "");
        repl__set_master(r, NULL, 0, "FAILOVER failed");
    }
    server_pause_writes(r->srv, 0);
}
