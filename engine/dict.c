/* dict.c: see dict.h.  Growth doubles at load factor 1; shrinking happens
 * below 1/8 so that a table hovering around a boundary does not flip-flop. */
#include "dict.h"

#include <string.h>

#include "base/alloc.h"

#define DICT_MIN_SIZE 4

void dict_init(struct dict *d, const struct dict_type *type)
{
    memset(d, 0, sizeof *d);
    d->type = type;
    d->rehashidx = -1;
}

static void free_table(struct dict *d, int t, void (*free_node)(struct dict_node *, void *), void *ud)
{
    if (free_node) {
        for (uint64_t i = 0; i < d->size[t]; i++) {
            struct dict_node *n = d->table[t][i];
            while (n) {
                struct dict_node *next = n->next;
                free_node(n, ud);
                n = next;
            }
        }
    }
    xfree(d->table[t]);
    d->table[t] = NULL;
    d->size[t] = d->used[t] = 0;
}

void dict_release(struct dict *d, void (*free_node)(struct dict_node *n, void *ud), void *ud)
{
    free_table(d, 0, free_node, ud);
    free_table(d, 1, free_node, ud);
    d->rehashidx = -1;
}

static void start_resize(struct dict *d, uint64_t want)
{
    uint64_t size = DICT_MIN_SIZE;
    while (size < want)
        size <<= 1;
    if (dict_is_rehashing(d) || size == d->size[0])
        return;
    struct dict_node **t = xcalloc(size, sizeof *t);
    if (!d->table[0]) {
        d->table[0] = t, d->size[0] = size;
        return;
    }
    d->table[1] = t, d->size[1] = size, d->used[1] = 0;
    d->rehashidx = 0;
}

int dict_rehash_step(struct dict *d, int n)
{
    if (!dict_is_rehashing(d))
        return 0;
    int empty_visits = n * 10; /* bound the work on a sparse table, as Redis does */
    while (n-- && d->used[0]) {
        while (!d->table[0][d->rehashidx]) {
            d->rehashidx++;
            if (--empty_visits == 0)
                return 1;
        }
        struct dict_node *e = d->table[0][d->rehashidx];
        while (e) {
            struct dict_node *next = e->next;
            uint64_t idx = d->type->node_hash(e) & (d->size[1] - 1);
            e->next = d->table[1][idx];
            d->table[1][idx] = e;
            d->used[0]--, d->used[1]++;
            e = next;
        }
        d->table[0][d->rehashidx++] = NULL;
    }
    if (d->used[0] == 0) {
        xfree(d->table[0]);
        d->table[0] = d->table[1], d->size[0] = d->size[1], d->used[0] = d->used[1];
        d->table[1] = NULL, d->size[1] = d->used[1] = 0;
        d->rehashidx = -1;
        return 0;
    }
    return 1;
}

static inline void step(struct dict *d)
{
    if (d->rehashidx != -1 && d->pauserehash == 0)
        dict_rehash_step(d, 1);
}

struct dict_node *dict_find(struct dict *d, const void *key, size_t len, uint64_t hash)
{
    if (dict_size(d) == 0)
        return NULL;
    step(d);
    for (int t = 0; t <= 1; t++) {
        if (!d->size[t])
            break;
        for (struct dict_node *n = d->table[t][hash & (d->size[t] - 1)]; n; n = n->next)
            if (d->type->node_eq(n, key, len))
                return n;
        if (!dict_is_rehashing(d))
            break;
    }
    return NULL;
}

void dict_add(struct dict *d, struct dict_node *n, uint64_t hash)
{
    if (!d->table[0])
        start_resize(d, DICT_MIN_SIZE);
    else if (!dict_is_rehashing(d) && d->used[0] >= d->size[0])
        start_resize(d, d->used[0] * 2);
    step(d);
    int t = dict_is_rehashing(d) ? 1 : 0;
    struct dict_node **b = &d->table[t][hash & (d->size[t] - 1)];
    n->next = *b;
    *b = n;
    d->used[t]++;
}

static struct dict_node **find_link(struct dict *d, const struct dict_node *target, const void *key,
                                    size_t len, uint64_t hash, int *table)
{
    for (int t = 0; t <= 1; t++) {
        if (!d->size[t])
            break;
        for (struct dict_node **pp = &d->table[t][hash & (d->size[t] - 1)]; *pp; pp = &(*pp)->next) {
            if (target ? *pp == target : d->type->node_eq(*pp, key, len)) {
                *table = t;
                return pp;
            }
        }
        if (!dict_is_rehashing(d))
            break;
    }
    return NULL;
}

