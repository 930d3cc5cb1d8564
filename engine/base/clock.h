/* clock.h: time sources.  Wall-clock milliseconds for expiry (keys expire at an
 * absolute Unix time, as in Redis, so that replicas and snapshots agree), a
 * monotonic clock for durations and timeouts. */
#ifndef BASE_CLOCK_H
#define BASE_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline int64_t clock_wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
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
