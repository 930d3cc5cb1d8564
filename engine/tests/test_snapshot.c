/* test_snapshot.c: engine/snapshot.c through snapshot.h.  A keyspace of every
 * type and encoding, with TTLs, over several shards and databases, written
 * in steps of any budget (collections cut into continuation records) and
 * read back into a second engine fed in slices of any size: the two dumps
 * must match, the load must be silent (no journal, no dirty count), and the
 * writer must leave the engine as it found it.  Then what the reader must
 * refuse: every truncation, flipped bytes of each kind, bytes after the end,
 * a lost record, a database out of range.  SEED= replays a run. */
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
#include "hash.h"
#include "list.h"
#include "set.h"
#include "snapshot.h"
#include "zset.h"

#define S(x) (x), strlen(x)
#define NDB 3

static int journaled;
static void journal_hook(void *ud, int db, int argc, const struct eng_str *argv) { journaled++; }

static struct eng *A, *B;
static int64_t mem_base;
static unsigned seed;

static struct eng *new_engine(int nshards)
{
    struct eng_config cfg = {.nshards = nshards, .ndb = NDB};
    struct eng *e = eng_new(&cfg);
    struct eng_hooks h = {.journal = journal_hook};
    eng_set_hooks(e, &h);
    return e;
}

static int setup(void **state)
{
    mem_base = alloc_used();
    A = new_engine(4);
    B = new_engine(3); /* another shard count: the stream does not depend on it */
    journaled = 0;
    return 0;
}

static int teardown(void **state)
{
    eng_free(A);
    eng_free(B);
    A = B = NULL;
    assert_int_equal(alloc_used(), mem_base);
    return 0;
}

/* ---- building a keyspace ---------------------------------------------- */

static void with_key(struct eng *e, int db, const char *key, struct eng_ctx *c)
{
    eng_ctx_init(c, e, db);
    struct eng_str k = {S(key)};
    eng_lock_keys(c, &k, 1);
}

static void put_string(struct eng *e, int db, const char *key, const char *val, size_t vlen, int64_t expire)
{
    struct eng_ctx c;
    with_key(e, db, key, &c);
    assert_int_equal(eng_set(&c, S(key), val, vlen, 0, expire, NULL, NULL), 1);
    eng_unlock(&c);
}

static void put_elems(struct eng *e, int db, int type, const char *key, int n, const char *fmt, int64_t expire)
{
    struct eng_ctx c;
    with_key(e, db, key, &c);
    for (int i = 0; i < n; i++) {
        char m[64], v[64];
        snprintf(m, sizeof m, fmt, i);
        snprintf(v, sizeof v, "value-%d", i * 7);
        struct eng_str el[2] = {{S(m)}, {S(v)}};
        int64_t got;
        switch (type) {
        case ENG_T_LIST:
            assert_int_equal(eng_list_push(&c, S(key), ENG_LIST_TAIL, 0, el, 1, &got), 0);
            break;
        case ENG_T_SET:
            assert_int_equal(eng_sadd(&c, S(key), el, 1, &got), 0);
            break;
        case ENG_T_HASH:
            assert_int_equal(eng_hset(&c, S(key), el, 1, &got), 0);
            break;
        case ENG_T_ZSET: {
            double score = i % 5 == 0 ? -i * 1.5 : i % 7 == 0 ? INFINITY : i / 3.0;
            struct eng_zadd_out zo;
            assert_int_equal(eng_zadd(&c, S(key), 0, &score, el, 1, &zo), 0);
            break;
        }
        }
    }
    if (expire)
        assert_int_equal(eng_expire_at(&c, S(key), expire, 0), 1);
    eng_unlock(&c);
}

