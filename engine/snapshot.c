/* snapshot.c: the keyspace as a record stream and back (snapshot.h).
 *
 * The writer walks shard by shard, database by database, bucket by bucket;
 * a walk can be cut into steps of any size and resumed.  Strings
 * are read straight from their key block; the other types through their
 * public read API (hash.h, set.h, list.h, zset.h), so this file knows no
 * type's inner layout.  Those calls go through the normal lookup, which is
 * why init silences what a lookup could set off: expiry deletions (the
 * engine is told it is a replica, so a dead key is only hidden), hooks,
 * rehash steps, and, through a quiet context, LRU clocks and hit counts:
 * in a fork()ed child each of those writes would copy a page.
 *
 * The reader applies records through the same public API, in a quiet
 * context (engine.h: no journal, notifications or dirty count), so a load
 * feeds neither replicas nor the save rules.
 *
 * Not for: files, framing, compression, checksums, threads (replication/). */
#include "snapshot.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "base/alloc.h"
#include "base/err.h"
#include "engine_int.h"
#include "hash.h"
#include "list.h"
#include "set.h"
#include "zset.h"

#define DEFAULT_MAX_RECORD (1u << 20)
#define PREFETCH_AHEAD 8

/* ---- little-endian and varint helpers --------------------------------------- */

static void put_u16(struct buf *b, uint16_t v)
{
    unsigned char x[2] = {(unsigned char)v, (unsigned char)(v >> 8)};
    buf_append(b, x, 2);
}

static void put_u64(struct buf *b, uint64_t v)
{
    unsigned char x[8];
    for (int i = 0; i < 8; i++)
        x[i] = (unsigned char)(v >> (8 * i));
    buf_append(b, x, 8);
}

static void put_varint(struct buf *b, uint64_t v)
{
    unsigned char x[10];
    int n = 0;
    do {
        x[n] = (unsigned char)(v & 0x7F);
        v >>= 7;
        if (v)
            x[n] |= 0x80;
        n++;
    } while (v);
    buf_append(b, x, (size_t)n);
}

static void put_bytes(struct buf *b, const char *p, size_t n)
{
    put_varint(b, n);
    buf_append(b, p, n);
}

static void patch_u32(struct buf *b, size_t pos, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        b->p[pos + (size_t)i] = (char)(unsigned char)(v >> (8 * i));
}

/* ---- writing ------------------------------------------------------------- */

static struct eng_db *walk_db(struct eng_snap_writer *w)
{
    return &w->c->e->shards[w->shard].dbs[w->db];
}

static void pause_all(struct eng *e, int delta)
{
    for (int s = 0; s < e->cfg.nshards; s++)
        for (int d = 0; d < e->cfg.ndb; d++) {
            e->shards[s].dbs[d].keys.pauserehash += delta;
            e->shards[s].dbs[d].expires.pauserehash += delta;
        }
}

void eng_snap_writer_init(struct eng_snap_writer *w, struct eng_ctx *c, size_t max_record)
{
    struct eng *e = c->e;
    memset(w, 0, sizeof *w);
    w->c = c;
    w->max_record = max_record ? max_record : DEFAULT_MAX_RECORD;
    for (int s = 0; s < e->cfg.nshards; s++)
        assert(c->locked[s / 64] & (1ULL << (s % 64)));
    w->saved_replica = e->cfg.replica;
    w->saved_hooks = e->hooks;
    w->saved_quiet = c->quiet;
    c->quiet = 1; /* reads leave no trace: in a fork()ed child every write copies a page */
    e->cfg.replica = 1;
    memset(&e->hooks, 0, sizeof e->hooks);
    pause_all(e, 1);
}

void eng_snap_writer_release(struct eng_snap_writer *w)
{
    struct eng *e = w->c->e;
    pause_all(e, -1);
    e->cfg.replica = w->saved_replica;
    e->hooks = w->saved_hooks;
    w->c->quiet = w->saved_quiet;
}

/* One key's records being written: the head record, then continuation
 * records each time the current one passes max_record bytes. */
struct rec {
    struct eng_snap_writer *w;
    struct buf *out;
    const struct eng_key *k;
    int64_t expire;
    size_t start, count_pos;
    uint32_t n;
    int open; /* a record is open (its count not yet patched) */
};

