/* test_zset.c: engine/t_zset.c through zset.h.  ZADD with NX/XX/GT/LT/INCR
 * (and NaN from inf + -inf), ZREM/ZSCORE/ZMSCORE/ZRANK, rank, score and lex
 * ranges with REV and LIMIT on both encodings (which must agree), counts and
 * removals by range, pops and the first-non-empty pop of ZMPOP, the set
 * operations (weights, aggregates, sets as inputs, inf - inf as 0, the
 * destination replaced or deleted), ZRANGESTORE, ZSCAN (whole listpack; a
 * cursor walk of a skip list sees every member), ZRANDMEMBER, the encodings
 * (listpack up to 128 members of at most 64 bytes, skiplist beyond), the sign
 * of a zero score, type ops, the journal, notifications and the ready hook, a
 * big set checked rank by rank, and a random test against a model whose
 * journal is replayed into a second engine (prints and accepts SEED=). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/num.h"
#include "set.h"
#include "zset.h"

#include "test_util.h"

/* ZADD of "score member score member ..." with flags. */
static int zadd_f(const char *key, unsigned flags, const char *pairs, struct eng_zadd_out *out)
{
    double scores[128];
    struct eng_str m[128];
    int n = 0;
    static char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", pairs);
    for (char *t = strtok(tmp, " "); t; n++) {
        scores[n] = strtod(t, NULL);
        t = strtok(NULL, " ");
        m[n].p = pairs + (t - tmp), m[n].n = strlen(t);
        t = strtok(NULL, " ");
    }
    return eng_zadd(&C, S(key), flags, scores, m, n, out);
}

static int64_t zadd(const char *key, const char *pairs)
{
    struct eng_zadd_out o;
    assert_int_equal(zadd_f(key, 0, pairs, &o), 0);
    return o.added;
}

/* "member=score ..." (in dumped). */
static int64_t dump_count;
static void dump_head(void *ud, int64_t n) { dump_count = n; }
static void dump_elem(void *ud, const char *m, size_t n, double score)
{
    char num[64];
    num_fmt_double(num, sizeof num, score);
    buf_printf(&dumped, "%s%.*s=%s", dumped.len ? " " : "", (int)n, m, num);
}
static const char *dumped_str(void) { return dumped.p ? dumped.p : ""; }

static const char *zr(const char *key, const struct eng_zrange *r)
{
    buf_reset(&dumped);
    dump_count = -1;
    int rc = eng_zrange(&C, S(key), r, dump_head, dump_elem, NULL);
    if (rc == ERR_NOKEY)
        return "(nokey)";
    assert_int_equal(rc, 0);
    return dumped_str();
}

static const char *all(const char *key)
{
    struct eng_zrange r = {.by = ENG_ZBY_RANK, .start = 0, .stop = -1, .limit = -1};
    return zr(key, &r);
}

static struct eng_zrange by_rank(int64_t a, int64_t b, int rev)
{
    return (struct eng_zrange){.by = ENG_ZBY_RANK, .rev = rev, .start = a, .stop = b, .limit = -1};
}
static struct eng_zrange by_score(double min, int minex, double max, int maxex, int rev, int64_t off, int64_t lim)
{
    return (struct eng_zrange){.by = ENG_ZBY_SCORE,
                               .rev = rev,
                               .min = min,
                               .minex = minex,
                               .max = max,
                               .maxex = maxex,
                               .offset = off,
                               .limit = lim};
}
static struct eng_zlex lexb(const char *s)
{
    if (!strcmp(s, "-"))
        return (struct eng_zlex){NULL, 0, ENG_ZLEX_MIN};
    if (!strcmp(s, "+"))
        return (struct eng_zlex){NULL, 0, ENG_ZLEX_MAX};
    return (struct eng_zlex){s + 1, strlen(s + 1), s[0] == '(' ? ENG_ZLEX_EXCL : ENG_ZLEX_INCL};
}
static struct eng_zrange by_lex(const char *min, const char *max, int rev, int64_t off, int64_t lim)
{
    return (struct eng_zrange){
        .by = ENG_ZBY_LEX, .rev = rev, .lmin = lexb(min), .lmax = lexb(max), .offset = off, .limit = lim};
}

static const char *enc(const char *key)
{
    const char *e = eng_object_encoding(&C, S(key));
    return e ? e : "(none)";
}

/* ---- tests ---------------------------------------------------------------- */

