/* test_resp_reader.c: the request reader and the value reader of resp.h.
 *
 * Requests are checked by rendering what the reader returns as "[arg][arg]|"
 * per request and comparing strings, for whole buffers, for every way of
 * cutting a pipeline in two and three slices, byte by byte, and with the
 * buffer moved between calls.  A random pipeline test prints its seed and
 * takes SEED= from the environment.  Values are rendered the same way, and
 * round-trip through the writer. */
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
#include "base/buf.h"
#include "base/err.h"
#include "resp.h"

static const struct resp_limits lim_redis = {512LL * 1024 * 1024, 1024 * 1024, 64 * 1024};

/* ---- helpers ------------------------------------------------------------ */

/* Appends "[arg]..." and a "|" for one request the reader returned. */
static void render_req(struct buf *out, const struct resp_req_reader *r, const char *buf, int64_t argc)
{
    for (int64_t i = 0; i < argc; i++) {
        size_t n;
        const char *p = resp_req_arg(r, buf, i, &n);
        buf_putc(out, '[');
        buf_append(out, p, n);
        buf_putc(out, ']');
    }
    buf_putc(out, '|');
}

/* Feeds data[0..len) to a fresh reader in slices ending at the offsets in
 * cuts[0..ncuts) (ascending), then the rest.  The bytes are copied to a new
 * block before every call, so a reader that kept a pointer into the old one
 * is caught by ASan.  Returns the rendered requests, then "E:<msg>" on a
 * protocol error.  Also checks that every byte was consumed on success. */
static char *feed_cuts(const char *data, size_t len, const struct resp_limits *lim, const size_t *cuts, size_t ncuts,
                       size_t *outlen)
{
    struct resp_req_reader r;
    struct buf out = BUF_INIT;
    char *cur = NULL;
    size_t have = 0, given = 0, consumed = 0, ci = 0;

    resp_req_reader_init(&r, lim);
    for (;;) {
        int64_t argc;
        size_t used;
        int rc = resp_req_read(&r, cur ? cur : "", have, &argc, &used);
        if (rc == 1) {
            render_req(&out, &r, cur, argc);
            assert_true(used > 0 && used <= have);
            memmove(cur, cur + used, have - used);
            have -= used;
            consumed += used;
            continue;
        }
        if (rc == ERR_PROTO) {
            buf_printf(&out, "E:%s", r.err);
            break;
        }
        assert_int_equal(rc, ERR_AGAIN);
        if (given == len) {
            assert_int_equal(consumed + have, len);
            if (have)
                buf_puts(&out, "AGAIN");
            break;
        }
        size_t next = ci < ncuts ? cuts[ci++] : len;
        char *moved = malloc(have + (next - given) + 1);
        if (have)
            memcpy(moved, cur, have);
        memcpy(moved + have, data + given, next - given);
        free(cur);
        cur = moved;
        have += next - given;
        given = next;
    }
    free(cur);
    resp_req_reader_release(&r);
    return buf_detach(&out, outlen);
}

static char *feed_whole(const char *data, size_t len, const struct resp_limits *lim, size_t *outlen)
{
    return feed_cuts(data, len, lim, NULL, 0, outlen);
}

static char *feed_bytewise(const char *data, size_t len, const struct resp_limits *lim, size_t *outlen)
{
    size_t *cuts = malloc((len + 1) * sizeof *cuts);
    for (size_t i = 0; i < len; i++)
        cuts[i] = i + 1;
    char *s = feed_cuts(data, len, lim, cuts, len, outlen);
    free(cuts);
    return s;
}

/* Compares a rendering that may hold NUL bytes with a string literal. */
#define ASSERT_BYTES(got, gotlen, want)                      \
    do {                                                     \
        if ((gotlen) != sizeof(want) - 1 || memcmp(got, want, gotlen) != 0) \
            fail_msg("got \"%s\" (%zu bytes), want \"%s\"", got, (size_t)(gotlen), want); \
    } while (0)

#define CHECK_REQ(lim, data, want)                                  \
    do {                                                            \
        size_t n_;                                                  \
        char *got_ = feed_whole(data, sizeof(data) - 1, lim, &n_);  \
        ASSERT_BYTES(got_, n_, want);                               \
        xfree(got_);                                                \
        got_ = feed_bytewise(data, sizeof(data) - 1, lim, &n_);     \
        ASSERT_BYTES(got_, n_, want);                               \
        xfree(got_);                                                \
    } while (0)

/* One call on a fresh reader; returns rc and, on 1, the rendering. */
static int read_once(const char *data, size_t len, const struct resp_limits *lim, char *render, size_t cap,
                     size_t *used)
{
    struct resp_req_reader r;
    int64_t argc;
    resp_req_reader_init(&r, lim);
    int rc = resp_req_read(&r, data, len, &argc, used);
    if (rc == 1) {
        struct buf out = BUF_INIT;
        render_req(&out, &r, data, argc);
        snprintf(render, cap, "%s", out.p);
        buf_release(&out);
    } else if (rc == ERR_PROTO) {
        snprintf(render, cap, "E:%s", r.err);
    }
    resp_req_reader_release(&r);
    return rc;
}

/* ---- request reader: multibulk ----------------------------------------- */

static void test_multibulk_basic(void **state)
{
    CHECK_REQ(&lim_redis, "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", "[GET][k]|");
    CHECK_REQ(&lim_redis, "*1\r\n$0\r\n\r\n", "[]|");
    /* binary safe: CR, LF and NUL inside an argument */
    CHECK_REQ(&lim_redis, "*2\r\n$4\r\nECHO\r\n$5\r\na\r\n\0b\r\n", "[ECHO][a\r\n\0b]|");
    /* empty requests, any negative count included (Redis's test "*-10") */
    CHECK_REQ(&lim_redis, "*0\r\n*-1\r\n*-10\r\n", "|||");
}

