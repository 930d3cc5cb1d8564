/* blocking.c: the blocking pops (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP,
 * BZPOPMIN, BZPOPMAX, BZMPOP) and the serving of the clients they block.
 *
 * A command that finds nothing to pop registers its client as a waiter on
 * each of its keys, while it still holds the keys' shard locks (so a push
 * cannot slip between the check and the registration), sets CL_BLOCKED
 * (conn.c stops reading its requests) and starts a timer when the timeout is
 * not 0.  The registry is one table for the server, behind one lock:
 *
 *   (db, key) -> struct blk_key -> waiter -> waiter -> ...   (arrival order)
 *   ready list: keys that got elements since they were last served
 *
 * The engine's ready hook (under the pushing command's locks, any thread)
 * only puts the key on the ready list.  After the pushing command (end of a
 * dispatched command, of EXEC, or a mailbox callback for pushes made on
 * threads without clients) blocking_serve_ready() serves, one thread at a
 * time, each ready key's waiters in arrival order, like Redis's
 * serveClientsBlockedOnKeys: it claims the first waiter, locks the key's
 * shard (and BLMOVE's destination), pops on the waiter's behalf (journaled
 * and notified as the engine does for LPOP/LMOVE/ZPOPMIN), formats the reply
 * in the waiter's protocol and hands it to the waiter's worker, which writes
 * it and resumes the client.  It goes on while the key yields elements.  So
 * an element is taken once, by the oldest waiter, and never lost; a key of
 * the wrong type at serving time leaves its waiters blocked, as in Redis.
 *
 * A waiter's life: WAITING (in the queues) -> CLAIMED (a server pops for it)
 * -> DONE (out of the queues; its reply is in the mailbox).  The owner
 * worker's timeout or close removes a WAITING waiter at once; a CLAIMED one
 * is only marked (timed_out, cancelled) and the server settles it; a DONE one
 * is left to the message (orphan when its client has gone: a reply that
 * raced the client's disconnection is lost with the connection, as in Redis).
 *
 * Locks: shard locks, then the registry lock, then worker mailboxes; the
 * serving thread holds `serve_lock` (a trylock) around shard locks. */
#include <math.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/num.h"
#include "keytab.h"
#include "list.h"
#include "server_int.h"
#include "zset.h"

enum blk_op { BLK_POP, BLK_MPOP, BLK_MOVE, BLK_ZPOP, BLK_ZMPOP };
enum blk_state { BLK_WAITING, BLK_CLAIMED, BLK_DONE };

struct blk_waiter;
struct blk_key;

struct blk_link { /* a waiter in one key's queue */
    struct blk_link *prev, *next;
    struct blk_key *bk;
    struct blk_waiter *wt;
};

struct blk_key {
    struct kt_node node;
    struct blk_link *head, *tail;
    int ready; /* on the ready list */
    struct blk_key *ready_next;
    char key[];
};

struct blk_client;

struct blk_waiter {
    /* what to do, fixed at blocking time */
    struct worker *w;
    uint64_t id;
    int db, proto;
    int op, where, to; /* where: LEFT/RIGHT or min/max; to: BLMOVE's end */
    int64_t count;     /* BLMPOP/BZMPOP; 0: a single pop */
    struct eng_str dst;
    int nlinks;
    struct blk_link *links;
    /* registry lock */
    int state;
    int timed_out, cancelled, orphan;
    /* the reply, written by the server, read by the owner worker */
    struct buf reply;
    struct blk_client *bc; /* owner worker only */
};

/* c->blocked: the timer and the waiter in force, on the client's worker. */
struct blk_client {
    uv_timer_t timer;
    struct client *c;
    struct blk_waiter *wt;
};

struct block_reg {
    pthread_mutex_t lock;
    struct keytab t;
    struct blk_key *ready_head, *ready_tail;
    _Atomic long nready;   /* keys on the ready list */
    _Atomic long nwaiters; /* the ready hook's fast path */
    pthread_mutex_t serve_lock;
    _Atomic int serve_posted; /* a serve callback is on its way to worker 0 */
};

