/* list.h: the list type of the engine (Redis's LPUSH family), for protocol/,
 * the blocking pops and the bot.  Implemented in t_list.c.
 *
 * Contract.  Every function runs inside a context whose locks cover every key
 * it names (engine.h).  Keys and elements are (ptr, len) views, borrowed for
 * the call.  A function returns 0 (or the count/flag it documents) on
 * success, or a negative ERR_xxx: ERR_WRONGTYPE when a key holds another
 * type, ERR_NOKEY when a function that needs the list finds none (a list is
 * never empty: it goes with its last element).  Out-parameters are written
 * only on success.
 *
 * Elements handed out: first `head` (may be NULL) with the number of
 * elements that follow, then `fn` once per element.  The bytes are valid
 * during the call only, and callbacks must not call back into the engine.
 *
 * Encodings (OBJECT ENCODING): "listpack" while the list fits one block of
 * ENG_LIST_MAX_LISTPACK_SIZE bytes; "quicklist" (a doubly linked list of
 * such blocks) beyond.  A quicklist that shrinks to one block of at most half
 * that size turns back into a listpack, as Redis 7.2 does.
 *
 * Effects: every change is journaled as a command that replays it (pops as
 * LPOP/RPOP key count, LMOVE as LMOVE) and notified with Redis's event names
 * ("lpush", "rpush", "lpop", "rpop", "linsert", "lset", "lrem", "ltrim", and
 * "del" when a list empties).  Every call that adds elements signals the key
 * as ready (struct eng_hooks.ready) so that blocked clients may proceed. */
#ifndef ENGINE_LIST_H
#define ENGINE_LIST_H

#include <stddef.h>
#include <stdint.h>

#include "engine.h"

#define ENG_LIST_MAX_LISTPACK_SIZE 8192 /* list-max-listpack-size -2 */

enum eng_where { ENG_LIST_HEAD = 0, ENG_LIST_TAIL = 1 }; /* LEFT, RIGHT */

/* Called first with the number of elements that will follow. */
typedef void eng_list_count_fn(void *ud, int64_t n);
/* One element (view valid during the call only). */
typedef void eng_list_elem_fn(void *ud, const char *p, size_t n);

/* LPUSH/RPUSH (where), LPUSHX/RPUSHX (xx: only onto an existing list).
 * Elements go one after the other, as Redis pushes them.  *len gets the new
 * length (0 when xx found no list). */
int eng_list_push(struct eng_ctx *c, const char *key, size_t klen, int where, int xx, const struct eng_str *elems,
                  int n, int64_t *len);
/* LPOP/RPOP: removes min(count, length) elements (count >= 1) from `where`
 * and hands them out in the order popped.  ERR_NOKEY when there is no list. */
int eng_list_pop(struct eng_ctx *c, const char *key, size_t klen, int where, int64_t count, eng_list_count_fn *head,
                 eng_list_elem_fn *fn, void *ud);
/* LMPOP and the blocking pops: pops as eng_list_pop from the first of keys
 * that holds a list.  *which gets that key's index before head is called.
 * ERR_NOKEY when none does; ERR_WRONGTYPE when a key met before it holds
 * another type. */
int eng_list_mpop(struct eng_ctx *c, const struct eng_str *keys, int nkeys, int where, int64_t count,
                  eng_list_count_fn *head, eng_list_elem_fn *fn, void *ud, int *which);
/* LMOVE/RPOPLPUSH: pops from src's `from` end, pushes onto dst's `to` end
 * (src == dst rotates) and hands the element out (head gets 1).
 * ERR_NOKEY when src holds no list (dst is not checked then);
 * ERR_WRONGTYPE when src or dst holds another type (nothing moved). */
int eng_lmove(struct eng_ctx *c, const char *src, size_t slen, const char *dst, size_t dlen, int from, int to,
              eng_list_count_fn *head, eng_list_elem_fn *fn, void *ud);
/* LLEN: 0 for a missing key. */
int eng_list_len(struct eng_ctx *c, const char *key, size_t klen, int64_t *len);
/* LRANGE with Redis's index rules (negative from the end, clamped).
 * ERR_NOKEY when there is no list (nothing called). */
int eng_list_range(struct eng_ctx *c, const char *key, size_t klen, int64_t start, int64_t stop,
                   eng_list_count_fn *head, eng_list_elem_fn *fn, void *ud);
/* LINDEX: *out views the element (valid until the list changes or the
 * context unlocks).  ERR_NOKEY when there is no list, ERR_RANGE when the
 * index is outside it. */
int eng_list_index(struct eng_ctx *c, const char *key, size_t klen, int64_t index, struct eng_str *out);
/* LSET: ERR_NOKEY, ERR_RANGE as eng_list_index. */
int eng_list_set(struct eng_ctx *c, const char *key, size_t klen, int64_t index, const char *p, size_t n);
/* LINSERT: inserts elem before (after = 0) or after the first element equal
 * to pivot.  *len gets the new length, -1 when pivot is absent, 0 when there
 * is no list. */
int eng_list_insert(struct eng_ctx *c, const char *key, size_t klen, int after, const char *pivot, size_t plen,
                    const char *elem, size_t elen, int64_t *len);
/* LREM: removes up to |count| elements equal to elem (count > 0 from the
 * head, < 0 from the tail, 0 all).  *removed gets how many went (0 for a
 * missing key). */
int eng_list_rem(struct eng_ctx *c, const char *key, size_t klen, int64_t count, const char *elem, size_t elen,
                 int64_t *removed);
/* LTRIM with LRANGE's index rules; a missing key is left alone. */
int eng_list_trim(struct eng_ctx *c, const char *key, size_t klen, int64_t start, int64_t stop);
/* LPOS: fn gets the index of each match, in the order found.  rank != 0:
 * the rank-th match from the head (> 0) or the tail (< 0) is the first
 * reported; count: how many matches to report at most (0 = all); maxlen: how
 * many elements to compare at most (0 = all).  A missing key reports
 * nothing. */
int eng_list_pos(struct eng_ctx *c, const char *key, size_t klen, const char *elem, size_t elen, int64_t rank,
                 int64_t count, int64_t maxlen, void (*fn)(void *ud, int64_t index), void *ud);

#endif
