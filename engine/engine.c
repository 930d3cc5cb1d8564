/* engine.c: engine lifecycle, shard choice, locks, statistics and the effect
 * hooks (journal, notifications, modified keys).  Data types live in t_*.c,
 * key-level operations in keyspace.c, background work in expire.c/evict.c. */
#include "engine_int.h"

#include <stdarg.h>
#include <string.h>
#include <xxhash.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/err.h"
#include "base/num.h"

const struct eng_type_ops *const eng__type_ops[ENG_T__COUNT] = {
    [ENG_T_LIST] = &eng__list_ops,
    [ENG_T_SET] = &eng__set_ops,
    [ENG_T_ZSET] = &eng__zset_ops,
    [ENG_T_HASH] = &eng__hash_ops,
};

uint64_t eng__hash(const char *key, size_t klen) { return XXH3_64bits(key, klen); }

/* Redis Cluster's hash tag rule: the bytes between the first '{' and the next
 * '}' when that is non-empty; otherwise the whole key. */
static void hash_tag(const char *key, size_t klen, const char **tag, size_t *tlen)
{
    const char *open = memchr(key, '{', klen);
    if (open) {
        size_t rest = klen - (size_t)(open - key) - 1;
        const char *close = memchr(open + 1, '}', rest);
        if (close && close > open + 1) {
            *tag = open + 1, *tlen = (size_t)(close - open - 1);
            return;
        }
    }
    *tag = key, *tlen = klen;
}

int eng_shard_of(const struct eng *e, const char *key, size_t klen)
{
    if (e->cfg.nshards == 1)
        return 0;
    const char *tag;
    size_t tlen;
    hash_tag(key, klen, &tag, &tlen);
    /* High bits pick the shard (multiply-shift), low bits the bucket inside
     * it, so the two choices stay independent. */
    uint64_t h = XXH3_64bits(tag, tlen);
    return (int)(((unsigned __int128)h * (unsigned)e->cfg.nshards) >> 64);
}

static uint64_t keys_node_hash(const struct dict_node *n)
{
    const struct eng_key *k = (const struct eng_key *)n;
    return eng__hash(k->key, k->klen);
}
static int keys_node_eq(const struct dict_node *n, const void *key, size_t len)
{
    const struct eng_key *k = (const struct eng_key *)n;
    return k->klen == len && memcmp(k->key, key, len) == 0;
}
static uint64_t exp_node_hash(const struct dict_node *n)
{
    const struct eng_exp *x = (const struct eng_exp *)n;
    return eng__hash(x->k->key, x->k->klen);
}
static int exp_node_eq(const struct dict_node *n, const void *key, size_t len)
{
    const struct eng_exp *x = (const struct eng_exp *)n;
    return x->k->klen == len && memcmp(x->k->key, key, len) == 0;
}
const struct dict_type eng__keys_type = {keys_node_hash, keys_node_eq};
const struct dict_type eng__expires_type = {exp_node_hash, exp_node_eq};

struct eng *eng_new(const struct eng_config *cfg)
{
    if (cfg->nshards < 1 || cfg->nshards > ENG_MAX_SHARDS || cfg->ndb < 1 || cfg->ndb > 1024)
        return NULL;
    struct eng *e = xcalloc(1, sizeof *e);
    e->cfg = *cfg;
    if (e->cfg.maxmemory_samples < 1)
        e->cfg.maxmemory_samples = 5;
    e->shards = xcalloc((size_t)cfg->nshards, sizeof *e->shards);
    for (int s = 0; s < cfg->nshards; s++) {
        struct eng_shard *sh = &e->shards[s];
        pthread_mutexattr_t a;
        pthread_mutexattr_init(&a);
        /* Critical sections are a hash lookup long: spin briefly before
         * sleeping rather than paying a futex round trip. */
        pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ADAPTIVE_NP);
        pthread_mutex_init(&sh->lock, &a);
        pthread_mutexattr_destroy(&a);
        sh->dbs = xcalloc((size_t)cfg->ndb, sizeof *sh->dbs);
        for (int d = 0; d < cfg->ndb; d++) {
            dict_init(&sh->dbs[d].keys, &eng__keys_type);
            dict_init(&sh->dbs[d].expires, &eng__expires_type);
        }
        sh->rnd = 0x9E3779B97F4A7C15ULL * (uint64_t)(s + 1);
    }
    return e;
}

