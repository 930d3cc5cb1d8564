/* test_keyspace.c: keys whatever their type, over several shards
 * (engine/keyspace.c, engine.c, expire.c, evict.c).  Shard choice and hash
 * tags, locks, DEL/EXISTS/TYPE, RENAME (value moved, TTL kept), COPY (deep, DB,
 * REPLACE), expiry with NX/XX/GT/LT and past times, PTTL/PERSIST, lazy expiry
 * on access, active expiry by eng_cron_shard, SCAN across shards while keys
 * are added, KEYS, RANDOMKEY, DBSIZE, FLUSHDB/FLUSHALL, eviction by policy,
 * and the statistics.  Values are strings (t_string.c); private structures
 * are reached through engine_int.h only to age a key or to set an expiry in
 * the past without deleting it (no sleeps). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "engine_int.h"

#define NSHARDS 4

/* ---- fixture: an engine whose hooks record what they hear ------------- */

#define TU_JLINE 200
#define TU_OWN_HOOKS
#include "test_util.h"

static void journal_hook(void *ud, int db, int argc, const struct eng_str *argv)
{
    J.total++;
    if (J.n == TU_JMAX)
        return; /* long runs (cron, eviction) only count */
    char *l = J.line[J.n++];
    size_t off = (size_t)snprintf(l, 200, "%d:", db);
    for (int i = 0; i < argc && off < 200; i++)
        off += (size_t)snprintf(l + off, 200 - off, i ? " %.*s" : "%.*s", (int)argv[i].n, argv[i].p);
}

static void notify_hook(void *ud, int db, int cls, const char *event, const char *key, size_t klen)
{
    J.notified++;
    snprintf(J.last_event, sizeof J.last_event, "%s", event);
    if (!strcmp(event, "expired"))
        J.ev_count[0]++, assert_int_equal(cls, ENG_EV_EXPIRED);
    else if (!strcmp(event, "evicted"))
        J.ev_count[1]++, assert_int_equal(cls, ENG_EV_EVICTED);
    else if (!strcmp(event, "del"))
        J.ev_count[2]++, assert_int_equal(cls, ENG_EV_GENERIC);
}

static void modified_hook(void *ud, int db, const char *key, size_t klen)
{
    J.modified++;
    J.modified_all += key == NULL;
}

static int setup(void **state)
{
    mem_base = alloc_used();
    struct eng_config cfg = {.nshards = NSHARDS, .ndb = 16};
    E = eng_new(&cfg);
    assert_non_null(E);
    struct eng_hooks h = {.journal = journal_hook, .notify = notify_hook, .notify_mask = ~0u,
                          .modified = modified_hook};
    eng_set_hooks(E, &h);
    memset(&J, 0, sizeof J);
    return 0;
}

static int teardown(void **state)
{
    eng_free(E);
    E = NULL;
    assert_int_equal(alloc_used(), mem_base);
    return 0;
}

/* Locks exactly the shards of the given keys (NULL-terminated), as the
 * dispatcher does: the engine asserts on any key outside them. */
static void lock_keys(struct eng_ctx *c, int db, ...)
{
    struct eng_str keys[8];
    int n = 0;
    va_list ap;
    va_start(ap, db);
    for (const char *k; (k = va_arg(ap, const char *)) != NULL && n < 8;)
        keys[n++] = (struct eng_str){k, strlen(k)};
    va_end(ap);
    eng_ctx_init(c, E, db);
    eng_lock_keys(c, keys, n);
    for (int i = 0; i < n; i++)
        assert_true(eng_holds(c, keys[i].p, keys[i].n));
}

static void begin_all(struct eng_ctx *c, int db)
{
    eng_ctx_init(c, E, db);
    eng_lock_all(c);
}

static void put(int db, const char *k, const char *v)
{
    struct eng_ctx c;
    lock_keys(&c, db, k, NULL);
    assert_int_equal(eng_set(&c, S(k), S(v), 0, 0, NULL, NULL), 1);
    eng_unlock(&c);
}

static void put_ttl(int db, const char *k, const char *v, int64_t when)
{
    struct eng_ctx c;
    lock_keys(&c, db, k, NULL);
    assert_int_equal(eng_set(&c, S(k), S(v), 0, when, NULL, NULL), 1);
    eng_unlock(&c);
}

/* The value of k in db, or NULL; copied to a static buffer. */
static const char *get(int db, const char *k)
{
    static char out[256];
    struct eng_ctx c;
    struct eng_val v;
    lock_keys(&c, db, k, NULL);
    int rc = eng_get(&c, S(k), &v);
    if (rc == 0)
        snprintf(out, sizeof out, "%.*s", (int)v.n, v.p);
    eng_unlock(&c);
    assert_true(rc == 0 || rc == ERR_NOKEY);
    return rc == 0 ? out : NULL;
}

/* Private access: the key's block, under a lock held by c. */
static struct eng_key *raw_find(struct eng_ctx *c, const char *k)
{
    return eng__find(eng__db(c, S(k)), S(k), eng__hash(S(k)));
}

/* Gives k an expiry in the past without deleting it (eng_expire_at would),
 * so that only a later access or the cron finds it due. */
static void expire_in_past(int db, const char *k)
{
    struct eng_ctx c;
    lock_keys(&c, db, k, NULL);
    struct eng_key *key = raw_find(&c, k);
    assert_non_null(key);
    eng__set_expire(&c, key, c.now_ms - 1000);
    eng_unlock(&c);
}

static uint64_t db_expires(int db)
{
    struct eng_db_info di;
    eng_db_info(E, db, &di);
    return di.expires;
}

/* ---- shards and locks --------------------------------------------------- */