static void test_multibulk_offsets_and_used(void **state)
{
    const char req[] = "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\nPING\r\n";
    struct resp_req_reader r;
    int64_t argc;
    size_t used;
    resp_req_reader_init(&r, &lim_redis);
    assert_int_equal(resp_req_read(&r, req, sizeof req - 1, &argc, &used), 1);
    assert_int_equal(argc, 3);
    assert_int_equal(used, sizeof req - 1 - 6);
    assert_int_equal(r.args[0].off, 8);
    assert_int_equal(r.args[0].len, 3);
    assert_int_equal(r.args[2].off, 24);
    assert_int_equal(r.args[2].len, 5);
    assert_false(r.in_scratch);
    /* reset for the next request */
    assert_int_equal(r.pos, 0);
    assert_int_equal(r.nargs, 0);
    assert_int_equal(r.bulk_len, -1);
    assert_int_equal(resp_req_read(&r, req + used, 6, &argc, &used), 1);
    assert_int_equal(argc, 1);
    assert_int_equal(used, 6);
    resp_req_reader_release(&r);
}

/* Redis's tests/unit/protocol.tcl, same bytes, same wording. */
static void test_multibulk_redis_protocol_tcl(void **state)
{
    CHECK_REQ(&lim_redis, "*20000000\r\n", "E:invalid multibulk length");
    CHECK_REQ(&lim_redis, "*3000000000\r\n", "E:invalid multibulk length");
    CHECK_REQ(&lim_redis, "*3\r\n$3\r\nSET\r\n$1\r\nx\r\nfooz\r\n", "E:expected '$', got 'f'");
    CHECK_REQ(&lim_redis, "*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$-10\r\n", "E:invalid bulk length");
    CHECK_REQ(&lim_redis, "*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$2000000000\r\n", "E:invalid bulk length");
    CHECK_REQ(&lim_redis, "*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$blabla\r\n", "E:invalid bulk length");
    CHECK_REQ(&lim_redis, "*1\r\nfoo\r\n", "E:expected '$', got 'f'");
}

static void test_multibulk_strict_lengths(void **state)
{
    static const char *const bad_count[] = {"*\r\n", "*01\r\n", "*+1\r\n", "* 1\r\n", "*1 \r\n", "*-0\r\n",
                                            "*-\r\n", "*1x\r\n", "*9223372036854775808\r\n", "*\x00\r\n"};
    static const char *const bad_bulk[] = {"$\r\n", "$01\r\n", "$+1\r\n", "$ 1\r\n", "$1 \r\n", "$-1\r\n",
                                           "$-0\r\n", "$0x1\r\n", "$99999999999999999999\r\n"};
    char got[256], req[64];
    size_t used;
    for (size_t i = 0; i < sizeof bad_count / sizeof *bad_count; i++) {
        size_t n = strlen(bad_count[i]) + (bad_count[i][1] == '\0' ? 3 : 0);
        assert_int_equal(read_once(bad_count[i], n, &lim_redis, got, sizeof got, &used), ERR_PROTO);
        assert_string_equal(got, "E:invalid multibulk length");
    }
    for (size_t i = 0; i < sizeof bad_bulk / sizeof *bad_bulk; i++) {
        int n = snprintf(req, sizeof req, "*1\r\n%s", bad_bulk[i]);
        assert_int_equal(read_once(req, (size_t)n, &lim_redis, got, sizeof got, &used), ERR_PROTO);
        assert_string_equal(got, "E:invalid bulk length");
    }
    /* the largest counts that parse */
    assert_int_equal(read_once("*1048576\r\n", 10, &lim_redis, got, sizeof got, &used), ERR_AGAIN);
    assert_int_equal(read_once("*1048577\r\n", 10, &lim_redis, got, sizeof got, &used), ERR_PROTO);
    assert_string_equal(got, "E:invalid multibulk length");
}

/* The '$' check waits for the whole line, as Redis does. */
static void test_multibulk_expected_dollar(void **state)
{
    char got[256];
    size_t used;
    assert_int_equal(read_once("*1\r\nX", 5, &lim_redis, got, sizeof got, &used), ERR_AGAIN);
    assert_int_equal(read_once("*1\r\nX\r", 6, &lim_redis, got, sizeof got, &used), ERR_AGAIN);
    assert_int_equal(read_once("*1\r\nX\r\n", 7, &lim_redis, got, sizeof got, &used), ERR_PROTO);
    assert_string_equal(got, "E:expected '$', got 'X'");
    assert_int_equal(read_once("*2\r\n$1\r\na\r\n:1\r\n", 16, &lim_redis, got, sizeof got, &used), ERR_PROTO);
    assert_string_equal(got, "E:expected '$', got ':'");
}

/* Redis ends a count line at its first CR and skips the next byte unread,
 * and skips the two bytes after an argument the same way. */
static void test_multibulk_redis_quirks(void **state)
{
    CHECK_REQ(&lim_redis, "*1\rX$3\rYfooZZ", "[foo]|");
    CHECK_REQ(&lim_redis, "*2\r\n$3\r\nfoo\n\n$1\r\nb\r\n", "[foo][b]|");
}

static void test_multibulk_limits(void **state)
{
    struct resp_limits lim = {10, 3, 64 * 1024};
    char got[256];
    size_t used;
    CHECK_REQ(&lim, "*3\r\n$10\r\n0123456789\r\n$0\r\n\r\n$1\r\nx\r\n", "[0123456789][][x]|");
    CHECK_REQ(&lim, "*4\r\n", "E:invalid multibulk length");
    /* refused on the length line, before a byte of the argument arrived */
    assert_int_equal(read_once("*1\r\n$11\r\n", 9, &lim, got, sizeof got, &used), ERR_PROTO);
    assert_string_equal(got, "E:invalid bulk length");
}