struct block_reg *block_reg_new(void)
{
    struct block_reg *r = xcalloc(1, sizeof *r);
    pthread_mutex_init(&r->lock, NULL);
    pthread_mutex_init(&r->serve_lock, NULL);
    kt_init(&r->t);
    return r;
}

void block_reg_free(struct block_reg *r)
{
    if (!r)
        return;
    /* Clients are gone; what is left are keys kept only for the ready list. */
    for (size_t i = 0; i < r->t.size; i++) {
        struct kt_node *next;
        for (struct kt_node *n = r->t.b[i]; n; n = next) {
            next = n->next;
            xfree(n);
        }
    }
    kt_release(&r->t);
    pthread_mutex_destroy(&r->lock);
    pthread_mutex_destroy(&r->serve_lock);
    xfree(r);
}

static void post_callback(struct worker *w, void (*fn)(struct worker *, void *), void *arg)
{
    char d[sizeof fn + sizeof arg];
    memcpy(d, &fn, sizeof fn);
    memcpy(d + sizeof fn, &arg, sizeof arg);
    worker_post(w, MSG_CALLBACK, 0, d, sizeof d);
}

/* ---- registry (lock held) ------------------------------------------------- */

static void waiter_free(struct blk_waiter *wt)
{
    buf_release(&wt->reply);
    xfree(wt);
}

/* Takes wt out of every queue; a key left without waiters goes, unless the
 * ready list still holds it (serve_all frees it then). */
static void unlink_waiter(struct block_reg *r, struct blk_waiter *wt)
{
    for (int i = 0; i < wt->nlinks; i++) {
        struct blk_link *l = &wt->links[i];
        struct blk_key *bk = l->bk;
        if (l->prev)
            l->prev->next = l->next;
        else
            bk->head = l->next;
        if (l->next)
            l->next->prev = l->prev;
        else
            bk->tail = l->prev;
        if (!bk->head && !bk->ready) {
            kt_del(&r->t, &bk->node);
            xfree(bk);
        }
    }
    wt->nlinks = 0;
    atomic_fetch_sub(&r->nwaiters, 1);
}

static struct blk_key *key_get(struct block_reg *r, int db, const char *key, size_t n)
{
    struct kt_node *nd = kt_find(&r->t, db, key, n);
    if (nd)
        return (struct blk_key *)nd;
    struct blk_key *bk = xcalloc(1, sizeof *bk + n + 1);
    memcpy(bk->key, key, n);
    bk->node.db = db;
    bk->node.key = bk->key;
    bk->node.len = n;
    kt_add(&r->t, &bk->node);
    return bk;
}

/* ---- the client side: blocking, timeout, close ------------------------------- */

static void unblock_client(struct client *c, struct blk_client *bc, const struct buf *reply)
{
    uv_timer_stop(&bc->timer);
    bc->wt = NULL;
    c->flags &= ~CL_BLOCKED;
    buf_append(&c->obuf, reply->p, reply->len);
    client_process_input(c); /* the requests that came while it waited */
    client_flush(c);
}

/* Owner worker: the server popped for this waiter (or settled its timeout). */
static void on_served(struct worker *w, void *arg)
{
    struct blk_waiter *wt = arg;
    if (!wt->orphan)
        unblock_client(wt->bc->c, wt->bc, &wt->reply);
    waiter_free(wt);
}

static void timeout_reply(struct blk_waiter *wt)
{
    buf_reset(&wt->reply);
    resp_w_null_array(&wt->reply, wt->proto);
}

static void on_timeout(uv_timer_t *t)
{
    struct blk_client *bc = t->data;
    struct blk_waiter *wt = bc->wt;
    struct block_reg *r = bc->c->w->srv->blocking;
    if (!wt)
        return;
    pthread_mutex_lock(&r->lock);
    int state = wt->state;
    if (state == BLK_WAITING) {
        unlink_waiter(r, wt);
        wt->state = BLK_DONE;
    } else if (state == BLK_CLAIMED) {
        wt->timed_out = 1; /* the server answers: its element, or the timeout */
    }
    pthread_mutex_unlock(&r->lock);
    if (state == BLK_WAITING) {
        timeout_reply(wt);
        unblock_client(bc->c, bc, &wt->reply);
        waiter_free(wt);
    }
}

