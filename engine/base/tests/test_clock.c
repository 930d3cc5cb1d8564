/* test_clock.c: clock_wall_us() against clock_gettime(CLOCK_REALTIME), read
 * just before and just after it, on this thread and on three at once, across
 * many extrapolation spans; and that a thread's readings never go back by
 * more than rounding.  Run twice by meson: as the machine allows (the TSC
 * path where the kernel's clock source is the TSC) and with
 * OBENTCHI_TEST_CLOCK=gettime (the vDSO only). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"

#define SLACK_US 3 /* truncation to microseconds, and the rate's error over a span (~0.03 us) */

static int64_t real_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* For about ms milliseconds: real before <= ours <= real after (with the
 * slack), ours never back by more than a microsecond.  0 or the failures. */
static int check_for(int ms)
{
    int bad = 0;
    int64_t prev = 0, end = real_us() + (int64_t)ms * 1000;
    for (long i = 0;; i++) {
        int64_t a = real_us();
        int64_t t = clock_wall_us();
        int64_t b = real_us();
        if (t < a - SLACK_US || t > b + SLACK_US || (prev && t < prev - 1)) {
            if (bad++ < 5)
                fprintf(stderr, "read %ld: before %lld ours %lld after %lld previous %lld\n", i, (long long)a,
                        (long long)t, (long long)b, (long long)prev);
        }
        prev = t;
        if (b > end)
            break;
    }
    return bad;
}

static void test_matches_the_real_clock(void **state)
{
    (void)state;
    printf("# clock source: %s\n", clock_source());
    assert_int_equal(check_for(60), 0); /* 60 spans of 1 ms */
    assert_true(clock_wall_ms() - real_us() / 1000 <= 1);
}

static void *thread_main(void *arg)
{
    *(int *)arg = check_for(40);
    return NULL;
}

static void test_matches_on_several_threads(void **state)
{
    (void)state;
    pthread_t t[3];
    int bad[3];
    for (int i = 0; i < 3; i++)
        assert_int_equal(pthread_create(&t[i], NULL, thread_main, &bad[i]), 0);
    for (int i = 0; i < 3; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(bad[i], 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_the_real_clock),
        cmocka_unit_test(test_matches_on_several_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
