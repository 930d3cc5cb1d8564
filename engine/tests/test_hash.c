/* test_hash.c: engine/t_hash.c through hash.h.  HSET/HSETNX/HGET/HMGET/HDEL
 * and friends, the two encodings as OBJECT ENCODING names them (listpack up
 * to 128 fields of at most 64 bytes, hashtable beyond, for good), insertion
 * order of the compact form, HINCRBY/HINCRBYFLOAT errors and formatting,
 * HRANDFIELD (distinct, repeats), HSCAN (whole listpack at once; a full cursor
 * walk of a hashtable returns every field), type ops (COPY, MEMORY USAGE,
 * free), the journal and notifications (the key goes with its last field),
 * the memory of a small session hash, and a random test against a model whose
 * journal is replayed into a second engine (prints and accepts SEED=). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/num.h"
#include "hash.h"

#include "test_util.h"

static int64_t hset1(const char *key, const char *f, const char *v)
{
    struct eng_str fv[2] = {{S(f)}, {S(v)}};
    int64_t added = -1;
    assert_int_equal(eng_hset(&C, S(key), fv, 1, &added), 0);
    return added;
}

/* "f=v f=v ..." of HGETALL, in the hash's order (in dumped). */
static int64_t dump_count;
static void dump_head(void *ud, int64_t n) { dump_count = n; }
static void dump_pair(void *ud, const char *f, size_t fl, const char *v, size_t vl)
{
    buf_printf(&dumped, "%s%.*s=%.*s", dumped.len ? " " : "", (int)fl, f, (int)vl, v);
}
static const char *dump(const char *key)
{
    buf_reset(&dumped);
    dump_count = -1;
    assert_int_equal(eng_hgetall(&C, S(key), dump_head, dump_pair, NULL), 0);
    return dumped.p ? dumped.p : "";
}

static const char *enc(const char *key)
{
    const char *e = eng_object_encoding(&C, S(key));
    return e ? e : "none";
}

/* ---- tests ------------------------------------------------------------------ */

