/* test_snap_format.c: replication/snap_format.c and the checked reading of
 * restore.c.  Frames round trip (lz4 and stored), and any damage is seen:
 * every single flipped byte and every truncation of a frame; key=value
 * payloads; ids.  Then whole snapshots through snap_check: a good one loads,
 * and a dropped, repeated, swapped or damaged chunk, a missing, foreign or
 * lying trailer, and frames after the trailer are each refused with a
 * reason. */
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
#include "hash.h"
#include "snap_int.h"

/* ---- frames ------------------------------------------------------------------ */

static void test_frame_round_trip(void **state)
{
    char text[20000];
    for (size_t i = 0; i < sizeof text; i++)
        text[i] = "abcabcabd"[i % 9];
    unsigned char noise[5000];
    srand(7);
    for (size_t i = 0; i < sizeof noise; i++)
        noise[i] = (unsigned char)rand();
    struct {
        const void *p;
        size_t n;
        int compress, codec;
    } cases[] = {
        {text, sizeof text, 1, SNAP_CODEC_LZ4},
        {text, sizeof text, 0, SNAP_CODEC_NONE},
        {noise, sizeof noise, 1, SNAP_CODEC_NONE}, /* lz4 would not save room */
        {"", 0, 1, SNAP_CODEC_NONE},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        struct buf b = BUF_INIT, raw = BUF_INIT;
        buf_append(&b, "junk", 4); /* frames append */
        uint64_t sum = snap_frame_build(&b, SNAP_K_CHUNK, 42, cases[c].p, cases[c].n, cases[c].compress);
        struct snap_frame f;
        size_t total;
        assert_int_equal(snap_frame_parse(b.p + 4, b.len - 4, &f, &total, NULL), 0);
        assert_int_equal(total, b.len - 4);
        assert_int_equal(f.kind, SNAP_K_CHUNK);
        assert_int_equal(f.seq, 42);
        assert_int_equal(f.codec, cases[c].codec);
        assert_int_equal(f.raw_len, cases[c].n);
        assert_true(f.checksum == sum);
        if (cases[c].codec == SNAP_CODEC_LZ4)
            assert_true(f.stored_len < f.raw_len / 4);
        assert_int_equal(snap_frame_raw(&f, &raw), 0);
        assert_int_equal(raw.len, cases[c].n);
        assert_memory_equal(raw.p ? raw.p : "", cases[c].p, cases[c].n);
        buf_release(&b);
        buf_release(&raw);
    }
}

/* Any one byte changed, anywhere in a frame, and any cut: never a frame. */
static void test_frame_damage(void **state)
{
    char text[3000];
    for (size_t i = 0; i < sizeof text; i++)
        text[i] = (char)('a' + i % 13);
    for (int compress = 0; compress <= 1; compress++) {
        struct buf b = BUF_INIT;
        snap_frame_build(&b, SNAP_K_CHUNK, 3, text, sizeof text, compress);
        struct snap_frame f;
        size_t total;
        for (size_t i = 0; i < b.len; i++) {
            for (int bit = 0; bit < 8; bit += 3) {
                b.p[i] ^= (char)(1 << bit);
                int rc = snap_frame_parse(b.p, b.len, &f, &total, NULL);
                /* a size made larger asks for bytes that are not there */
                assert_true(rc == ERR_CORRUPT || rc == ERR_AGAIN);
                b.p[i] ^= (char)(1 << bit);
            }
        }
        for (size_t cut = 0; cut < b.len; cut++)
            assert_int_not_equal(snap_frame_parse(b.p, cut, &f, &total, NULL), 0);
        assert_int_equal(snap_frame_parse(b.p, b.len, &f, &total, NULL), 0);
        buf_release(&b);
    }
    /* a payload that is not lz4 for all its good checksum */
    struct buf b = BUF_INIT, raw = BUF_INIT;
    snap_frame_build(&b, SNAP_K_CHUNK, 0, text, sizeof text, 1);
    struct snap_frame f;
    size_t total;
    assert_int_equal(snap_frame_parse(b.p, b.len, &f, &total, NULL), 0);
    f.raw_len += 5;
    assert_int_equal(snap_frame_raw(&f, &raw), ERR_CORRUPT);
    buf_release(&b);
    buf_release(&raw);
}