static void test_shard_choice(void **state)
{
    int a = eng_shard_of(E, S("{user1}.a")), b = eng_shard_of(E, S("{user1}.b"));
    assert_int_equal(a, b);
    assert_int_equal(a, eng_shard_of(E, S("user1"))); /* the tag is hashed alone */
    assert_int_equal(a, eng_shard_of(E, S("x{user1}y{other}")));
    /* Empty tag, or no closing brace: the whole key. */
    int differ = 0;
    for (int i = 0; i < 16; i++) {
        char k1[32], k2[32];
        snprintf(k1, sizeof k1, "{}%d", i);
        snprintf(k2, sizeof k2, "{}%d", i + 100);
        differ += eng_shard_of(E, S(k1)) != eng_shard_of(E, S(k2));
        snprintf(k1, sizeof k1, "{abc%d", i);
        assert_int_equal(eng_shard_of(E, S(k1)), eng_shard_of(E, k1, strlen(k1)));
    }
    assert_true(differ > 0);
    assert_int_equal(eng_shard_of(E, S("foo{}{bar}")), eng_shard_of(E, S("foo{}{bar}")));
    assert_int_equal(eng_shard_of(E, S("{{bar}}")), eng_shard_of(E, S("{bar")));

    /* Untagged keys spread evenly. */
    enum { N = 20000 };
    int count[NSHARDS] = {0};
    for (int i = 0; i < N; i++) {
        char k[32];
        snprintf(k, sizeof k, "key:%d", i);
        int s = eng_shard_of(E, S(k));
        assert_true(s >= 0 && s < NSHARDS);
        count[s]++;
    }
    for (int s = 0; s < NSHARDS; s++)
        assert_true(count[s] > N / NSHARDS * 9 / 10 && count[s] < N / NSHARDS * 11 / 10);

    /* One shard: always 0. */
    struct eng_config cfg = {.nshards = 1, .ndb = 1};
    struct eng *one = eng_new(&cfg);
    assert_int_equal(eng_shard_of(one, S("anything")), 0);
    eng_free(one);
    /* Bad configurations. */
    cfg.nshards = 0;
    assert_null(eng_new(&cfg));
    cfg.nshards = ENG_MAX_SHARDS + 1;
    assert_null(eng_new(&cfg));
    cfg.nshards = 2, cfg.ndb = 0;
    assert_null(eng_new(&cfg));
}

static void test_locks(void **state)
{
    struct eng_ctx c;
    /* Keys of two different shards. */
    const char *k1 = "a", *k2 = NULL;
    char buf[16];
    for (int i = 0; !k2; i++) {
        snprintf(buf, sizeof buf, "b%d", i);
        if (eng_shard_of(E, S(buf)) != eng_shard_of(E, S(k1)))
            k2 = buf;
    }
    lock_keys(&c, 0, k1, NULL);
    assert_int_equal(c.nlocked, 1);
    assert_true(eng_holds(&c, S(k1)));
    assert_false(eng_holds(&c, S(k2)));
    eng_unlock(&c);
    assert_int_equal(c.nlocked, 0);
    assert_false(eng_holds(&c, S(k1)));
    lock_keys(&c, 0, k1, k2, k1, NULL);
    assert_int_equal(c.nlocked, 2);
    eng_unlock(&c);
    lock_keys(&c, 0, NULL);
    assert_int_equal(c.nlocked, 0);
    eng_unlock(&c);
    begin_all(&c, 0);
    assert_int_equal(c.nlocked, NSHARDS);
    eng_unlock(&c);
    eng_lock_shard(&c, 2);
    assert_int_equal(c.nlocked, 1);
    eng_unlock(&c);

    /* Normal use touches only locked shards (the engine asserts otherwise):
     * a rename and a copy across two shards with just their locks. */
    put(0, k1, "v");
    lock_keys(&c, 0, k1, k2, NULL);
    assert_int_equal(eng_rename(&c, S(k1), S(k2), 0), 1);
    assert_int_equal(eng_copy(&c, S(k2), S(k1), 0, 0), 1);
    assert_int_equal(eng_exists(&c, S(k1)), 1);
    eng_unlock(&c);
    /* A second context can take the same shards afterwards (all released). */
    begin_all(&c, 0);
    eng_unlock(&c);
}

/* ---- key commands ------------------------------------------------------- */

static void test_del_exists_type(void **state)
{
    struct eng_ctx c;
    put(0, "k", "v");
    lock_keys(&c, 0, "k", "none", NULL);
    assert_int_equal(eng_exists(&c, S("k")), 1);
    assert_int_equal(eng_type(&c, S("k")), ENG_T_STRING);
    assert_string_equal(eng_type_name(eng_type(&c, S("k"))), "string");
    assert_int_equal(eng_type(&c, S("none")), -1);
    assert_string_equal(eng_type_name(-1), "none");
    jtake();
    assert_int_equal(eng_del(&c, S("k")), 1);
    JOURNAL("0:DEL k");
    assert_string_equal(J.last_event, "del");
    assert_int_equal(eng_del(&c, S("k")), 0);
    JOURNAL("");
    assert_int_equal(eng_exists(&c, S("k")), 0);
    eng_unlock(&c);
    /* Databases are separate. */
    put(1, "k", "one");
    assert_null(get(0, "k"));
    assert_string_equal(get(1, "k"), "one");
    /* DEL removes the expiry with the key. */
    lock_keys(&c, 1, "k", NULL);
    assert_int_equal(eng_expire_at(&c, S("k"), c.now_ms + 10000, 0), 1);
    eng_unlock(&c);
    assert_int_equal(db_expires(1), 1);
    lock_keys(&c, 1, "k", NULL);
    assert_int_equal(eng_del(&c, S("k")), 1);
    eng_unlock(&c);
    assert_int_equal(db_expires(1), 0);
}

