/* engine_int.h: the engine's private structures, shared by its own files only
 * (SQLite's btreeInt.h).  Other modules include engine.h. */
#ifndef ENGINE_ENGINE_INT_H
#define ENGINE_ENGINE_INT_H

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>

#include "dict.h"
#include "engine.h"

/* Value encodings, as OBJECT ENCODING names them. */
enum eng_enc {
    ENC_INT,       /* string holding an int64: v.i */
    ENC_EMBSTR,    /* string stored after the key in the same block: v.i = length */
    ENC_RAW,       /* string in its own growable block: v.p -> struct eng_raw */
    ENC_LISTPACK,  /* small hash/zset/list in one compact block */
    ENC_QUICKLIST, /* list */
    ENC_HASHTABLE, /* hash, set */
    ENC_INTSET,    /* set of integers */
    ENC_SKIPLIST,  /* zset */
    ENC__COUNT
};

/* One key, one allocation (plus the value's own block for non-embedded types).
 *
 *   +------+----------------------+------+------+------------------+
 *   | next | lru:24 type:3 enc:4 v| klen | v    | key bytes [embstr]|
 *   +------+----------------------+------+------+------------------+
 *     8      4                      4      8      klen [+ value]
 */
struct eng_key {
    struct dict_node node;
    uint32_t lru : 24;
    uint32_t type : 3;
    uint32_t enc : 4;
    uint32_t is_volatile : 1;
    uint32_t klen : 31;
    uint32_t snap_mark : 1; /* versioned snapshots: == shard's snap_parity once saved (snapshot.c) */
    union {
        int64_t i;
        void *p;
    } v;
    char key[];
};

struct eng_raw {
    size_t len;
    char p[]; /* capacity: xmalloc_size(raw) - sizeof(struct eng_raw) */
};

/* An expiry, in a per-db dict keyed by the key's bytes. */
struct eng_exp {
    struct dict_node node;
    struct eng_key *k;
    int64_t when;
};

struct eng_db {
    struct dict keys;
    struct dict expires;
    uint64_t expire_cursor;
    int64_t avg_ttl; /* estimate kept by the active-expire cycle */
};

struct eng_shard {
    pthread_mutex_t lock;
    struct eng_db *dbs;
    uint64_t hits, misses, expired, evicted, dirty, stale_perc;
    uint64_t rnd;
    struct evict_pool *pool; /* evict.c: best eviction candidates seen so far */
    /* Versioned snapshot in progress (snapshot.c), NULL when none: a key
     * whose snap_mark differs from snap_parity is saved before it changes. */
    struct eng_vsnap *vsnap;
    uint32_t snap_parity;
    _Atomic int waiters; /* threads blocked on lock (engine.c lock_mask) */
    char pad[64];
};

/* Operations each non-string type provides (engine/t_*.c). */
struct eng_type_ops {
    void (*free)(void *v);
    size_t (*mem)(const void *v);       /* bytes held, for MEMORY USAGE */
    void *(*dup)(const void *v);        /* deep copy, for COPY */
};
extern const struct eng_type_ops *const eng__type_ops[ENG_T__COUNT];
/* Each type file defines its ops (t_list.c: eng__list_ops...).  Declared weak
 * so that the engine links while a type is being written. */
extern const struct eng_type_ops eng__list_ops __attribute__((weak));
extern const struct eng_type_ops eng__set_ops __attribute__((weak));
extern const struct eng_type_ops eng__zset_ops __attribute__((weak));
extern const struct eng_type_ops eng__hash_ops __attribute__((weak));

struct eng {
    struct eng_config cfg;
    struct eng_hooks hooks;
    struct eng_shard *shards;
    _Atomic unsigned evict_next;
    _Atomic int snapshot_child; /* eng_set_snapshot_child: lookups leave LRU clocks alone */
};

uint64_t eng__hash(const char *key, size_t klen);
/* Whether this thread holds shard s of e (through any context). */
int eng__held(const struct eng *e, int s);
static inline struct eng_shard *eng__shard(struct eng_ctx *c, const char *key, size_t klen)
{
    int s = eng_shard_of(c->e, key, klen);
    assert(eng__held(c->e, s)); /* by c, or by an outer context of this thread (EXEC) */
    return &c->e->shards[s];
}
static inline uint32_t eng__lru_clock(int64_t now_ms) { return (uint32_t)((now_ms / 1000) & 0xFFFFFF); }

extern const struct dict_type eng__keys_type, eng__expires_type;

/* Lookup without side effects (no expiry, no stats). */
struct eng_key *eng__find(struct eng_db *db, const char *key, size_t klen, uint64_t h);
/* Lookup that expires a dead key (on a master), touches LRU, counts hits and
 * misses when `read` is set. */
struct eng_key *eng__lookup(struct eng_ctx *c, const char *key, size_t klen, int read);
/* `read` may also carry these bits.  A read (ENG_LOOKUP_READ, i.e. 1) counts a
 * hit or miss, and on a replica hides a key whose time has passed; a write
 * (read == 0) on a replica comes from the master's stream and sees such a key
 * until the master's DEL, as Redis's expireIfNeeded does for its master client
 * (else a lagging replica would add a second node for the key, or ignore the
 * DEL).  NOTOUCH leaves the LRU clock alone (Redis's LOOKUP_NOTOUCH: TYPE,
 * EXISTS, TTL, OBJECT). */
