/* engine.h: the sharded in-memory keyspace, as a C library.
 *
 * What it is: Redis's data model (strings now; lists, hashes, sets, sorted
 * sets next), expiry, memory accounting and eviction, over a keyspace split
 * into shards by xxhash of the key (or of its {hash tag}).  Each shard has its
 * own lock; there is no global lock on the hot path.  What it is not: it knows
 * nothing of sockets, RESP, clients, the bot or replication.  The protocol
 * layer and the bot both call this API; replication hears of every change
 * through the journal hook.
 *
 * Execution model.  Every operation runs inside a context (struct eng_ctx)
 * that holds the locks of the shards it may touch:
 *
 *     struct eng_ctx c;
 *     eng_ctx_init(&c, e, db);
 *     eng_lock_keys(&c, keys, lens, n);  // locks the keys' shards, ascending
 *     ... eng_get(&c, ...), eng_set(&c, ...) ...
 *     eng_unlock(&c);
 *
 * Locks are taken in ascending shard order, so multi-key operations (MSET,
 * RENAME, transactions) are atomic across shards and cannot deadlock.  A key
 * whose shard is not locked must not be touched (asserted).  Views returned by
 * reads (struct eng_val) borrow the engine's memory and stay valid until the
 * key is changed or the context unlocks.
 *
 * Time: ctx->now_ms (now_us in microseconds) is read when the context takes
 * its locks, once, as Redis fixes the command time, so a key does not expire
 * in the middle of a command; a context that never locks has the time of
 * eng_ctx_init.
 *
 * Effects: every change calls, under the locks and in order, the journal hook
 * with a command that reproduces it deterministically (SET EX becomes SET PXAT,
 * INCRBYFLOAT becomes SET KEEPTTL, an expired key found becomes DEL), then the
 * keyspace notification and modified-key hooks. */
#ifndef ENGINE_ENGINE_H
#define ENGINE_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

#define ENG_MAX_SHARDS 256

enum eng_type { ENG_T_STRING = 0, ENG_T_LIST, ENG_T_SET, ENG_T_ZSET, ENG_T_HASH, ENG_T__COUNT };

enum eng_policy {
    ENG_POLICY_NOEVICTION,
    ENG_POLICY_ALLKEYS_LRU,
    ENG_POLICY_VOLATILE_LRU,
    ENG_POLICY_VOLATILE_TTL,
    ENG_POLICY_ALLKEYS_RANDOM,
    ENG_POLICY_VOLATILE_RANDOM,
};

struct eng_str {
    const char *p;
    size_t n;
};

/* Keyspace event classes, as notify-keyspace-events letters. */
enum eng_event_class {
    ENG_EV_GENERIC = 1 << 0, /* g */
    ENG_EV_STRING = 1 << 1,  /* $ */
    ENG_EV_LIST = 1 << 2,    /* l */
    ENG_EV_SET = 1 << 3,     /* s */
    ENG_EV_HASH = 1 << 4,    /* h */
    ENG_EV_ZSET = 1 << 5,    /* z */
    ENG_EV_EXPIRED = 1 << 6, /* x */
    ENG_EV_EVICTED = 1 << 7, /* e */
    ENG_EV_NEW = 1 << 8,     /* n */
};

struct eng_hooks {
    void *ud;
    /* A change, as a command that replays it.  Called under the shard locks,
     * in the order of the changes to any one key.  May be NULL. */
    void (*journal)(void *ud, int db, int argc, const struct eng_str *argv);
    /* Whether the journal's consumer keeps changes now (NULL: always).  A
     * change whose replay needs building (a ZADD's scores printed, its argv
     * allocated) skips that work when nobody keeps it: a master with no
     * replica ever.  Read under the shard locks, like journal's calls. */
    int (*journal_wanted)(void *ud);
    /* Keyspace notification (only classes in notify_mask are reported). */
    void (*notify)(void *ud, int db, int cls, const char *event, const char *key, size_t klen);
    unsigned notify_mask;
    /* A key's value changed or the key went away (WATCH). */
    void (*modified)(void *ud, int db, const char *key, size_t klen);
    /* A list/zset key received elements (blocking pops may proceed). */
    void (*ready)(void *ud, int db, const char *key, size_t klen);
};

