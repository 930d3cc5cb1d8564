/* keyspace.c: keys as such, whatever their type: lookup with lazy expiry, add,
 * replace, delete, expiry, rename/copy, iteration (KEYS, SCAN, RANDOMKEY),
 * FLUSHDB and introspection.  Type-specific code lives in t_*.c. */
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/glob.h"
#include "base/num.h"
#include "engine_int.h"

static const char *const type_names[ENG_T__COUNT] = {"string", "list", "set", "zset", "hash"};
static const char *const enc_names[ENC__COUNT] = {"int",       "embstr",    "raw",    "listpack",
                                                  "quicklist", "hashtable", "intset", "skiplist"};

const char *eng_type_name(int type) { return type >= 0 && type < ENG_T__COUNT ? type_names[type] : "none"; }

struct eng_key *eng__find(struct eng_db *db, const char *key, size_t klen, uint64_t h)
{
    return (struct eng_key *)dict_find(&db->keys, key, klen, h);
}

static struct eng_exp *find_exp(struct eng_db *db, const struct eng_key *k)
{
    return (struct eng_exp *)dict_find(&db->expires, k->key, k->klen, eng__hash(k->key, k->klen));
}

int64_t eng__get_expire(struct eng_ctx *c, const struct eng_key *k)
{
    if (!k->is_volatile)
        return -1;
    struct eng_exp *x = find_exp(eng__db(c, k->key, k->klen), k);
    return x ? x->when : -1;
}

/* Deletes k if its time has passed.  Returns 1 when the key is (logically)
 * gone.  A replica reports it gone to reads but keeps it until the master's
 * DEL comes, and lets writes (the master's stream) see it: replicas must not
 * diverge from the master's stream. */
static int expire_if_needed(struct eng_ctx *c, struct eng_key *k, int read)
{
    if (!k->is_volatile)
        return 0;
    int64_t when = eng__get_expire(c, k);
    if (when < 0 || when > c->now_ms)
        return 0;
    if (c->e->cfg.replica)
        return read & ENG_LOOKUP_READ;
    eng__shard(c, k->key, k->klen)->expired++;
    eng__journalf(c, "sb", "DEL", k->key, (size_t)k->klen);
    eng__changed(c, k->key, k->klen, ENG_EV_EXPIRED, "expired");
    eng__delete(c, k);
    return 1;
}

struct eng_key *eng__lookup(struct eng_ctx *c, const char *key, size_t klen, int read)
{
    struct eng_shard *sh = eng__shard(c, key, klen);
    struct eng_key *k = eng__find(&sh->dbs[c->db], key, klen, eng__hash(key, klen));
    if (k && expire_if_needed(c, k, read))
        k = NULL;
    /* A versioned snapshot saves a key before its first access, read or
     * write, once it began: simpler than finding every write path, and a
     * read pays it once per key per snapshot. */
    if (k)
        eng__before_change(c, sh, k);
    if (c->quiet) /* a snapshot's walk or load: no trace (no page dirtied in a fork()ed child) */
        return k;
    if (k && !(read & ENG_LOOKUP_NOTOUCH) && !atomic_load_explicit(&c->e->snapshot_child, memory_order_relaxed))
        k->lru = eng__lru_clock(c->now_ms);
    if (read & ENG_LOOKUP_READ) {
        if (k)
            sh->hits++;
        else
            sh->misses++;
    }
    return k;
}

struct eng_key *eng__lookup_type(struct eng_ctx *c, const char *key, size_t klen, int type, int read, int *err)
{
    struct eng_key *k = eng__lookup(c, key, klen, read);
    *err = 0;
    if (k && k->type != type) {
        *err = ERR_WRONGTYPE;
        return NULL;
    }
    return k;
}

