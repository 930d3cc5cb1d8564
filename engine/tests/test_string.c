/* test_string.c: engine/t_string.c through engine.h.  SET with NX/XX/GET/
 * KEEPTTL and expiry, the three encodings as OBJECT ENCODING names them (as
 * redis-server 7.0 chooses them), INCRBY overflow and non-integers,
 * INCRBYFLOAT formatting and NaN/inf refusal, APPEND/SETRANGE growth and the
 * length limit, GETDEL, lazy expiry on access, and the journal: each change
 * must reach the hook as exactly the command that replays it (SET ... PXAT for
 * expiring sets, SET ... KEEPTTL for INCRBYFLOAT, INCRBY, DEL for an expired
 * key found on access); a replay of the journal into a second engine must
 * give the same keyspace.  No allocation-failure injection: the engine aborts
 * on OOM by policy. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/num.h"
#include "engine_int.h"
#include "list.h" /* to plant a key of another type */

#define MAXLEN 1000 /* proto-max-bulk-len for APPEND/SETRANGE in these tests */

/* ---- fixture: an engine whose hooks record what they hear ------------- */

#define TU_JMAX 256
#define TU_JLINE 400
#define TU_OWN_HOOKS
#include "test_util.h"

static void journal_hook(void *ud, int db, int argc, const struct eng_str *argv)
{
    assert_true(J.n < TU_JMAX);
    char *l = J.line[J.n];
    size_t off = 0;
    for (int i = 0; i < argc; i++) {
        /* An argument with a NUL or a space, or a long one, is shown as <N
         * bytes>: the tests compare short readable arguments only. */
        int plain = argv[i].n <= 64 && !memchr(argv[i].p, 0, argv[i].n) && !memchr(argv[i].p, ' ', argv[i].n);
        if (plain)
            off += (size_t)snprintf(l + off, 400 - off, i ? " %.*s" : "%.*s", (int)argv[i].n, argv[i].p);
        else
            off += (size_t)snprintf(l + off, 400 - off, i ? " <%zu bytes>" : "<%zu bytes>", argv[i].n);
        assert_true(off < 400);
    }
    J.db[J.n++] = db;
}

static void notify_hook(void *ud, int db, int cls, const char *event, const char *key, size_t klen)
{
    J.notified++;
    snprintf(J.last_event, sizeof J.last_event, "%s", event);
}

static void modified_hook(void *ud, int db, const char *key, size_t klen) { J.modified++; }

static struct eng *new_engine(int nshards)
{
    struct eng_config cfg = {.nshards = nshards, .ndb = 16};
    struct eng *e = eng_new(&cfg);
    assert_non_null(e);
    struct eng_hooks h = {.journal = journal_hook, .notify = notify_hook, .notify_mask = ~0u,
                          .modified = modified_hook};
    eng_set_hooks(e, &h);
    return e;
}

static int setup(void **state)
{
    mem_base = alloc_used();
    E = new_engine(4);
    memset(&J, 0, sizeof J);
    return 0;
}

static int teardown(void **state)
{
    eng_free(E);
    E = NULL;
    assert_int_equal(alloc_used(), mem_base); /* nothing leaked */
    return 0;
}

static void jreset(void) { memset(&J, 0, sizeof J); }

/* A context holding every shard, as a transaction would. */
static void begin(struct eng_ctx *c)
{
    eng_ctx_init(c, E, 0);
    eng_lock_all(c);
}

static void set(struct eng_ctx *c, const char *k, const char *v)
{
    assert_int_equal(eng_set(c, k, strlen(k), v, strlen(v), 0, 0, NULL, NULL), 1);
}

static void check_get(struct eng_ctx *c, const char *k, const char *want)
{
    struct eng_val v;
    int rc = eng_get(c, k, strlen(k), &v);
    if (!want) {
        assert_int_equal(rc, ERR_NOKEY);
        return;
    }
    assert_int_equal(rc, 0);
    assert_int_equal(v.n, strlen(want));
    assert_memory_equal(v.p, want, v.n);
}

static const char *enc(struct eng_ctx *c, const char *k)
{
    const char *e = eng_object_encoding(c, k, strlen(k));
    return e ? e : "(none)";
}

/* A key of another type (a list), for WRONGTYPE. */
static int other_type(void) { return ENG_T_LIST; }

static void plant_other(struct eng_ctx *c, const char *k)
{
    struct eng_str e = {"x", 1};
    int64_t len;
    assert_int_equal(eng_list_push(c, k, strlen(k), 0, 0, &e, 1, &len), 0);
}

/* ---- tests -------------------------------------------------------------- */