struct eng_config {
    int nshards;          /* 1..ENG_MAX_SHARDS */
    int ndb;              /* databases */
    int64_t maxmemory;    /* 0 = no limit */
    int policy;           /* enum eng_policy */
    int maxmemory_samples;
    int replica;          /* replicas do not expire keys by themselves */
    int no_active_expire; /* DEBUG SET-ACTIVE-EXPIRE 0 */
};

struct eng;

/* Returns a new engine, or NULL on bad configuration. */
struct eng *eng_new(const struct eng_config *cfg);
void eng_free(struct eng *e);
/* The hooks are copied; set them before any other thread uses the engine. */
void eng_set_hooks(struct eng *e, const struct eng_hooks *h);
const struct eng_config *eng_config(const struct eng *e);
/* Run-time changes of maxmemory, policy, samples, replica flag. */
void eng_set_maxmemory(struct eng *e, int64_t maxmemory, int policy, int samples);
void eng_set_replica(struct eng *e, int replica);
void eng_set_notify_mask(struct eng *e, unsigned mask);
void eng_set_active_expire(struct eng *e, int on);
/* While a fork()ed snapshot child reads its copy of the engine, lookups
 * leave LRU clocks alone (Redis's rule while a child runs): every page a
 * read writes would otherwise be copied, for memory and for latency. */
void eng_set_snapshot_child(struct eng *e, int on);

/* ---- contexts and locks ---------------------------------------------- */

struct eng_ctx {
    struct eng *e;
    int db;
    int64_t now_ms;
    int64_t now_us; /* the same instant, for callers that time the command */
    int nlocked;
    uint64_t locked[ENG_MAX_SHARDS / 64];
    int txn; /* eng_journal_multi: 0 none, 1 MULTI owed before the next entry, 2 MULTI journaled */
    int quiet; /* snapshot walk or load: no hook called, no dirty count, no LRU touch or hit/miss count */
};

void eng_ctx_init(struct eng_ctx *c, struct eng *e, int db);
/* eng_ctx_init without reading the clock, for a context that locks next
 * (eng_lock_*, which reads it) before it is used: one clock read less on
 * every command. */
void eng_ctx_init_to_lock(struct eng_ctx *c, struct eng *e, int db);
int eng_shard_of(const struct eng *e, const char *key, size_t klen);
/* Locks the shards of n keys (may be 0), ascending.  Must hold no lock. */
void eng_lock_keys(struct eng_ctx *c, const struct eng_str *keys, int n);
void eng_lock_shard(struct eng_ctx *c, int shard);
/* eng_lock_shard, or -1 at once when another thread holds the shard. */
int eng_trylock_shard(struct eng_ctx *c, int shard);
void eng_lock_all(struct eng_ctx *c);
void eng_unlock(struct eng_ctx *c);
/* True when key's shard is locked by c. */
int eng_holds(const struct eng_ctx *c, const char *key, size_t klen);

/* ---- journal markers ---------------------------------------------------- */

/* Transactions (EXEC): begin = 1 before the first command, 0 after the last.
 * The journal hook gets {"MULTI"} right before the transaction's first entry
 * and {"EXEC"} at the end, and nothing at all when no command wrote.  The
 * hook sees the entries of one transaction from one thread, in order; an
 * implementation that serialises entries of several threads must keep the
 * ones between a thread's MULTI and EXEC together. */
void eng_journal_multi(struct eng_ctx *c, int begin);
/* Journals a command that changes no key but must reach replicas (PUBLISH). */
void eng_journal_cmd(struct eng *e, int db, int argc, const struct eng_str *argv);