struct eng_key *eng__key_new(const char *key, size_t klen, int type, int enc, size_t extra)
{
    struct eng_key *k = xmalloc(sizeof *k + klen + extra);
    k->node.next = NULL;
    k->lru = 0;
    k->type = (uint32_t)type;
    k->enc = (uint32_t)enc;
    k->is_volatile = 0;
    assert(klen < (1u << 31));
    k->klen = (uint32_t)klen;
    k->snap_mark = 0;
    k->v.i = 0;
    memcpy(k->key, key, klen);
    return k;
}

void eng__add(struct eng_ctx *c, struct eng_key *k)
{
    struct eng_shard *sh = eng__shard(c, k->key, k->klen);
    struct eng_db *db = &sh->dbs[c->db];
    k->lru = eng__lru_clock(c->now_ms);
    k->snap_mark = sh->snap_parity & 1; /* born after a running snapshot's instant */
    dict_add(&db->keys, &k->node, eng__hash(k->key, k->klen));
}

void eng__swap(struct eng_ctx *c, struct eng_key *old, struct eng_key *k)
{
    struct eng_shard *sh = eng__shard(c, old->key, old->klen);
    struct eng_db *db = &sh->dbs[c->db];
    uint64_t h = eng__hash(old->key, old->klen);
    eng__before_change(c, sh, old);
    k->snap_mark = sh->snap_parity & 1;
    k->is_volatile = old->is_volatile;
    k->lru = eng__lru_clock(c->now_ms);
    int rc = dict_replace(&db->keys, &old->node, &k->node, h);
    assert(rc == 0);
    (void)rc;
    if (old->is_volatile) {
        struct eng_exp *x = (struct eng_exp *)dict_find(&db->expires, old->key, old->klen, h);
        assert(x);
        x->k = k;
    }
    xfree(old);
}

void eng__free_value(struct eng_key *k)
{
    if (k->type == ENG_T_STRING) {
        if (k->enc == ENC_RAW)
            xfree(k->v.p);
    } else if (eng__type_ops[k->type]) {
        eng__type_ops[k->type]->free(k->v.p);
    }
    k->v.p = NULL;
}

void eng__delete(struct eng_ctx *c, struct eng_key *k)
{
    struct eng_shard *sh = eng__shard(c, k->key, k->klen);
    struct eng_db *db = &sh->dbs[c->db];
    uint64_t h = eng__hash(k->key, k->klen);
    eng__before_change(c, sh, k);
    if (k->is_volatile)
        xfree(dict_unlink(&db->expires, k->key, k->klen, h));
    struct dict_node *n = dict_unlink(&db->keys, k->key, k->klen, h);
    assert(n == &k->node);
    (void)n;
    eng__free_value(k);
    xfree(k);
}

void eng__set_expire(struct eng_ctx *c, struct eng_key *k, int64_t when)
{
    struct eng_shard *sh = eng__shard(c, k->key, k->klen);
    struct eng_db *db = &sh->dbs[c->db];
    uint64_t h = eng__hash(k->key, k->klen);
    eng__before_change(c, sh, k);
    if (when <= 0) {
        if (k->is_volatile)
            xfree(dict_unlink(&db->expires, k->key, k->klen, h));
        k->is_volatile = 0;
        return;
    }
    if (k->is_volatile) {
        struct eng_exp *x = (struct eng_exp *)dict_find(&db->expires, k->key, k->klen, h);
        assert(x);
        x->when = when;
        return;
    }
    struct eng_exp *x = xmalloc(sizeof *x);
    x->k = k;
    x->when = when;
    k->is_volatile = 1;
    dict_add(&db->expires, &x->node, h);
}

/* ---- key commands ----------------------------------------------------- */

int eng_del(struct eng_ctx *c, const char *key, size_t klen)
{
    struct eng_key *k = eng__lookup(c, key, klen, 0);
    if (!k)
        return 0;
    eng__journalf(c, "sb", "DEL", key, klen);
    eng__changed(c, key, klen, ENG_EV_GENERIC, "del");
    eng__delete(c, k);
    return 1;
}