/* Finds two keys on different shards: prefix + number. */
static void two_shards(char *a, char *b, const char *pa, const char *pb)
{
    for (int i = 0;; i++) {
        sprintf(a, "%s%d", pa, i);
        sprintf(b, "%s%d", pb, i);
        if (eng_shard_of(E, S(a)) != eng_shard_of(E, S(b)))
            return;
    }
}

static void test_rename(void **state)
{
    struct eng_ctx c;
    char src[32], dst[32];
    two_shards(src, dst, "src", "dst");
    /* A raw value (its own block) must move, not be copied. */
    const char *big = "a value longer than forty-four bytes, so it is raw";
    int64_t when = 0;
    put(0, src, big);
    lock_keys(&c, 0, src, dst, NULL);
    when = c.now_ms + 60000;
    assert_int_equal(eng_expire_at(&c, S(src), when, 0), 1);
    void *block = raw_find(&c, src)->v.p;
    jtake();
    assert_int_equal(eng_rename(&c, S(src), S(dst), 0), 1);
    char want[256];
    snprintf(want, sizeof want, "0:RENAME %s %s", src, dst);
    JOURNAL(want);
    assert_string_equal(J.last_event, "rename_to");
    assert_ptr_equal(raw_find(&c, dst)->v.p, block);
    assert_int_equal(eng_exists(&c, S(src)), 0);
    assert_int_equal(eng_pexpiretime(&c, S(dst)), when);
    eng_unlock(&c);
    assert_string_equal(get(0, dst), big);
    assert_int_equal(db_expires(0), 1);

    /* Over an existing key (its own TTL goes), embstr and int values. */
    put(0, src, "small");
    lock_keys(&c, 0, src, dst, NULL);
    assert_int_equal(eng_rename(&c, S(src), S(dst), 1), 0); /* NX: dst exists */
    assert_int_equal(eng_rename(&c, S(src), S(dst), 0), 1);
    assert_int_equal(eng_pttl(&c, S(dst)), -1);
    eng_unlock(&c);
    assert_string_equal(get(0, dst), "small");
    assert_int_equal(db_expires(0), 0);
    put(0, src, "12345");
    lock_keys(&c, 0, src, dst, NULL);
    jtake();
    assert_int_equal(eng_rename(&c, S(dst), S(src), 0), 1);
    assert_int_equal(eng_rename(&c, S(src), S(dst), 1), 1); /* NX: dst gone */
    snprintf(want, sizeof want, "0:RENAME %s %s | 0:RENAMENX %s %s", dst, src, src, dst);
    JOURNAL(want);
    /* Same name: OK for RENAME, 0 for RENAMENX; missing source. */
    assert_int_equal(eng_rename(&c, S(dst), S(dst), 0), 1);
    assert_int_equal(eng_rename(&c, S(dst), S(dst), 1), 0);
    assert_int_equal(eng_rename(&c, S(src), S(dst), 0), ERR_NOKEY);
    JOURNAL("");
    eng_unlock(&c);
    assert_string_equal(get(0, dst), "small");
    assert_int_equal(eng_dbsize(E, 0), 1);
}

static void test_copy(void **state)
{
    struct eng_ctx c;
    char src[32], dst[32];
    two_shards(src, dst, "s", "d");
    put(0, src, "a value longer than forty-four bytes, so it is raw");
    lock_keys(&c, 0, src, dst, NULL);
    int64_t when = c.now_ms + 60000;
    assert_int_equal(eng_expire_at(&c, S(src), when, 0), 1);
    jtake();
    assert_int_equal(eng_copy(&c, S(src), S(dst), 0, 0), 1);
    char want[256];
    snprintf(want, sizeof want, "0:COPY %s %s DB 0", src, dst);
    JOURNAL(want);
    assert_string_equal(J.last_event, "copy_to");
    assert_int_equal(eng_pexpiretime(&c, S(dst)), when);
    /* Deep: changing the source leaves the copy alone. */
    assert_true(raw_find(&c, src)->v.p != raw_find(&c, dst)->v.p);
    int64_t n;
    assert_int_equal(eng_append(&c, S(src), S("!"), 1000, &n), 0);
    assert_int_equal(eng_setrange(&c, S(src), 0, S("A"), 1000, &n), 0);
    /* Exists, no REPLACE: 0; REPLACE: 1. */
    assert_int_equal(eng_copy(&c, S(src), S(dst), 0, 0), 0);
    eng_unlock(&c);
    assert_string_equal(get(0, dst), "a value longer than forty-four bytes, so it is raw");
    lock_keys(&c, 0, src, dst, NULL);
    assert_int_equal(eng_copy(&c, S(src), S(dst), 0, 1), 1);
    eng_unlock(&c);
    assert_string_equal(get(0, dst), "A value longer than forty-four bytes, so it is raw!");

    /* Another db; embstr and int values; same name in another db is fine. */
    put(0, "e", "embedded");
    put(0, "i", "42");
    lock_keys(&c, 0, "e", "i", "j", NULL);
    jtake();
    assert_int_equal(eng_copy(&c, S("e"), S("e"), 3, 0), 1);
    assert_int_equal(eng_copy(&c, S("i"), S("j"), 3, 0), 1);
    JOURNAL("0:COPY e e DB 3 | 0:COPY i j DB 3");
    assert_int_equal(eng_copy(&c, S("e"), S("e"), 0, 1), 0); /* same key, same db */
    assert_int_equal(eng_copy(&c, S("nope"), S("x"), 3, 1), 0);
    eng_unlock(&c);
    assert_int_equal(c.db, 0);
    assert_string_equal(get(3, "e"), "embedded");
    assert_string_equal(get(3, "j"), "42");
    assert_null(get(0, "j"));
    put(0, "e", "changed");
    assert_string_equal(get(3, "e"), "embedded");
    lock_keys(&c, 0, "e", NULL);
    jtake();
    assert_int_equal(eng_copy(&c, S("e"), S("e"), 3, 1), 1);
    JOURNAL("0:COPY e e DB 3 REPLACE");
    eng_unlock(&c);
    assert_string_equal(get(3, "e"), "changed");
    assert_int_equal(eng_dbsize(E, 3), 2);
}

