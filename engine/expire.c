/* expire.c: active expiry and background rehashing, one shard at a time.
 *
 * Keys with a TTL that nobody reads again would otherwise live forever.  Like
 * Redis's activeExpireCycle, each call samples the shard's expiry tables with
 * a resumable scan cursor, deletes what is due, and keeps going while a good
 * share of the sample was due, but never past its CPU budget: the cost per
 * cycle is bounded whatever the number of keys. */
#include "base/alloc.h"
#include "base/clock.h"
#include "engine_int.h"

#define SAMPLE_BATCH 20
#define MAX_DUE 64

struct due {
    struct eng_ctx *c;
    struct eng_key *keys[MAX_DUE];
    int n, sampled;
    int64_t ttl_sum, ttl_n;
};

static void collect(void *ud, struct dict_node *node)
{
    struct due *d = ud;
    struct eng_exp *x = (struct eng_exp *)node;
    d->sampled++;
    if (x->when <= d->c->now_ms) {
        if (d->n < MAX_DUE)
            d->keys[d->n++] = x->k;
    } else {
        d->ttl_sum += x->when - d->c->now_ms;
        d->ttl_n++;
    }
}

static void expire_db(struct eng_ctx *c, struct eng_shard *sh, int dbi, int64_t deadline_us)
{
    struct eng_db *db = &sh->dbs[dbi];
    c->db = dbi;
    for (int round = 0; dict_size(&db->expires) > 0; round++) {
        struct due d = {.c = c};
        do {
            db->expire_cursor = dict_scan(&db->expires, db->expire_cursor, collect, &d);
        } while (db->expire_cursor && d.sampled < SAMPLE_BATCH && d.n < MAX_DUE);
        for (int i = 0; i < d.n; i++) {
            struct eng_key *k = d.keys[i];
            sh->expired++;
            eng__journalf(c, "sb", "DEL", k->key, (size_t)k->klen);
            eng__changed(c, k->key, k->klen, ENG_EV_EXPIRED, "expired");
            eng__delete(c, k);
        }
        if (d.ttl_n)
            db->avg_ttl = db->avg_ttl ? (db->avg_ttl * 49 + d.ttl_sum / d.ttl_n) / 50 : d.ttl_sum / d.ttl_n;
        if (d.sampled)
            sh->stale_perc = (uint64_t)(d.n * 100 / d.sampled);
        /* Go on only while at least 10% of the sample was due (Redis's
         * acceptable-stale threshold) and there is budget left. */
        if (d.sampled == 0 || d.n * 10 < d.sampled || clock_mono_us() > deadline_us)
            break;
        if (db->expire_cursor == 0 && round > 0 && d.n == 0)
            break;
    }
}

void eng_cron_shard(struct eng *e, int shard, int64_t budget_us)
{
    struct eng_ctx c;
    struct eng_shard *sh = &e->shards[shard];
    int64_t start = clock_mono_us(), deadline = start + budget_us;
    eng_ctx_init(&c, e, 0);
    eng_lock_shard(&c, shard);
    for (int d = 0; d < e->cfg.ndb; d++) {
        struct eng_db *db = &sh->dbs[d];
        /* Rehash and shrink in small steps even when no command touches the
         * table, as Redis's activerehashing does. */
        dict_resize_if_needed(&db->keys);
        dict_resize_if_needed(&db->expires);
        for (int i = 0; i < 10 && dict_is_rehashing(&db->keys); i++)
            dict_rehash_step(&db->keys, 100);
        for (int i = 0; i < 10 && dict_is_rehashing(&db->expires); i++)
            dict_rehash_step(&db->expires, 100);
        if (!e->cfg.replica && !e->cfg.no_active_expire && dict_size(&db->expires))
            expire_db(&c, sh, d, deadline);
        if (clock_mono_us() > deadline)
            break;
    }
    eng_unlock(&c);
}