/* Every type and encoding, TTLs, three databases. */
static void fill(struct eng *e, int64_t now)
{
    static char big[5000];
    memset(big, 'x', sizeof big);
    big[17] = '\0'; /* binary safe */
    put_string(e, 0, "int", "12345", 5, 0);
    put_string(e, 0, "neg", "-9223372036854775808", 20, 0);
    put_string(e, 0, "emb", "hello", 5, now + 600000);
    put_string(e, 0, "empty", "", 0, 0);
    put_string(e, 1, "raw", big, sizeof big, 0);
    put_string(e, 2, "{tag}a", "a", 1, now + 500000);
    put_string(e, 2, "{tag}b", "b", 1, 0);
    put_elems(e, 0, ENG_T_LIST, "list-small", 5, "e%d", 0);
    put_elems(e, 1, ENG_T_LIST, "list-big", 3000, "element-%05d", now + 700000);
    put_elems(e, 0, ENG_T_SET, "set-int", 50, "%d", 0);
    put_elems(e, 0, ENG_T_SET, "set-str", 700, "member-%d", 0);
    put_elems(e, 2, ENG_T_HASH, "hash-small", 10, "f%d", now + 900000);
    put_elems(e, 2, ENG_T_HASH, "hash-big", 500, "field-%d", 0);
    put_elems(e, 1, ENG_T_ZSET, "zset-small", 20, "m%d", 0);
    put_elems(e, 1, ENG_T_ZSET, "zset-big", 400, "zmember-%d", 0);
    for (int i = 0; i < 300; i++) {
        char k[32], v[32];
        snprintf(k, sizeof k, "k:%d", i);
        snprintf(v, sizeof v, "%d", i * 3);
        put_string(e, i % NDB, k, v, strlen(v), i % 4 == 0 ? now + 600000 + i : 0);
    }
}

/* ---- dumping a keyspace as sorted text lines ------------------------------- */

struct dump {
    char **lines;
    int n, cap;
    struct buf cur;
    struct eng_str *keys;
    int nkeys, capkeys;
};

/* One element, its bytes escaped so that a line stays one C string. */
static void dump_elem(void *ud, const char *p, size_t n)
{
    struct dump *d = ud;
    buf_printf(&d->cur, " [%zu:", n);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        if (ch >= 0x21 && ch < 0x7F && ch != '\\')
            buf_putc(&d->cur, (char)ch);
        else
            buf_printf(&d->cur, "\\x%02x", ch);
    }
    buf_putc(&d->cur, ']');
}