static void rec_begin(struct rec *r, int cont)
{
    struct buf *b = r->out;
    r->start = b->len;
    buf_putc(b, (char)(unsigned char)(r->k->type | (cont ? ENG_SNAP_CONT : 0)));
    put_u16(b, (uint16_t)r->w->c->db);
    put_u64(b, (uint64_t)r->expire);
    put_bytes(b, r->k->key, r->k->klen);
    r->count_pos = b->len;
    buf_append(b, "\0\0\0\0", 4);
    r->n = 0;
    r->open = 1;
}

static void rec_close(struct rec *r)
{
    if (r->open)
        patch_u32(r->out, r->count_pos, r->n);
    r->open = 0;
}

/* Before an element: opens a continuation record when the last one closed. */
static void rec_elem(struct rec *r)
{
    if (!r->open)
        rec_begin(r, 1);
}

/* After an element: closes the record once it is big enough. */
static void rec_elem_done(struct rec *r)
{
    r->n++;
    r->w->counts.elements++;
    if (r->out->len - r->start >= r->w->max_record)
        rec_close(r);
}

static void on_member(void *ud, const char *p, size_t n)
{
    struct rec *r = ud;
    rec_elem(r);
    put_bytes(r->out, p, n);
    rec_elem_done(r);
}

static void on_pair(void *ud, const char *f, size_t fl, const char *v, size_t vl)
{
    struct rec *r = ud;
    rec_elem(r);
    put_bytes(r->out, f, fl);
    put_bytes(r->out, v, vl);
    rec_elem_done(r);
}

static void on_scored(void *ud, const char *m, size_t n, double score)
{
    struct rec *r = ud;
    uint64_t bits;
    memcpy(&bits, &score, sizeof bits);
    rec_elem(r);
    put_bytes(r->out, m, n);
    put_u64(r->out, bits);
    rec_elem_done(r);
}

static void write_string(struct rec *r)
{
    const struct eng_key *k = r->k;
    struct buf *b = r->out;
    char tmp[24];
    const char *p;
    size_t n;
    if (k->enc == ENC_INT) {
        n = (size_t)snprintf(tmp, sizeof tmp, "%lld", (long long)k->v.i);
        p = tmp;
    } else if (k->enc == ENC_EMBSTR) {
        p = k->key + k->klen;
        n = (size_t)k->v.i;
    } else {
        const struct eng_raw *raw = k->v.p;
        p = raw->p;
        n = raw->len;
    }
    buf_putc(b, (char)ENG_T_STRING);
    put_u16(b, (uint16_t)r->w->c->db);
    put_u64(b, (uint64_t)r->expire);
    put_bytes(b, k->key, k->klen);
    put_bytes(b, p, n);
}

static void write_collection(struct rec *r)
{
    struct eng_ctx *c = r->w->c;
    const char *key = r->k->key;
    size_t klen = r->k->klen;
    int rc = 0;
    rec_begin(r, 0);
    switch (r->k->type) {
    case ENG_T_LIST:
        rc = eng_list_range(c, key, klen, 0, -1, NULL, on_member, r);
        break;
    case ENG_T_SET:
        rc = eng_smembers(c, key, klen, NULL, on_member, r);
        break;
    case ENG_T_HASH:
        rc = eng_hgetall(c, key, klen, NULL, on_pair, r);
        break;
    case ENG_T_ZSET: {
        struct eng_zrange all = {.by = ENG_ZBY_RANK, .start = 0, .stop = -1, .offset = 0, .limit = -1};
        rc = eng_zrange(c, key, klen, &all, NULL, on_scored, r);
        break;
    }
    }
    assert(rc == 0);
    (void)rc;
    rec_close(r);
}

static void write_key(struct eng_snap_writer *w, struct buf *out, const struct eng_key *k)
{
    int64_t expire = k->is_volatile ? eng__get_expire(w->c, k) : -1;
    if (expire > 0 && expire <= w->c->now_ms)
        return; /* logically gone at the snapshot's instant */
    struct rec r = {.w = w, .out = out, .k = k, .expire = expire > 0 ? expire : 0};
    if (k->type == ENG_T_STRING)
        write_string(&r);
    else
        write_collection(&r);
    w->counts.keys++;
    w->counts.by_type[k->type]++;
    if (expire > 0)
        w->counts.expires++;
}

/* The next key of the walk: bucket by bucket through both tables of each
 * (shard, db) in turn, in memory order (the walk holds every lock, so no
 * table changes under it: no need for dict_scan's reverse-binary cursor,
 * whose scattered bucket order costs a cache miss per bucket). */