static void free_exp(struct dict_node *n, void *ud) { xfree(n); }
static void free_key(struct dict_node *n, void *ud)
{
    struct eng_key *k = (struct eng_key *)n;
    eng__free_value(k);
    xfree(k);
}

void eng_free(struct eng *e)
{
    if (!e)
        return;
    for (int s = 0; s < e->cfg.nshards; s++) {
        struct eng_shard *sh = &e->shards[s];
        for (int d = 0; d < e->cfg.ndb; d++) {
            dict_release(&sh->dbs[d].expires, free_exp, NULL);
            dict_release(&sh->dbs[d].keys, free_key, NULL);
        }
        xfree(sh->dbs);
        eng__evict_pool_free(sh);
        pthread_mutex_destroy(&sh->lock);
    }
    xfree(e->shards);
    xfree(e);
}

void eng_set_hooks(struct eng *e, const struct eng_hooks *h) { e->hooks = *h; }
const struct eng_config *eng_config(const struct eng *e) { return &e->cfg; }

void eng_set_maxmemory(struct eng *e, int64_t maxmemory, int policy, int samples)
{
    e->cfg.maxmemory = maxmemory;
    e->cfg.policy = policy;
    e->cfg.maxmemory_samples = samples > 0 ? samples : 5;
}

void eng_set_replica(struct eng *e, int replica) { e->cfg.replica = replica; }
void eng_set_notify_mask(struct eng *e, unsigned mask) { e->hooks.notify_mask = mask; }
void eng_set_active_expire(struct eng *e, int on) { e->cfg.no_active_expire = !on; }
void eng_set_snapshot_child(struct eng *e, int on) { atomic_store_explicit(&e->snapshot_child, on, memory_order_relaxed); }

/* ---- contexts and locks ------------------------------------------------ */

static void ctx_stamp(struct eng_ctx *c)
{
    c->now_us = clock_wall_us();
    c->now_ms = c->now_us / 1000;
}

void eng_ctx_init_to_lock(struct eng_ctx *c, struct eng *e, int db)
{
    c->e = e;
    c->db = db;
    c->now_ms = c->now_us = 0;
    c->nlocked = 0;
    memset(c->locked, 0, sizeof c->locked);
    c->txn = 0;
    c->quiet = 0;
}

void eng_ctx_init(struct eng_ctx *c, struct eng *e, int db)
{
    eng_ctx_init_to_lock(c, e, db);
    ctx_stamp(c);
}

/* The shards this thread holds, through any context.  A shard already held
 * is not taken again (nor let go by the context that skipped it): EXEC holds
 * every shard around a command that locks by itself (SCAN, DBSIZE, INFO...),
 * so nothing else runs between a transaction's commands, as in Redis. */
#define HELD_ENGINES 4 /* engines one thread holds shards of at once (tests replay into a second) */
static _Thread_local struct {
    const struct eng *e;
    uint64_t m[ENG_MAX_SHARDS / 64];
} held_by[HELD_ENGINES];

static uint64_t *held_of(const struct eng *e)
{
    int spare = -1;
    for (int i = 0; i < HELD_ENGINES; i++) {
        if (held_by[i].e == e)
            return held_by[i].m;
        int empty = 1;
        for (int w = 0; w < ENG_MAX_SHARDS / 64; w++)
            empty &= !held_by[i].m[w];
        if (spare < 0 && empty)
            spare = i;
    }
    assert(spare >= 0);
    held_by[spare].e = e;
    return held_by[spare].m;
}

int eng__held(const struct eng *e, int s) { return (held_of(e)[s / 64] >> (s % 64)) & 1; }

int eng__shard_enter(struct eng *e, int s)
{
    uint64_t *held = held_of(e);
    if (held[s / 64] & (1ULL << (s % 64)))
        return 0;
    pthread_mutex_lock(&e->shards[s].lock);
    held[s / 64] |= 1ULL << (s % 64);
    return 1;
}

void eng__shard_leave(struct eng *e, int s, int entered)
{
    if (!entered)
        return;
    held_of(e)[s / 64] &= ~(1ULL << (s % 64));
    pthread_mutex_unlock(&e->shards[s].lock);
}