/* EXISTS, TYPE, TTL, OBJECT and MEMORY USAGE are reads for INFO's keyspace
 * hits and misses, and leave the idle time alone, as in Redis. */
int eng_exists(struct eng_ctx *c, const char *key, size_t klen)
{
    return eng__lookup(c, key, klen, ENG_LOOKUP_READ | ENG_LOOKUP_NOTOUCH) != NULL;
}

int eng_type(struct eng_ctx *c, const char *key, size_t klen)
{
    struct eng_key *k = eng__lookup(c, key, klen, ENG_LOOKUP_READ | ENG_LOOKUP_NOTOUCH);
    return k ? (int)k->type : -1;
}

int eng_touch(struct eng_ctx *c, const char *key, size_t klen)
{
    return eng__lookup(c, key, klen, ENG_LOOKUP_READ) != NULL;
}

/* A copy of k's value under a new name (the value is duplicated). */
static struct eng_key *clone_key(const struct eng_key *k, const char *name, size_t nlen)
{
    size_t extra = (k->type == ENG_T_STRING && k->enc == ENC_EMBSTR) ? (size_t)k->v.i : 0;
    struct eng_key *n = eng__key_new(name, nlen, (int)k->type, (int)k->enc, extra);
    n->v = k->v;
    if (extra)
        memcpy(n->key + nlen, k->key + k->klen, extra);
    else if (k->type == ENG_T_STRING && k->enc == ENC_RAW) {
        const struct eng_raw *r = k->v.p;
        struct eng_raw *d = xmalloc(sizeof *d + r->len);
        d->len = r->len;
        memcpy(d->p, r->p, r->len);
        n->v.p = d;
    } else if (k->type != ENG_T_STRING) {
        n->v.p = eng__type_ops[k->type]->dup(k->v.p);
    }
    return n;
}

int eng_rename(struct eng_ctx *c, const char *src, size_t slen, const char *dst, size_t dlen, int nx)
{
    struct eng_key *k = eng__lookup(c, src, slen, 0);
    if (!k)
        return ERR_NOKEY;
    int same = slen == dlen && memcmp(src, dst, slen) == 0;
    struct eng_key *old = eng__lookup(c, dst, dlen, 0);
    if (same)
        return nx ? 0 : 1;
    if (old && nx)
        return 0;
    int64_t when = eng__get_expire(c, k);
    eng__journalf(c, nx ? "sbb" : "sbb", nx ? "RENAMENX" : "RENAME", src, slen, dst, dlen);
    if (old) {
        eng__changed(c, dst, dlen, 0, NULL);
        eng__delete(c, old);
    }
    /* Move, not copy: the value block changes owner, only the key is new. */
    size_t extra = (k->type == ENG_T_STRING && k->enc == ENC_EMBSTR) ? (size_t)k->v.i : 0;
    struct eng_key *n = eng__key_new(dst, dlen, (int)k->type, (int)k->enc, extra);
    n->v = k->v;
    if (extra)
        memcpy(n->key + dlen, k->key + k->klen, extra);
    k->type = ENG_T_STRING, k->enc = ENC_INT; /* value now owned by n */
    eng__changed(c, src, slen, ENG_EV_GENERIC, "rename_from");
    eng__delete(c, k);
    eng__add(c, n);
    if (when > 0)
        eng__set_expire(c, n, when);
    eng__changed(c, dst, dlen, ENG_EV_GENERIC, "rename_to");
    if (n->type == ENG_T_LIST || n->type == ENG_T_ZSET) /* wakes BLPOP dst (Redis's dbAdd) */
        eng__signal_ready(c, dst, dlen);
    return 1;
}