static void test_expire_flags(void **state)
{
    struct eng_ctx c;
    put(0, "k", "v");
    jtake();
    lock_keys(&c, 0, "k", "none", NULL);
    int64_t now = c.now_ms, t = now + 10000;
    char want[256];
    assert_int_equal(eng_expire_at(&c, S("none"), t, 0), 0);
    /* No TTL yet: XX and GT refuse (no TTL counts as infinite), NX and LT set. */
    assert_int_equal(eng_expire_at(&c, S("k"), t, ENG_EXP_XX), 0);
    assert_int_equal(eng_expire_at(&c, S("k"), t, ENG_EXP_GT), 0);
    assert_int_equal(eng_pttl(&c, S("k")), -1);
    JOURNAL("");
    assert_int_equal(eng_expire_at(&c, S("k"), t, ENG_EXP_NX), 1);
    snprintf(want, sizeof want, "0:PEXPIREAT k %" PRId64, t);
    JOURNAL(want);
    assert_string_equal(J.last_event, "expire");
    assert_int_equal(eng_pttl(&c, S("k")), 10000);
    assert_int_equal(eng_expire_at(&c, S("k"), t + 1, ENG_EXP_NX), 0);
    assert_int_equal(eng_persist(&c, S("k")), 1);
    assert_int_equal(eng_expire_at(&c, S("k"), t, ENG_EXP_LT), 1);
    /* With a TTL: XX sets; GT only later; LT only earlier. */
    assert_int_equal(eng_expire_at(&c, S("k"), t + 5, ENG_EXP_XX), 1);
    assert_int_equal(eng_expire_at(&c, S("k"), t + 5, ENG_EXP_GT), 0);
    assert_int_equal(eng_expire_at(&c, S("k"), t + 4, ENG_EXP_GT), 0);
    assert_int_equal(eng_expire_at(&c, S("k"), t + 6, ENG_EXP_GT), 1);
    assert_int_equal(eng_expire_at(&c, S("k"), t + 6, ENG_EXP_LT), 0);
    assert_int_equal(eng_expire_at(&c, S("k"), t + 7, ENG_EXP_LT), 0);
    assert_int_equal(eng_expire_at(&c, S("k"), t + 2, ENG_EXP_LT | ENG_EXP_XX), 1);
    assert_int_equal(eng_pexpiretime(&c, S("k")), t + 2);
    assert_int_equal(eng_pexpiretime(&c, S("none")), -2);
    jtake();
    /* PERSIST. */
    assert_int_equal(eng_persist(&c, S("k")), 1);
    JOURNAL("0:PERSIST k");
    assert_string_equal(J.last_event, "persist");
    assert_int_equal(eng_persist(&c, S("k")), 0);
    assert_int_equal(eng_persist(&c, S("none")), 0);
    assert_int_equal(eng_pttl(&c, S("k")), -1);
    assert_int_equal(eng_pexpiretime(&c, S("k")), -1);
    JOURNAL("");
    /* A flag that refuses wins over a past time: the key stays. */
    assert_int_equal(eng_expire_at(&c, S("k"), now - 1, ENG_EXP_GT), 0);
    assert_int_equal(eng_exists(&c, S("k")), 1);
    /* A time not after now deletes, journaled as DEL. */
    assert_int_equal(eng_expire_at(&c, S("k"), now, 0), 1);
    JOURNAL("0:DEL k");
    assert_string_equal(J.last_event, "del");
    assert_int_equal(eng_exists(&c, S("k")), 0);
    eng_unlock(&c);
    assert_int_equal(db_expires(0), 0);

    /* A replica keeps such a key with the past expiry (the master's DEL will
     * follow) and reports it gone meanwhile. */
    eng_set_replica(E, 1);
    put(0, "r", "v");
    jtake();
    lock_keys(&c, 0, "r", NULL);
    assert_int_equal(eng_expire_at(&c, S("r"), c.now_ms - 5, 0), 1);
    assert_int_equal(eng_exists(&c, S("r")), 0);
    assert_int_equal(eng_pttl(&c, S("r")), -2);
    /* ...until the master's DEL, which a write lookup sees through. */
    assert_int_equal(eng_del(&c, S("r")), 1);
    eng_unlock(&c);
    assert_int_equal(eng_dbsize(E, 0), 0);
    eng_set_replica(E, 0);
}

static void test_lazy_expiry(void **state)
{
    struct eng_ctx c;
    eng_stats_reset(E);
    lock_keys(&c, 0, "k", NULL);
    int64_t now = c.now_ms;
    assert_int_equal(eng_set(&c, S("k"), S("v"), 0, now + 1, NULL, NULL), 1);
    eng_unlock(&c);
    jtake();
    /* Still there at now (the context's clock, fixed per command). */
    lock_keys(&c, 0, "k", NULL);
    c.now_ms = now;
    assert_int_equal(eng_pttl(&c, S("k")), 1);
    /* A later context: gone on access. */
    c.now_ms = now + 1;
    assert_int_equal(eng_exists(&c, S("k")), 0);
    JOURNAL("0:DEL k");
    assert_string_equal(J.last_event, "expired");
    assert_int_equal(eng_pttl(&c, S("k")), -2);
    eng_unlock(&c);
    assert_int_equal(eng_dbsize(E, 0), 0);
    assert_int_equal(db_expires(0), 0);
    struct eng_stats st;
    eng_stats(E, &st);
    assert_int_equal(st.expired, 1);

    /* A write finds it dead too: SET NX creates it anew. */
    put(0, "j", "v");
    expire_in_past(0, "j");
    lock_keys(&c, 0, "j", NULL);
    jtake();
    assert_int_equal(eng_set(&c, S("j"), S("w"), ENG_SET_NX, 0, NULL, NULL), 1);
    JOURNAL("0:DEL j | 0:SET j w");
    assert_int_equal(eng_pttl(&c, S("j")), -1);
    eng_unlock(&c);
}