/* A huge announced count allocates nothing for it: slots grow as arguments
 * arrive.  A big array is shrunk back at the next small request. */
static void test_multibulk_no_alloc_for_claims(void **state)
{
    struct resp_req_reader r;
    int64_t argc;
    size_t used;
    resp_req_reader_init(&r, &lim_redis);
    assert_int_equal(resp_req_read(&r, "*1048576\r\n$1\r\na\r\n", 17, &argc, &used), ERR_AGAIN);
    assert_true(r.args_cap <= 1024);
    assert_int_equal(r.nargs, 1);
    resp_req_reader_release(&r);

    struct buf req = BUF_INIT;
    buf_puts(&req, "*5000\r\n");
    for (int i = 0; i < 5000; i++)
        buf_puts(&req, "$1\r\nv\r\n");
    resp_req_reader_init(&r, &lim_redis);
    assert_int_equal(resp_req_read(&r, req.p, req.len, &argc, &used), 1);
    assert_int_equal(argc, 5000);
    assert_true(r.args_cap >= 5000);
    assert_int_equal(resp_req_read(&r, "*1\r\n$4\r\nPING\r\n", 14, &argc, &used), 1);
    assert_int_equal(r.args_cap, 1024);
    /* and no reallocation while requests stay at most 1024 arguments */
    struct buf req1000 = BUF_INIT;
    buf_puts(&req1000, "*1000\r\n");
    for (int i = 0; i < 1000; i++)
        buf_puts(&req1000, "$1\r\nv\r\n");
    struct resp_arg *args = r.args;
    for (int i = 0; i < 100; i++) {
        assert_int_equal(resp_req_read(&r, "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", 20, &argc, &used), 1);
        assert_int_equal(resp_req_read(&r, req1000.p, req1000.len, &argc, &used), 1);
        assert_int_equal(argc, 1000);
    }
    buf_release(&req1000);
    assert_ptr_equal(r.args, args);
    resp_req_reader_release(&r);
    buf_release(&req);
}

/* "*" or "$" lines without CR: an error once more than 64 KiB are buffered. */
static void test_too_big_count_strings(void **state)
{
    size_t n = 64 * 1024 + 8;
    char *req = malloc(n + 8);
    char got[256];
    size_t used;

    memset(req, '1', n + 8);
    req[0] = '*';
    assert_int_equal(read_once(req, 64 * 1024, &lim_redis, got, sizeof got, &used), ERR_AGAIN);
    assert_int_equal(read_once(req, 64 * 1024 + 1, &lim_redis, got, sizeof got, &used), ERR_PROTO);
    assert_string_equal(got, "E:too big mbulk count string");

    memcpy(req, "*1\r\n$", 5);
    assert_int_equal(read_once(req, 4 + 64 * 1024, &lim_redis, got, sizeof got, &used), ERR_AGAIN);
    assert_int_equal(read_once(req, 4 + 64 * 1024 + 1, &lim_redis, got, sizeof got, &used), ERR_PROTO);
    assert_string_equal(got, "E:too big bulk count string");

    /* byte by byte: the search resumes where it stopped (linear, not 2^32) */
    struct resp_req_reader r;
    int64_t argc;
    size_t len;
    int rc = ERR_AGAIN;
    req[0] = '*';
    memset(req + 1, '1', n);
    resp_req_reader_init(&r, &lim_redis);
    for (len = 1; len <= n && rc == ERR_AGAIN; len++)
        rc = resp_req_read(&r, req, len, &argc, &used);
    assert_int_equal(rc, ERR_PROTO);
    assert_int_equal(len - 1, 64 * 1024 + 1);
    assert_string_equal(r.err, "too big mbulk count string");
    resp_req_reader_release(&r);
    free(req);
}

/* Redis's "Protocol desync regression test": a NUL after the type byte and
 * then lots of bytes without a line end. */
static void test_desync_regression(void **state)
{
    static const char *const seqs[] = {"\0", "*\0", "$\0"};
    static const char *const want[] = {"E:too big inline request", "E:too big mbulk count string",
                                       "E:too big inline request"};
    size_t n = 100 * 1024;
    char *req = malloc(n);
    char got[256];
    size_t used;
    for (int i = 0; i < 3; i++) {
        size_t k = (size_t)i == 0 ? 1 : 2;
        memset(req, 'A', n);
        memcpy(req, seqs[i], k);
        assert_int_equal(read_once(req, n, &lim_redis, got, sizeof got, &used), ERR_PROTO);
        assert_string_equal(got, want[i]);
    }
    free(req);
}

/* ---- request reader: inline -------------------------------------------- */

static void test_inline_basic(void **state)
{
    CHECK_REQ(&lim_redis, "PING\r\n", "[PING]|");
    CHECK_REQ(&lim_redis, "PING\n", "[PING]|");
    CHECK_REQ(&lim_redis, "  set   k\tv  \r\n", "[set][k][v]|");
    /* Redis's "Handle an empty query" */
    CHECK_REQ(&lim_redis, "\r\n\n  \t\r\n", "|||");
    /* only the '\r' right before '\n' belongs to the line end; others split */
    CHECK_REQ(&lim_redis, "a\rb\r\r\n", "[a][b]|");
    /* \v and \f are skipped between arguments but do not end one */
    CHECK_REQ(&lim_redis, "\va\vb\f c\n", "[a\vb\f][c]|");
    /* a NUL byte is an ordinary byte */
    CHECK_REQ(&lim_redis, "a\0b c\n", "[a\0b][c]|");
}