/* Fails with the two dumps in files (cmocka prints at most a few KiB). */
static void same_dump(const char *want, const char *got)
{
    if (strcmp(want, got) == 0)
        return;
    FILE *f = fopen("snapshot-want.txt", "w"), *g = fopen("snapshot-got.txt", "w");
    if (f && g)
        fputs(want, f), fputs(got, g);
    if (f)
        fclose(f);
    if (g)
        fclose(g);
    fail_msg("dumps differ: see snapshot-want.txt and snapshot-got.txt");
}
static void dump_scored(void *ud, const char *m, size_t n, double score)
{
    dump_elem(ud, m, n);
    buf_printf(&((struct dump *)ud)->cur, "=%.17g", score);
}
static void collect_key(void *ud, const char *k, size_t n)
{
    struct dump *d = ud;
    if (d->nkeys == d->capkeys) {
        d->capkeys = d->capkeys ? 2 * d->capkeys : 64;
        d->keys = realloc(d->keys, sizeof *d->keys * (size_t)d->capkeys);
    }
    char *copy = malloc(n + 1);
    memcpy(copy, k, n);
    d->keys[d->nkeys++] = (struct eng_str){copy, n};
}
static void collect_pair(void *ud, const char *f, size_t fl, const char *v, size_t vl)
{
    char tmp[256];
    int n = snprintf(tmp, sizeof tmp, "%.*s=%.*s", (int)fl, f, (int)vl, v);
    collect_key(ud, tmp, (size_t)n);
}
static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void dump_key(struct dump *d, struct eng *e, int db, const struct eng_str *k)
{
    struct eng_ctx c;
    eng_ctx_init(&c, e, db);
    eng_lock_keys(&c, k, 1);
    buf_reset(&d->cur);
    int type = eng_type(&c, k->p, k->n);
    buf_printf(&d->cur, "%d %.*s %s exp=%lld", db, (int)k->n, k->p, eng_type_name(type),
               (long long)eng_pexpiretime(&c, k->p, k->n));
    switch (type) {
    case ENG_T_STRING: {
        struct eng_val v;
        assert_int_equal(eng_get(&c, k->p, k->n, &v), 0);
        dump_elem(d, v.p, v.n);
        break;
    }
    case ENG_T_LIST:
        assert_int_equal(eng_list_range(&c, k->p, k->n, 0, -1, NULL, dump_elem, d), 0);
        break;
    case ENG_T_SET:
    case ENG_T_HASH: {
        /* members and fields in a canonical order: sorted (a hashtable's
         * order depends on its history) */
        struct dump m = {0};
        if (type == ENG_T_SET)
            assert_int_equal(eng_smembers(&c, k->p, k->n, NULL, collect_key, &m), 0);
        else
            assert_int_equal(eng_hgetall(&c, k->p, k->n, NULL, collect_pair, &m), 0);
        char **ms = malloc(sizeof *ms * (size_t)(m.nkeys + 1));
        for (int i = 0; i < m.nkeys; i++)
            ms[i] = (char *)m.keys[i].p, ms[i][m.keys[i].n] = '\0';
        qsort(ms, (size_t)m.nkeys, sizeof *ms, cmp_str);
        for (int i = 0; i < m.nkeys; i++) {
            buf_printf(&d->cur, " %s", ms[i]);
            free(ms[i]);
        }
        free(ms);
        free(m.keys);
        break;
    }
    case ENG_T_ZSET: {
        struct eng_zrange all = {.by = ENG_ZBY_RANK, .start = 0, .stop = -1, .limit = -1};
        assert_int_equal(eng_zrange(&c, k->p, k->n, &all, NULL, dump_scored, d), 0);
        break;
    }
    }
    eng_unlock(&c);
    if (d->n == d->cap) {
        d->cap = d->cap ? 2 * d->cap : 64;
        d->lines = realloc(d->lines, sizeof *d->lines * (size_t)d->cap);
    }
    d->lines[d->n++] = strdup(d->cur.p);
}

/* The whole keyspace as one string, keys sorted. */
static char *dump(struct eng *e)
{
    struct dump d = {0};
    for (int db = 0; db < NDB; db++) {
        d.nkeys = 0;
        uint64_t cur = 0;
        do
            cur = eng_scan(e, db, cur, NULL, 0, -1, 100, collect_key, &d);
        while (cur);
        for (int i = 0; i < d.nkeys; i++) {
            dump_key(&d, e, db, &d.keys[i]);
            free((void *)d.keys[i].p);
        }
    }
    qsort(d.lines, (size_t)d.n, sizeof *d.lines, cmp_str);
    size_t total = 1;
    for (int i = 0; i < d.n; i++)
        total += strlen(d.lines[i]) + 1;
    char *all = malloc(total), *p = all;
    for (int i = 0; i < d.n; i++) {
        p = stpcpy(p, d.lines[i]);
        *p++ = '\n';
        free(d.lines[i]);
    }
    *p = '\0';
    free(d.lines);
    free(d.keys);
    buf_release(&d.cur);
    return all;
}

/* ---- writing and reading ------------------------------------------------ */

/* The whole stream of e, in steps of `budget` bytes, collections cut at
 * max_record; counts of the writer to *counts. */
static void write_all(struct eng *e, int64_t now, size_t budget, size_t max_record, struct buf *out,
                      struct eng_snap_counts *counts)
{
    struct eng_ctx c;
    eng_ctx_init(&c, e, 0);
    eng_lock_all(&c);
    c.now_ms = now;
    struct eng_snap_writer w;
    eng_snap_writer_init(&w, &c, max_record);
    size_t steps = 0;
    while (eng_snap_write(&w, out, out->len + budget))
        steps++;
    assert_true(steps > 0 || budget > out->len);
    if (counts)
        *counts = w.counts;
    eng_snap_writer_release(&w);
    eng_unlock(&c);
}