static const struct eng_key *next_key(struct eng_snap_writer *w)
{
    struct eng *e = w->c->e;
    while (!w->node) {
        if (w->shard >= e->cfg.nshards)
            return NULL;
        struct dict *d = &walk_db(w)->keys;
        if (w->table < 2 && w->bucket < d->size[w->table]) {
            /* the keys are scattered in memory: ask for one a few buckets
             * ahead while this one is written */
            if (w->bucket + PREFETCH_AHEAD < d->size[w->table]) {
                const struct dict_node *ahead = d->table[w->table][w->bucket + PREFETCH_AHEAD];
                if (ahead)
                    __builtin_prefetch(ahead);
            }
            w->node = d->table[w->table][w->bucket++];
            continue;
        }
        if (w->table == 0) {
            w->table = 1, w->bucket = 0;
            continue;
        }
        w->table = 0, w->bucket = 0;
        if (++w->db >= e->cfg.ndb)
            w->db = 0, w->shard++;
    }
    const struct eng_key *k = (const struct eng_key *)w->node;
    w->node = w->node->next;
    w->c->db = w->db;
    return k;
}

int eng_snap_write(struct eng_snap_writer *w, struct buf *out, size_t budget)
{
    if (w->done)
        return 0;
    while (out->len < budget) {
        const struct eng_key *k = next_key(w);
        if (!k) {
            buf_putc(out, (char)ENG_SNAP_END);
            put_varint(out, w->counts.keys);
            w->done = 1;
            return 0;
        }
        write_key(w, out, k);
    }
    return 1;
}

uint64_t eng_snap_key_total(struct eng_ctx *c)
{
    struct eng *e = c->e;
    uint64_t n = 0;
    for (int s = 0; s < e->cfg.nshards; s++) {
        assert(c->locked[s / 64] & (1ULL << (s % 64)));
        for (int d = 0; d < e->cfg.ndb; d++)
            n += dict_size(&e->shards[s].dbs[d].keys);
    }
    return n;
}

/* ---- versioned snapshots ---------------------------------------------------- */

/* One lock hold of the walk: about this many record bytes or keys, so that a
 * shard is never held long (clients of that shard wait meanwhile).  A few
 * keys: the walk runs at idle priority and can lose its core while holding
 * the lock; 64 keys a hold gave 2.5x the GET p99 during snapshots, 4 keys
 * 1.8x, for the same snapshot time (tools/bench-snapshot, 2 cores). */
#define VS_STEP_BYTES (16u << 10)
#define VS_STEP_KEYS 4

struct vs_shard {
    struct buf pending;            /* records saved ahead of the walk, by writers */
    struct eng_snap_counts counts; /* of this shard's records (under its lock) */
    int db;                        /* walk position: db and dict_scan cursor */
    uint64_t cursor;
    _Atomic uint64_t peak;         /* most bytes pending at once (the extra memory) */
};

struct eng_vsnap {
    struct eng *e;
    size_t max_record;
    int shard;   /* the walk's shard */
    int discard; /* abandoned: keys are marked, nothing saved */
    int done;
    struct eng_snap_counts total;
    struct vs_shard *sh;
};

static void counts_add(struct eng_snap_counts *to, const struct eng_snap_counts *from)
{
    to->keys += from->keys;
    to->expires += from->expires;
    to->elements += from->elements;
    for (int t = 0; t < ENG_T__COUNT; t++)
        to->by_type[t] += from->by_type[t];
}

/* Appends k's records to out with c's db and instant (c->now_ms: a key dead
 * by then is skipped, as a restore would).  Reads go through a quiet
 * context: no LRU touch, no hit count.  k is marked already, so the reads'
 * own lookups do not save it again. */
static void vs_save_key(struct eng_vsnap *v, struct vs_shard *vs, struct eng_ctx *c, const struct eng_key *k,
                        struct buf *out)
{
    struct eng_snap_writer tw;
    memset(&tw, 0, sizeof tw);
    tw.c = c;
    tw.max_record = v->max_record;
    int quiet = c->quiet;
    c->quiet = 1;
    write_key(&tw, out, k);
    c->quiet = quiet;
    counts_add(&vs->counts, &tw.counts);
}