/* ---- active expiry -------------------------------------------------------- */

static void test_active_expiry(void **state)
{
    enum { DUE = 600, LATER = 300, PLAIN = 200 };
    char k[32];
    struct eng_ctx c;
    begin_all(&c, 0);
    int64_t far = c.now_ms + 3600 * 1000;
    eng_unlock(&c);
    for (int i = 0; i < DUE; i++) {
        snprintf(k, sizeof k, "due:%d", i);
        put_ttl(i % 2 ? 0 : 5, k, "v", far);
        expire_in_past(i % 2 ? 0 : 5, k);
    }
    for (int i = 0; i < LATER; i++) {
        snprintf(k, sizeof k, "later:%d", i);
        put_ttl(0, k, "v", far);
    }
    for (int i = 0; i < PLAIN; i++) {
        snprintf(k, sizeof k, "plain:%d", i);
        put(0, k, "v");
    }
    eng_stats_reset(E);
    memset(&J, 0, sizeof J);
    /* Nobody touches the keys: the cron alone must reclaim every due key,
     * within a bounded number of calls, and nothing else. */
    int rounds = 0;
    while (eng_dbsize(E, 0) + eng_dbsize(E, 5) > LATER + PLAIN) {
        for (int s = 0; s < NSHARDS; s++)
            eng_cron_shard(E, s, 1000000);
        assert_true(++rounds < 200);
    }
    assert_int_equal(eng_dbsize(E, 0), LATER + PLAIN);
    assert_int_equal(eng_dbsize(E, 5), 0);
    assert_int_equal(db_expires(0), LATER);
    struct eng_stats st;
    eng_stats(E, &st);
    assert_int_equal(st.expired, DUE);
    assert_int_equal(J.total, DUE); /* one DEL each */
    assert_int_equal(J.ev_count[0], DUE);
    assert_int_equal(strncmp(J.line[0] + 2, "DEL due:", 8), 0);
    struct eng_db_info di;
    eng_db_info(E, 0, &di);
    assert_true(di.avg_ttl_ms > 0);

    /* Disabled, or on a replica: nothing is reclaimed. */
    for (int i = 0; i < 10; i++) {
        snprintf(k, sizeof k, "due:%d", i);
        put(0, k, "v");
        expire_in_past(0, k);
    }
    eng_set_active_expire(E, 0);
    for (int s = 0; s < NSHARDS; s++)
        eng_cron_shard(E, s, 1000000);
    eng_set_active_expire(E, 1);
    eng_set_replica(E, 1);
    for (int s = 0; s < NSHARDS; s++)
        eng_cron_shard(E, s, 1000000);
    eng_set_replica(E, 0);
    assert_int_equal(eng_dbsize(E, 0), LATER + PLAIN + 10);
    /* Enabled again: a few due keys among many volatile ones go over several
     * cycles (each stops when under 10% of its sample was due, as Redis's). */
    for (rounds = 0; eng_dbsize(E, 0) > LATER + PLAIN; rounds++) {
        for (int s = 0; s < NSHARDS; s++)
            eng_cron_shard(E, s, 1000000);
        assert_true(rounds < 200);
    }
}

/* The cron also shrinks tables left sparse by deletions. */
static void test_cron_shrinks(void **state)
{
    char k[32];
    struct eng_ctx c;
    for (int i = 0; i < 2000; i++) {
        snprintf(k, sizeof k, "k%d", i);
        put(0, k, "v");
    }
    size_t before = 0, after = 0;
    begin_all(&c, 0);
    for (int s = 0; s < NSHARDS; s++)
        before += dict_table_bytes(&E->shards[s].dbs[0].keys);
    for (int i = 10; i < 2000; i++) {
        snprintf(k, sizeof k, "k%d", i);
        assert_int_equal(eng_del(&c, S(k)), 1);
    }
    eng_unlock(&c);
    for (int round = 0; round < 50; round++)
        for (int s = 0; s < NSHARDS; s++)
            eng_cron_shard(E, s, 1000000);
    for (int s = 0; s < NSHARDS; s++)
        after += dict_table_bytes(&E->shards[s].dbs[0].keys);
    assert_true(after * 8 < before);
    for (int i = 0; i < 10; i++) {
        snprintf(k, sizeof k, "k%d", i);
        assert_string_equal(get(0, k), "v");
    }
}

/* ---- iteration ------------------------------------------------------------ */

struct seen {
    int n;
    unsigned char mark[8192];
};

/* Keys are "k<num>"; anything else is counted under 8191. */
static void mark_key(void *ud, const char *k, size_t kl)
{
    struct seen *s = ud;
    char tmp[32];
    snprintf(tmp, sizeof tmp, "%.*s", (int)kl, k);
    int i = tmp[0] == 'k' ? atoi(tmp + 1) : 8191;
    assert_true(i >= 0 && i < 8192);
    if (s->mark[i] < 255)
        s->mark[i]++;
    s->n++;
}