/* Feeds stream into e in random slices; returns finish's result. */
static int read_all(struct eng *e, int64_t now, const struct buf *stream, struct eng_snap_reader *r)
{
    eng_snap_reader_init(r, e, now);
    size_t off = 0;
    while (off < stream->len) {
        size_t n = 1 + (size_t)rand() % (rand() % 4 == 0 ? 7 : 3000);
        if (n > stream->len - off)
            n = stream->len - off;
        if (eng_snap_read(r, stream->p + off, n) < 0)
            break;
        off += n;
    }
    return eng_snap_reader_finish(r);
}

/* The real clock (the engine judges TTLs by it); tests keep every TTL they
 * do not mean to pass at least a minute away from it. */
static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void test_round_trip(void **state)
{
    int64_t now = now_ms();
    fill(A, now);
    char *before = dump(A);
    size_t budgets[] = {1, 100, 4096, 1 << 20};
    size_t records[] = {64, 1000, 0};
    for (size_t bi = 0; bi < sizeof budgets / sizeof budgets[0]; bi++) {
        for (size_t ri = 0; ri < sizeof records / sizeof records[0]; ri++) {
            struct buf s = BUF_INIT;
            struct eng_snap_counts wc;
            struct eng_stats st0, st1;
            eng_stats(A, &st0);
            write_all(A, now, budgets[bi], records[ri], &s, &wc);
            eng_stats(A, &st1); /* the walk leaves no trace: no hits counted */
            assert_int_equal(st1.hits, st0.hits);
            assert_int_equal(st1.misses, st0.misses);
            assert_int_equal(wc.keys, 315);
            assert_int_equal(wc.by_type[ENG_T_STRING], 307);
            assert_int_equal(wc.by_type[ENG_T_LIST], 2);
            assert_int_equal(wc.by_type[ENG_T_SET], 2);
            assert_int_equal(wc.by_type[ENG_T_HASH], 2);
            assert_int_equal(wc.by_type[ENG_T_ZSET], 2);
            assert_int_equal(wc.expires, 4 + 75);

            struct eng_ctx fl;
            eng_ctx_init(&fl, B, 0);
            eng_lock_all(&fl);
            eng_flush(&fl, -1);
            eng_unlock(&fl);
            eng_dirty_sub(B, eng_dirty(B));
            journaled = 0;

            struct eng_snap_reader r;
            assert_int_equal(read_all(B, now, &s, &r), 0);
            assert_int_equal(r.counts.keys, wc.keys);
            assert_int_equal(r.loaded, wc.keys);
            assert_int_equal(r.counts.elements, wc.elements);
            eng_snap_reader_release(&r);
            assert_int_equal(journaled, 0);
            assert_int_equal(eng_dirty(B), 0);
            char *after = dump(B);
            same_dump(before, after);
            free(after);
            buf_release(&s);
        }
    }
    /* The writer left A as it was: same content, hooks back, no rehash pause. */
    char *again = dump(A);
    same_dump(before, again);
    free(again);
    journaled = 0;
    put_string(A, 0, "after", "x", 1, 0);
    assert_int_equal(journaled, 1);
    free(before);
}

/* Keys past their time are left out by the writer; the reader skips those
 * past the load's instant, continuation records included. */
static void test_expiry(void **state)
{
    int64_t now = now_ms();
    put_string(A, 0, "soon", "v", 1, now + 60000);
    put_string(A, 0, "later", "v", 1, now + 100000);
    put_elems(A, 0, ENG_T_LIST, "biglist", 2000, "e%d", now + 80000);
    put_string(A, 0, "forever", "v", 1, 0);
    struct buf s = BUF_INIT;
    struct eng_snap_counts wc;
    write_all(A, now + 70000, 512, 100, &s, &wc); /* "soon" has passed */
    assert_int_equal(wc.keys, 3);
    struct eng_snap_reader r;
    assert_int_equal(read_all(B, now + 90000, &s, &r), 0); /* "biglist" has passed */
    assert_int_equal(r.loaded, 2);
    assert_int_equal(r.expired, 1);
    eng_snap_reader_release(&r);
    assert_int_equal(eng_dbsize(B, 0), 2);
    struct eng_ctx c;
    with_key(B, 0, "biglist", &c);
    assert_int_equal(eng_type(&c, S("biglist")), -1);
    eng_unlock(&c);
    buf_release(&s);
}