void eng__vsnap_save(struct eng_ctx *c, struct eng_shard *sh, struct eng_key *k)
{
    struct eng_vsnap *v = sh->vsnap;
    k->snap_mark = sh->snap_parity & 1;
    if (v->discard)
        return;
    struct vs_shard *vs = &v->sh[sh - c->e->shards];
    vs_save_key(v, vs, c, k, &vs->pending);
    if (vs->pending.len > atomic_load_explicit(&vs->peak, memory_order_relaxed))
        atomic_store_explicit(&vs->peak, vs->pending.len, memory_order_relaxed);
}

struct vs_each {
    struct eng_ctx *c;
    struct eng_shard *sh;
};

static int vs_save_node(void *ud, struct dict_node *n)
{
    struct vs_each *x = ud;
    eng__before_change(x->c, x->sh, (struct eng_key *)n);
    return 0;
}

void eng__vsnap_save_db(struct eng_ctx *c, struct eng_shard *sh, int d)
{
    int db = c->db;
    c->db = d;
    struct vs_each x = {c, sh};
    dict_foreach(&sh->dbs[d].keys, vs_save_node, &x);
    c->db = db;
}

int eng_vsnap_begin(struct eng *e, size_t max_record, void (*at_instant)(void *ud), void *ud, uint64_t *keys_total,
                    struct eng_vsnap **out)
{
    struct eng_vsnap *v = xcalloc(1, sizeof *v);
    v->e = e;
    v->max_record = max_record ? max_record : DEFAULT_MAX_RECORD;
    v->sh = xcalloc((size_t)e->cfg.nshards, sizeof *v->sh);
    struct eng_ctx c;
    eng_ctx_init(&c, e, 0);
    eng_lock_all(&c);
    for (int s = 0; s < e->cfg.nshards; s++)
        if (e->shards[s].vsnap) {
            eng_unlock(&c);
            xfree(v->sh);
            xfree(v);
            return ERR_EXISTS;
        }
    for (int s = 0; s < e->cfg.nshards; s++) {
        e->shards[s].snap_parity ^= 1;
        e->shards[s].vsnap = v;
    }
    if (at_instant)
        at_instant(ud);
    if (keys_total)
        *keys_total = eng_snap_key_total(&c);
    eng_unlock(&c);
    *out = v;
    return 0;
}

struct vs_collect {
    uint32_t parity;
    int n, cap;
    struct eng_key **keys;
    struct eng_key *inline_keys[16];
};

static void vs_collect_node(void *ud, struct dict_node *n)
{
    struct vs_collect *col = ud;
    struct eng_key *k = (struct eng_key *)n;
    if (k->snap_mark == col->parity)
        return;
    if (col->n == col->cap) {
        int cap = col->cap * 2;
        struct eng_key **keys = xmalloc((size_t)cap * sizeof *keys);
        memcpy(keys, col->keys, (size_t)col->n * sizeof *keys);
        if (col->keys != col->inline_keys)
            xfree(col->keys);
        col->keys = keys;
        col->cap = cap;
    }
    col->keys[col->n++] = k;
}

/* Detaches the snapshot from every shard, taking what writers saved last. */
static void vs_finish(struct eng_vsnap *v, struct buf *out)
{
    struct eng *e = v->e;
    for (int s = 0; s < e->cfg.nshards; s++) {
        struct eng_ctx c;
        eng_ctx_init(&c, e, 0);
        eng_lock_shard(&c, s);
        struct vs_shard *vs = &v->sh[s];
        if (!v->discard && vs->pending.len)
            buf_append(out, vs->pending.p, vs->pending.len);
        buf_release(&vs->pending);
        counts_add(&v->total, &vs->counts);
        e->shards[s].vsnap = NULL;
        eng_unlock(&c);
    }
    buf_putc(out, (char)ENG_SNAP_END);
    put_varint(out, v->total.keys);
    v->done = 1;
}

