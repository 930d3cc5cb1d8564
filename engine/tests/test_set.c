/* test_set.c: engine/t_set.c through set.h.  SADD/SREM/SISMEMBER/
 * SMISMEMBER/SCARD/SMEMBERS, the encodings as Redis 7.0 chooses them (intset
 * of canonical integers in ascending order, widened 16 -> 32 -> 64 bits,
 * up to 512 members; hashtable for good beyond or on a string), SPOP (journal
 * SREM of the popped members, or DEL when all go), SRANDMEMBER (distinct,
 * repeats), SMOVE, SINTER/SUNION/SDIFF and their STORE forms (encoding of the
 * result, TTL of the destination dropped, empty result deletes), SINTERCARD
 * with LIMIT, SSCAN, type ops, notifications, and a random test against a
 * model whose journal is replayed into a second engine (SEED=). */
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
#include "set.h"

#include "test_util.h"

/* SADD key "a b c" (space-separated members). */
static int64_t sadd(const char *key, const char *members)
{
    static char copy[4096];
    struct eng_str m[600];
    int n = 0;
    snprintf(copy, sizeof copy, "%s", members);
    for (char *t = strtok(copy, " "); t; t = strtok(NULL, " "))
        m[n++] = (struct eng_str){t, strlen(t)};
    int64_t added = -1;
    assert_int_equal(eng_sadd(&C, S(key), m, n, &added), 0);
    return added;
}

static int64_t count_seen;
static void d_head(void *ud, int64_t n) { count_seen = n; }
static void d_member(void *ud, const char *p, size_t n)
{
    buf_printf(&dumped, "%s%.*s", dumped.len ? " " : "", (int)n, p);
}

static const char *members(const char *key)
{
    buf_reset(&dumped);
    assert_int_equal(eng_smembers(&C, S(key), d_head, d_member, NULL), 0);
    return dumped.p ? dumped.p : "";
}

static const char *enc(const char *key)
{
    const char *e = eng_object_encoding(&C, S(key));
    return e ? e : "none";
}

static int64_t card(const char *key)
{
    int64_t n = -1;
    assert_int_equal(eng_scard(&C, S(key), &n), 0);
    return n;
}

/* ---- tests -------------------------------------------------------------------- */

static void test_intset(void **state)
{
    begin();
    assert_int_equal(sadd("s", "3 1 2 2"), 3);
    JOURNAL("SADD s 3 1 2 2");
    EVENTS("sadd");
    assert_string_equal(members("s"), "1 2 3");
    assert_int_equal(count_seen, 3);
    assert_string_equal(enc("s"), "intset");
    assert_int_equal(sadd("s", "1"), 0);
    JOURNAL(""); /* nothing changed: nothing to replay */
    EVENTS("");
    /* widening keeps order */
    sadd("s", "-40000 40000");
    assert_string_equal(members("s"), "-40000 1 2 3 40000");
    sadd("s", "9223372036854775807 -9223372036854775808 -3000000000");
    assert_string_equal(members("s"),
                        "-9223372036854775808 -3000000000 -40000 1 2 3 40000 9223372036854775807");
    assert_string_equal(enc("s"), "intset");
    assert_int_equal(eng_sismember(&C, S("s"), S("-3000000000")), 1);
    assert_int_equal(eng_sismember(&C, S("s"), S("01")), 0);
    assert_int_equal(eng_sismember(&C, S("s"), S("x")), 0);
    /* non-canonical integers are strings: they convert the set */
    sadd("s", "+5");
    assert_string_equal(enc("s"), "hashtable");
    assert_int_equal(card("s"), 9);
    assert_int_equal(eng_sismember(&C, S("s"), S("-9223372036854775808")), 1);
    /* 512 integers stay an intset, the 513th converts */
    char buf[8];
    for (int i = 0; i < 512; i++) {
        snprintf(buf, sizeof buf, "%d", i * 3);
        sadd("big", buf);
    }
    assert_string_equal(enc("big"), "intset");
    sadd("big", "1");
    assert_string_equal(enc("big"), "hashtable");
    assert_int_equal(card("big"), 513);
    assert_int_equal(eng_sismember(&C, S("big"), S("1533")), 1);
    end();
}

