/* test_dict.c: engine/dict.c, the intrusive hash table.  Covers add, find,
 * unlink and replace while an incremental rehash is in progress in both
 * directions (growth from dict_add, shrinking from dict_resize_if_needed), the
 * scan guarantee (an element present for a whole scan is returned at least
 * once, even when the table grows or shrinks between calls), dict_random,
 * dict_foreach unlinking the node it is given, and a random test against a
 * reference model that prints and accepts SEED=. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/alloc.h"
#include "dict.h"

struct item {
    struct dict_node node;
    uint64_t key;
    int seen;    /* times a scan or foreach returned it */
    int present; /* linked in the table (the model's view) */
};

static uint64_t mix(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ULL;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

static uint64_t item_hash(const struct dict_node *n) { return mix(((const struct item *)n)->key); }
static int item_eq(const struct dict_node *n, const void *key, size_t len)
{
    assert_int_equal(len, sizeof(uint64_t));
    return ((const struct item *)n)->key == *(const uint64_t *)key;
}
static const struct dict_type item_type = {item_hash, item_eq};

/* A hash with only 8 distinct values: long chains, so that chain walking,
 * unlinking from the middle of a chain and random picks inside a chain run. */
static uint64_t bad_hash_of(uint64_t key) { return mix(key % 8); }
static uint64_t bad_hash(const struct dict_node *n) { return bad_hash_of(((const struct item *)n)->key); }
static const struct dict_type bad_type = {bad_hash, item_eq};

static struct item *items_new(size_t n)
{
    struct item *it = calloc(n, sizeof *it);
    assert_non_null(it);
    for (size_t i = 0; i < n; i++)
        it[i].key = i * 7 + 1;
    return it;
}

static uint64_t hash_of(const struct dict *d, uint64_t key)
{
    return d->type == &bad_type ? bad_hash_of(key) : mix(key);
}

static void add(struct dict *d, struct item *it)
{
    assert_false(it->present);
    dict_add(d, &it->node, hash_of(d, it->key));
    it->present = 1;
}

static struct item *find(struct dict *d, uint64_t key)
{
    return (struct item *)dict_find(d, &key, sizeof key, hash_of(d, key));
}

static void unlink_item(struct dict *d, struct item *it)
{
    struct dict_node *n = dict_unlink(d, &it->key, sizeof it->key, hash_of(d, it->key));
    assert_ptr_equal(n, &it->node);
    it->present = 0;
}

/* Every present item is found, every absent one is not, and the count agrees. */
static void check_model(struct dict *d, struct item *it, size_t n)
{
    uint64_t want = 0;
    for (size_t i = 0; i < n; i++) {
        if (it[i].present) {
            want++;
            assert_ptr_equal(find(d, it[i].key), &it[i]);
        } else {
            assert_null(find(d, it[i].key));
        }
    }
    assert_int_equal(dict_size(d), want);
}

/* Adds until dict_add starts a growth rehash; returns how many were added. */
static size_t add_until_rehashing(struct dict *d, struct item *it, size_t from, size_t n)
{
    for (size_t i = from; i < n; i++) {
        add(d, &it[i]);
        if (dict_is_rehashing(d))
            return i + 1;
    }
    fail_msg("no rehash started");
    return n;
}

/* Adds until a growth rehash to at least min_size is under way, then moves
 * buckets until both tables hold about half the nodes. */
static size_t mid_rehash(struct dict *d, struct item *it, size_t from, size_t n, uint64_t min_size)
{
    size_t i = from;
    for (;;) {
        i = add_until_rehashing(d, it, i, n);
        if (d->size[0] >= min_size)
            break;
        while (dict_rehash_step(d, 100))
            ;
    }
    while (d->used[0] > d->used[1])
        dict_rehash_step(d, 1);
    assert_true(dict_is_rehashing(d));
    assert_true(d->used[0] > 0 && d->used[1] > 0);
    return i;
}

static void test_empty(void **state)
{
    struct dict d;
    dict_init(&d, &item_type);
    uint64_t key = 1;
    assert_int_equal(dict_size(&d), 0);
    assert_null(dict_find(&d, &key, sizeof key, mix(key)));
    assert_null(dict_unlink(&d, &key, sizeof key, mix(key)));
    assert_null(dict_random(&d, 42));
    assert_int_equal(dict_scan(&d, 0, NULL, NULL), 0);
    assert_int_equal(dict_rehash_step(&d, 10), 0);
    dict_resize_if_needed(&d);
    assert_int_equal(dict_table_bytes(&d), 0);
    dict_release(&d, NULL, NULL);
}

static void test_add_find_unlink(void **state)
{
    int64_t base = alloc_used();
    struct dict d;
    dict_init(&d, &item_type);
    struct item *it = items_new(3);
    add(&d, &it[0]);
    add(&d, &it[1]);
    check_model(&d, it, 3);
    unlink_item(&d, &it[0]);
    assert_null(dict_unlink(&d, &it[0].key, sizeof(uint64_t), mix(it[0].key)));
    check_model(&d, it, 3);
    add(&d, &it[0]);
    add(&d, &it[2]);
    check_model(&d, it, 3);
    dict_release(&d, NULL, NULL);
    assert_int_equal(alloc_used(), base); /* bucket arrays are accounted */
    free(it);
}

/* Growth: the table doubles at load 1 and moves its buckets a step at a time;
 * while both tables hold nodes every operation must look in both. */
static void test_grow_rehash(void **state)
{
    enum { N = 2000 };
    struct dict d;
    dict_init(&d, &item_type);
    struct item *it = items_new(N);
    size_t n = add_until_rehashing(&d, it, 0, N);
    int rehashes = 0;
    while (n < N) {
        assert_true(dict_is_rehashing(&d));
        /* Both tables are in use now: check everything, unlink from either. */
        check_model(&d, it, N);
        if (n % 3 == 0)
            unlink_item(&d, &it[n / 2]);
        add(&d, &it[n++]);
        if (!dict_is_rehashing(&d)) {
            rehashes++;
            check_model(&d, it, N);
            while (n < N && !dict_is_rehashing(&d))
                add(&d, &it[n++]);
        }
    }
    assert_true(rehashes >= 3);
    check_model(&d, it, N);
    while (dict_rehash_step(&d, 100))
        ;
    check_model(&d, it, N);
    assert_true(d.size[0] >= dict_size(&d));
    dict_release(&d, NULL, NULL);
    free(it);
}

/* Shrink: dict_resize_if_needed starts a rehash into a smaller table once the
 * load falls under 1/8; adds during it go to the new table. */
static void test_shrink_rehash(void **state)
{
    enum { N = 1024 };
    struct dict d;
    dict_init(&d, &item_type);
    struct item *it = items_new(N + 64);
    for (size_t i = 0; i < N; i++)
        add(&d, &it[i]);
    while (dict_rehash_step(&d, 100))
        ;
    uint64_t big = d.size[0];
    for (size_t i = 0; i < N - 40; i++)
        unlink_item(&d, &it[i]);
    dict_resize_if_needed(&d);
    assert_true(dict_is_rehashing(&d));
    assert_true(d.size[1] < d.size[0]);
    size_t next = N;
    for (int round = 0; dict_is_rehashing(&d); round++) {
        check_model(&d, it, N + 64);
        /* Mix adds (into the small table) and unlinks (from either). */
        if (round % 2 == 0 && next < N + 64)
            add(&d, &it[next++]);
        else
            unlink_item(&d, &it[N - 40 + round]);
        /* A second resize during a rehash is a no-op. */
        dict_resize_if_needed(&d);
    }
    check_model(&d, it, N + 64);
    assert_true(d.size[0] < big);
    assert_true(d.size[0] >= 4);

    /* Down to empty: the table is freed, and the dict is usable again. */
    for (size_t i = 0; i < N + 64; i++)
        if (it[i].present)
            unlink_item(&d, &it[i]);
    while (dict_rehash_step(&d, 100))
        ;
    dict_resize_if_needed(&d);
    assert_int_equal(dict_table_bytes(&d), 0);
    add(&d, &it[0]);
    check_model(&d, it, N + 64);
    dict_release(&d, NULL, NULL);
    free(it);
}

/* A second node with the same key takes the first one's place, whichever
 * table holds it; -1 when the old node is not linked. */
static void test_replace(void **state)
{
    enum { N = 600 };
    struct dict d;
    dict_init(&d, &item_type);
    struct item *it = items_new(N);
    struct item *copy = items_new(N);
    size_t n = mid_rehash(&d, it, 0, N, 256);
    d.pauserehash++; /* freeze the rehash: finds take no step now */
    int in0 = 0, in1 = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t h = mix(it[i].key);
        int t = 1;
        for (struct dict_node *p = d.table[0][h & (d.size[0] - 1)]; p; p = p->next)
            if (p == &it[i].node)
                t = 0;
        in0 += t == 0, in1 += t == 1;
        copy[i].key = it[i].key;
        assert_int_equal(dict_replace(&d, &it[i].node, &copy[i].node, h), 0);
        copy[i].present = 1;
        assert_ptr_equal(find(&d, it[i].key), &copy[i]);
    }
    assert_true(in0 > 0 && in1 > 0);
    /* it[0] is no longer linked. */
    assert_int_equal(dict_replace(&d, &it[0].node, &copy[0].node, mix(it[0].key)), -1);
    check_model(&d, copy, n);
    d.pauserehash--;
    while (dict_rehash_step(&d, 100))
        ;
    check_model(&d, copy, n);
    dict_release(&d, NULL, NULL);
    free(it);
    free(copy);
}

