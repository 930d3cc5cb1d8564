/* hash.h: the hash type of the engine (Redis's HSET family), for protocol/ and
 * the bot.  Implemented in t_hash.c.
 *
 * Contract.  Every function runs inside a context whose locks cover key's
 * shard (engine.h).  Keys are (ptr, len) views, borrowed for the call.  A
 * function returns 0 (or the count/flag it documents) on success, or a
 * negative ERR_xxx: ERR_WRONGTYPE when key holds another type; the others are
 * listed per function.  Out-parameters are written only on success.
 *
 * Views handed out (eng_hget, eng_hmget) and the bytes passed to callbacks
 * borrow the engine's memory: callbacks may use them only during the call;
 * views stay valid until the key changes or the context unlocks.  Callbacks
 * must not call back into the engine for the same key.
 *
 * Encodings (OBJECT ENCODING): "listpack" while a hash has at most
 * ENG_HASH_MAX_LISTPACK_ENTRIES fields and no field or value is longer than
 * ENG_HASH_MAX_LISTPACK_VALUE bytes (one flat block, fields and values
 * length-prefixed, in insertion order); "hashtable" beyond, for good.
 *
 * Effects: every change is journaled as a command that replays it
 * (HINCRBYFLOAT as HSET of the result) and notified with Redis's event names
 * ("hset", "hdel", "hincrby", "hincrbyfloat", and "del" when the last field
 * goes and the key with it). */
#ifndef ENGINE_HASH_H
#define ENGINE_HASH_H

#include <stddef.h>
#include <stdint.h>

#include "engine.h"

#define ENG_HASH_MAX_LISTPACK_ENTRIES 128 /* hash-max-listpack-entries */
#define ENG_HASH_MAX_LISTPACK_VALUE 64    /* hash-max-listpack-value */
/* Room HINCRBYFLOAT needs for its result text (Redis's MAX_LONG_DOUBLE_CHARS). */
#define ENG_LDOUBLE_CHARS 5120

/* Called first with the number of pairs that will follow (0 for a missing
 * key), so that a reply header can be written before the elements. */
typedef void eng_count_fn(void *ud, int64_t n);
/* One field and its value (views valid during the call only). */
typedef void eng_pair_fn(void *ud, const char *f, size_t fl, const char *v, size_t vl);

/* HSET: fv holds npairs field/value pairs (2 * npairs views).  *added gets
 * the number of fields that were new.  Creates the key. */
int eng_hset(struct eng_ctx *c, const char *key, size_t klen, const struct eng_str *fv, int npairs, int64_t *added);
/* HSETNX: 1 set, 0 the field existed. */
int eng_hsetnx(struct eng_ctx *c, const char *key, size_t klen, const char *f, size_t fl, const char *v, size_t vl);
/* HGET: 0 and *out, or ERR_NOKEY when the key or the field is missing. */
int eng_hget(struct eng_ctx *c, const char *key, size_t klen, const char *f, size_t fl, struct eng_str *out);
/* HMGET: vals[i] gets field i's value, {NULL, 0} when missing. */
int eng_hmget(struct eng_ctx *c, const char *key, size_t klen, const struct eng_str *fields, int n,
              struct eng_str *vals);
/* HDEL: *deleted gets how many of the fields existed (the key goes with its
 * last field). */
int eng_hdel(struct eng_ctx *c, const char *key, size_t klen, const struct eng_str *fields, int n, int64_t *deleted);
/* HEXISTS: 1 or 0. */
int eng_hexists(struct eng_ctx *c, const char *key, size_t klen, const char *f, size_t fl);
/* HLEN: 0 for a missing key. */
int eng_hlen(struct eng_ctx *c, const char *key, size_t klen, int64_t *n);
/* HSTRLEN: the value's length, 0 when the key or field is missing. */
int eng_hstrlen(struct eng_ctx *c, const char *key, size_t klen, const char *f, size_t fl, int64_t *n);
/* HGETALL/HKEYS/HVALS: head (may be NULL) then fn for every pair, in the
 * hash's order (insertion order while "listpack"). */
int eng_hgetall(struct eng_ctx *c, const char *key, size_t klen, eng_count_fn *head, eng_pair_fn *fn, void *ud);
/* HINCRBY: ERR_NOTINT when the value is not an integer, ERR_OVERFLOW. */
int eng_hincrby(struct eng_ctx *c, const char *key, size_t klen, const char *f, size_t fl, int64_t delta,
                int64_t *result);
/* HINCRBYFLOAT: the result's text goes to out (ENG_LDOUBLE_CHARS bytes),
 * formatted as Redis does (%.17Lf, trailing zeros dropped).  ERR_NOTFLOAT when
 * the value is not a number, ERR_NAN when the result would be NaN or
 * infinite. */
int eng_hincrbyfloat(struct eng_ctx *c, const char *key, size_t klen, const char *f, size_t fl, long double delta,
                     char *out, size_t *outlen);
/* HRANDFIELD: count >= 0 picks min(count, len) distinct fields; count < 0
 * picks -count fields with repeats.  head gets how many pairs follow. */
int eng_hrandfield(struct eng_ctx *c, const char *key, size_t klen, int64_t count, eng_count_fn *head,
                   eng_pair_fn *fn, void *ud);
/* HSCAN: one step from cursor; fn gets the pairs whose field matches pat
 * (NULL = all).  A "listpack" hash is returned whole with *next = 0, as
 * Redis does; a missing key gives nothing and *next = 0. */
int eng_hscan(struct eng_ctx *c, const char *key, size_t klen, uint64_t cursor, const char *pat, size_t plen,
              int64_t count, eng_pair_fn *fn, void *ud, uint64_t *next);

#endif