int eng_vsnap_write(struct eng_vsnap *v, struct buf *out, size_t budget)
{
    struct eng *e = v->e;
    if (v->done)
        return 0;
    struct vs_collect col = {.cap = 16};
    col.keys = col.inline_keys;
    while (out->len < budget) {
        if (v->shard >= e->cfg.nshards) {
            vs_finish(v, out);
            break;
        }
        int s = v->shard;
        struct vs_shard *vs = &v->sh[s];
        struct eng_shard *sh = &e->shards[s];
        struct eng_ctx c;
        eng_ctx_init(&c, e, 0);
        c.quiet = 1;
        eng_lock_shard(&c, s);
        if (vs->pending.len) {
            if (!v->discard)
                buf_append(out, vs->pending.p, vs->pending.len);
            buf_reset(&vs->pending);
        }
        col.parity = sh->snap_parity & 1;
        size_t step_end = out->len + VS_STEP_BYTES < budget ? out->len + VS_STEP_BYTES : budget;
        int keys = 0;
        while (vs->db < e->cfg.ndb && out->len < step_end && keys < VS_STEP_KEYS) {
            col.n = 0;
            vs->cursor = dict_scan(&sh->dbs[vs->db].keys, vs->cursor, vs_collect_node, &col);
            c.db = vs->db;
            for (int i = 0; i < col.n; i++) {
                struct eng_key *k = col.keys[i];
                k->snap_mark = col.parity;
                if (!v->discard)
                    vs_save_key(v, vs, &c, k, out);
                keys++;
            }
            if (vs->cursor == 0)
                vs->db++;
        }
        if (vs->db >= e->cfg.ndb)
            v->shard++;
        eng_unlock(&c);
        /* Clients first: a mutex is not fair, and this loop would take the
         * lock back before a woken client runs.  Step aside while one waits. */
        for (int i = 0; i < 50 && atomic_load_explicit(&sh->waiters, memory_order_relaxed); i++)
            nanosleep(&(struct timespec){0, 20000}, NULL);
    }
    if (col.keys != col.inline_keys)
        xfree(col.keys);
    return !v->done;
}

const struct eng_snap_counts *eng_vsnap_counts(const struct eng_vsnap *v) { return &v->total; }

uint64_t eng_vsnap_extra_bytes(const struct eng_vsnap *v)
{
    uint64_t n = 0;
    for (int s = 0; s < v->e->cfg.nshards; s++)
        n += atomic_load_explicit(&v->sh[s].peak, memory_order_relaxed);
    return n;
}

void eng_vsnap_free(struct eng_vsnap *v)
{
    if (!v)
        return;
    if (!v->done) {
        /* mark the rest without saving it: the next snapshot flips the
         * parity again and must find every key unsaved */
        struct eng_ctx c;
        eng_ctx_init(&c, v->e, 0);
        eng_lock_all(&c);
        v->discard = 1;
        eng_unlock(&c);
        struct buf scratch = BUF_INIT;
        while (eng_vsnap_write(v, &scratch, (size_t)-1))
            ;
        buf_release(&scratch);
    }
    for (int s = 0; s < v->e->cfg.nshards; s++)
        buf_release(&v->sh[s].pending);
    xfree(v->sh);
    xfree(v);
}

/* ---- reading ------------------------------------------------------------ */

void eng_snap_reader_init(struct eng_snap_reader *r, struct eng *e, int64_t now_ms)
{
    memset(r, 0, sizeof *r);
    r->e = e;
    r->now_ms = now_ms;
    buf_init(&r->pending);
    buf_init(&r->skipped);
    r->skipped_db = -1;
}

void eng_snap_reader_release(struct eng_snap_reader *r)
{
    buf_release(&r->pending);
    buf_release(&r->skipped);
}

/* A bounds-checked view over one record's bytes.  `short_` is set when the
 * bytes end before the record does (wait for more), `bad` when they cannot
 * be a record. */
struct cur {
    const unsigned char *p, *end;
    int short_, bad;
};

static uint64_t get_uint(struct cur *c, int width)
{
    if (c->end - c->p < width) {
        c->short_ = 1;
        c->p = c->end;
        return 0;
    }
    uint64_t v = 0;
    for (int i = 0; i < width; i++)
        v |= (uint64_t)c->p[i] << (8 * i);
    c->p += width;
    return v;
}

static uint64_t get_varint(struct cur *c)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (c->p >= c->end) {
            c->short_ = 1;
            return 0;
        }
        unsigned char b = *c->p++;
        v |= (uint64_t)(b & 0x7F) << shift;
        if (!(b & 0x80))
            return v;
    }
    c->bad = 1;
    return 0;
}

static struct eng_str get_bytes(struct cur *c)
{
    uint64_t n = get_varint(c);
    if (c->short_ || c->bad)
        return (struct eng_str){NULL, 0};
    if ((uint64_t)(c->end - c->p) < n) {
        c->short_ = 1;
        c->p = c->end;
        return (struct eng_str){NULL, 0};
    }
    struct eng_str s = {(const char *)c->p, (size_t)n};
    c->p += n;
    return s;
}