/* CLIENT UNBLOCK: the waiter of client `id`, if it still waits, leaves every
 * queue and gets the timeout's reply or the UNBLOCKED error on its worker,
 * as a timeout would give it.  One being served (CLAIMED) gets its element:
 * too late to unblock, 0 as in Redis when the client is not blocked.  A walk
 * of every waiting client: an operator's command, not a hot path. */
int blocking_unblock(struct server *s, uint64_t id, int error)
{
    struct block_reg *r = s->blocking;
    struct blk_waiter *wt = NULL;
    pthread_mutex_lock(&r->lock);
    for (size_t i = 0; i < r->t.size && !wt; i++)
        for (struct kt_node *n = r->t.b[i]; n && !wt; n = n->next)
            for (struct blk_link *l = ((struct blk_key *)n)->head; l && !wt; l = l->next)
                if (l->wt->id == id && l->wt->state == BLK_WAITING)
                    wt = l->wt;
    if (wt) {
        unlink_waiter(r, wt);
        wt->state = BLK_DONE;
        if (error) {
            buf_reset(&wt->reply);
            resp_w_error(&wt->reply, "UNBLOCKED client unblocked via CLIENT UNBLOCK");
        } else {
            timeout_reply(wt);
        }
        post_callback(wt->w, on_served, wt);
    }
    pthread_mutex_unlock(&r->lock);
    return wt != NULL;
}

static void free_bc(uv_handle_t *h) { xfree(h->data); }

void blocking_client_gone(struct client *c)
{
    struct blk_client *bc = c->blocked;
    if (!bc)
        return;
    struct blk_waiter *wt = bc->wt;
    if (wt) {
        struct block_reg *r = c->w->srv->blocking;
        pthread_mutex_lock(&r->lock);
        int state = wt->state;
        if (state == BLK_WAITING)
            unlink_waiter(r, wt);
        else if (state == BLK_CLAIMED)
            wt->cancelled = 1; /* the server frees it */
        else
            wt->orphan = 1; /* on_served frees it */
        pthread_mutex_unlock(&r->lock);
        if (state == BLK_WAITING)
            waiter_free(wt);
    }
    c->blocked = NULL;
    uv_timer_stop(&bc->timer);
    /* At shutdown the worker's uv_walk may have closed the timer already
     * (without a callback): bc then goes with the process. */
    if (!uv_is_closing((uv_handle_t *)&bc->timer))
        uv_close((uv_handle_t *)&bc->timer, free_bc);
}

static struct blk_client *bc_of(struct client *c)
{
    if (!c->blocked) {
        struct blk_client *bc = xcalloc(1, sizeof *bc);
        uv_timer_init(&c->w->loop, &bc->timer);
        bc->timer.data = bc;
        bc->c = c;
        c->blocked = bc;
    }
    return c->blocked;
}

