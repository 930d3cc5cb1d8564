/* test_queue.c: the job store (queue.c) against an engine, no loop:
 * idempotent adds, claims under a lease, done and fail, exponential backoff
 * with jitter inside its bounds, dead letters after max attempts and their
 * re-drive, lease expiry counting the attempt, a stale worker unable to
 * finish the next attempt (token), "later" not counting, completed jobs
 * bounded and pruned, and the JSON view. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "base/err.h"
#include "engine.h"
#include "hash.h"
#include "list.h"
#include "queue_int.h"
#include "zset.h"

static struct eng *E;

static int setup(void **st)
{
    struct eng_config cfg = {.nshards = 4, .ndb = 1, .maxmemory_samples = 5};
    E = eng_new(&cfg);
    queue__opts = (struct queue_opts){.keep_completed = 3,
                                      .lease_ms = 1000,
                                      .backoff_ms = 1000,
                                      .backoff_max_ms = 60000,
                                      .default_max_attempts = 3};
    return E ? 0 : -1;
}

static int teardown(void **st)
{
    eng_free(E);
    return 0;
}

/* A context on queue q at time now. */
static struct eng_ctx *at(struct eng_ctx *c, const char *q, int64_t now)
{
    eng_ctx_init(c, E, 0);
    queue__lock(c, q);
    c->now_ms = now;
    return c;
}

static int add(const char *q, int64_t now, const char *idem, struct buf *id)
{
    struct eng_ctx c;
    int rc = queue__add(at(&c, q, now), q, "{\"n\":1}", 7, idem, 0, 0, id);
    eng_unlock(&c);
    return rc;
}

static int claim(const char *q, int64_t now, struct queue_claim *cl)
{
    struct eng_ctx c;
    int rc = queue__claim(at(&c, q, now), q, 1000, cl);
    eng_unlock(&c);
    return rc;
}

static struct bot_queue_stats stats(const char *q, int64_t now)
{
    struct eng_ctx c;
    struct bot_queue_stats st;
    queue__stats(at(&c, q, now), q, &st);
    eng_unlock(&c);
    return st;
}

static void test_add_idem_claim_done(void **st)
{
    struct buf id1, id2;
    buf_init(&id1);
    buf_init(&id2);
    assert_int_equal(add("a", 1000, "k1", &id1), 1);
    assert_int_equal(add("a", 1001, "k1", &id2), 0); /* the same job back */
    assert_int_equal(id1.len, id2.len);
    assert_memory_equal(id1.p, id2.p, id1.len);
    assert_int_equal(add("a", 1002, NULL, NULL), 1);
    assert_int_equal(stats("a", 1003).waiting, 2);

    struct queue_claim cl;
    assert_int_equal(claim("a", 1500, &cl), 1);
    assert_string_equal(cl.id, "1"); /* oldest first */
    assert_string_equal(cl.idem, "k1");
    assert_string_equal(cl.payload.p, "{\"n\":1}");
    assert_int_equal(cl.attempts, 1);
    assert_int_equal(cl.max_attempts, 3);
    buf_release(&cl.payload);
    struct bot_queue_stats s = stats("a", 1500);
    assert_int_equal(s.waiting, 1);
    assert_int_equal(s.active, 1);

    struct eng_ctx c;
    assert_int_equal(queue__done(at(&c, "a", 1600), "a", "1", "{\"ok\":true}", 2), 0); /* wrong attempt */
    assert_int_equal(queue__done(&c, "a", "1", "{\"ok\":true}", 1), 1);
    assert_int_equal(queue__done(&c, "a", "1", NULL, 0), 0); /* once */
    struct buf js;
    buf_init(&js);
    assert_int_equal(queue__job_json(&c, "a", "1", &js), 1);
    buf_putc(&js, 0);
    assert_non_null(strstr(js.p, "\"state\":\"done\""));
    assert_non_null(strstr(js.p, "\"result\":{\"ok\":true}"));
    assert_non_null(strstr(js.p, "\"payload\":{\"n\":1}"));
    eng_unlock(&c);
    s = stats("a", 1700);
    assert_int_equal(s.completed, 1);
    assert_int_equal(s.completed_total, 1);
    assert_int_equal(s.active, 0);
    buf_release(&js);
    buf_release(&id1);
    buf_release(&id2);
}