/* ---- memory ---------------------------------------------------------- */

/* Frees memory by the policy while used memory is over maxmemory.  Call with
 * no lock held, before a command that may grow memory.  Returns 0, or ERR_OOM
 * when still over the limit (noeviction, or nothing left to evict). */
int eng_make_room(struct eng *e);
int64_t eng_used_memory(void);

/* ---- strings ----------------------------------------------------------- */

/* A read view of a string value. */
struct eng_val {
    const char *p;
    size_t n;
    char tmp[24]; /* holds the digits of an int-encoded value */
};

enum eng_set_flags {
    ENG_SET_NX = 1 << 0,
    ENG_SET_XX = 1 << 1,
    ENG_SET_KEEPTTL = 1 << 2,
    ENG_SET_GET = 1 << 3, /* return the old value in *old (must be a string) */
};

/* 0 and *v, ERR_NOKEY, or ERR_WRONGTYPE. */
int eng_get(struct eng_ctx *c, const char *key, size_t klen, struct eng_val *v);
/* SET with flags; expire_at_ms > 0 sets an absolute expiry.  Returns 1 when
 * set, 0 when NX/XX prevented it, ERR_WRONGTYPE (with SET_GET on a non-string).
 * With ENG_SET_GET the old value (if any) is appended to *old and *had_old set. */
int eng_set(struct eng_ctx *c, const char *key, size_t klen, const char *val, size_t vlen, unsigned flags,
            int64_t expire_at_ms, struct buf *old, int *had_old);
/* INCRBY/DECRBY: ERR_WRONGTYPE, ERR_NOTINT (stored value), ERR_OVERFLOW. */
int eng_incrby(struct eng_ctx *c, const char *key, size_t klen, int64_t delta, int64_t *result);
/* INCRBYFLOAT: result text in out (>= ENG_LDBL_CHARS bytes: long doubles are
 * printed in full, as Redis does); ERR_NOTFLOAT, ERR_NAN. */
#define ENG_LDBL_CHARS 5120
int eng_incrbyfloat(struct eng_ctx *c, const char *key, size_t klen, long double delta, char *out, size_t *outlen);
/* APPEND: new length; ERR_TOOBIG past max_len. */
int eng_append(struct eng_ctx *c, const char *key, size_t klen, const char *p, size_t n, int64_t max_len,
               int64_t *newlen);
int eng_setrange(struct eng_ctx *c, const char *key, size_t klen, int64_t off, const char *p, size_t n,
                 int64_t max_len, int64_t *newlen);
/* STRLEN: 0 for a missing key. */
int eng_strlen(struct eng_ctx *c, const char *key, size_t klen, int64_t *len);
/* GETDEL: like eng_get, then the key is deleted (value copied to *out). */
int eng_getdel(struct eng_ctx *c, const char *key, size_t klen, struct buf *out);

/* ---- keys -------------------------------------------------------------- */

enum eng_expire_flags { ENG_EXP_NX = 1, ENG_EXP_XX = 2, ENG_EXP_GT = 4, ENG_EXP_LT = 8 };

/* 1 deleted, 0 absent. */
int eng_del(struct eng_ctx *c, const char *key, size_t klen);
int eng_exists(struct eng_ctx *c, const char *key, size_t klen);
/* Type of key (enum eng_type) or -1 when absent.  Like EXISTS, TTL and OBJECT:
 * counts a keyspace hit or miss, leaves the LRU clock (Redis's NOTOUCH). */
int eng_type(struct eng_ctx *c, const char *key, size_t klen);
const char *eng_type_name(int type);
/* RENAME/RENAMENX: 1 renamed, 0 (nx and dst exists), ERR_NOKEY. */
int eng_rename(struct eng_ctx *c, const char *src, size_t slen, const char *dst, size_t dlen, int nx);
/* COPY: 1 copied, 0 not (dst exists, no replace). dstdb may differ. */
int eng_copy(struct eng_ctx *c, const char *src, size_t slen, const char *dst, size_t dlen, int dstdb,
             int replace);