static void test_inline_used_and_views(void **state)
{
    const char req[] = "GET key\r\nGET \"k y\"\nrest";
    struct resp_req_reader r;
    int64_t argc;
    size_t used, n;
    resp_req_reader_init(&r, &lim_redis);
    assert_int_equal(resp_req_read(&r, req, sizeof req - 1, &argc, &used), 1);
    assert_int_equal(used, 9);
    assert_false(r.in_scratch);
    assert_ptr_equal(resp_req_arg(&r, req, 1, &n), req + 4);
    assert_int_equal(n, 3);
    assert_int_equal(resp_req_read(&r, req + 9, sizeof req - 1 - 9, &argc, &used), 1);
    assert_int_equal(used, 10);
    assert_true(r.in_scratch);
    const char *p = resp_req_arg(&r, req + 9, 1, &n);
    assert_int_equal(n, 3);
    assert_memory_equal(p, "k y", 3);
    assert_int_equal(resp_req_read(&r, req + 19, 4, &argc, &used), ERR_AGAIN);
    resp_req_reader_release(&r);
}

/* sdssplitargs()'s cases, with Redis's test for unbalanced quotes. */
static void test_inline_quoting(void **state)
{
    CHECK_REQ(&lim_redis, "set \"foo bar\" baz\n", "[set][foo bar][baz]|");
    CHECK_REQ(&lim_redis, "\"\\x41\\x42\\x4a\\x4B\"\n", "[ABJK]|");
    CHECK_REQ(&lim_redis, "\"\\x4G\" \"\\x\"\n", "[x4G][x]|");
    CHECK_REQ(&lim_redis, "\"\\x00\"\n", "[\0]|");
    CHECK_REQ(&lim_redis, "\"a\\nb\\r\\t\\b\\a\\\\\\\"\\qz\"\n", "[a\nb\r\t\b\a\\\"qz]|");
    CHECK_REQ(&lim_redis, "'it\\'s' 'a\\nb' '\"'\n", "[it's][a\\nb][\"]|");
    CHECK_REQ(&lim_redis, "foo\"bar baz\" x'y z'\n", "[foobar baz][xy z]|");
    CHECK_REQ(&lim_redis, "\"\" '' x\n", "[][][x]|");
    CHECK_REQ(&lim_redis, "\"a\"\t'b'\v\"c\"\r\n", "[a][b][c]|");
    CHECK_REQ(&lim_redis, "a\vb \"c\"\n", "[a\vb][c]|");
    CHECK_REQ(&lim_redis, "set \"\"\"test-key\"\"\" test-value\r\nping\r\n", "E:unbalanced quotes in request");
    CHECK_REQ(&lim_redis, "\"foo\"bar\n", "E:unbalanced quotes in request");
    CHECK_REQ(&lim_redis, "'foo'bar\n", "E:unbalanced quotes in request");
    CHECK_REQ(&lim_redis, "\"foo\n", "E:unbalanced quotes in request");
    CHECK_REQ(&lim_redis, "'foo\n", "E:unbalanced quotes in request");
    CHECK_REQ(&lim_redis, "\"foo\\\"\n", "E:unbalanced quotes in request");
    CHECK_REQ(&lim_redis, "'foo\\'\n", "E:unbalanced quotes in request");
}

static void test_inline_too_big(void **state)
{
    struct resp_limits lim = {1024, 1024, 16};
    char got[256], req[64];
    size_t used;
    memset(req, 'a', sizeof req);
    assert_int_equal(read_once(req, 16, &lim, got, sizeof got, &used), ERR_AGAIN);
    assert_int_equal(read_once(req, 17, &lim, got, sizeof got, &used), ERR_PROTO);
    assert_string_equal(got, "E:too big inline request");
    memcpy(req + 16, "\r\n", 2);
    assert_int_equal(read_once(req, 17, &lim, got, sizeof got, &used), ERR_AGAIN);
    assert_int_equal(read_once(req, 18, &lim, got, sizeof got, &used), 1);
    assert_int_equal(used, 18);
    memcpy(req + 16, "a\n", 2);
    assert_int_equal(read_once(req, 18, &lim, got, sizeof got, &used), ERR_PROTO);
    assert_string_equal(got, "E:too big inline request");
}

/* ---- request reader: pipelines, slicing, moving buffers --------------- */

static const char pipeline[] = "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n"
                               "PING\r\n"
                               "*0\r\n"
                               "set \"a b\" 'c\\'d'\n"
                               "\r\n"
                               "*1\r\n$0\r\n\r\n"
                               "*-1\r\n"
                               "GET k\r\n"
                               "*2\r\n$4\r\nECHO\r\n$10\r\n0123\r\n6789\r\n"
                               "  \"\\x41\"  \n";
static const char pipeline_want[] = "[SET][k][hello]|[PING]||[set][a b][c'd]||[]||[GET][k]|[ECHO][0123\r\n6789]|[A]|";

static void test_pipeline_every_cut(void **state)
{
    size_t len = sizeof pipeline - 1;
    for (size_t i = 0; i <= len; i++) {
        char *s = feed_cuts(pipeline, len, &lim_redis, &i, 1, NULL);
        assert_string_equal(s, pipeline_want);
        xfree(s);
    }
    for (size_t i = 0; i <= len; i += 1) {
        for (size_t j = i; j <= len; j++) {
            size_t cuts[2] = {i, j};
            char *s = feed_cuts(pipeline, len, &lim_redis, cuts, 2, NULL);
            assert_string_equal(s, pipeline_want);
            xfree(s);
        }
    }
    char *s = feed_bytewise(pipeline, len, &lim_redis, NULL);
    assert_string_equal(s, pipeline_want);
    xfree(s);
}

