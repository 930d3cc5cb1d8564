/* cmd_repl.c: the replication commands as the protocol sees them, and what
 * replication/ needs from the protocol.
 *
 * REPLICAOF/SLAVEOF, ROLE, FAILOVER, PSYNC/SYNC and REPLCONF ACK are
 * replication's work: their handlers here only hand the request to
 * server_repl_ops (replication/repl.h fills it in; protocol/ never includes
 * replication/).  REPLCONF's handshake options are kept on the client until
 * PSYNC, which turns the client into a replica (CL_REPLICA: its own output
 * buffer limits, no idle timeout, CLIENT LIST flag S).  WAIT blocks its
 * client here until enough replicas acknowledged the client's last write
 * (c->woff, set by the dispatcher) or the timeout passes.  SCRIPT exists for
 * Sentinel, which sends SCRIPT KILL after a -BUSY: there are no scripts.
 *
 * The other way: replication names connections by (worker, id) and reaches
 * them through the workers' mailboxes (server_conn_*), and runs its master's
 * stream through a pseudo client (server_pseudo_*).
 *
 * WAIT's registry: one list behind one lock.  A waiter is WAITING (on the
 * list) until the acknowledgements satisfy it (unlinked, its reply posted to
 * the owner worker) or its timeout fires (unlinked by the owner).  A client
 * that goes away marks an entry already posted as orphan: the post frees it. */
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/num.h"
#include "server_int.h"

/* ---- the ops ------------------------------------------------------------- */

void server_set_repl_ops(struct server *s, const struct server_repl_ops *ops)
{
    s->repl = *ops;
    features_set_journal(s); /* the engine's journal hook forwards to ops->journal */
}

void server_set_read_only(struct server *s, int on) { atomic_store(&s->read_only, on); }

int server_is_loading(struct server *s) { return atomic_load(&s->loading); }

void server_pause_writes(struct server *s, int on)
{
    if (on) {
        atomic_store(&s->pause_all, 0);
        atomic_store(&s->pause_until_ms, INT64_MAX);
        return;
    }
    atomic_store(&s->pause_until_ms, 0);
    atomic_store(&s->pause_all, 0);
    for (int i = 0; i < s->nworkers; i++)
        worker_post(&s->workers[i], MSG_RESUME, 0, NULL, 0);
}

/* ---- REPLICAOF, ROLE, FAILOVER ------------------------------------------------ */

static void no_replication(struct call *k) { reply_error(k, "ERR replication is not enabled in this server"); }

void cmd_replicaof(struct call *k)
{
    if (!k->srv->repl.replicaof)
        return no_replication(k);
    if (k->srv->repl.replicaof(k->srv->repl.ud, k->argc, k->argv, k->out) < 0)
        k->failed = 1;
}

void cmd_role(struct call *k)
{
    if (!k->srv->repl.role) { /* a master that never had replicas */
        resp_w_array(k->out, 3);
        resp_w_bulkstr(k->out, "master");
        resp_w_int(k->out, 0);
        resp_w_array(k->out, 0);
        return;
    }
    k->srv->repl.role(k->srv->repl.ud, k->out);
}

void cmd_failover(struct call *k)
{
    if (!k->srv->repl.failover)
        return no_replication(k);
    if (k->srv->repl.failover(k->srv->repl.ud, k->argc, k->argv, k->out) < 0)
        k->failed = 1;
}

/* ---- PSYNC, SYNC, REPLCONF ------------------------------------------------------- */

static struct server_replica_info *replica_info_of(struct client *c)
{
    if (!c->repl) {
        c->repl = xcalloc(1, sizeof *c->repl);
        c->repl->conn = (struct server_conn){c->w->id, c->id};
        /* the peer address without its port ("[::1]:p" and "1.2.3.4:p") */
        snprintf(c->repl->ip, sizeof c->repl->ip, "%s", c->addr);
        char *colon = strrchr(c->repl->ip, ':');
        if (colon)
            *colon = '\0';
    }
    return c->repl;
}

static void psync_generic(struct call *k)
{
    struct client *c = k->cl;
    if (!c || (c->flags & CL_REPLICA))
        return; /* a replica's repeated PSYNC is ignored, as in Redis */
    if (!k->srv->repl.psync)
        return no_replication(k);
    int rc = k->srv->repl.psync(k->srv->repl.ud, replica_info_of(c), k->argc, k->argv, k->out);
    if (rc == 1)
        c->flags |= CL_REPLICA;
    else if (rc < 0)
        k->failed = 1;
}