static void test_kv_and_ids(void **state)
{
    struct buf b = BUF_INIT;
    snap_kv_add(&b, "keys", "%d", 12);
    snap_kv_add(&b, "keys2", "%s", "x");
    snap_kv_add(&b, "empty", "%s", "");
    char v[16];
    uint64_t u;
    assert_int_equal(snap_kv_u64(b.p, b.len, "keys", &u), 0);
    assert_int_equal(u, 12);
    assert_int_equal(snap_kv_get(b.p, b.len, "keys2", v, sizeof v), 0);
    assert_string_equal(v, "x");
    assert_int_equal(snap_kv_get(b.p, b.len, "key", v, sizeof v), -1);
    assert_int_equal(snap_kv_u64(b.p, b.len, "empty", &u), -1);
    buf_release(&b);

    char a[SNAP_ID_MAX], c[SNAP_ID_MAX];
    snap_make_id(a, 1795635742094);
    assert_int_equal(strncmp(a, "20261125T194222094Z-", 20), 0);
    assert_true(snap_id_valid(a));
    snap_make_id(c, 1795635742095);
    assert_true(strcmp(a, c) < 0);
    assert_false(snap_id_valid("20261125T194222094Z-ABCDEF01"));
    assert_false(snap_id_valid("20261125T194222094Z-abcdef0"));
    assert_false(snap_id_valid("../../etc/passwd"));
}

/* ---- whole snapshots -------------------------------------------------------------- */

struct snap {
    struct buf frames[64];
    int n;
};

/* A snapshot of a small engine, in frames: H, C..., T. */
static void make_snapshot(struct snap *s, size_t chunk)
{
    struct eng_config cfg = {.nshards = 2, .ndb = 2};
    struct eng *e = eng_new(&cfg);
    struct eng_ctx c;
    eng_ctx_init(&c, e, 0);
    eng_lock_all(&c);
    for (int i = 0; i < 200; i++) {
        char k[16], f[16];
        snprintf(k, sizeof k, "h%d", i % 20);
        snprintf(f, sizeof f, "f%d", i);
        struct eng_str fv[2] = {{f, strlen(f)}, {"value", 5}};
        int64_t added;
        assert_int_equal(eng_hset(&c, k, strlen(k), fv, 1, &added), 0);
    }
    struct snap_meta m = {.created_ms = 1795635742094};
    snap_make_id(m.id, m.created_ms);
    struct buf payload = BUF_INIT, raw = BUF_INIT;
    memset(s, 0, sizeof *s);
    snap_meta_header(&m, &payload);
    snap_frame_build(&s->frames[s->n++], SNAP_K_HEADER, 0, payload.p, payload.len, 0);
    struct eng_snap_writer w;
    eng_snap_writer_init(&w, &c, 64);
    XXH3_state_t d;
    XXH3_64bits_reset(&d);
    int more = 1;
    while (more || raw.len) {
        if (more)
            more = eng_snap_write(&w, &raw, chunk);
        if (raw.len < chunk && more)
            continue;
        size_t n = raw.len < chunk ? raw.len : chunk;
        uint64_t sum = snap_frame_build(&s->frames[s->n++], SNAP_K_CHUNK, m.chunks++, raw.p, n, 1);
        unsigned char le[8];
        for (int i = 0; i < 8; i++)
            le[i] = (unsigned char)(sum >> (8 * i));
        XXH3_64bits_update(&d, le, 8);
        buf_consume(&raw, n);
        assert_true(s->n < 63);
    }
    m.counts = w.counts;
    m.digest = XXH3_64bits_digest(&d);
    eng_snap_writer_release(&w);
    eng_unlock(&c);
    buf_reset(&payload);
    snap_meta_trailer(&m, &payload);
    snap_frame_build(&s->frames[s->n++], SNAP_K_TRAILER, m.chunks, payload.p, payload.len, 0);
    buf_release(&payload);
    buf_release(&raw);
    eng_free(e);
}

static void free_snapshot(struct snap *s)
{
    for (int i = 0; i < 64; i++)
        buf_release(&s->frames[i]);
}

/* Feeds frames in the order given (indexes into s, -1 ends); returns the
 * check's verdict and leaves its reason in why. */
static int check(struct snap *s, const int *order, struct eng *e, char *why)
{
    struct snap_check c;
    snap_check_init(&c, e, 0);
    int rc = 0;
    for (int i = 0; order[i] >= 0 && rc == 0; i++)
        rc = snap_check_frame(&c, s->frames[order[i]].p, s->frames[order[i]].len);
    if (rc == 0)
        rc = snap_check_finish(&c);
    strcpy(why, c.err);
    snap_check_release(&c);
    return rc;
}

