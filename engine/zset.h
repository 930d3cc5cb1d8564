/* zset.h: the sorted set type of the engine (Redis's ZADD family), for
 * protocol/, the blocking pops and the bot.  Implemented in t_zset.c.
 *
 * Contract.  As list.h: the context's locks cover every key named (all
 * sources and the destination of the STORE commands); returns 0 (or a
 * documented count) or a negative ERR_xxx (ERR_WRONGTYPE when a key holds
 * another type, ERR_NOKEY where documented); out-parameters are written
 * only on success.  Members handed out: first `head` (may be NULL) with the
 * number that follow, then `fn` once per member with its score, in the
 * order of the reply; the bytes are valid during the call only and callbacks
 * must not call back into the engine.
 *
 * Order: by score, then by member bytes (memcmp, a prefix first).  Scores
 * are doubles and never NaN.  Rank, score and lex ranges are O(log n) to find
 * in the "skiplist" encoding (a skip list with span counts, plus a hash table
 * from member to score), then O(1) per member handed out.
 *
 * Encodings (OBJECT ENCODING): "listpack" (one sorted flat block of members
 * and scores) while there are at most ENG_ZSET_MAX_LISTPACK_ENTRIES members
 * of at most ENG_ZSET_MAX_LISTPACK_VALUE bytes; "skiplist" beyond, for good
 * (a STORE destination gets the compact form when its result fits).  A
 * zero score keeps no sign in a listpack (Redis 7.0 answers "0" from one,
 * "-0" from a skip list).
 *
 * Effects: journaled as commands that replay them (ZINCRBY as ZADD of the
 * result, pops as ZPOPMIN/ZPOPMAX key count, ranges removed as
 * ZREMRANGEBYRANK, ZRANGESTORE as a rank range, the other STOREs as
 * themselves with every option spelled out) and notified with Redis's event names ("zadd", "zincr",
 * "zrem", "zremrangebyrank", "zremrangebyscore", "zremrangebylex",
 * "zpopmin", "zpopmax", "zunionstore", "zinterstore", "zdiffstore",
 * "zrangestore", and "del" when a set empties or a STORE result is empty).
 * Calls that add members signal the key as ready (struct eng_hooks.ready). */
#ifndef ENGINE_ZSET_H
#define ENGINE_ZSET_H

#include <stddef.h>
#include <stdint.h>

#include "engine.h"

#define ENG_ZSET_MAX_LISTPACK_ENTRIES 128 /* zset-max-listpack-entries */
#define ENG_ZSET_MAX_LISTPACK_VALUE 64    /* zset-max-listpack-value */

/* Called first with the number of members that will follow. */
typedef void eng_zset_count_fn(void *ud, int64_t n);
/* One member and its score (view valid during the call only). */
typedef void eng_zset_elem_fn(void *ud, const char *m, size_t n, double score);

enum eng_zadd_flags {
    ENG_ZADD_NX = 1 << 0,
    ENG_ZADD_XX = 1 << 1,
    ENG_ZADD_GT = 1 << 2,
    ENG_ZADD_LT = 1 << 3,
    ENG_ZADD_INCR = 1 << 4, /* scores are increments (ZINCRBY, ZADD INCR) */
};

struct eng_zadd_out {
    int64_t added, updated; /* members new, members whose score changed */
    int64_t processed;      /* members not skipped by NX/XX/GT/LT */
    double score;           /* the last member's score (what INCR replies) */
};

/* ZADD/ZINCRBY: n members with their scores (not NaN).  The caller has
 * checked the flag combinations (NX with XX, GT, LT).  XX on a missing key
 * creates nothing.  ERR_NAN when an increment gives NaN (inf + -inf): the
 * members before it stay added, and *out tells what happened. */
int eng_zadd(struct eng_ctx *c, const char *key, size_t klen, unsigned flags, const double *scores,
             const struct eng_str *members, int n, struct eng_zadd_out *out);
/* ZREM: *removed gets how many were there (the key goes with its last). */
int eng_zrem(struct eng_ctx *c, const char *key, size_t klen, const struct eng_str *members, int n, int64_t *removed);
/* ZCARD: 0 for a missing key. */
int eng_zcard(struct eng_ctx *c, const char *key, size_t klen, int64_t *n);
/* ZSCORE: ERR_NOKEY when the key or the member is missing. */
int eng_zscore(struct eng_ctx *c, const char *key, size_t klen, const char *m, size_t ml, double *score);
/* ZMSCORE: found[i] = 1 and scores[i] when members[i] is there. */
int eng_zmscore(struct eng_ctx *c, const char *key, size_t klen, const struct eng_str *members, int n, double *scores,
                int *found);
/* ZRANK/ZREVRANK: 0-based rank (rev: from the highest).  ERR_NOKEY when the
 * key or the member is missing. */
int eng_zrank(struct eng_ctx *c, const char *key, size_t klen, const char *m, size_t ml, int rev, int64_t *rank,
              double *score);

/* ---- ranges ---------------------------------------------------------- */