/* One parsed record, its elements as views into the stream's bytes. */
struct record {
    int type, cont, db;
    int64_t expire;
    struct eng_str key, val;
    uint32_t n;
    struct eng_str *elems; /* n (2n for a hash) */
    double *scores;        /* zset */
};

/* Parses one record at c; 1 parsed, 0 incomplete, -1 malformed. */
static int parse_record(struct cur *c, struct record *rec, struct buf *scratch)
{
    int kind = (int)get_uint(c, 1);
    rec->type = kind & 0x07;
    rec->cont = (kind & ENG_SNAP_CONT) != 0;
    if (!c->short_ && ((kind & ~0x0F) || rec->type >= ENG_T__COUNT || (rec->cont && rec->type == ENG_T_STRING)))
        return -1;
    rec->db = (int)get_uint(c, 2);
    rec->expire = (int64_t)get_uint(c, 8);
    rec->key = get_bytes(c);
    if (rec->type == ENG_T_STRING) {
        rec->val = get_bytes(c);
        return c->bad ? -1 : c->short_ ? 0 : 1;
    }
    rec->n = (uint32_t)get_uint(c, 4);
    if (c->short_ || c->bad)
        return c->bad ? -1 : 0;
    size_t per = rec->type == ENG_T_HASH ? 2 : 1;
    /* Each element takes at least a byte (a zset's nine): wait for the
     * bytes before sizing the views, so that a wild count cannot become a
     * wild allocation. */
    size_t min = rec->type == ENG_T_ZSET ? 9 : per;
    if ((uint64_t)(c->end - c->p) < (uint64_t)rec->n * min)
        return 0;
    size_t need = (size_t)rec->n * (per * sizeof(struct eng_str) + (rec->type == ENG_T_ZSET ? sizeof(double) : 0));
    buf_reset(scratch);
    buf_grow(scratch, need + 16);
    rec->elems = (struct eng_str *)(void *)scratch->p;
    rec->scores = (double *)(void *)(scratch->p + (size_t)rec->n * per * sizeof(struct eng_str));
    for (uint32_t i = 0; i < rec->n; i++) {
        rec->elems[i * per] = get_bytes(c);
        if (per == 2)
            rec->elems[i * 2 + 1] = get_bytes(c);
        if (rec->type == ENG_T_ZSET) {
            uint64_t bits = get_uint(c, 8);
            memcpy(&rec->scores[i], &bits, sizeof bits);
            if (rec->scores[i] != rec->scores[i])
                return -1; /* NaN is never a score */
        }
        if (c->short_ || c->bad)
            return c->bad ? -1 : 0;
    }
    return 1;
}

static int is_skipped(struct eng_snap_reader *r, const struct record *rec)
{
    return rec->db == r->skipped_db && r->skipped.len == rec->key.n &&
           memcmp(r->skipped.p, rec->key.p, rec->key.n) == 0;
}

/* Applies one record: 0, 1 when the key's time passed while loading (left
 * out: a continuation must not bring back a key its TTL just removed), or
 * ERR_CORRUPT (an existing key of another type, or a type's own refusal). */
static int apply(struct eng_ctx *cx, const struct record *rec)
{
    struct eng_ctx c = *cx; /* the caller's locks, this record's db */
    c.db = rec->db;
    if (rec->expire > 0 && rec->expire <= c.now_ms) {
        if (rec->cont)
            eng_del(&c, rec->key.p, rec->key.n);
        return 1;
    }
    const char *k = rec->key.p;
    size_t kl = rec->key.n;
    int64_t unused;
    int rc = 0;
    /* A stream names each key once: a second head record would merge into
     * the first (a list twice as long), so it is refused. */
    if (!rec->cont && eng_exists(&c, k, kl))
        return ERR_CORRUPT;
    switch (rec->type) {
    case ENG_T_STRING:
        rc = eng_set(&c, k, kl, rec->val.p, rec->val.n, 0, rec->expire, NULL, NULL);
        rc = rc == 1 ? 0 : ERR_CORRUPT;
        break;
    case ENG_T_LIST:
        rc = rec->n ? eng_list_push(&c, k, kl, ENG_LIST_TAIL, 0, rec->elems, (int)rec->n, &unused) : 0;
        break;
    case ENG_T_SET:
        rc = rec->n ? eng_sadd(&c, k, kl, rec->elems, (int)rec->n, &unused) : 0;
        break;
    case ENG_T_HASH:
        rc = rec->n ? eng_hset(&c, k, kl, rec->elems, (int)rec->n, &unused) : 0;
        break;
    case ENG_T_ZSET: {
        struct eng_zadd_out zo;
        rc = rec->n ? eng_zadd(&c, k, kl, 0, rec->scores, rec->elems, (int)rec->n, &zo) : 0;
        break;
    }
    }
    if (rc == 0 && !rec->cont && rec->type != ENG_T_STRING && rec->expire > 0)
        eng_expire_at(&c, k, kl, rec->expire, 0);
    return rc < 0 ? ERR_CORRUPT : 0;
}

