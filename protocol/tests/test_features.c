/* test_features.c: transactions, pub/sub and blocking pops (multi.c,
 * pubsub.c, blocking.c, keytab.c) driven through the dispatcher with RESP
 * replies compared byte for byte, and the journal they leave.
 *
 * No sockets: a server is built with port 0 (no listeners) and its loops are
 * never run by threads; the test's "clients" are struct clients whose socket
 * is never connected.  They carry CL_CLOSING while in use so that client_flush
 * leaves their replies in obuf for the test to read, and the test pumps the
 * workers' mailboxes itself (uv_run NOWAIT) to deliver cross-worker messages.
 * No sleeps: blocking is tested with timeout 0. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/config.h"
#include "keytab.h"
#include "server_int.h"

static struct server *S;
static struct eng *E;
static struct cfg *CONF;
static struct buf journal; /* "MULTI\nSET a 1\n..." */

static void on_journal(void *ud, int db, int argc, const struct eng_str *argv)
{
    for (int i = 0; i < argc; i++) {
        if (i)
            buf_putc(&journal, ' ');
        buf_append(&journal, argv[i].p, argv[i].n);
    }
    buf_putc(&journal, '\n');
}

static int setup(void **state)
{
    char err[256];
    CONF = cfg_new();
    struct server_config *sc = server_options_register(CONF);
    if (cfg_defaults(CONF, err, sizeof err) < 0)
        return -1;
    sc->port = 0;
    sc->shards = 4;
    struct eng_config ec = {.nshards = 4, .ndb = 16, .maxmemory_samples = 5};
    E = eng_new(&ec);
    server_options_bind_engine(E);
    S = server_new(sc, CONF, NULL, E, err, sizeof err);
    if (!S)
        return -1;
    server_set_hooks(S, &(struct server_hooks){.journal = on_journal});
    return 0;
}

static int teardown(void **state)
{
    server_free(S);
    eng_free(E);
    cfg_free(CONF);
    buf_release(&journal);
    return 0;
}

/* A client of worker w, known to the worker (mailbox deliveries find it). */
static struct client *fake(int w)
{
    struct worker *wk = &S->workers[w];
    struct client *c = client_new(wk);
    c->flags |= CL_CLOSING; /* keep replies in obuf (see the top) */
    c->fd = 1000 + (int)c->id;
    client_register(c);
    atomic_fetch_add(&S->nclients, 1);
    return c;
}

static void pump(void)
{
    for (int i = 0; i < S->nworkers; i++)
        uv_run(&S->workers[i].loop, UV_RUN_NOWAIT);
}

static void done(struct client *c)
{
    c->flags &= ~CL_CLOSING;
    client_close(c);
    pump(); /* runs the close callbacks */
}

/* Runs one command given as space-separated words; returns its reply (and
 * anything else the client got since the last call), then forgets it. */
static const char *run(struct client *c, const char *line)
{
    static char out[4096];
    char copy[512];
    struct eng_str argv[32];
    int argc = 0;
    snprintf(copy, sizeof copy, "%s", line);
    for (char *save, *t = strtok_r(copy, " ", &save); t; t = strtok_r(NULL, " ", &save))
        argv[argc++] = (struct eng_str){t, strlen(t)};
    dispatch_request(c, argc, argv);
    snprintf(out, sizeof out, "%.*s", (int)c->obuf.len, c->obuf.p ? c->obuf.p : "");
    buf_reset(&c->obuf);
    return out;
}

/* What c received from elsewhere (mailbox deliveries, served pops). */
static const char *received(struct client *c)
{
    static char out[4096];
    pump();
    snprintf(out, sizeof out, "%.*s", (int)c->obuf.len, c->obuf.p ? c->obuf.p : "");
    buf_reset(&c->obuf);
    return out;
}

static const char *journal_take(void)
{
    static char out[4096];
    snprintf(out, sizeof out, "%.*s", (int)journal.len, journal.p ? journal.p : "");
    buf_reset(&journal);
    return out;
}

/* ---- keytab ------------------------------------------------------------------ */

struct node {
    struct kt_node n;
    char key[16];
};

static void test_keytab(void **state)
{
    struct keytab t;
    static struct node nodes[1000];
    kt_init(&t);
    for (int i = 0; i < 1000; i++) {
        int len = snprintf(nodes[i].key, sizeof nodes[i].key, "k%d", i / 2);
        nodes[i].key[len] = '\0';
        nodes[i].n = (struct kt_node){.db = i % 2, .key = nodes[i].key, .len = (size_t)len + (i % 4 == 1)};
        kt_add(&t, &nodes[i].n); /* i % 4 == 1: the key with its NUL, a different key */
    }
    assert_int_equal(t.used, 1000);
    for (int i = 0; i < 1000; i++)
        assert_ptr_equal(kt_find(&t, nodes[i].n.db, nodes[i].key, nodes[i].n.len), &nodes[i].n);
    assert_null(kt_find(&t, 2, "k0", 2));
    for (int i = 0; i < 1000; i += 3)
        kt_del(&t, &nodes[i].n);
    for (int i = 0; i < 1000; i++)
        assert_true((kt_find(&t, nodes[i].n.db, nodes[i].key, nodes[i].n.len) != NULL) == (i % 3 != 0));
    kt_release(&t);
}

