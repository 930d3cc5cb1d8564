/* multi.c: transactions (MULTI, EXEC, DISCARD) and optimistic locking
 * (WATCH, UNWATCH), with Redis's semantics:
 *
 *  - In MULTI every command but EXEC/DISCARD/MULTI/WATCH/QUIT/RESET is
 *    queued (the dispatcher calls multi_queue after its checks); a command
 *    refused while queueing (unknown, arity, OOM...) makes EXEC answer
 *    EXECABORT.
 *  - EXEC locks the shards of every queued command's keys and of the watched
 *    keys at once (ascending, like any multi-key command), checks the watched
 *    keys, runs the handlers under that one context and replies an array.
 *    Other clients see all of the transaction or none of it, on any shard.
 *    The journal gets MULTI ... EXEC around its writes (eng_journal_multi).
 *  - A watched key changed by anyone (expiry, eviction and FLUSHDB included)
 *    after WATCH makes EXEC reply a null array; so does a watched key that
 *    existed at WATCH and has logically expired since (Redis 7's check).
 *
 * WATCH registry: (db, key) -> clients watching it, one lock for the server.
 * The engine's modified hook (under shard locks, any thread) marks watchers
 * dirty through an atomic flag in their struct multi_state; a client's own
 * worker reads it at EXEC.  Lock order: shard locks, then the registry.
 *
 * Commands flagged CMD_NOLOCK that are not CMD_LOCKFREE take engine locks by
 * themselves (DBSIZE, SCAN, INFO...): EXEC runs them between releasing and
 * retaking its locks, so a transaction holding one is atomic only up to it. */
#include <string.h>

#include "base/alloc.h"
#include "keytab.h"
#include "server_int.h"

struct mq_cmd {
    const struct cmd_def *cmd;
    int argc;
    struct eng_str *argv; /* argv and the bytes it views, one block */
};

struct watch_key;

/* c->multi: the queue and the watched keys, on the client's worker; only
 * `dirty` is written by other threads. */
struct multi_state {
    struct mq_cmd *q;
    int n, cap;
    unsigned qflags;
    int executing;
    struct watch_key **watched;
    int nwatched, wcap;
    _Atomic int dirty;
};

struct watch_entry {
    struct kt_node node;
    struct watch_key *head;
    char key[];
};

struct watch_key {
    struct watch_key *prev, *next; /* the key's watchers */
    struct watch_entry *e;
    struct multi_state *ms;
    int existed; /* the key was there (and alive) at WATCH */
};

struct watch_reg {
    pthread_mutex_t lock;
    struct keytab t;
    _Atomic long nkeys; /* the hook's fast path when nobody watches */
};

struct watch_reg *watch_reg_new(void)
{
    struct watch_reg *r = xcalloc(1, sizeof *r);
    pthread_mutex_init(&r->lock, NULL);
    kt_init(&r->t);
    return r;
}

void watch_reg_free(struct watch_reg *r)
{
    if (!r)
        return;
    kt_release(&r->t);
    pthread_mutex_destroy(&r->lock);
    xfree(r);
}

int multi_is_control(const struct cmd_def *cmd)
{
    return cmd->fn == cmd_exec || cmd->fn == cmd_discard || cmd->fn == cmd_multi || cmd->fn == cmd_watch ||
           cmd->fn == cmd_quit || cmd->fn == cmd_reset;
}

static struct multi_state *ms_of(struct client *c)
{
    if (!c->multi)
        c->multi = xcalloc(1, sizeof(struct multi_state));
    return c->multi;
}

unsigned multi_queued_flags(const struct client *c)
{
    const struct multi_state *ms = c->multi;
    return ms ? ms->qflags : 0;
}

int multi_executing(const struct client *c)
{
    const struct multi_state *ms = c ? c->multi : NULL;
    return ms && ms->executing;
}

