/* clock.c: the TSC path of clock_wall_us() (clock.h): whether to take it,
 * the TSC's rate, and each thread's real readings. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"

_Thread_local struct clock__thread clock__tl;
uint64_t clock__mult;
uint64_t clock__span;

static uint64_t tight; /* a microsecond in ticks: the longest real read that anchors */
static pthread_once_t calibrated = PTHREAD_ONCE_INIT;

static int64_t ns_of(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

#if defined(__x86_64__)
/* The first line of path, without its newline, equals want. */
static int line_is(const char *path, const char *want)
{
    char line[64] = "";
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    if (!fgets(line, sizeof line, f))
        line[0] = '\0';
    fclose(f);
    line[strcspn(line, "\n")] = '\0';
    return strcmp(line, want) == 0;
}

/* The first "flags" line of /proc/cpuinfo names every one of words. */
static int cpu_flags_have(const char *const *words)
{
    char line[8192];
    int ok = 0;
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return 0;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "flags", 5))
            continue;
        ok = 1;
        line[strcspn(line, "\n")] = ' ';
        for (int i = 0; words[i] && ok; i++) {
            char w[64];
            snprintf(w, sizeof w, " %s ", words[i]);
            ok = strstr(line, w) != NULL;
        }
        break;
    }
    fclose(f);
    return ok;
}

/* A TSC reading and CLOCK_MONOTONIC_RAW at one moment: the pair whose two
 * TSC reads around the clock's are closest of a few (a preemption in
 * between would skew the rate). */
static void pair(uint64_t *tsc, int64_t *ns)
{
    uint64_t best = UINT64_MAX;
    for (int i = 0; i < 5; i++) {
        uint64_t a = __rdtsc();
        int64_t n = ns_of(CLOCK_MONOTONIC_RAW);
        uint64_t b = __rdtsc();
        if (b - a < best) {
            best = b - a;
            *tsc = a + (b - a) / 2;
            *ns = n;
        }
    }
}

static void calibrate(void)
{
    static const char *const flags[] = {"constant_tsc", "nonstop_tsc", NULL};
    const char *env = getenv("OBENTCHI_TEST_CLOCK");
    if ((env && strcmp(env, "gettime") == 0) ||
        !line_is("/sys/devices/system/clocksource/clocksource0/current_clocksource", "tsc") ||
        !cpu_flags_have(flags))
        return;
    uint64_t t0, t1;
    int64_t n0, n1;
    pair(&t0, &n0);
    do /* 2 ms: a rate off by the reads' ~50 ns is off by 2.5e-5 */
        pair(&t1, &n1);
    while (n1 - n0 < 2000000);
    double per_us = (double)(t1 - t0) * 1000.0 / (double)(n1 - n0);
    if (t1 <= t0 || per_us < 100 || per_us > 100000) /* 0.1 to 100 GHz, or not a clock */
        return;
    __atomic_store_n(&tight, (uint64_t)per_us, __ATOMIC_RELAXED);
    __atomic_store_n(&clock__span, (uint64_t)(per_us * CLOCK_SPAN_US), __ATOMIC_RELAXED);
    __atomic_store_n(&clock__mult, (uint64_t)(4294967296.0 / per_us), __ATOMIC_RELEASE);
}
#else
static void calibrate(void) {}
#endif

int64_t clock__read(void)
{
    pthread_once(&calibrated, calibrate);
#if defined(__x86_64__)
    uint64_t a = __rdtsc();
    int64_t us = ns_of(CLOCK_REALTIME) / 1000;
    uint64_t b = __rdtsc();
    /* A pair taken across a preemption (or a stolen vCPU) would put every
     * extrapolation of the span off by that delay: only a tight pair (the
     * read took at most a microsecond) anchors, at its end, so that an
     * extrapolation is never ahead of the clock; else the next read is a
     * real one again. */
    clock__tl.tsc = b - a <= __atomic_load_n(&tight, __ATOMIC_RELAXED) ? b : 0;
    clock__tl.us = us;
    return us;
#else
    return ns_of(CLOCK_REALTIME) / 1000;
#endif
}

const char *clock_source(void)
{
    pthread_once(&calibrated, calibrate);
    return __atomic_load_n(&clock__mult, __ATOMIC_RELAXED) ? "tsc" : "clock_gettime";
}