/* Registers k's client on keys (called with their shards locked). */
static void block_on(struct call *k, struct blk_waiter *tmpl, const struct eng_str *keys, int nkeys, int64_t ms)
{
    struct client *c = k->cl;
    struct block_reg *r = k->srv->blocking;
    size_t extra = tmpl->dst.n + 1;
    struct blk_waiter *wt = xcalloc(1, sizeof *wt + sizeof *wt->links * (size_t)nkeys + extra);
    *wt = *tmpl;
    wt->links = (struct blk_link *)(wt + 1);
    char *dst = (char *)(wt->links + nkeys);
    if (tmpl->dst.n)
        memcpy(dst, tmpl->dst.p, tmpl->dst.n);
    wt->dst.p = dst;
    wt->w = c->w;
    wt->id = c->id;
    wt->db = c->db;
    wt->proto = c->proto;
    wt->state = BLK_WAITING;
    wt->bc = bc_of(c);
    pthread_mutex_lock(&r->lock);
    for (int i = 0; i < nkeys; i++) {
        struct blk_key *bk = key_get(r, c->db, keys[i].p, keys[i].n);
        int dup = 0;
        for (int j = 0; j < wt->nlinks && !dup; j++)
            dup = wt->links[j].bk == bk; /* BLPOP k k 0 waits once on k */
        if (dup)
            continue;
        struct blk_link *l = &wt->links[wt->nlinks++];
        l->bk = bk;
        l->wt = wt;
        l->next = NULL;
        l->prev = bk->tail;
        if (bk->tail)
            bk->tail->next = l;
        else
            bk->head = l;
        bk->tail = l;
    }
    atomic_fetch_add(&r->nwaiters, 1);
    pthread_mutex_unlock(&r->lock);
    wt->bc->wt = wt;
    c->flags |= CL_BLOCKED;
    if (ms > 0)
        uv_timer_start(&wt->bc->timer, on_timeout, (uint64_t)ms, 0);
}

/* ---- serving ----------------------------------------------------------------- */

struct serve_out {
    struct buf *b;
    int proto;
    const char *key;
    size_t klen;
    int single; /* [key, elem] or [key, member, score]: no inner array */
};

static void s_head(void *ud, int64_t n)
{
    struct serve_out *o = ud;
    resp_w_array(o->b, o->single ? (o->single == 2 ? 3 : 2) : 2);
    resp_w_bulk(o->b, o->key, o->klen);
    if (!o->single)
        resp_w_array(o->b, n);
}
static void s_elem(void *ud, const char *p, size_t n) { resp_w_bulk(((struct serve_out *)ud)->b, p, n); }
static void s_zelem(void *ud, const char *m, size_t n, double score)
{
    struct serve_out *o = ud;
    if (!o->single)
        resp_w_array(o->b, 2);
    resp_w_bulk(o->b, m, n);
    resp_w_double(o->b, o->proto, score);
}
static void s_move_elem(void *ud, const char *p, size_t n) { resp_w_bulk(ud, p, n); }

/* Pops for wt from key (its shard, and BLMOVE's destination's, locked
 * here).  1 when the waiter is answered (element or error), 0 when the key
 * had nothing for it. */
static int pop_for(struct server *srv, struct blk_waiter *wt, const char *key, size_t klen)
{
    struct eng_ctx ec;
    struct eng_str keys[2] = {{key, klen}, wt->dst};
    eng_ctx_init(&ec, srv->eng, wt->db);
    eng_lock_keys(&ec, keys, wt->op == BLK_MOVE ? 2 : 1);
    struct serve_out o = {&wt->reply, wt->proto, key, klen, wt->count ? 0 : 1};
    int rc;
    buf_reset(&wt->reply);
    switch (wt->op) {
    case BLK_POP:
    case BLK_MPOP:
        rc = eng_list_pop(&ec, key, klen, wt->where, wt->count ? wt->count : 1, s_head, s_elem, &o);
        break;
    case BLK_MOVE:
        /* Only a list source is served; then a wrong-type destination is
         * the waiter's error (Redis's serveClientBlockedOnList). */
        rc = eng_type(&ec, key, klen) == ENG_T_LIST ? 0 : ERR_NOKEY;
        if (rc == 0)
            rc = eng_lmove(&ec, key, klen, wt->dst.p, wt->dst.n, wt->where, wt->to, NULL, s_move_elem, &wt->reply);
        break;
    default:
        o.single = wt->count ? 0 : 2;
        rc = eng_zpop(&ec, key, klen, wt->where, wt->count ? wt->count : 1, s_head, s_zelem, &o);
        break;
    }
    eng_unlock(&ec);
    if (rc == ERR_WRONGTYPE && wt->op == BLK_MOVE) {
        buf_reset(&wt->reply);
        resp_w_error(&wt->reply, "WRONGTYPE Operation against a key holding the wrong kind of value");
        return 1;
    }
    return rc == 0;
}