void cmd_psync(struct call *k) { psync_generic(k); }
void cmd_sync(struct call *k) { psync_generic(k); }

void cmd_replconf(struct call *k)
{
    struct client *c = k->cl;
    if (k->argc % 2 == 0) {
        reply_error(k, "ERR syntax error");
        return;
    }
    for (int i = 1; i < k->argc; i += 2) {
        const struct eng_str *v = &k->argv[i + 1];
        if (arg_is(k, i, "listening-port")) {
            int64_t port;
            if (arg_i64(k, i + 1, &port) < 0)
                return;
            replica_info_of(c)->listening_port = port;
        } else if (arg_is(k, i, "ip-address")) {
            struct server_replica_info *ri = replica_info_of(c);
            snprintf(ri->ip, sizeof ri->ip, "%.*s", (int)(v->n < 63 ? v->n : 63), v->p);
        } else if (arg_is(k, i, "capa")) {
            if (v->n == 3 && !strncasecmp(v->p, "eof", 3))
                replica_info_of(c)->capa |= SERVER_CAPA_EOF;
            else if (v->n == 6 && !strncasecmp(v->p, "psync2", 6))
                replica_info_of(c)->capa |= SERVER_CAPA_PSYNC2;
        } else if (arg_is(k, i, "ack")) {
            /* A replica's acknowledgement: never answered. */
            uint64_t off;
            if (c && (c->flags & CL_REPLICA) && k->srv->repl.ack &&
                num_parse_u64(v->p, v->n, &off) == 0) {
                k->srv->repl.ack(k->srv->repl.ud, &c->repl->conn, off);
                server_acks_changed(k->srv);
            }
            return;
        } else if (arg_is(k, i, "getack")) {
            return; /* only a master's stream asks it; replication answers that */
        } else if (arg_is(k, i, "rdb-only") || arg_is(k, i, "rdb-filter-only")) {
            /* accepted, as redis-server's tools send them */
        } else {
            reply_error(k, "ERR Unrecognized REPLCONF option: %.*s", (int)k->argv[i].n, k->argv[i].p);
            return;
        }
    }
    reply_ok(k);
}

/* ---- WAIT ------------------------------------------------------------------------ */

enum { WAIT_WAITING, WAIT_DONE };

struct wait_entry {
    struct wait_entry *prev, *next;
    struct worker *w;
    uint64_t id, off;
    int64_t num;
    int state, orphan, count;
    struct wait_client *wc; /* owner worker only */
};

/* c->waiting: the timer, on the client's worker. */
struct wait_client {
    uv_timer_t timer;
    struct client *c;
    struct wait_entry *e;
};

struct wait_reg {
    pthread_mutex_t lock;
    struct wait_entry *head;
    _Atomic int n;
};

struct wait_reg *wait_reg_new(void)
{
    struct wait_reg *r = xcalloc(1, sizeof *r);
    pthread_mutex_init(&r->lock, NULL);
    return r;
}

void wait_reg_free(struct wait_reg *r)
{
    if (!r)
        return;
    while (r->head) {
        struct wait_entry *e = r->head;
        r->head = e->next;
        xfree(e);
    }
    pthread_mutex_destroy(&r->lock);
    xfree(r);
}

static void wait_unlink(struct wait_reg *r, struct wait_entry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        r->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    e->prev = e->next = NULL;
    atomic_fetch_sub(&r->n, 1);
}

static void wait_unblock(struct client *c, struct wait_client *wc, int count)
{
    uv_timer_stop(&wc->timer);
    wc->e = NULL;
    c->flags &= ~CL_BLOCKED;
    resp_w_int(&c->obuf, count);
    client_process_input(c); /* what it sent while it waited */
    client_flush(c);
}

static int acked(struct server *s, uint64_t off)
{
    int n = s->repl.acked ? s->repl.acked(s->repl.ud, off) : 0;
    return n < 0 ? 0 : n;
}

/* Owner worker: the acknowledgements came. */
static void on_wait_done(struct worker *w, void *arg)
{
    struct wait_entry *e = arg;
    if (!e->orphan)
        wait_unblock(e->wc->c, e->wc, e->count);
    xfree(e);
}