enum eng_zby { ENG_ZBY_RANK, ENG_ZBY_SCORE, ENG_ZBY_LEX };
/* A lex bound: "[m" (inclusive), "(m" (exclusive), "-" or "+". */
enum eng_zlex_kind { ENG_ZLEX_INCL, ENG_ZLEX_EXCL, ENG_ZLEX_MIN, ENG_ZLEX_MAX };
struct eng_zlex {
    const char *p;
    size_t n;
    int kind;
};

struct eng_zrange {
    int by;                     /* enum eng_zby */
    int rev;                    /* hand members out from the highest down */
    int64_t start, stop;        /* ENG_ZBY_RANK: Redis's index rules (counted from
                                   the highest when rev) */
    double min, max;            /* ENG_ZBY_SCORE (min <= max in score order) */
    int minex, maxex;           /* exclusive bounds */
    struct eng_zlex lmin, lmax; /* ENG_ZBY_LEX */
    int64_t offset;             /* LIMIT: skip offset members (< 0: none left) */
    int64_t limit;              /* then hand out at most limit (< 0: all) */
};

/* ZRANGE and friends: ERR_NOKEY when there is no sorted set. */
int eng_zrange(struct eng_ctx *c, const char *key, size_t klen, const struct eng_zrange *r, eng_zset_count_fn *head,
               eng_zset_elem_fn *fn, void *ud);
/* ZCOUNT/ZLEXCOUNT (by score or lex; offset/limit ignored): 0 for a missing
 * key. */
int eng_zcount(struct eng_ctx *c, const char *key, size_t klen, const struct eng_zrange *r, int64_t *n);
/* ZREMRANGEBYRANK/SCORE/LEX (rev, offset, limit ignored). */
int eng_zremrange(struct eng_ctx *c, const char *key, size_t klen, const struct eng_zrange *r, int64_t *removed);
/* ZRANGESTORE: dst (whatever it held, and its expiry) is replaced by the
 * members of src in range, or deleted when there are none.  *n gets how
 * many were stored. */
int eng_zrangestore(struct eng_ctx *c, const char *dst, size_t dlen, const char *src, size_t slen,
                    const struct eng_zrange *r, int64_t *n);

/* ---- pops --------------------------------------------------------------- */

/* ZPOPMIN/ZPOPMAX (max): removes min(count, card) members (count >= 1) from
 * the low (high) end and hands them out in that order.  ERR_NOKEY when there
 * is no sorted set. */
int eng_zpop(struct eng_ctx *c, const char *key, size_t klen, int max, int64_t count, eng_zset_count_fn *head,
             eng_zset_elem_fn *fn, void *ud);
/* ZMPOP and the blocking pops: eng_zpop on the first of keys that holds a
 * sorted set; *which gets its index before head is called.  ERR_NOKEY when
 * none does; ERR_WRONGTYPE when a key met before it holds another type. */
int eng_zset_mpop(struct eng_ctx *c, const struct eng_str *keys, int nkeys, int max, int64_t count,
                  eng_zset_count_fn *head, eng_zset_elem_fn *fn, void *ud, int *which);

/* ---- set operations ------------------------------------------------------ */

enum eng_zsetop { ENG_ZSETOP_UNION, ENG_ZSETOP_INTER, ENG_ZSETOP_DIFF };
enum eng_zagg { ENG_ZAGG_SUM, ENG_ZAGG_MIN, ENG_ZAGG_MAX };

/* ZUNION/ZINTER/ZDIFF[STORE] over n >= 1 keys holding sorted sets or sets
 * (a set member scores 1; missing keys are empty).  weights: n factors, or
 * NULL for all 1 (ignored by DIFF).  With dst == NULL the result goes to head
 * and fn in score order; otherwise it replaces dst (an empty result deletes
 * it) and nothing is called.  *card (may be NULL) gets the result's size.
 * ERR_WRONGTYPE when a key holds another type (checked before any work). */
int eng_zsetop(struct eng_ctx *c, int op, const struct eng_str *keys, int n, const double *weights, int agg,
               const char *dst, size_t dlen, eng_zset_count_fn *head, eng_zset_elem_fn *fn, void *ud, int64_t *card);
/* ZINTERCARD: the size of the intersection; counting stops at limit (> 0). */
int eng_zintercard(struct eng_ctx *c, const struct eng_str *keys, int n, int64_t limit, int64_t *card);

/* ---- iteration ---------------------------------------------------------- */

/* ZSCAN: one step from cursor; fn gets the members matching pat (NULL =
 * all).  A "listpack" set is returned whole with *next = 0, as Redis does;
 * a missing key gives nothing and *next = 0. */
int eng_zscan(struct eng_ctx *c, const char *key, size_t klen, uint64_t cursor, const char *pat, size_t plen,
              int64_t count, eng_zset_elem_fn *fn, void *ud, uint64_t *next);
/* ZRANDMEMBER: count >= 0 picks min(count, card) distinct members, count < 0
 * picks -count with repeats.  ERR_NOKEY when there is no sorted set. */
int eng_zrandmember(struct eng_ctx *c, const char *key, size_t klen, int64_t count, eng_zset_count_fn *head,
                    eng_zset_elem_fn *fn, void *ud);

#endif
