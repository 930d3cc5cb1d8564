/* clock.h: time sources.  Wall-clock milliseconds for expiry (keys expire at an
 * absolute Unix time, as in Redis, so that replicas and snapshots agree), a
 * monotonic clock for durations and timeouts.
 *
 * The wall clock is read twice a command (its start, for expiry, and its
 * end, for its duration).  Through the vDSO a read costs ~31 ns on the
 * 2-core VM this was measured on, 6% of a pipelined PING's server CPU.  Where
 * the kernel's own clock source is the TSC (constant and non-stop, so the
 * kernel trusts it across CPUs), a thread instead reads the TSC (~12 ns) and
 * extrapolates from its last real reading, taken at most CLOCK_SPAN_US ago:
 * the error is the rate's calibration error over that span (well under a
 * microsecond), and a clock step (NTP, settimeofday) shows within it.  A
 * TSC that went backwards, or jumped past the span, means a real reading,
 * and a real reading anchors only when it took under a microsecond (one
 * interrupted between its TSC and clock reads would skew the whole span).
 * OBENTCHI_TEST_CLOCK=gettime in the environment turns the TSC path off. */
#ifndef BASE_CLOCK_H
#define BASE_CLOCK_H

#include <stdint.h>
#include <time.h>
#if defined(__x86_64__)
#include <x86intrin.h>
#endif

#define CLOCK_SPAN_US 1000 /* longest extrapolation from a real reading */

struct clock__thread {
    uint64_t tsc; /* the TSC at this thread's last real reading */
    int64_t us;   /* the wall clock then */
};
extern _Thread_local struct clock__thread clock__tl;
extern uint64_t clock__mult; /* microseconds per TSC tick << 32; 0 until calibrated or when off */
extern uint64_t clock__span; /* CLOCK_SPAN_US in ticks */

/* clock_gettime(CLOCK_REALTIME) in microseconds, and this thread's new
 * anchor for the TSC path. */
int64_t clock__read(void);
/* "tsc" or "clock_gettime": how clock_wall_us() reads (calibrates first). */
const char *clock_source(void);

static inline int64_t clock_wall_us(void)
{
#if defined(__x86_64__)
    uint64_t mult = __atomic_load_n(&clock__mult, __ATOMIC_RELAXED);
    if (mult) {
        uint64_t d = __rdtsc() - clock__tl.tsc; /* huge when the TSC went back */
        if (d < __atomic_load_n(&clock__span, __ATOMIC_RELAXED))
            return clock__tl.us + (int64_t)((d * mult) >> 32);
    }
#endif
    return clock__read();
}
static inline int64_t clock_wall_ms(void) { return clock_wall_us() / 1000; }
static inline int64_t clock_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}
static inline int64_t clock_mono_ms(void) { return clock_mono_us() / 1000; }

#endif