static void skip_key(struct eng_snap_reader *r, const struct record *rec)
{
    buf_reset(&r->skipped);
    buf_append(&r->skipped, rec->key.p, rec->key.n);
    r->skipped_db = rec->db;
}

/* A key whose time has passed, at the load's instant or while loading, is
 * left out with all its records. */
static int consume(struct eng_snap_reader *r, struct eng_ctx *c, const struct record *rec)
{
    int rc = 0;
    if (rec->cont) {
        if (r->e && !is_skipped(r, rec) && (rc = apply(c, rec)) == 1)
            skip_key(r, rec);
        return rc < 0 ? rc : 0;
    }
    r->counts.keys++;
    r->counts.by_type[rec->type]++;
    if (rec->expire > 0)
        r->counts.expires++;
    r->skipped_db = -1;
    if (rec->expire > 0 && rec->expire <= r->now_ms)
        rc = 1;
    else if (r->e)
        rc = apply(c, rec);
    if (rc == 1) {
        r->expired++;
        skip_key(r, rec);
        return 0;
    }
    if (rc == 0)
        r->loaded++;
    return rc;
}

/* Parses and applies the records in [p, end); returns the bytes consumed. */
static size_t read_records(struct eng_snap_reader *r, const unsigned char *p, const unsigned char *end)
{
    const unsigned char *start = p;
    struct buf scratch = BUF_INIT;
    /* Every shard locked once for the slice rather than per record: a load
     * runs while clients get -LOADING, and this spares a lock, an unlock
     * and a clock read per key. */
    struct eng_ctx c;
    if (r->e) {
        eng_ctx_init(&c, r->e, 0);
        c.quiet = 1;
        eng_lock_all(&c);
    }
    while (p < end && !r->err) {
        struct cur cur = {p, end, 0, 0};
        if (r->ended) {
            r->err = ERR_CORRUPT; /* bytes after the end record */
            break;
        }
        if (*p == ENG_SNAP_END) {
            cur.p++;
            r->end_keys = get_varint(&cur);
            if (cur.short_)
                break;
            r->ended = 1;
            p = cur.p;
            continue;
        }
        struct record rec = {0};
        int got = parse_record(&cur, &rec, &scratch);
        if (got == 0)
            break;
        if (got < 0 || (r->e && rec.db >= eng_config(r->e)->ndb)) {
            r->err = ERR_CORRUPT;
            break;
        }
        r->counts.elements += rec.n;
        if (consume(r, &c, &rec) < 0) {
            r->err = ERR_CORRUPT;
            break;
        }
        p = cur.p;
    }
    if (r->e)
        eng_unlock(&c);
    buf_release(&scratch);
    return (size_t)(p - start);
}

int eng_snap_read(struct eng_snap_reader *r, const void *data, size_t n)
{
    if (r->err)
        return r->err;
    const unsigned char *p = data, *end = p + n;
    if (r->pending.len) {
        /* Complete the pending record from the new bytes first.  A record
         * may be longer than what is fed at once: keep appending until it
         * parses, then go on in place over the rest. */
        buf_append(&r->pending, p, n);
        const unsigned char *pp = (const unsigned char *)r->pending.p;
        size_t used = read_records(r, pp, pp + r->pending.len);
        buf_consume(&r->pending, used);
        return r->err;
    }
    size_t used = read_records(r, p, end);
    if (used < n && !r->err)
        buf_append(&r->pending, p + used, n - used);
    return r->err;
}

int eng_snap_reader_finish(struct eng_snap_reader *r)
{
    if (r->err)
        return r->err;
    if (!r->ended || r->pending.len || r->end_keys != r->counts.keys)
        r->err = ERR_CORRUPT;
    return r->err;
}