int eng_copy(struct eng_ctx *c, const char *src, size_t slen, const char *dst, size_t dlen, int dstdb, int replace)
{
    struct eng_key *k = eng__lookup(c, src, slen, 0);
    if (!k)
        return 0;
    int srcdb = c->db;
    if (dstdb == srcdb && slen == dlen && memcmp(src, dst, slen) == 0)
        return 0;
    int64_t when = eng__get_expire(c, k);
    c->db = dstdb;
    struct eng_key *old = eng__lookup(c, dst, dlen, 0);
    if (old && !replace) {
        c->db = srcdb;
        return 0;
    }
    c->db = srcdb;
    struct eng_key *n = clone_key(k, dst, dlen);
    if (replace)
        eng__journalf(c, "sbbsis", "COPY", src, slen, dst, dlen, "DB", (int64_t)dstdb, "REPLACE");
    else
        eng__journalf(c, "sbbsi", "COPY", src, slen, dst, dlen, "DB", (int64_t)dstdb);
    c->db = dstdb;
    if (old)
        eng__delete(c, old);
    eng__add(c, n);
    if (when > 0)
        eng__set_expire(c, n, when);
    eng__changed(c, dst, dlen, ENG_EV_GENERIC, "copy_to");
    if (n->type == ENG_T_LIST || n->type == ENG_T_ZSET) /* wakes BLPOP dst (Redis's dbAdd) */
        eng__signal_ready(c, dst, dlen);
    c->db = srcdb;
    return 1;
}

int eng_expire_at(struct eng_ctx *c, const char *key, size_t klen, int64_t when_ms, int flags)
{
    struct eng_key *k = eng__lookup(c, key, klen, 0);
    if (!k)
        return 0;
    int64_t cur = eng__get_expire(c, k);
    if ((flags & ENG_EXP_NX) && cur >= 0)
        return 0;
    if ((flags & ENG_EXP_XX) && cur < 0)
        return 0;
    if ((flags & ENG_EXP_GT) && (cur < 0 || when_ms <= cur))
        return 0;
    if ((flags & ENG_EXP_LT) && cur >= 0 && when_ms >= cur)
        return 0;
    if (when_ms <= c->now_ms && !c->e->cfg.replica) {
        eng__journalf(c, "sb", "DEL", key, klen);
        eng__changed(c, key, klen, ENG_EV_GENERIC, "del");
        eng__delete(c, k);
        return 1;
    }
    eng__set_expire(c, k, when_ms);
    eng__journalf(c, "sbi", "PEXPIREAT", key, klen, when_ms);
    eng__changed(c, key, klen, ENG_EV_GENERIC, "expire");
    return 1;
}

int64_t eng_pttl(struct eng_ctx *c, const char *key, size_t klen)
{
    struct eng_key *k = eng__lookup(c, key, klen, ENG_LOOKUP_READ | ENG_LOOKUP_NOTOUCH);
    if (!k)
        return -2;
    int64_t when = eng__get_expire(c, k);
    if (when < 0)
        return -1;
    return when > c->now_ms ? when - c->now_ms : 0;
}

int64_t eng_pexpiretime(struct eng_ctx *c, const char *key, size_t klen)
{
    struct eng_key *k = eng__lookup(c, key, klen, ENG_LOOKUP_READ | ENG_LOOKUP_NOTOUCH);
    if (!k)
        return -2;
    return eng__get_expire(c, k);
}

int eng_persist(struct eng_ctx *c, const char *key, size_t klen)
{
    struct eng_key *k = eng__lookup(c, key, klen, 0);
    if (!k || !k->is_volatile)
        return 0;
    eng__set_expire(c, k, 0);
    eng__journalf(c, "sb", "PERSIST", key, klen);
    eng__changed(c, key, klen, ENG_EV_GENERIC, "persist");
    return 1;
}

/* ---- iteration ---------------------------------------------------------- */

static int logically_expired(struct eng_ctx *c, const struct eng_key *k)
{
    if (!k->is_volatile)
        return 0;
    int64_t when = eng__get_expire(c, k);
    return when >= 0 && when <= c->now_ms;
}

struct keys_walk {
    struct eng_ctx *c;
    const char *pat;
    size_t plen;
    int all, type;
    void (*fn)(void *ud, const char *k, size_t n);
    void *ud;
    int64_t emitted;
};

