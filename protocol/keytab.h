/* keytab.h: a small chained hash table from (db, bytes) to nodes, for the
 * registries of pub/sub channels, WATCHed keys and keys with blocked clients.
 *
 * Intrusive: the caller's object embeds a struct kt_node whose key points at
 * bytes the object owns.  Unlike engine/dict.h a lookup never moves anything
 * (the table grows in one step, on add), so lookups may run concurrently under
 * a read lock while adds and removes hold the write lock.
 * Thread: none; the caller's lock serialises writers against everyone. */
#ifndef PROTOCOL_KEYTAB_H
#define PROTOCOL_KEYTAB_H

#include <stddef.h>
#include <stdint.h>

struct kt_node {
    struct kt_node *next;
    uint64_t hash;
    int db;
    size_t len;
    const char *key; /* borrowed from the embedding object */
};

struct keytab {
    struct kt_node **b;
    size_t size; /* buckets: 0 or a power of two */
    size_t used;
};

void kt_init(struct keytab *t);
/* Frees the bucket array (not the nodes). */
void kt_release(struct keytab *t);
/* The node for (db, key), or NULL.  Changes nothing. */
struct kt_node *kt_find(const struct keytab *t, int db, const char *key, size_t len);
/* Links n (n->db, n->key, n->len set; not present yet). */
void kt_add(struct keytab *t, struct kt_node *n);
/* Unlinks n (linked). */
void kt_del(struct keytab *t, struct kt_node *n);

/* Iteration: for (size_t i = 0; i < t->size; i++) for (n = t->b[i]; n; n = next)
 * (with next read before n may be removed). */

#endif