/* Sets an absolute expiry; a time in the past deletes the key.  1 set, 0 not
 * (absent key or NX/XX/GT/LT condition). */
int eng_expire_at(struct eng_ctx *c, const char *key, size_t klen, int64_t when_ms, int flags);
/* Remaining ms (-2 absent, -1 no expiry). */
int64_t eng_pttl(struct eng_ctx *c, const char *key, size_t klen);
/* Absolute expiry in ms (-2 absent, -1 no expiry). */
int64_t eng_pexpiretime(struct eng_ctx *c, const char *key, size_t klen);
int eng_persist(struct eng_ctx *c, const char *key, size_t klen);
int eng_touch(struct eng_ctx *c, const char *key, size_t klen);
/* KEYS: calls fn for every live key matching pattern.  Needs eng_lock_all. */
void eng_keys(struct eng_ctx *c, const char *pat, size_t plen, void (*fn)(void *ud, const char *k, size_t n),
              void *ud);
/* SCAN over all shards; the caller locks nothing (each shard is locked for
 * its step).  type < 0 = any.  Returns the next cursor (0 = done). */
uint64_t eng_scan(struct eng *e, int db, uint64_t cursor, const char *pat, size_t plen, int type, int64_t count,
                  void (*fn)(void *ud, const char *k, size_t n), void *ud);
/* eng_scan for background sweeps on a loop that must not wait: at a shard
 * another thread holds it stops and sets *busy, and the cursor returned
 * (0 included) resumes there, later. */
uint64_t eng_scan_nowait(struct eng *e, int db, uint64_t cursor, const char *pat, size_t plen, int type,
                         int64_t count, void (*fn)(void *ud, const char *k, size_t n), void *ud, int *busy);
/* RANDOMKEY: appends a key to out and returns 1, or 0 when the db is empty.
 * Locks by itself (call with no lock held). */
int eng_randomkey(struct eng *e, int db, struct buf *out);
/* Keys in db (locks each shard in turn). */
uint64_t eng_dbsize(struct eng *e, int db);
/* FLUSHDB (db >= 0) or FLUSHALL (db < 0); needs eng_lock_all. */
void eng_flush(struct eng_ctx *c, int db);
/* OBJECT ENCODING name, or NULL when absent. */
const char *eng_object_encoding(struct eng_ctx *c, const char *key, size_t klen);
/* Seconds since last access (OBJECT IDLETIME), -1 when absent. */
int64_t eng_object_idletime(struct eng_ctx *c, const char *key, size_t klen);
/* MEMORY USAGE in bytes, -1 when absent. */
int64_t eng_memory_usage(struct eng_ctx *c, const char *key, size_t klen);

/* ---- background work ------------------------------------------------- */

/* One active-expiry and incremental-rehash step for one shard, within about
 * budget_us of CPU.  Call from each loop's timer for its own shards. */
void eng_cron_shard(struct eng *e, int shard, int64_t budget_us);

/* ---- statistics (INFO) ----------------------------------------------- */

struct eng_stats {
    uint64_t hits, misses, expired, evicted, changes; /* changes: writes since reset_dirty */
    uint64_t expired_stale_perc, expire_cycle_cpu_us;
};
struct eng_db_info {
    uint64_t keys, expires;
    int64_t avg_ttl_ms;
};
void eng_stats(struct eng *e, struct eng_stats *out);
void eng_stats_reset(struct eng *e);
/* Changes since the last snapshot; reset by the snapshot code. */
uint64_t eng_dirty(struct eng *e);
void eng_dirty_sub(struct eng *e, uint64_t n);
void eng_db_info(struct eng *e, int db, struct eng_db_info *out);

#endif