static void test_get_set(void **state)
{
    struct eng_ctx c;
    begin(&c);
    check_get(&c, "k", NULL);
    set(&c, "k", "hello");
    check_get(&c, "k", "hello");
    JOURNAL("SET k hello");
    assert_string_equal(J.last_event, "set");
    assert_true(J.modified > 0);
    set(&c, "k", "");
    check_get(&c, "k", "");
    /* Binary values. */
    assert_int_equal(eng_set(&c, "b", 1, "a\0b", 3, 0, 0, NULL, NULL), 1);
    struct eng_val v;
    assert_int_equal(eng_get(&c, "b", 1, &v), 0);
    assert_int_equal(v.n, 3);
    assert_memory_equal(v.p, "a\0b", 3);
    int64_t len;
    assert_int_equal(eng_strlen(&c, "b", 1, &len), 0);
    assert_int_equal(len, 3);
    assert_int_equal(eng_strlen(&c, "nope", 4, &len), 0);
    assert_int_equal(len, 0);
    eng_unlock(&c);
}

static void test_set_nx_xx(void **state)
{
    struct eng_ctx c;
    begin(&c);
    assert_int_equal(eng_set(&c, "k", 1, "a", 1, ENG_SET_XX, 0, NULL, NULL), 0);
    check_get(&c, "k", NULL);
    assert_int_equal(eng_set(&c, "k", 1, "a", 1, ENG_SET_NX, 0, NULL, NULL), 1);
    assert_int_equal(eng_set(&c, "k", 1, "b", 1, ENG_SET_NX, 0, NULL, NULL), 0);
    check_get(&c, "k", "a");
    assert_int_equal(eng_set(&c, "k", 1, "c", 1, ENG_SET_XX, 0, NULL, NULL), 1);
    check_get(&c, "k", "c");
    JOURNAL("SET k a | SET k c"); /* refused sets are not journaled */
    eng_unlock(&c);
}

static void test_set_get_flag(void **state)
{
    struct eng_ctx c;
    begin(&c);
    struct buf old = BUF_INIT;
    int had = -1;
    assert_int_equal(eng_set(&c, "k", 1, "v1", 2, ENG_SET_GET, 0, &old, &had), 1);
    assert_int_equal(had, 0);
    assert_int_equal(old.len, 0);
    assert_int_equal(eng_set(&c, "k", 1, "v2", 2, ENG_SET_GET, 0, &old, &had), 1);
    assert_int_equal(had, 1);
    assert_string_equal(old.p, "v1");
    /* An int-encoded old value comes back as its digits. */
    set(&c, "n", "-42");
    buf_reset(&old);
    assert_int_equal(eng_set(&c, "n", 1, "x", 1, ENG_SET_GET, 0, &old, &had), 1);
    assert_string_equal(old.p, "-42");
    /* NX GET on an existing key: the old value, and nothing set. */
    buf_reset(&old);
    assert_int_equal(eng_set(&c, "k", 1, "v3", 2, ENG_SET_GET | ENG_SET_NX, 0, &old, &had), 0);
    assert_int_equal(had, 1);
    assert_string_equal(old.p, "v2");
    check_get(&c, "k", "v2");
    /* GET on another type: refused before anything changes. */
    plant_other(&c, "l");
    jreset();
    buf_reset(&old);
    assert_int_equal(eng_set(&c, "l", 1, "x", 1, ENG_SET_GET, 0, &old, &had), ERR_WRONGTYPE);
    assert_int_equal(eng_type(&c, "l", 1), other_type());
    JOURNAL("");
    /* Without GET, SET overwrites any type. */
    set(&c, "l", "x");
    assert_int_equal(eng_type(&c, "l", 1), ENG_T_STRING);
    check_get(&c, "l", "x");
    buf_release(&old);
    eng_unlock(&c);
}