static void test_scan(void **state)
{
    enum { INITIAL = 1500, MAX = 8000 };
    char k[32];
    for (int i = 0; i < INITIAL; i++) {
        snprintf(k, sizeof k, "k%d", i);
        put(0, k, "v");
    }
    put(1, "k8190", "other db");
    struct seen *s = calloc(1, sizeof *s);
    uint64_t cur = 0;
    int calls = 0, next = INITIAL, shards_seen = 0, last_shard = -1;
    do {
        cur = eng_scan(E, 0, cur, NULL, 0, -1, 10, mark_key, s);
        calls++;
        if (cur && (int)(cur & 0xFF) != last_shard)
            shards_seen++, last_shard = (int)(cur & 0xFF);
        /* Between calls: add keys (tables grow and rehash), delete some of
         * the added ones. */
        for (int j = 0; j < 8 && next < MAX; j++) {
            snprintf(k, sizeof k, "k%d", next++);
            put(0, k, "v");
        }
        if (next % 3 == 0) {
            snprintf(k, sizeof k, "k%d", next - 5);
            struct eng_ctx c;
            lock_keys(&c, 0, k, NULL);
            eng_del(&c, S(k));
            eng_unlock(&c);
        }
        assert_true(calls < 100000);
    } while (cur);
    for (int i = 0; i < INITIAL; i++)
        if (!s->mark[i])
            fail_msg("k%d, present throughout, missed by SCAN (%d calls)", i, calls);
    assert_int_equal(s->mark[8190], 0); /* another db */
    assert_true(shards_seen >= NSHARDS - 1);

    /* A pattern, and a type filter. */
    memset(s, 0, sizeof *s);
    cur = 0;
    do
        cur = eng_scan(E, 0, cur, S("k1?"), -1, 100, mark_key, s);
    while (cur);
    assert_int_equal(s->n, 10);
    for (int i = 10; i < 20; i++)
        assert_int_equal(s->mark[i], 1); /* no change during this scan: once each */
    memset(s, 0, sizeof *s);
    cur = 0;
    do
        cur = eng_scan(E, 0, cur, S("*"), ENG_T_HASH, 100, mark_key, s);
    while (cur);
    assert_int_equal(s->n, 0);
    /* A stale cursor naming a shard that does not exist ends the scan. */
    assert_int_equal(eng_scan(E, 0, 0xFF, NULL, 0, -1, 10, mark_key, s), 0);
    /* An empty db. */
    assert_int_equal(eng_scan(E, 7, 0, NULL, 0, -1, 10, mark_key, s), 0);
    assert_int_equal(s->n, 0);
    free(s);
}

/* Another thread holding one shard until told to let go. */
struct holder {
    int shard;
    pthread_barrier_t locked, release;
};

static void *hold_shard(void *arg)
{
    struct holder *h = arg;
    struct eng_ctx c;
    eng_ctx_init(&c, E, 0);
    eng_lock_shard(&c, h->shard);
    pthread_barrier_wait(&h->locked);
    pthread_barrier_wait(&h->release);
    eng_unlock(&c);
    return NULL;
}

static void test_scan_nowait(void **state)
{
    enum { N = 400 };
    char k[32];
    int per_shard[NSHARDS] = {0};
    for (int i = 0; i < N; i++) {
        snprintf(k, sizeof k, "k%d", i);
        put(0, k, "v");
        per_shard[eng_shard_of(E, k, strlen(k))]++;
    }
    struct holder h = {.shard = 2};
    pthread_barrier_init(&h.locked, NULL, 2);
    pthread_barrier_init(&h.release, NULL, 2);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, hold_shard, &h), 0);
    pthread_barrier_wait(&h.locked);
    /* trylock: the held shard is refused at once, another is taken */
    struct eng_ctx c;
    eng_ctx_init(&c, E, 0);
    assert_int_equal(eng_trylock_shard(&c, 2), -1);
    assert_int_equal(c.nlocked, 0);
    assert_int_equal(eng_trylock_shard(&c, 1), 0);
    assert_true(eng__held(E, 1));
    eng_unlock(&c);
    assert_false(eng__held(E, 1));
    /* the scan stops at the held shard (busy), and stays there */
    struct seen *s = calloc(1, sizeof *s);
    uint64_t cur = 0;
    int busy = 0, calls = 0;
    do {
        cur = eng_scan_nowait(E, 0, cur, NULL, 0, -1, 1000, mark_key, s, &busy);
        assert_true(++calls < 100);
    } while (cur && !busy);
    assert_true(busy);
    assert_int_equal((int)(cur & 0xFF), 2);
    assert_int_equal(s->n, per_shard[0] + per_shard[1]);
    assert_int_equal(eng_scan_nowait(E, 0, cur, NULL, 0, -1, 1000, mark_key, s, &busy), cur);
    assert_true(busy);
    /* let go: the scan resumes where it stopped and sees every key once */
    pthread_barrier_wait(&h.release);
    pthread_join(th, NULL);
    do {
        cur = eng_scan_nowait(E, 0, cur, NULL, 0, -1, 1000, mark_key, s, &busy);
        assert_false(busy);
        assert_true(++calls < 200);
    } while (cur);
    assert_int_equal(s->n, N);
    for (int i = 0; i < N; i++)
        assert_int_equal(s->mark[i], 1);
    /* held from the start: busy with cursor 0, which resumes from the start */
    h.shard = 0;
    assert_int_equal(pthread_create(&th, NULL, hold_shard, &h), 0);
    pthread_barrier_wait(&h.locked);
    assert_int_equal(eng_scan_nowait(E, 0, 0, NULL, 0, -1, 1000, mark_key, s, &busy), 0);
    assert_true(busy);
    pthread_barrier_wait(&h.release);
    pthread_join(th, NULL);
    pthread_barrier_destroy(&h.locked);
    pthread_barrier_destroy(&h.release);
    free(s);
}