static void keys_visit(void *ud, struct dict_node *n)
{
    struct keys_walk *w = ud;
    struct eng_key *k = (struct eng_key *)n;
    if (w->type >= 0 && (int)k->type != w->type)
        return;
    if (!w->all && !glob_match(w->pat, w->plen, k->key, k->klen, 0))
        return;
    if (logically_expired(w->c, k))
        return;
    w->fn(w->ud, k->key, k->klen);
    w->emitted++;
}

static int keys_visit_all(void *ud, struct dict_node *n)
{
    keys_visit(ud, n);
    return 0;
}

void eng_keys(struct eng_ctx *c, const char *pat, size_t plen, void (*fn)(void *ud, const char *k, size_t n),
              void *ud)
{
    struct keys_walk w = {c, pat, plen, plen == 1 && pat[0] == '*', -1, fn, ud, 0};
    for (int s = 0; s < c->e->cfg.nshards; s++)
        dict_foreach(&c->e->shards[s].dbs[c->db].keys, keys_visit_all, &w);
}

/* Cursor layout: the dict cursor of the current shard shifted left by 8, the
 * shard index in the low 8 bits.  0 starts at shard 0 and means "done" when
 * returned. */
/* busy: NULL waits for each shard's lock (eng_scan); else see
 * eng_scan_nowait. */
static uint64_t scan(struct eng *e, int db, uint64_t cursor, const char *pat, size_t plen, int type, int64_t count,
                     void (*fn)(void *ud, const char *k, size_t n), void *ud, int *busy)
{
    int shard = (int)(cursor & 0xFF);
    uint64_t dc = cursor >> 8;
    if (shard >= e->cfg.nshards)
        return 0;
    if (count < 1)
        count = 10;
    struct eng_ctx c;
    eng_ctx_init(&c, e, db);
    struct keys_walk w = {&c, pat, plen, !pat || (plen == 1 && pat[0] == '*'), type, fn, ud, 0};
    int64_t visits = 0;
    while (shard < e->cfg.nshards) {
        if (!busy) {
            eng_lock_shard(&c, shard);
        } else if (eng_trylock_shard(&c, shard) < 0) {
            *busy = 1;
            return (dc << 8) | (uint64_t)shard;
        }
        struct dict *d = &e->shards[shard].dbs[db].keys;
        do {
            dc = dict_scan(d, dc, keys_visit, &w);
            visits++;
        } while (dc && visits < count && w.emitted < count * 10 && visits < count * 10);
        eng_unlock(&c);
        if (dc)
            return (dc << 8) | (uint64_t)shard;
        shard++;
        if (visits >= count)
            break;
    }
    return shard >= e->cfg.nshards ? 0 : (uint64_t)shard;
}

uint64_t eng_scan(struct eng *e, int db, uint64_t cursor, const char *pat, size_t plen, int type, int64_t count,
                  void (*fn)(void *ud, const char *k, size_t n), void *ud)
{
    return scan(e, db, cursor, pat, plen, type, count, fn, ud, NULL);
}

uint64_t eng_scan_nowait(struct eng *e, int db, uint64_t cursor, const char *pat, size_t plen, int type,
                         int64_t count, void (*fn)(void *ud, const char *k, size_t n), void *ud, int *busy)
{
    *busy = 0;
    return scan(e, db, cursor, pat, plen, type, count, fn, ud, busy);
}