#define ENG_LOOKUP_READ 1
#define ENG_LOOKUP_NOTOUCH 2
/* Type-checked lookup: NULL and *err = 0 when absent, NULL and *err =
 * ERR_WRONGTYPE when of another type. */
struct eng_key *eng__lookup_type(struct eng_ctx *c, const char *key, size_t klen, int type, int read, int *err);
struct eng_key *eng__key_new(const char *key, size_t klen, int type, int enc, size_t extra);
/* Adds a new key (absent before). */
void eng__add(struct eng_ctx *c, struct eng_key *k);
/* Puts k in the place of old (same key), keeping the expiry; frees old's
 * block but not its value (the caller moved or freed it). */
void eng__swap(struct eng_ctx *c, struct eng_key *old, struct eng_key *k);
/* Removes and frees a key with its value and expiry. */
void eng__delete(struct eng_ctx *c, struct eng_key *k);
void eng__free_value(struct eng_key *k);
/* Sets (when > 0) or removes (when <= 0) the expiry of k. */
void eng__set_expire(struct eng_ctx *c, struct eng_key *k, int64_t when);
int64_t eng__get_expire(struct eng_ctx *c, const struct eng_key *k);

/* Versioned snapshots (snapshot.c): saves k as it is now into the running
 * snapshot when it was not saved yet.  Called, under k's shard lock with
 * c->db = k's db, before anything may change or remove k. */
void eng__vsnap_save(struct eng_ctx *c, struct eng_shard *sh, struct eng_key *k);
static inline void eng__before_change(struct eng_ctx *c, struct eng_shard *sh, struct eng_key *k)
{
    if (__builtin_expect(sh->vsnap != NULL, 0) && k->snap_mark != sh->snap_parity)
        eng__vsnap_save(c, sh, k);
}
/* Saves every key of db d of shard sh not saved yet (FLUSHDB/FLUSHALL). */
void eng__vsnap_save_db(struct eng_ctx *c, struct eng_shard *sh, int d);

/* Effects of a change: counts it, notifies (cls/event, may be 0/NULL), and
 * signals the key as modified. */
void eng__changed(struct eng_ctx *c, const char *key, size_t klen, int cls, const char *event);
/* A list/zset key received elements: calls hooks.ready (blocked pops may
 * proceed).  Call after the elements are in place. */
void eng__signal_ready(struct eng_ctx *c, const char *key, size_t klen);
/* Journal one command (argv as eng_str).  No-op without a journal hook. */
void eng__journal(struct eng_ctx *c, int argc, const struct eng_str *argv);
void eng__journal_db(struct eng_ctx *c, int db, int argc, const struct eng_str *argv);
/* Journal helper: builds argv from C strings and (ptr,len) pairs.  fmt letters:
 * 's' C string, 'b' (ptr, size_t), 'i' int64. */
void eng__journalf(struct eng_ctx *c, const char *fmt, ...);
/* Whether a change's replay arguments are worth building: the journal
 * helpers above ask it first (a transaction's always are: its MULTI and EXEC
 * must pair). */
int eng__journal_wanted(const struct eng_ctx *c);
/* Takes shard s's lock unless this thread holds it already (1: taken, to
 * be given to eng__shard_leave). */
int eng__shard_enter(struct eng *e, int s);
void eng__shard_leave(struct eng *e, int s, int entered);
/* Frees a shard's eviction pool (evict.c). */
void eng__evict_pool_free(struct eng_shard *sh);
/* The key's shard's db. */
struct eng_db *eng__db(struct eng_ctx *c, const char *key, size_t klen);

/* Random numbers for the types (xorshift64* over *state, e.g. a shard's rnd
 * under its lock), and count distinct random nodes of d into out (count <=
 * dict_size(d)): HRANDFIELD, SRANDMEMBER, SPOP.  Both in container.c. */
uint64_t eng__rand(uint64_t *state);
void eng__dict_pick(struct dict *d, int64_t count, uint64_t *state, struct dict_node **out);
/* A dict of xmalloc'd nodes (hash and set tables, container.c): releases it
 * with its nodes; its bytes, table and nodes (MEMORY USAGE). */
void eng__dict_free_nodes(struct dict *d);
size_t eng__dict_mem(struct dict *d);
/* The first of keys of that type that exists (the *MPOP commands), its index
 * in *which; NULL with *err = ERR_WRONGTYPE at one of another type met first,
 * or ERR_NOKEY when none exists (container.c). */
struct eng_key *eng__first_key(struct eng_ctx *c, const struct eng_str *keys, int nkeys, int type, int *which,
                               int *err);
/* Journals cmd key args[0..n) (container.c). */
void eng__journal_args(struct eng_ctx *c, const char *cmd, const char *key, size_t klen, const struct eng_str *args,
                       int n);

#define STR(s) ((struct eng_str){(s), sizeof(s) - 1})

#endif