/* A protocol error stops the pipeline at the same place however it is cut,
 * and a reader is usable again after one. */
static void test_pipeline_error_every_cut(void **state)
{
    const char req[] = "PING\r\n*1\r\n$1\r\nx\r\n*2\r\n$1\r\na\r\n?1\r\n";
    size_t len = sizeof req - 1;
    for (size_t i = 0; i <= len; i++) {
        char *s = feed_cuts(req, len, &lim_redis, &i, 1, NULL);
        assert_string_equal(s, "[PING]|[x]|E:expected '$', got '?'");
        xfree(s);
    }
    struct resp_req_reader r;
    int64_t argc;
    size_t used;
    resp_req_reader_init(&r, &lim_redis);
    assert_int_equal(resp_req_read(&r, "*1\r\n$-1\r\n", 9, &argc, &used), ERR_PROTO);
    assert_int_equal(resp_req_read(&r, "*1\r\n$1\r\nx\r\n", 11, &argc, &used), 1);
    assert_int_equal(argc, 1);
    resp_req_reader_release(&r);
}

static uint64_t rng_state;
static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* One random request into req, its rendering into want. */
static void random_request(struct buf *req, struct buf *want)
{
    int kind = (int)(rng() % 3), argc = 1 + (int)(rng() % 6);
    if (kind == 0) {
        buf_printf(req, "*%d\r\n", argc);
        for (int i = 0; i < argc; i++) {
            char a[300];
            size_t n = rng() % (rng() % 8 ? 12 : sizeof a);
            for (size_t j = 0; j < n; j++)
                a[j] = (char)rng();
            buf_printf(req, "$%zu\r\n", n);
            buf_append(req, a, n);
            buf_append(req, "\r\n", 2);
            buf_putc(want, '['), buf_append(want, a, n), buf_putc(want, ']');
        }
    } else {
        for (int i = 0; i < argc; i++) {
            size_t n = 1 + rng() % 10;
            for (int k = 1 + (int)(rng() % 2); k > 0; k--)
                buf_putc(req, rng() % 2 ? ' ' : '\t');
            buf_putc(want, '[');
            if (kind == 2)
                buf_putc(req, '"');
            for (size_t j = 0; j < n; j++) {
                char c = kind == 1 ? (char)('a' + rng() % 26) : (char)rng();
                if (kind == 2)
                    buf_printf(req, "\\x%02x", (unsigned char)c);
                else
                    buf_putc(req, c);
                buf_putc(want, c);
            }
            if (kind == 2)
                buf_putc(req, '"');
            buf_putc(want, ']');
        }
        buf_puts(req, rng() % 2 ? "\r\n" : "\n");
    }
    buf_putc(want, '|');
}

static void test_pipeline_random(void **state)
{
    const char *env = getenv("SEED");
    uint64_t seed = env ? strtoull(env, NULL, 10) : 0;
    if (!seed) {
        seed = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)&seed;
        seed = seed ? seed : 1;
    }
    printf("# test_pipeline_random SEED=%" PRIu64 "\n", seed);
    rng_state = seed;
    for (int round = 0; round < 200; round++) {
        struct buf req = BUF_INIT, want = BUF_INIT;
        int nreq = 1 + (int)(rng() % 20);
        for (int i = 0; i < nreq; i++)
            random_request(&req, &want);
        size_t cuts[64], ncuts = 0, at = 0;
        while (ncuts < 64 && at < req.len) {
            at += 1 + rng() % (rng() % 4 ? 8 : 200);
            cuts[ncuts++] = at < req.len ? at : req.len;
        }
        size_t n;
        char *s = feed_cuts(req.p, req.len, &lim_redis, cuts, ncuts, &n);
        assert_int_equal(n, want.len);
        assert_memory_equal(s, want.p, want.len);
        xfree(s);
        buf_release(&req);
        buf_release(&want);
    }
}

/* 100 MB in one argument, arriving in 4 KiB slices into a buffer that grows
 * by realloc (and so moves): each call is O(1) once the length is known. */
static void test_large_bulk_in_slices(void **state)
{
    size_t big = 100u * 1024 * 1024;
    char head[64];
    size_t hlen = (size_t)snprintf(head, sizeof head, "*2\r\n$3\r\nSET\r\n$%zu\r\n", big);
    size_t total = hlen + big + 2, len = 0, cap = 0, calls = 0, used = 0;
    char *in = NULL;
    struct resp_req_reader r;
    int64_t argc = 0;
    int rc = ERR_AGAIN;

    resp_req_reader_init(&r, &lim_redis);
    while (len < total && rc == ERR_AGAIN) {
        size_t n = total - len < 4096 ? total - len : 4096;
        if (len + n > cap) {
            cap = cap ? cap * 2 : 4096;
            in = realloc(in, cap);
        }
        for (size_t i = len; i < len + n; i++)
            in[i] = i < hlen ? head[i] : i >= hlen + big ? "\r\n"[i - hlen - big] : i % 61 ? 'v' : '\r';
        len += n;
        rc = resp_req_read(&r, in, len, &argc, &used);
        calls++;
    }
    assert_int_equal(rc, 1);
    assert_int_equal(argc, 2);
    assert_int_equal(used, total);
    assert_int_equal(r.args[1].off, hlen);
    assert_int_equal(r.args[1].len, big);
    assert_true(calls > 25000);
    resp_req_reader_release(&r);
    free(in);
}

/* A 1M-argument MSET fed one byte per call: linear, so this takes a moment;
 * a reader that rescanned from the request's start would never finish. */