struct dict_node *dict_unlink(struct dict *d, const void *key, size_t len, uint64_t hash)
{
    if (dict_size(d) == 0)
        return NULL;
    step(d);
    int t;
    struct dict_node **pp = find_link(d, NULL, key, len, hash, &t);
    if (!pp)
        return NULL;
    struct dict_node *n = *pp;
    *pp = n->next;
    d->used[t]--;
    return n;
}

int dict_replace(struct dict *d, struct dict_node *old, struct dict_node *repl, uint64_t hash)
{
    int t;
    struct dict_node **pp = find_link(d, old, NULL, 0, hash, &t);
    if (!pp)
        return -1;
    repl->next = old->next;
    *pp = repl;
    return 0;
}

struct dict_node *dict_random(struct dict *d, uint64_t rnd)
{
    if (dict_size(d) == 0)
        return NULL;
    step(d);
    struct dict_node *n = NULL;
    /* Pick a non-empty bucket at random, then a random element of its chain.
     * Skewed toward short chains, as Redis's dictGetRandomKey is; fine for
     * sampling (eviction, RANDOMKEY). */
    uint64_t x = rnd;
    for (int tries = 0; !n; tries++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        uint64_t r = x >> 11;
        if (dict_is_rehashing(d)) {
            uint64_t span = d->size[0] + d->size[1] - (uint64_t)d->rehashidx;
            uint64_t i = (uint64_t)d->rehashidx + r % span;
            n = i >= d->size[0] ? d->table[1][i - d->size[0]] : d->table[0][i];
        } else {
            n = d->table[0][r & (d->size[0] - 1)];
        }
        (void)tries;
    }
    size_t len = 0;
    for (struct dict_node *c = n; c; c = c->next)
        len++;
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    for (size_t k = (size_t)((x >> 11) % len); k; k--)
        n = n->next;
    return n;
}

void dict_resize_if_needed(struct dict *d)
{
    if (dict_is_rehashing(d) || !d->size[0])
        return;
    uint64_t used = d->used[0];
    if (used == 0) {
        xfree(d->table[0]);
        d->table[0] = NULL, d->size[0] = 0;
    } else if (d->size[0] > DICT_MIN_SIZE && used * 8 < d->size[0]) {
        start_resize(d, used);
    }
}

static uint64_t rev64(uint64_t v)
{
    v = ((v >> 1) & 0x5555555555555555ULL) | ((v & 0x5555555555555555ULL) << 1);
    v = ((v >> 2) & 0x3333333333333333ULL) | ((v & 0x3333333333333333ULL) << 2);
    v = ((v >> 4) & 0x0F0F0F0F0F0F0F0FULL) | ((v & 0x0F0F0F0F0F0F0F0FULL) << 4);
    v = ((v >> 8) & 0x00FF00FF00FF00FFULL) | ((v & 0x00FF00FF00FF00FFULL) << 8);
    v = ((v >> 16) & 0x0000FFFF0000FFFFULL) | ((v & 0x0000FFFF0000FFFFULL) << 16);
    return (v >> 32) | (v << 32);
}

static void scan_bucket(struct dict_node *n, dict_scan_fn *fn, void *ud)
{
    while (n) {
        struct dict_node *next = n->next;
        fn(ud, n);
        n = next;
    }
}

uint64_t dict_scan(struct dict *d, uint64_t v, dict_scan_fn *fn, void *ud)
{
    if (dict_size(d) == 0)
        return 0;
    d->pauserehash++;
    if (!dict_is_rehashing(d)) {
        uint64_t m0 = d->size[0] - 1;
        scan_bucket(d->table[0][v & m0], fn, ud);
        v |= ~m0;
        v = rev64(v);
        v++;
        v = rev64(v);
    } else {
        int small = d->size[0] <= d->size[1] ? 0 : 1, large = 1 - small;
        uint64_t m0 = d->size[small] - 1, m1 = d->size[large] - 1;
        scan_bucket(d->table[small][v & m0], fn, ud);
        /* Visit the buckets of the larger table that expand the small one's. */
        do {
            scan_bucket(d->table[large][v & m1], fn, ud);
            v |= ~m1;
            v = rev64(v);
            v++;
            v = rev64(v);
        } while (v & (m0 ^ m1));
    }
    d->pauserehash--;
    return v;
}

int dict_foreach(struct dict *d, int (*fn)(void *ud, struct dict_node *n), void *ud)
{
    d->pauserehash++;
    int rc = 0;
    for (int t = 0; t <= 1 && !rc; t++) {
        for (uint64_t i = 0; i < d->size[t] && !rc; i++) {
            struct dict_node *n = d->table[t][i];
            while (n && !rc) {
                struct dict_node *next = n->next;
                rc = fn(ud, n);
                n = next;
            }
        }
    }
    d->pauserehash--;
    return rc;
}

size_t dict_table_bytes(const struct dict *d)
{
    return (d->size[0] + d->size[1]) * sizeof(struct dict_node *);
}