static void test_set_expiry(void **state)
{
    struct eng_ctx c;
    begin(&c);
    int64_t t = c.now_ms + 100000;
    char want[128];
    assert_int_equal(eng_set(&c, "k", 1, "v", 1, 0, t, NULL, NULL), 1);
    snprintf(want, sizeof want, "SET k v PXAT %" PRId64, t);
    JOURNAL(want);
    assert_string_equal(J.last_event, "expire"); /* set, then expire */
    assert_int_equal(eng_pttl(&c, "k", 1), 100000);
    assert_int_equal(eng_pexpiretime(&c, "k", 1), t);

    /* KEEPTTL keeps it, through each way a value is stored: a new block
     * (embstr), an int in place, an int to a string. */
    assert_int_equal(eng_set(&c, "k", 1, "w", 1, ENG_SET_KEEPTTL, 0, NULL, NULL), 1);
    JOURNAL("SET k w KEEPTTL");
    assert_int_equal(eng_pexpiretime(&c, "k", 1), t);
    assert_int_equal(eng_set(&c, "k", 1, "12", 2, ENG_SET_KEEPTTL, 0, NULL, NULL), 1);
    assert_int_equal(eng_set(&c, "k", 1, "13", 2, ENG_SET_KEEPTTL, 0, NULL, NULL), 1);
    assert_string_equal(enc(&c, "k"), "int");
    assert_int_equal(eng_pexpiretime(&c, "k", 1), t);
    assert_int_equal(eng_set(&c, "k", 1, "str", 3, ENG_SET_KEEPTTL, 0, NULL, NULL), 1);
    assert_int_equal(eng_pexpiretime(&c, "k", 1), t);
    check_get(&c, "k", "str");

    /* A plain SET drops the TTL, in place (int over int) as well. */
    set(&c, "k", "1");
    assert_int_equal(eng_pttl(&c, "k", 1), -1);
    assert_int_equal(eng_set(&c, "k", 1, "2", 1, 0, t, NULL, NULL), 1);
    set(&c, "k", "3");
    assert_int_equal(eng_pttl(&c, "k", 1), -1);
    assert_int_equal(eng_pttl(&c, "none", 4), -2);

    /* A new expiry replaces the old one; KEEPTTL on a key without TTL adds none. */
    assert_int_equal(eng_set(&c, "k", 1, "v", 1, 0, t, NULL, NULL), 1);
    assert_int_equal(eng_set(&c, "k", 1, "v", 1, 0, t + 5, NULL, NULL), 1);
    assert_int_equal(eng_pexpiretime(&c, "k", 1), t + 5);
    assert_int_equal(eng_set(&c, "p", 1, "v", 1, ENG_SET_KEEPTTL, 0, NULL, NULL), 1);
    assert_int_equal(eng_pttl(&c, "p", 1), -1);

    /* SET KEEPTTL over a key of another type keeps that key's TTL (Redis
     * replaces the value and leaves the expiry). */
    plant_other(&c, "l");
    assert_int_equal(eng_expire_at(&c, "l", 1, t, 0), 1);
    assert_int_equal(eng_set(&c, "l", 1, "s", 1, ENG_SET_KEEPTTL, 0, NULL, NULL), 1);
    assert_int_equal(eng_pexpiretime(&c, "l", 1), t);
    check_get(&c, "l", "s");
    eng_unlock(&c);
}

/* OBJECT ENCODING as redis-server 7.0.15 reports it (checked with redis-cli). */
static void test_encodings(void **state)
{
    struct eng_ctx c;
    begin(&c);
    static const struct {
        const char *val, *enc;
    } cases[] = {
        {"123", "int"},
        {"-9223372036854775808", "int"},
        {"9223372036854775807", "int"},
        {"9223372036854775808", "embstr"}, /* out of range */
        {"99999999999999999999", "embstr"},
        {"0123", "embstr"},
        {"-0", "embstr"},
        {"+1", "embstr"},
        {" 1", "embstr"},
        {"1.5", "embstr"},
        {"hello", "embstr"},
        {"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", "embstr"},  /* 44 bytes */
        {"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", "raw"},    /* 45 bytes */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        set(&c, "k", cases[i].val);
        if (strcmp(enc(&c, "k"), cases[i].enc))
            fail_msg("SET %s: encoding %s, want %s", cases[i].val, enc(&c, "k"), cases[i].enc);
        check_get(&c, "k", cases[i].val);
    }
    int64_t n;
    /* APPEND and SETRANGE make raw strings, whatever they started as. */
    set(&c, "a", "12");
    assert_int_equal(eng_append(&c, "a", 1, "3", 1, MAXLEN, &n), 0);
    assert_string_equal(enc(&c, "a"), "raw");
    check_get(&c, "a", "123");
    set(&c, "s", "hello");
    assert_int_equal(eng_setrange(&c, "s", 1, 0, "j", 1, MAXLEN, &n), 0);
    assert_string_equal(enc(&c, "s"), "raw");
    check_get(&c, "s", "jello");
    assert_int_equal(eng_setrange(&c, "new", 3, 2, "x", 1, MAXLEN, &n), 0);
    assert_string_equal(enc(&c, "new"), "raw");
    /* INCR of a raw string holding digits gives an int again. */
    int64_t r;
    assert_int_equal(eng_incrby(&c, "a", 1, 1, &r), 0);
    assert_int_equal(r, 124);
    assert_string_equal(enc(&c, "a"), "int");
    /* INCRBYFLOAT stores its result as a string, even an integral one. */
    char out[ENG_LDBL_CHARS];
    size_t outlen;
    set(&c, "f", "1");
    assert_int_equal(eng_incrbyfloat(&c, "f", 1, -1, out, &outlen), 0);
    assert_string_equal(out, "0");
    assert_string_equal(enc(&c, "f"), "embstr");
    set(&c, "f", "1.5");
    assert_int_equal(eng_incrbyfloat(&c, "f", 1, 1.5L, out, &outlen), 0);
    assert_string_equal(out, "3");
    assert_string_equal(enc(&c, "f"), "embstr");
    /* ...and INCR still works on it. */
    assert_int_equal(eng_incrby(&c, "f", 1, 1, &r), 0);
    assert_int_equal(r, 4);
    assert_string_equal(enc(&c, "f"), "int");
    assert_null(eng_object_encoding(&c, "none", 4));
    eng_unlock(&c);
}