static void count_seen(void *ud, struct dict_node *n)
{
    (void)ud;
    ((struct item *)n)->seen++;
}

static void reset_seen(struct item *it, size_t n)
{
    for (size_t i = 0; i < n; i++)
        it[i].seen = 0;
}

/* No change during the scan: each element exactly once, in a stable table and
 * in one frozen in the middle of a rehash. */
static void test_scan_static(void **state)
{
    enum { N = 700 };
    struct dict d;
    dict_init(&d, &item_type);
    struct item *it = items_new(N);
    for (size_t i = 0; i < 500; i++)
        add(&d, &it[i]);
    while (dict_rehash_step(&d, 100))
        ;
    for (int pass = 0; pass < 2; pass++) {
        reset_seen(it, N);
        uint64_t cur = 0;
        int calls = 0;
        do {
            cur = dict_scan(&d, cur, count_seen, NULL);
            calls++;
        } while (cur);
        assert_true(calls > 1);
        for (size_t i = 0; i < N; i++)
            assert_int_equal(it[i].seen, it[i].present ? 1 : 0);
        if (pass == 0) { /* now frozen in a growth rehash */
            add_until_rehashing(&d, it, 500, N);
            assert_true(dict_is_rehashing(&d));
        }
    }
    dict_release(&d, NULL, NULL);
    free(it);
}

