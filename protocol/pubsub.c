/* pubsub.c: SUBSCRIBE, PSUBSCRIBE, SSUBSCRIBE and their UNSUBSCRIBEs,
 * PUBLISH, SPUBLISH, PUBSUB, and keyspace notifications
 * (notify-keyspace-events, __keyspace@<db>__:<key> and
 * __keyevent@<db>__:<event>).  Not for client-side caching (no tracking).
 *
 * Clients live on worker threads, so the subscriptions are kept in one
 * registry for the whole server, behind a read-write lock:
 *
 *   channel name -> struct ps_chan -> ps_sub -> ps_sub -> ...  (oldest first)
 *                                       |
 *   client (c->pubsub: struct ps_client, its worker only) -> its ps_subs
 *
 * A ps_sub names its client by worker and id, never by pointer: PUBLISH
 * formats each message once per protocol (RESP2 array, RESP3 push) and posts
 * the bytes to the subscriber's worker (worker_post MSG_WRITE), whose loop
 * appends them to the client's output if it still exists.  Going through the
 * mailbox even for a subscriber on the publisher's own worker keeps every
 * subscriber's messages in publishing order, keyspace events included; only
 * a client publishing to itself (RESP3) gets the message at once, before
 * PUBLISH's reply, as Redis 7.0 sends it.
 *
 * Locks: the registry lock is taken under shard locks (the engine's notify
 * hook), so nothing here takes a shard lock; a subscriber's messages carry
 * the protocol it had when it subscribed. */
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/glob.h"
#include "keytab.h"
#include "server_int.h"

enum { PS_CHANNEL, PS_PATTERN, PS_SHARD, PS__KINDS };

static const char *const sub_names[PS__KINDS] = {"subscribe", "psubscribe", "ssubscribe"};
static const char *const unsub_names[PS__KINDS] = {"unsubscribe", "punsubscribe", "sunsubscribe"};

struct ps_sub {
    struct ps_sub *prev, *next; /* the channel's subscribers */
    struct ps_chan *ch;
    struct worker *w;
    uint64_t id;
    int proto;
    int idx; /* position in the client's list */
};

struct ps_chan {
    struct kt_node node;
    struct ps_sub *head, *tail;
    int64_t nsubs;
    int kind;
    char name[];
};

struct pubsub {
    pthread_rwlock_t lock;
    struct keytab t[PS__KINDS];
    _Atomic uint64_t nsubs; /* every subscription: the fast path when none */
};

/* c->pubsub, touched on the client's worker only. */
struct ps_client {
    struct ps_sub **subs;
    int n, cap;
    int count[PS__KINDS];
};

struct pubsub *pubsub_new(void)
{
    struct pubsub *p = xcalloc(1, sizeof *p);
    pthread_rwlock_init(&p->lock, NULL);
    for (int i = 0; i < PS__KINDS; i++)
        kt_init(&p->t[i]);
    return p;
}

void pubsub_free(struct pubsub *p)
{
    if (!p)
        return;
    /* Clients are gone by now, and with them every channel. */
    for (int i = 0; i < PS__KINDS; i++)
        kt_release(&p->t[i]);
    pthread_rwlock_destroy(&p->lock);
    xfree(p);
}

void pubsub_counts(struct server *s, uint64_t *channels, uint64_t *patterns, uint64_t *shard)
{
    struct pubsub *p = s->pubsub;
    pthread_rwlock_rdlock(&p->lock);
    *channels = p->t[PS_CHANNEL].used;
    *patterns = p->t[PS_PATTERN].used;
    *shard = p->t[PS_SHARD].used;
    pthread_rwlock_unlock(&p->lock);
}

/* ---- registry (write lock held) ----------------------------------------- */

static struct ps_chan *chan_get(struct pubsub *p, int kind, const char *name, size_t n)
{
    struct kt_node *nd = kt_find(&p->t[kind], 0, name, n);
    if (nd)
        return (struct ps_chan *)nd;
    struct ps_chan *ch = xcalloc(1, sizeof *ch + n + 1);
    memcpy(ch->name, name, n);
    ch->kind = kind;
    ch->node.key = ch->name;
    ch->node.len = n;
    kt_add(&p->t[kind], &ch->node);
    return ch;
}

static struct ps_sub *client_sub(const struct ps_client *pc, const struct ps_chan *ch)
{
    for (int i = 0; i < pc->n; i++)
        if (pc->subs[i]->ch == ch)
            return pc->subs[i];
    return NULL;
}

