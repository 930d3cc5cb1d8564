/* test_cron.c: cron.c's parser and due times: month ends, leap days, the
 * day-of-month/day-of-week rule, DST changes both ways in both hemispheres
 * (fixed-time and wildcard jobs), instants past the zone's last transition
 * (POSIX footer), "every N s", and what a scheduler that slept fires. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "cron.h"

static int64_t utc(int y, int mo, int d, int h, int mi)
{
    struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi};
    return (int64_t)timegm(&tm);
}

static struct cron_spec spec(const char *text)
{
    struct cron_spec s;
    char err[200];
    int rc = cron_parse(text, &s, err, sizeof err);
    if (rc < 0)
        fail_msg("parse '%s': %s", text, err);
    return s;
}

static struct cron_tz *zone(const char *name)
{
    char err[200];
    struct cron_tz *tz = cron_tz_load(name, err, sizeof err);
    if (!tz)
        fail_msg("zone %s: %s", name, err);
    return tz;
}

static void expect_next(const char *expr, const struct cron_tz *tz, int64_t after, int64_t want)
{
    struct cron_spec s = spec(expr);
    int64_t got = cron_next(&s, tz, after);
    if (got != want) {
        char a[32], b[32];
        time_t g = (time_t)got, w = (time_t)want;
        strftime(a, sizeof a, "%F %T", gmtime(&g));
        strftime(b, sizeof b, "%F %T", gmtime(&w));
        fail_msg("'%s' after %lld: got %s UTC, want %s UTC", expr, (long long)after, a, b);
    }
}

static void test_parse_errors(void **state)
{
    (void)state;
    const char *bad[] = {"61 * * * *", "* * *", "* * * * * *", "*/0 * * * *", "5-1 * * * *", "a * * * *",
                         "0 24 * * *", "0 0 0 * *", "0 0 32 * *", "0 0 * 13 *", "0 0 * * 8", "@sometimes",
                         "every 0 s", "every x", "*/61 * * * *", "0 */24 * * *", "every 5 parsecs", "1,,2 * * * *", "", "every -5 s"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct cron_spec s;
        char err[200] = "";
        if (cron_parse(bad[i], &s, err, sizeof err) == 0)
            fail_msg("'%s' parsed", bad[i]);
        assert_true(err[0] != '\0');
    }
    char err[200];
    struct cron_spec s;
    assert_int_equal(cron_parse("61 * * * *", &s, err, sizeof err), -1);
    assert_non_null(strstr(err, "minute"));
}

static void test_parse_fields(void **state)
{
    (void)state;
    struct cron_spec s = spec("*/15 1-3,22 1,15 jan-mar mon-fri");
    assert_int_equal(s.minutes, (1ULL << 0) | (1ULL << 15) | (1ULL << 30) | (1ULL << 45));
    assert_int_equal(s.hours, (1u << 1) | (1u << 2) | (1u << 3) | (1u << 22));
    assert_int_equal(s.mdays, (1u << 1) | (1u << 15));
    assert_int_equal(s.months, (1u << 1) | (1u << 2) | (1u << 3));
    assert_int_equal(s.wdays, 0x3e);
    assert_false(s.fixed);
    s = spec("0 0 * * 7");
    assert_int_equal(s.wdays, 1); /* 7 is Sunday */
    s = spec("5/20 2 * * *");
    assert_int_equal(s.minutes, (1ULL << 5) | (1ULL << 25) | (1ULL << 45));
    assert_true(s.fixed);
    s = spec("every 10 s");
    assert_int_equal(s.every_s, 10);
    s = spec("every 2m");
    assert_int_equal(s.every_s, 120);
    s = spec("@daily");
    assert_int_equal(s.minutes, 1);
    assert_int_equal(s.hours, 1);
}

static void test_month_ends(void **state)
{
    (void)state;
    /* the 31st skips months without one */
    expect_next("0 0 31 * *", NULL, utc(2024, 4, 1, 0, 0), utc(2024, 5, 31, 0, 0));
    expect_next("0 0 31 * *", NULL, utc(2024, 5, 31, 0, 0), utc(2024, 7, 31, 0, 0));
    /* year end */
    expect_next("59 23 31 12 *", NULL, utc(2024, 6, 1, 0, 0), utc(2024, 12, 31, 23, 59));
    expect_next("0 0 1 * *", NULL, utc(2024, 12, 31, 23, 59), utc(2025, 1, 1, 0, 0));
    /* the 30th of February never comes */
    struct cron_spec s = spec("0 0 30 2 *");
    assert_int_equal(cron_next(&s, NULL, utc(2024, 1, 1, 0, 0)), -1);
}