int eng_randomkey(struct eng *e, int db, struct buf *out)
{
    struct eng_ctx c;
    eng_ctx_init(&c, e, db);
    for (int tries = 0; tries < 100; tries++) {
        uint64_t total = eng_dbsize(e, db);
        if (!total)
            return 0;
        /* Pick a shard weighted by its size, then a key inside it. */
        static _Thread_local uint64_t seed = 0x2545F4914F6CDD1DULL;
        seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
        uint64_t r = seed % total;
        for (int s = 0; s < e->cfg.nshards; s++) {
            eng_lock_shard(&c, s);
            struct eng_shard *sh = &e->shards[s];
            uint64_t n = dict_size(&sh->dbs[db].keys);
            if (r < n) {
                sh->rnd = sh->rnd * 6364136223846793005ULL + 1442695040888963407ULL;
                struct eng_key *k = (struct eng_key *)dict_random(&sh->dbs[db].keys, sh->rnd);
                int ok = k && !logically_expired(&c, k);
                if (ok)
                    buf_append(out, k->key, k->klen);
                eng_unlock(&c);
                if (ok)
                    return 1;
                break;
            }
            r -= n;
            eng_unlock(&c);
        }
    }
    return 0;
}

uint64_t eng_dbsize(struct eng *e, int db)
{
    uint64_t n = 0;
    for (int s = 0; s < e->cfg.nshards; s++) {
        int in = eng__shard_enter(e, s);
        n += dict_size(&e->shards[s].dbs[db].keys);
        eng__shard_leave(e, s, in);
    }
    return n;
}

static void free_exp(struct dict_node *n, void *ud) { xfree(n); }
static void free_key(struct dict_node *n, void *ud)
{
    struct eng_key *k = (struct eng_key *)n;
    eng__free_value(k);
    xfree(k);
}

void eng_flush(struct eng_ctx *c, int db)
{
    struct eng *e = c->e;
    uint64_t removed = 0;
    for (int s = 0; s < e->cfg.nshards; s++) {
        assert(c->locked[s / 64] & (1ULL << (s % 64)));
        for (int d = 0; d < e->cfg.ndb; d++) {
            if (db >= 0 && d != db)
                continue;
            struct eng_db *x = &e->shards[s].dbs[d];
            if (e->shards[s].vsnap)
                eng__vsnap_save_db(c, &e->shards[s], d);
            removed += dict_size(&x->keys);
            dict_release(&x->expires, free_exp, NULL);
            dict_release(&x->keys, free_key, NULL);
            x->avg_ttl = 0;
        }
    }
    e->shards[0].dirty += removed ? removed : 1;
    if (db >= 0)
        eng__journal_db(c, db, 1, &STR("FLUSHDB"));
    else
        eng__journal_db(c, 0, 1, &STR("FLUSHALL"));
    if (e->hooks.modified)
        e->hooks.modified(e->hooks.ud, db, NULL, 0); /* NULL key: every key of db (all dbs if db < 0) */
}

const char *eng_object_encoding(struct eng_ctx *c, const char *key, size_t klen)
{
    struct eng_key *k = eng__lookup(c, key, klen, ENG_LOOKUP_READ | ENG_LOOKUP_NOTOUCH);
    return k ? enc_names[k->enc] : NULL;
}

int64_t eng_object_idletime(struct eng_ctx *c, const char *key, size_t klen)
{
    struct eng_key *k = eng__lookup(c, key, klen, ENG_LOOKUP_READ | ENG_LOOKUP_NOTOUCH);
    if (!k)
        return -1;
    uint32_t now = eng__lru_clock(c->now_ms);
    return (int64_t)((now - k->lru) & 0xFFFFFF);
}

int64_t eng_memory_usage(struct eng_ctx *c, const char *key, size_t klen)
{
    struct eng_key *k = eng__lookup(c, key, klen, ENG_LOOKUP_READ | ENG_LOOKUP_NOTOUCH);
    if (!k)
        return -1;
    int64_t n = (int64_t)xmalloc_size(k) + (int64_t)sizeof(void *); /* block + bucket slot */
    if (k->is_volatile)
        n += (int64_t)sizeof(struct eng_exp) + (int64_t)sizeof(void *);
    if (k->type == ENG_T_STRING && k->enc == ENC_RAW)
        n += (int64_t)xmalloc_size(k->v.p);
    else if (k->type != ENG_T_STRING && eng__type_ops[k->type])
        n += (int64_t)eng__type_ops[k->type]->mem(k->v.p);
    return n;
}