static void test_backoff_dead_redrive(void **st)
{
    struct queue_claim cl;
    struct eng_ctx c;
    assert_int_equal(add("b", 0, NULL, NULL), 1);
    int64_t now = 10000, lo[] = {500, 1000}, hi[] = {1000, 2000};
    for (int attempt = 1; attempt <= 2; attempt++) {
        assert_int_equal(claim("b", now, &cl), 1);
        assert_int_equal(cl.attempts, attempt);
        buf_release(&cl.payload);
        assert_int_equal(queue__fail(at(&c, "b", now), "b", cl.id, "boom", 0, -1, attempt), QUEUE_FAIL_RETRY);
        double due;
        assert_int_equal(eng_zscore(&c, "queue:{q:b}:delayed", 19, cl.id, strlen(cl.id), &due), 0);
        eng_unlock(&c);
        /* base 1 s doubled per attempt, half of it jitter */
        assert_true(due - (double)now >= (double)lo[attempt - 1] && due - (double)now <= (double)hi[attempt - 1]);
        assert_int_equal(claim("b", now + 1, &cl), 0); /* not due yet */
        now = (int64_t)due;
    }
    assert_int_equal(claim("b", now, &cl), 1);
    assert_int_equal(cl.attempts, 3);
    assert_string_equal(cl.last_error, "boom");
    buf_release(&cl.payload);
    assert_int_equal(queue__fail(at(&c, "b", now), "b", cl.id, "boom 3", 0, -1, 3), QUEUE_FAIL_DEAD);
    struct buf out;
    buf_init(&out);
    assert_int_equal(queue__dead_list(&c, "b", 0, 10, &out), 1);
    buf_putc(&out, 0);
    assert_non_null(strstr(out.p, "\"error\":\"boom 3\""));
    assert_int_equal(queue__redrive(&c, "b", cl.id), 1);
    assert_int_equal(queue__redrive(&c, "b", cl.id), 0);
    eng_unlock(&c);
    assert_int_equal(claim("b", now + 1, &cl), 1);
    assert_int_equal(cl.attempts, 1); /* attempts start again */
    assert_int_equal(queue__fail(at(&c, "b", now), "b", cl.id, "no", 1, -1, 0), QUEUE_FAIL_DEAD); /* permanent */
    assert_int_equal(queue__dead_delete(&c, "b", cl.id), 1);
    eng_unlock(&c);
    struct bot_queue_stats s = stats("b", now);
    assert_int_equal(s.dead, 0);
    assert_int_equal(s.failed_total, 4);
    assert_int_equal(s.retried_total, 2);
    buf_release(&cl.payload);
    buf_release(&out);
}

static int keep_two(void *ud, const char *id) { return !strcmp(id, "2"); }