static void test_keys_randomkey_dbsize(void **state)
{
    struct eng_ctx c;
    char k[32];
    for (int i = 0; i < 30; i++) {
        snprintf(k, sizeof k, "k%d", i);
        put(2, k, "v");
    }
    put(2, "other", "v");
    assert_int_equal(eng_dbsize(E, 2), 31);
    assert_int_equal(eng_dbsize(E, 0), 0);
    struct seen *s = calloc(1, sizeof *s);
    begin_all(&c, 2);
    eng_keys(&c, S("k2*"), mark_key, s);
    assert_int_equal(s->n, 11); /* k2, k20..k29 */
    memset(s, 0, sizeof *s);
    eng_keys(&c, S("*"), mark_key, s);
    assert_int_equal(s->n, 31);
    assert_int_equal(s->mark[8191], 1);
    eng_unlock(&c);
    /* A dead key is not listed. */
    expire_in_past(2, "k29");
    memset(s, 0, sizeof *s);
    begin_all(&c, 2);
    eng_keys(&c, S("k2*"), mark_key, s);
    eng_unlock(&c);
    assert_int_equal(s->n, 10);
    assert_int_equal(s->mark[29], 0);

    /* RANDOMKEY: members only, every one eventually, never the dead one. */
    memset(s, 0, sizeof *s);
    for (int i = 0; i < 3000; i++) {
        struct buf out = BUF_INIT;
        assert_int_equal(eng_randomkey(E, 2, &out), 1);
        mark_key(s, out.p, out.len);
        buf_release(&out);
    }
    for (int i = 0; i < 29; i++)
        assert_true(s->mark[i] > 0);
    assert_int_equal(s->mark[29], 0);
    assert_true(s->mark[8191] > 0);
    struct buf out = BUF_INIT;
    assert_int_equal(eng_randomkey(E, 0, &out), 0);
    assert_int_equal(out.len, 0);
    /* Only dead keys: none. */
    put(4, "gone", "v");
    expire_in_past(4, "gone");
    assert_int_equal(eng_randomkey(E, 4, &out), 0);
    buf_release(&out);
    free(s);
}

static void test_flush(void **state)
{
    struct eng_ctx c;
    char k[32];
    for (int i = 0; i < 100; i++) {
        snprintf(k, sizeof k, "k%d", i);
        put(0, k, "v");
        put_ttl(1, k, "v", INT64_MAX / 2);
    }
    memset(&J, 0, sizeof J);
    begin_all(&c, 0);
    eng_flush(&c, 0);
    eng_unlock(&c);
    JOURNAL("0:FLUSHDB");
    assert_int_equal(J.modified_all, 1);
    assert_int_equal(eng_dbsize(E, 0), 0);
    assert_int_equal(eng_dbsize(E, 1), 100);
    assert_int_equal(db_expires(1), 100);
    /* The db is usable after. */
    put(0, "k1", "again");
    assert_string_equal(get(0, "k1"), "again");
    jtake();
    begin_all(&c, 3);
    eng_flush(&c, -1);
    eng_unlock(&c);
    JOURNAL("0:FLUSHALL");
    for (int d = 0; d < 16; d++)
        assert_int_equal(eng_dbsize(E, d), 0);
    assert_int_equal(db_expires(1), 0);
    assert_true(eng_dirty(E) >= 200);
}

/* ---- statistics and introspection ---------------------------------------- */

static void test_stats(void **state)
{
    struct eng_ctx c;
    put(0, "k", "v");
    eng_stats_reset(E);
    struct eng_stats st;
    lock_keys(&c, 0, "k", "none", NULL);
    struct eng_val v;
    assert_int_equal(eng_get(&c, S("k"), &v), 0);
    assert_int_equal(eng_get(&c, S("none"), &v), ERR_NOKEY);
    /* Reads count as in Redis: EXISTS, TYPE, TTL, OBJECT, STRLEN too... */
    assert_int_equal(eng_exists(&c, S("k")), 1);
    assert_int_equal(eng_type(&c, S("none")), -1);
    assert_int_equal(eng_pttl(&c, S("k")), -1);
    assert_non_null(eng_object_encoding(&c, S("k")));
    /* ...writes do not. */
    assert_int_equal(eng_expire_at(&c, S("k"), c.now_ms + 1000, 0), 1);
    assert_int_equal(eng_persist(&c, S("k")), 1);
    assert_int_equal(eng_del(&c, S("none")), 0);
    eng_unlock(&c);
    eng_stats(E, &st);
    assert_int_equal(st.hits, 4);
    assert_int_equal(st.misses, 2);
    assert_true(st.changes >= 3);
    eng_stats_reset(E);
    eng_stats(E, &st);
    assert_int_equal(st.hits + st.misses + st.expired + st.evicted, 0);
    uint64_t d = eng_dirty(E);
    eng_dirty_sub(E, d);
    assert_int_equal(eng_dirty(E), 0);
}

static void test_idle_and_memory(void **state)
{
    struct eng_ctx c;
    put(0, "k", "a value longer than forty-four bytes, so it is raw");
    lock_keys(&c, 0, "k", "none", NULL);
    struct eng_key *key = raw_find(&c, "k");
    key->lru = (eng__lru_clock(c.now_ms) - 100) & 0xFFFFFF; /* idle for 100 s */
    assert_int_equal(eng_object_idletime(&c, S("k")), 100);
    /* TYPE, EXISTS, TTL, OBJECT leave the idle time (Redis's NOTOUCH)... */
    eng_type(&c, S("k"));
    eng_exists(&c, S("k"));
    eng_pttl(&c, S("k"));
    eng_object_encoding(&c, S("k"));
    assert_int_equal(eng_object_idletime(&c, S("k")), 100);
    /* ...GET and TOUCH reset it. */
    assert_int_equal(eng_touch(&c, S("k")), 1);
    assert_int_equal(eng_object_idletime(&c, S("k")), 0);
    assert_int_equal(eng_object_idletime(&c, S("none")), -1);
    int64_t m = eng_memory_usage(&c, S("k"));
    assert_true(m > 50 + 1);
    assert_int_equal(eng_memory_usage(&c, S("none")), -1);
    assert_int_equal(eng_expire_at(&c, S("k"), c.now_ms + 1000, 0), 1);
    assert_true(eng_memory_usage(&c, S("k")) > m);
    eng_unlock(&c);
}