static void sub_add(struct pubsub *p, struct client *c, struct ps_client *pc, struct ps_chan *ch)
{
    struct ps_sub *s = xcalloc(1, sizeof *s);
    s->ch = ch;
    s->w = c->w;
    s->id = c->id;
    s->proto = c->proto;
    s->prev = ch->tail;
    if (ch->tail)
        ch->tail->next = s;
    else
        ch->head = s;
    ch->tail = s;
    ch->nsubs++;
    if (pc->n == pc->cap) {
        pc->cap = pc->cap ? 2 * pc->cap : 4;
        pc->subs = xrealloc(pc->subs, sizeof *pc->subs * (size_t)pc->cap);
    }
    s->idx = pc->n;
    pc->subs[pc->n++] = s;
    pc->count[ch->kind]++;
    atomic_fetch_add(&p->nsubs, 1);
}

static void sub_del(struct pubsub *p, struct ps_client *pc, struct ps_sub *s)
{
    struct ps_chan *ch = s->ch;
    if (s->prev)
        s->prev->next = s->next;
    else
        ch->head = s->next;
    if (s->next)
        s->next->prev = s->prev;
    else
        ch->tail = s->prev;
    pc->subs[s->idx] = pc->subs[--pc->n];
    pc->subs[s->idx]->idx = s->idx;
    pc->count[ch->kind]--;
    atomic_fetch_sub(&p->nsubs, 1);
    xfree(s);
    if (--ch->nsubs == 0) {
        kt_del(&p->t[ch->kind], &ch->node);
        xfree(ch);
    }
}

/* ---- delivery (read lock held) ------------------------------------------ */

/* One message in the two protocols, formatted when first needed. */
struct ps_msg {
    const char *type, *pat, *ch, *msg;
    size_t patlen, chlen, msglen;
    struct buf b[2];
};

static const struct buf *msg_bytes(struct ps_msg *m, int proto)
{
    struct buf *b = &m->b[proto == 3];
    if (!b->len) {
        resp_w_push(b, proto, m->pat ? 4 : 3);
        resp_w_bulkstr(b, m->type);
        if (m->pat)
            resp_w_bulk(b, m->pat, m->patlen);
        resp_w_bulk(b, m->ch, m->chlen);
        resp_w_bulk(b, m->msg, m->msglen);
    }
    return b;
}

static int64_t deliver_all(const struct ps_chan *ch, struct ps_msg *m)
{
    struct client *self = client_current();
    for (const struct ps_sub *s = ch->head; s; s = s->next) {
        const struct buf *b = msg_bytes(m, s->proto);
        if (self && self->id == s->id)
            buf_append(&self->obuf, b->p, b->len);
        else
            worker_post(s->w, MSG_WRITE, s->id, b->p, b->len);
    }
    return ch->nsubs;
}

static int64_t publish(struct server *srv, int kind, const char *ch, size_t chlen, const char *msg, size_t mlen)
{
    struct pubsub *p = srv->pubsub;
    if (!atomic_load_explicit(&p->nsubs, memory_order_relaxed))
        return 0;
    int64_t n = 0;
    struct ps_msg m = {kind == PS_SHARD ? "smessage" : "message", NULL, ch, msg, 0, chlen, mlen, {BUF_INIT, BUF_INIT}};
    pthread_rwlock_rdlock(&p->lock);
    struct kt_node *nd = kt_find(&p->t[kind], 0, ch, chlen);
    if (nd)
        n += deliver_all((struct ps_chan *)nd, &m);
    const struct keytab *pats = &p->t[PS_PATTERN];
    for (size_t i = 0; kind == PS_CHANNEL && pats->used && i < pats->size; i++) {
        for (struct kt_node *x = pats->b[i]; x; x = x->next) {
            if (!glob_match(x->key, x->len, ch, chlen, 0))
                continue;
            struct ps_msg pm = {"pmessage", x->key, ch, msg, x->len, chlen, mlen, {BUF_INIT, BUF_INIT}};
            n += deliver_all((struct ps_chan *)x, &pm);
            buf_release(&pm.b[0]);
            buf_release(&pm.b[1]);
        }
    }
    pthread_rwlock_unlock(&p->lock);
    buf_release(&m.b[0]);
    buf_release(&m.b[1]);
    return n;
}

/* ---- SUBSCRIBE and UNSUBSCRIBE ------------------------------------------- */

static struct ps_client *ps_client_of(struct client *c)
{
    if (!c->pubsub)
        c->pubsub = xcalloc(1, sizeof(struct ps_client));
    return c->pubsub;
}

