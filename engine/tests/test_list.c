/* test_list.c: engine/t_list.c through list.h.  Pushes and pops at both
 * ends (with counts, the key going with its last element), LRANGE/LINDEX
 * index rules, LSET/LINSERT/LREM/LTRIM/LPOS, LMOVE (rotation, and nothing
 * moved on a WRONGTYPE destination), the first-non-empty pop of LMPOP and
 * the blocking pops, the encodings as OBJECT ENCODING names them (listpack,
 * quicklist past 8 KiB, listpack again when it shrinks to one half-full
 * block), walks over a big list of mixed element sizes (node splits and
 * merges), type ops (COPY, MEMORY USAGE, free), the journal, notifications
 * and the ready hook, and a random test against a model whose journal is
 * replayed into a second engine (prints and accepts SEED=). */
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
#include "list.h"

#include "test_util.h"

/* Pushes the space-separated words of `words` (NULL: none). */
static int64_t push(const char *key, int where, const char *words)
{
    struct eng_str v[64];
    int n = 0;
    char tmp[512];
    snprintf(tmp, sizeof tmp, "%s", words);
    for (char *t = strtok(tmp, " "); t; t = strtok(NULL, " "))
        v[n].p = words + (t - tmp), v[n].n = strlen(t), n++;
    int64_t len = -1;
    assert_int_equal(eng_list_push(&C, S(key), where, 0, v, n, &len), 0);
    return len;
}

/* Elements handed out, space separated (in dumped). */
static int64_t dump_count;
static void dump_head(void *ud, int64_t n) { dump_count = n; }
static void dump_elem(void *ud, const char *p, size_t n)
{
    buf_printf(&dumped, "%s%.*s", dumped.len ? " " : "", (int)n, p);
}
static const char *dumped_str(void) { return dumped.p ? dumped.p : ""; }

static const char *range(const char *key, int64_t start, int64_t stop)
{
    buf_reset(&dumped);
    dump_count = -1;
    int rc = eng_list_range(&C, S(key), start, stop, dump_head, dump_elem, NULL);
    if (rc == ERR_NOKEY)
        return "(nokey)";
    assert_int_equal(rc, 0);
    return dumped_str();
}

static const char *pop(const char *key, int where, int64_t count)
{
    buf_reset(&dumped);
    dump_count = -1;
    int rc = eng_list_pop(&C, S(key), where, count, dump_head, dump_elem, NULL);
    if (rc == ERR_NOKEY)
        return "(nokey)";
    assert_int_equal(rc, 0);
    return dumped_str();
}

static const char *enc(const char *key)
{
    const char *e = eng_object_encoding(&C, S(key));
    return e ? e : "(none)";
}

/* ---- tests ---------------------------------------------------------------- */

static void test_push_pop(void **state)
{
    begin();
    assert_int_equal(push("l", ENG_LIST_TAIL, "a b c"), 3);
    assert_int_equal(push("l", ENG_LIST_HEAD, "x y"), 5); /* one after the other: y first */
    assert_string_equal(range("l", 0, -1), "y x a b c");
    assert_int_equal(dump_count, 5);
    JOURNAL("RPUSH l a b c | LPUSH l x y");
    EVENTS("rpush lpush");
    READY("l l");
    int64_t len;
    assert_int_equal(eng_list_len(&C, S("l"), &len), 0);
    assert_int_equal(len, 5);
    assert_int_equal(eng_list_len(&C, S("nokey"), &len), 0);
    assert_int_equal(len, 0);

    assert_string_equal(pop("l", ENG_LIST_HEAD, 1), "y");
    assert_string_equal(pop("l", ENG_LIST_TAIL, 2), "c b");
    assert_int_equal(dump_count, 2);
    JOURNAL("LPOP l | RPOP l 2");
    EVENTS("lpop rpop");
    assert_string_equal(pop("l", ENG_LIST_TAIL, 100), "a x"); /* more than there are */
    assert_int_equal(dump_count, 2);
    JOURNAL("RPOP l 2");
    EVENTS("rpop del");
    assert_int_equal(eng_exists(&C, S("l")), 0);
    assert_string_equal(pop("l", ENG_LIST_TAIL, 1), "(nokey)");
    READY("");

    /* LPUSHX/RPUSHX: nothing on a missing key */
    struct eng_str v = {S("z")};
    assert_int_equal(eng_list_push(&C, S("l"), ENG_LIST_HEAD, 1, &v, 1, &len), 0);
    assert_int_equal(len, 0);
    assert_int_equal(eng_exists(&C, S("l")), 0);
    JOURNAL("");
    push("l", ENG_LIST_TAIL, "a");
    assert_int_equal(eng_list_push(&C, S("l"), ENG_LIST_HEAD, 1, &v, 1, &len), 0);
    assert_int_equal(len, 2);
    assert_string_equal(range("l", 0, -1), "z a");
    end();
}

