/* test_util.h: the fixture the engine unit tests share: an engine E whose
 * hooks record what they hear in J (journal lines, notified events, ready
 * keys), setup/teardown with a leak check, the journal joined for asserts,
 * a context C holding every shard, and the seed of the random tests that
 * replay the journal into a second engine R.  Include after <cmocka.h> and
 * the engine headers under test.  A test with wider journal lines defines
 * TU_JMAX/TU_JLINE first; one with its own hooks uses only the parts it needs
 * (everything here is static and may go unused). */
#ifndef OBENTCHI_ENGINE_TEST_UTIL_H
#define OBENTCHI_ENGINE_TEST_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "engine.h"

#ifndef TU_JMAX
#define TU_JMAX 64
#endif
#ifndef TU_JLINE
#define TU_JLINE 300
#endif
#define TU_UNUSED __attribute__((unused))

/* What the hooks heard; the fields past line[] are for the tests that keep
 * counts instead of the words. */
static struct {
    int n, total;
    int db[TU_JMAX];
    char line[TU_JMAX][TU_JLINE];
    char events[512];
    char ready[256];
    int notified, modified, modified_all;
    char last_event[32];
    int ev_count[3]; /* expired, evicted, del */
} J;

static struct eng *E TU_UNUSED; /* the engine under test */
static struct eng *R TU_UNUSED; /* the replica the journal replays into */
static int64_t mem_base TU_UNUSED;
static struct buf dumped TU_UNUSED; /* what a test's reader collected */

#ifndef TU_OWN_HOOKS /* a test with hooks of its own defines it */
/* A journal line: the words, one longer than 40 bytes as <N bytes>. */
static inline void journal_hook(void *ud, int db, int argc, const struct eng_str *argv)
{
    if (J.n == TU_JMAX)
        return;
    char *l = J.line[J.n++];
    size_t off = 0;
    for (int i = 0; i < argc && off < TU_JLINE - 20; i++) {
        if (argv[i].n <= 40)
            off += (size_t)snprintf(l + off, TU_JLINE - off, i ? " %.*s" : "%.*s", (int)argv[i].n, argv[i].p);
        else
            off += (size_t)snprintf(l + off, TU_JLINE - off, " <%zu bytes>", argv[i].n);
    }
}

static inline void notify_hook(void *ud, int db, int cls, const char *event, const char *key, size_t klen)
{
    size_t n = strlen(J.events);
    snprintf(J.events + n, sizeof J.events - n, n ? " %s" : "%s", event);
}

static inline void ready_hook(void *ud, int db, const char *key, size_t klen)
{
    size_t n = strlen(J.ready);
    snprintf(J.ready + n, sizeof J.ready - n, n ? " %.*s" : "%.*s", (int)klen, key);
}

static inline struct eng *new_engine(int nshards, void (*journal)(void *, int, int, const struct eng_str *))
{
    struct eng_config cfg = {.nshards = nshards, .ndb = 2};
    struct eng *e = eng_new(&cfg);
    assert_non_null(e);
    struct eng_hooks h = {.journal = journal, .notify = notify_hook, .notify_mask = ~0u, .ready = ready_hook};
    eng_set_hooks(e, &h);
    return e;
}

static inline int setup(void **state)
{
    mem_base = alloc_used();
    E = new_engine(4, journal_hook);
    memset(&J, 0, sizeof J);
    return 0;
}

static inline int teardown(void **state)
{
    buf_release(&dumped);
    eng_free(E);
    E = NULL;
    assert_int_equal(alloc_used(), mem_base); /* nothing leaked */
    return 0;
}
#endif

/* The journal so far, lines joined with " | ", then cleared. */
static inline const char *jtake(void)
{
    static char all[TU_JMAX * TU_JLINE];
    size_t off = 0;
    all[0] = '\0';
    for (int i = 0; i < J.n; i++)
        off += (size_t)snprintf(all + off, sizeof all - off, i ? " | %s" : "%s", J.line[i]);
    J.n = 0;
    return all;
}

static inline const char *etake(void)
{
    static char ev[sizeof J.events];
    memcpy(ev, J.events, sizeof ev);
    J.events[0] = '\0';
    return ev;
}

static inline const char *rtake(void)
{
    static char r[sizeof J.ready];
    memcpy(r, J.ready, sizeof r);
    J.ready[0] = '\0';
    return r;
}

#define JOURNAL(want) assert_string_equal(jtake(), want)
#define EVENTS(want) assert_string_equal(etake(), want)
#define READY(want) assert_string_equal(rtake(), want)

#ifndef TU_OWN_HOOKS
static struct eng_ctx C TU_UNUSED;
static inline void begin(void)
{
    eng_ctx_init(&C, E, 0);
    eng_lock_all(&C);
}
static inline void end(void) { eng_unlock(&C); }
#endif

#define S(x) (x), strlen(x)

static inline int is(const struct eng_str *s, const char *w) { return s->n == strlen(w) && !memcmp(s->p, w, s->n); }

/* The seed of a random test: SEED= from the environment, else the time;
 * printed so that a failure can be run again. */
static inline unsigned env_seed(const char *test)
{
    const char *s = getenv("SEED");
    unsigned seed = s && *s ? (unsigned)strtoul(s, NULL, 10) : (unsigned)time(NULL);
    printf("%s: SEED=%u\n", test, seed);
    fflush(stdout);
    return seed;
}

#endif