static void test_zadd_flags(void **state)
{
    begin();
    struct eng_zadd_out o;
    assert_int_equal(zadd("z", "1 a 2 b 3 c"), 3);
    JOURNAL("ZADD z 1 a 2 b 3 c");
    EVENTS("zadd");
    READY("z");
    assert_int_equal(zadd_f("z", 0, "1.5 a 4 d", &o), 0);
    assert_int_equal(o.added, 1);
    assert_int_equal(o.updated, 1);
    JOURNAL("ZADD z 1.5 a 4 d");
    assert_int_equal(zadd_f("z", 0, "1.5 a", &o), 0); /* no change: no journal, no event */
    assert_int_equal(o.added + o.updated, 0);
    assert_int_equal(o.processed, 1);
    JOURNAL("");
    EVENTS("zadd");
    READY("z");
    assert_int_equal(zadd_f("z", ENG_ZADD_NX, "10 a 5 e", &o), 0);
    assert_int_equal(o.added, 1);
    assert_int_equal(o.updated, 0);
    assert_int_equal(zadd_f("z", ENG_ZADD_XX, "10 a 5 f", &o), 0);
    assert_int_equal(o.added, 0);
    assert_int_equal(o.updated, 1);
    assert_int_equal(zadd_f("z", ENG_ZADD_GT, "1 a", &o), 0);
    assert_int_equal(o.updated + o.processed, 0);
    assert_int_equal(zadd_f("z", ENG_ZADD_LT, "1 a 0.5 b", &o), 0);
    assert_int_equal(o.updated, 2);
    assert_string_equal(all("z"), "b=0.5 a=1 c=3 d=4 e=5");
    /* INCR */
    assert_int_equal(zadd_f("z", ENG_ZADD_INCR, "2.5 a", &o), 0);
    assert_true(o.processed == 1 && o.score == 3.5);
    assert_int_equal(zadd_f("z", ENG_ZADD_INCR | ENG_ZADD_NX, "1 a", &o), 0);
    assert_int_equal(o.processed, 0);
    assert_int_equal(zadd_f("z", ENG_ZADD_INCR | ENG_ZADD_GT, "-1 a", &o), 0);
    assert_int_equal(o.processed, 0);
    jtake(), etake();
    assert_int_equal(zadd_f("z", ENG_ZADD_INCR, "1 new", &o), 0);
    assert_true(o.added == 1 && o.score == 1);
    JOURNAL("ZADD z 1 new");
    EVENTS("zincr");
    assert_int_equal(zadd_f("z", ENG_ZADD_INCR, "inf a", &o), 0);
    assert_int_equal(zadd_f("z", ENG_ZADD_INCR, "-inf a", &o), ERR_NAN);
    double s;
    assert_int_equal(eng_zscore(&C, S("z"), S("a"), &s), 0);
    assert_true(isinf(s) && s > 0);
    /* XX on a missing key creates nothing */
    assert_int_equal(zadd_f("nokey", ENG_ZADD_XX, "1 a", &o), 0);
    assert_int_equal(eng_exists(&C, S("nokey")), 0);
    end();
}