/* What (un)subscribe replies count: channels and patterns together, shard
 * channels apart (Redis 7.0). */
static int reply_count(const struct ps_client *pc, int kind)
{
    if (!pc)
        return 0;
    return kind == PS_SHARD ? pc->count[PS_SHARD] : pc->count[PS_CHANNEL] + pc->count[PS_PATTERN];
}

static void reply_sub(struct call *k, const char *what, const char *name, size_t n, int count)
{
    resp_w_push(k->out, k->proto, 3);
    resp_w_bulkstr(k->out, what);
    if (name)
        resp_w_bulk(k->out, name, n);
    else
        resp_w_null(k->out, k->proto);
    resp_w_int(k->out, count);
}

/* Leaves pub/sub mode when nothing is left (RESP2 allows all commands again). */
static void update_mode(struct client *c)
{
    struct ps_client *pc = c->pubsub;
    if (pc && pc->n == 0) {
        xfree(pc->subs);
        xfree(pc);
        c->pubsub = NULL;
    }
    if (c->pubsub)
        c->flags |= CL_PUBSUB;
    else
        c->flags &= ~CL_PUBSUB;
}

static void subscribe_generic(struct call *k, int kind)
{
    struct pubsub *p = k->srv->pubsub;
    struct ps_client *pc = ps_client_of(k->cl);
    for (int i = 1; i < k->argc; i++) {
        pthread_rwlock_wrlock(&p->lock);
        struct ps_chan *ch = chan_get(p, kind, k->argv[i].p, k->argv[i].n);
        if (!client_sub(pc, ch))
            sub_add(p, k->cl, pc, ch);
        pthread_rwlock_unlock(&p->lock);
        reply_sub(k, sub_names[kind], k->argv[i].p, k->argv[i].n, reply_count(pc, kind));
    }
    update_mode(k->cl);
}

/* Removes the client's subscription to name, if any (write lock held). */
static void unsub_one(struct pubsub *p, struct ps_client *pc, int kind, const char *name, size_t n)
{
    struct kt_node *nd = kt_find(&p->t[kind], 0, name, n);
    struct ps_sub *s = nd && pc ? client_sub(pc, (struct ps_chan *)nd) : NULL;
    if (s)
        sub_del(p, pc, s);
}

static void unsubscribe_generic(struct call *k, int kind)
{
    struct pubsub *p = k->srv->pubsub;
    struct ps_client *pc = k->cl->pubsub;
    if (k->argc > 1) {
        for (int i = 1; i < k->argc; i++) {
            pthread_rwlock_wrlock(&p->lock);
            unsub_one(p, pc, kind, k->argv[i].p, k->argv[i].n);
            pthread_rwlock_unlock(&p->lock);
            reply_sub(k, unsub_names[kind], k->argv[i].p, k->argv[i].n, reply_count(pc, kind));
        }
    } else if (!pc || !pc->count[kind]) {
        reply_sub(k, unsub_names[kind], NULL, 0, reply_count(pc, kind));
    } else {
        /* All of this kind, newest first (a client's list is unordered in
         * Redis too: its dict's order). */
        pthread_rwlock_wrlock(&p->lock);
        for (int i = pc->n - 1; i >= 0; i--) {
            if (i >= pc->n || pc->subs[i]->ch->kind != kind)
                continue;
            struct ps_chan *ch = pc->subs[i]->ch;
            int last = ch->nsubs == 1;
            struct buf name = BUF_INIT;
            if (last) /* the name goes with the channel */
                buf_append(&name, ch->name, ch->node.len);
            const char *nm = last ? name.p : ch->name;
            size_t nl = ch->node.len;
            sub_del(p, pc, pc->subs[i]);
            reply_sub(k, unsub_names[kind], nm, nl, reply_count(pc, kind));
            buf_release(&name);
        }
        pthread_rwlock_unlock(&p->lock);
    }
    update_mode(k->cl);
}

void cmd_subscribe(struct call *k) { subscribe_generic(k, PS_CHANNEL); }
void cmd_psubscribe(struct call *k) { subscribe_generic(k, PS_PATTERN); }
void cmd_ssubscribe(struct call *k) { subscribe_generic(k, PS_SHARD); }
void cmd_unsubscribe(struct call *k) { unsubscribe_generic(k, PS_CHANNEL); }
void cmd_punsubscribe(struct call *k) { unsubscribe_generic(k, PS_PATTERN); }
void cmd_sunsubscribe(struct call *k) { unsubscribe_generic(k, PS_SHARD); }