/* The scan guarantee under change.  `stable` items are present for the whole
 * scan and must be returned at least once; others come and go between calls.
 * grow: the table doubles several times during the scan; otherwise it shrinks
 * (dict_resize_if_needed) several times. */
static void scan_under_change(const struct dict_type *type, int grow, unsigned seed)
{
    enum { STABLE = 100, N = 6000 };
    struct dict d;
    dict_init(&d, type);
    struct item *it = items_new(N);
    srand(seed);
    for (size_t i = 0; i < STABLE; i++)
        add(&d, &it[i]);
    size_t churn_hi = STABLE;
    if (!grow) {
        for (; churn_hi < N; churn_hi++)
            add(&d, &it[churn_hi]);
        while (dict_rehash_step(&d, 100))
            ;
    }
    reset_seen(it, N);
    uint64_t cur = 0, max_size = 0, min_size = UINT64_MAX;
    int saw_rehash = 0, calls = 0;
    do {
        cur = dict_scan(&d, cur, count_seen, NULL);
        calls++;
        saw_rehash |= dict_is_rehashing(&d);
        if (grow) {
            /* Add a burst, and drop a few of the churn items. */
            for (int k = 0; k < 40 && churn_hi < N; k++)
                add(&d, &it[churn_hi++]);
            for (int k = 0; k < 5; k++) {
                size_t j = STABLE + (size_t)rand() % (churn_hi - STABLE + 1);
                if (j < churn_hi && it[j].present)
                    unlink_item(&d, &it[j]);
            }
        } else {
            /* Remove a burst of churn items, add back a few, then let the
             * table shrink as the cron does. */
            for (int k = 0; k < 400; k++) {
                size_t j = STABLE + (size_t)rand() % (N - STABLE);
                if (it[j].present)
                    unlink_item(&d, &it[j]);
            }
            for (int k = 0; k < 1; k++) {
                size_t j = STABLE + (size_t)rand() % (N - STABLE);
                if (!it[j].present)
                    add(&d, &it[j]);
            }
            dict_resize_if_needed(&d);
            dict_rehash_step(&d, 1 + rand() % 40); /* as the cron does, in varied amounts */
        }
        uint64_t sz = d.size[0] > d.size[1] ? d.size[0] : d.size[1];
        max_size = sz > max_size ? sz : max_size;
        min_size = sz < min_size ? sz : min_size;
    } while (cur);
    for (size_t i = 0; i < STABLE; i++)
        if (it[i].seen < 1)
            fail_msg("seed %u: stable item %zu (key %" PRIu64 ") missed by a %s scan after %d calls", seed, i,
                     it[i].key, grow ? "growing" : "shrinking", calls);
    if (getenv("DICT_DEBUG"))
        printf("seed %u grow %d calls %d sizes %" PRIu64 "..%" PRIu64 "\n", seed, grow, calls, min_size, max_size);
    assert_true(saw_rehash);
    if (grow)
        assert_true(max_size >= 16 * min_size);
    else
        assert_true(min_size * 16 <= max_size);
    dict_release(&d, NULL, NULL);
    free(it);
}