static void test_basic(void **state)
{
    begin();
    struct eng_str fv[6] = {{S("a")}, {S("1")}, {S("b")}, {S("2")}, {S("a")}, {S("3")}};
    int64_t n;
    assert_int_equal(eng_hset(&C, S("h"), fv, 3, &n), 0);
    assert_int_equal(n, 2); /* "a" twice counts once */
    JOURNAL("HSET h a 1 b 2 a 3");
    EVENTS("hset");
    assert_string_equal(dump("h"), "a=3 b=2");
    assert_int_equal(dump_count, 2);
    struct eng_str v;
    assert_int_equal(eng_hget(&C, S("h"), S("b"), &v), 0);
    assert_int_equal(v.n, 1);
    assert_memory_equal(v.p, "2", 1);
    assert_int_equal(eng_hget(&C, S("h"), S("zz"), &v), ERR_NOKEY);
    assert_int_equal(eng_hget(&C, S("nokey"), S("a"), &v), ERR_NOKEY);
    struct eng_str fields[3] = {{S("b")}, {S("x")}, {S("a")}}, vals[3];
    assert_int_equal(eng_hmget(&C, S("h"), fields, 3, vals), 0);
    assert_non_null(vals[0].p);
    assert_null(vals[1].p);
    assert_memory_equal(vals[2].p, "3", 1);
    assert_int_equal(eng_hmget(&C, S("nokey"), fields, 3, vals), 0);
    assert_null(vals[0].p);
    assert_int_equal(eng_hexists(&C, S("h"), S("a")), 1);
    assert_int_equal(eng_hexists(&C, S("h"), S("q")), 0);
    assert_int_equal(eng_hexists(&C, S("nokey"), S("q")), 0);
    assert_int_equal(eng_hlen(&C, S("h"), &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(eng_hlen(&C, S("nokey"), &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(eng_hstrlen(&C, S("h"), S("a"), &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(eng_hstrlen(&C, S("h"), S("x"), &n), 0);
    assert_int_equal(n, 0);
    /* HSETNX */
    assert_int_equal(eng_hsetnx(&C, S("h"), S("a"), S("9")), 0);
    JOURNAL("");
    EVENTS("");
    assert_int_equal(eng_hsetnx(&C, S("h"), S("c"), S("9")), 1);
    JOURNAL("HSET h c 9");
    EVENTS("hset");
    assert_int_equal(eng_hsetnx(&C, S("new"), S("c"), S("9")), 1);
    assert_string_equal(dump("new"), "c=9");
    JOURNAL("HSET new c 9");
    EVENTS("hset");
    /* HDEL: the key goes with its last field */
    struct eng_str del[3] = {{S("zz")}, {S("a")}, {S("b")}};
    assert_int_equal(eng_hdel(&C, S("h"), del, 3, &n), 0);
    assert_int_equal(n, 2);
    JOURNAL("HDEL h zz a b");
    EVENTS("hdel");
    assert_int_equal(eng_hdel(&C, S("h"), del, 1, &n), 0);
    assert_int_equal(n, 0);
    JOURNAL("");
    struct eng_str lastf[2] = {{S("c")}, {S("c")}};
    assert_int_equal(eng_hdel(&C, S("h"), lastf, 2, &n), 0);
    assert_int_equal(n, 1);
    JOURNAL("HDEL h c c");
    EVENTS("hdel del");
    assert_int_equal(eng_exists(&C, S("h")), 0);
    assert_string_equal(dump("h"), "");
    assert_int_equal(dump_count, 0);
    end();
}

static void test_wrongtype(void **state)
{
    begin();
    assert_int_equal(eng_set(&C, S("s"), S("v"), 0, 0, NULL, NULL), 1);
    struct eng_str fv[2] = {{S("a")}, {S("1")}}, v;
    int64_t n;
    char out[ENG_LDOUBLE_CHARS];
    size_t ol;
    uint64_t next;
    assert_int_equal(eng_hset(&C, S("s"), fv, 1, &n), ERR_WRONGTYPE);
    assert_int_equal(eng_hsetnx(&C, S("s"), S("a"), S("b")), ERR_WRONGTYPE);
    assert_int_equal(eng_hget(&C, S("s"), S("a"), &v), ERR_WRONGTYPE);
    assert_int_equal(eng_hmget(&C, S("s"), fv, 1, &v), ERR_WRONGTYPE);
    assert_int_equal(eng_hdel(&C, S("s"), fv, 1, &n), ERR_WRONGTYPE);
    assert_int_equal(eng_hexists(&C, S("s"), S("a")), ERR_WRONGTYPE);
    assert_int_equal(eng_hlen(&C, S("s"), &n), ERR_WRONGTYPE);
    assert_int_equal(eng_hstrlen(&C, S("s"), S("a"), &n), ERR_WRONGTYPE);
    assert_int_equal(eng_hgetall(&C, S("s"), dump_head, dump_pair, NULL), ERR_WRONGTYPE);
    assert_int_equal(eng_hincrby(&C, S("s"), S("a"), 1, &n), ERR_WRONGTYPE);
    assert_int_equal(eng_hincrbyfloat(&C, S("s"), S("a"), 1, out, &ol), ERR_WRONGTYPE);
    assert_int_equal(eng_hrandfield(&C, S("s"), 1, dump_head, dump_pair, NULL), ERR_WRONGTYPE);
    assert_int_equal(eng_hscan(&C, S("s"), 0, NULL, 0, 10, dump_pair, NULL, &next), ERR_WRONGTYPE);
    JOURNAL("SET s v");
    end();
}

static void test_listpack_order_and_update(void **state)
{
    begin();
    hset1("h", "x", "1");
    hset1("h", "y", "22");
    hset1("h", "z", "333");
    assert_string_equal(enc("h"), "listpack");
    assert_int_equal(hset1("h", "y", "a longer value"), 0); /* in place: keeps its rank */
    assert_string_equal(dump("h"), "x=1 y=a longer value z=333");
    assert_int_equal(hset1("h", "y", ""), 0);
    assert_string_equal(dump("h"), "x=1 y= z=333");
    struct eng_str d = {S("x")};
    int64_t n;
    assert_int_equal(eng_hdel(&C, S("h"), &d, 1, &n), 0);
    assert_int_equal(hset1("h", "x", "back"), 1);
    assert_string_equal(dump("h"), "y= z=333 x=back");
    end();
}

static void test_encodings(void **state)
{
    char f[80], v[80];
    begin();
    /* 128 fields stay compact, the 129th converts */
    for (int i = 0; i < 128; i++) {
        snprintf(f, sizeof f, "f%d", i);
        hset1("h", f, "v");
    }
    assert_string_equal(enc("h"), "listpack");
    hset1("h", "f128", "v");
    assert_string_equal(enc("h"), "hashtable");
    int64_t n;
    eng_hlen(&C, S("h"), &n);
    assert_int_equal(n, 129);
    for (int i = 0; i < 129; i++) {
        struct eng_str got;
        snprintf(f, sizeof f, "f%d", i);
        assert_int_equal(eng_hget(&C, S("h"), S(f), &got), 0);
    }
    /* deleting down does not convert back (Redis neither) */
    for (int i = 0; i < 120; i++) {
        struct eng_str d;
        snprintf(f, sizeof f, "f%d", i);
        d = (struct eng_str){f, strlen(f)};
        eng_hdel(&C, S("h"), &d, 1, &n);
    }
    assert_string_equal(enc("h"), "hashtable");
    /* 64-byte values stay compact, 65 converts; so does a 65-byte field */
    memset(v, 'v', 64), v[64] = '\0';
    hset1("l", "f", v);
    assert_string_equal(enc("l"), "listpack");
    memset(v, 'v', 65), v[65] = '\0';
    hset1("l", "g", v);
    assert_string_equal(enc("l"), "hashtable");
    assert_int_equal(strlen(dump("l")), 2 + 64 + 1 + 2 + 65);
    memset(f, 'f', 65), f[65] = '\0';
    hset1("m", f, "1");
    assert_string_equal(enc("m"), "hashtable");
    /* HINCRBY on a long field converts too (hashTypeSet checks) */
    assert_int_equal(eng_hincrby(&C, S("n"), f, 65, 1, &n), 0);
    assert_string_equal(enc("n"), "hashtable");
    /* HINCRBYFLOAT producing a long value converts */
    char out[ENG_LDOUBLE_CHARS];
    size_t ol;
    assert_int_equal(eng_hincrbyfloat(&C, S("o"), S("f"), 1e100L, out, &ol), 0);
    assert_true(ol > 64);
    assert_string_equal(enc("o"), "hashtable");
    end();
}

static void test_hincrby(void **state)
{
    begin();
    int64_t n;
    assert_int_equal(eng_hincrby(&C, S("h"), S("a"), 5, &n), 0);
    assert_int_equal(n, 5);
    assert_int_equal(eng_hincrby(&C, S("h"), S("a"), -7, &n), 0);
    assert_int_equal(n, -2);
    JOURNAL("HINCRBY h a 5 | HINCRBY h a -7");
    EVENTS("hincrby hincrby");
    hset1("h", "s", "abc");
    hset1("h", "z", "01");
    hset1("h", "max", "9223372036854775807");
    jtake(), etake();
    assert_int_equal(eng_hincrby(&C, S("h"), S("s"), 1, &n), ERR_NOTINT);
    assert_int_equal(eng_hincrby(&C, S("h"), S("z"), 1, &n), ERR_NOTINT);
    assert_int_equal(eng_hincrby(&C, S("h"), S("max"), 1, &n), ERR_OVERFLOW);
    assert_int_equal(eng_hincrby(&C, S("nokey"), S("f"), INT64_MIN, &n), 0);
    assert_int_equal(eng_hincrby(&C, S("nokey"), S("f"), -1, &n), ERR_OVERFLOW);
    JOURNAL("HINCRBY nokey f -9223372036854775808");
    EVENTS("hincrby");
    assert_string_equal(dump("h"), "a=-2 s=abc z=01 max=9223372036854775807");
    end();
}

static void test_hincrbyfloat(void **state)
{
    begin();
    char out[ENG_LDOUBLE_CHARS];
    size_t n;
    assert_int_equal(eng_hincrbyfloat(&C, S("h"), S("f"), 10.5L, out, &n), 0);
    assert_string_equal(out, "10.5");
    assert_int_equal(eng_hincrbyfloat(&C, S("h"), S("f"), 0.1L, out, &n), 0);
    assert_string_equal(out, "10.6");
    assert_int_equal(eng_hincrbyfloat(&C, S("h"), S("f"), -10.6L, out, &n), 0);
    assert_string_equal(out, "0");
    assert_int_equal(eng_hincrbyfloat(&C, S("h"), S("g"), 5e3L, out, &n), 0);
    assert_string_equal(out, "5000");
    /* replicas get the result, not the operation */
    JOURNAL("HSET h f 10.5 | HSET h f 10.6 | HSET h f 0 | HSET h g 5000");
    EVENTS("hincrbyfloat hincrbyfloat hincrbyfloat hincrbyfloat");
    hset1("h", "s", "x1");
    assert_int_equal(eng_hincrbyfloat(&C, S("h"), S("s"), 1, out, &n), ERR_NOTFLOAT);
    hset1("h", "big", "1e4932");
    assert_int_equal(eng_hincrbyfloat(&C, S("h"), S("big"), 1e4932L, out, &n), ERR_NAN);
    /* values of thousands of digits read back (longer than num.c's 512) */
    assert_int_equal(eng_hincrbyfloat(&C, S("h"), S("huge"), 1.5e4000L, out, &n), 0);
    assert_int_equal(n, 4001);
    assert_int_equal(eng_hincrbyfloat(&C, S("h"), S("huge"), 1.5e4000L, out, &n), 0);
    assert_memory_equal(out, "3000000000000000000", 19);
    end();
}

/* HRANDFIELD: collects field names in order. */
static char picked[500][16];
static int npicked;
static void pick_head(void *ud, int64_t n) { *(int64_t *)ud = n; }
static void pick_pair(void *ud, const char *f, size_t fl, const char *v, size_t vl)
{
    assert_true(fl < 16 && npicked < 500);
    memcpy(picked[npicked], f, fl);
    picked[npicked++][fl] = '\0';
    assert_int_equal(vl, fl); /* the fixtures store each field's name as its value */
    assert_memory_equal(f, v, fl);
}

static int distinct(void)
{
    for (int i = 0; i < npicked; i++)
        for (int j = 0; j < i; j++)
            if (!strcmp(picked[i], picked[j]))
                return 0;
    return 1;
}

static void check_rand(const char *key, int64_t size)
{
    int64_t counts[] = {0, 1, 2, size / 4, size / 2, size - 1, size, size + 5, -1, -5, -(size * 2)};
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
        int64_t head = -1, want = counts[i] >= 0 ? (counts[i] < size ? counts[i] : size) : -counts[i];
        npicked = 0;
        assert_int_equal(eng_hrandfield(&C, S(key), counts[i], pick_head, pick_pair, &head), 0);
        assert_int_equal(head, want);
        assert_int_equal(npicked, want);
        if (counts[i] >= 0)
            assert_true(distinct());
    }
}

static void test_hrandfield(void **state)
{
    char f[16];
    begin();
    int64_t head = -1;
    npicked = 0;
    assert_int_equal(eng_hrandfield(&C, S("nokey"), 5, pick_head, pick_pair, &head), 0);
    assert_int_equal(head, 0);
    assert_int_equal(eng_hrandfield(&C, S("nokey"), -5, pick_head, pick_pair, &head), 0);
    assert_int_equal(head, 0);
    for (int i = 0; i < 20; i++) {
        snprintf(f, sizeof f, "f%d", i);
        hset1("small", f, f);
    }
    check_rand("small", 20);
    for (int i = 0; i < 200; i++) {
        snprintf(f, sizeof f, "f%d", i);
        hset1("big", f, f);
    }
    assert_string_equal(enc("big"), "hashtable");
    jtake();
    check_rand("big", 200);
    /* every field of a small hash comes up in repeated single picks */
    int seen[20] = {0};
    for (int r = 0; r < 2000; r++) {
        npicked = 0;
        eng_hrandfield(&C, S("small"), 1, pick_head, pick_pair, &head);
        seen[atoi(picked[0] + 1)] = 1;
    }
    for (int i = 0; i < 20; i++)
        assert_true(seen[i]);
    JOURNAL(""); /* reads journal nothing */
    end();
}

static struct buf scanned;
static int nscanned;
static void scan_pair(void *ud, const char *f, size_t fl, const char *v, size_t vl)
{
    buf_append(&scanned, f, fl);
    buf_append(&scanned, ",", 1);
    nscanned++;
}

static void test_hscan(void **state)
{
    char f[16];
    uint64_t next = 99;
    begin();
    assert_int_equal(eng_hscan(&C, S("nokey"), 0, NULL, 0, 10, scan_pair, NULL, &next), 0);
    assert_int_equal(next, 0);
    for (int i = 0; i < 50; i++) {
        snprintf(f, sizeof f, "f%d", i);
        hset1("small", f, "v");
    }
    /* compact: everything in one call, whatever COUNT says */
    nscanned = 0;
    assert_int_equal(eng_hscan(&C, S("small"), 0, NULL, 0, 1, scan_pair, NULL, &next), 0);
    assert_int_equal(next, 0);
    assert_int_equal(nscanned, 50);
    nscanned = 0;
    assert_int_equal(eng_hscan(&C, S("small"), 0, S("f1*"), 1, scan_pair, NULL, &next), 0);
    assert_int_equal(nscanned, 11); /* f1, f10..f19 */
    /* hashtable: a full walk returns every field (at least once) */
    for (int i = 0; i < 1000; i++) {
        snprintf(f, sizeof f, "f%d", i);
        hset1("big", f, "v");
    }
    char *seen = calloc(1000, 1);
    uint64_t cur = 0;
    int calls = 0;
    do {
        buf_reset(&scanned);
        nscanned = 0;
        assert_int_equal(eng_hscan(&C, S("big"), cur, NULL, 0, 10, scan_pair, NULL, &cur), 0);
        calls++;
        for (char *p = scanned.p; p && *p; p = strchr(p, ',') + 1)
            seen[atoi(p + 1)] = 1;
    } while (cur);
    assert_true(calls > 10);
    for (int i = 0; i < 1000; i++)
        assert_true(seen[i]);
    free(seen);
    /* MATCH filters after COUNT: a walk with a pattern finds the matches */
    int matches = 0;
    cur = 0;
    do {
        nscanned = 0;
        eng_hscan(&C, S("big"), cur, S("f99*"), 10, scan_pair, NULL, &cur);
        matches += nscanned;
    } while (cur);
    assert_int_equal(matches, 11);
    buf_release(&scanned);
    end();
}

static void test_type_ops(void **state)
{
    char f[16];
    begin();
    for (int i = 0; i < 5; i++) {
        snprintf(f, sizeof f, "f%d", i);
        hset1("small", f, "v");
    }
    for (int i = 0; i < 300; i++) {
        snprintf(f, sizeof f, "f%d", i);
        hset1("big", f, "v");
    }
    assert_int_equal(eng_copy(&C, S("small"), S("small2"), 0, 0), 1);
    assert_int_equal(eng_copy(&C, S("big"), S("big2"), 0, 0), 1);
    char *a = strdup(dump("big")), *b = strdup(dump("big2"));
    assert_int_equal(strlen(a), strlen(b));
    free(a), free(b);
    assert_string_equal(enc("big2"), "hashtable");
    assert_string_equal(dump("small2"), "f0=v f1=v f2=v f3=v f4=v");
    hset1("small2", "f0", "changed"); /* a deep copy */
    assert_string_equal(dump("small"), "f0=v f1=v f2=v f3=v f4=v");
    assert_true(eng_memory_usage(&C, S("big")) > 300 * 24);
    assert_int_equal(eng_rename(&C, S("big"), S("big3"), 0), 1);
    assert_string_equal(enc("big3"), "hashtable");
    assert_int_equal(eng_del(&C, S("big3")), 1);
    end();
}

/* Sessions of 5 short fields: one key block plus one value block each, and a
 * bucket slot.  Redis 7.0 spends about 139 bytes on each (dictEntry, sds
 * key, robj, listpack); we must not spend more. */
static void test_session_memory(void **state)
{
    begin();
    int64_t before = alloc_used();
    struct eng_str fv[10] = {{S("state")}, {S("idle")}, {S("lang")}, {S("en")},    {S("step")},
                             {S("0")},     {S("amount")}, {S("100")}, {S("addr")}, {S("x")}};
    char key[32];
    int64_t n;
    for (int i = 0; i < 10000; i++) {
        snprintf(key, sizeof key, "session:%d", 100000 + i);
        assert_int_equal(eng_hset(&C, S(key), fv, 5, &n), 0);
    }
    int64_t per = (alloc_used() - before) / 10000;
    printf("test_hash: %lld bytes per session hash\n", (long long)per);
    assert_true(per <= 120);
    assert_true(eng_memory_usage(&C, S("session:100000")) <= 112);
    assert_string_equal(enc("session:100000"), "listpack");
    end();
}

/* ---- random operations against a model; the journal replays ---------------- */



static void replay(void *ud, int db, int argc, const struct eng_str *a)
{
    struct eng_ctx c;
    eng_ctx_init(&c, R, db);
    eng_lock_keys(&c, &a[1], 1);
    int64_t n, delta;
    if (is(&a[0], "HSET")) {
        assert_int_equal(argc % 2, 0);
        assert_int_equal(eng_hset(&c, a[1].p, a[1].n, &a[2], (argc - 2) / 2, &n), 0);
    } else if (is(&a[0], "HDEL")) {
        assert_int_equal(eng_hdel(&c, a[1].p, a[1].n, &a[2], argc - 2, &n), 0);
        assert_true(n > 0);
    } else if (is(&a[0], "HINCRBY")) {
        assert_int_equal(num_parse_i64(a[3].p, a[3].n, &delta), 0);
        assert_int_equal(eng_hincrby(&c, a[1].p, a[1].n, a[2].p, a[2].n, delta, &n), 0);
    } else {
        fail_msg("unexpected journal command %.*s", (int)a[0].n, a[0].p);
    }
    eng_unlock(&c);
}

#define NF 200 /* fields: some runs pass 128 and convert */
struct model {
    char val[NF][24];
    int has[NF];
};

static void test_random_vs_model(void **state)
{
    unsigned seed = env_seed("test_hash");
    srand(seed);
    struct eng_config cfg = {.nshards = 2, .ndb = 2};
    R = eng_new(&cfg);
    struct eng_hooks h = {.journal = replay};
    eng_set_hooks(E, &h);
    static struct model m[4];
    memset(m, 0, sizeof m);
    char key[16], f[24], v[24];
    for (int op = 0; op < 4000; op++) {
        int ki = rand() % 4, fi = rand() % (ki == 0 ? 20 : NF);
        snprintf(key, sizeof key, "k%d", ki);
        snprintf(f, sizeof f, "f%d", fi);
        snprintf(v, sizeof v, "%d", rand() % 1000);
        int64_t n;
        struct eng_str fs = {f, strlen(f)}, got;
        begin();
        switch (rand() % 5) {
        case 0:
        case 1:
            assert_int_equal(hset1(key, f, v), !m[ki].has[fi]);
            strcpy(m[ki].val[fi], v), m[ki].has[fi] = 1;
            break;
        case 2:
            assert_int_equal(eng_hdel(&C, S(key), &fs, 1, &n), 0);
            assert_int_equal(n, m[ki].has[fi]);
            m[ki].has[fi] = 0;
            break;
        case 3: {
            int64_t cur = m[ki].has[fi] ? atoll(m[ki].val[fi]) : 0; /* values are all numbers */
            assert_int_equal(eng_hincrby(&C, S(key), S(f), 3, &n), 0);
            assert_int_equal(n, cur + 3);
            snprintf(m[ki].val[fi], 24, "%lld", (long long)n), m[ki].has[fi] = 1;
            break;
        }
        default: {
            int r = eng_hget(&C, S(key), S(f), &got);
            if (!m[ki].has[fi])
                assert_int_equal(r, ERR_NOKEY);
            else {
                assert_int_equal(r, 0);
                assert_int_equal(got.n, strlen(m[ki].val[fi]));
                assert_memory_equal(got.p, m[ki].val[fi], got.n);
            }
        }
        }
        end();
    }
    /* model, master and replica agree */
    for (int ki = 0; ki < 4; ki++) {
        snprintf(key, sizeof key, "k%d", ki);
        int64_t want = 0, n;
        for (int fi = 0; fi < NF; fi++)
            want += m[ki].has[fi];
        begin();
        assert_int_equal(eng_hlen(&C, S(key), &n), 0);
        if (n != want)
            fail_msg("SEED=%u %s: %lld fields, model %lld", seed, key, (long long)n, (long long)want);
        struct eng_ctx rc;
        eng_ctx_init(&rc, R, 0);
        eng_lock_all(&rc);
        for (int fi = 0; fi < NF; fi++) {
            struct eng_str a, b;
            snprintf(f, sizeof f, "f%d", fi);
            int ra = eng_hget(&C, S(key), S(f), &a), rb = eng_hget(&rc, S(key), S(f), &b);
            assert_int_equal(ra, rb);
            if (ra == 0) {
                assert_int_equal(a.n, b.n);
                assert_memory_equal(a.p, b.p, a.n);
            }
        }
        eng_unlock(&rc);
        end();
    }
    eng_free(R);
    R = NULL;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_basic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrongtype, setup, teardown),
        cmocka_unit_test_setup_teardown(test_listpack_order_and_update, setup, teardown),
        cmocka_unit_test_setup_teardown(test_encodings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hincrby, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hincrbyfloat, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hrandfield, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hscan, setup, teardown),
        cmocka_unit_test_setup_teardown(test_type_ops, setup, teardown),
        cmocka_unit_test_setup_teardown(test_session_memory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_random_vs_model, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