static void test_incrby(void **state)
{
    struct eng_ctx c;
    begin(&c);
    int64_t r = 0;
    assert_int_equal(eng_incrby(&c, "n", 1, 5, &r), 0);
    assert_int_equal(r, 5);
    assert_int_equal(eng_incrby(&c, "n", 1, -7, &r), 0);
    assert_int_equal(r, -2);
    check_get(&c, "n", "-2");
    JOURNAL("INCRBY n 5 | INCRBY n -7");
    assert_string_equal(J.last_event, "decrby");

    set(&c, "max", "9223372036854775807");
    jreset();
    r = 99;
    assert_int_equal(eng_incrby(&c, "max", 3, 1, &r), ERR_OVERFLOW);
    assert_int_equal(r, 99); /* out-parameter untouched on failure */
    check_get(&c, "max", "9223372036854775807");
    set(&c, "min", "-9223372036854775808");
    assert_int_equal(eng_incrby(&c, "min", 3, -1, &r), ERR_OVERFLOW);
    assert_int_equal(eng_incrby(&c, "z", 1, INT64_MIN, &r), 0);
    assert_true(r == INT64_MIN);
    assert_int_equal(eng_incrby(&c, "z", 1, -1, &r), ERR_OVERFLOW);
    assert_int_equal(eng_incrby(&c, "z", 1, INT64_MAX, &r), 0);
    assert_int_equal(r, -1);

    const char *bad[] = {"abc", " 1", "1 ", "01", "1.0", "", "99999999999999999999", "+5"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        set(&c, "s", bad[i]);
        jreset();
        assert_int_equal(eng_incrby(&c, "s", 1, 1, &r), ERR_NOTINT);
        check_get(&c, "s", bad[i]);
        JOURNAL("");
    }
    /* A raw string of digits counts (APPEND made it raw). */
    int64_t len;
    assert_int_equal(eng_del(&c, "s", 1), 1);
    assert_int_equal(eng_append(&c, "s", 1, "41", 2, MAXLEN, &len), 0);
    assert_int_equal(eng_incrby(&c, "s", 1, 1, &r), 0);
    assert_int_equal(r, 42);
    /* The TTL stays. */
    int64_t t = c.now_ms + 5000;
    assert_int_equal(eng_expire_at(&c, "s", 1, t, 0), 1);
    assert_int_equal(eng_incrby(&c, "s", 1, 1, &r), 0);
    assert_int_equal(eng_pexpiretime(&c, "s", 1), t);
    plant_other(&c, "l");
    assert_int_equal(eng_incrby(&c, "l", 1, 1, &r), ERR_WRONGTYPE);
    eng_unlock(&c);
}

static void incrf_ok(struct eng_ctx *c, const char *start, long double delta, const char *want)
{
    char out[ENG_LDBL_CHARS];
    size_t n = 0;
    if (start)
        set(c, "f", start);
    else
        eng_del(c, "f", 1);
    jreset();
    assert_int_equal(eng_incrbyfloat(c, "f", 1, delta, out, &n), 0);
    assert_int_equal(n, strlen(want));
    assert_string_equal(out, want);
    check_get(c, "f", want);
    char line[128];
    snprintf(line, sizeof line, "SET f %s KEEPTTL", want);
    JOURNAL(line);
}

static void incrf_err(struct eng_ctx *c, const char *start, long double delta, int err)
{
    char out[ENG_LDBL_CHARS];
    size_t n = 0;
    set(c, "f", start);
    jreset();
    assert_int_equal(eng_incrbyfloat(c, "f", 1, delta, out, &n), err);
    check_get(c, "f", start);
    JOURNAL("");
}