static void test_srem_and_members(void **state)
{
    begin();
    sadd("s", "1 2 3");
    sadd("t", "a b c 1");
    jtake(), etake();
    struct eng_str m[4] = {{S("2")}, {S("x")}, {S("3")}, {S("1")}};
    int64_t n;
    assert_int_equal(eng_srem(&C, S("s"), m, 2, &n), 0);
    assert_int_equal(n, 1);
    JOURNAL("SREM s 2 x");
    EVENTS("srem");
    assert_int_equal(eng_srem(&C, S("s"), m, 2, &n), 0);
    assert_int_equal(n, 0);
    JOURNAL("");
    assert_int_equal(eng_srem(&C, S("s"), m, 4, &n), 0);
    assert_int_equal(n, 2);
    EVENTS("srem del");
    assert_int_equal(eng_exists(&C, S("s")), 0);
    assert_int_equal(eng_srem(&C, S("nokey"), m, 4, &n), 0);
    assert_int_equal(n, 0);
    int in[4];
    assert_int_equal(eng_smismember(&C, S("t"), m, 4, in), 0);
    assert_int_equal(in[0] + in[1] + in[2], 0);
    assert_int_equal(in[3], 1);
    assert_int_equal(eng_smismember(&C, S("nokey"), m, 4, in), 0);
    assert_int_equal(in[3], 0);
    assert_int_equal(card("nokey"), 0);
    assert_string_equal(members("nokey"), "");
    assert_int_equal(count_seen, 0);
    end();
}

static void test_wrongtype(void **state)
{
    begin();
    eng_set(&C, S("str"), S("v"), 0, 0, NULL, NULL);
    sadd("s", "1");
    struct eng_str m = {S("a")}, keys[2] = {{S("s")}, {S("str")}};
    int64_t n;
    int in;
    uint64_t next;
    assert_int_equal(eng_sadd(&C, S("str"), &m, 1, &n), ERR_WRONGTYPE);
    assert_int_equal(eng_srem(&C, S("str"), &m, 1, &n), ERR_WRONGTYPE);
    assert_int_equal(eng_sismember(&C, S("str"), S("a")), ERR_WRONGTYPE);
    assert_int_equal(eng_smismember(&C, S("str"), &m, 1, &in), ERR_WRONGTYPE);
    assert_int_equal(eng_scard(&C, S("str"), &n), ERR_WRONGTYPE);
    assert_int_equal(eng_smembers(&C, S("str"), d_head, d_member, NULL), ERR_WRONGTYPE);
    assert_int_equal(eng_spop(&C, S("str"), 1, d_head, d_member, NULL), ERR_WRONGTYPE);
    assert_int_equal(eng_srandmember(&C, S("str"), 1, d_head, d_member, NULL), ERR_WRONGTYPE);
    assert_int_equal(eng_sscan(&C, S("str"), 0, NULL, 0, 10, d_member, NULL, &next), ERR_WRONGTYPE);
    assert_int_equal(eng_smove(&C, S("str"), S("s"), S("1")), ERR_WRONGTYPE);
    assert_int_equal(eng_smove(&C, S("s"), S("str"), S("1")), ERR_WRONGTYPE);
    assert_int_equal(eng_smove(&C, S("nokey"), S("str"), S("1")), 0);
    for (int op = ENG_SETOP_INTER; op <= ENG_SETOP_DIFF; op++)
        assert_int_equal(eng_setop(&C, op, keys, 2, NULL, 0, d_head, d_member, NULL, &n), ERR_WRONGTYPE);
    /* a missing key before it does not hide the error (Redis looks at all) */
    struct eng_str k2[2] = {{S("nokey")}, {S("str")}};
    assert_int_equal(eng_setop(&C, ENG_SETOP_INTER, k2, 2, NULL, 0, d_head, d_member, NULL, &n), ERR_WRONGTYPE);
    assert_int_equal(eng_sintercard(&C, k2, 2, 0, &n), ERR_WRONGTYPE);
    /* but a STORE destination of another type is simply replaced */
    assert_int_equal(eng_setop(&C, ENG_SETOP_UNION, keys, 1, S("str"), NULL, NULL, NULL, &n), 0);
    assert_string_equal(members("str"), "1");
    end();
}