static void test_wrongtype(void **state)
{
    begin();
    assert_int_equal(eng_set(&C, S("s"), S("v"), 0, 0, NULL, NULL), 1);
    push("l", ENG_LIST_TAIL, "a");
    jtake(), etake(), rtake();
    struct eng_str v = {S("x")}, out;
    int64_t n;
    assert_int_equal(eng_list_push(&C, S("s"), 0, 0, &v, 1, &n), ERR_WRONGTYPE);
    assert_int_equal(eng_list_push(&C, S("s"), 0, 1, &v, 1, &n), ERR_WRONGTYPE);
    assert_int_equal(eng_list_pop(&C, S("s"), 0, 1, NULL, dump_elem, NULL), ERR_WRONGTYPE);
    assert_int_equal(eng_list_len(&C, S("s"), &n), ERR_WRONGTYPE);
    assert_int_equal(eng_list_range(&C, S("s"), 0, -1, NULL, dump_elem, NULL), ERR_WRONGTYPE);
    assert_int_equal(eng_list_index(&C, S("s"), 0, &out), ERR_WRONGTYPE);
    assert_int_equal(eng_list_set(&C, S("s"), 0, S("x")), ERR_WRONGTYPE);
    assert_int_equal(eng_list_insert(&C, S("s"), 0, S("a"), S("b"), &n), ERR_WRONGTYPE);
    assert_int_equal(eng_list_rem(&C, S("s"), 0, S("a"), &n), ERR_WRONGTYPE);
    assert_int_equal(eng_list_trim(&C, S("s"), 0, 1), ERR_WRONGTYPE);
    assert_int_equal(eng_list_pos(&C, S("s"), S("a"), 1, 1, 0, NULL, NULL), ERR_WRONGTYPE);
    /* LMOVE: a wrong destination moves nothing; a missing source wins */
    assert_int_equal(eng_lmove(&C, S("l"), S("s"), 0, 0, NULL, dump_elem, NULL), ERR_WRONGTYPE);
    assert_string_equal(range("l", 0, -1), "a");
    assert_int_equal(eng_lmove(&C, S("nokey"), S("s"), 0, 0, NULL, dump_elem, NULL), ERR_NOKEY);
    assert_int_equal(eng_lmove(&C, S("s"), S("l"), 0, 0, NULL, dump_elem, NULL), ERR_WRONGTYPE);
    JOURNAL("");
    EVENTS("");
    READY("");
    end();
}