/* A parse-only reader (no engine) counts what a stream holds. */
static void test_parse_only(void **state)
{
    int64_t now = now_ms();
    fill(A, now);
    struct buf s = BUF_INIT;
    struct eng_snap_counts wc;
    write_all(A, now, 4096, 256, &s, &wc);
    struct eng_snap_reader r;
    assert_int_equal(read_all(NULL, now, &s, &r), 0);
    assert_memory_equal(&r.counts, &wc, sizeof wc);
    eng_snap_reader_release(&r);
    buf_release(&s);
}

static int read_bytes(const char *p, size_t n)
{
    struct eng_snap_reader r;
    eng_snap_reader_init(&r, B, now_ms());
    int rc = eng_snap_read(&r, p, n);
    if (rc == 0)
        rc = eng_snap_reader_finish(&r);
    eng_snap_reader_release(&r);
    struct eng_ctx fl;
    eng_ctx_init(&fl, B, 0);
    eng_lock_all(&fl);
    eng_flush(&fl, -1);
    eng_unlock(&fl);
    return rc;
}

/* Every truncation of a stream is reported. */
static void test_truncated(void **state)
{
    int64_t now = now_ms();
    fill(A, now);
    struct buf s = BUF_INIT;
    write_all(A, now, 4096, 200, &s, NULL);
    assert_int_equal(read_bytes(s.p, s.len), 0);
    for (size_t cut = 0; cut < s.len; cut += 1 + cut / 50)
        assert_int_equal(read_bytes(s.p, cut), ERR_CORRUPT);
    assert_int_equal(read_bytes(s.p, s.len - 1), ERR_CORRUPT);
    buf_release(&s);
}

/* Damage the reader must see, whatever the checksums above it missed. */
static void test_corrupt(void **state)
{
    int64_t now = now_ms();
    put_string(A, 0, "a", "1", 1, 0);
    put_string(A, 0, "b", "2", 1, 0);
    put_elems(A, 0, ENG_T_ZSET, "z", 3, "m%d", 0);
    struct buf s = BUF_INIT;
    write_all(A, now, 1 << 20, 0, &s, NULL);
    assert_int_equal(read_bytes(s.p, s.len), 0);
    struct buf d = BUF_INIT;

    /* an unknown kind byte */
    buf_append(&d, s.p, s.len);
    d.p[0] = 0x37;
    assert_int_equal(read_bytes(d.p, d.len), ERR_CORRUPT);
    /* a continuation string */
    d.p[0] = (char)(ENG_T_STRING | ENG_SNAP_CONT);
    assert_int_equal(read_bytes(d.p, d.len), ERR_CORRUPT);
    /* a database the engine does not have */
    memcpy(d.p, s.p, s.len);
    d.p[1] = (char)NDB;
    assert_int_equal(read_bytes(d.p, d.len), ERR_CORRUPT);
    /* bytes after the end record */
    buf_reset(&d);
    buf_append(&d, s.p, s.len);
    buf_putc(&d, 0);
    assert_int_equal(read_bytes(d.p, d.len), ERR_CORRUPT);
    /* a NaN score */
    const char *z = memmem(s.p, s.len, "m2", 2);
    assert_non_null(z);
    buf_reset(&d);
    buf_append(&d, s.p, s.len);
    double nan = NAN;
    memcpy(d.p + (z - s.p) + 2, &nan, 8);
    assert_int_equal(read_bytes(d.p, d.len), ERR_CORRUPT);
    /* a wild element count waits for bytes that never come */
    buf_reset(&d);
    buf_append(&d, s.p, s.len);
    const char *zk = memmem(d.p, d.len, "\x01z", 2);
    assert_non_null(zk);
    memset(d.p + (zk - d.p) + 2, 0xFF, 4);
    assert_int_equal(read_bytes(d.p, d.len), ERR_CORRUPT);
    buf_release(&d);
    buf_release(&s);

    /* a record lost: the end record's count does not match (two strings of
     * 15 bytes each: kind, db, expire, klen, key, vlen, value) */
    struct eng_ctx fl;
    eng_ctx_init(&fl, A, 0);
    eng_lock_all(&fl);
    eng_flush(&fl, -1);
    eng_unlock(&fl);
    put_string(A, 0, "a", "1", 1, 0);
    put_string(A, 0, "b", "2", 1, 0);
    write_all(A, now, 1 << 20, 0, &s, NULL);
    assert_int_equal(s.len, 15 + 15 + 2);
    assert_int_equal(read_bytes(s.p, s.len), 0);
    assert_int_equal(read_bytes(s.p + 15, s.len - 15), ERR_CORRUPT);
    buf_release(&s);
}

