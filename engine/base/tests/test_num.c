/* test_num.c: num.c's conversions against Redis's rules: canonical integers
 * only (no sign but '-', no spaces, no leading zeros), doubles as string2ld
 * takes them, the shortest formats, and redis.conf's memory units. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "base/num.h"

static int i64(const char *s, int64_t *out) { return num_parse_i64(s, strlen(s), out); }

static void ok_i64(const char *s, int64_t want)
{
    int64_t v = 12345;
    assert_int_equal(i64(s, &v), 0);
    assert_true(v == want);
}

static void bad_i64(const char *s)
{
    int64_t v = 12345;
    assert_int_equal(i64(s, &v), -1);
    assert_true(v == 12345); /* out-parameters are written only on success */
}

static void test_parse_i64(void **state)
{
    ok_i64("0", 0);
    ok_i64("1", 1);
    ok_i64("-1", -1);
    ok_i64("1234567890", 1234567890);
    ok_i64("9223372036854775807", INT64_MAX);
    ok_i64("-9223372036854775808", INT64_MIN);
    bad_i64("9223372036854775808");
    bad_i64("-9223372036854775809");
    bad_i64("18446744073709551615");
    bad_i64("18446744073709551616");
    bad_i64("99999999999999999999");
    bad_i64("123456789012345678901");
    bad_i64("");
    bad_i64("-");
    bad_i64("-0");
    bad_i64("+1");
    bad_i64("01");
    bad_i64("00");
    bad_i64("-01");
    bad_i64(" 1");
    bad_i64("1 ");
    bad_i64("1a");
    bad_i64("0x10");
    bad_i64("1.0");
    bad_i64("--1");

    /* The length is the caller's: no NUL needed, an inner NUL is refused. */
    int64_t v = 0;
    assert_int_equal(num_parse_i64("1234", 2, &v), 0);
    assert_int_equal(v, 12);
    assert_int_equal(num_parse_i64("1\0" "2", 3, &v), -1);
    assert_int_equal(num_parse_i64("12", 0, &v), -1);
}

static void test_parse_u64(void **state)
{
    uint64_t v = 7;
    assert_int_equal(num_parse_u64("18446744073709551615", 20, &v), 0);
    assert_true(v == UINT64_MAX);
    assert_int_equal(num_parse_u64("0", 1, &v), 0);
    assert_true(v == 0);
    v = 7;
    assert_int_equal(num_parse_u64("18446744073709551616", 20, &v), -1);
    assert_int_equal(num_parse_u64("99999999999999999999", 20, &v), -1);
    assert_int_equal(num_parse_u64("-1", 2, &v), -1);
    assert_int_equal(num_parse_u64("+1", 2, &v), -1);
    assert_int_equal(num_parse_u64("00", 2, &v), -1);
    assert_int_equal(num_parse_u64("", 0, &v), -1);
    assert_true(v == 7);
}

static int dbl(const char *s, long double *out) { return num_parse_double(s, strlen(s), out); }

static void test_parse_double(void **state)
{
    long double v;
    assert_int_equal(dbl("1.5", &v), 0);
    assert_true(v == 1.5L);
    assert_int_equal(dbl("-0.25", &v), 0);
    assert_true(v == -0.25L);
    assert_int_equal(dbl("10", &v), 0);
    assert_true(v == 10);
    assert_int_equal(dbl("1e10", &v), 0);
    assert_true(v == 1e10L);
    assert_int_equal(dbl("+1.5", &v), 0); /* strtold's syntax, as Redis */
    assert_true(v == 1.5L);
    assert_int_equal(dbl("0x10", &v), 0);
    assert_true(v == 16);
    assert_int_equal(dbl("inf", &v), 0);
    assert_true(isinf(v) && v > 0);
    assert_int_equal(dbl("-inf", &v), 0);
    assert_true(isinf(v) && v < 0);
    assert_int_equal(dbl("-Infinity", &v), 0);
    assert_true(isinf(v) && v < 0);
    assert_int_equal(dbl("0", &v), 0);
    assert_true(v == 0);
    assert_int_equal(dbl("1e-4940", &v), 0); /* subnormal, but not zero: kept */
    assert_true(v > 0);

    v = 42;
    assert_int_equal(dbl("nan", &v), -1);
    assert_int_equal(dbl("-nan", &v), -1);
    assert_int_equal(dbl("NaN", &v), -1);
    assert_int_equal(dbl("", &v), -1);
    assert_int_equal(dbl(" 1", &v), -1);
    assert_int_equal(dbl("1 ", &v), -1);
    assert_int_equal(dbl("\t1", &v), -1);
    assert_int_equal(dbl("1.5x", &v), -1);
    assert_int_equal(dbl("abc", &v), -1);
    assert_int_equal(dbl("1e5000", &v), -1);  /* overflows to inf: refused, as Redis */
    assert_int_equal(dbl("-1e5000", &v), -1);
    assert_int_equal(dbl("1e-5000", &v), -1); /* underflows to 0: refused, as Redis */
    assert_int_equal(num_parse_double("1\0" "5", 3, &v), -1);
    assert_true(v == 42);

    char big[600];
    memset(big, '1', sizeof big);
    assert_int_equal(num_parse_double(big, sizeof big, &v), -1);
    assert_int_equal(num_parse_double(big, 500, &v), 0);
}