static void post_done(struct wait_entry *e)
{
    void (*fn)(struct worker *, void *) = on_wait_done;
    char data[sizeof fn + sizeof(void *)];
    memcpy(data, &fn, sizeof fn);
    memcpy(data + sizeof fn, &e, sizeof e);
    worker_post(e->w, MSG_CALLBACK, 0, data, sizeof data);
}

void server_acks_changed(struct server *s)
{
    struct wait_reg *r = s->waits;
    if (!r || !atomic_load(&r->n))
        return;
    pthread_mutex_lock(&r->lock);
    struct wait_entry *next;
    for (struct wait_entry *e = r->head; e; e = next) {
        next = e->next;
        int n = acked(s, e->off);
        if (n < e->num)
            continue;
        wait_unlink(r, e);
        e->state = WAIT_DONE;
        e->count = n;
        post_done(e);
    }
    pthread_mutex_unlock(&r->lock);
}

static void on_wait_timeout(uv_timer_t *t)
{
    struct wait_client *wc = t->data;
    struct wait_entry *e = wc->e;
    if (!e)
        return;
    struct server *s = wc->c->w->srv;
    pthread_mutex_lock(&s->waits->lock);
    int waiting = e->state == WAIT_WAITING;
    if (waiting)
        wait_unlink(s->waits, e);
    pthread_mutex_unlock(&s->waits->lock);
    if (waiting) { /* else the acknowledgement's reply is on its way */
        wait_unblock(wc->c, wc, acked(s, e->off));
        xfree(e);
    }
}

static void free_wc(uv_handle_t *h) { xfree(h->data); }

static struct wait_client *wc_of(struct client *c)
{
    if (!c->waiting) {
        struct wait_client *wc = xcalloc(1, sizeof *wc);
        uv_timer_init(&c->w->loop, &wc->timer);
        wc->timer.data = wc;
        wc->c = c;
        c->waiting = wc;
    }
    return c->waiting;
}

void cmd_wait(struct call *k)
{
    struct client *c = k->cl;
    struct server *s = k->srv;
    int64_t num, timeout;
    if (s->repl.acked && s->repl.acked(s->repl.ud, 0) < 0) {
        reply_error(k, "ERR WAIT cannot be used with replica instances. Please also note that since Redis 4.0 if a "
                       "replica is configured to be writable (which is not the default) writes to replicas are just "
                       "local and are not propagated.");
        return;
    }
    if (arg_i64(k, 1, &num) < 0 || arg_i64(k, 2, &timeout) < 0)
        return;
    if (timeout < 0) {
        reply_error(k, "ERR timeout is negative");
        return;
    }
    uint64_t off = c ? c->woff : 0;
    int n = acked(s, off);
    if (n >= num || !c || multi_executing(c) || !s->repl.acked) {
        resp_w_int(k->out, n);
        return;
    }
    struct wait_entry *e = xcalloc(1, sizeof *e);
    e->w = c->w;
    e->id = c->id;
    e->off = off;
    e->num = num;
    e->wc = wc_of(c);
    e->wc->e = e;
    pthread_mutex_lock(&s->waits->lock);
    e->next = s->waits->head;
    if (e->next)
        e->next->prev = e;
    s->waits->head = e;
    atomic_fetch_add(&s->waits->n, 1);
    pthread_mutex_unlock(&s->waits->lock);
    c->flags |= CL_BLOCKED;
    if (timeout > 0)
        uv_timer_start(&e->wc->timer, on_wait_timeout, (uint64_t)timeout, 0);
    if (s->repl.request_acks)
        s->repl.request_acks(s->repl.ud, off);
    server_acks_changed(s); /* an acknowledgement may have come meanwhile */
}

void repl_client_gone(struct client *c)
{
    struct server *s = c->w->srv;
    struct wait_client *wc = c->waiting;
    if (wc) {
        struct wait_entry *e = wc->e;
        if (e) {
            pthread_mutex_lock(&s->waits->lock);
            int waiting = e->state == WAIT_WAITING;
            if (waiting)
                wait_unlink(s->waits, e);
            else
                e->orphan = 1; /* on_wait_done frees it */
            pthread_mutex_unlock(&s->waits->lock);
            if (waiting)
                xfree(e);
        }
        c->waiting = NULL;
        uv_timer_stop(&wc->timer);
        /* at shutdown uv_walk may have closed it already: wc goes with the process */
        if (!uv_is_closing((uv_handle_t *)&wc->timer))
            uv_close((uv_handle_t *)&wc->timer, free_wc);
    }
    if ((c->flags & CL_REPLICA) && c->repl && s->repl.replica_closed)
        s->repl.replica_closed(s->repl.ud, &c->repl->conn);
    xfree(c->repl);
    c->repl = NULL;
}