/* Random keyspaces, random budgets and slices (SEED= to replay). */
static void test_random(void **state)
{
    printf("SEED=%u\n", seed);
    int64_t now = now_ms();
    for (int round = 0; round < 5; round++) {
        struct eng_ctx fl;
        eng_ctx_init(&fl, A, 0);
        eng_lock_all(&fl);
        eng_flush(&fl, -1);
        eng_unlock(&fl);
        int nkeys = rand() % 400;
        for (int i = 0; i < nkeys; i++) {
            char key[32];
            snprintf(key, sizeof key, "r%d:%d", round, i);
            int type = rand() % ENG_T__COUNT, db = rand() % NDB;
            int64_t exp = rand() % 3 == 0 ? now + 100000 + rand() % 100000 : 0;
            if (type == ENG_T_STRING) {
                char v[200];
                int len = rand() % 200;
                for (int j = 0; j < len; j++)
                    v[j] = (char)(rand() % 256);
                put_string(A, db, key, v, (size_t)len, exp);
            } else {
                put_elems(A, db, type, key, 1 + rand() % 300, rand() % 2 ? "%d" : "m-%d", exp);
            }
        }
        char *before = dump(A);
        struct buf s = BUF_INIT;
        struct eng_snap_counts wc;
        write_all(A, now, 1 + (size_t)rand() % 10000, (size_t)rand() % 3000, &s, &wc);
        uint64_t total = 0;
        for (int db = 0; db < NDB; db++)
            total += eng_dbsize(A, db);
        assert_int_equal(wc.keys, total);
        eng_ctx_init(&fl, B, 0);
        eng_lock_all(&fl);
        eng_flush(&fl, -1);
        eng_unlock(&fl);
        struct eng_snap_reader r;
        assert_int_equal(read_all(B, now, &s, &r), 0);
        assert_int_equal(r.loaded, total);
        eng_snap_reader_release(&r);
        char *after = dump(B);
        same_dump(before, after);
        free(after);
        free(before);
        buf_release(&s);
    }
}

/* ---- versioned snapshots ------------------------------------------------ */

static void del_key(struct eng *e, int db, const char *key)
{
    struct eng_ctx c;
    with_key(e, db, key, &c);
    eng_del(&c, S(key));
    eng_unlock(&c);
}

static void read_key(struct eng *e, int db, const char *key)
{
    struct eng_ctx c;
    struct eng_val v;
    with_key(e, db, key, &c);
    eng_get(&c, S(key), &v);
    eng_unlock(&c);
}

/* Loads a stream into B (flushed first) and returns B's dump. */
static char *load_dump(const struct buf *s, int64_t now, uint64_t *keys)
{
    struct eng_ctx fl;
    eng_ctx_init(&fl, B, 0);
    eng_lock_all(&fl);
    eng_flush(&fl, -1);
    eng_unlock(&fl);
    struct eng_snap_reader r;
    assert_int_equal(read_all(B, now, s, &r), 0);
    if (keys)
        *keys = r.loaded;
    eng_snap_reader_release(&r);
    return dump(B);
}