/* ---- notify-keyspace-events ------------------------------------------------------ */

static void test_notify_flags(void **state)
{
    static const char *const cases[][2] = {{"KEAn", "AKE"}, {"nKg", "gnK"}, {"mEK", "KEm"}, {"ztx", "zxt"},
                                           {"A$", "A"},     {"", ""},       {"Kg$lshzxetd", "AK"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t f;
        struct buf b = BUF_INIT;
        assert_int_equal(notify_flags_parse(cases[i][0], &f), 0);
        notify_flags_format(f, &b);
        assert_string_equal(b.p ? b.p : "", cases[i][1]);
        buf_release(&b);
    }
    int64_t f;
    assert_int_equal(notify_flags_parse("Kq", &f), -1);
    assert_int_equal(notify_flags_parse("g$", &f), 0);
    assert_int_equal(notify_engine_mask(f), 0); /* neither K nor E */
    assert_int_equal(notify_flags_parse("Ex", &f), 0);
    assert_int_equal(notify_engine_mask(f), ENG_EV_EXPIRED);
    assert_int_equal(notify_flags_parse("KA", &f), 0);
    assert_int_equal(notify_engine_mask(f), ENG_EV_GENERIC | ENG_EV_STRING | ENG_EV_LIST | ENG_EV_SET |
                                                ENG_EV_HASH | ENG_EV_ZSET | ENG_EV_EXPIRED | ENG_EV_EVICTED);
}

/* ---- transactions ---------------------------------------------------------------- */

static void test_multi_exec(void **state)
{
    struct client *c = fake(0);
    assert_string_equal(run(c, "EXEC"), "-ERR EXEC without MULTI\r\n");
    assert_string_equal(run(c, "MULTI"), "+OK\r\n");
    assert_string_equal(run(c, "MULTI"), "-ERR MULTI calls can not be nested\r\n");
    assert_string_equal(run(c, "SET a 1"), "+QUEUED\r\n");
    assert_string_equal(run(c, "INCR a"), "+QUEUED\r\n");
    assert_string_equal(run(c, "LPUSH a x"), "+QUEUED\r\n");
    assert_string_equal(run(c, "EXEC"),
                        "*3\r\n+OK\r\n:2\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
    assert_string_equal(journal_take(), "MULTI\nSET a 1\nINCRBY a 1\nEXEC\n");
    assert_string_equal(run(c, "MULTI"), "+OK\r\n");
    assert_string_equal(run(c, "GET a"), "+QUEUED\r\n");
    assert_string_equal(run(c, "EXEC"), "*1\r\n$1\r\n2\r\n");
    assert_string_equal(journal_take(), ""); /* nothing written, nothing wrapped */
    assert_string_equal(run(c, "MULTI"), "+OK\r\n");
    assert_string_equal(run(c, "SET a"), "-ERR wrong number of arguments for 'set' command\r\n");
    assert_string_equal(run(c, "SET a 3"), "+QUEUED\r\n");
    assert_string_equal(run(c, "EXEC"), "-EXECABORT Transaction discarded because of previous errors.\r\n");
    assert_string_equal(run(c, "MULTI"), "+OK\r\n");
    assert_string_equal(run(c, "SET a 4"), "+QUEUED\r\n");
    assert_string_equal(run(c, "DISCARD"), "+OK\r\n");
    assert_string_equal(run(c, "DISCARD"), "-ERR DISCARD without MULTI\r\n");
    assert_string_equal(run(c, "GET a"), "$1\r\n2\r\n");
    assert_string_equal(journal_take(), "");
    run(c, "FLUSHALL");
    journal_take();
    done(c);
}

static void test_watch(void **state)
{
    struct client *a = fake(0), *b = fake(1);
    assert_string_equal(run(a, "WATCH k"), "+OK\r\n");
    run(b, "SET k 1");
    run(a, "MULTI");
    run(a, "GET k");
    assert_string_equal(run(a, "EXEC"), "*-1\r\n");
    /* unwatched after EXEC, and untouched keys pass */
    run(a, "WATCH k other");
    run(b, "SET unrelated 1");
    run(a, "MULTI");
    assert_string_equal(run(a, "WATCH x"), "-ERR WATCH inside MULTI is not allowed\r\n");
    run(a, "GET k");
    assert_string_equal(run(a, "EXEC"), "*1\r\n$1\r\n1\r\n");
    /* FLUSHALL dirties watchers of keys that were there only */
    run(a, "WATCH k absent");
    run(b, "FLUSHALL");
    run(a, "MULTI");
    assert_string_equal(run(a, "EXEC"), "*-1\r\n");
    run(a, "WATCH absent");
    run(b, "FLUSHALL");
    run(a, "MULTI");
    assert_string_equal(run(a, "EXEC"), "*0\r\n");
    /* a watcher that goes away leaves nothing behind */
    run(a, "WATCH gone");
    done(a);
    run(b, "SET gone 1");
    journal_take();
    done(b);
}

/* ---- pub/sub ------------------------------------------------------------------------ */

static void test_pubsub_across_workers(void **state)
{
    struct client *s1 = fake(1), *s2 = fake(2), *pub = fake(0);
    assert_string_equal(run(s1, "SUBSCRIBE ch"), "*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n");
    run(s2, "HELLO 3");
    assert_string_equal(run(s2, "PSUBSCRIBE c*"), ">3\r\n$10\r\npsubscribe\r\n$2\r\nc*\r\n:1\r\n");
    assert_string_equal(run(pub, "PUBLISH ch hi"), ":2\r\n");
    assert_string_equal(received(s1), "*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n");
    assert_string_equal(received(s2), ">4\r\n$8\r\npmessage\r\n$2\r\nc*\r\n$2\r\nch\r\n$2\r\nhi\r\n");
    assert_string_equal(journal_take(), "PUBLISH ch hi\n"); /* replicas deliver it too */
    assert_string_equal(run(s1, "GET x"), "-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / "
                                          "PING / QUIT / RESET are allowed in this context\r\n");
    assert_string_equal(run(s1, "UNSUBSCRIBE"), "*3\r\n$11\r\nunsubscribe\r\n$2\r\nch\r\n:0\r\n");
    assert_int_equal(s1->flags & CL_PUBSUB, 0);
    done(s2); /* its pattern goes with it */
    assert_string_equal(run(pub, "PUBLISH ch hi"), ":0\r\n");
    assert_string_equal(run(pub, "PUBSUB NUMPAT"), ":0\r\n");
    journal_take();
    done(s1);
    done(pub);
}

/* ---- blocking pops ------------------------------------------------------------------- */

static void test_blocking_order_and_cleanup(void **state)
{
    struct client *w1 = fake(1), *w2 = fake(2), *gone = fake(3), *p = fake(0);
    assert_string_equal(run(w1, "BLPOP q 0"), "");
    assert_true(w1->flags & CL_BLOCKED);
    assert_string_equal(run(gone, "BLPOP q 0"), "");
    assert_string_equal(run(w2, "BRPOP other q 0"), "");
    done(gone); /* disconnects while blocked: must not take an element */
    assert_string_equal(run(p, "RPUSH q a b c"), ":3\r\n");
    assert_string_equal(received(w1), "*2\r\n$1\r\nq\r\n$1\r\na\r\n");
    assert_string_equal(received(w2), "*2\r\n$1\r\nq\r\n$1\r\nc\r\n");
    assert_int_equal(w1->flags & CL_BLOCKED, 0);
    assert_string_equal(run(p, "LRANGE q 0 -1"), "*1\r\n$1\r\nb\r\n");
    assert_string_equal(journal_take(), "RPUSH q a b c\nLPOP q\nRPOP q\n");
    /* BLMOVE is served as LMOVE, and its push wakes the next waiter */
    assert_string_equal(run(w2, "BLPOP dst 0"), "");
    assert_string_equal(run(w1, "BLMOVE src dst RIGHT LEFT 0"), "");
    run(p, "LPUSH src x");
    assert_string_equal(received(w1), "$1\r\nx\r\n");
    assert_string_equal(received(w2), "*2\r\n$3\r\ndst\r\n$1\r\nx\r\n");
    assert_string_equal(journal_take(), "LPUSH src x\nLMOVE src dst RIGHT LEFT\nLPOP dst\n");
    /* a push and a pop inside one transaction leave nothing to serve */
    assert_string_equal(run(w1, "BZPOPMIN z 0"), "");
    run(p, "MULTI");
    run(p, "ZADD z 1 m");
    run(p, "ZPOPMIN z");
    assert_string_equal(run(p, "EXEC"), "*2\r\n:1\r\n*2\r\n$1\r\nm\r\n$1\r\n1\r\n");
    assert_string_equal(received(w1), "");
    assert_true(w1->flags & CL_BLOCKED);
    run(p, "ZADD z 2.5 n");
    assert_string_equal(received(w1), "*3\r\n$1\r\nz\r\n$1\r\nn\r\n$3\r\n2.5\r\n");
    run(p, "FLUSHALL");
    journal_take();
    done(w1);
    done(w2);
    done(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keytab),
        cmocka_unit_test(test_notify_flags),
        cmocka_unit_test(test_multi_exec),
        cmocka_unit_test(test_watch),
        cmocka_unit_test(test_pubsub_across_workers),
        cmocka_unit_test(test_blocking_order_and_cleanup),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