/* Results as redis-server 7.0.15 prints them (%.17Lf, zeros trimmed). */
static void test_incrbyfloat(void **state)
{
    struct eng_ctx c;
    begin(&c);
    incrf_ok(&c, NULL, 3.0L, "3");
    incrf_ok(&c, "10.5", 0.1L, "10.6");
    incrf_ok(&c, "5.0e3", 0, "5000");
    incrf_ok(&c, "5000", -10000.5L, "-5000.5");
    incrf_ok(&c, "1e20", 0, "100000000000000000000");
    incrf_ok(&c, "0.1", -0.1L, "0");
    incrf_ok(&c, "-1", 0.5L, "-0.5");
    incrf_ok(&c, "3", 1.0e-5L, "3.00001");
    /* Long results are printed whole, as Redis does (301 digits here). */
    {
        char out[ENG_LDBL_CHARS];
        size_t n = 0;
        set(&c, "f", "1e300");
        assert_int_equal(eng_incrbyfloat(&c, "f", 1, 1, out, &n), 0);
        assert_int_equal(n, 301);
        assert_int_equal(strspn(out, "0123456789"), 301);
        assert_int_equal(out[0], '1');
        JOURNAL("SET f 1e300 | SET f <301 bytes> KEEPTTL");
        int64_t len;
        assert_int_equal(eng_strlen(&c, "f", 1, &len), 0);
        assert_int_equal(len, 301);
        assert_string_equal(enc(&c, "f"), "raw");
    }
    incrf_err(&c, "1", INFINITY, ERR_NAN);
    incrf_err(&c, "1", -INFINITY, ERR_NAN);
    incrf_err(&c, "1", NAN, ERR_NAN);
    incrf_err(&c, "inf", 1, ERR_NAN); /* "inf" reads as a float, as in Redis */
    incrf_err(&c, "abc", 1, ERR_NOTFLOAT);
    incrf_err(&c, "1.5x", 1, ERR_NOTFLOAT);
    incrf_err(&c, " 1", 1, ERR_NOTFLOAT);
    incrf_err(&c, "nan", 1, ERR_NOTFLOAT);
    incrf_err(&c, "", 1, ERR_NOTFLOAT);
    /* The TTL stays (that is why the journal says KEEPTTL). */
    int64_t t = c.now_ms + 5000;
    char out[ENG_LDBL_CHARS];
    size_t n;
    assert_int_equal(eng_expire_at(&c, "f", 1, t, 0), 1);
    assert_int_equal(eng_incrbyfloat(&c, "f", 1, 2, out, &n), ERR_NOTFLOAT);
    set(&c, "g", "1");
    assert_int_equal(eng_expire_at(&c, "g", 1, t, 0), 1);
    assert_int_equal(eng_incrbyfloat(&c, "g", 1, 0.25L, out, &n), 0);
    assert_int_equal(eng_pexpiretime(&c, "g", 1), t);
    plant_other(&c, "l");
    assert_int_equal(eng_incrbyfloat(&c, "l", 1, 1, out, &n), ERR_WRONGTYPE);
    eng_unlock(&c);
}