static void check_fmt_i64(int64_t v, const char *want)
{
    char buf[32];
    memset(buf, 'x', sizeof buf);
    assert_int_equal(num_fmt_i64(buf, v), strlen(want));
    assert_string_equal(buf, want);
}

static void test_fmt_i64(void **state)
{
    check_fmt_i64(0, "0");
    check_fmt_i64(7, "7");
    check_fmt_i64(-1, "-1");
    check_fmt_i64(1000, "1000");
    check_fmt_i64(INT64_MAX, "9223372036854775807");
    check_fmt_i64(INT64_MIN, "-9223372036854775808");
}

static void check_fmt_ld(long double v, const char *want)
{
    char buf[128];
    assert_int_equal(num_fmt_ldouble(buf, sizeof buf, v), (int)strlen(want));
    assert_string_equal(buf, want);
}

static void test_fmt_ldouble(void **state)
{
    check_fmt_ld(3.0L, "3");
    check_fmt_ld(1.5L, "1.5");
    check_fmt_ld(-1.5L, "-1.5");
    check_fmt_ld(0.1L, "0.1");
    check_fmt_ld(10.5L, "10.5");
    check_fmt_ld(0.0L, "0");
    check_fmt_ld(-0.0L, "0");
    check_fmt_ld(5.0e3L, "5000");
    check_fmt_ld(1e20L, "100000000000000000000");
    char buf[8];
    assert_int_equal(num_fmt_ldouble(buf, sizeof buf, INFINITY), -1);
    assert_int_equal(num_fmt_ldouble(buf, sizeof buf, NAN), -1);
    assert_int_equal(num_fmt_ldouble(buf, sizeof buf, 123456.5L), -1); /* does not fit */
}

static void check_fmt_d(double v, const char *want)
{
    char buf[64];
    assert_int_equal(num_fmt_double(buf, sizeof buf, v), strlen(want));
    assert_string_equal(buf, want);
}

static void test_fmt_double(void **state)
{
    check_fmt_d(1.5, "1.5");
    check_fmt_d(0.1, "0.1");
    check_fmt_d(-2, "-2");
    check_fmt_d(0, "0");
    check_fmt_d(-0.0, "-0");
    check_fmt_d(123456789, "123456789");
    check_fmt_d(1e20, "1e+20");
    check_fmt_d(1.0 / 3, "0.3333333333333333");
    check_fmt_d(0.1 + 0.2, "0.30000000000000004");
    check_fmt_d(INFINITY, "inf");
    check_fmt_d(-INFINITY, "-inf");
}

static void ok_mem(const char *s, int64_t want)
{
    int64_t v = 12345;
    assert_int_equal(num_parse_memory(s, &v), 0);
    assert_true(v == want);
}

static void bad_mem(const char *s)
{
    int64_t v = 12345;
    assert_int_equal(num_parse_memory(s, &v), -1);
    assert_true(v == 12345);
}

static void test_memory(void **state)
{
    ok_mem("0", 0);
    ok_mem("100", 100);
    ok_mem("10b", 10);
    ok_mem("1k", 1000);
    ok_mem("1K", 1000);
    ok_mem("1kb", 1024);
    ok_mem("1KB", 1024);
    ok_mem("1Kb", 1024);
    ok_mem("2m", 2000000);
    ok_mem("2mb", 2 * 1024 * 1024);
    ok_mem("3g", 3000000000LL);
    ok_mem("3gb", 3LL << 30);
    ok_mem("-1", -1); /* signed; the option's range decides */
    ok_mem("-1kb", -1024);
    ok_mem("8589934591gb", 8589934591LL << 30);
    ok_mem("9223372036854775807", INT64_MAX);
    bad_mem("8589934592gb"); /* 2^63: overflows */
    bad_mem("9223372036854775808");
    bad_mem("");
    bad_mem("k");
    bad_mem("kb");
    bad_mem("-");
    bad_mem("1tb");
    bad_mem("1 kb");
    bad_mem("1.5gb");
    bad_mem(" 1");
    bad_mem("1-");
    bad_mem("01"); /* stricter than Redis's strtoull: no leading zeros */
    bad_mem("-0");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_i64),   cmocka_unit_test(test_parse_u64), cmocka_unit_test(test_parse_double),
        cmocka_unit_test(test_fmt_i64),     cmocka_unit_test(test_fmt_ldouble), cmocka_unit_test(test_fmt_double),
        cmocka_unit_test(test_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