void pubsub_client_gone(struct client *c)
{
    struct ps_client *pc = c->pubsub;
    if (!pc)
        return;
    struct pubsub *p = c->w->srv->pubsub;
    pthread_rwlock_wrlock(&p->lock);
    while (pc->n)
        sub_del(p, pc, pc->subs[pc->n - 1]);
    pthread_rwlock_unlock(&p->lock);
    update_mode(c);
}

/* ---- PUBLISH and PUBSUB ---------------------------------------------------- */

static void publish_generic(struct call *k, int kind)
{
    int64_t n = publish(k->srv, kind, k->argv[1].p, k->argv[1].n, k->argv[2].p, k->argv[2].n);
    /* Replicas deliver it to their own subscribers, as Redis propagates it. */
    eng_journal_cmd(k->srv->eng, k->cl ? k->cl->db : 0, k->argc, k->argv);
    resp_w_int(k->out, n);
}

void cmd_publish(struct call *k) { publish_generic(k, PS_CHANNEL); }
void cmd_spublish(struct call *k) { publish_generic(k, PS_SHARD); }

static void pubsub_channels(struct call *k, int kind)
{
    struct pubsub *p = k->srv->pubsub;
    const struct eng_str *pat = k->argc == 3 ? &k->argv[2] : NULL;
    struct buf b = BUF_INIT;
    int64_t n = 0;
    pthread_rwlock_rdlock(&p->lock);
    const struct keytab *t = &p->t[kind];
    for (size_t i = 0; i < t->size; i++)
        for (struct kt_node *x = t->b[i]; x; x = x->next)
            if (!pat || glob_match(pat->p, pat->n, x->key, x->len, 0)) {
                resp_w_bulk(&b, x->key, x->len);
                n++;
            }
    pthread_rwlock_unlock(&p->lock);
    resp_w_array(k->out, n);
    buf_append(k->out, b.p, b.len);
    buf_release(&b);
}

static void pubsub_numsub(struct call *k, int kind)
{
    struct pubsub *p = k->srv->pubsub;
    resp_w_array(k->out, 2 * (int64_t)(k->argc - 2)); /* flat in RESP3 too */
    pthread_rwlock_rdlock(&p->lock);
    for (int i = 2; i < k->argc; i++) {
        struct kt_node *nd = kt_find(&p->t[kind], 0, k->argv[i].p, k->argv[i].n);
        resp_w_bulk(k->out, k->argv[i].p, k->argv[i].n);
        resp_w_int(k->out, nd ? ((struct ps_chan *)nd)->nsubs : 0);
    }
    pthread_rwlock_unlock(&p->lock);
}

static const char *const pubsub_help[] = {
    "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CHANNELS [<pattern>]",
    "    Return the currently active channels matching a <pattern> (default: '*').",
    "NUMPAT",
    "    Return number of subscriptions to patterns.",
    "NUMSUB [<channel> ...]",
    "    Return the number of subscribers for the specified channels, excluding",
    "    pattern subscriptions(default: no channels).",
    "SHARDCHANNELS [<pattern>]",
    "    Return the currently active shard level channels matching a <pattern> (default: '*').",
    "SHARDNUMSUB [<shardchannel> ...]",
    "    Return the number of subscribers for the specified shard level channel(s)",
    "HELP",
    "    Prints this help.",
};

void cmd_pubsub(struct call *k)
{
    const struct eng_str *sub = &k->argv[1];
    if (arg_is(k, 1, "channels") || arg_is(k, 1, "shardchannels")) {
        if (k->argc > 3) {
            reply_error(k, "ERR unknown subcommand or wrong number of arguments for '%.*s'. Try PUBSUB HELP.",
                        (int)sub->n, sub->p);
            return;
        }
        pubsub_channels(k, arg_is(k, 1, "channels") ? PS_CHANNEL : PS_SHARD);
    } else if (arg_is(k, 1, "numsub") || arg_is(k, 1, "shardnumsub")) {
        pubsub_numsub(k, arg_is(k, 1, "numsub") ? PS_CHANNEL : PS_SHARD);
    } else if (arg_is(k, 1, "numpat") || arg_is(k, 1, "help")) {
        if (k->argc != 2) {
            reply_error(k, "ERR wrong number of arguments for 'pubsub|%s' command",
                        arg_is(k, 1, "numpat") ? "numpat" : "help");
        } else if (arg_is(k, 1, "numpat")) {
            uint64_t ch, pat, sh;
            pubsub_counts(k->srv, &ch, &pat, &sh);
            resp_w_int(k->out, (int64_t)pat);
        } else {
            resp_w_array(k->out, (int64_t)(sizeof pubsub_help / sizeof pubsub_help[0]));
            for (size_t i = 0; i < sizeof pubsub_help / sizeof pubsub_help[0]; i++)
                resp_w_simple(k->out, pubsub_help[i]);
        }
    } else {
        reply_error(k, "ERR unknown subcommand '%.*s'. Try PUBSUB HELP.", sub->n > 128 ? 128 : (int)sub->n, sub->p);
    }
}