static void test_spop(void **state)
{
    begin();
    sadd("s", "1 2 3 4 5");
    jtake(), etake();
    buf_reset(&dumped);
    assert_int_equal(eng_spop(&C, S("s"), 2, d_head, d_member, NULL), 0);
    assert_int_equal(count_seen, 2);
    assert_int_equal(card("s"), 3);
    /* the journal names exactly the popped members */
    char want[64];
    int a, b;
    assert_int_equal(sscanf(dumped.p, "%d %d", &a, &b), 2);
    const char *j = jtake();
    snprintf(want, sizeof want, "SREM s %d %d", b, a);
    char alt[64];
    snprintf(alt, sizeof alt, "SREM s %d %d", a, b);
    assert_true(!strcmp(j, want) || !strcmp(j, alt));
    EVENTS("spop");
    assert_int_equal(eng_sismember(&C, S("s"), dumped.p, strcspn(dumped.p, " ")), 0);
    /* popping all (or more) deletes the key, journaled as DEL */
    buf_reset(&dumped);
    assert_int_equal(eng_spop(&C, S("s"), 10, d_head, d_member, NULL), 0);
    assert_int_equal(count_seen, 3);
    JOURNAL("DEL s");
    EVENTS("spop del");
    assert_int_equal(eng_exists(&C, S("s")), 0);
    assert_int_equal(eng_spop(&C, S("s"), 3, d_head, d_member, NULL), 0);
    assert_int_equal(count_seen, 0);
    /* count 0 changes nothing */
    sadd("t", "a b c d e f g h i j");
    jtake(), etake();
    assert_int_equal(eng_spop(&C, S("t"), 0, d_head, d_member, NULL), 0);
    assert_int_equal(count_seen, 0);
    JOURNAL("");
    /* hashtable pops: distinct members, all gone */
    for (int round = 0; round < 3; round++) {
        buf_reset(&dumped);
        assert_int_equal(eng_spop(&C, S("t"), 3, d_head, d_member, NULL), 0);
        char *save, *copy = strdup(dumped.p);
        for (char *t = strtok_r(copy, " ", &save); t; t = strtok_r(NULL, " ", &save))
            assert_int_equal(eng_sismember(&C, S("t"), S(t)), 0);
        free(copy);
    }
    assert_int_equal(card("t"), 1);
    end();
}

static int distinct_words(const char *s, int *n)
{
    char *copy = strdup(s), *w[1000], *save;
    *n = 0;
    for (char *t = strtok_r(copy, " ", &save); t; t = strtok_r(NULL, " ", &save))
        w[(*n)++] = t;
    int ok = 1;
    for (int i = 0; i < *n; i++)
        for (int j = 0; j < i; j++)
            ok &= strcmp(w[i], w[j]) != 0;
    free(copy);
    return ok;
}

static void check_rand(const char *key, int64_t size)
{
    int64_t counts[] = {0, 1, 2, size / 4, size / 2, size - 1, size, size + 5, -1, -7, -(size * 2)};
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
        int64_t want = counts[i] >= 0 ? (counts[i] < size ? counts[i] : size) : -counts[i];
        buf_reset(&dumped);
        assert_int_equal(eng_srandmember(&C, S(key), counts[i], d_head, d_member, NULL), 0);
        assert_int_equal(count_seen, want);
        int n, ok = distinct_words(dumped.p ? dumped.p : "", &n);
        assert_int_equal(n, want);
        if (counts[i] >= 0)
            assert_true(ok);
    }
}

