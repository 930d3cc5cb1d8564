/* test_ledger.c: the ledger against an engine, no loop: credits and debits
 * with unique references, holds refused on a short balance, settle and
 * release closing a hold once, history newest first, and the invariant
 * (balance = sum of the ledger, never below zero) after every step. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "engine.h"
#include "hash.h"
#include "keys.h"
#include "ledger.h"

static struct eng *E;

static int setup(void **st)
{
    struct eng_config cfg = {.nshards = 4, .ndb = 1, .maxmemory_samples = 5};
    E = eng_new(&cfg);
    return E ? 0 : -1;
}

static int teardown(void **st)
{
    eng_free(E);
    return 0;
}

static void lock_user(struct eng_ctx *c, int64_t uid)
{
    char tag[32];
    key_user_tag(tag, sizeof tag, uid);
    struct eng_str k = {tag, strlen(tag)};
    eng_ctx_init(c, E, 0);
    eng_lock_keys(c, &k, 1);
}

static void test_post_and_dup(void **st)
{
    struct eng_ctx c;
    lock_user(&c, 1);
    assert_int_equal(bot_ledger_balance(&c, 1), 0);
    assert_int_equal(bot_ledger_post(&c, 1, 1000, "deposit", "pay:a"), LEDGER_OK);
    assert_int_equal(bot_ledger_post(&c, 1, 1000, "deposit", "pay:a"), LEDGER_DUP);
    assert_int_equal(bot_ledger_balance(&c, 1), 1000);
    assert_int_equal(bot_ledger_post(&c, 1, -1500, "adjust", "adj:1"), LEDGER_SHORT);
    assert_int_equal(bot_ledger_post(&c, 1, -400, "adjust", "adj:1"), LEDGER_OK);
    assert_int_equal(bot_ledger_balance(&c, 1), 600);
    assert_true(bot_ledger_post(&c, 1, 5, "deposit", "") < 0); /* a reference is required */
    assert_true(bot_ledger_check(&c, 1));
    eng_unlock(&c);
}

static void test_hold_settle_release(void **st)
{
    struct eng_ctx c;
    lock_user(&c, 2);
    assert_int_equal(bot_ledger_post(&c, 2, 500, "deposit", "pay:b"), LEDGER_OK);
    assert_int_equal(bot_ledger_hold(&c, 2, 600, "wd:1"), LEDGER_SHORT);
    assert_int_equal(bot_ledger_held(&c, 2), 0);
    assert_int_equal(bot_ledger_hold(&c, 2, 300, "wd:1"), LEDGER_OK);
    assert_int_equal(bot_ledger_hold(&c, 2, 300, "wd:1"), LEDGER_DUP);
    assert_int_equal(bot_ledger_balance(&c, 2), 200);
    assert_int_equal(bot_ledger_held(&c, 2), 300);
    assert_int_equal(bot_ledger_hold(&c, 2, 201, "wd:2"), LEDGER_SHORT);
    assert_int_equal(bot_ledger_hold(&c, 2, 200, "wd:2"), LEDGER_OK);
    assert_int_equal(bot_ledger_balance(&c, 2), 0);
    /* settle: the money left; a second close of the same hold does nothing */
    assert_int_equal(bot_ledger_settle(&c, 2, "wd:1"), LEDGER_OK);
    assert_int_equal(bot_ledger_settle(&c, 2, "wd:1"), LEDGER_NOHOLD);
    assert_int_equal(bot_ledger_release(&c, 2, "wd:1"), LEDGER_NOHOLD);
    assert_int_equal(bot_ledger_balance(&c, 2), 0);
    assert_int_equal(bot_ledger_held(&c, 2), 200);
    /* release: it comes back */
    assert_int_equal(bot_ledger_release(&c, 2, "wd:2"), LEDGER_OK);
    assert_int_equal(bot_ledger_balance(&c, 2), 200);
    assert_int_equal(bot_ledger_held(&c, 2), 0);
    assert_int_equal(bot_ledger_release(&c, 2, "nope"), LEDGER_NOHOLD);
    assert_true(bot_ledger_check(&c, 2));

    struct bot_ledger_entry h[10];
    int n = bot_ledger_history(&c, 2, h, 10);
    assert_int_equal(n, 5);
    assert_string_equal(h[0].kind, "release");
    assert_int_equal(h[0].amount, 200);
    assert_int_equal(h[0].balance, 200);
    assert_string_equal(h[1].kind, "settle");
    assert_int_equal(h[1].amount, 0);
    assert_string_equal(h[4].kind, "deposit");
    assert_string_equal(h[4].ref, "pay:b");
    assert_int_equal(bot_ledger_history(&c, 2, h, 2), 2);
    eng_unlock(&c);
}

static void test_check_catches_tampering(void **st)
{
    struct eng_ctx c;
    lock_user(&c, 3);
    assert_int_equal(bot_ledger_post(&c, 3, 70, "deposit", "pay:c"), LEDGER_OK);
    assert_true(bot_ledger_check(&c, 3));
    char key[32];
    key_user(key, sizeof key, "user", 3);
    int64_t v;
    eng_hincrby(&c, key, strlen(key), "balance", 7, 5, &v); /* a balance moved without an entry */
    assert_false(bot_ledger_check(&c, 3));
    eng_unlock(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_post_and_dup),
        cmocka_unit_test(test_hold_settle_release),
        cmocka_unit_test(test_check_catches_tampering),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