static void test_million_args_bytewise(void **state)
{
    int64_t n = 1024 * 1024;
    struct buf src = BUF_INIT;
    buf_printf(&src, "*%" PRId64 "\r\n$4\r\nMSET\r\n", n);
    for (int64_t i = 1; i < n; i++)
        buf_append(&src, i % 2 ? "$1\r\nk\r\n" : "$2\r\nvv\r\n", i % 2 ? 7 : 8);
    struct resp_req_reader r;
    int64_t argc = 0;
    size_t used = 0, len;
    int rc = ERR_AGAIN;
    resp_req_reader_init(&r, &lim_redis);
    for (len = 1; len <= src.len && rc == ERR_AGAIN; len++)
        rc = resp_req_read(&r, src.p, len, &argc, &used);
    assert_int_equal(rc, 1);
    assert_int_equal(len - 1, src.len);
    assert_int_equal(argc, n);
    assert_int_equal(used, src.len);
    size_t an;
    assert_memory_equal(resp_req_arg(&r, src.p, 0, &an), "MSET", 4);
    assert_memory_equal(resp_req_arg(&r, src.p, n - 1, &an), "k", 1);
    assert_memory_equal(resp_req_arg(&r, src.p, n - 2, &an), "vv", 2);
    resp_req_reader_release(&r);
    buf_release(&src);
}

/* Fail the 1st, 2nd, ... allocation until the read succeeds; the reader must
 * stay usable after ERR_NOMEM and leak nothing. */
static void test_req_alloc_failures(void **state)
{
    struct buf req = BUF_INIT;
    buf_puts(&req, "*3000\r\n");
    for (int i = 0; i < 3000; i++)
        buf_puts(&req, "$2\r\nab\r\n");
    buf_puts(&req, "x \"a b\" y\r\n");
    int64_t base = alloc_used();
    for (long fail = 0;; fail++) {
        struct resp_req_reader r;
        int64_t argc;
        size_t used;
        resp_req_reader_init(&r, &lim_redis);
        alloc_fail_after(fail);
        int rc = resp_req_read(&r, req.p, req.len, &argc, &used);
        alloc_fail_after(-1);
        if (rc == ERR_NOMEM)
            rc = resp_req_read(&r, req.p, req.len, &argc, &used);
        assert_int_equal(rc, 1);
        assert_int_equal(argc, 3000);
        alloc_fail_after(fail);
        rc = resp_req_read(&r, req.p + used, req.len - used, &argc, &used);
        alloc_fail_after(-1);
        int failed = rc == ERR_NOMEM;
        if (failed)
            rc = resp_req_read(&r, req.p + req.len - 11, 11, &argc, &used);
        assert_int_equal(rc, 1);
        assert_int_equal(argc, 3);
        size_t n;
        assert_memory_equal(resp_req_arg(&r, req.p + req.len - 11, 1, &n), "a b", 3);
        resp_req_reader_release(&r);
        assert_int_equal(alloc_used(), base);
        if (!failed && fail > 10)
            break;
    }
    buf_release(&req);
}

/* ---- value reader ------------------------------------------------------- */

static void render_value(struct buf *o, const struct resp_value *v)
{
    size_t count = v->n * (v->type == RESP_MAP || v->type == RESP_ATTR ? 2 : 1);
    buf_putc(o, (char)v->type);
    switch (v->type) {
    case RESP_INT:
        buf_printf(o, "%" PRId64, v->i);
        return;
    case RESP_BOOL:
        buf_putc(o, v->i ? 't' : 'f');
        return;
    case RESP_DOUBLE:
        buf_printf(o, "%.17g", v->d);
        return;
    case RESP_NULL:
        return;
    case RESP_ARRAY:
    case RESP_SET:
    case RESP_PUSH:
    case RESP_MAP:
    case RESP_ATTR:
        if (v->is_null) {
            buf_puts(o, "nil");
            return;
        }
        buf_putc(o, '[');
        for (size_t i = 0; i < count; i++) {
            if (i)
                buf_putc(o, ',');
            render_value(o, &v->elems[i]);
        }
        buf_putc(o, ']');
        return;
    default:
        if (v->is_null) {
            buf_puts(o, "nil");
            return;
        }
        assert_non_null(v->str);
        assert_int_equal(v->str[v->len], '\0');
        buf_append(o, v->str, v->len);
    }
}

/* Reads one value from data; renders it, or "AGAIN"/"PROTO"/"NOMEM". */
static char *value_str(const char *data, size_t len, const struct resp_value_limits *lim, size_t *used)
{
    struct resp_value v;
    struct buf o = BUF_INIT;
    size_t u = 0;
    int rc = resp_value_read(data, len, lim, &v, &u);
    if (rc == 1) {
        render_value(&o, &v);
        resp_value_free(&v);
        assert_true(u > 0 && u <= len);
    } else {
        buf_puts(&o, rc == ERR_AGAIN ? "AGAIN" : rc == ERR_PROTO ? "PROTO" : "NOMEM");
    }
    if (used)
        *used = u;
    return buf_detach(&o, NULL);
}

/* Whole value: want; every strict prefix: AGAIN; trailing bytes: not used. */
static void check_value(const char *data, size_t len, const char *want)
{
    size_t used;
    char *s = value_str(data, len, NULL, &used);
    assert_string_equal(s, want);
    xfree(s);
    if (strcmp(want, "PROTO") == 0)
        return;
    assert_int_equal(used, len);
    for (size_t i = 0; i < len; i++) {
        s = value_str(data, i, NULL, NULL);
        assert_string_equal(s, "AGAIN");
        xfree(s);
    }
    char *more = malloc(len + 5);
    memcpy(more, data, len);
    memcpy(more + len, "+OK\r\n", 5);
    s = value_str(more, len + 5, NULL, &used);
    assert_string_equal(s, want);
    assert_int_equal(used, len);
    xfree(s);
    free(more);
}