static void test_append(void **state)
{
    struct eng_ctx c;
    begin(&c);
    int64_t n = -1;
    assert_int_equal(eng_append(&c, "k", 1, "ab", 2, MAXLEN, &n), 0);
    assert_int_equal(n, 2);
    JOURNAL("APPEND k ab");
    assert_string_equal(J.last_event, "append");
    /* Growth: many small appends, content checked at the end. */
    char want[MAXLEN + 1] = "ab";
    for (int i = 0; i < 200; i++) {
        char piece[2] = {(char)('a' + i % 26), 0};
        assert_int_equal(eng_append(&c, "k", 1, piece, 1, MAXLEN, &n), 0);
        strcat(want, piece);
        assert_int_equal(n, (int64_t)strlen(want));
    }
    check_get(&c, "k", want);
    /* The limit: exactly max_len is fine, one more is refused, unchanged. */
    char fill[MAXLEN];
    memset(fill, 'z', sizeof fill);
    size_t room = MAXLEN - strlen(want);
    jreset();
    assert_int_equal(eng_append(&c, "k", 1, fill, room + 1, MAXLEN, &n), ERR_TOOBIG);
    check_get(&c, "k", want);
    JOURNAL("");
    assert_int_equal(eng_append(&c, "k", 1, fill, room, MAXLEN, &n), 0);
    assert_int_equal(n, MAXLEN);
    assert_int_equal(eng_append(&c, "k", 1, "", 0, MAXLEN, &n), 0);
    assert_int_equal(n, MAXLEN);
    assert_int_equal(eng_append(&c, "k", 1, "x", 1, MAXLEN, &n), ERR_TOOBIG);
    /* On an int and on an embstr; the TTL stays. */
    set(&c, "i", "-12");
    int64_t t = c.now_ms + 5000;
    assert_int_equal(eng_expire_at(&c, "i", 1, t, 0), 1);
    assert_int_equal(eng_append(&c, "i", 1, "3", 1, MAXLEN, &n), 0);
    check_get(&c, "i", "-123");
    assert_int_equal(eng_pexpiretime(&c, "i", 1), t);
    set(&c, "e", "hello");
    assert_int_equal(eng_append(&c, "e", 1, " world", 6, MAXLEN, &n), 0);
    check_get(&c, "e", "hello world");
    /* APPEND "" on a missing key creates an empty string, as Redis does. */
    assert_int_equal(eng_append(&c, "z", 1, "", 0, MAXLEN, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(eng_exists(&c, "z", 1), 1);
    plant_other(&c, "l");
    assert_int_equal(eng_append(&c, "l", 1, "x", 1, MAXLEN, &n), ERR_WRONGTYPE);
    eng_unlock(&c);
}

static void test_setrange(void **state)
{
    struct eng_ctx c;
    begin(&c);
    int64_t n = -1;
    /* Nothing to write: the length, and no key created. */
    assert_int_equal(eng_setrange(&c, "k", 1, 5, "", 0, MAXLEN, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(eng_exists(&c, "k", 1), 0);
    JOURNAL("");
    /* A gap is zero-filled. */
    set(&c, "k", "5");
    jreset();
    assert_int_equal(eng_setrange(&c, "k", 1, 3, "ab", 2, MAXLEN, &n), 0);
    assert_int_equal(n, 5);
    struct eng_val v;
    assert_int_equal(eng_get(&c, "k", 1, &v), 0);
    assert_int_equal(v.n, 5);
    assert_memory_equal(v.p, "5\0\0ab", 5);
    JOURNAL("SETRANGE k 3 ab");
    assert_string_equal(J.last_event, "setrange");
    /* Inside, and across the end. */
    assert_int_equal(eng_setrange(&c, "k", 1, 1, "XY", 2, MAXLEN, &n), 0);
    assert_int_equal(eng_setrange(&c, "k", 1, 4, "1234", 4, MAXLEN, &n), 0);
    assert_int_equal(n, 8);
    check_get(&c, "k", "5XYa1234");
    assert_int_equal(eng_setrange(&c, "k", 1, 0, "", 0, MAXLEN, &n), 0);
    assert_int_equal(n, 8);
    /* Growth far past the old end, in steps. */
    for (int64_t off = 10; off < 900; off += 97)
        assert_int_equal(eng_setrange(&c, "k", 1, off, "q", 1, MAXLEN, &n), 0);
    assert_int_equal(n, 10 + 97 * 9 + 1);
    /* The limit, and offsets so large that offset + length would overflow. */
    assert_int_equal(eng_setrange(&c, "k", 1, MAXLEN - 1, "x", 1, MAXLEN, &n), 0);
    assert_int_equal(n, MAXLEN);
    jreset();
    assert_int_equal(eng_setrange(&c, "k", 1, MAXLEN, "x", 1, MAXLEN, &n), ERR_TOOBIG);
    assert_int_equal(eng_setrange(&c, "k", 1, MAXLEN - 1, "xy", 2, MAXLEN, &n), ERR_TOOBIG);
    assert_int_equal(eng_setrange(&c, "k", 1, INT64_MAX, "x", 1, MAXLEN, &n), ERR_TOOBIG);
    assert_int_equal(eng_setrange(&c, "k", 1, INT64_MAX - 1, "xy", 2, INT64_MAX, &n), ERR_TOOBIG);
    assert_int_equal(eng_setrange(&c, "nk", 2, INT64_MAX, "x", 1, MAXLEN, &n), ERR_TOOBIG);
    assert_int_equal(eng_exists(&c, "nk", 2), 0);
    assert_int_equal(eng_strlen(&c, "k", 1, &n), 0);
    assert_int_equal(n, MAXLEN);
    JOURNAL("");
    /* On a missing key: zeros then the bytes. */
    assert_int_equal(eng_setrange(&c, "m", 1, 2, "hi", 2, MAXLEN, &n), 0);
    assert_int_equal(eng_get(&c, "m", 1, &v), 0);
    assert_int_equal(v.n, 4);
    assert_memory_equal(v.p, "\0\0hi", 4);
    plant_other(&c, "l");
    assert_int_equal(eng_setrange(&c, "l", 1, 0, "x", 1, MAXLEN, &n), ERR_WRONGTYPE);
    assert_int_equal(eng_setrange(&c, "l", 1, 0, "", 0, MAXLEN, &n), ERR_WRONGTYPE);
    eng_unlock(&c);
}

static void test_getdel(void **state)
{
    struct eng_ctx c;
    begin(&c);
    struct buf out = BUF_INIT;
    assert_int_equal(eng_getdel(&c, "k", 1, &out), ERR_NOKEY);
    set(&c, "k", "77");
    int64_t t = c.now_ms + 5000;
    assert_int_equal(eng_expire_at(&c, "k", 1, t, 0), 1);
    jreset();
    assert_int_equal(eng_getdel(&c, "k", 1, &out), 0);
    assert_string_equal(out.p, "77");
    assert_int_equal(eng_exists(&c, "k", 1), 0);
    JOURNAL("DEL k");
    assert_string_equal(J.last_event, "del");
    struct eng_db_info di;
    eng_unlock(&c);
    eng_db_info(E, 0, &di);
    assert_int_equal(di.keys, 0);
    assert_int_equal(di.expires, 0); /* the expiry went with the key */
    begin(&c);
    plant_other(&c, "l");
    assert_int_equal(eng_getdel(&c, "l", 1, &out), ERR_WRONGTYPE);
    assert_int_equal(eng_exists(&c, "l", 1), 1);
    buf_release(&out);
    eng_unlock(&c);
}

/* A key whose time has passed is deleted when found, and the deletion is
 * journaled as DEL so that replicas (which never expire by themselves)
 * follow. */
static void test_expired_on_access(void **state)
{
    struct eng_ctx c;
    begin(&c);
    int64_t now = c.now_ms;
    assert_int_equal(eng_set(&c, "k", 1, "v", 1, 0, now + 1, NULL, NULL), 1);
    assert_int_equal(eng_set(&c, "j", 1, "v", 1, 0, now + 1, NULL, NULL), 1);
    jtake();
    eng_unlock(&c);

    struct eng_stats st0, st1;
    eng_stats(E, &st0);
    begin(&c);
    c.now_ms = now + 1; /* the instant of expiry counts as expired */
    check_get(&c, "k", NULL);
    JOURNAL("DEL k");
    assert_string_equal(J.last_event, "expired");
    check_get(&c, "k", NULL);
    JOURNAL(""); /* once */
    /* A write finds it dead too: SET NX succeeds after the DEL. */
    assert_int_equal(eng_set(&c, "j", 1, "w", 1, ENG_SET_NX, 0, NULL, NULL), 1);
    JOURNAL("DEL j | SET j w");
    assert_int_equal(eng_pttl(&c, "j", 1), -1);
    eng_unlock(&c);
    eng_stats(E, &st1);
    assert_int_equal(st1.expired - st0.expired, 2);
    assert_int_equal(st1.misses - st0.misses, 2);

    /* A replica reports the key gone but keeps it for the master's DEL. */
    eng_set_replica(E, 1);
    begin(&c);
    assert_int_equal(eng_set(&c, "r", 1, "v", 1, 0, now + 1, NULL, NULL), 1);
    jtake();
    c.now_ms = now + 10;
    check_get(&c, "r", NULL);
    JOURNAL("");
    eng_unlock(&c);
    assert_int_equal(eng_dbsize(E, 0), 2);
    eng_set_replica(E, 0);
}

/* ---- replay: the journal rebuilds the same keyspace --------------------- */

static int64_t replica_now; /* its clock: behind the stream or ahead of it */

static int64_t to_i64(const struct eng_str *s)
{
    int64_t v;
    assert_int_equal(num_parse_i64(s->p, s->n, &v), 0);
    return v;
}

/* Applies one journaled command to R, with the engine's own API. */
static void replay(void *ud, int db, int argc, const struct eng_str *a)
{
    journal_hook(ud, db, argc, a);
    struct eng_ctx c;
    eng_ctx_init(&c, R, db);
    eng_lock_keys(&c, &a[1], 1);
    c.now_ms = replica_now;
    int64_t n;
    if (is(&a[0], "SET")) {
        unsigned flags = 0;
        int64_t when = 0;
        if (argc == 5 && is(&a[3], "PXAT"))
            when = to_i64(&a[4]);
        else if (argc == 4 && is(&a[3], "KEEPTTL"))
            flags = ENG_SET_KEEPTTL;
        else
            assert_int_equal(argc, 3);
        assert_int_equal(eng_set(&c, a[1].p, a[1].n, a[2].p, a[2].n, flags, when, NULL, NULL), 1);
    } else if (is(&a[0], "INCRBY")) {
        assert_int_equal(eng_incrby(&c, a[1].p, a[1].n, to_i64(&a[2]), &n), 0);
    } else if (is(&a[0], "APPEND")) {
        assert_int_equal(eng_append(&c, a[1].p, a[1].n, a[2].p, a[2].n, MAXLEN, &n), 0);
    } else if (is(&a[0], "SETRANGE")) {
        assert_int_equal(eng_setrange(&c, a[1].p, a[1].n, to_i64(&a[2]), a[3].p, a[3].n, MAXLEN, &n), 0);
    } else if (is(&a[0], "DEL")) {
        assert_int_equal(eng_del(&c, a[1].p, a[1].n), 1);
    } else if (is(&a[0], "PEXPIREAT")) {
        assert_int_equal(eng_expire_at(&c, a[1].p, a[1].n, to_i64(&a[2]), 0), 1);
    } else if (is(&a[0], "PERSIST")) {
        assert_int_equal(eng_persist(&c, a[1].p, a[1].n), 1);
    } else {
        fail_msg("unexpected journal command %.*s", (int)a[0].n, a[0].p);
    }
    eng_unlock(&c);
}

/* Random string commands on the master, the journal applied to a replica as
 * it comes; both keyspaces must then hold the same values and expiries.
 * Rerun a failure with SEED=<printed value>. */
static void test_journal_replays(void **state)
{
    unsigned seed = env_seed("test_string");
    srand(seed);
    struct eng_config cfg = {.nshards = 3, .ndb = 1, .replica = 1};
    R = eng_new(&cfg);
    struct eng_hooks h = {.journal = replay};
    eng_set_hooks(E, &h);
    static const char *vals[] = {"1", "-5", "abc", "10.5", "9223372036854775806", "", "0", "x y"};
    char key[16];
    struct eng_ctx c;
    begin(&c);
    int64_t now = c.now_ms;
    eng_unlock(&c);
    for (int op = 0; op < 3000; op++) {
        snprintf(key, sizeof key, "k%d", rand() % 12);
        size_t kl = strlen(key);
        const char *v = vals[rand() % 8];
        int64_t n;
        char out[ENG_LDBL_CHARS];
        size_t outlen;
        struct buf old = BUF_INIT;
        int had;
        begin(&c);
        c.now_ms = now + op; /* time moves on, so that keys expire on access */
        /* The replica applies the stream late (lag) or with a clock ahead:
         * keys the master still has may look expired there.  It must apply
         * the stream regardless and never expire by itself. */
        replica_now = c.now_ms + (op / 500 % 2 ? 40 : -40);
        switch (rand() % 9) {
        case 0:
            eng_set(&c, key, kl, v, strlen(v), (unsigned)(rand() % 16), rand() % 2 ? now + op + rand() % 50 : 0,
                    &old, &had);
            break;
        case 1:
            eng_incrby(&c, key, kl, rand() % 100 - 50, &n);
            break;
        case 2:
            eng_incrbyfloat(&c, key, kl, (long double)(rand() % 1000) / 8, out, &outlen);
            break;
        case 3:
            eng_append(&c, key, kl, v, strlen(v), MAXLEN / 2, &n);
            break;
        case 4:
            eng_setrange(&c, key, kl, rand() % 10, v, strlen(v), MAXLEN / 2, &n);
            break;
        case 5:
            eng_getdel(&c, key, kl, &old);
            break;
        case 6:
            eng_expire_at(&c, key, kl, now + op + rand() % 60 - 5, rand() % 2 ? 0 : 1 << (rand() % 4));
            break;
        case 7:
            eng_persist(&c, key, kl);
            break;
        default:
            eng_get(&c, key, kl, &(struct eng_val){0});
        }
        eng_unlock(&c);
        buf_release(&old);
        if (J.n > 200)
            J.n = 0;
    }
    /* Compare at a time when everything due has expired: the master's reads
     * expire keys (the DELs reach the replica as they happen), then the
     * replica, which never expires by itself, must hold the same. */
    for (int i = 0; i < 12; i++) {
        snprintf(key, sizeof key, "k%d", i);
        size_t kl = strlen(key);
        struct eng_val a, b;
        struct buf va = BUF_INIT;
        begin(&c);
        c.now_ms = now + 3000;
        int ra = eng_get(&c, key, kl, &a);
        int64_t ea = eng_pexpiretime(&c, key, kl);
        if (ra == 0)
            buf_append(&va, a.p, a.n);
        eng_unlock(&c);
        struct eng_ctx rc;
        eng_ctx_init(&rc, R, 0);
        eng_lock_all(&rc);
        rc.now_ms = 0; /* the replica's own clock must not matter: see everything */
        int rb = eng_get(&rc, key, kl, &b);
        if (ra != rb)
            fail_msg("SEED=%u %s: master %d, replica %d", seed, key, ra, rb);
        if (ra == 0) {
            assert_int_equal(va.len, b.n);
            assert_memory_equal(va.p ? va.p : "", b.p, b.n);
            assert_int_equal(ea, eng_pexpiretime(&rc, key, kl));
        }
        eng_unlock(&rc);
        buf_release(&va);
    }
    eng_free(R);
    R = NULL;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_get_set, setup, teardown),
        cmocka_unit_test_setup_teardown(test_set_nx_xx, setup, teardown),
        cmocka_unit_test_setup_teardown(test_set_get_flag, setup, teardown),
        cmocka_unit_test_setup_teardown(test_set_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_encodings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_incrby, setup, teardown),
        cmocka_unit_test_setup_teardown(test_incrbyfloat, setup, teardown),
        cmocka_unit_test_setup_teardown(test_append, setup, teardown),
        cmocka_unit_test_setup_teardown(test_setrange, setup, teardown),
        cmocka_unit_test_setup_teardown(test_getdel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expired_on_access, setup, teardown),
        cmocka_unit_test_setup_teardown(test_journal_replays, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
