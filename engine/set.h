/* set.h: the set type of the engine (Redis's SADD family), for protocol/ and
 * the bot.  Implemented in t_set.c.
 *
 * Contract.  As hash.h: the context's locks cover every key named (both keys
 * of SMOVE, all sources and the destination of the set operations); returns
 * 0 (or a documented count/flag) or a negative ERR_xxx (ERR_WRONGTYPE when a
 * key holds another type); out-parameters are written only on success;
 * member bytes given to callbacks are valid during the call only, and
 * callbacks must not call back into the engine.
 *
 * Encodings (OBJECT ENCODING), as Redis 7.0: "intset" (a sorted array of
 * integers of the narrowest width that fits) while every member is a
 * canonical int64 and there are at most ENG_SET_MAX_INTSET_ENTRIES of them;
 * "hashtable" otherwise, for good.  (Redis 7.2's small-set "listpack" is not
 * used: 7.0 has none.)  An intset set lists its members in ascending order.
 *
 * Effects: changes are journaled as commands that replay them (SPOP as SREM
 * of the popped members, or DEL when the whole set went) and notified with
 * Redis's event names ("sadd", "srem", "spop", "sinterstore", "sunionstore",
 * "sdiffstore", and "del" when a set empties or a STORE result is empty). */
#ifndef ENGINE_SET_H
#define ENGINE_SET_H

#include <stddef.h>
#include <stdint.h>

#include "engine.h"

#define ENG_SET_MAX_INTSET_ENTRIES 512 /* set-max-intset-entries */

/* Called first with the number of members that will follow. */
typedef void eng_set_count_fn(void *ud, int64_t n);
/* One member (view valid during the call only). */
typedef void eng_member_fn(void *ud, const char *p, size_t n);

enum eng_setop { ENG_SETOP_INTER, ENG_SETOP_UNION, ENG_SETOP_DIFF };

/* SADD: *added gets how many members were new.  Creates the key. */
int eng_sadd(struct eng_ctx *c, const char *key, size_t klen, const struct eng_str *members, int n, int64_t *added);
/* SREM: *removed gets how many were there (the key goes with its last one). */
int eng_srem(struct eng_ctx *c, const char *key, size_t klen, const struct eng_str *members, int n, int64_t *removed);
/* SISMEMBER: 1 or 0. */
int eng_sismember(struct eng_ctx *c, const char *key, size_t klen, const char *m, size_t ml);
/* SMISMEMBER: out[i] = 1 when members[i] is in the set. */
int eng_smismember(struct eng_ctx *c, const char *key, size_t klen, const struct eng_str *members, int n, int *out);
/* SCARD: 0 for a missing key. */
int eng_scard(struct eng_ctx *c, const char *key, size_t klen, int64_t *n);
/* SMEMBERS: head (may be NULL), then every member. */
int eng_smembers(struct eng_ctx *c, const char *key, size_t klen, eng_set_count_fn *head, eng_member_fn *fn,
                 void *ud);
/* SPOP: removes min(count, card) random members (count >= 0) and passes
 * them to fn.  A set that empties is deleted. */
int eng_spop(struct eng_ctx *c, const char *key, size_t klen, int64_t count, eng_set_count_fn *head,
             eng_member_fn *fn, void *ud);
/* SRANDMEMBER: count >= 0 picks min(count, card) distinct members; count < 0
 * picks -count members with repeats. */
int eng_srandmember(struct eng_ctx *c, const char *key, size_t klen, int64_t count, eng_set_count_fn *head,
                    eng_member_fn *fn, void *ud);
/* SMOVE: 1 moved (or src == dst and m is a member), 0 not there. */
int eng_smove(struct eng_ctx *c, const char *src, size_t slen, const char *dst, size_t dlen, const char *m,
              size_t ml);
/* SINTER/SUNION/SDIFF over n >= 1 keys (missing keys are empty sets).  With
 * dst == NULL the result goes to head and fn; otherwise it replaces dst (an
 * empty result deletes dst) and nothing is called.  *card (may be NULL) gets
 * the result's size. */
int eng_setop(struct eng_ctx *c, enum eng_setop op, const struct eng_str *keys, int n, const char *dst, size_t dlen,
              eng_set_count_fn *head, eng_member_fn *fn, void *ud, int64_t *card);
/* SINTERCARD: the size of the intersection, counting stops at limit (> 0). */
int eng_sintercard(struct eng_ctx *c, const struct eng_str *keys, int n, int64_t limit, int64_t *card);
/* SSCAN: one step from cursor; fn gets the members matching pat (NULL = all).
 * An intset is returned whole with *next = 0, as Redis does. */
int eng_sscan(struct eng_ctx *c, const char *key, size_t klen, uint64_t cursor, const char *pat, size_t plen,
              int64_t count, eng_member_fn *fn, void *ud, uint64_t *next);

#endif
