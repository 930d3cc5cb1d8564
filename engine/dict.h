/* dict.h: an intrusive chained hash table with incremental rehashing and a
 * resize-proof scan cursor (Redis's dict.c, minus the entry allocation).
 *
 * Intrusive: the caller's object embeds a struct dict_node and the table links
 * those nodes; no separate entry is allocated per element, which is where
 * Redis spends 24 to 32 bytes per key.  The caller gives the hash of a lookup
 * key (computed once, reused for shard choice) and a dict_type that can hash a
 * stored node (for rehashing) and compare it with a lookup key.
 *
 * Rehashing moves a few buckets on each add/find/remove (dict_rehash_step),
 * so no single operation pays for a whole table.  dict_scan() follows Redis's
 * reverse-binary cursor: an element present for a whole scan is returned at
 * least once, even while the table grows or shrinks.
 *
 * Thread: none; the owner (an engine shard) serialises access. */
#ifndef ENGINE_DICT_H
#define ENGINE_DICT_H

#include <stddef.h>
#include <stdint.h>

struct dict_node {
    struct dict_node *next;
};

struct dict_type {
    uint64_t (*node_hash)(const struct dict_node *n);
    int (*node_eq)(const struct dict_node *n, const void *key, size_t len);
};

struct dict {
    const struct dict_type *type;
    struct dict_node **table[2];
    uint64_t size[2]; /* power of two, or 0 */
    uint64_t used[2];
    int64_t rehashidx; /* next bucket of table[0] to move, -1 when not rehashing */
    int pauserehash;   /* > 0 while an unsafe iteration holds positions */
};

void dict_init(struct dict *d, const struct dict_type *type);
/* Frees the tables; calls free_node on each node when given. */
void dict_release(struct dict *d, void (*free_node)(struct dict_node *n, void *ud), void *ud);
static inline uint64_t dict_size(const struct dict *d) { return d->used[0] + d->used[1]; }
static inline int dict_is_rehashing(const struct dict *d) { return d->rehashidx != -1; }

/* Returns the node equal to key, or NULL. */
struct dict_node *dict_find(struct dict *d, const void *key, size_t len, uint64_t hash);
/* Links n (its key must not be present). */
void dict_add(struct dict *d, struct dict_node *n, uint64_t hash);
/* Unlinks and returns the node equal to key, or NULL. */
struct dict_node *dict_unlink(struct dict *d, const void *key, size_t len, uint64_t hash);
/* Puts `repl` where `old` is linked (same key; used after a realloc of old
 * already happened elsewhere is NOT allowed: old must still be readable).
 * Returns 0, or -1 when old is not in the table. */
int dict_replace(struct dict *d, struct dict_node *old, struct dict_node *repl, uint64_t hash);
/* A random node (close to uniform), or NULL when empty. */
struct dict_node *dict_random(struct dict *d, uint64_t rnd);
/* Moves up to n buckets; returns 1 while more rehashing remains. */
int dict_rehash_step(struct dict *d, int n);
/* Shrinks or grows to fit the current size when the load is far off. */
void dict_resize_if_needed(struct dict *d);

typedef void dict_scan_fn(void *ud, struct dict_node *n);
/* Calls fn for each node of the bucket(s) at cursor; returns the next cursor,
 * 0 when done.  fn must not add or remove nodes. */
uint64_t dict_scan(struct dict *d, uint64_t cursor, dict_scan_fn *fn, void *ud);

/* Full iteration.  fn returns non-zero to stop early (returned).  fn may
 * unlink the node it is given (and only that node). */
int dict_foreach(struct dict *d, int (*fn)(void *ud, struct dict_node *n), void *ud);

/* Bytes of the bucket arrays (for memory reports). */
size_t dict_table_bytes(const struct dict *d);

#endif
