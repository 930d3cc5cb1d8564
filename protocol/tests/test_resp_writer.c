/* test_resp_writer.c: the reply writer of resp.h, byte for byte, in RESP2 and
 * RESP3, against what Redis 7 sends for the same reply. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "resp.h"

/* The buffer holds exactly the literal (NULs included) and keeps buf.h's
 * trailing NUL; then it is emptied for the next check. */
#define EXPECT(b, want)                                                                             \
    do {                                                                                            \
        if ((b)->len != sizeof(want) - 1 || memcmp((b)->p, want, (b)->len) != 0)                    \
            fail_msg("got \"%s\" (%zu bytes), want \"%s\"", (b)->p ? (b)->p : "", (b)->len, want); \
        assert_int_equal((b)->p[(b)->len], '\0');                                                   \
        buf_reset(b);                                                                               \
    } while (0)

static void test_simple_and_error(void **state)
{
    struct buf b = BUF_INIT;
    resp_w_simple(&b, "OK");
    EXPECT(&b, "+OK\r\n");
    resp_w_simple(&b, "");
    EXPECT(&b, "+\r\n");
    resp_w_simplen(&b, "QUEUEDxx", 6);
    EXPECT(&b, "+QUEUED\r\n");
    /* a CR or LF would end the line early: Redis turns them into spaces */
    resp_w_simple(&b, "a\r\nb");
    EXPECT(&b, "+a  b\r\n");
    resp_w_error(&b, "ERR unknown command 'x\r\ny'");
    EXPECT(&b, "-ERR unknown command 'x  y'\r\n");
    resp_w_error(&b, "WRONGTYPE Operation against a key holding the wrong kind of value");
    EXPECT(&b, "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
    resp_w_errorf(&b, "ERR Protocol error: %s", "invalid bulk length");
    EXPECT(&b, "-ERR Protocol error: invalid bulk length\r\n");
    resp_w_errorf(&b, "ERR %s %d\n", "line\r\nbreak", 42);
    EXPECT(&b, "-ERR line  break 42 \r\n");
    /* longer than any stack buffer a formatter might use */
    char big[3000];
    memset(big, 'e', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    resp_w_errorf(&b, "ERR %s", big);
    assert_int_equal(b.len, 1 + 4 + sizeof big - 1 + 2);
    assert_memory_equal(b.p + b.len - 3, "e\r\n", 3);
    buf_release(&b);
}

static void test_int(void **state)
{
    struct buf b = BUF_INIT;
    resp_w_int(&b, 0);
    EXPECT(&b, ":0\r\n");
    resp_w_int(&b, 7);
    EXPECT(&b, ":7\r\n");
    resp_w_int(&b, -1);
    EXPECT(&b, ":-1\r\n");
    resp_w_int(&b, INT64_MAX);
    EXPECT(&b, ":9223372036854775807\r\n");
    resp_w_int(&b, INT64_MIN);
    EXPECT(&b, ":-9223372036854775808\r\n");
    buf_release(&b);
}

static void test_bulk(void **state)
{
    struct buf b = BUF_INIT;
    resp_w_bulk(&b, "hello", 5);
    EXPECT(&b, "$5\r\nhello\r\n");
    resp_w_bulk(&b, "", 0);
    EXPECT(&b, "$0\r\n\r\n");
    resp_w_bulk(&b, "a\0\r\nb", 5);
    EXPECT(&b, "$5\r\na\0\r\nb\r\n");
    resp_w_bulkstr(&b, "value");
    EXPECT(&b, "$5\r\nvalue\r\n");
    resp_w_bulk_i64(&b, -42);
    EXPECT(&b, "$3\r\n-42\r\n");
    resp_w_bulk_i64(&b, INT64_MIN);
    EXPECT(&b, "$20\r\n-9223372036854775808\r\n");

    /* several replies append; a big one grows the buffer once */
    size_t n = 3 * 1024 * 1024;
    char *big = malloc(n);
    memset(big, 'x', n);
    resp_w_int(&b, 1);
    resp_w_bulk(&b, big, n);
    assert_int_equal(b.len, 4 + 10 + n + 2);
    assert_memory_equal(b.p, ":1\r\n$3145728\r\nxxx", 17);
    assert_memory_equal(b.p + b.len - 3, "x\r\n", 3);
    assert_int_equal(b.p[b.len], '\0');
    free(big);
    buf_release(&b);
}

static void test_nulls_and_aggregates(void **state)
{
    struct buf b = BUF_INIT;
    resp_w_null(&b, 2);
    EXPECT(&b, "$-1\r\n");
    resp_w_null(&b, 3);
    EXPECT(&b, "_\r\n");
    resp_w_null_array(&b, 2);
    EXPECT(&b, "*-1\r\n");
    resp_w_null_array(&b, 3);
    EXPECT(&b, "_\r\n");
    resp_w_array(&b, 0);
    EXPECT(&b, "*0\r\n");
    resp_w_array(&b, 1000000);
    EXPECT(&b, "*1000000\r\n");
    resp_w_map(&b, 3, 2);
    EXPECT(&b, "%2\r\n");
    resp_w_map(&b, 2, 2);
    EXPECT(&b, "*4\r\n");
    resp_w_set(&b, 3, 3);
    EXPECT(&b, "~3\r\n");
    resp_w_set(&b, 2, 3);
    EXPECT(&b, "*3\r\n");
    resp_w_push(&b, 3, 3);
    EXPECT(&b, ">3\r\n");
    resp_w_push(&b, 2, 3);
    EXPECT(&b, "*3\r\n");
    buf_release(&b);
}

/* Redis 7's addReplyDouble(): RESP3 ",<d>", RESP2 a bulk string of the same
 * text, shortest round-trip form, inf/-inf/nan spelled out. */
static void test_double(void **state)
{
    struct buf b = BUF_INIT;
    resp_w_double(&b, 3, 1.5);
    EXPECT(&b, ",1.5\r\n");
    resp_w_double(&b, 2, 1.5);
    EXPECT(&b, "$3\r\n1.5\r\n");
    resp_w_double(&b, 3, 0.1);
    EXPECT(&b, ",0.1\r\n");
    resp_w_double(&b, 3, 3.0);
    EXPECT(&b, ",3\r\n");
    resp_w_double(&b, 3, 0.0);
    EXPECT(&b, ",0\r\n");
    resp_w_double(&b, 3, -0.0);
    EXPECT(&b, ",-0\r\n");
    resp_w_double(&b, 3, INFINITY);
    EXPECT(&b, ",inf\r\n");
    resp_w_double(&b, 3, -INFINITY);
    EXPECT(&b, ",-inf\r\n");
    resp_w_double(&b, 2, INFINITY);
    EXPECT(&b, "$3\r\ninf\r\n");
    resp_w_double(&b, 2, -INFINITY);
    EXPECT(&b, "$4\r\n-inf\r\n");
    resp_w_double(&b, 3, NAN);
    EXPECT(&b, ",nan\r\n");
    resp_w_double(&b, 2, -NAN);
    EXPECT(&b, "$3\r\nnan\r\n");
    resp_w_double(&b, 3, 1e300);
    EXPECT(&b, ",1e+300\r\n");
    resp_w_double(&b, 3, -123.456);
    EXPECT(&b, ",-123.456\r\n");
    resp_w_double(&b, 3, DBL_MIN);
    EXPECT(&b, ",2.2250738585072014e-308\r\n");
    resp_w_double(&b, 2, 1.0 / 3);
    EXPECT(&b, "$18\r\n0.3333333333333333\r\n");
    buf_release(&b);
}

static void test_bool_verbatim_bignum(void **state)
{
    struct buf b = BUF_INIT;
    resp_w_bool(&b, 3, 1);
    EXPECT(&b, "#t\r\n");
    resp_w_bool(&b, 3, 0);
    EXPECT(&b, "#f\r\n");
    resp_w_bool(&b, 2, 5);
    EXPECT(&b, ":1\r\n");
    resp_w_bool(&b, 2, 0);
    EXPECT(&b, ":0\r\n");
    resp_w_verbatim(&b, 3, "txt", "Some string", 11);
    EXPECT(&b, "=15\r\ntxt:Some string\r\n");
    resp_w_verbatim(&b, 3, "mkd", "", 0);
    EXPECT(&b, "=4\r\nmkd:\r\n");
    resp_w_verbatim(&b, 2, "txt", "a\r\nb", 4);
    EXPECT(&b, "$4\r\na\r\nb\r\n");
    resp_w_bignum(&b, 3, "3492890328409238509324850943850943825024385");
    EXPECT(&b, "(3492890328409238509324850943850943825024385\r\n");
    resp_w_bignum(&b, 2, "-12345678901234567890");
    EXPECT(&b, "$21\r\n-12345678901234567890\r\n");
    buf_release(&b);
}

/* A HELLO-like reply, the way a handler composes one. */
static void test_composed_reply(void **state)
{
    struct buf b = BUF_INIT;
    for (int proto = 2; proto <= 3; proto++) {
        resp_w_map(&b, proto, 3);
        resp_w_bulkstr(&b, "server");
        resp_w_bulkstr(&b, "obentchi");
        resp_w_bulkstr(&b, "proto");
        resp_w_int(&b, proto);
        resp_w_bulkstr(&b, "modules");
        resp_w_array(&b, 0);
        if (proto == 2)
            EXPECT(&b, "*6\r\n$6\r\nserver\r\n$8\r\nobentchi\r\n$5\r\nproto\r\n:2\r\n$7\r\nmodules\r\n*0\r\n");
        else
            EXPECT(&b, "%3\r\n$6\r\nserver\r\n$8\r\nobentchi\r\n$5\r\nproto\r\n:3\r\n$7\r\nmodules\r\n*0\r\n");
    }
    buf_release(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple_and_error),
        cmocka_unit_test(test_int),
        cmocka_unit_test(test_bulk),
        cmocka_unit_test(test_nulls_and_aggregates),
        cmocka_unit_test(test_double),
        cmocka_unit_test(test_bool_verbatim_bignum),
        cmocka_unit_test(test_composed_reply),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
