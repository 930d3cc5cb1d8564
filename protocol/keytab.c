/* keytab.c: the (db, bytes) -> node table of keytab.h. */
#include "keytab.h"

#include <string.h>
#include <xxhash.h>

#include "base/alloc.h"

static uint64_t kt_hash(int db, const char *key, size_t len) { return XXH3_64bits_withSeed(key, len, (uint64_t)db); }

void kt_init(struct keytab *t) { memset(t, 0, sizeof *t); }

void kt_release(struct keytab *t)
{
    xfree(t->b);
    kt_init(t);
}

struct kt_node *kt_find(const struct keytab *t, int db, const char *key, size_t len)
{
    if (!t->size)
        return NULL;
    uint64_t h = kt_hash(db, key, len);
    for (struct kt_node *n = t->b[h & (t->size - 1)]; n; n = n->next)
        if (n->hash == h && n->db == db && n->len == len && memcmp(n->key, key, len) == 0)
            return n;
    return NULL;
}

static void grow(struct keytab *t)
{
    size_t size = t->size ? t->size * 2 : 16;
    struct kt_node **b = xcalloc(size, sizeof *b);
    for (size_t i = 0; i < t->size; i++) {
        struct kt_node *next;
        for (struct kt_node *n = t->b[i]; n; n = next) {
            next = n->next;
            n->next = b[n->hash & (size - 1)];
            b[n->hash & (size - 1)] = n;
        }
    }
    xfree(t->b);
    t->b = b;
    t->size = size;
}

void kt_add(struct keytab *t, struct kt_node *n)
{
    if (t->used >= t->size)
        grow(t);
    n->hash = kt_hash(n->db, n->key, n->len);
    struct kt_node **head = &t->b[n->hash & (t->size - 1)];
    n->next = *head;
    *head = n;
    t->used++;
}

void kt_del(struct keytab *t, struct kt_node *n)
{
    for (struct kt_node **p = &t->b[n->hash & (t->size - 1)]; *p; p = &(*p)->next)
        if (*p == n) {
            *p = n->next;
            t->used--;
            return;
        }
}