static void test_leap_days(void **state)
{
    (void)state;
    expect_next("0 12 29 2 *", NULL, utc(2023, 3, 1, 0, 0), utc(2024, 2, 29, 12, 0));
    expect_next("0 12 29 2 *", NULL, utc(2024, 2, 29, 12, 0), utc(2028, 2, 29, 12, 0));
    /* 2100 is not a leap year */
    expect_next("0 0 29 2 *", NULL, utc(2097, 1, 1, 0, 0), utc(2104, 2, 29, 0, 0));
    expect_next("0 0 * * *", NULL, utc(2024, 2, 28, 0, 0), utc(2024, 2, 29, 0, 0));
    expect_next("0 0 * * *", NULL, utc(2023, 2, 28, 0, 0), utc(2023, 3, 1, 0, 0));
}

static void test_day_rule(void **state)
{
    (void)state;
    /* both restricted: the 13th or a Friday (2024-09-06 is a Friday) */
    expect_next("0 0 13 * 5", NULL, utc(2024, 9, 1, 0, 0), utc(2024, 9, 6, 0, 0));
    expect_next("0 0 13 * 5", NULL, utc(2024, 9, 6, 0, 0), utc(2024, 9, 13, 0, 0));
    /* one restricted: only it counts */
    expect_next("0 0 * * 1", NULL, utc(2024, 9, 1, 0, 0), utc(2024, 9, 2, 0, 0));
    expect_next("0 0 13 * *", NULL, utc(2024, 9, 1, 0, 0), utc(2024, 9, 13, 0, 0));
}

static void test_every(void **state)
{
    (void)state;
    struct cron_spec s = spec("every 10 s");
    assert_int_equal(cron_next(&s, NULL, 105), 110);
    assert_int_equal(cron_next(&s, NULL, 110), 120);
    assert_int_equal(cron_latest(&s, NULL, 100, 159), 150);
    assert_int_equal(cron_latest(&s, NULL, 150, 159), -1);
    expect_next("* * * * *", NULL, utc(2024, 1, 1, 0, 0) + 1, utc(2024, 1, 1, 0, 1));
}

static void test_latest(void **state)
{
    (void)state;
    struct cron_spec s = spec("*/5 * * * *");
    /* slept from 10:00 to 13:07: fires 13:05 once */
    assert_int_equal(cron_latest(&s, NULL, utc(2024, 5, 1, 10, 0), utc(2024, 5, 1, 13, 7)),
                     utc(2024, 5, 1, 13, 5));
    s = spec("0 3 1 * *");
    assert_int_equal(cron_latest(&s, NULL, utc(2024, 1, 1, 3, 0), utc(2024, 4, 2, 0, 0)), utc(2024, 4, 1, 3, 0));
    assert_int_equal(cron_latest(&s, NULL, utc(2024, 4, 1, 3, 0), utc(2024, 4, 2, 0, 0)), -1);
}

/* Europe/Berlin 2024: 03-31 02:00 CET -> 03:00 CEST (01:00 UTC);
 * 10-27 03:00 CEST -> 02:00 CET (01:00 UTC). */
