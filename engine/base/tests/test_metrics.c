/* test_metrics.c: Prometheus text helpers and histograms (base/metrics.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "base/metrics.h"

static void test_family_and_samples(void **state)
{
    (void)state;
    struct buf b = BUF_INIT;
    metrics_family(&b, "obentchi_x_total", "counter", "Things\nand \\ more.");
    metrics_sample_int(&b, "obentchi_x_total", NULL, 42);
    metrics_sample_int(&b, "obentchi_x_total", (const char *const[]){"method", "GET", "path", "a\"b\\c\nd", NULL}, 7);
    metrics_sample(&b, "obentchi_y", NULL, 0.5);
    metrics_sample(&b, "obentchi_y", NULL, 3.0);
    assert_string_equal(b.p, "# HELP obentchi_x_total Things\\nand \\\\ more.\n"
                             "# TYPE obentchi_x_total counter\n"
                             "obentchi_x_total 42\n"
                             "obentchi_x_total{method=\"GET\",path=\"a\\\"b\\\\c\\nd\"} 7\n"
                             "obentchi_y 0.5\n"
                             "obentchi_y 3\n");
    buf_release(&b);
}

static void test_histogram(void **state)
{
    (void)state;
    struct metrics_hist h;
    const double bounds[] = {0.1, 1, 10};
    metrics_hist_init(&h, bounds, 3);
    metrics_hist_observe(&h, 0.05);
    metrics_hist_observe(&h, 0.1); /* le is inclusive */
    metrics_hist_observe(&h, 5);
    metrics_hist_observe_atomic(&h, 100);
    assert_int_equal(h.count, 4);
    assert_int_equal(h.counts[0], 2);
    assert_int_equal(h.counts[1], 0);
    assert_int_equal(h.counts[2], 1);
    assert_int_equal(h.counts[3], 1);
    struct buf b = BUF_INIT;
    metrics_hist_write(&b, "lat_seconds", (const char *const[]){"cmd", "get", NULL}, &h);
    assert_string_equal(b.p, "lat_seconds_bucket{cmd=\"get\",le=\"0.1\"} 2\n"
                             "lat_seconds_bucket{cmd=\"get\",le=\"1\"} 2\n"
                             "lat_seconds_bucket{cmd=\"get\",le=\"10\"} 3\n"
                             "lat_seconds_bucket{cmd=\"get\",le=\"+Inf\"} 4\n"
                             "lat_seconds_sum{cmd=\"get\"} 105.15\n"
                             "lat_seconds_count{cmd=\"get\"} 4\n");
    buf_release(&b);
}

static void test_latency_buckets(void **state)
{
    (void)state;
    struct metrics_hist h;
    metrics_hist_init_latency(&h);
    assert_int_equal(h.nb, 16);
    assert_true(h.bounds[0] == 0.0001);
    assert_true(h.bounds[15] == 10);
    for (int i = 1; i < h.nb; i++)
        assert_true(h.bounds[i] > h.bounds[i - 1]);
    metrics_hist_observe(&h, 20);
    assert_int_equal(h.counts[16], 1);
    struct buf b = BUF_INIT;
    metrics_hist_write(&b, "x", NULL, &h);
    assert_non_null(strstr(b.p, "x_bucket{le=\"0.0001\"} 0\n"));
    assert_non_null(strstr(b.p, "x_bucket{le=\"+Inf\"} 1\nx_sum 20\nx_count 1\n"));
    buf_release(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_family_and_samples),
        cmocka_unit_test(test_histogram),
        cmocka_unit_test(test_latency_buckets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