static void test_check(void **state)
{
    struct snap s;
    make_snapshot(&s, 300);
    int n = s.n, last = n - 1;
    assert_true(n >= 5);
    int order[80], k;
    char why[256];

    /* in order: loads every key */
    struct eng_config cfg = {.nshards = 3, .ndb = 2};
    struct eng *e = eng_new(&cfg);
    for (k = 0; k < n; k++)
        order[k] = k;
    order[k] = -1;
    assert_int_equal(check(&s, order, e, why), 0);
    assert_int_equal(eng_dbsize(e, 0), 20);
    eng_free(e);
    assert_int_equal(check(&s, order, NULL, why), 0);

    /* a chunk dropped */
    for (k = 0; k < n - 1; k++)
        order[k] = k < 2 ? k : k + 1;
    order[k] = -1;
    assert_int_equal(check(&s, order, NULL, why), ERR_CORRUPT);
    assert_non_null(strstr(why, "chunk 2 where chunk 1 was due"));
    /* a chunk repeated */
    order[0] = 0, order[1] = 1, order[2] = 1;
    for (k = 3; k < n + 1; k++)
        order[k] = k - 1;
    order[k] = -1;
    assert_int_equal(check(&s, order, NULL, why), ERR_CORRUPT);
    /* two chunks swapped */
    for (k = 0; k < n; k++)
        order[k] = k;
    order[1] = 2, order[2] = 1, order[k] = -1;
    assert_int_equal(check(&s, order, NULL, why), ERR_CORRUPT);
    /* no trailer: cut short */
    for (k = 0; k < n - 1; k++)
        order[k] = k;
    order[k] = -1;
    assert_int_equal(check(&s, order, NULL, why), ERR_CORRUPT);
    assert_non_null(strstr(why, "cut short"));
    /* a frame after the trailer */
    for (k = 0; k < n; k++)
        order[k] = k;
    order[k++] = 1, order[k] = -1;
    assert_int_equal(check(&s, order, NULL, why), ERR_CORRUPT);
    /* no header */
    for (k = 0; k < n - 1; k++)
        order[k] = k + 1;
    order[k] = -1;
    assert_int_equal(check(&s, order, NULL, why), ERR_CORRUPT);

    /* a damaged chunk */
    for (k = 0; k < n; k++)
        order[k] = k;
    order[k] = -1;
    s.frames[2].p[s.frames[2].len - 3] ^= 1;
    assert_int_equal(check(&s, order, NULL, why), ERR_CORRUPT);
    assert_non_null(strstr(why, "checksum mismatch"));
    s.frames[2].p[s.frames[2].len - 3] ^= 1;

    /* a trailer whose digest does not match (its own checksum is good) */
    struct snap_frame f;
    size_t total;
    struct buf raw = BUF_INIT, t = BUF_INIT;
    assert_int_equal(snap_frame_parse(s.frames[last].p, s.frames[last].len, &f, &total, NULL), 0);
    assert_int_equal(snap_frame_raw(&f, &raw), 0);
    char *dg = strstr(raw.p, "digest=");
    dg[7] = dg[7] == '0' ? '1' : '0';
    snap_frame_build(&t, SNAP_K_TRAILER, f.seq, raw.p, raw.len, 0);
    struct buf keep = s.frames[last];
    s.frames[last] = t;
    assert_int_equal(check(&s, order, NULL, why), ERR_CORRUPT);
    assert_non_null(strstr(why, "digest"));
    /* a trailer of another snapshot */
    dg[7] = dg[7] == '0' ? '1' : '0';
    char *id = strstr(raw.p, "id=");
    id[3] = id[3] == '1' ? '2' : '1';
    buf_reset(&t);
    snap_frame_build(&t, SNAP_K_TRAILER, f.seq, raw.p, raw.len, 0);
    s.frames[last] = t;
    assert_int_equal(check(&s, order, NULL, why), ERR_CORRUPT);
    assert_non_null(strstr(why, "trailer of snapshot"));
    s.frames[last] = keep;
    buf_release(&t);
    buf_release(&raw);
    free_snapshot(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frame_round_trip),
        cmocka_unit_test(test_frame_damage),
        cmocka_unit_test(test_kv_and_ids),
        cmocka_unit_test(test_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