/* A whole versioned snapshot of A, taken now, loads back as want. */
static void vsnap_loads_as(int64_t now, const char *want)
{
    struct eng_vsnap *v;
    struct buf s = BUF_INIT;
    assert_int_equal(eng_vsnap_begin(A, 0, NULL, NULL, NULL, &v), 0);
    while (eng_vsnap_write(v, &s, s.len + 4096))
        ;
    eng_vsnap_free(v);
    char *got = load_dump(&s, now, NULL);
    same_dump(want, got);
    free(got);
    buf_release(&s);
}

/* The walk goes on in small steps while keys change under it (overwritten,
 * deleted, read, grown, new ones, a FLUSHDB): the stream is the keyspace as
 * it was at begin, not as it ends. */
static void test_versioned_point_in_time(void **state)
{
    int64_t now = now_ms();
    fill(A, now);
    for (int i = 0; i < 600; i++) {
        char key[32];
        snprintf(key, sizeof key, "pit:%d", i);
        put_string(A, i % NDB, key, "old", 3, i % 5 == 0 ? now + 600000 : 0);
    }
    char *before = dump(A);
    uint64_t total_before = 0;
    for (int db = 0; db < NDB; db++)
        total_before += eng_dbsize(A, db);
    struct eng_vsnap *v;
    uint64_t total = 0;
    assert_int_equal(eng_vsnap_begin(A, 200, NULL, NULL, &total, &v), 0);
    assert_int_equal(total, total_before);
    struct eng_vsnap *second;
    assert_int_equal(eng_vsnap_begin(A, 0, NULL, NULL, NULL, &second), ERR_EXISTS);
    struct buf s = BUF_INIT;
    int step = 0, more = 1, flushed = 0;
    while (more) {
        more = eng_vsnap_write(v, &s, s.len + 1 + (size_t)rand() % 400);
        /* change things between steps */
        for (int j = 0; j < 7; j++, step++) {
            char key[32];
            int i = (step * 37) % 600;
            snprintf(key, sizeof key, "pit:%d", i);
            switch (step % 5) {
            case 0: put_string(A, i % NDB, key, "new", 3, 0); break;
            case 1: del_key(A, i % NDB, key); break;
            case 2: read_key(A, i % NDB, key); break;
            case 3:
                snprintf(key, sizeof key, "born:%d", step);
                put_string(A, step % NDB, key, "late", 4, 0);
                break;
            case 4: put_elems(A, 0, ENG_T_LIST, "pit:list", 3, "x%d", 0); break;
            }
        }
        if (step >= 70 && !flushed) { /* a FLUSHDB in the middle of the walk */
            flushed = 1;
            struct eng_ctx fl;
            eng_ctx_init(&fl, A, 2);
            eng_lock_all(&fl);
            eng_flush(&fl, 2);
            eng_unlock(&fl);
        }
    }
    assert_true(flushed);
    assert_int_equal(eng_vsnap_counts(v)->keys, total_before);
    eng_vsnap_free(v);
    uint64_t loaded;
    char *got = load_dump(&s, now, &loaded);
    assert_int_equal(loaded, total_before);
    same_dump(before, got);
    free(got);
    free(before);
    buf_release(&s);

    /* The next one (parity flipped again) is the keyspace as it is now. */
    char *now_dump = dump(A);
    vsnap_loads_as(now, now_dump);

    /* One given up half way leaves every key marked: the one after it is whole. */
    assert_int_equal(eng_vsnap_begin(A, 0, NULL, NULL, NULL, &v), 0);
    assert_int_equal(eng_vsnap_write(v, &s, 100), 1);
    eng_vsnap_free(v);
    buf_release(&s);
    put_string(A, 1, "after-abort", "y", 1, 0);
    free(now_dump);
    now_dump = dump(A);
    vsnap_loads_as(now, now_dump);
    free(now_dump);
}

int main(void)
{
    const char *env = getenv("SEED");
    seed = env ? (unsigned)strtoul(env, NULL, 10) : (unsigned)time(NULL);
    srand(seed);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parse_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_random, setup, teardown),
        cmocka_unit_test_setup_teardown(test_versioned_point_in_time, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