/* Settles a claimed waiter after a pop attempt (lock held): 1 when it left
 * the queues. */
static int settle(struct block_reg *r, struct blk_waiter *wt, int served)
{
    if (wt->cancelled) { /* its client closed meanwhile */
        unlink_waiter(r, wt);
        waiter_free(wt);
        return 1;
    }
    if (!served && !wt->timed_out) {
        wt->state = BLK_WAITING;
        return 0;
    }
    if (!served)
        timeout_reply(wt);
    unlink_waiter(r, wt);
    wt->state = BLK_DONE;
    post_callback(wt->w, on_served, wt);
    return 1;
}

/* Serves key's waiters, oldest first, while it yields elements. */
static void serve_key(struct server *srv, int db, const char *key, size_t klen)
{
    struct block_reg *r = srv->blocking;
    for (;;) {
        pthread_mutex_lock(&r->lock);
        struct blk_key *bk = (struct blk_key *)kt_find(&r->t, db, key, klen);
        struct blk_waiter *wt = bk && bk->head ? bk->head->wt : NULL;
        if (wt)
            wt->state = BLK_CLAIMED;
        pthread_mutex_unlock(&r->lock);
        if (!wt)
            return;
        int served = pop_for(srv, wt, key, klen);
        pthread_mutex_lock(&r->lock);
        settle(r, wt, served);
        pthread_mutex_unlock(&r->lock);
        if (!served)
            return;
    }
}

static void serve_all(struct server *srv)
{
    struct block_reg *r = srv->blocking;
    struct buf key = BUF_INIT;
    for (;;) {
        pthread_mutex_lock(&r->lock);
        struct blk_key *bk = r->ready_head;
        if (!bk) {
            pthread_mutex_unlock(&r->lock);
            break;
        }
        r->ready_head = bk->ready_next;
        if (!r->ready_head)
            r->ready_tail = NULL;
        atomic_fetch_sub(&r->nready, 1);
        bk->ready = 0;
        int db = bk->node.db;
        buf_reset(&key);
        buf_append(&key, bk->key, bk->node.len);
        if (!bk->head) { /* its waiters left while it was on the list */
            kt_del(&r->t, &bk->node);
            xfree(bk);
        }
        pthread_mutex_unlock(&r->lock);
        serve_key(srv, db, key.p ? key.p : "", key.len);
    }
    buf_release(&key);
}

void blocking_serve_ready(struct server *srv)
{
    struct block_reg *r = srv->blocking;
    /* One server at a time keeps arrival order; a thread that finds another
     * serving leaves its keys to it, which looks at the list again after
     * letting go of serve_lock, so no ready key is forgotten. */
    while (atomic_load(&r->nready) > 0) {
        if (pthread_mutex_trylock(&r->serve_lock) != 0)
            return;
        serve_all(srv);
        pthread_mutex_unlock(&r->serve_lock);
    }
}

static void serve_cb(struct worker *w, void *arg)
{
    struct server *srv = arg;
    atomic_store(&srv->blocking->serve_posted, 0);
    blocking_serve_ready(srv);
}

void blocking_ready(struct server *s, int db, const char *key, size_t klen)
{
    struct block_reg *r = s->blocking;
    if (!atomic_load_explicit(&r->nwaiters, memory_order_relaxed))
        return;
    int added = 0;
    pthread_mutex_lock(&r->lock);
    struct blk_key *bk = (struct blk_key *)kt_find(&r->t, db, key, klen);
    if (bk && bk->head && !bk->ready) {
        bk->ready = 1;
        bk->ready_next = NULL;
        if (r->ready_tail)
            r->ready_tail->ready_next = bk;
        else
            r->ready_head = bk;
        r->ready_tail = bk;
        atomic_fetch_add(&r->nready, 1);
        added = 1;
    }
    pthread_mutex_unlock(&r->lock);
    /* Pushes from a thread without clients (the bot) have no dispatcher to
     * serve after them: a worker does it (it waits for the push's locks). */
    if (added && !worker_current() && !atomic_exchange(&r->serve_posted, 1))
        post_callback(&s->workers[0], serve_cb, s);
}

