/* evict.c: keeping used memory under maxmemory.
 *
 * Approximate LRU as Redis does it: sample a few keys (maxmemory-samples) of
 * a shard, merge them into that shard's pool of the 16 best candidates seen
 * so far (idlest for *-lru, nearest expiry for volatile-ttl), and evict the
 * best one still present.  The pool is what makes a handful of samples good
 * enough: a candidate seen once stays a candidate until something better is
 * found.  Shards are visited round-robin so no shard is emptied first.
 * Called before a command runs, with no lock held, so that the command's own
 * locks are never held while we take others. */
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "engine_int.h"

#define POOL_SIZE 16

struct pool_entry {
    int64_t score; /* higher = better to evict */
    int db;
    size_t klen;
    char *key; /* a copy: the key may be gone when we come back */
};

struct evict_pool {
    int n;
    struct pool_entry e[POOL_SIZE]; /* ascending by score */
};

static int volatile_policy(int p)
{
    return p == ENG_POLICY_VOLATILE_LRU || p == ENG_POLICY_VOLATILE_TTL || p == ENG_POLICY_VOLATILE_RANDOM;
}

static void pool_insert(struct evict_pool *p, int64_t score, int db, const struct eng_key *k)
{
    for (int i = 0; i < p->n; i++) /* already a candidate: keep the fresher score */
        if (p->e[i].db == db && p->e[i].klen == k->klen && !memcmp(p->e[i].key, k->key, k->klen))
            return;
    if (p->n == POOL_SIZE) {
        if (score <= p->e[0].score)
            return;
        xfree(p->e[0].key); /* drop the worst */
        memmove(&p->e[0], &p->e[1], sizeof p->e[0] * (POOL_SIZE - 1));
        p->n--;
    }
    int i = p->n;
    while (i > 0 && p->e[i - 1].score > score) {
        p->e[i] = p->e[i - 1];
        i--;
    }
    p->e[i] = (struct pool_entry){score, db, k->klen, xstrndup(k->key, k->klen)};
    p->n++;
}

static int64_t score_of(int policy, uint32_t clock, const struct eng_key *k, int64_t when)
{
    switch (policy) {
    case ENG_POLICY_ALLKEYS_LRU:
    case ENG_POLICY_VOLATILE_LRU:
        return (int64_t)((clock - k->lru) & 0xFFFFFF);
    case ENG_POLICY_VOLATILE_TTL:
        return -when;
    default:
        return 0; /* random: any sampled key will do */
    }
}

static void sample(struct eng *e, struct eng_shard *sh, uint32_t clock)
{
    int policy = e->cfg.policy;
    for (int d = 0; d < e->cfg.ndb; d++) {
        struct eng_db *db = &sh->dbs[d];
        struct dict *from = volatile_policy(policy) ? &db->expires : &db->keys;
        if (!dict_size(from))
            continue;
        for (int i = 0; i < e->cfg.maxmemory_samples; i++) {
            sh->rnd = sh->rnd * 6364136223846793005ULL + 1442695040888963407ULL;
            struct dict_node *n = dict_random(from, sh->rnd);
            const struct eng_key *k;
            int64_t when = 0;
            if (from == &db->expires) {
                const struct eng_exp *x = (const struct eng_exp *)n;
                k = x->k, when = x->when;
            } else {
                k = (const struct eng_key *)n;
            }
            pool_insert(sh->pool, score_of(policy, clock, k, when), d, k);
        }
    }
}

/* Evicts one key from shard s.  Returns 1 if one was evicted. */
static int evict_one(struct eng *e, int s)
{
    struct eng_ctx c;
    struct eng_shard *sh = &e->shards[s];
    int evicted = 0;
    eng_ctx_init(&c, e, 0);
    eng_lock_shard(&c, s);
    if (!sh->pool)
        sh->pool = xcalloc(1, sizeof *sh->pool);
    sample(e, sh, eng__lru_clock(c.now_ms));
    struct evict_pool *p = sh->pool;
    while (p->n > 0 && !evicted) {
        struct pool_entry pe = p->e[--p->n];
        struct eng_db *db = &sh->dbs[pe.db];
        struct eng_key *k = eng__find(db, pe.key, pe.klen, eng__hash(pe.key, pe.klen));
        if (k && (!volatile_policy(e->cfg.policy) || k->is_volatile)) {
            c.db = pe.db;
            sh->evicted++;
            eng__journalf(&c, "sb", "DEL", k->key, (size_t)k->klen);
            eng__changed(&c, k->key, k->klen, ENG_EV_EVICTED, "evicted");
            eng__delete(&c, k);
            evicted = 1;
        }
        xfree(pe.key);
    }
    eng_unlock(&c);
    return evicted;
}

void eng__evict_pool_free(struct eng_shard *sh)
{
    if (!sh->pool)
        return;
    for (int i = 0; i < sh->pool->n; i++)
        xfree(sh->pool->e[i].key);
    xfree(sh->pool);
    sh->pool = NULL;
}

int eng_make_room(struct eng *e)
{
    int64_t limit = e->cfg.maxmemory;
    if (limit <= 0 || alloc_used() <= limit)
        return 0;
    if (e->cfg.policy == ENG_POLICY_NOEVICTION)
        return ERR_OOM;
    int misses = 0;
    /* Bounded: at most 10,000 evictions per call so one command never stalls
     * for long; the next write continues the work. */
    for (int i = 0; i < 10000 && alloc_used() > limit; i++) {
        unsigned s = atomic_fetch_add(&e->evict_next, 1) % (unsigned)e->cfg.nshards;
        if (evict_one(e, (int)s))
            misses = 0;
        else if (++misses >= e->cfg.nshards)
            return ERR_OOM;
    }
    return alloc_used() > limit ? ERR_OOM : 0;
}