static void test_reads_and_wrongtype(void **state)
{
    begin();
    zadd("z", "1 a 2 b 3 c");
    assert_int_equal(eng_set(&C, S("s"), S("v"), 0, 0, NULL, NULL), 1);
    double s;
    int64_t n, rank;
    assert_int_equal(eng_zscore(&C, S("z"), S("b"), &s), 0);
    assert_true(s == 2);
    assert_int_equal(eng_zscore(&C, S("z"), S("x"), &s), ERR_NOKEY);
    assert_int_equal(eng_zscore(&C, S("nokey"), S("x"), &s), ERR_NOKEY);
    assert_int_equal(eng_zcard(&C, S("z"), &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(eng_zrank(&C, S("z"), S("c"), 0, &rank, &s), 0);
    assert_int_equal(rank, 2);
    assert_int_equal(eng_zrank(&C, S("z"), S("c"), 1, &rank, NULL), 0);
    assert_int_equal(rank, 0);
    assert_int_equal(eng_zrank(&C, S("z"), S("x"), 1, &rank, NULL), ERR_NOKEY);
    struct eng_str ms[] = {{S("a")}, {S("x")}, {S("c")}};
    double scores[3];
    int found[3];
    assert_int_equal(eng_zmscore(&C, S("z"), ms, 3, scores, found), 0);
    assert_true(found[0] && !found[1] && found[2] && scores[2] == 3);
    assert_int_equal(eng_zmscore(&C, S("nokey"), ms, 3, scores, found), 0);
    assert_true(!found[0] && !found[1] && !found[2]);

    jtake(), etake();
    struct eng_zadd_out o;
    struct eng_zrange r = by_rank(0, -1, 0);
    assert_int_equal(zadd_f("s", 0, "1 a", &o), ERR_WRONGTYPE);
    assert_int_equal(eng_zrem(&C, S("s"), ms, 1, &n), ERR_WRONGTYPE);
    assert_int_equal(eng_zcard(&C, S("s"), &n), ERR_WRONGTYPE);
    assert_int_equal(eng_zscore(&C, S("s"), S("a"), &s), ERR_WRONGTYPE);
    assert_int_equal(eng_zmscore(&C, S("s"), ms, 1, scores, found), ERR_WRONGTYPE);
    assert_int_equal(eng_zrank(&C, S("s"), S("a"), 0, &rank, NULL), ERR_WRONGTYPE);
    assert_int_equal(eng_zrange(&C, S("s"), &r, NULL, dump_elem, NULL), ERR_WRONGTYPE);
    assert_int_equal(eng_zcount(&C, S("s"), &r, &n), ERR_WRONGTYPE);
    assert_int_equal(eng_zremrange(&C, S("s"), &r, &n), ERR_WRONGTYPE);
    assert_int_equal(eng_zrangestore(&C, S("d"), S("s"), &r, &n), ERR_WRONGTYPE);
    assert_int_equal(eng_zpop(&C, S("s"), 0, 1, NULL, dump_elem, NULL), ERR_WRONGTYPE);
    struct eng_str keys[] = {{S("z")}, {S("s")}};
    assert_int_equal(eng_zsetop(&C, ENG_ZSETOP_UNION, keys, 2, NULL, 0, S("d"), NULL, NULL, NULL, &n), ERR_WRONGTYPE);
    assert_int_equal(eng_zintercard(&C, keys, 2, 0, &n), ERR_WRONGTYPE);
    uint64_t next;
    assert_int_equal(eng_zscan(&C, S("s"), 0, NULL, 0, 10, dump_elem, NULL, &next), ERR_WRONGTYPE);
    assert_int_equal(eng_zrandmember(&C, S("s"), 1, NULL, dump_elem, NULL), ERR_WRONGTYPE);
    assert_int_equal(eng_exists(&C, S("d")), 0);
    JOURNAL("");
    EVENTS("");

    /* ZREM: the key goes with its last member */
    assert_int_equal(eng_zrem(&C, S("z"), ms, 3, &n), 0);
    assert_int_equal(n, 2);
    JOURNAL("ZREM z a c");
    EVENTS("zrem");
    assert_int_equal(eng_zrem(&C, S("z"), ms, 3, &n), 0);
    assert_int_equal(n, 0);
    struct eng_str b = {S("b")};
    assert_int_equal(eng_zrem(&C, S("z"), &b, 1, &n), 0);
    EVENTS("zrem del");
    assert_int_equal(eng_exists(&C, S("z")), 0);
    end();
}

/* The same members in a listpack ("s") and a skip list ("l", made so by a
 * long member at the top) must answer every range the same. */
static void ranges_both(const struct eng_zrange *r, const char *want)
{
    assert_string_equal(zr("s", r), want);
    assert_string_equal(zr("l", r), want);
}

static void test_ranges(void **state)
{
    begin();
    const char *data = "1 a 2 b 2 c 3 d 4 e 5 f";
    zadd("s", data);
    zadd("l", data);
    char longm[100];
    memset(longm, 'z', 99);
    longm[99] = '\0';
    struct eng_str lm = {longm, 99};
    double hi = 100;
    struct eng_zadd_out o;
    assert_int_equal(eng_zadd(&C, S("l"), 0, &hi, &lm, 1, &o), 0);
    assert_string_equal(enc("s"), "listpack");
    assert_string_equal(enc("l"), "skiplist");
    /* without the long member, from now on */
    struct eng_zrange top = by_rank(-1, -1, 0);
    int64_t n;
    assert_int_equal(eng_zremrange(&C, S("l"), &top, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(enc("l"), "skiplist");

    struct eng_zrange r;
    r = by_rank(0, -1, 0), ranges_both(&r, "a=1 b=2 c=2 d=3 e=4 f=5");
    r = by_rank(-2, -1, 0), ranges_both(&r, "e=4 f=5");
    r = by_rank(0, 1, 1), ranges_both(&r, "f=5 e=4");
    r = by_rank(4, 100, 1), ranges_both(&r, "b=2 a=1");
    r = by_rank(3, 2, 0), ranges_both(&r, "");
    r = by_rank(6, 9, 0), ranges_both(&r, "");
    r = by_score(2, 0, 3, 0, 0, 0, -1), ranges_both(&r, "b=2 c=2 d=3");
    r = by_score(2, 1, 4, 1, 0, 0, -1), ranges_both(&r, "d=3");
    r = by_score(-INFINITY, 0, INFINITY, 0, 1, 0, -1), ranges_both(&r, "f=5 e=4 d=3 c=2 b=2 a=1");
    r = by_score(-INFINITY, 0, INFINITY, 0, 0, 2, 3), ranges_both(&r, "c=2 d=3 e=4");
    r = by_score(-INFINITY, 0, INFINITY, 0, 1, 2, 3), ranges_both(&r, "d=3 c=2 b=2");
    r = by_score(2, 0, 5, 0, 1, 1, -1), ranges_both(&r, "e=4 d=3 c=2 b=2");
    r = by_score(2, 0, 5, 0, 0, -1, 2), ranges_both(&r, ""); /* negative offset: nothing */
    r = by_score(2, 0, 5, 0, 0, 10, 2), ranges_both(&r, "");
    r = by_score(2, 0, 5, 0, 0, 1, 0), ranges_both(&r, "");
    r = by_score(5, 0, 2, 0, 0, 0, -1), ranges_both(&r, ""); /* min above max */
    r = by_score(2, 1, 2, 0, 0, 0, -1), ranges_both(&r, "");
    assert_int_equal(eng_zcount(&C, S("l"), &r, &n), 0);
    assert_int_equal(n, 0);
    r = by_score(2, 0, 4, 1, 0, 0, -1);
    assert_int_equal(eng_zcount(&C, S("l"), &r, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(eng_zcount(&C, S("s"), &r, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(eng_zcount(&C, S("nokey"), &r, &n), 0);
    assert_int_equal(n, 0);
    r = by_score(0, 0, 1, 0, 0, 0, -1);
    assert_string_equal(zr("nokey", &r), "(nokey)");

    /* lex ranges over members of one score */
    zadd("ls", "0 a 0 b 0 c 0 d 0 e");
    zadd("ll", "0 a 0 b 0 c 0 d 0 e");
    lm.n = 70;
    memset(longm, 'a', 70);
    hi = 0;
    eng_zadd(&C, S("ll"), 0, &hi, &lm, 1, &o); /* "aaa...": between a and b */
    struct eng_str rm = lm;
    eng_zrem(&C, S("ll"), &rm, 1, &n);
    assert_string_equal(enc("ll"), "skiplist");
    const char *cases[][6] = {
        {"-", "+", "0", "0", "-1", "a=0 b=0 c=0 d=0 e=0"},
        {"[b", "(d", "0", "0", "-1", "b=0 c=0"},
        {"(b", "[d", "1", "0", "-1", "d=0 c=0"},
        {"-", "+", "0", "1", "2", "b=0 c=0"},
        {"-", "+", "1", "1", "2", "d=0 c=0"},
        {"[c", "[b", "0", "0", "-1", ""},
        {"[c", "[c", "0", "0", "-1", "c=0"},
        {"(c", "[c", "0", "0", "-1", ""},
        {"+", "-", "0", "0", "-1", ""},
        {"-", "-", "0", "0", "-1", ""},
        {"[bb", "+", "0", "0", "-1", "c=0 d=0 e=0"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        r = by_lex(cases[i][0], cases[i][1], atoi(cases[i][2]), atoi(cases[i][3]), atoi(cases[i][4]));
        assert_string_equal(zr("ls", &r), cases[i][5]);
        assert_string_equal(zr("ll", &r), cases[i][5]);
    }
    r = by_lex("[b", "[d", 0, 0, -1);
    assert_int_equal(eng_zcount(&C, S("ll"), &r, &n), 0);
    assert_int_equal(n, 3);
    end();
}

static void test_remove_ranges(void **state)
{
    begin();
    zadd("z", "1 a 2 b 3 c 4 d 5 e 6 f");
    jtake(), etake();
    int64_t n;
    struct eng_zrange r = by_score(2, 1, 4, 0, 0, 0, -1);
    assert_int_equal(eng_zremrange(&C, S("z"), &r, &n), 0);
    assert_int_equal(n, 2);
    JOURNAL("ZREMRANGEBYRANK z 2 3"); /* ranges go as the ranks they covered */
    EVENTS("zremrangebyscore");
    r = by_rank(-1, -1, 0);
    assert_int_equal(eng_zremrange(&C, S("z"), &r, &n), 0);
    EVENTS("zremrangebyrank");
    r = by_lex("-", "(b", 0, 0, -1);
    assert_int_equal(eng_zremrange(&C, S("z"), &r, &n), 0);
    assert_int_equal(n, 1);
    EVENTS("zremrangebylex");
    assert_string_equal(all("z"), "b=2 e=5");
    r = by_rank(5, 10, 0);
    assert_int_equal(eng_zremrange(&C, S("z"), &r, &n), 0);
    assert_int_equal(n, 0);
    EVENTS("");
    r = by_rank(0, -1, 0);
    assert_int_equal(eng_zremrange(&C, S("z"), &r, &n), 0);
    assert_int_equal(n, 2);
    EVENTS("zremrangebyrank del");
    assert_int_equal(eng_exists(&C, S("z")), 0);
    end();
}

static int which_at_head = -1;
static void mpop_head(void *ud, int64_t n)
{
    which_at_head = *(int *)ud;
    dump_count = n;
}

static void test_pops(void **state)
{
    begin();
    zadd("z", "1 a 2 b 3 c 4 d 5 e");
    jtake(), etake();
    buf_reset(&dumped);
    assert_int_equal(eng_zpop(&C, S("z"), 0, 2, dump_head, dump_elem, NULL), 0);
    assert_string_equal(dumped_str(), "a=1 b=2");
    assert_int_equal(dump_count, 2);
    buf_reset(&dumped);
    assert_int_equal(eng_zpop(&C, S("z"), 1, 1, dump_head, dump_elem, NULL), 0);
    assert_string_equal(dumped_str(), "e=5");
    JOURNAL("ZPOPMIN z 2 | ZPOPMAX z 1");
    EVENTS("zpopmin zpopmax");
    buf_reset(&dumped);
    assert_int_equal(eng_zpop(&C, S("z"), 1, 10, dump_head, dump_elem, NULL), 0);
    assert_string_equal(dumped_str(), "d=4 c=3");
    EVENTS("zpopmax del");
    assert_int_equal(eng_zpop(&C, S("z"), 1, 10, dump_head, dump_elem, NULL), ERR_NOKEY);

    zadd("y", "1 a 2 b");
    assert_int_equal(eng_set(&C, S("s"), S("v"), 0, 0, NULL, NULL), 1);
    struct eng_str keys[] = {{S("nokey")}, {S("y")}, {S("s")}};
    int which = -1;
    buf_reset(&dumped);
    assert_int_equal(eng_zset_mpop(&C, keys, 3, 1, 1, mpop_head, dump_elem, &which, &which), 0);
    assert_int_equal(which, 1);
    assert_int_equal(which_at_head, 1);
    assert_string_equal(dumped_str(), "b=2");
    assert_int_equal(eng_zset_mpop(&C, keys, 1, 1, 1, NULL, dump_elem, NULL, &which), ERR_NOKEY);
    assert_int_equal(eng_zset_mpop(&C, keys + 2, 1, 1, 1, NULL, dump_elem, NULL, &which), ERR_WRONGTYPE);
    end();
}

static void test_setops(void **state)
{
    begin();
    zadd("z1", "1 a 2 b 3 c");
    zadd("z2", "10 b 20 c 30 d");
    struct eng_str sm[] = {{S("a")}, {S("d")}, {S("x")}};
    int64_t n;
    assert_int_equal(eng_sadd(&C, S("st"), sm, 3, &n), 0);
    jtake(), etake(), rtake();

    struct eng_str k12[] = {{S("z1")}, {S("z2")}}, k1s[] = {{S("z1")}, {S("st")}};
    assert_int_equal(eng_zsetop(&C, ENG_ZSETOP_UNION, k12, 2, NULL, ENG_ZAGG_SUM, S("out"), NULL, NULL, NULL, &n), 0);
    assert_int_equal(n, 4);
    assert_string_equal(all("out"), "a=1 b=12 c=23 d=30");
    JOURNAL("ZUNIONSTORE out 2 z1 z2 AGGREGATE SUM");
    EVENTS("zunionstore");
    READY("out");
    double w[] = {2, 0.5};
    assert_int_equal(eng_zsetop(&C, ENG_ZSETOP_UNION, k12, 2, w, ENG_ZAGG_MIN, S("out"), NULL, NULL, NULL, &n), 0);
    assert_string_equal(all("out"), "a=2 b=4 c=6 d=15");
    JOURNAL("ZUNIONSTORE out 2 z1 z2 WEIGHTS 2 0.5 AGGREGATE MIN");
    assert_int_equal(eng_zsetop(&C, ENG_ZSETOP_INTER, k12, 2, NULL, ENG_ZAGG_MAX, S("out"), NULL, NULL, NULL, &n), 0);
    assert_string_equal(all("out"), "b=10 c=20");
    /* sets score 1 */
    assert_int_equal(eng_zsetop(&C, ENG_ZSETOP_UNION, k1s, 2, NULL, ENG_ZAGG_SUM, S("out"), NULL, NULL, NULL, &n), 0);
    assert_string_equal(all("out"), "d=1 x=1 a=2 b=2 c=3");
    assert_int_equal(eng_zsetop(&C, ENG_ZSETOP_INTER, k1s, 2, NULL, ENG_ZAGG_SUM, S("out"), NULL, NULL, NULL, &n), 0);
    assert_string_equal(all("out"), "a=2");
    assert_int_equal(eng_zsetop(&C, ENG_ZSETOP_DIFF, k1s, 2, NULL, 0, S("out"), NULL, NULL, NULL, &n), 0);
    assert_string_equal(all("out"), "b=2 c=3");
    assert_int_equal(eng_zintercard(&C, k12, 2, 0, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(eng_zintercard(&C, k12, 2, 1, &n), 0);
    assert_int_equal(n, 1);
    /* no destination: handed out in order */
    buf_reset(&dumped);
    assert_int_equal(
        eng_zsetop(&C, ENG_ZSETOP_UNION, k12, 2, NULL, ENG_ZAGG_MAX, NULL, 0, dump_head, dump_elem, NULL, NULL), 0);
    assert_string_equal(dumped_str(), "a=1 b=10 c=20 d=30");
    /* inf - inf is 0; 0 * inf is 0 */
    zadd("i1", "inf a -inf b");
    zadd("i2", "-inf a inf b");
    struct eng_str ki[] = {{S("i1")}, {S("i2")}};
    assert_int_equal(eng_zsetop(&C, ENG_ZSETOP_UNION, ki, 2, NULL, ENG_ZAGG_SUM, S("out"), NULL, NULL, NULL, &n), 0);
    assert_string_equal(all("out"), "a=0 b=0");
    double w0[] = {0, 1};
    assert_int_equal(eng_zsetop(&C, ENG_ZSETOP_UNION, ki, 2, w0, ENG_ZAGG_SUM, S("out"), NULL, NULL, NULL, &n), 0);
    assert_string_equal(all("out"), "a=-inf b=inf");
    /* the destination is replaced whatever it held, expiry included */
    assert_int_equal(eng_set(&C, S("str"), S("v"), 0, C.now_ms + 100000, NULL, NULL), 1);
    assert_int_equal(eng_zsetop(&C, ENG_ZSETOP_UNION, k12, 1, NULL, ENG_ZAGG_SUM, S("str"), NULL, NULL, NULL, &n), 0);
    assert_string_equal(all("str"), "a=1 b=2 c=3");
    assert_int_equal(eng_pttl(&C, S("str")), -1);
    assert_string_equal(enc("str"), "listpack");
    /* an empty result deletes it */
    jtake(), etake();
    struct eng_str kn[] = {{S("z1")}, {S("nokey")}};
    assert_int_equal(eng_zsetop(&C, ENG_ZSETOP_INTER, kn, 2, NULL, ENG_ZAGG_SUM, S("str"), NULL, NULL, NULL, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(eng_exists(&C, S("str")), 0);
    JOURNAL("DEL str");
    EVENTS("del");
    assert_int_equal(eng_zsetop(&C, ENG_ZSETOP_INTER, kn, 2, NULL, ENG_ZAGG_SUM, S("str"), NULL, NULL, NULL, &n), 0);
    JOURNAL("");
    EVENTS("");
    /* a destination that is also a source */
    assert_int_equal(eng_zsetop(&C, ENG_ZSETOP_UNION, k12, 2, NULL, ENG_ZAGG_SUM, S("z1"), NULL, NULL, NULL, &n), 0);
    assert_string_equal(all("z1"), "a=1 b=12 c=23 d=30");
    end();
}

static void test_rangestore(void **state)
{
    begin();
    zadd("z", "1 a 2 b 3 c 4 d");
    jtake(), etake(), rtake();
    int64_t n;
    struct eng_zrange r = by_score(2, 1, INFINITY, 0, 1, 0, 2); /* from the top, two */
    assert_int_equal(eng_zrangestore(&C, S("d"), S("z"), &r, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(all("d"), "c=3 d=4");
    JOURNAL("ZRANGESTORE d z 0 1 REV"); /* as ranks, in the same order */
    EVENTS("zrangestore");
    READY("d");
    r = by_rank(0, -1, 0);
    assert_int_equal(eng_zrangestore(&C, S("d"), S("nokey"), &r, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(eng_exists(&C, S("d")), 0);
    JOURNAL("DEL d");
    EVENTS("del");
    assert_int_equal(eng_zrangestore(&C, S("z"), S("z"), &r, &n), 0); /* onto itself */
    assert_int_equal(n, 4);
    assert_string_equal(all("z"), "a=1 b=2 c=3 d=4");
    end();
}

static void collect(void *ud, const char *m, size_t n, double score) { dump_elem(ud, m, n, score); }

static void test_scan_rand(void **state)
{
    begin();
    zadd("small", "1 a 2 b 3 c");
    uint64_t next = 99;
    buf_reset(&dumped);
    assert_int_equal(eng_zscan(&C, S("small"), 0, NULL, 0, 1, collect, NULL, &next), 0);
    assert_int_equal(next, 0);
    assert_string_equal(dumped_str(), "a=1 b=2 c=3");
    buf_reset(&dumped);
    assert_int_equal(eng_zscan(&C, S("small"), 0, S("b*"), 1, collect, NULL, &next), 0);
    assert_string_equal(dumped_str(), "b=2");
    assert_int_equal(eng_zscan(&C, S("nokey"), 5, NULL, 0, 1, collect, NULL, &next), 0);
    assert_int_equal(next, 0);
    /* a skip list: a full cursor walk sees every member */
    char m[16];
    for (int i = 0; i < 1000; i++) {
        double s = i;
        snprintf(m, sizeof m, "m%d", i);
        struct eng_str ms = {S(m)};
        struct eng_zadd_out o;
        assert_int_equal(eng_zadd(&C, S("big"), 0, &s, &ms, 1, &o), 0);
    }
    assert_string_equal(enc("big"), "skiplist");
    buf_reset(&dumped);
    uint64_t cur = 0;
    int steps = 0;
    do {
        assert_int_equal(eng_zscan(&C, S("big"), cur, NULL, 0, 10, collect, NULL, &cur), 0);
        steps++;
    } while (cur);
    assert_true(steps > 10);
    for (int i = 0; i < 1000; i++) {
        char want[32];
        snprintf(want, sizeof want, " m%d=%d ", i, i);
        struct buf b = BUF_INIT;
        buf_printf(&b, " %s ", dumped_str());
        assert_non_null(strstr(b.p, want));
        buf_release(&b);
    }
    /* ZRANDMEMBER */
    buf_reset(&dumped);
    assert_int_equal(eng_zrandmember(&C, S("small"), 10, dump_head, collect, NULL), 0);
    assert_string_equal(dumped_str(), "c=3 b=2 a=1"); /* the whole set, highest first */
    buf_reset(&dumped);
    assert_int_equal(eng_zrandmember(&C, S("small"), -7, dump_head, collect, NULL), 0);
    assert_int_equal(dump_count, 7);
    for (int count = 0; count <= 1000; count += 250) {
        buf_reset(&dumped);
        assert_int_equal(eng_zrandmember(&C, S("big"), count, dump_head, collect, NULL), 0);
        assert_int_equal(dump_count, count);
        /* distinct */
        int seen[1000] = {0};
        const char *p = dumped_str();
        for (int k = 0; k < count; k++) {
            int idx = atoi(strchr(p, 'm') + 1);
            assert_int_equal(seen[idx]++, 0);
            p = strchr(p + 1, 'm');
            if (!p)
                break;
        }
    }
    assert_int_equal(eng_zrandmember(&C, S("nokey"), 1, NULL, collect, NULL), ERR_NOKEY);
    end();
}

static void test_encodings(void **state)
{
    begin();
    char m[80];
    for (int i = 0; i < 128; i++) {
        double s = i;
        snprintf(m, sizeof m, "m%03d", i);
        struct eng_str ms = {S(m)};
        struct eng_zadd_out o;
        eng_zadd(&C, S("z"), 0, &s, &ms, 1, &o);
    }
    assert_string_equal(enc("z"), "listpack");
    zadd("z", "500 one-more");
    assert_string_equal(enc("z"), "skiplist");
    int64_t n;
    struct eng_zrange r = by_rank(0, 120, 0);
    assert_int_equal(eng_zremrange(&C, S("z"), &r, &n), 0);
    assert_string_equal(enc("z"), "skiplist"); /* for good */
    memset(m, 'x', 65);
    m[65] = '\0';
    zadd("z2", "1 a");
    char pair[100];
    snprintf(pair, sizeof pair, "2 %s", m);
    zadd("z2", pair);
    assert_string_equal(enc("z2"), "skiplist");
    m[64] = '\0';
    snprintf(pair, sizeof pair, "2 %s", m);
    zadd("z3", pair);
    assert_string_equal(enc("z3"), "listpack");
    /* a zero keeps no sign in a listpack, keeps it in a skip list */
    zadd("z3", "-0 neg");
    double s;
    assert_int_equal(eng_zscore(&C, S("z3"), S("neg"), &s), 0);
    assert_false(signbit(s));
    zadd("z2", "-0 neg");
    assert_int_equal(eng_zscore(&C, S("z2"), S("neg"), &s), 0);
    assert_true(signbit(s));
    /* COPY, MEMORY USAGE */
    assert_int_equal(eng_copy(&C, S("z"), S("zc"), 0, 0), 1);
    char *orig = xstrdup(all("z"));
    assert_string_equal(all("zc"), orig);
    xfree(orig);
    assert_string_equal(enc("zc"), "skiplist");
    assert_int_equal(eng_copy(&C, S("z3"), S("z3c"), 0, 0), 1);
    assert_string_equal(all("z3c"), "neg=0 xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx=2");
    assert_true(eng_memory_usage(&C, S("z")) > 7 * 40);
    end();
}

/* A big set: every member's rank, counts by score, deletions by rank. */
static void test_big(void **state)
{
    enum { N = 50000 };
    begin();
    char m[32];
    double *scores = malloc(sizeof *scores * N);
    struct eng_str *ms = malloc(sizeof *ms * N);
    char(*names)[16] = malloc(sizeof *names * N);
    for (int i = 0; i < N; i++) {
        snprintf(names[i], 16, "m%06d", i);
        ms[i] = (struct eng_str){names[i], strlen(names[i])};
        scores[i] = (double)((i * 7919) % N); /* a permutation of 0..N-1 */
    }
    struct eng_zadd_out o;
    assert_int_equal(eng_zadd(&C, S("b"), 0, scores, ms, N, &o), 0);
    assert_int_equal(o.added, N);
    for (int i = 0; i < N; i += 7) {
        int64_t rank;
        assert_int_equal(eng_zrank(&C, S("b"), names[i], strlen(names[i]), 0, &rank, NULL), 0);
        assert_int_equal(rank, (int64_t)scores[i]);
    }
    int64_t n;
    struct eng_zrange r = by_score(100, 0, 200, 1, 0, 0, -1);
    assert_int_equal(eng_zcount(&C, S("b"), &r, &n), 0);
    assert_int_equal(n, 100);
    /* LIMIT far into a reverse walk: the three lowest, highest first */
    r = by_score(-INFINITY, 0, INFINITY, 0, 1, N - 3, 10);
    char want[64] = "";
    for (int s = 2; s >= 0; s--)
        for (int i = 0; i < N; i++)
            if (scores[i] == s)
                snprintf(m, sizeof m, "%s=%d", names[i], s), strcat(want, s == 2 ? "" : " "), strcat(want, m);
    assert_string_equal(zr("b", &r), want);
    /* remove the middle by rank: ranks shift */
    r = by_rank(1000, N - 1001, 0);
    assert_int_equal(eng_zremrange(&C, S("b"), &r, &n), 0);
    assert_int_equal(n, N - 2000);
    for (int i = 0; i < N; i += 11) {
        int64_t rank;
        int rc = eng_zrank(&C, S("b"), names[i], strlen(names[i]), 0, &rank, NULL);
        if (scores[i] >= 1000 && scores[i] < N - 1000) {
            assert_int_equal(rc, ERR_NOKEY);
        } else {
            assert_int_equal(rc, 0);
            assert_int_equal(rank, scores[i] < 1000 ? (int64_t)scores[i] : (int64_t)scores[i] - (N - 2000));
        }
    }
    free(scores), free(ms), free(names);
    end();
}

/* ---- random operations against a model; the journal replays ---------------- */


static int64_t num(const struct eng_str *s)
{
    int64_t v;
    assert_int_equal(num_parse_i64(s->p, s->n, &v), 0);
    return v;
}
static double dnum(const struct eng_str *s)
{
    char t[64];
    snprintf(t, sizeof t, "%.*s", (int)s->n, s->p);
    return strtod(t, NULL);
}
static void sink(void *ud, const char *m, size_t n, double score) {}

static void replay(void *ud, int db, int argc, const struct eng_str *a)
{
    struct eng_ctx c;
    eng_ctx_init(&c, R, db);
    eng_lock_all(&c);
    int64_t n;
    struct eng_zadd_out o;
    if (is(&a[0], "ZADD")) {
        int k = (argc - 2) / 2;
        double sc[64];
        struct eng_str ms[64];
        assert_true(k <= 64);
        for (int i = 0; i < k; i++)
            sc[i] = dnum(&a[2 + 2 * i]), ms[i] = a[3 + 2 * i];
        assert_int_equal(eng_zadd(&c, a[1].p, a[1].n, 0, sc, ms, k, &o), 0);
    } else if (is(&a[0], "ZREM")) {
        assert_int_equal(eng_zrem(&c, a[1].p, a[1].n, &a[2], argc - 2, &n), 0);
    } else if (is(&a[0], "ZPOPMIN") || is(&a[0], "ZPOPMAX")) {
        assert_int_equal(eng_zpop(&c, a[1].p, a[1].n, is(&a[0], "ZPOPMAX"), num(&a[2]), NULL, sink, NULL), 0);
    } else if (is(&a[0], "ZREMRANGEBYRANK")) {
        struct eng_zrange r = by_rank(num(&a[2]), num(&a[3]), 0);
        assert_int_equal(eng_zremrange(&c, a[1].p, a[1].n, &r, &n), 0);
    } else if (is(&a[0], "ZRANGESTORE")) {
        struct eng_zrange r = by_rank(num(&a[3]), num(&a[4]), argc > 5 && is(&a[5], "REV"));
        assert_int_equal(eng_zrangestore(&c, a[1].p, a[1].n, a[2].p, a[2].n, &r, &n), 0);
    } else if (is(&a[0], "ZUNIONSTORE") || is(&a[0], "ZINTERSTORE")) {
        int k = (int)num(&a[2]), i = 3 + k, agg = ENG_ZAGG_SUM;
        double w[8], *wp = NULL;
        if (i < argc && is(&a[i], "WEIGHTS")) {
            for (int j = 0; j < k; j++)
                w[j] = dnum(&a[i + 1 + j]);
            wp = w, i += k + 1;
        }
        if (i < argc && is(&a[i], "AGGREGATE"))
            agg = is(&a[i + 1], "MIN") ? ENG_ZAGG_MIN : is(&a[i + 1], "MAX") ? ENG_ZAGG_MAX : ENG_ZAGG_SUM;
        assert_int_equal(
            eng_zsetop(&c, is(&a[0], "ZINTERSTORE"), &a[3], k, wp, agg, a[1].p, a[1].n, NULL, NULL, NULL, &n), 0);
    } else if (is(&a[0], "DEL")) {
        eng_del(&c, a[1].p, a[1].n);
    } else {
        fail_msg("unexpected journal command %.*s", (int)a[0].n, a[0].p);
    }
    eng_unlock(&c);
}

#define NK 3
#define NM 40
static struct {
    double s[NM];
    int has[NM];
} Z[NK];

static int zcmp_model(const void *a, const void *b, void *ud)
{
    int k = *(int *)ud, x = *(const int *)a, y = *(const int *)b;
    if (Z[k].s[x] != Z[k].s[y])
        return Z[k].s[x] < Z[k].s[y] ? -1 : 1;
    char mx[8], my[8];
    snprintf(mx, 8, "m%d", x), snprintf(my, 8, "m%d", y);
    return strcmp(mx, my);
}

/* The model's members of k in order, as all() writes them. */
static void model_dump(int k, struct buf *out)
{
    int idx[NM], n = 0;
    for (int i = 0; i < NM; i++)
        if (Z[k].has[i])
            idx[n++] = i;
    qsort_r(idx, (size_t)n, sizeof idx[0], zcmp_model, &k);
    for (int i = 0; i < n; i++) {
        char num_[64];
        num_fmt_double(num_, sizeof num_, Z[k].s[idx[i]]);
        buf_printf(out, "%sm%d=%s", i ? " " : "", idx[i], num_);
    }
}

static void test_random_vs_model(void **state)
{
    unsigned seed = env_seed("test_zset");
    srand(seed);
    struct eng_config cfg = {.nshards = 2, .ndb = 2};
    R = eng_new(&cfg);
    struct eng_hooks h = {.journal = replay};
    eng_set_hooks(E, &h);
    memset(Z, 0, sizeof Z);
    char key[8], m[8], pairs[64];
    for (int op = 0; op < 5000; op++) {
        int k = rand() % NK, mi = rand() % NM;
        snprintf(key, sizeof key, "k%d", k);
        snprintf(m, sizeof m, "m%d", mi);
        double sc = (rand() % 21 - 10) / 2.0;
        int64_t n;
        struct eng_zadd_out o;
        begin();
        switch (rand() % 8) {
        case 0:
        case 1:
            snprintf(pairs, sizeof pairs, "%.17g %s", sc, m);
            assert_int_equal(zadd_f(key, 0, pairs, &o), 0);
            assert_int_equal(o.added, !Z[k].has[mi]);
            Z[k].s[mi] = sc, Z[k].has[mi] = 1;
            break;
        case 2:
            snprintf(pairs, sizeof pairs, "%.17g %s", sc, m);
            assert_int_equal(zadd_f(key, ENG_ZADD_INCR, pairs, &o), 0);
            Z[k].s[mi] = (Z[k].has[mi] ? Z[k].s[mi] : 0) + sc, Z[k].has[mi] = 1;
            assert_true(o.score == Z[k].s[mi]);
            break;
        case 3: {
            struct eng_str ms = {S(m)};
            assert_int_equal(eng_zrem(&C, S(key), &ms, 1, &n), 0);
            assert_int_equal(n, Z[k].has[mi]);
            Z[k].has[mi] = 0;
            break;
        }
        case 4: {
            int64_t rank;
            int rc = eng_zrank(&C, S(key), S(m), 0, &rank, NULL);
            if (!Z[k].has[mi]) {
                assert_int_equal(rc, ERR_NOKEY);
                break;
            }
            int64_t want = 0;
            for (int i = 0; i < NM; i++)
                want += Z[k].has[i] && zcmp_model(&i, &mi, &k) < 0;
            assert_int_equal(rank, want);
            break;
        }
        case 5: { /* pop or remove a score range */
            if (rand() % 2) {
                int max = rand() % 2, cnt = 1 + rand() % 3;
                assert_true(eng_zpop(&C, S(key), max, cnt, NULL, sink, NULL) <= 0);
                for (int c = 0; c < cnt; c++) {
                    int best = -1;
                    for (int i = 0; i < NM; i++)
                        if (Z[k].has[i] && (best < 0 || (zcmp_model(&i, &best, &k) < 0) != max))
                            best = i;
                    if (best >= 0)
                        Z[k].has[best] = 0;
                }
            } else {
                struct eng_zrange r = by_score(sc, rand() % 2, sc + 2, rand() % 2, 0, 0, -1);
                assert_int_equal(eng_zremrange(&C, S(key), &r, &n), 0);
                int64_t want = 0;
                for (int i = 0; i < NM; i++) {
                    if (!Z[k].has[i])
                        continue;
                    double v = Z[k].s[i];
                    if ((r.minex ? v > r.min : v >= r.min) && (r.maxex ? v < r.max : v <= r.max))
                        Z[k].has[i] = 0, want++;
                }
                assert_int_equal(n, want);
            }
            break;
        }
        case 6: { /* union or inter of the other two into this one */
            if (rand() % 4)
                break;
            int a = (k + 1) % NK, b = (k + 2) % NK, inter = rand() % 2;
            char ka[8], kb[8];
            snprintf(ka, sizeof ka, "k%d", a), snprintf(kb, sizeof kb, "k%d", b);
            struct eng_str keys[] = {{S(ka)}, {S(kb)}};
            double w[] = {1, 2};
            assert_int_equal(eng_zsetop(&C, inter, keys, 2, w, ENG_ZAGG_SUM, S(key), NULL, NULL, NULL, &n), 0);
            for (int i = 0; i < NM; i++) {
                int ha = Z[a].has[i], hb = Z[b].has[i];
                Z[k].has[i] = inter ? ha && hb : ha || hb;
                if (ha && hb)
                    Z[k].s[i] = Z[a].s[i] + 2 * Z[b].s[i];
                else if (ha)
                    Z[k].s[i] = Z[a].s[i];
                else if (hb)
                    Z[k].s[i] = 2 * Z[b].s[i];
            }
            break;
        }
        default: { /* store the lowest half by rank */
            if (rand() % 4)
                break;
            int src = (k + 1) % NK;
            char ks[8];
            snprintf(ks, sizeof ks, "k%d", src);
            struct eng_zrange r = by_rank(0, 9, 0);
            assert_int_equal(eng_zrangestore(&C, S(key), S(ks), &r, &n), 0);
            int idx[NM], cnt = 0;
            for (int i = 0; i < NM; i++)
                if (Z[src].has[i])
                    idx[cnt++] = i;
            qsort_r(idx, (size_t)cnt, sizeof idx[0], zcmp_model, &src);
            memset(Z[k].has, 0, sizeof Z[k].has);
            for (int i = 0; i < cnt && i < 10; i++)
                Z[k].has[idx[i]] = 1, Z[k].s[idx[i]] = Z[src].s[idx[i]];
            break;
        }
        }
        end();
    }
    /* model, master and replica agree */
    struct eng *engines[2] = {E, R};
    for (int k = 0; k < NK; k++) {
        snprintf(key, sizeof key, "k%d", k);
        struct buf want = BUF_INIT;
        model_dump(k, &want);
        for (int w = 0; w < 2; w++) {
            eng_ctx_init(&C, engines[w], 0);
            eng_lock_all(&C);
            const char *got = all(key);
            if (strcmp(got, want.len ? want.p : "(nokey)"))
                fail_msg("SEED=%u %s engine %d: [%s] model [%s]", seed, key, w, got, want.p ? want.p : "");
            eng_unlock(&C);
        }
        buf_release(&want);
    }
    eng_free(R);
    R = NULL;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_zadd_flags, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reads_and_wrongtype, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ranges, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remove_ranges, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pops, setup, teardown),
        cmocka_unit_test_setup_teardown(test_setops, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rangestore, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scan_rand, setup, teardown),
        cmocka_unit_test_setup_teardown(test_encodings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_big, setup, teardown),
        cmocka_unit_test_setup_teardown(test_random_vs_model, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