static void lock_mask(struct eng_ctx *c, const uint64_t *want)
{
    assert(c->nlocked == 0);
    uint64_t *held = held_of(c->e);
    for (int w = 0; w < ENG_MAX_SHARDS / 64; w++) {
        uint64_t bits = want[w] & ~held[w];
        while (bits) {
            int s = w * 64 + __builtin_ctzll(bits);
            bits &= bits - 1;
            struct eng_shard *sh = &c->e->shards[s];
            if (pthread_mutex_trylock(&sh->lock) != 0) {
                /* counted, so that a background walk holding it steps
                 * aside once it lets go (snapshot.c) */
                atomic_fetch_add_explicit(&sh->waiters, 1, memory_order_relaxed);
                pthread_mutex_lock(&sh->lock);
                atomic_fetch_sub_explicit(&sh->waiters, 1, memory_order_relaxed);
            }
            c->nlocked++;
        }
        c->locked[w] = want[w] & ~held[w];
        held[w] |= c->locked[w];
    }
    /* Time is read after the locks: a key written by the previous holder at
     * its `now` never looks older to us than to it. */
    ctx_stamp(c);
}

void eng_lock_keys(struct eng_ctx *c, const struct eng_str *keys, int n)
{
    uint64_t want[ENG_MAX_SHARDS / 64] = {0};
    for (int i = 0; i < n; i++) {
        int s = eng_shard_of(c->e, keys[i].p, keys[i].n);
        want[s / 64] |= 1ULL << (s % 64);
    }
    lock_mask(c, want);
}

void eng_lock_shard(struct eng_ctx *c, int shard)
{
    uint64_t want[ENG_MAX_SHARDS / 64] = {0};
    want[shard / 64] = 1ULL << (shard % 64);
    lock_mask(c, want);
}

int eng_trylock_shard(struct eng_ctx *c, int shard)
{
    assert(c->nlocked == 0);
    uint64_t *held = held_of(c->e), bit = 1ULL << (shard % 64);
    if (!(held[shard / 64] & bit)) {
        if (pthread_mutex_trylock(&c->e->shards[shard].lock) != 0)
            return -1;
        c->locked[shard / 64] = bit;
        c->nlocked = 1;
        held[shard / 64] |= bit;
    }
    ctx_stamp(c);
    return 0;
}

void eng_lock_all(struct eng_ctx *c)
{
    uint64_t want[ENG_MAX_SHARDS / 64] = {0};
    for (int s = 0; s < c->e->cfg.nshards; s++)
        want[s / 64] |= 1ULL << (s % 64);
    lock_mask(c, want);
}

void eng_unlock(struct eng_ctx *c)
{
    if (!c->nlocked)
        return;
    uint64_t *held = held_of(c->e);
    for (int w = ENG_MAX_SHARDS / 64 - 1; w >= 0; w--) {
        uint64_t bits = c->locked[w];
        while (bits) {
            int s = w * 64 + 63 - __builtin_clzll(bits);
            bits &= ~(1ULL << (s % 64));
            pthread_mutex_unlock(&c->e->shards[s].lock);
        }
        held[w] &= ~c->locked[w];
        c->locked[w] = 0;
    }
    c->nlocked = 0;
}

int eng_holds(const struct eng_ctx *c, const char *key, size_t klen)
{
    int s = eng_shard_of(c->e, key, klen);
    return ((c->locked[s / 64] >> (s % 64)) & 1) || eng__held(c->e, s);
}

struct eng_db *eng__db(struct eng_ctx *c, const char *key, size_t klen)
{
    return &eng__shard(c, key, klen)->dbs[c->db];
}

/* ---- effects ------------------------------------------------------------ */

void eng__changed(struct eng_ctx *c, const char *key, size_t klen, int cls, const char *event)
{
    struct eng *e = c->e;
    if (c->quiet)
        return;
    eng__shard(c, key, klen)->dirty++;
    if (event && e->hooks.notify && (e->hooks.notify_mask & (unsigned)cls))
        e->hooks.notify(e->hooks.ud, c->db, cls, event, key, klen);
    if (e->hooks.modified)
        e->hooks.modified(e->hooks.ud, c->db, key, klen);
}

void eng__signal_ready(struct eng_ctx *c, const char *key, size_t klen)
{
    if (c->e->hooks.ready && !c->quiet)
        c->e->hooks.ready(c->e->hooks.ud, c->db, key, klen);
}

void eng__journal_db(struct eng_ctx *c, int db, int argc, const struct eng_str *argv)
{
    if (!eng__journal_wanted(c))
        return;
    if (c->txn == 1) { /* the transaction's first write: open it now */
        c->txn = 2;
        c->e->hooks.journal(c->e->hooks.ud, db, 1, &STR("MULTI"));
    }
    c->e->hooks.journal(c->e->hooks.ud, db, argc, argv);
}