#define CHECK_VALUE(data, want) check_value(data, sizeof(data) - 1, want)

static void test_value_scalars(void **state)
{
    CHECK_VALUE("+OK\r\n", "+OK");
    CHECK_VALUE("+\r\n", "+");
    CHECK_VALUE("-ERR wrong\r\n", "-ERR wrong");
    CHECK_VALUE(":0\r\n", ":0");
    CHECK_VALUE(":-9223372036854775808\r\n", ":-9223372036854775808");
    CHECK_VALUE("$5\r\nhe\r\nl\r\n", "$he\r\nl");
    CHECK_VALUE("$0\r\n\r\n", "$");
    CHECK_VALUE("$-1\r\n", "$nil");
    CHECK_VALUE("_\r\n", "_");
    CHECK_VALUE(",1.5\r\n", ",1.5");
    CHECK_VALUE(",-0.25e2\r\n", ",-25");
    CHECK_VALUE(",inf\r\n", ",inf");
    CHECK_VALUE(",-inf\r\n", ",-inf");
    CHECK_VALUE(",nan\r\n", ",nan");
    CHECK_VALUE(",10\r\n", ",10");
    CHECK_VALUE("#t\r\n", "#t");
    CHECK_VALUE("#f\r\n", "#f");
    CHECK_VALUE("!21\r\nSYNTAX invalid syntax\r\n", "!SYNTAX invalid syntax");
    CHECK_VALUE("=15\r\ntxt:Some string\r\n", "=txt:Some string");
    CHECK_VALUE("(3492890328409238509324850943850943825024385\r\n",
                "(3492890328409238509324850943850943825024385");
    CHECK_VALUE("(-1\r\n", "(-1");
}

static void test_value_aggregates(void **state)
{
    CHECK_VALUE("*0\r\n", "*[]");
    CHECK_VALUE("*-1\r\n", "*nil");
    CHECK_VALUE("*3\r\n:1\r\n$1\r\na\r\n*1\r\n_\r\n", "*[:1,$a,*[_]]");
    CHECK_VALUE("%2\r\n+first\r\n:1\r\n+second\r\n#f\r\n", "%[+first,:1,+second,#f]");
    CHECK_VALUE("~2\r\n+a\r\n+b\r\n", "~[+a,+b]");
    CHECK_VALUE(">3\r\n+message\r\n+chan\r\n$2\r\nhi\r\n", ">[+message,+chan,$hi]");
    CHECK_VALUE("%0\r\n", "%[]");
    /* an attribute on its own, and one skipped in front of an element */
    CHECK_VALUE("|1\r\n+key-popularity\r\n%1\r\n$1\r\na\r\n,0.1923\r\n", "|[+key-popularity,%[$a,,0.1923]]");
    CHECK_VALUE("*2\r\n|1\r\n+ttl\r\n:3600\r\n:1\r\n:2\r\n", "*[:1,:2]");
}

static void test_value_malformed(void **state)
{
    static const char *const bad[] = {
        "x\r\n", "\0\r\n", "+OK\rX", "+OK\r\r\n", ":\r\n", ":01\r\n", ":+1\r\n", ":1.5\r\n", ":abc\r\n",
        ":9223372036854775808\r\n", "$3\r\nfooXY", "$3\r\nfoo\n\n", "$-2\r\n", "$?\r\n", "$ 3\r\n", "$03\r\n",
        "*-2\r\n", "*?\r\n", "%-1\r\n", "~-1\r\n", ">-1\r\n", "|-1\r\n", "!-1\r\n", "=-1\r\n", "=3\r\ntxt\r\n",
        "=5\r\ntxt;a\r\n", "_x\r\n", ",\r\n", ",abc\r\n", ",1e\r\n", ", 1\r\n", ",0x10\r\n", ",infinity\r\n",
        ",--1\r\n", "#\r\n", "#x\r\n", "#tt\r\n", "(\r\n", "(-\r\n", "(12a\r\n", "(+1\r\n", ";3\r\nabc\r\n",
        ".\r\n", "*1\r\n:x\r\n", "%1\r\n+a\r\n:b\r\n"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        size_t n = strlen(bad[i]) + (bad[i][0] == '\0' ? 3 : 0);
        char *s = value_str(bad[i], n, NULL, NULL);
        if (strcmp(s, "PROTO") != 0)
            fail_msg("case %zu (%s) gave %s", i, bad[i], s);
        xfree(s);
    }
}

static void test_value_limits(void **state)
{
    struct resp_value_limits lim = {5, 3, 2};
    char *s;
#define LIM(data, want)                                    \
    s = value_str(data, sizeof(data) - 1, &lim, NULL);     \
    assert_string_equal(s, want);                          \
    xfree(s)
    LIM("$5\r\nabcde\r\n", "$abcde");
    LIM("$6\r\n", "PROTO");
    LIM("!6\r\n", "PROTO");
    LIM("+abcde\r\n", "+abcde");
    LIM("+abcdef\r\n", "PROTO");
    LIM("+abcdef", "PROTO");
    LIM("*3\r\n:1\r\n:2\r\n:3\r\n", "*[:1,:2,:3]");
    LIM("*4\r\n", "PROTO");
    LIM("%4\r\n", "PROTO");
    LIM("*1\r\n*1\r\n:1\r\n", "*[*[:1]]");
    LIM("*1\r\n*1\r\n*0\r\n", "PROTO");
    LIM("*1\r\n*1\r\n*-1\r\n", "PROTO");
#undef LIM

    /* the defaults: depth 64 */
    struct buf deep = BUF_INIT;
    for (int i = 0; i < 64; i++)
        buf_puts(&deep, "*1\r\n");
    buf_puts(&deep, ":1\r\n");
    s = value_str(deep.p, deep.len, NULL, NULL);
    assert_int_equal(s[0], '*');
    xfree(s);
    buf_reset(&deep);
    for (int i = 0; i < 65; i++)
        buf_puts(&deep, "*1\r\n");
    s = value_str(deep.p, deep.len, NULL, NULL);
    assert_string_equal(s, "PROTO");
    xfree(s);
    buf_release(&deep);
}

