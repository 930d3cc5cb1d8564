/* evict.c: keeping used memory under maxmemory.
 *
 * Approximate LRU as Redis does it: sample a few keys (maxmemory-samples) from
 * one shard at a time, evict the best candidate among them (idlest for *-lru,
 * nearest expiry for volatile-ttl, any for *-random), repeat until under the
 * limit.  Shards are visited round-robin so that no shard is emptied first.
 * Called before a command runs, with no lock held, so that the command's own
 * locks are never held while we take others. */
#include "base/alloc.h"
#include "base/err.h"
#include "engine_int.h"

static int volatile_policy(int p)
{
    return p == ENG_POLICY_VOLATILE_LRU || p == ENG_POLICY_VOLATILE_TTL || p == ENG_POLICY_VOLATILE_RANDOM;
}

/* Evicts one key from shard s.  Returns 1 if one was evicted. */
static int evict_one(struct eng *e, int s)
{
    struct eng_ctx c;
    struct eng_shard *sh = &e->shards[s];
    int policy = e->cfg.policy, best_db = -1;
    struct eng_key *best = NULL;
    int64_t best_score = 0;
    eng_ctx_init(&c, e, 0);
    eng_lock_shard(&c, s);
    uint32_t clock = eng__lru_clock(c.now_ms);
    for (int d = 0; d < e->cfg.ndb; d++) {
        struct eng_db *db = &sh->dbs[d];
        struct dict *pool = volatile_policy(policy) ? &db->expires : &db->keys;
        if (!dict_size(pool))
            continue;
        for (int i = 0; i < e->cfg.maxmemory_samples; i++) {
            sh->rnd = sh->rnd * 6364136223846793005ULL + 1442695040888963407ULL;
            struct dict_node *n = dict_random(pool, sh->rnd);
            struct eng_key *k;
            int64_t score;
            if (pool == &db->expires) {
                struct eng_exp *x = (struct eng_exp *)n;
                k = x->k;
                score = policy == ENG_POLICY_VOLATILE_TTL ? -x->when : 0;
            } else {
                k = (struct eng_key *)n;
                score = 0;
            }
            if (policy == ENG_POLICY_ALLKEYS_LRU || policy == ENG_POLICY_VOLATILE_LRU)
                score = (int64_t)((clock - k->lru) & 0xFFFFFF);
            if (!best || score > best_score)
                best = k, best_score = score, best_db = d;
        }
    }
    if (best) {
        c.db = best_db;
        sh->evicted++;
        eng__journalf(&c, "sb", "DEL", best->key, (size_t)best->klen);
        eng__changed(&c, best->key, best->klen, ENG_EV_EVICTED, "evicted");
        eng__delete(&c, best);
    }
    eng_unlock(&c);
    return best != NULL;
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