void eng_journal_multi(struct eng_ctx *c, int begin)
{
    if (begin) {
        c->txn = 1;
        return;
    }
    if (c->txn == 2 && c->e->hooks.journal)
        c->e->hooks.journal(c->e->hooks.ud, c->db, 1, &STR("EXEC"));
    c->txn = 0;
}

void eng_journal_cmd(struct eng *e, int db, int argc, const struct eng_str *argv)
{
    if (e->hooks.journal)
        e->hooks.journal(e->hooks.ud, db, argc, argv);
}

void eng__journal(struct eng_ctx *c, int argc, const struct eng_str *argv) { eng__journal_db(c, c->db, argc, argv); }

int eng__journal_wanted(const struct eng_ctx *c)
{
    const struct eng_hooks *h = &c->e->hooks;
    if (!h->journal || c->quiet)
        return 0;
    return c->txn || !h->journal_wanted || h->journal_wanted(h->ud);
}

void eng__journalf(struct eng_ctx *c, const char *fmt, ...)
{
    if (!eng__journal_wanted(c))
        return;
    struct eng_str argv[16];
    char nums[16][24];
    int argc = 0;
    va_list ap;
    va_start(ap, fmt);
    for (const char *f = fmt; *f && argc < 16; f++, argc++) {
        switch (*f) {
        case 's': {
            const char *s = va_arg(ap, const char *);
            argv[argc] = (struct eng_str){s, strlen(s)};
            break;
        }
        case 'b': {
            const char *p = va_arg(ap, const char *);
            size_t n = va_arg(ap, size_t);
            argv[argc] = (struct eng_str){p, n};
            break;
        }
        case 'i': {
            int64_t v = va_arg(ap, int64_t);
            size_t n = num_fmt_i64(nums[argc], v);
            argv[argc] = (struct eng_str){nums[argc], n};
            break;
        }
        default:
            assert(!"bad journal format");
        }
    }
    va_end(ap);
    eng__journal(c, argc, argv);
}

/* ---- statistics --------------------------------------------------------- */

void eng_stats(struct eng *e, struct eng_stats *out)
{
    memset(out, 0, sizeof *out);
    for (int s = 0; s < e->cfg.nshards; s++) {
        struct eng_shard *sh = &e->shards[s];
        int in = eng__shard_enter(e, s);
        out->hits += sh->hits, out->misses += sh->misses;
        out->expired += sh->expired, out->evicted += sh->evicted;
        out->changes += sh->dirty;
        out->expired_stale_perc += sh->stale_perc;
        eng__shard_leave(e, s, in);
    }
    out->expired_stale_perc /= (uint64_t)e->cfg.nshards;
}

void eng_stats_reset(struct eng *e)
{
    for (int s = 0; s < e->cfg.nshards; s++) {
        struct eng_shard *sh = &e->shards[s];
        int in = eng__shard_enter(e, s);
        sh->hits = sh->misses = sh->expired = sh->evicted = 0;
        eng__shard_leave(e, s, in);
    }
}

uint64_t eng_dirty(struct eng *e)
{
    struct eng_stats st;
    eng_stats(e, &st);
    return st.changes;
}

void eng_dirty_sub(struct eng *e, uint64_t n)
{
    for (int s = 0; s < e->cfg.nshards && n; s++) {
        struct eng_shard *sh = &e->shards[s];
        int in = eng__shard_enter(e, s);
        uint64_t take = sh->dirty < n ? sh->dirty : n;
        sh->dirty -= take, n -= take;
        eng__shard_leave(e, s, in);
    }
}

void eng_db_info(struct eng *e, int db, struct eng_db_info *out)
{
    memset(out, 0, sizeof *out);
    int64_t ttl_sum = 0, ttl_n = 0;
    for (int s = 0; s < e->cfg.nshards; s++) {
        struct eng_shard *sh = &e->shards[s];
        int in = eng__shard_enter(e, s);
        out->keys += dict_size(&sh->dbs[db].keys);
        out->expires += dict_size(&sh->dbs[db].expires);
        if (sh->dbs[db].avg_ttl)
            ttl_sum += sh->dbs[db].avg_ttl, ttl_n++;
        eng__shard_leave(e, s, in);
    }
    out->avg_ttl_ms = ttl_n ? ttl_sum / ttl_n : 0;
}

int64_t eng_used_memory(void) { return alloc_used(); }
