/* beat.h: a loop thread's heartbeat, for /healthz.  A one-second timer on
 * the loop stores the monotonic time; any thread reads how long ago that
 * was.  A loop stuck in a callback stops beating and its age grows. */
#ifndef OBENTCHI_BOT_BEAT_H
#define OBENTCHI_BOT_BEAT_H

#include <stdatomic.h>
#include <stdint.h>

#include <uv.h>

#include "base/clock.h"

struct beat {
    uv_timer_t timer;
    _Atomic int64_t ms; /* the last beat (monotonic ms); 0: none yet */
};

static inline void beat_now(struct beat *b) { atomic_store(&b->ms, clock_mono_ms()); }

static inline void beat__tick(uv_timer_t *t) { beat_now(t->data); }

/* The timer, on loop (before it runs or on its thread); the age reads 0
 * until the first beat_now(). */
static inline void beat_init(struct beat *b, uv_loop_t *loop)
{
    uv_timer_init(loop, &b->timer);
    b->timer.data = b;
    uv_timer_start(&b->timer, beat__tick, 1000, 1000);
}

/* On the loop's thread. */
static inline void beat_close(struct beat *b) { uv_close((uv_handle_t *)&b->timer, NULL); }

/* From any thread: ms since the last beat, 0 before the first. */
static inline int64_t beat_age_ms(const struct beat *b)
{
    int64_t ms = atomic_load(&b->ms);
    return ms ? clock_mono_ms() - ms : 0;
}

#endif