static void test_index_set_insert(void **state)
{
    begin();
    push("l", ENG_LIST_TAIL, "a b c d");
    struct eng_str v;
    assert_int_equal(eng_list_index(&C, S("l"), 0, &v), 0);
    assert_memory_equal(v.p, "a", 1);
    assert_int_equal(eng_list_index(&C, S("l"), -1, &v), 0);
    assert_memory_equal(v.p, "d", 1);
    assert_int_equal(eng_list_index(&C, S("l"), 4, &v), ERR_RANGE);
    assert_int_equal(eng_list_index(&C, S("l"), -5, &v), ERR_RANGE);
    assert_int_equal(eng_list_index(&C, S("nokey"), 0, &v), ERR_NOKEY);

    jtake(), etake(), rtake();
    assert_int_equal(eng_list_set(&C, S("l"), -2, S("CCC")), 0);
    assert_int_equal(eng_list_set(&C, S("l"), 9, S("x")), ERR_RANGE);
    assert_int_equal(eng_list_set(&C, S("nokey"), 0, S("x")), ERR_NOKEY);
    assert_string_equal(range("l", 0, -1), "a b CCC d");
    JOURNAL("LSET l -2 CCC");
    EVENTS("lset");

    int64_t len;
    assert_int_equal(eng_list_insert(&C, S("l"), 0, S("a"), S("first"), &len), 0);
    assert_int_equal(len, 5);
    assert_int_equal(eng_list_insert(&C, S("l"), 1, S("d"), S("last"), &len), 0);
    assert_int_equal(len, 6);
    assert_int_equal(eng_list_insert(&C, S("l"), 1, S("b"), S("b2"), &len), 0);
    assert_int_equal(eng_list_insert(&C, S("l"), 1, S("zz"), S("x"), &len), 0);
    assert_int_equal(len, -1);
    assert_int_equal(eng_list_insert(&C, S("nokey"), 1, S("a"), S("x"), &len), 0);
    assert_int_equal(len, 0);
    assert_string_equal(range("l", 0, -1), "first a b b2 CCC d last");
    JOURNAL("LINSERT l BEFORE a first | LINSERT l AFTER d last | LINSERT l AFTER b b2");
    EVENTS("linsert linsert linsert");

    /* LRANGE's index rules */
    assert_string_equal(range("l", -3, -1), "CCC d last");
    assert_string_equal(range("l", -100, 1), "first a");
    assert_string_equal(range("l", 5, 100), "d last");
    assert_string_equal(range("l", 3, 2), "");
    assert_int_equal(dump_count, 0);
    assert_string_equal(range("l", 7, 9), "");
    assert_string_equal(range("nokey", 0, -1), "(nokey)");
    end();
}