static void test_scan_grow(void **state)
{
    for (unsigned s = 1; s <= 20; s++)
        scan_under_change(&item_type, 1, s);
    scan_under_change(&bad_type, 1, 7);
}

static void test_scan_shrink(void **state)
{
    for (unsigned s = 1; s <= 20; s++)
        scan_under_change(&item_type, 0, s);
    scan_under_change(&bad_type, 0, 7);
}

static void test_random(void **state)
{
    enum { N = 10 };
    struct dict d;
    dict_init(&d, &item_type);
    struct item *it = items_new(N + 1);
    for (size_t i = 0; i < N; i++)
        add(&d, &it[i]);
    uint64_t rnd = 12345;
    for (int i = 0; i < 5000; i++) {
        rnd = mix(rnd);
        struct item *x = (struct item *)dict_random(&d, rnd);
        assert_non_null(x);
        assert_true(x >= it && x < it + N);
        assert_true(x->present);
        x->seen++;
    }
    for (size_t i = 0; i < N; i++) /* every member can come out */
        assert_true(it[i].seen > 0);
    dict_release(&d, NULL, NULL);
    free(it);

    /* During a rehash, with chains (bad hash), and after unlinks. */
    enum { M = 300 };
    dict_init(&d, &bad_type);
    it = items_new(M);
    size_t n = mid_rehash(&d, it, 0, M, 64);
    d.pauserehash++; /* keep the rehash in progress */
    for (size_t i = 0; i < n; i += 3)
        unlink_item(&d, &it[i]);
    for (int i = 0; i < 2000; i++) {
        rnd = mix(rnd);
        struct item *x = (struct item *)dict_random(&d, rnd);
        assert_non_null(x);
        assert_true(x >= it && x < it + M && x->present);
    }
    assert_true(dict_is_rehashing(&d));
    d.pauserehash--;
    dict_release(&d, NULL, NULL);
    free(it);
}

struct unlink_walk {
    struct dict *d;
    int visited, stop_at;
};

/* Unlinks every item with an even key: the node it is given, and only that. */
static int unlink_even(void *ud, struct dict_node *n)
{
    struct unlink_walk *w = ud;
    struct item *x = (struct item *)n;
    w->visited++;
    x->seen++;
    if (x->key % 2 == 0)
        unlink_item(w->d, x);
    return w->stop_at && w->visited == w->stop_at ? 77 : 0;
}

static void test_foreach_unlink(void **state)
{
    enum { N = 1000 };
    const struct dict_type *types[2] = {&item_type, &bad_type};
    for (int ti = 0; ti < 2; ti++) {
        struct dict d;
        dict_init(&d, types[ti]);
        struct item *it = items_new(N);
        /* Stop in the middle of a growth rehash: both tables hold nodes. */
        size_t n = mid_rehash(&d, it, 0, N, 256);
        int was_rehashing = dict_is_rehashing(&d);
        struct unlink_walk w = {&d, 0, 0};
        assert_int_equal(dict_foreach(&d, unlink_even, &w), 0);
        assert_int_equal(w.visited, (int)n);
        for (size_t i = 0; i < n; i++)
            assert_int_equal(it[i].seen, 1);
        assert_int_equal(d.pauserehash, 0);
        assert_int_equal(dict_is_rehashing(&d), was_rehashing); /* no step while walking */
        check_model(&d, it, N);

        /* An early stop returns fn's value. */
        reset_seen(it, N);
        w = (struct unlink_walk){&d, 0, 5};
        assert_int_equal(dict_foreach(&d, unlink_even, &w), 77);
        assert_int_equal(w.visited, 5);
        assert_int_equal(d.pauserehash, 0);
        check_model(&d, it, N);
        dict_release(&d, NULL, NULL);
        free(it);
    }
}