void multi_queue(struct client *c, const struct cmd_def *cmd, int argc, const struct eng_str *argv)
{
    struct multi_state *ms = ms_of(c);
    size_t bytes = 0;
    for (int i = 0; i < argc; i++)
        bytes += argv[i].n + 1;
    struct eng_str *v = xmalloc(sizeof *v * (size_t)argc + bytes);
    char *p = (char *)(v + argc);
    for (int i = 0; i < argc; i++) {
        memcpy(p, argv[i].p, argv[i].n);
        p[argv[i].n] = '\0';
        v[i] = (struct eng_str){p, argv[i].n};
        p += argv[i].n + 1;
    }
    if (ms->n == ms->cap) {
        ms->cap = ms->cap ? 2 * ms->cap : 8;
        ms->q = xrealloc(ms->q, sizeof *ms->q * (size_t)ms->cap);
    }
    ms->q[ms->n++] = (struct mq_cmd){cmd, argc, v};
    ms->qflags |= cmd->flags;
}

/* ---- WATCH registry --------------------------------------------------------- */

static void watch_add(struct server *s, struct multi_state *ms, int db, const struct eng_str *key, int existed)
{
    struct watch_reg *r = s->watch;
    struct watch_key *wk = xcalloc(1, sizeof *wk);
    wk->ms = ms;
    wk->existed = existed;
    pthread_mutex_lock(&r->lock);
    struct watch_entry *e = (struct watch_entry *)kt_find(&r->t, db, key->p, key->n);
    if (!e) {
        e = xcalloc(1, sizeof *e + key->n + 1);
        memcpy(e->key, key->p, key->n);
        e->node.db = db;
        e->node.key = e->key;
        e->node.len = key->n;
        kt_add(&r->t, &e->node);
        atomic_fetch_add(&r->nkeys, 1);
    }
    wk->e = e;
    wk->next = e->head;
    if (e->head)
        e->head->prev = wk;
    e->head = wk;
    pthread_mutex_unlock(&r->lock);
    if (ms->nwatched == ms->wcap) {
        ms->wcap = ms->wcap ? 2 * ms->wcap : 4;
        ms->watched = xrealloc(ms->watched, sizeof *ms->watched * (size_t)ms->wcap);
    }
    ms->watched[ms->nwatched++] = wk;
}

static void unwatch_all(struct server *s, struct multi_state *ms)
{
    struct watch_reg *r = s->watch;
    if (!ms->nwatched)
        return;
    pthread_mutex_lock(&r->lock);
    for (int i = 0; i < ms->nwatched; i++) {
        struct watch_key *wk = ms->watched[i];
        struct watch_entry *e = wk->e;
        if (wk->prev)
            wk->prev->next = wk->next;
        else
            e->head = wk->next;
        if (wk->next)
            wk->next->prev = wk->prev;
        xfree(wk);
        if (!e->head) {
            kt_del(&r->t, &e->node);
            atomic_fetch_sub(&r->nkeys, 1);
            xfree(e);
        }
    }
    pthread_mutex_unlock(&r->lock);
    ms->nwatched = 0;
}

void watch_touch(struct server *s, int db, const char *key, size_t klen)
{
    struct watch_reg *r = s->watch;
    if (!atomic_load_explicit(&r->nkeys, memory_order_relaxed))
        return;
    pthread_mutex_lock(&r->lock);
    if (key) {
        struct watch_entry *e = (struct watch_entry *)kt_find(&r->t, db, key, klen);
        for (struct watch_key *wk = e ? e->head : NULL; wk; wk = wk->next)
            atomic_store(&wk->ms->dirty, 1);
    } else {
        /* FLUSHDB/FLUSHALL: as Redis's touchAllWatchedKeysInDb, only keys
         * that were there; one that appeared after WATCH already dirtied. */
        for (size_t i = 0; i < r->t.size; i++)
            for (struct kt_node *n = r->t.b[i]; n; n = n->next)
                if (db < 0 || n->db == db)
                    for (struct watch_key *wk = ((struct watch_entry *)n)->head; wk; wk = wk->next)
                        if (wk->existed)
                            atomic_store(&wk->ms->dirty, 1);
    }
    pthread_mutex_unlock(&r->lock);
}