/* ---- argument parsing -------------------------------------------------------- */

/* Redis's getTimeoutFromObjectOrReply (seconds, decimals allowed): 0 and
 * *ms (0 = forever), or -1 after the error reply. */
static int arg_timeout(struct call *k, int i, int64_t *ms)
{
    long double v;
    if (num_parse_double(k->argv[i].p, k->argv[i].n, &v) < 0) {
        reply_error(k, "ERR timeout is not a float or out of range");
        return -1;
    }
    long double t = ceill(v * 1000.0L);
    /* Out of long long's range converts to LLONG_MIN in Redis: negative. */
    if (!(t >= -9223372036854775808.0L && t < 9223372036854775808.0L) || t < 0) {
        reply_error(k, "ERR timeout is negative");
        return -1;
    }
    *ms = (int64_t)t;
    return 0;
}

static int arg_where(struct call *k, int i, int *where)
{
    if (arg_is(k, i, "LEFT"))
        *where = ENG_LIST_HEAD;
    else if (arg_is(k, i, "RIGHT"))
        *where = ENG_LIST_TAIL;
    else {
        reply_syntax(k);
        return -1;
    }
    return 0;
}

/* numkeys at argv[2] (after the timeout), then the keys. */
int cmd_bmpop_keys(int argc, const struct eng_str *argv, int *pos, int max)
{
    int64_t n;
    if (num_parse_i64(argv[2].p, argv[2].n, &n) < 0 || n < 1 || n > argc - 4 || n > max)
        return -1;
    for (int i = 0; i < n; i++)
        pos[i] = 3 + i;
    return (int)n;
}

/* The [numkeys key... LEFT|RIGHT / MIN|MAX [COUNT count]] of BLMPOP/BZMPOP,
 * with lmpopGenericCommand's order of errors.  0, or -1 after a reply. */
static int parse_mpop(struct call *k, int zset, int64_t *numkeys, int *where, int64_t *count)
{
    if (num_parse_i64(k->argv[2].p, k->argv[2].n, numkeys) < 0 || *numkeys < 1) {
        reply_error(k, "ERR numkeys should be greater than 0");
        return -1;
    }
    if (*numkeys > k->argc - 4) {
        reply_syntax(k);
        return -1;
    }
    int wi = 3 + (int)*numkeys;
    if (zset) {
        if (!arg_is(k, wi, "MIN") && !arg_is(k, wi, "MAX")) {
            reply_syntax(k);
            return -1;
        }
        *where = arg_is(k, wi, "MAX");
    } else if (arg_where(k, wi, where) < 0) {
        return -1;
    }
    *count = 0;
    for (int i = wi + 1; i < k->argc; i++) {
        if (*count == 0 && arg_is(k, i, "COUNT") && i + 1 < k->argc) {
            i++;
            if (num_parse_i64(k->argv[i].p, k->argv[i].n, count) < 0 || *count < 1) {
                reply_error(k, "ERR count should be greater than 0");
                return -1;
            }
        } else {
            reply_syntax(k);
            return -1;
        }
    }
    if (*count == 0)
        *count = 1;
    return 0;
}

/* ---- commands ----------------------------------------------------------------- */

/* Nothing to pop: reply as a timeout inside EXEC (blocking commands do not
 * block there), else block. */
static void wait_or_nil(struct call *k, struct blk_waiter *tmpl, const struct eng_str *keys, int n, int64_t ms,
                        int null_bulk)
{
    if (multi_executing(k->cl) || !k->cl) {
        if (null_bulk)
            resp_w_null(k->out, k->proto);
        else
            resp_w_null_array(k->out, k->proto);
        return;
    }
    block_on(k, tmpl, keys, n, ms);
}

struct now_out {
    struct call *k;
    const struct eng_str *keys;
    int which, single;
};