static int freed_count;
static void count_free(struct dict_node *n, void *ud)
{
    (void)ud;
    ((struct item *)n)->present = -1;
    freed_count++;
}

static void test_release_frees_both_tables(void **state)
{
    enum { N = 300 };
    int64_t base = alloc_used();
    struct dict d;
    dict_init(&d, &item_type);
    struct item *it = items_new(N);
    size_t n = mid_rehash(&d, it, 0, N, 128);
    freed_count = 0;
    dict_release(&d, count_free, NULL);
    assert_int_equal(freed_count, (int)n);
    assert_int_equal(dict_size(&d), 0);
    assert_false(dict_is_rehashing(&d));
    assert_int_equal(alloc_used(), base);
    free(it);
}

static unsigned env_seed(void)
{
    const char *s = getenv("SEED");
    unsigned seed = s && *s ? (unsigned)strtoul(s, NULL, 10) : (unsigned)time(NULL);
    printf("test_dict: SEED=%u\n", seed);
    fflush(stdout);
    return seed;
}

/* Random operations against a model; the table's state is checked after each
 * batch.  Rerun a failure with SEED=<printed value>. */
static void test_random_ops(void **state)
{
    enum { N = 3000, OPS = 60000 };
    unsigned seed = env_seed();
    srand(seed);
    struct dict d;
    dict_init(&d, rand() % 2 ? &item_type : &bad_type);
    struct item *it = items_new(N);
    uint64_t cur = 0;
    int scanning = 0;
    reset_seen(it, N);
    for (int op = 0; op < OPS; op++) {
        size_t i = (size_t)rand() % N;
        int r = rand() % 100;
        /* Phases alternate between mostly-adding and mostly-removing so the
         * table both grows and shrinks. */
        int adding = (op / 5000) % 2 == 0;
        if (r < (adding ? 50 : 15)) {
            if (!it[i].present)
                add(&d, &it[i]);
        } else if (r < 70) {
            if (it[i].present)
                unlink_item(&d, &it[i]);
        } else if (r < 80) {
            struct item *x = find(&d, it[i].key);
            assert_ptr_equal(x, it[i].present ? &it[i] : NULL);
        } else if (r < 85) {
            dict_resize_if_needed(&d);
        } else if (r < 88) {
            dict_rehash_step(&d, 1 + rand() % 4);
        } else if (r < 90) {
            struct item *x = (struct item *)dict_random(&d, (uint64_t)rand());
            assert_true(x ? x->present == 1 : dict_size(&d) == 0);
        } else {
            /* One scan at a time: items present since it began (seen reset
             * at the start, present throughout) must come out by its end. */
            if (!scanning) {
                scanning = 1;
                for (size_t j = 0; j < N; j++)
                    it[j].seen = it[j].present ? 0 : -1000000;
            }
            cur = dict_scan(&d, cur, count_seen, NULL);
            if (cur == 0) {
                for (size_t j = 0; j < N; j++)
                    if (it[j].seen == 0)
                        fail_msg("SEED=%u op %d: item %zu present throughout a scan was missed", seed, op, j);
                scanning = 0;
            }
        }
        /* An item that leaves during a scan is no longer owed by it. */
        if (scanning && !it[i].present)
            it[i].seen = -1000000;
        if (op % 1000 == 0)
            check_model(&d, it, N);
    }
    check_model(&d, it, N);
    dict_release(&d, NULL, NULL);
    free(it);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_add_find_unlink),
        cmocka_unit_test(test_grow_rehash),
        cmocka_unit_test(test_shrink_rehash),
        cmocka_unit_test(test_replace),
        cmocka_unit_test(test_scan_static),
        cmocka_unit_test(test_scan_grow),
        cmocka_unit_test(test_scan_shrink),
        cmocka_unit_test(test_random),
        cmocka_unit_test(test_foreach_unlink),
        cmocka_unit_test(test_release_frees_both_tables),
        cmocka_unit_test(test_random_ops),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