static void test_srandmember(void **state)
{
    char buf[16];
    begin();
    assert_int_equal(eng_srandmember(&C, S("nokey"), -3, d_head, d_member, NULL), 0);
    assert_int_equal(count_seen, 0);
    for (int i = 0; i < 40; i++) {
        snprintf(buf, sizeof buf, "%d", i);
        sadd("ints", buf);
        snprintf(buf, sizeof buf, "m%d", i);
        sadd("strs", buf);
    }
    for (int i = 0; i < 300; i++) {
        snprintf(buf, sizeof buf, "m%d", i);
        sadd("big", buf);
    }
    jtake();
    check_rand("ints", 40);
    check_rand("strs", 40);
    check_rand("big", 300);
    JOURNAL("");
    end();
}

static void test_smove(void **state)
{
    begin();
    sadd("a", "1 2");
    sadd("b", "x");
    jtake(), etake();
    assert_int_equal(eng_smove(&C, S("a"), S("b"), S("1")), 1);
    JOURNAL("SMOVE a b 1");
    EVENTS("srem sadd");
    assert_string_equal(enc("b"), "hashtable");
    assert_int_equal(eng_smove(&C, S("a"), S("b"), S("9")), 0);
    assert_int_equal(eng_smove(&C, S("a"), S("a"), S("2")), 1);
    assert_int_equal(eng_smove(&C, S("a"), S("a"), S("9")), 0);
    JOURNAL("");
    EVENTS("");
    assert_int_equal(eng_smove(&C, S("a"), S("c"), S("2")), 1); /* the last: a goes, c is made */
    EVENTS("srem del sadd");
    assert_int_equal(eng_exists(&C, S("a")), 0);
    assert_string_equal(members("c"), "2");
    assert_string_equal(enc("c"), "intset");
    sadd("a", "2");
    etake();
    assert_int_equal(eng_smove(&C, S("a"), S("c"), S("2")), 1); /* already in c: no sadd event */
    EVENTS("srem del");
    assert_int_equal(eng_smove(&C, S("nokey"), S("c"), S("2")), 0);
    end();
}

static const char *op_result(enum eng_setop op, const char *keylist)
{
    static char copy[256];
    struct eng_str k[16];
    int n = 0;
    snprintf(copy, sizeof copy, "%s", keylist);
    for (char *t = strtok(copy, " "); t; t = strtok(NULL, " "))
        k[n++] = (struct eng_str){t, strlen(t)};
    int64_t card_out = -1;
    buf_reset(&dumped);
    assert_int_equal(eng_setop(&C, op, k, n, NULL, 0, d_head, d_member, NULL, &card_out), 0);
    assert_int_equal(card_out, count_seen);
    return dumped.p ? dumped.p : "";
}

static int64_t op_store(enum eng_setop op, const char *dst, const char *keylist)
{
    static char copy[256];
    struct eng_str k[16];
    int n = 0;
    snprintf(copy, sizeof copy, "%s", keylist);
    for (char *t = strtok(copy, " "); t; t = strtok(NULL, " "))
        k[n++] = (struct eng_str){t, strlen(t)};
    int64_t c = -1;
    assert_int_equal(eng_setop(&C, op, k, n, S(dst), NULL, NULL, NULL, &c), 0);
    return c;
}