static void test_lease_expiry(void **st)
{
    struct queue_claim cl;
    struct eng_ctx c;
    assert_int_equal(add("l", 0, NULL, NULL), 1);
    assert_int_equal(add("l", 0, NULL, NULL), 1);
    assert_int_equal(claim("l", 100, &cl), 1); /* lease to 1100 */
    buf_release(&cl.payload);
    assert_int_equal(claim("l", 100, &cl), 1);
    buf_release(&cl.payload);
    assert_int_equal(queue__expire(at(&c, "l", 1099), "l", 100, NULL, NULL), 0);
    eng_unlock(&c);
    /* job 2 is still worked on here: renewed; job 1 goes back */
    assert_int_equal(queue__expire(at(&c, "l", 1100), "l", 100, keep_two, NULL), 1);
    eng_unlock(&c);
    struct bot_queue_stats s = stats("l", 1100);
    assert_int_equal(s.waiting, 1);
    assert_int_equal(s.active, 1);
    /* the first worker comes back late: its attempt is over */
    assert_int_equal(claim("l", 1200, &cl), 1);
    assert_string_equal(cl.id, "1");
    assert_int_equal(cl.attempts, 2); /* the expired attempt counted */
    assert_string_equal(cl.last_error, "lease expired");
    buf_release(&cl.payload);
    assert_int_equal(queue__done(at(&c, "l", 1300), "l", "1", NULL, 1), 0);
    assert_int_equal(queue__renew(&c, "l", "1", 5000), 1);
    assert_int_equal(queue__later(&c, "l", "1", 100, "pending"), 1); /* not counted */
    eng_unlock(&c);
    assert_int_equal(claim("l", 1400, &cl), 1);
    assert_string_equal(cl.id, "1");
    assert_int_equal(cl.attempts, 2);
    assert_string_equal(cl.last_error, "pending");
    buf_release(&cl.payload);
    /* out of attempts when the lease runs out: dead */
    assert_int_equal(claim("l", 1400, &cl), 0);
    assert_int_equal(queue__fail(at(&c, "l", 1500), "l", "1", "x", 0, 0, 0), QUEUE_FAIL_RETRY);
    eng_unlock(&c);
    assert_int_equal(claim("l", 1500, &cl), 1);
    assert_int_equal(cl.attempts, 3);
    buf_release(&cl.payload);
    assert_int_equal(queue__expire(at(&c, "l", 10000), "l", 100, keep_two, NULL), 1);
    eng_unlock(&c);
    assert_int_equal(stats("l", 10000).dead, 1);
}

static void test_completed_bounded_and_pruned(void **st)
{
    struct queue_claim cl;
    struct eng_ctx c;
    for (int i = 0; i < 5; i++) {
        assert_int_equal(add("p", i, i == 0 ? "first" : NULL, NULL), 1);
        assert_int_equal(claim("p", 100 + i, &cl), 1);
        buf_release(&cl.payload);
        assert_int_equal(queue__done(at(&c, "p", 200 + i), "p", cl.id, NULL, 0), 1);
        eng_unlock(&c);
    }
    assert_int_equal(stats("p", 300).completed, 3); /* queue-keep-completed */
    assert_int_equal(eng_exists(at(&c, "p", 300), "job:{q:p}:1", 11), 0);
    struct eng_str v;
    assert_int_equal(eng_hget(&c, "queue:{q:p}:idem", 16, "first", 5, &v), ERR_NOKEY);
    assert_int_equal(queue__prune(&c, "p", 204, 100), 2); /* finished at 202, 203 */
    eng_unlock(&c);
    assert_int_equal(stats("p", 300).completed, 1);
    assert_int_equal(add("p", 400, "first", NULL), 1); /* its key went with it */
}

static void test_delay_and_names(void **st)
{
    struct eng_ctx c;
    struct queue_claim cl;
    assert_int_equal(queue__add(at(&c, "d", 0), "d", "{}", 2, NULL, 500, 7, NULL), 1);
    eng_unlock(&c);
    assert_int_equal(stats("d", 0).delayed, 1);
    assert_int_equal(claim("d", 499, &cl), 0);
    assert_int_equal(claim("d", 500, &cl), 1);
    assert_int_equal(cl.max_attempts, 7);
    buf_release(&cl.payload);
    assert_true(queue__name_ok("withdrawal", 10));
    assert_false(queue__name_ok("a b", 3));
    assert_false(queue__name_ok("", 0));
    assert_false(queue__name_ok("{x}", 3));
    assert_true(queue__add(at(&c, "d", 0), "d", "{}", 2, NULL, 0, 0, NULL) == 1);
    eng_unlock(&c);
}

/* The pools' batches: claim several under one lock (oldest first, leases
 * set, a job whose hash was deleted by hand skipped), then finish them
 * together: a stale token and a job not active are refused, the others are
 * done, pushed newest first, counted once, and trimmed to keep-completed. */