/* Nothing is allocated for an announced size until the bytes are there. */
static void test_value_no_alloc_when_incomplete(void **state)
{
    struct resp_value v;
    size_t used;
    int64_t base = alloc_used();
    alloc_fail_after(0);
    assert_int_equal(resp_value_read("*1000000\r\n:1\r\n", 14, NULL, &v, &used), ERR_AGAIN);
    assert_int_equal(resp_value_read("$536870912\r\nabc", 15, NULL, &v, &used), ERR_AGAIN);
    alloc_fail_after(-1);
    assert_int_equal(alloc_used(), base);
}

static void test_value_alloc_failures(void **state)
{
    const char data[] = "%2\r\n+a\r\n*3\r\n:1\r\n$3\r\nfoo\r\n~1\r\n(12\r\n$1\r\nb\r\n=5\r\ntxt:x\r\n";
    int64_t base = alloc_used();
    for (long fail = 0;; fail++) {
        struct resp_value v;
        size_t used;
        alloc_fail_after(fail);
        int rc = resp_value_read(data, sizeof data - 1, NULL, &v, &used);
        alloc_fail_after(-1);
        if (rc == ERR_NOMEM) {
            assert_int_equal(alloc_used(), base);
            continue;
        }
        assert_int_equal(rc, 1);
        struct buf o = BUF_INIT;
        render_value(&o, &v);
        assert_string_equal(o.p, "%[+a,*[:1,$foo,~[(12]],$b,=txt:x]");
        buf_release(&o);
        resp_value_free(&v);
        assert_int_equal(alloc_used(), base);
        assert_true(fail > 5);
        break;
    }
}

/* What the writer writes, the value reader reads back. */
static void test_value_roundtrip(void **state)
{
    for (int proto = 2; proto <= 3; proto++) {
        struct buf b = BUF_INIT, o = BUF_INIT;
        resp_w_push(&b, proto, 12);
        resp_w_map(&b, proto, 1);
        resp_w_simple(&b, "k");
        resp_w_set(&b, proto, 2);
        resp_w_int(&b, INT64_MIN);
        resp_w_bulk(&b, "a\0b", 3);
        resp_w_double(&b, proto, 0.1);
        resp_w_double(&b, proto, -INFINITY);
        resp_w_bool(&b, proto, 1);
        resp_w_null(&b, proto);
        resp_w_null_array(&b, proto);
        resp_w_verbatim(&b, proto, "txt", "hi\r\nyo", 6);
        resp_w_bignum(&b, proto, "-123456789012345678901234567890");
        resp_w_error(&b, "ERR bad\r\nthing");
        resp_w_errorf(&b, "WRONGTYPE %s %d", "x\n", 7);
        resp_w_bulk_i64(&b, 42);
        resp_w_array(&b, 0);

        struct resp_value v;
        size_t used;
        assert_int_equal(resp_value_read(b.p, b.len, NULL, &v, &used), 1);
        assert_int_equal(used, b.len);
        render_value(&o, &v);
        if (proto == 3)
            ASSERT_BYTES(o.p, o.len, ">[%[+k,~[:-9223372036854775808,$a\0b]],,0.10000000000000001,,-inf,#t,_,_,"
                                     "=txt:hi\r\nyo,(-123456789012345678901234567890,-ERR bad  thing,"
                                     "-WRONGTYPE x  7,$42,*[]]");
        else
            ASSERT_BYTES(o.p, o.len, "*[*[+k,*[:-9223372036854775808,$a\0b]],$0.1,$-inf,:1,$nil,*nil,"
                                     "$hi\r\nyo,$-123456789012345678901234567890,-ERR bad  thing,"
                                     "-WRONGTYPE x  7,$42,*[]]");
        resp_value_free(&v);
        buf_release(&b);
        buf_release(&o);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_multibulk_basic),
        cmocka_unit_test(test_multibulk_offsets_and_used),
        cmocka_unit_test(test_multibulk_redis_protocol_tcl),
        cmocka_unit_test(test_multibulk_strict_lengths),
        cmocka_unit_test(test_multibulk_expected_dollar),
        cmocka_unit_test(test_multibulk_redis_quirks),
        cmocka_unit_test(test_multibulk_limits),
        cmocka_unit_test(test_multibulk_no_alloc_for_claims),
        cmocka_unit_test(test_too_big_count_strings),
        cmocka_unit_test(test_desync_regression),
        cmocka_unit_test(test_inline_basic),
        cmocka_unit_test(test_inline_used_and_views),
        cmocka_unit_test(test_inline_quoting),
        cmocka_unit_test(test_inline_too_big),
        cmocka_unit_test(test_pipeline_every_cut),
        cmocka_unit_test(test_pipeline_error_every_cut),
        cmocka_unit_test(test_pipeline_random),
        cmocka_unit_test(test_large_bulk_in_slices),
        cmocka_unit_test(test_million_args_bytewise),
        cmocka_unit_test(test_req_alloc_failures),
        cmocka_unit_test(test_value_scalars),
        cmocka_unit_test(test_value_aggregates),
        cmocka_unit_test(test_value_malformed),
        cmocka_unit_test(test_value_limits),
        cmocka_unit_test(test_value_no_alloc_when_incomplete),
        cmocka_unit_test(test_value_alloc_failures),
        cmocka_unit_test(test_value_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