static void test_algebra(void **state)
{
    begin();
    sadd("s1", "1 2 3 4 5");
    sadd("s2", "4 5 6 7");
    sadd("s3", "5 7 9");
    sadd("t1", "a b c 5");
    assert_string_equal(op_result(ENG_SETOP_INTER, "s1 s2"), "4 5");
    assert_string_equal(op_result(ENG_SETOP_INTER, "s1 s2 s3"), "5");
    assert_string_equal(op_result(ENG_SETOP_INTER, "s1 s2 nokey"), "");
    assert_string_equal(op_result(ENG_SETOP_INTER, "s1 s1"), "1 2 3 4 5");
    assert_string_equal(op_result(ENG_SETOP_INTER, "t1 s3"), "5");
    assert_string_equal(op_result(ENG_SETOP_UNION, "s1 s2 nokey s3"), "1 2 3 4 5 6 7 9");
    assert_string_equal(op_result(ENG_SETOP_DIFF, "s1 s2"), "1 2 3");
    assert_string_equal(op_result(ENG_SETOP_DIFF, "s1 s2 s3 nokey"), "1 2 3");
    assert_string_equal(op_result(ENG_SETOP_DIFF, "s1 s1"), "");
    assert_string_equal(op_result(ENG_SETOP_DIFF, "nokey s1"), "");
    int n;
    assert_true(distinct_words(op_result(ENG_SETOP_DIFF, "t1 s1"), &n));
    assert_int_equal(n, 3); /* a b c, in the table's order */
    assert_true(distinct_words(op_result(ENG_SETOP_UNION, "t1 s1"), &n));
    assert_int_equal(n, 8);
    jtake(), etake();
    /* STORE: result encoding as Redis's, destination TTL dropped */
    eng_set(&C, S("d"), S("x"), 0, C.now_ms + 100000, NULL, NULL);
    jtake(), etake();
    assert_int_equal(op_store(ENG_SETOP_INTER, "d", "s1 s2"), 2);
    JOURNAL("SINTERSTORE d s1 s2");
    EVENTS("sinterstore");
    assert_int_equal(eng_pttl(&C, S("d")), -1);
    assert_string_equal(members("d"), "4 5");
    assert_string_equal(enc("d"), "intset");
    assert_int_equal(op_store(ENG_SETOP_UNION, "d", "t1 s3"), 6);
    assert_string_equal(enc("d"), "hashtable");
    EVENTS("sunionstore");
    assert_int_equal(op_store(ENG_SETOP_DIFF, "d", "s1 s2"), 3);
    EVENTS("sdiffstore");
    /* the destination may be a source */
    assert_int_equal(op_store(ENG_SETOP_UNION, "d", "d s3"), 6);
    assert_string_equal(members("d"), "1 2 3 5 7 9");
    jtake(), etake();
    /* an empty result deletes the destination ("del"), or does nothing */
    assert_int_equal(op_store(ENG_SETOP_INTER, "d", "s1 nokey"), 0);
    JOURNAL("SINTERSTORE d s1 nokey");
    EVENTS("del");
    assert_int_equal(eng_exists(&C, S("d")), 0);
    assert_int_equal(op_store(ENG_SETOP_DIFF, "d", "s1 s1"), 0);
    JOURNAL("");
    EVENTS("");
    /* SINTERCARD */
    struct eng_str k[3] = {{S("s1")}, {S("s2")}, {S("nokey")}};
    int64_t c;
    assert_int_equal(eng_sintercard(&C, k, 2, 0, &c), 0);
    assert_int_equal(c, 2);
    assert_int_equal(eng_sintercard(&C, k, 2, 1, &c), 0);
    assert_int_equal(c, 1);
    assert_int_equal(eng_sintercard(&C, k, 1, 3, &c), 0);
    assert_int_equal(c, 3);
    assert_int_equal(eng_sintercard(&C, k, 3, 0, &c), 0);
    assert_int_equal(c, 0);
    end();
}

static int nscanned;
static char *seen_flags;
static void scan_member(void *ud, const char *p, size_t n)
{
    char tmp[16];
    nscanned++;
    if (seen_flags) {
        assert_true(n < sizeof tmp && n > 1);
        memcpy(tmp, p, n), tmp[n] = '\0';
        seen_flags[atoi(tmp + 1)] = 1;
    }
}

static void test_sscan(void **state)
{
    char buf[16];
    uint64_t next = 9;
    begin();
    assert_int_equal(eng_sscan(&C, S("nokey"), 0, NULL, 0, 10, scan_member, NULL, &next), 0);
    assert_int_equal(next, 0);
    for (int i = 0; i < 100; i++) {
        snprintf(buf, sizeof buf, "%d", i);
        sadd("ints", buf);
    }
    nscanned = 0;
    assert_int_equal(eng_sscan(&C, S("ints"), 0, NULL, 0, 1, scan_member, NULL, &next), 0);
    assert_int_equal(nscanned, 100);
    assert_int_equal(next, 0);
    nscanned = 0;
    assert_int_equal(eng_sscan(&C, S("ints"), 0, S("1?"), 1, scan_member, NULL, &next), 0);
    assert_int_equal(nscanned, 10);
    for (int i = 0; i < 2000; i++) {
        snprintf(buf, sizeof buf, "m%d", i);
        sadd("big", buf);
    }
    seen_flags = calloc(2000, 1);
    uint64_t cur = 0;
    int calls = 0;
    do {
        assert_int_equal(eng_sscan(&C, S("big"), cur, NULL, 0, 20, scan_member, NULL, &cur), 0);
        calls++;
    } while (cur);
    assert_true(calls > 20);
    for (int i = 0; i < 2000; i++)
        assert_true(seen_flags[i]);
    free(seen_flags);
    seen_flags = NULL;
    end();
}

