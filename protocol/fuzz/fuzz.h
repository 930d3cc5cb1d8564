/* fuzz.h: what every fuzz target shares (protocol/, replication/ and bot/
 * fuzz directories): the entry points replay.c or libFuzzer calls, the
 * CHECK that aborts with the failed condition, the seed drawn from an input
 * and the slice sizes cut from it, and the engine flush between inputs.
 * Header-only (static inline): each target is one executable. */
#ifndef PROTOCOL_FUZZ_FUZZ_H
#define PROTOCOL_FUZZ_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
void fuzz_cleanup(void); /* optional (weak in replay.c): frees what set-up held */

#define CHECK(cond)                                                                    \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                   \
        }                                                                              \
    } while (0)

/* A seed drawn from every byte of the input (FNV-1a style), never 0: the
 * same input cuts the same slices, so a crash replays. */
static inline uint64_t fuzz_seed(const uint8_t *data, size_t size)
{
    uint64_t seed = 0x9e3779b97f4a7c15ULL;
    for (size_t i = 0; i < size; i++)
        seed = (seed ^ data[i]) * 0x100000001b3ULL;
    return seed | 1;
}

/* Next slice size (xorshift64 on *s): three times in four 1..small, else
 * 1..big, as reads deliver bytes: mostly tiny, sometimes a lot. */
static inline size_t fuzz_next_slice(uint64_t *s, size_t small, size_t big)
{
    *s ^= *s << 13, *s ^= *s >> 7, *s ^= *s << 17;
    return *s % 4 ? 1 + *s % small : 1 + *s % big;
}

#ifdef ENGINE_ENGINE_H /* targets that run an engine: include engine.h first */
/* Back to an empty keyspace (FLUSHALL) for the next input. */
static inline void fuzz_flush(struct eng *e)
{
    struct eng_ctx c;
    eng_ctx_init(&c, e, 0);
    eng_lock_all(&c);
    eng_flush(&c, -1);
    eng_unlock(&c);
}
#endif

#endif