static void test_dst_europe(void **state)
{
    (void)state;
    struct cron_tz *tz = zone("Europe/Berlin");
    assert_int_equal(cron_tz_offset(tz, utc(2024, 1, 15, 12, 0)), 3600);
    assert_int_equal(cron_tz_offset(tz, utc(2024, 7, 15, 12, 0)), 7200);
    /* ordinary day */
    expect_next("0 9 * * *", tz, utc(2024, 7, 1, 0, 0), utc(2024, 7, 1, 7, 0));
    /* fixed time in the skipped hour: at the change, once */
    expect_next("30 2 * * *", tz, utc(2024, 3, 30, 3, 0), utc(2024, 3, 31, 1, 0));
    expect_next("30 2 * * *", tz, utc(2024, 3, 31, 1, 0), utc(2024, 4, 1, 0, 30));
    /* fixed time in the repeated hour: the first pass only */
    expect_next("30 2 * * *", tz, utc(2024, 10, 26, 12, 0), utc(2024, 10, 27, 0, 30));
    expect_next("30 2 * * *", tz, utc(2024, 10, 27, 0, 30), utc(2024, 10, 28, 1, 30));
    /* wildcard job: follows the clock, both passes of 02:xx */
    expect_next("*/30 * * * *", tz, utc(2024, 10, 27, 0, 30), utc(2024, 10, 27, 1, 0));
    expect_next("*/30 * * * *", tz, utc(2024, 10, 27, 1, 0), utc(2024, 10, 27, 1, 30));
    expect_next("*/30 * * * *", tz, utc(2024, 10, 27, 1, 30), utc(2024, 10, 27, 2, 0));
    /* wildcard job in spring: 01:30 CET, then 03:00 CEST */
    expect_next("*/30 * * * *", tz, utc(2024, 3, 31, 0, 30), utc(2024, 3, 31, 1, 0));
    /* hourly across the spring change: 01:00 CET (00:00 UTC), 03:00 CEST (01:00 UTC) */
    expect_next("0 * * * *", tz, utc(2024, 3, 30, 23, 30), utc(2024, 3, 31, 0, 0));
    expect_next("0 * * * *", tz, utc(2024, 3, 31, 0, 0), utc(2024, 3, 31, 1, 0));
    /* past the file's transitions: the POSIX rule (2090-07-01 is summer) */
    expect_next("0 12 1 7 *", tz, utc(2090, 1, 1, 0, 0), utc(2090, 7, 1, 10, 0));
    expect_next("0 12 1 12 *", tz, utc(2090, 1, 1, 0, 0), utc(2090, 12, 1, 11, 0));
    cron_tz_free(tz);
}

static void test_dst_other_zones(void **state)
{
    (void)state;
    struct cron_tz *ny = zone("America/New_York");
    /* 2024-03-10 02:00 EST -> 03:00 EDT (07:00 UTC) */
    expect_next("30 2 * * *", ny, utc(2024, 3, 9, 12, 0), utc(2024, 3, 10, 7, 0));
    expect_next("0 12 * * *", ny, utc(2050, 7, 1, 0, 0), utc(2050, 7, 1, 16, 0));
    expect_next("0 12 * * *", ny, utc(2050, 1, 10, 0, 0), utc(2050, 1, 10, 17, 0));
    cron_tz_free(ny);
    struct cron_tz *syd = zone("Australia/Sydney");
    /* southern summer: AEDT +11 in January, AEST +10 in July */
    expect_next("0 12 15 1 *", syd, utc(2040, 1, 1, 0, 0), utc(2040, 1, 15, 1, 0));
    expect_next("0 12 15 7 *", syd, utc(2040, 1, 1, 0, 0), utc(2040, 7, 15, 2, 0));
    /* 2024-04-07 03:00 AEDT -> 02:00 AEST (16:00 UTC on the 6th): 02:30 once, the first pass */
    expect_next("30 2 * * *", syd, utc(2024, 4, 6, 0, 0), utc(2024, 4, 6, 15, 30));
    expect_next("30 2 * * *", syd, utc(2024, 4, 6, 15, 30), utc(2024, 4, 7, 16, 30));
    cron_tz_free(syd);
    /* fixed offset, no DST */
    struct cron_tz *kol = zone("Asia/Kolkata");
    expect_next("0 0 * * *", kol, utc(2024, 1, 1, 0, 0), utc(2024, 1, 1, 18, 30));
    cron_tz_free(kol);
}

static void test_zone_errors(void **state)
{
    (void)state;
    const char *bad[] = {"Nowhere/City", "../etc/passwd", "/etc/passwd", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char err[200] = "";
        struct cron_tz *tz = cron_tz_load(bad[i], err, sizeof err);
        if (tz)
            fail_msg("zone '%s' loaded", bad[i]);
        assert_non_null(strstr(err, "time zone"));
    }
    char err[200];
    struct cron_tz *u = cron_tz_load("UTC", err, sizeof err);
    assert_non_null(u);
    assert_int_equal(cron_tz_offset(u, 1700000000), 0);
    cron_tz_free(u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_errors), cmocka_unit_test(test_parse_fields),
        cmocka_unit_test(test_month_ends),   cmocka_unit_test(test_leap_days),
        cmocka_unit_test(test_day_rule),     cmocka_unit_test(test_every),
        cmocka_unit_test(test_latest),       cmocka_unit_test(test_dst_europe),
        cmocka_unit_test(test_dst_other_zones), cmocka_unit_test(test_zone_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