/* ---- state lifetime ------------------------------------------------------- */

static void free_queue(struct multi_state *ms)
{
    for (int i = 0; i < ms->n; i++)
        xfree(ms->q[i].argv);
    xfree(ms->q);
    ms->q = NULL;
    ms->n = ms->cap = 0;
    ms->qflags = 0;
}

/* Frees the state once nothing is queued or watched. */
static void ms_trim(struct client *c)
{
    struct multi_state *ms = c->multi;
    if (ms && !(c->flags & CL_MULTI) && !ms->nwatched && !ms->executing) {
        free_queue(ms);
        xfree(ms->watched);
        xfree(ms);
        c->multi = NULL;
    }
}

/* Redis's discardTransaction: the queue and the watches go. */
static void discard(struct client *c)
{
    struct multi_state *ms = c->multi;
    c->flags &= ~(CL_MULTI | CL_DIRTY_EXEC | CL_DIRTY_CAS);
    if (ms) {
        free_queue(ms);
        unwatch_all(c->w->srv, ms);
        atomic_store(&ms->dirty, 0);
    }
    ms_trim(c);
}

void multi_client_gone(struct client *c) { discard(c); }

/* ---- commands --------------------------------------------------------------- */

void cmd_multi(struct call *k)
{
    if (k->cl->flags & CL_MULTI) {
        reply_error(k, "ERR MULTI calls can not be nested");
        return;
    }
    k->cl->flags |= CL_MULTI;
    ms_of(k->cl);
    reply_ok(k);
}

void cmd_discard(struct call *k)
{
    if (!(k->cl->flags & CL_MULTI)) {
        reply_error(k, "ERR DISCARD without MULTI");
        return;
    }
    discard(k->cl);
    reply_ok(k);
}

/* The dispatcher locked the keys' shards: a writer cannot slip between the
 * existence check and the registration. */
void cmd_watch(struct call *k)
{
    struct client *c = k->cl;
    if (c->flags & CL_MULTI) {
        reply_error(k, "ERR WATCH inside MULTI is not allowed");
        return;
    }
    struct multi_state *ms = ms_of(c);
    if (atomic_load(&ms->dirty)) { /* no point watching more (Redis) */
        reply_ok(k);
        return;
    }
    for (int i = 1; i < k->argc; i++) {
        const struct eng_str *key = &k->argv[i];
        int seen = 0;
        for (int j = 0; j < ms->nwatched && !seen; j++) {
            const struct kt_node *n = &ms->watched[j]->e->node;
            seen = n->db == c->db && n->len == key->n && memcmp(n->key, key->p, key->n) == 0;
        }
        if (!seen)
            watch_add(k->srv, ms, c->db, key, eng_exists(&k->ec, key->p, key->n));
    }
    reply_ok(k);
}

void cmd_unwatch(struct call *k)
{
    struct multi_state *ms = k->cl->multi;
    if (ms) {
        unwatch_all(k->srv, ms);
        atomic_store(&ms->dirty, 0);
    }
    k->cl->flags &= ~CL_DIRTY_CAS;
    ms_trim(k->cl);
    reply_ok(k);
}

/* ---- EXEC ---------------------------------------------------------------------- */

/* Locks the transaction's shards: every shard when a command needs them all,
 * else the first n keys of the list. */
static void exec_lock(struct eng_ctx *ec, int all, const struct key_list *keys, int n)
{
    if (all)
        eng_lock_all(ec);
    else
        eng_lock_keys(ec, keys->v, n);
}

/* Under the transaction's locks: did a watched key change, or expire since
 * WATCH saw it?  (A lookup deletes an expired key, which dirties us too.) */