static void test_batches(void **st)
{
    struct eng_ctx c;
    for (int i = 0; i < 6; i++)
        assert_int_equal(add("bt", i, i == 0 ? "k0" : NULL, NULL), 1);
    assert_int_equal(eng_del(at(&c, "bt", 10), "job:{q:bt}:2", 12), 1); /* deleted by hand */
    eng_unlock(&c);
    struct queue_claim cl[8];
    for (int i = 0; i < 8; i++)
        buf_init(&cl[i].payload);
    assert_int_equal(queue__claim_batch(at(&c, "bt", 100), "bt", 1000, cl, 4), 3); /* 1, (2 gone), 3, 4 */
    eng_unlock(&c);
    assert_string_equal(cl[0].id, "1");
    assert_string_equal(cl[1].id, "3");
    assert_string_equal(cl[2].id, "4");
    assert_string_equal(cl[0].idem, "k0");
    assert_string_equal(cl[2].payload.p, "{\"n\":1}");
    assert_int_equal(cl[1].attempts, 1);
    assert_int_equal(stats("bt", 100).active, 3);
    assert_int_equal(stats("bt", 100).waiting, 2);
    double score;
    assert_int_equal(eng_zscore(at(&c, "bt", 100), "queue:{q:bt}:active", 19, "3", 1, &score), 0);
    eng_unlock(&c);
    assert_true(score == 1100.0);
    struct queue_fin fin[] = {{.id = "1", .result = "{\"ok\":1}", .token = 1},
                              {.id = "3", .token = 2}, /* another attempt's token */
                              {.id = "5"},             /* waiting, not active */
                              {.id = "4", .token = 1}};
    assert_int_equal(queue__done_batch(at(&c, "bt", 200), "bt", fin, 4), 2);
    eng_unlock(&c);
    assert_int_equal(fin[0].rc, 1);
    assert_int_equal(fin[1].rc, 0);
    assert_int_equal(fin[2].rc, 0);
    assert_int_equal(fin[3].rc, 1);
    struct bot_queue_stats s = stats("bt", 200);
    assert_int_equal(s.active, 1);
    assert_int_equal(s.completed, 2);
    assert_int_equal(s.completed_total, 2);
    struct eng_str v;
    assert_int_equal(eng_list_index(at(&c, "bt", 200), "queue:{q:bt}:completed", 22, 0, &v), 0);
    assert_int_equal(v.n, 1);
    assert_memory_equal(v.p, "4", 1); /* newest first */
    assert_int_equal(eng_hget(&c, "job:{q:bt}:1", 12, "result", 6, &v), 0);
    assert_memory_equal(v.p, "{\"ok\":1}", 8);
    assert_int_equal(eng_hget(&c, "job:{q:bt}:1", 12, "state", 5, &v), 0);
    assert_memory_equal(v.p, "done", 4);
    eng_unlock(&c);
    /* the rest, past keep-completed (3): the oldest done go, hashes and all */
    assert_int_equal(queue__claim_batch(at(&c, "bt", 300), "bt", 1000, cl + 3, 8), 2);
    eng_unlock(&c);
    struct queue_fin rest[] = {{.id = "3"}, {.id = cl[3].id}, {.id = cl[4].id}};
    assert_int_equal(queue__done_batch(at(&c, "bt", 400), "bt", rest, 3), 3);
    eng_unlock(&c);
    s = stats("bt", 400);
    assert_int_equal(s.completed, 3);
    assert_int_equal(s.completed_total, 5);
    assert_int_equal(s.active + s.waiting, 0);
    assert_int_equal(eng_exists(at(&c, "bt", 400), "job:{q:bt}:1", 12), 0);
    assert_int_equal(eng_hget(&c, "queue:{q:bt}:idem", 17, "k0", 2, &v), ERR_NOKEY);
    assert_int_equal(eng_exists(&c, "job:{q:bt}:4", 12), 0);
    assert_int_equal(eng_exists(&c, "job:{q:bt}:3", 12), 1);
    eng_unlock(&c);
    for (int i = 0; i < 8; i++)
        buf_release(&cl[i].payload);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_idem_claim_done),
        cmocka_unit_test(test_backoff_dead_redrive),
        cmocka_unit_test(test_lease_expiry),
        cmocka_unit_test(test_completed_bounded_and_pruned),
        cmocka_unit_test(test_delay_and_names),
        cmocka_unit_test(test_batches),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