/* ---- SCRIPT ------------------------------------------------------------------------ */

static const char *const script_help[] = {
    "SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "KILL",
    "    Kill the currently executing Lua script.",
    "HELP",
    "    Prints this help.",
};

void cmd_script(struct call *k)
{
    if (arg_is(k, 1, "kill")) {
        reply_error(k, "NOTBUSY No scripts in execution right now.");
    } else {
        int n = (int)(sizeof script_help / sizeof script_help[0]);
        resp_w_array(k->out, n);
        for (int i = 0; i < n; i++)
            resp_w_simple(k->out, script_help[i]);
    }
}

/* ---- connections by name ------------------------------------------------------------- */

static struct worker *worker_of(struct server *s, const struct server_conn *c)
{
    return c->worker >= 0 && c->worker < s->nworkers ? &s->workers[c->worker] : NULL;
}

void server_conn_send(struct server *s, const struct server_conn *c, const void *p, size_t n)
{
    struct worker *w = worker_of(s, c);
    if (w && n)
        worker_post(w, MSG_WRITE, c->id, p, n);
}

void server_conn_call(struct server *s, const struct server_conn *c, server_conn_fn *fn, void *ud)
{
    struct worker *w = worker_of(s, c);
    if (!w)
        return;
    char data[sizeof fn + sizeof ud];
    memcpy(data, &fn, sizeof fn);
    memcpy(data + sizeof fn, &ud, sizeof ud);
    worker_post(w, MSG_CONN_CALL, c->id, data, sizeof data);
}

void server_conn_kill(struct server *s, const struct server_conn *c)
{
    struct worker *w = worker_of(s, c);
    if (w)
        worker_post(w, MSG_CLOSE, c->id, NULL, 0);
}

/* ---- the master client ------------------------------------------------------------------ */

struct server_pseudo {
    struct worker w; /* its own statistics: never runs a loop */
    struct client c;
};

struct server_pseudo *server_pseudo_new(struct server *s)
{
    struct server_pseudo *p = xcalloc(1, sizeof *p);
    p->w.id = -1;
    p->w.srv = s;
    p->w.cmdstats = xcalloc((size_t)cmd_id_count(), sizeof *p->w.cmdstats);
    struct client *c = &p->c;
    c->w = &p->w;
    c->id = atomic_fetch_add(&s->next_client_id, 1) + 1;
    c->flags = CL_MASTER;
    c->proto = 2;
    c->authed = 1;
    c->fd = -1;
    c->ctime_ms = c->last_ms = clock_wall_ms();
    snprintf(c->addr, sizeof c->addr, "master:0");
    return p;
}

void server_pseudo_exec(struct server_pseudo *p, int argc, const struct eng_str *argv, struct buf *reply)
{
    struct client *c = &p->c;
    c->last_ms = clock_wall_ms();
    dispatch_request(c, argc, argv);
    if (reply && c->obuf.len)
        buf_append(reply, c->obuf.p, c->obuf.len);
    buf_reset(&c->obuf);
}

void server_pseudo_reset(struct server_pseudo *p)
{
    multi_client_gone(&p->c);
    p->c.flags &= ~(CL_MULTI | CL_DIRTY_EXEC | CL_DIRTY_CAS);
    p->c.db = 0;
}

int server_pseudo_in_multi(const struct server_pseudo *p) { return (p->c.flags & CL_MULTI) != 0; }

int server_pseudo_db(const struct server_pseudo *p) { return p->c.db; }

void server_pseudo_select(struct server_pseudo *p, int db)
{
    if (db >= 0 && db < p->w.srv->cfg->databases)
        p->c.db = db;
}

void server_pseudo_free(struct server_pseudo *p)
{
    if (!p)
        return;
    struct server *s = p->w.srv;
    if (s->hooks_internal.on_close)
        s->hooks_internal.on_close(&p->c);
    buf_release(&p->c.obuf);
    buf_release(&p->c.qbuf);
    buf_release(&p->c.wbuf);
    xfree(p->c.argv);
    xfree(p->c.name);
    xfree(p->w.cmdstats);
    xfree(p);
}