static int watch_failed(struct multi_state *ms, struct eng_ctx *ec)
{
    int db = ec->db, failed = atomic_load(&ms->dirty);
    for (int i = 0; i < ms->nwatched && !failed; i++) {
        const struct watch_key *wk = ms->watched[i];
        if (!wk->existed)
            continue;
        ec->db = wk->e->node.db;
        failed = !eng_exists(ec, wk->e->key, wk->e->node.len);
    }
    ec->db = db;
    return failed || atomic_load(&ms->dirty);
}

struct exec_run {
    struct call *k;
    struct eng_ctx ec;
    const struct key_list *keys;
    int nkeys, all;
};

static void exec_one(struct exec_run *x, const struct mq_cmd *q)
{
    struct client *c = x->k->cl;
    struct server *srv = x->k->srv;
    struct call k = {.srv = srv, .cl = c, .cmd = q->cmd, .argc = q->argc, .argv = q->argv, .out = x->k->out,
                     .proto = c->proto};
    if ((q->cmd->flags & CMD_NOLOCK) && !(q->cmd->flags & CMD_LOCKFREE)) {
        /* It locks by itself: we hold every shard (cmd_exec), and the
         * engine does not take again what this thread holds, so nothing
         * runs between the transaction's commands. */
        call_command(&k);
        return;
    }
    k.ec = x->ec;
    k.ec.db = c->db; /* SELECT inside the transaction moves the next commands */
    call_locked(&k);
    x->ec.txn = k.ec.txn;
    if (k.ec.nlocked != x->ec.nlocked || memcmp(k.ec.locked, x->ec.locked, sizeof k.ec.locked)) {
        /* The handler relocked (keys its getkeys did not list): take ours back. */
        if (k.ec.nlocked)
            eng_unlock(&k.ec);
        exec_lock(&x->ec, x->all, x->keys, x->nkeys);
    }
}

void cmd_exec(struct call *k)
{
    struct client *c = k->cl;
    struct multi_state *ms = c->multi;
    if (!(c->flags & CL_MULTI)) {
        reply_error(k, "ERR EXEC without MULTI");
        return;
    }
    if (c->flags & CL_DIRTY_EXEC) {
        reply_error(k, "EXECABORT Transaction discarded because of previous errors.");
        discard(c);
        return;
    }
    struct key_list keys;
    key_list_init(&keys);
    struct exec_run x = {.k = k, .keys = &keys};
    for (int i = 0; i < ms->n; i++) {
        const struct cmd_def *cmd = ms->q[i].cmd;
        if (command_keys(cmd, ms->q[i].argc, ms->q[i].argv, &keys) == CMD_LOCKALL ||
            ((cmd->flags & CMD_NOLOCK) && !(cmd->flags & CMD_LOCKFREE)))
            x.all = 1; /* a command that locks by itself: see exec_one */
    }
    x.nkeys = keys.n;
    for (int i = 0; i < ms->nwatched; i++)
        key_list_push(&keys, (struct eng_str){ms->watched[i]->e->key, ms->watched[i]->e->node.len});
    eng_ctx_init(&x.ec, k->srv->eng, c->db);
    exec_lock(&x.ec, x.all, &keys, keys.n);
    if (watch_failed(ms, &x.ec)) {
        eng_unlock(&x.ec);
        key_list_release(&keys);
        resp_w_null_array(k->out, k->proto);
        discard(c);
        return;
    }
    unwatch_all(k->srv, ms); /* watching is over; the locks keep the keys still */
    ms->executing = 1;
    c->flags &= ~CL_MULTI;
    resp_w_array(k->out, ms->n);
    eng_journal_multi(&x.ec, 1);
    for (int i = 0; i < ms->n; i++)
        exec_one(&x, &ms->q[i]);
    eng_journal_multi(&x.ec, 0);
    eng_unlock(&x.ec);
    key_list_release(&keys);
    ms->executing = 0;
    discard(c);
}