/* ---- keyspace notifications ------------------------------------------------ */

/* notify-keyspace-events bits: the engine's classes (ENG_EV_*) plus these. */
enum {
    NK_STREAM = 1 << 9,   /* t */
    NK_MODULE = 1 << 10,  /* d */
    NK_MISS = 1 << 11,    /* m */
    NK_KEYSPACE = 1 << 12, /* K */
    NK_KEYEVENT = 1 << 13, /* E */
    NK_ALL = ENG_EV_GENERIC | ENG_EV_STRING | ENG_EV_LIST | ENG_EV_SET | ENG_EV_HASH | ENG_EV_ZSET |
             ENG_EV_EXPIRED | ENG_EV_EVICTED | NK_STREAM | NK_MODULE, /* A */
};

static const struct {
    char letter;
    int bit;
} letters[] = {
    {'g', ENG_EV_GENERIC}, {'$', ENG_EV_STRING},  {'l', ENG_EV_LIST},    {'s', ENG_EV_SET},
    {'h', ENG_EV_HASH},    {'z', ENG_EV_ZSET},    {'x', ENG_EV_EXPIRED}, {'e', ENG_EV_EVICTED},
    {'t', NK_STREAM},      {'d', NK_MODULE},      {'n', ENG_EV_NEW},     {'K', NK_KEYSPACE},
    {'E', NK_KEYEVENT},    {'m', NK_MISS},
};

int notify_flags_parse(const char *s, int64_t *flags)
{
    int64_t f = 0;
    for (; *s; s++) {
        int bit = *s == 'A' ? NK_ALL : 0;
        for (size_t i = 0; !bit && i < sizeof letters / sizeof letters[0]; i++)
            if (letters[i].letter == *s)
                bit = letters[i].bit;
        if (!bit)
            return -1;
        f |= bit;
    }
    *flags = f;
    return 0;
}

/* Redis's keyspaceEventsFlagsToString: "A" stands for its classes (and then
 * hides 'n'), K, E and m follow. */
void notify_flags_format(int64_t flags, struct buf *out)
{
    size_t i = 0;
    if ((flags & NK_ALL) == NK_ALL) {
        buf_putc(out, 'A');
        i = 11; /* past the classes and 'n' */
    }
    for (; i < sizeof letters / sizeof letters[0]; i++)
        if (flags & letters[i].bit)
            buf_putc(out, letters[i].letter);
}

unsigned notify_engine_mask(int64_t flags)
{
    if (!(flags & (NK_KEYSPACE | NK_KEYEVENT)))
        return 0; /* neither channel kind: nothing to report */
    return (unsigned)(flags & (NK_ALL | ENG_EV_NEW) & ~(NK_STREAM | NK_MODULE));
}

void pubsub_notify(struct server *s, int db, int cls, const char *event, const char *key, size_t klen)
{
    int64_t flags = s->cfg->notify_keyspace_events;
    if (!atomic_load_explicit(&s->pubsub->nsubs, memory_order_relaxed) || !(flags & cls))
        return;
    char prefix[48];
    size_t elen = strlen(event);
    struct buf ch = BUF_INIT;
    if (flags & NK_KEYSPACE) {
        buf_append(&ch, prefix, (size_t)snprintf(prefix, sizeof prefix, "__keyspace@%d__:", db));
        buf_append(&ch, key, klen);
        publish(s, PS_CHANNEL, ch.p, ch.len, event, elen);
    }
    if (flags & NK_KEYEVENT) {
        buf_reset(&ch);
        buf_append(&ch, prefix, (size_t)snprintf(prefix, sizeof prefix, "__keyevent@%d__:", db));
        buf_append(&ch, event, elen);
        publish(s, PS_CHANNEL, ch.p, ch.len, key, klen);
    }
    buf_release(&ch);
}