/* ---- eviction ------------------------------------------------------------- */

/* Fills db 0 with n keys of ~100 bytes; returns the bytes they took. */
static int64_t fill(int n, const char *prefix, int64_t ttl_base)
{
    char k[32], v[100];
    memset(v, 'x', sizeof v - 1);
    v[sizeof v - 1] = '\0';
    int64_t before = alloc_used();
    for (int i = 0; i < n; i++) {
        snprintf(k, sizeof k, "%s%d", prefix, i);
        if (ttl_base)
            put_ttl(0, k, v, ttl_base + (int64_t)i * 1000);
        else
            put(0, k, v);
    }
    return alloc_used() - before;
}

static void test_evict_allkeys_lru(void **state)
{
    enum { N = 2000 };
    int64_t took = fill(N, "k", 0);
    /* Age the odd keys: LRU should prefer them. */
    struct eng_ctx c;
    begin_all(&c, 0);
    char k[32];
    for (int i = 1; i < N; i += 2) {
        snprintf(k, sizeof k, "k%d", i);
        struct eng_key *key = raw_find(&c, k);
        key->lru = (eng__lru_clock(c.now_ms) - 1000) & 0xFFFFFF;
    }
    eng_unlock(&c);
    assert_int_equal(eng_make_room(E), 0); /* no limit */
    int64_t limit = alloc_used() - took / 4;
    eng_set_maxmemory(E, limit, ENG_POLICY_ALLKEYS_LRU, 5);
    eng_stats_reset(E);
    memset(&J, 0, sizeof J);
    assert_int_equal(eng_make_room(E), 0);
    assert_true(alloc_used() <= limit);
    struct eng_stats st;
    eng_stats(E, &st);
    uint64_t left = eng_dbsize(E, 0);
    assert_int_equal(st.evicted, N - left);
    assert_true(st.evicted >= N / 5 && st.evicted <= N / 3);
    assert_int_equal(J.total, (int)st.evicted);
    assert_int_equal(J.ev_count[1], (int)st.evicted);
    assert_int_equal(strncmp(J.line[0], "0:DEL k", 7), 0);
    /* Mostly idle ones went (5 samples: 1/32 chance of no idle one). */
    int old_gone = 0;
    for (int i = 1; i < N; i += 2) {
        snprintf(k, sizeof k, "k%d", i);
        old_gone += get(0, k) == NULL;
    }
    assert_true(old_gone * 10 >= (int)st.evicted * 8);
    /* Under the limit: nothing more to do. */
    assert_int_equal(eng_make_room(E), 0);
    assert_int_equal(eng_dbsize(E, 0), left);
}

static void test_evict_noeviction(void **state)
{
    int64_t took = fill(300, "k", 0);
    eng_set_maxmemory(E, alloc_used() - took / 4, ENG_POLICY_NOEVICTION, 5);
    assert_int_equal(eng_make_room(E), ERR_OOM);
    assert_int_equal(eng_dbsize(E, 0), 300);
    /* Volatile policies with no volatile key: nothing to evict. */
    eng_set_maxmemory(E, alloc_used() - took / 4, ENG_POLICY_VOLATILE_LRU, 5);
    assert_int_equal(eng_make_room(E), ERR_OOM);
    assert_int_equal(eng_dbsize(E, 0), 300);
    /* Random: evicts until under. */
    eng_set_maxmemory(E, alloc_used() - took / 4, ENG_POLICY_ALLKEYS_RANDOM, 5);
    int64_t limit = eng_config(E)->maxmemory;
    assert_int_equal(eng_make_room(E), 0);
    assert_true(alloc_used() <= limit);
    /* Everything gone and still over: ERR_OOM. */
    eng_set_maxmemory(E, 1, ENG_POLICY_ALLKEYS_RANDOM, 5);
    assert_int_equal(eng_make_room(E), ERR_OOM);
    assert_int_equal(eng_dbsize(E, 0), 0);
}

static void test_evict_volatile_ttl(void **state)
{
    enum { N = 400 };
    struct eng_ctx c;
    begin_all(&c, 0);
    int64_t base = c.now_ms + 1000000;
    eng_unlock(&c);
    int64_t took = fill(N, "p", 0);           /* persistent */
    took += fill(N, "v", base);               /* v<i> expires at base + i s */
    int64_t limit = alloc_used() - took / 8;  /* about a quarter of the volatile keys */
    eng_set_maxmemory(E, limit, ENG_POLICY_VOLATILE_TTL, 5);
    assert_int_equal(eng_make_room(E), 0);
    assert_true(alloc_used() <= limit);
    char k[32];
    int64_t rank_sum = 0, gone = 0;
    for (int i = 0; i < N; i++) {
        snprintf(k, sizeof k, "p%d", i);
        assert_non_null(get(0, k)); /* only volatile keys go */
        snprintf(k, sizeof k, "v%d", i);
        if (!get(0, k))
            rank_sum += i, gone++;
    }
    assert_true(gone >= N / 8);
    /* The best of 5 samples has an expected rank near N/6; all keys average
     * N/2.  Nearest expiry first, statistically. */
    assert_true(rank_sum / gone < N / 3);
    struct eng_stats st;
    eng_stats(E, &st);
    assert_int_equal(st.evicted, gone);
    assert_int_equal(db_expires(0), N - gone);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_shard_choice),
        T(test_locks),
        T(test_del_exists_type),
        T(test_rename),
        T(test_copy),
        T(test_expire_flags),
        T(test_lazy_expiry),
        T(test_active_expiry),
        T(test_cron_shrinks),
        T(test_scan),
        T(test_scan_nowait),
        T(test_keys_randomkey_dbsize),
        T(test_flush),
        T(test_stats),
        T(test_idle_and_memory),
        T(test_evict_allkeys_lru),
        T(test_evict_noeviction),
        T(test_evict_volatile_ttl),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