static void test_rem_trim(void **state)
{
    begin();
    push("r", ENG_LIST_TAIL, "a b a c a d a");
    jtake(), etake();
    int64_t n;
    assert_int_equal(eng_list_rem(&C, S("r"), 2, S("a"), &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(range("r", 0, -1), "b c a d a");
    assert_int_equal(eng_list_rem(&C, S("r"), -1, S("a"), &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(range("r", 0, -1), "b c a d");
    assert_int_equal(eng_list_rem(&C, S("r"), 0, S("zz"), &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(eng_list_rem(&C, S("nokey"), 0, S("a"), &n), 0);
    assert_int_equal(n, 0);
    JOURNAL("LREM r 2 a | LREM r -1 a");
    EVENTS("lrem lrem");
    assert_int_equal(eng_list_rem(&C, S("r"), 0, S("a"), &n), 0);
    assert_string_equal(range("r", 0, -1), "b c d");

    push("t", ENG_LIST_TAIL, "1 2 3 4 5 6");
    jtake(), etake();
    assert_int_equal(eng_list_trim(&C, S("t"), 1, -2), 0);
    assert_string_equal(range("t", 0, -1), "2 3 4 5");
    assert_int_equal(eng_list_trim(&C, S("t"), 0, -1), 0); /* nothing goes: no journal */
    JOURNAL("LTRIM t 1 -2");
    EVENTS("ltrim ltrim");
    /* An empty range empties the list; the journal keeps the arguments as
     * given (normalised ones would replay differently). */
    assert_int_equal(eng_list_trim(&C, S("t"), 0, -15), 0);
    assert_int_equal(eng_exists(&C, S("t")), 0);
    JOURNAL("LTRIM t 0 -15");
    EVENTS("ltrim del");
    assert_int_equal(eng_list_trim(&C, S("t"), 0, 1), 0);
    EVENTS("");
    end();
}

static int64_t found[16];
static int nfound;
static void on_pos(void *ud, int64_t i) { found[nfound++] = i; }

static const char *lpos(const char *key, const char *e, int64_t rank, int64_t count, int64_t maxlen)
{
    static char out[128];
    nfound = 0;
    assert_int_equal(eng_list_pos(&C, S(key), S(e), rank, count, maxlen, on_pos, NULL), 0);
    size_t off = 0;
    out[0] = '\0';
    for (int i = 0; i < nfound; i++)
        off += (size_t)snprintf(out + off, sizeof out - off, i ? " %lld" : "%lld", (long long)found[i]);
    return out;
}

static void test_pos(void **state)
{
    begin();
    push("p", ENG_LIST_TAIL, "a b c 1 2 3 c b a");
    assert_string_equal(lpos("p", "c", 1, 1, 0), "2");
    assert_string_equal(lpos("p", "c", 2, 1, 0), "6");
    assert_string_equal(lpos("p", "c", -1, 1, 0), "6");
    assert_string_equal(lpos("p", "c", -2, 1, 0), "2");
    assert_string_equal(lpos("p", "c", 3, 1, 0), "");
    assert_string_equal(lpos("p", "a", 1, 0, 0), "0 8");
    assert_string_equal(lpos("p", "a", -1, 0, 0), "8 0");
    assert_string_equal(lpos("p", "a", 1, 0, 1), "0");
    assert_string_equal(lpos("p", "a", -1, 0, 1), "8");
    assert_string_equal(lpos("p", "b", 1, 0, 7), "1");
    assert_string_equal(lpos("p", "zz", 1, 0, 0), "");
    assert_string_equal(lpos("nokey", "a", 1, 0, 0), "");
    end();
}

static void test_lmove(void **state)
{
    begin();
    push("m1", ENG_LIST_TAIL, "a b c");
    jtake(), etake(), rtake();
    buf_reset(&dumped);
    assert_int_equal(eng_lmove(&C, S("m1"), S("m2"), ENG_LIST_HEAD, ENG_LIST_TAIL, NULL, dump_elem, NULL), 0);
    assert_string_equal(dumped_str(), "a");
    JOURNAL("LMOVE m1 m2 LEFT RIGHT");
    EVENTS("rpush lpop");
    READY("m2");
    /* rotation */
    assert_int_equal(eng_lmove(&C, S("m1"), S("m1"), ENG_LIST_TAIL, ENG_LIST_HEAD, NULL, dump_elem, NULL), 0);
    assert_string_equal(range("m1", 0, -1), "c b");
    /* the last element leaves, the source goes */
    assert_int_equal(eng_lmove(&C, S("m2"), S("m2"), ENG_LIST_TAIL, ENG_LIST_HEAD, NULL, dump_elem, NULL), 0);
    assert_string_equal(range("m2", 0, -1), "a");
    etake();
    assert_int_equal(eng_lmove(&C, S("m2"), S("m1"), ENG_LIST_TAIL, ENG_LIST_HEAD, NULL, dump_elem, NULL), 0);
    EVENTS("lpush rpop del");
    assert_int_equal(eng_exists(&C, S("m2")), 0);
    assert_string_equal(range("m1", 0, -1), "a c b");
    end();
}

static int which_at_head = -1, which_seen;
static void mpop_head(void *ud, int64_t n)
{
    which_at_head = *(int *)ud;
    dump_count = n;
}

static void test_mpop(void **state)
{
    begin();
    assert_int_equal(eng_set(&C, S("s"), S("v"), 0, 0, NULL, NULL), 1);
    push("b", ENG_LIST_TAIL, "1 2 3");
    struct eng_str keys[] = {{S("nokey")}, {S("b")}, {S("s")}};
    int which = -1;
    buf_reset(&dumped);
    jtake();
    assert_int_equal(eng_list_mpop(&C, keys, 3, ENG_LIST_TAIL, 2, mpop_head, dump_elem, &which, &which), 0);
    assert_int_equal(which, 1);
    assert_int_equal(which_at_head, 1); /* known when the head is written */
    assert_string_equal(dumped_str(), "3 2");
    JOURNAL("RPOP b 2");
    assert_int_equal(eng_list_mpop(&C, keys, 1, ENG_LIST_TAIL, 2, NULL, dump_elem, NULL, &which), ERR_NOKEY);
    assert_int_equal(eng_list_mpop(&C, keys + 2, 1, ENG_LIST_TAIL, 2, NULL, dump_elem, NULL, &which), ERR_WRONGTYPE);
    (void)which_seen;
    end();
}

static void test_encodings(void **state)
{
    begin();
    char big[10000];
    memset(big, 'x', sizeof big);
    push("l", ENG_LIST_TAIL, "a b c");
    assert_string_equal(enc("l"), "listpack");
    /* past 8 KiB: a quicklist */
    struct eng_str v = {big, 100};
    int64_t len;
    for (int i = 0; i < 100; i++)
        assert_int_equal(eng_list_push(&C, S("l"), ENG_LIST_TAIL, 0, &v, 1, &len), 0);
    assert_string_equal(enc("l"), "quicklist");
    /* Two blocks (3 + 80 and 20 entries), then one block over half the
     * limit: still a quicklist; at most half full: a listpack again. */
    pop("l", ENG_LIST_TAIL, 15);
    assert_int_equal(dump_count, 15);
    assert_string_equal(enc("l"), "quicklist");
    pop("l", ENG_LIST_TAIL, 10);
    assert_string_equal(enc("l"), "quicklist");
    pop("l", ENG_LIST_TAIL, 40);
    assert_string_equal(enc("l"), "listpack");
    assert_string_equal(range("l", 0, 2), "a b c");
    /* one element over 8 KiB */
    v.n = sizeof big;
    assert_int_equal(eng_list_push(&C, S("big"), ENG_LIST_TAIL, 0, &v, 1, &len), 0);
    assert_string_equal(enc("big"), "quicklist");
    struct eng_str got;
    assert_int_equal(eng_list_index(&C, S("big"), 0, &got), 0);
    assert_int_equal(got.n, sizeof big);
    /* LSET of a big element into a small list */
    assert_int_equal(eng_list_set(&C, S("l"), 1, big, sizeof big), 0);
    assert_string_equal(enc("l"), "quicklist");
    assert_int_equal(eng_list_set(&C, S("l"), 1, S("b")), 0);
    assert_string_equal(enc("l"), "listpack");

    /* COPY duplicates, MEMORY USAGE counts the blocks */
    assert_int_equal(eng_copy(&C, S("l"), S("l2"), 0, 0), 1);
    assert_string_equal(range("l2", 0, 2), "a b c");
    assert_true(eng_memory_usage(&C, S("big")) > (int64_t)sizeof big);
    end();
}

/* A big list of mixed sizes walked against an array model. */
#define NBIG 20000
static char *model[NBIG * 2];
static size_t model_n;

static void model_insert(size_t at, const char *s)
{
    memmove(model + at + 1, model + at, sizeof *model * (model_n - at));
    model[at] = xstrdup(s);
    model_n++;
}

static char *mkelem(unsigned r, char *buf)
{
    size_t n = r % 10 == 0 ? 200 + r % 300 : r % 100 == 1 ? 9000 : 1 + r % 12;
    for (size_t i = 0; i < n; i++)
        buf[i] = (char)('a' + (r + i) % 26);
    buf[n] = '\0';
    return buf;
}

static void check_model(const char *key)
{
    int64_t len;
    assert_int_equal(eng_list_len(&C, S(key), &len), 0);
    assert_int_equal(len, (int64_t)model_n);
    for (size_t i = 0; i < model_n; i += 1 + i % 7) {
        struct eng_str v;
        int64_t idx = (i & 1) ? (int64_t)i - (int64_t)model_n : (int64_t)i;
        assert_int_equal(eng_list_index(&C, S(key), idx, &v), 0);
        assert_int_equal(v.n, strlen(model[i]));
        assert_memory_equal(v.p, model[i], v.n);
    }
}

static void test_big_list(void **state)
{
    static char buf[10000];
    srand(7);
    begin();
    model_n = 0;
    for (int i = 0; i < NBIG; i++) {
        char *e = mkelem((unsigned)rand(), buf);
        int head = rand() % 2;
        struct eng_str v = {e, strlen(e)};
        int64_t len;
        assert_int_equal(eng_list_push(&C, S("big"), head ? ENG_LIST_HEAD : ENG_LIST_TAIL, 0, &v, 1, &len), 0);
        model_insert(head ? 0 : model_n, e);
    }
    assert_string_equal(enc("big"), "quicklist");
    check_model("big");
    /* inserts in the middle split full nodes */
    for (int i = 0; i < 2000; i++) {
        size_t at = (size_t)rand() % model_n;
        char pivot[10000];
        strcpy(pivot, model[at]);
        size_t first = 0;
        while (strcmp(model[first], pivot))
            first++;
        char *e = mkelem((unsigned)rand(), buf);
        int64_t len;
        int after = rand() % 2;
        assert_int_equal(eng_list_insert(&C, S("big"), after, S(pivot), S(e), &len), 0);
        model_insert(first + (size_t)after, e);
        assert_int_equal(len, (int64_t)model_n);
    }
    check_model("big");
    /* LSET with other sizes */
    for (int i = 0; i < 2000; i++) {
        size_t at = (size_t)rand() % model_n;
        char *e = mkelem((unsigned)rand(), buf);
        assert_int_equal(eng_list_set(&C, S("big"), (int64_t)at, S(e)), 0);
        xfree(model[at]);
        model[at] = xstrdup(e);
    }
    check_model("big");
    /* LRANGE windows */
    for (int i = 0; i < 200; i++) {
        size_t a = (size_t)rand() % model_n, n = (size_t)rand() % 30;
        range("big", (int64_t)a, (int64_t)(a + n));
        struct buf want = BUF_INIT;
        for (size_t j = a; j <= a + n && j < model_n; j++)
            buf_printf(&want, "%s%s", want.len ? " " : "", model[j]);
        assert_string_equal(dumped_str(), want.p ? want.p : "");
        buf_release(&want);
    }
    /* LTRIM to the middle, then pops from both ends */
    assert_int_equal(eng_list_trim(&C, S("big"), 1000, -1001), 0);
    for (size_t i = 0; i < 1000; i++)
        xfree(model[i]), xfree(model[model_n - 1 - i]);
    memmove(model, model + 1000, sizeof *model * (model_n - 2000));
    model_n -= 2000;
    check_model("big");
    pop("big", ENG_LIST_HEAD, 333);
    pop("big", ENG_LIST_TAIL, 444);
    for (size_t i = 0; i < 333; i++)
        xfree(model[i]);
    for (size_t i = model_n - 444; i < model_n; i++)
        xfree(model[i]);
    memmove(model, model + 333, sizeof *model * (model_n - 333 - 444));
    model_n -= 777;
    check_model("big");
    for (size_t i = 0; i < model_n; i++)
        xfree(model[i]);
    model_n = 0;
    end();
}

/* ---- random operations against a model; the journal replays ---------------- */


static int64_t num(const struct eng_str *s)
{
    int64_t v;
    assert_int_equal(num_parse_i64(s->p, s->n, &v), 0);
    return v;
}
static void sink(void *ud, const char *p, size_t n) {}

static void replay(void *ud, int db, int argc, const struct eng_str *a)
{
    struct eng_ctx c;
    eng_ctx_init(&c, R, db);
    eng_lock_all(&c);
    int64_t n;
    if (is(&a[0], "LPUSH") || is(&a[0], "RPUSH"))
        assert_int_equal(eng_list_push(&c, a[1].p, a[1].n, is(&a[0], "RPUSH"), 0, &a[2], argc - 2, &n), 0);
    else if (is(&a[0], "LPOP") || is(&a[0], "RPOP"))
        assert_int_equal(
            eng_list_pop(&c, a[1].p, a[1].n, is(&a[0], "RPOP"), argc > 2 ? num(&a[2]) : 1, NULL, sink, NULL), 0);
    else if (is(&a[0], "LSET"))
        assert_int_equal(eng_list_set(&c, a[1].p, a[1].n, num(&a[2]), a[3].p, a[3].n), 0);
    else if (is(&a[0], "LINSERT"))
        assert_int_equal(eng_list_insert(&c, a[1].p, a[1].n, is(&a[2], "AFTER"), a[3].p, a[3].n, a[4].p, a[4].n, &n),
                         0);
    else if (is(&a[0], "LREM"))
        assert_int_equal(eng_list_rem(&c, a[1].p, a[1].n, num(&a[2]), a[3].p, a[3].n, &n), 0);
    else if (is(&a[0], "LTRIM"))
        assert_int_equal(eng_list_trim(&c, a[1].p, a[1].n, num(&a[2]), num(&a[3])), 0);
    else if (is(&a[0], "LMOVE"))
        assert_int_equal(
            eng_lmove(&c, a[1].p, a[1].n, a[2].p, a[2].n, is(&a[3], "RIGHT"), is(&a[4], "RIGHT"), NULL, sink, NULL), 0);
    else
        fail_msg("unexpected journal command %.*s", (int)a[0].n, a[0].p);
    eng_unlock(&c);
}

#define NK 3
#define MAXL 400
static struct {
    char v[MAXL][8];
    int n;
} M[NK];

static void m_insert(int k, int at, const char *s)
{
    memmove(M[k].v[at + 1], M[k].v[at], sizeof M[k].v[0] * (size_t)(M[k].n - at));
    snprintf(M[k].v[at], 8, "%s", s);
    M[k].n++;
}
static void m_delete(int k, int at)
{
    memmove(M[k].v[at], M[k].v[at + 1], sizeof M[k].v[0] * (size_t)(M[k].n - at - 1));
    M[k].n--;
}
static int m_find(int k, const char *s)
{
    for (int i = 0; i < M[k].n; i++)
        if (!strcmp(M[k].v[i], s))
            return i;
    return -1;
}

static void test_random_vs_model(void **state)
{
    unsigned seed = env_seed("test_list");
    srand(seed);
    struct eng_config cfg = {.nshards = 2, .ndb = 2};
    R = eng_new(&cfg);
    struct eng_hooks h = {.journal = replay};
    eng_set_hooks(E, &h);
    memset(M, 0, sizeof M);
    char key[8], e[8], e2[8];
    for (int op = 0; op < 6000; op++) {
        int k = rand() % NK;
        snprintf(key, sizeof key, "k%d", k);
        snprintf(e, sizeof e, "%d", rand() % 12);
        snprintf(e2, sizeof e2, "%d", rand() % 12);
        int64_t n;
        begin();
        switch (rand() % 9) {
        case 0:
        case 1:
            if (M[k].n < MAXL - 1) {
                int head = rand() % 2;
                push(key, head ? ENG_LIST_HEAD : ENG_LIST_TAIL, e);
                m_insert(k, head ? 0 : M[k].n, e);
            }
            break;
        case 2: {
            int head = rand() % 2, cnt = 1 + rand() % 3;
            pop(key, head ? ENG_LIST_HEAD : ENG_LIST_TAIL, cnt);
            for (int i = 0; i < cnt && M[k].n; i++)
                m_delete(k, head ? 0 : M[k].n - 1);
            break;
        }
        case 3:
            if (M[k].n) {
                int at = rand() % M[k].n;
                assert_int_equal(eng_list_set(&C, S(key), at, S(e)), 0);
                snprintf(M[k].v[at], 8, "%s", e);
            }
            break;
        case 4: {
            int after = rand() % 2, at = m_find(k, e2);
            assert_int_equal(eng_list_insert(&C, S(key), after, S(e2), S(e), &n), 0);
            if (at >= 0 && M[k].n < MAXL - 1)
                m_insert(k, at + after, e);
            else if (at >= 0)
                eng_list_rem(&C, S(key), 1, S(e), &n), m_delete(k, m_find(k, e)); /* keep the model bounded */
            break;
        }
        case 5: {
            int cnt = rand() % 5 - 2;
            assert_int_equal(eng_list_rem(&C, S(key), cnt, S(e), &n), 0);
            int64_t want = 0;
            if (cnt >= 0) {
                for (int i = 0; i < M[k].n && (cnt == 0 || want < cnt);)
                    if (!strcmp(M[k].v[i], e))
                        m_delete(k, i), want++;
                    else
                        i++;
            } else {
                for (int i = M[k].n - 1; i >= 0 && want < -cnt; i--)
                    if (!strcmp(M[k].v[i], e))
                        m_delete(k, i), want++;
            }
            assert_int_equal(n, want);
            break;
        }
        case 6:
            if (rand() % 4 == 0) {
                int a = rand() % 8, b = -1 - rand() % 8;
                assert_int_equal(eng_list_trim(&C, S(key), a, b), 0);
                int len = M[k].n, lo = a, hi = len + b;
                int keep = hi >= lo && lo < len ? hi - lo + 1 : 0;
                memmove(M[k].v[0], M[k].v[lo < len ? lo : 0], sizeof M[k].v[0] * (size_t)keep);
                M[k].n = keep;
            }
            break;
        case 7: {
            int d = rand() % NK, from = rand() % 2, to = rand() % 2;
            char dkey[8];
            snprintf(dkey, sizeof dkey, "k%d", d);
            int rc = eng_lmove(&C, S(key), S(dkey), from, to, NULL, sink, NULL);
            if (!M[k].n) {
                assert_int_equal(rc, ERR_NOKEY);
            } else if (M[d].n < MAXL - 1) {
                assert_int_equal(rc, 0);
                char t[8];
                snprintf(t, sizeof t, "%s", M[k].v[from ? M[k].n - 1 : 0]);
                m_delete(k, from ? M[k].n - 1 : 0);
                m_insert(d, to ? M[d].n : 0, t);
            } else { /* undo: keep the model bounded */
                char t[8];
                snprintf(t, sizeof t, "%s", M[k].v[from ? M[k].n - 1 : 0]);
                assert_int_equal(rc, 0);
                assert_int_equal(eng_lmove(&C, S(dkey), S(key), to, from, NULL, sink, NULL), 0);
            }
            break;
        }
        default: {
            int64_t want = -1;
            for (int i = 0; i < M[k].n && want < 0; i++)
                if (!strcmp(M[k].v[i], e))
                    want = i;
            nfound = 0;
            assert_int_equal(eng_list_pos(&C, S(key), S(e), 1, 1, 0, on_pos, NULL), 0);
            assert_int_equal(nfound, want >= 0);
            if (want >= 0)
                assert_int_equal(found[0], want);
        }
        }
        end();
    }
    /* model, master and replica agree */
    struct eng *engines[2] = {E, R};
    for (int k = 0; k < NK; k++) {
        snprintf(key, sizeof key, "k%d", k);
        struct buf want = BUF_INIT;
        for (int i = 0; i < M[k].n; i++)
            buf_printf(&want, "%s%s", i ? " " : "", M[k].v[i]);
        for (int w = 0; w < 2; w++) {
            eng_ctx_init(&C, engines[w], 0);
            eng_lock_all(&C);
            const char *got = range(key, 0, -1);
            if (strcmp(got, M[k].n ? want.p : "(nokey)"))
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
        cmocka_unit_test_setup_teardown(test_push_pop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrongtype, setup, teardown),
        cmocka_unit_test_setup_teardown(test_index_set_insert, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rem_trim, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pos, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lmove, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mpop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_encodings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_big_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_random_vs_model, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