static void n_head(void *ud, int64_t n)
{
    struct now_out *o = ud;
    resp_w_array(o->k->out, o->single ? (o->single == 2 ? 3 : 2) : 2);
    resp_w_bulk(o->k->out, o->keys[o->which].p, o->keys[o->which].n);
    if (!o->single)
        resp_w_array(o->k->out, n);
}
static void n_elem(void *ud, const char *p, size_t n) { resp_w_bulk(((struct now_out *)ud)->k->out, p, n); }
static void n_zelem(void *ud, const char *m, size_t n, double score)
{
    struct now_out *o = ud;
    if (!o->single)
        resp_w_array(o->k->out, 2);
    resp_w_bulk(o->k->out, m, n);
    resp_w_double(o->k->out, o->k->proto, score);
}

/* BLPOP/BRPOP/BLMPOP (zset = 0) and BZPOPMIN/BZPOPMAX/BZMPOP (zset = 1):
 * pop now from the first key that has elements, else wait on all of them. */
static void bpop_generic(struct call *k, int zset, int where, const struct eng_str *keys, int n, int64_t count,
                         int64_t ms)
{
    struct now_out o = {k, keys, 0, count ? 0 : 1 + zset};
    int rc = zset ? eng_zset_mpop(&k->ec, keys, n, where, count ? count : 1, n_head, n_zelem, &o, &o.which)
                  : eng_list_mpop(&k->ec, keys, n, where, count ? count : 1, n_head, n_elem, &o, &o.which);
    if (rc == ERR_NOKEY) {
        struct blk_waiter t = {.op = zset ? (count ? BLK_ZMPOP : BLK_ZPOP) : (count ? BLK_MPOP : BLK_POP),
                               .where = where, .count = count};
        wait_or_nil(k, &t, keys, n, ms, 0);
    } else if (rc < 0) {
        reply_errcode(k, rc);
    }
}

static void bpop_keys_timeout(struct call *k, int zset, int where)
{
    int64_t ms;
    if (arg_timeout(k, k->argc - 1, &ms) < 0)
        return;
    bpop_generic(k, zset, where, k->argv + 1, k->argc - 2, 0, ms);
}

void cmd_blpop(struct call *k) { bpop_keys_timeout(k, 0, ENG_LIST_HEAD); }
void cmd_brpop(struct call *k) { bpop_keys_timeout(k, 0, ENG_LIST_TAIL); }
void cmd_bzpopmin(struct call *k) { bpop_keys_timeout(k, 1, 0); }
void cmd_bzpopmax(struct call *k) { bpop_keys_timeout(k, 1, 1); }

static void bmpop_generic(struct call *k, int zset)
{
    int64_t numkeys, count, ms;
    int where;
    if (parse_mpop(k, zset, &numkeys, &where, &count) < 0 || arg_timeout(k, 1, &ms) < 0)
        return;
    bpop_generic(k, zset, where, k->argv + 3, (int)numkeys, count, ms);
}

void cmd_blmpop(struct call *k) { bmpop_generic(k, 0); }
void cmd_bzmpop(struct call *k) { bmpop_generic(k, 1); }

static void bmove_generic(struct call *k, int from, int to, int ti)
{
    int64_t ms;
    if (arg_timeout(k, ti, &ms) < 0)
        return;
    int rc = eng_lmove(&k->ec, k->argv[1].p, k->argv[1].n, k->argv[2].p, k->argv[2].n, from, to, NULL,
                       s_move_elem, k->out);
    if (rc == ERR_NOKEY) {
        struct blk_waiter t = {.op = BLK_MOVE, .where = from, .to = to, .dst = k->argv[2]};
        wait_or_nil(k, &t, &k->argv[1], 1, ms, 1);
    } else if (rc < 0) {
        reply_errcode(k, rc);
    }
}

void cmd_blmove(struct call *k)
{
    int from, to;
    if (arg_where(k, 3, &from) < 0 || arg_where(k, 4, &to) < 0)
        return;
    bmove_generic(k, from, to, 5);
}

void cmd_brpoplpush(struct call *k) { bmove_generic(k, ENG_LIST_TAIL, ENG_LIST_HEAD, 3); }