static void test_type_ops(void **state)
{
    char buf[16];
    begin();
    sadd("ints", "1 2 70000");
    for (int i = 0; i < 100; i++) {
        snprintf(buf, sizeof buf, "m%d", i);
        sadd("strs", buf);
    }
    assert_int_equal(eng_copy(&C, S("ints"), S("ints2"), 0, 0), 1);
    assert_int_equal(eng_copy(&C, S("strs"), S("strs2"), 0, 0), 1);
    assert_string_equal(members("ints2"), "1 2 70000");
    assert_string_equal(enc("ints2"), "intset");
    assert_int_equal(card("strs2"), 100);
    assert_int_equal(eng_sismember(&C, S("strs2"), S("m42")), 1);
    sadd("ints2", "3");
    assert_string_equal(members("ints"), "1 2 70000");
    assert_true(eng_memory_usage(&C, S("strs")) > 100 * 16);
    assert_true(eng_memory_usage(&C, S("ints")) >= 8 + 3 * 4);
    end();
}

/* ---- random operations against a model; the journal replays ---------------- */



static void replay(void *ud, int db, int argc, const struct eng_str *a)
{
    struct eng_ctx c;
    eng_ctx_init(&c, R, db);
    eng_lock_all(&c);
    int64_t n;
    if (is(&a[0], "SADD")) {
        assert_int_equal(eng_sadd(&c, a[1].p, a[1].n, &a[2], argc - 2, &n), 0);
    } else if (is(&a[0], "SREM")) {
        assert_int_equal(eng_srem(&c, a[1].p, a[1].n, &a[2], argc - 2, &n), 0);
        assert_true(n > 0);
    } else if (is(&a[0], "DEL")) {
        assert_int_equal(eng_del(&c, a[1].p, a[1].n), 1);
    } else if (is(&a[0], "SMOVE")) {
        assert_int_equal(eng_smove(&c, a[1].p, a[1].n, a[2].p, a[2].n, a[3].p, a[3].n), 1);
    } else if (is(&a[0], "SINTERSTORE") || is(&a[0], "SUNIONSTORE") || is(&a[0], "SDIFFSTORE")) {
        enum eng_setop op = a[0].p[1] == 'I' ? ENG_SETOP_INTER : a[0].p[1] == 'U' ? ENG_SETOP_UNION : ENG_SETOP_DIFF;
        assert_int_equal(eng_setop(&c, op, &a[2], argc - 2, a[1].p, a[1].n, NULL, NULL, NULL, &n), 0);
    } else {
        fail_msg("unexpected journal command %.*s", (int)a[0].n, a[0].p);
    }
    eng_unlock(&c);
}

#define NM 700 /* members 0..699, as integers or "m<i>": passes 512 sometimes */
static unsigned char model[4][NM]; /* 1 = member */

static void model_check(unsigned seed)
{
    char key[16], m[24];
    struct eng_ctx rc;
    eng_ctx_init(&rc, R, 0);
    eng_lock_all(&rc);
    for (int ki = 0; ki < 4; ki++) {
        snprintf(key, sizeof key, "k%d", ki);
        int64_t want = 0, n, rn;
        for (int i = 0; i < NM; i++)
            want += model[ki][i];
        assert_int_equal(eng_scard(&C, S(key), &n), 0);
        assert_int_equal(eng_scard(&rc, S(key), &rn), 0);
        if (n != want || rn != want)
            fail_msg("SEED=%u %s: %lld members, replica %lld, model %lld", seed, key, (long long)n, (long long)rn,
                     (long long)want);
        for (int i = 0; i < NM; i++) {
            snprintf(m, sizeof m, ki % 2 ? "m%d" : "%d", i);
            assert_int_equal(eng_sismember(&C, S(key), S(m)), model[ki][i]);
            assert_int_equal(eng_sismember(&rc, S(key), S(m)), model[ki][i]);
        }
    }
    eng_unlock(&rc);
}

static void test_random_vs_model(void **state)
{
    unsigned seed = env_seed("test_set");
    srand(seed);
    struct eng_config cfg = {.nshards = 3, .ndb = 2};
    R = eng_new(&cfg);
    struct eng_hooks h = {.journal = replay};
    eng_set_hooks(E, &h);
    memset(model, 0, sizeof model);
    char key[16], key2[16], m[24];
    for (int op = 0; op < 6000; op++) {
        /* k0, k2 hold integers (intsets until 512), k1, k3 strings */
        int ki = rand() % 4, i = rand() % (op % 1000 < 500 ? 40 : NM);
        snprintf(key, sizeof key, "k%d", ki);
        snprintf(m, sizeof m, ki % 2 ? "m%d" : "%d", i);
        struct eng_str ms = {m, strlen(m)};
        int64_t n;
        begin();
        switch (rand() % 8) {
        case 0:
        case 1:
        case 2:
            assert_int_equal(eng_sadd(&C, S(key), &ms, 1, &n), 0);
            assert_int_equal(n, !model[ki][i]);
            model[ki][i] = 1;
            break;
        case 3:
            assert_int_equal(eng_srem(&C, S(key), &ms, 1, &n), 0);
            assert_int_equal(n, model[ki][i]);
            model[ki][i] = 0;
            break;
        case 4: { /* SPOP: the popped members leave the model */
            buf_reset(&dumped);
            assert_int_equal(eng_spop(&C, S(key), rand() % 4, d_head, d_member, NULL), 0);
            char *save;
            for (char *t = strtok_r(dumped.p ? dumped.p : (char[]){""}, " ", &save); t;
                 t = strtok_r(NULL, " ", &save)) {
                int x = atoi(t + (ki % 2));
                assert_int_equal(model[ki][x], 1);
                model[ki][x] = 0;
            }
            break;
        }
        case 5: { /* SMOVE between sets of the same kind */
            int kj = (ki + 2) % 4;
            snprintf(key2, sizeof key2, "k%d", kj);
            int r = eng_smove(&C, S(key), S(key2), S(m));
            assert_int_equal(r, model[ki][i]);
            if (r)
                model[ki][i] = 0, model[kj][i] = 1;
            break;
        }
        case 6: { /* a STORE over the pair of same kind, into the second */
            int kj = (ki + 2) % 4;
            snprintf(key2, sizeof key2, "k%d", kj);
            enum eng_setop o = (enum eng_setop)(rand() % 3);
            if (rand() % 8)
                break; /* rare: it shrinks sets fast */
            struct eng_str ks[2] = {{S(key)}, {S(key2)}};
            assert_int_equal(eng_setop(&C, o, ks, 2, S(key2), NULL, NULL, NULL, &n), 0);
            for (int x = 0; x < NM; x++) {
                int a = model[ki][x], b = model[kj][x];
                model[kj][x] = o == ENG_SETOP_INTER ? a && b : o == ENG_SETOP_UNION ? a || b : a && !b;
            }
            break;
        }
        default:
            assert_int_equal(eng_sismember(&C, S(key), S(m)), model[ki][i]);
        }
        end();
        if (op % 1000 == 999) {
            begin();
            model_check(seed);
            end();
        }
    }
    eng_free(R);
    R = NULL;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_intset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_srem_and_members, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrongtype, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_srandmember, setup, teardown),
        cmocka_unit_test_setup_teardown(test_smove, setup, teardown),
        cmocka_unit_test_setup_teardown(test_algebra, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sscan, setup, teardown),
        cmocka_unit_test_setup_teardown(test_type_ops, setup, teardown),
        cmocka_unit_test_setup_teardown(test_random_vs_model, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
