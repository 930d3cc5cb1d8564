/* t_zset.c: the sorted set type (zset.h).  Two encodings, as Redis's:
 *
 * "listpack": one block holding the whole set in order, each entry the
 * member's length, its bytes, the score and the length again (so the block
 * can be walked backwards for the REV ranges):
 *
 *   +-----+-----+-------+------+-----+----+--------+-------+----+-- ... --+
 *   | tag | pad | count | used | cap | ml | member | score | ml |         |
 *   +-----+-----+-------+------+-----+----+--------+-------+----+-- ... --+
 *     1     1     2       4      4     1    ml       8       1
 *
 * "skiplist": Redis's skip list (levels with span counts, so that a rank is
 * found in O(log n) and a rank found while descending), plus engine/dict.h
 * from member to node.  The node is one allocation: the dict link, the
 * score, the levels, then the member's bytes.  A score or lex range is
 * resolved to a rank interval [lo, hi) by two descents, so counts, LIMIT
 * offsets and removals never walk the members they skip.
 *
 * Each value block starts with a tag byte naming its encoding because the
 * type ops (free, mem, dup) are handed the block alone.  Not here: argument
 * parsing and replies (protocol/cmd_zset.c). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/glob.h"
#include "base/num.h"
#include "engine_int.h"
#include "set.h"
#include "zset.h"

_Static_assert(ENG_ZSET_MAX_LISTPACK_VALUE < 256, "listpack lengths are one byte");
_Static_assert(ENG_ZSET_MAX_LISTPACK_ENTRIES < 65536, "listpack count is 16 bits");

enum { TAG_LISTPACK = 1, TAG_SKIPLIST = 2 };
#define ZSL_MAXLEVEL 32

struct zlp {
    uint8_t tag;
    uint8_t pad;
    uint16_t count;
    uint32_t used, cap;
    unsigned char p[];
};

struct znode {
    struct dict_node dn; /* first: the dict links this */
    double score;
    struct znode *backward;
    uint32_t len;
    uint32_t nlevel;
    struct zlevel {
        struct znode *forward;
        uint64_t span;
    } level[]; /* then the member's bytes */
};

struct zsl {
    uint8_t tag;
    int level;
    uint64_t length;
    uint64_t rng;
    struct znode *header, *tail;
    struct dict dict;
};

/* A listpack keeps no sign on a zero score: Redis 7.0 writes listpack
 * scores as text through an integer first, so -0 comes back as 0 (a skip
 * list keeps the double as it is, and Redis answers "-0" from it). */
static inline double zfix(double d) { return d == 0 ? 0.0 : d; }

static inline int cmp_bytes(const char *a, size_t an, const char *b, size_t bn)
{
    int r = memcmp(a, b, an < bn ? an : bn);
    return r ? r : (an < bn ? -1 : an > bn);
}

/* Order of (score, member) pairs. */
static inline int cmp_entry(double s1, const char *a, size_t an, double s2, const char *b, size_t bn)
{
    if (s1 != s2)
        return s1 < s2 ? -1 : 1;
    return cmp_bytes(a, an, b, bn);
}

static int lex_gte_min(const char *m, size_t n, const struct eng_zlex *b)
{
    switch (b->kind) {
    case ENG_ZLEX_MIN:
        return 1;
    case ENG_ZLEX_MAX:
        return 0;
    case ENG_ZLEX_EXCL:
        return cmp_bytes(m, n, b->p, b->n) > 0;
    default:
        return cmp_bytes(m, n, b->p, b->n) >= 0;
    }
}

static int lex_lte_max(const char *m, size_t n, const struct eng_zlex *b)
{
    switch (b->kind) {
    case ENG_ZLEX_MIN:
        return 0;
    case ENG_ZLEX_MAX:
        return 1;
    case ENG_ZLEX_EXCL:
        return cmp_bytes(m, n, b->p, b->n) < 0;
    default:
        return cmp_bytes(m, n, b->p, b->n) <= 0;
    }
}

static int score_above_min(double s, double min, int ex) { return ex ? s > min : s >= min; }
static int score_below_max(double s, double max, int ex) { return ex ? s < max : s <= max; }

/* ---- listpack ------------------------------------------------------------ */

static inline size_t lp_esize(const unsigned char *e) { return (size_t)e[0] + 10; }
static inline const char *lp_member(const unsigned char *e, size_t *n)
{
    *n = e[0];
    return (const char *)e + 1;
}
static inline double lp_score(const unsigned char *e)
{
    double d;
    memcpy(&d, e + 1 + e[0], 8);
    return d;
}

static struct zlp *lp_new(size_t cap)
{
    if (cap < 32)
        cap = 32;
    struct zlp *lp = xmalloc(sizeof *lp + cap);
    lp->tag = TAG_LISTPACK, lp->pad = 0, lp->count = 0, lp->used = 0, lp->cap = (uint32_t)cap;
    return lp;
}

static struct zlp *lp_reserve(struct zlp *lp, size_t extra)
{
    size_t need = lp->used + extra;
    if (need <= lp->cap)
        return lp;
    size_t cap = lp->cap * 2 > need ? lp->cap * 2 : need;
    lp = xrealloc(lp, sizeof *lp + cap);
    lp->cap = (uint32_t)cap;
    return lp;
}

/* Offset of member m, or -1. */
static int64_t lp_find(const struct zlp *lp, const char *m, size_t n)
{
    for (uint32_t o = 0; o < lp->used; o += (uint32_t)lp_esize(lp->p + o))
        if (lp->p[o] == n && memcmp(lp->p + o + 1, m, n) == 0)
            return o;
    return -1;
}

static uint32_t lp_offset_of(const struct zlp *lp, uint64_t rank)
{
    uint32_t o = 0;
    while (rank--)
        o += (uint32_t)lp_esize(lp->p + o);
    return o;
}

/* Appends an entry at the end (the caller keeps the order). */
static struct zlp *lp_append(struct zlp *lp, const char *m, size_t n, double score)
{
    score = zfix(score);
    lp = lp_reserve(lp, n + 10);
    unsigned char *e = lp->p + lp->used;
    e[0] = (unsigned char)n;
    memcpy(e + 1, m, n);
    memcpy(e + 1 + n, &score, 8);
    e[n + 9] = (unsigned char)n;
    lp->used += (uint32_t)(n + 10);
    lp->count++;
    return lp;
}

static struct zlp *lp_insert(struct zlp *lp, const char *m, size_t n, double score)
{
    score = zfix(score);
    uint32_t o = 0;
    while (o < lp->used) {
        size_t en;
        const char *em = lp_member(lp->p + o, &en);
        if (cmp_entry(lp_score(lp->p + o), em, en, score, m, n) > 0)
            break;
        o += (uint32_t)lp_esize(lp->p + o);
    }
    lp = lp_reserve(lp, n + 10);
    memmove(lp->p + o + n + 10, lp->p + o, lp->used - o);
    unsigned char *e = lp->p + o;
    e[0] = (unsigned char)n;
    memcpy(e + 1, m, n);
    memcpy(e + 1 + n, &score, 8);
    e[n + 9] = (unsigned char)n;
    lp->used += (uint32_t)(n + 10);
    lp->count++;
    return lp;
}

/* Removes the entries in [from, to) (byte offsets) holding cnt members. */
static void lp_cut(struct zlp *lp, uint32_t from, uint32_t to, uint32_t cnt)
{
    memmove(lp->p + from, lp->p + to, lp->used - to);
    lp->used -= to - from;
    lp->count = (uint16_t)(lp->count - cnt);
}

/* ---- skip list ----------------------------------------------------------- */

static inline char *zn_member(const struct znode *x) { return (char *)(x->level + x->nlevel); }

static uint64_t zn_hash(const struct dict_node *n)
{
    const struct znode *x = (const struct znode *)n;
    return eng__hash(zn_member(x), x->len);
}
static int zn_eq(const struct dict_node *n, const void *key, size_t len)
{
    const struct znode *x = (const struct znode *)n;
    return x->len == len && memcmp(zn_member(x), key, len) == 0;
}
static const struct dict_type zn_type = {zn_hash, zn_eq};

static struct znode *zn_new(int level, double score, const char *m, size_t n)
{
    struct znode *x = xmalloc(sizeof *x + (size_t)level * sizeof x->level[0] + n);
    x->dn.next = NULL;
    x->score = score;
    x->backward = NULL;
    x->len = (uint32_t)n;
    x->nlevel = (uint32_t)level;
    for (int i = 0; i < level; i++)
        x->level[i].forward = NULL, x->level[i].span = 0;
    memcpy(zn_member(x), m, n);
    return x;
}

static struct zsl *zsl_new(void)
{
    struct zsl *z = xmalloc(sizeof *z);
    z->tag = TAG_SKIPLIST;
    z->level = 1;
    z->length = 0;
    z->rng = 0x9E3779B97F4A7C15ULL ^ (uint64_t)(uintptr_t)z;
    z->header = zn_new(ZSL_MAXLEVEL, 0, "", 0);
    z->tail = NULL;
    dict_init(&z->dict, &zn_type);
    return z;
}

static void zsl_free(struct zsl *z)
{
    struct znode *x = z->header->level[0].forward;
    while (x) {
        struct znode *next = x->level[0].forward;
        xfree(x);
        x = next;
    }
    xfree(z->header);
    dict_release(&z->dict, NULL, NULL);
    xfree(z);
}

/* Redis's level distribution: each level with probability 1/4. */
static int zsl_random_level(struct zsl *z)
{
    int level = 1;
    for (;;) {
        z->rng ^= z->rng << 13, z->rng ^= z->rng >> 7, z->rng ^= z->rng << 17;
        uint64_t r = z->rng;
        for (int i = 0; i < 32; i++, r >>= 2) {
            if ((r & 3) != 0 || level >= ZSL_MAXLEVEL)
                return level;
            level++;
        }
    }
}

/* A search step on level i stands at p and loads p's successor there, a
 * cache miss in a large list; the node it visits next if it goes down a
 * level instead is p's successor on level i - 1, known already: fetching
 * that one meanwhile overlaps the two misses of the step (zsl_link and
 * zsl_unlink: ZADD on a large set is bound by these misses). */
static inline void zsl_prefetch_down(const struct znode *p, int i)
{
    if (i > 0)
        __builtin_prefetch(p->level[i - 1].forward);
}

/* How the successor of p on level i compares with x (score, member m):
 * < 0 before, 0 x itself, > 0 after (or none). */
static inline int zsl_cmp_next(const struct znode *p, int i, const struct znode *x, const char *m)
{
    const struct znode *f = p->level[i].forward;
    zsl_prefetch_down(p, i);
    return f ? cmp_entry(f->score, zn_member(f), f->len, x->score, m, x->len) : 1;
}

/* Links x (not linked yet, not equal to any node) at its place. */
static void zsl_link(struct zsl *z, struct znode *x)
{
    struct znode *update[ZSL_MAXLEVEL];
    uint64_t rank[ZSL_MAXLEVEL];
    struct znode *p = z->header;
    const char *m = zn_member(x);
    for (int i = z->level - 1; i >= 0; i--) {
        rank[i] = i == z->level - 1 ? 0 : rank[i + 1];
        while (zsl_cmp_next(p, i, x, m) < 0) {
            rank[i] += p->level[i].span;
            p = p->level[i].forward;
        }
        update[i] = p;
    }
    int level = (int)x->nlevel;
    if (level > z->level) {
        for (int i = z->level; i < level; i++) {
            rank[i] = 0;
            update[i] = z->header;
            update[i]->level[i].span = z->length;
        }
        z->level = level;
    }
    for (int i = 0; i < level; i++) {
        x->level[i].forward = update[i]->level[i].forward;
        update[i]->level[i].forward = x;
        x->level[i].span = update[i]->level[i].span - (rank[0] - rank[i]);
        update[i]->level[i].span = (rank[0] - rank[i]) + 1;
    }
    for (int i = level; i < z->level; i++)
        update[i]->level[i].span++;
    x->backward = update[0] == z->header ? NULL : update[0];
    if (x->level[0].forward)
        x->level[0].forward->backward = x;
    else
        z->tail = x;
    z->length++;
}

static void zsl_unlink_node(struct zsl *z, struct znode *x, struct znode **update)
{
    for (int i = 0; i < z->level; i++) {
        if (update[i]->level[i].forward == x) {
            update[i]->level[i].span += x->level[i].span - 1;
            update[i]->level[i].forward = x->level[i].forward;
        } else {
            update[i]->level[i].span -= 1;
        }
    }
    if (x->level[0].forward)
        x->level[0].forward->backward = x->backward;
    else
        z->tail = x->backward;
    while (z->level > 1 && z->header->level[z->level - 1].forward == NULL)
        z->level--;
    z->length--;
}

/* Unlinks x (linked) from the list, not from the dict. */
static void zsl_unlink(struct zsl *z, struct znode *x)
{
    struct znode *update[ZSL_MAXLEVEL];
    struct znode *p = z->header;
    const char *m = zn_member(x);
    for (int i = z->level - 1; i >= 0; i--) {
        while (zsl_cmp_next(p, i, x, m) < 0)
            p = p->level[i].forward;
        update[i] = p;
    }
    assert(p->level[0].forward == x);
    zsl_unlink_node(z, x, update);
}

static struct znode *zsl_find(struct zsl *z, const char *m, size_t n)
{
    return (struct znode *)dict_find(&z->dict, m, n, eng__hash(m, n));
}

static void zsl_insert(struct zsl *z, const char *m, size_t n, double score)
{
    struct znode *x = zn_new(zsl_random_level(z), score, m, n);
    zsl_link(z, x);
    dict_add(&z->dict, &x->dn, eng__hash(m, n));
}

/* Changes the score of x, moving it only when its place changes. */
static void zsl_rescore(struct zsl *z, struct znode *x, double score)
{
    const char *m = zn_member(x);
    struct znode *b = x->backward, *f = x->level[0].forward;
    if ((!b || cmp_entry(b->score, zn_member(b), b->len, score, m, x->len) < 0) &&
        (!f || cmp_entry(f->score, zn_member(f), f->len, score, m, x->len) > 0)) {
        x->score = score;
        return;
    }
    zsl_unlink(z, x);
    x->score = score;
    zsl_link(z, x);
}

/* 0-based rank of a linked node. */
static uint64_t zsl_rank(const struct zsl *z, const struct znode *x)
{
    uint64_t rank = 0;
    const struct znode *p = z->header;
    const char *m = zn_member(x);
    for (int i = z->level - 1; i >= 0; i--) {
        while (zsl_cmp_next(p, i, x, m) <= 0) {
            rank += p->level[i].span;
            p = p->level[i].forward;
        }
        if (p == x)
            break;
    }
    return rank - 1;
}

/* The node at 0-based rank (< length). */
static struct znode *zsl_at(const struct zsl *z, uint64_t rank)
{
    uint64_t traversed = 0;
    rank++;
    struct znode *p = z->header;
    for (int i = z->level - 1; i >= 0; i--) {
        while ((zsl_prefetch_down(p, i), p->level[i].forward) && traversed + p->level[i].span <= rank) {
            traversed += p->level[i].span;
            p = p->level[i].forward;
        }
        if (traversed == rank)
            return p;
    }
    return NULL;
}

/* Number of leading nodes for which before(ud, node) holds (the predicate
 * must hold for a prefix of the order). */
static uint64_t zsl_count_prefix(const struct zsl *z, int (*before)(const void *ud, const struct znode *x),
                                 const void *ud)
{
    uint64_t rank = 0;
    const struct znode *p = z->header;
    for (int i = z->level - 1; i >= 0; i--) {
        while (p->level[i].forward && before(ud, p->level[i].forward)) {
            rank += p->level[i].span;
            p = p->level[i].forward;
        }
    }
    return rank;
}

/* ---- the two encodings behind one interface ------------------------------ */

static inline int is_lp(const void *v) { return *(const uint8_t *)v == TAG_LISTPACK; }
static inline struct zlp *as_lp(void *v) { return v; }
static inline struct zsl *as_sl(void *v) { return v; }

static uint64_t z_len(const void *v)
{
    return is_lp(v) ? ((const struct zlp *)v)->count : ((const struct zsl *)v)->length;
}

static int z_find(void *v, const char *m, size_t n, double *score)
{
    if (is_lp(v)) {
        int64_t o = lp_find(as_lp(v), m, n);
        if (o < 0)
            return 0;
        *score = lp_score(as_lp(v)->p + o);
        return 1;
    }
    struct znode *x = zsl_find(as_sl(v), m, n);
    if (!x)
        return 0;
    *score = x->score;
    return 1;
}

static void z_free(void *v)
{
    if (is_lp(v))
        xfree(v);
    else
        zsl_free(v);
}

static struct zsl *lp_to_sl(struct zlp *lp)
{
    struct zsl *z = zsl_new();
    for (uint32_t o = 0; o < lp->used; o += (uint32_t)lp_esize(lp->p + o)) {
        size_t n;
        const char *m = lp_member(lp->p + o, &n);
        zsl_insert(z, m, n, lp_score(lp->p + o));
    }
    xfree(lp);
    return z;
}

static struct zlp *sl_to_lp(struct zsl *z)
{
    size_t bytes = 0;
    for (struct znode *x = z->header->level[0].forward; x; x = x->level[0].forward)
        bytes += x->len + 10;
    struct zlp *lp = lp_new(bytes);
    for (struct znode *x = z->header->level[0].forward; x; x = x->level[0].forward)
        lp = lp_append(lp, zn_member(x), x->len, x->score);
    zsl_free(z);
    return lp;
}

/* A new empty set in the encoding that suits `size` members of at most
 * `maxlen` bytes. */
static void *z_new(uint64_t size, size_t maxlen)
{
    if (size <= ENG_ZSET_MAX_LISTPACK_ENTRIES && maxlen <= ENG_ZSET_MAX_LISTPACK_VALUE)
        return lp_new(size * 16);
    return zsl_new();
}

/* Inserts a member known to be absent, converting to a skip list first when
 * the listpack would pass its limits. */
static void z_insert(void **vp, const char *m, size_t n, double score)
{
    if (is_lp(*vp)) {
        struct zlp *lp = *vp;
        if (lp->count + 1u > ENG_ZSET_MAX_LISTPACK_ENTRIES || n > ENG_ZSET_MAX_LISTPACK_VALUE) {
            *vp = lp_to_sl(lp);
        } else {
            *vp = lp_insert(lp, m, n, score);
            return;
        }
    }
    zsl_insert(as_sl(*vp), m, n, score);
}

static void z_rescore(void **vp, const char *m, size_t n, double score)
{
    if (is_lp(*vp)) {
        struct zlp *lp = *vp;
        int64_t o = lp_find(lp, m, n);
        assert(o >= 0);
        lp_cut(lp, (uint32_t)o, (uint32_t)o + (uint32_t)n + 10, 1);
        *vp = lp_insert(lp, m, n, score);
        return;
    }
    struct znode *x = zsl_find(as_sl(*vp), m, n);
    zsl_rescore(as_sl(*vp), x, score);
}

static int z_delete(void *v, const char *m, size_t n)
{
    if (is_lp(v)) {
        struct zlp *lp = v;
        int64_t o = lp_find(lp, m, n);
        if (o < 0)
            return 0;
        lp_cut(lp, (uint32_t)o, (uint32_t)o + (uint32_t)n + 10, 1);
        return 1;
    }
    struct zsl *z = v;
    struct znode *x = (struct znode *)dict_unlink(&z->dict, m, n, eng__hash(m, n));
    if (!x)
        return 0;
    zsl_unlink(z, x);
    xfree(x);
    return 1;
}

static uint64_t z_rank(void *v, const char *m, size_t n)
{
    if (is_lp(v)) {
        struct zlp *lp = v;
        uint64_t r = 0;
        for (uint32_t o = 0; o < lp->used; o += (uint32_t)lp_esize(lp->p + o), r++)
            if (lp->p[o] == n && memcmp(lp->p + o + 1, m, n) == 0)
                return r;
        return UINT64_MAX;
    }
    struct znode *x = zsl_find(as_sl(v), m, n);
    return x ? zsl_rank(as_sl(v), x) : UINT64_MAX;
}

/* A cursor over the members in order. */
struct zit {
    void *v;
    uint32_t off;    /* listpack: offset of the entry */
    struct znode *x; /* skip list: the node */
};

static void zit_seek(void *v, uint64_t rank, struct zit *it)
{
    it->v = v;
    if (is_lp(v)) {
        it->off = lp_offset_of(v, rank);
        it->x = NULL;
    } else {
        it->x = zsl_at(v, rank);
    }
}

static const char *zit_get(const struct zit *it, size_t *n, double *score)
{
    if (is_lp(it->v)) {
        const unsigned char *e = as_lp(it->v)->p + it->off;
        *score = lp_score(e);
        return lp_member(e, n);
    }
    *n = it->x->len;
    *score = it->x->score;
    return zn_member(it->x);
}

static void zit_next(struct zit *it)
{
    if (is_lp(it->v)) {
        it->off += (uint32_t)lp_esize(as_lp(it->v)->p + it->off);
    } else {
        it->x = it->x->level[0].forward;
    }
}

static void zit_prev(struct zit *it)
{
    if (is_lp(it->v)) {
        if (it->off)
            it->off -= (uint32_t)as_lp(it->v)->p[it->off - 1] + 10;
    } else {
        it->x = it->x->backward;
    }
}

/* Predicates for the prefix counts of the range bounds. */
struct bound {
    double s;
    int ex;
    const struct eng_zlex *lex;
};
static int below_min_score(const void *ud, double s)
{
    const struct bound *b = ud;
    return !score_above_min(s, b->s, b->ex);
}
static int within_max_score(const void *ud, double s)
{
    const struct bound *b = ud;
    return score_below_max(s, b->s, b->ex);
}
static int below_min_lex(const void *ud, const char *m, size_t n)
{
    return !lex_gte_min(m, n, ((const struct bound *)ud)->lex);
}
static int within_max_lex(const void *ud, const char *m, size_t n)
{
    return lex_lte_max(m, n, ((const struct bound *)ud)->lex);
}

struct pred {
    int (*score)(const void *ud, double s);
    int (*lex)(const void *ud, const char *m, size_t n);
    const struct bound *b;
};
static int zsl_pred(const void *ud, const struct znode *x)
{
    const struct pred *p = ud;
    return p->score ? p->score(p->b, x->score) : p->lex(p->b, zn_member(x), x->len);
}

/* Number of leading members for which the predicate holds. */
static uint64_t z_count_prefix(void *v, const struct pred *p)
{
    if (!is_lp(v))
        return zsl_count_prefix(v, zsl_pred, p);
    struct zlp *lp = v;
    uint64_t r = 0;
    for (uint32_t o = 0; o < lp->used; o += (uint32_t)lp_esize(lp->p + o), r++) {
        size_t n;
        const char *m = lp_member(lp->p + o, &n);
        if (!(p->score ? p->score(p->b, lp_score(lp->p + o)) : p->lex(p->b, m, n)))
            break;
    }
    return r;
}

/* Normalises a rank range as Redis does: [*lo, *hi) in forward ranks. */
static void rank_interval(uint64_t len, int64_t start, int64_t stop, int rev, uint64_t *lo, uint64_t *hi)
{
    int64_t l = (int64_t)len;
    if (start < 0)
        start += l;
    if (stop < 0)
        stop += l;
    if (start < 0)
        start = 0;
    if (start > stop || start >= l) {
        *lo = *hi = 0;
        return;
    }
    if (stop >= l)
        stop = l - 1;
    if (rev) {
        *lo = (uint64_t)(l - 1 - stop);
        *hi = (uint64_t)(l - start);
    } else {
        *lo = (uint64_t)start;
        *hi = (uint64_t)stop + 1;
    }
}

/* Redis's sdscmplex on bounds: "-" below and "+" above every string. */
static int lex_bounds_cmp(const struct eng_zlex *a, const struct eng_zlex *b)
{
    int ia = a->kind == ENG_ZLEX_MIN ? -1 : a->kind == ENG_ZLEX_MAX,
        ib = b->kind == ENG_ZLEX_MIN ? -1 : b->kind == ENG_ZLEX_MAX;
    if (ia || ib)
        return ia == ib ? 0 : ia < ib ? -1 : 1;
    return cmp_bytes(a->p, a->n, b->p, b->n);
}

/* Redis's zslIsInLexRange/zzlIsInLexRange: a sane range (min below max),
 * the last member not below min, the first not above max. */
static int lex_may_match(void *v, const struct eng_zrange *r)
{
    int cmp = lex_bounds_cmp(&r->lmin, &r->lmax);
    if (cmp > 0 || (cmp == 0 && (r->lmin.kind != ENG_ZLEX_INCL || r->lmax.kind != ENG_ZLEX_INCL)))
        return 0;
    uint64_t len = z_len(v);
    if (!len)
        return 0;
    struct zit first, last;
    size_t n;
    double s;
    zit_seek(v, 0, &first);
    zit_seek(v, len - 1, &last);
    const char *m = zit_get(&last, &n, &s);
    if (!lex_gte_min(m, n, &r->lmin))
        return 0;
    m = zit_get(&first, &n, &s);
    return lex_lte_max(m, n, &r->lmax);
}

/* A lex range in a listpack, scanned exactly as Redis does: forward from
 * the first member not below min while members are not above max, or (rev)
 * backward from the last member not above max while members are not below
 * min.  With equal scores (the documented case) this is the same run either
 * way; with mixed scores it keeps Redis's answers.  The LIMIT offset is
 * skipped the same way, before the run's end is looked for. */
static int lp_gte_min(const unsigned char *e, const struct eng_zlex *b)
{
    size_t n;
    const char *m = lp_member(e, &n);
    return lex_gte_min(m, n, b);
}
static int lp_lte_max(const unsigned char *e, const struct eng_zlex *b)
{
    size_t n;
    const char *m = lp_member(e, &n);
    return lex_lte_max(m, n, b);
}

static void lp_lex_interval(struct zlp *lp, const struct eng_zrange *r, int64_t offset, uint64_t *lo, uint64_t *hi)
{
    *lo = *hi = 0;
    if (offset < 0 || (uint64_t)offset >= lp->count)
        return;
    if (!r->rev) {
        uint64_t i = 0;
        uint32_t o = 0;
        while (o < lp->used && !lp_gte_min(lp->p + o, &r->lmin))
            o += (uint32_t)lp_esize(lp->p + o), i++;
        if (o >= lp->used || !lp_lte_max(lp->p + o, &r->lmax))
            return;
        for (; offset && o < lp->used; offset--)
            o += (uint32_t)lp_esize(lp->p + o), i++;
        *lo = i;
        while (o < lp->used && lp_lte_max(lp->p + o, &r->lmax))
            o += (uint32_t)lp_esize(lp->p + o), i++;
        *hi = i;
        return;
    }
    /* Backward: i counts the entries up to and including the one at o. */
    uint64_t i = lp->count;
    uint32_t o = lp->used - ((uint32_t)lp->p[lp->used - 1] + 10);
    while (!lp_lte_max(lp->p + o, &r->lmax)) {
        if (--i == 0)
            return;
        o -= (uint32_t)lp->p[o - 1] + 10;
    }
    if (!lp_gte_min(lp->p + o, &r->lmin))
        return;
    for (; offset; offset--) {
        if (--i == 0)
            return;
        o -= (uint32_t)lp->p[o - 1] + 10;
    }
    *hi = i;
    while (i && lp_gte_min(lp->p + o, &r->lmin)) {
        if (--i)
            o -= (uint32_t)lp->p[o - 1] + 10;
    }
    *lo = i;
}

/* The members a range covers, as forward ranks [*lo, *hi).  *skipped (may
 * be NULL: no LIMIT) is set when the LIMIT offset was applied already. */
static void z_interval(void *v, const struct eng_zrange *r, uint64_t *lo, uint64_t *hi, int *skipped)
{
    if (r->by == ENG_ZBY_RANK) {
        rank_interval(z_len(v), r->start, r->stop, r->rev, lo, hi);
        return;
    }
    if (r->by == ENG_ZBY_LEX && !lex_may_match(v, r)) {
        *lo = *hi = 0;
        return;
    }
    if (r->by == ENG_ZBY_LEX && is_lp(v)) {
        lp_lex_interval(v, r, skipped ? r->offset : 0, lo, hi);
        if (skipped)
            *skipped = 1;
        return;
    }
    struct bound bmin = {r->min, r->minex, &r->lmin}, bmax = {r->max, r->maxex, &r->lmax};
    struct pred pmin = {NULL, NULL, &bmin}, pmax = {NULL, NULL, &bmax};
    if (r->by == ENG_ZBY_SCORE)
        pmin.score = below_min_score, pmax.score = within_max_score;
    else
        pmin.lex = below_min_lex, pmax.lex = within_max_lex;
    *lo = z_count_prefix(v, &pmin);
    *hi = z_count_prefix(v, &pmax);
    if (*hi < *lo)
        *hi = *lo;
}

/* Applies LIMIT: the sub-interval handed out, as forward ranks [*a, *b),
 * counted from the low end (forward) or the high end (rev). */
static void apply_limit(const struct eng_zrange *r, int64_t offset, uint64_t lo, uint64_t hi, uint64_t *a, uint64_t *b)
{
    uint64_t n = hi - lo;
    if (r->by != ENG_ZBY_RANK) {
        if (offset < 0 || (uint64_t)offset >= n) {
            *a = *b = lo;
            return;
        }
        n -= (uint64_t)offset;
        if (r->limit >= 0 && (uint64_t)r->limit < n)
            n = (uint64_t)r->limit;
        if (r->rev)
            hi -= (uint64_t)offset;
        else
            lo += (uint64_t)offset;
    }
    if (r->rev)
        *a = hi - n, *b = hi;
    else
        *a = lo, *b = lo + n;
}

/* Removes the members at forward ranks [lo, hi). */
static void z_del_ranks(void *v, uint64_t lo, uint64_t hi)
{
    if (lo >= hi)
        return;
    if (is_lp(v)) {
        struct zlp *lp = v;
        uint32_t from = lp_offset_of(lp, lo), to = from;
        for (uint64_t i = lo; i < hi; i++)
            to += (uint32_t)lp_esize(lp->p + to);
        lp_cut(lp, from, to, (uint32_t)(hi - lo));
        return;
    }
    struct zsl *z = v;
    struct znode *update[ZSL_MAXLEVEL];
    struct znode *p = z->header;
    uint64_t traversed = 0;
    for (int i = z->level - 1; i >= 0; i--) {
        while (p->level[i].forward && traversed + p->level[i].span <= lo) {
            traversed += p->level[i].span;
            p = p->level[i].forward;
        }
        update[i] = p;
    }
    struct znode *x = p->level[0].forward;
    for (uint64_t i = lo; i < hi && x; i++) {
        struct znode *next = x->level[0].forward;
        zsl_unlink_node(z, x, update);
        struct dict_node *d = dict_unlink(&z->dict, zn_member(x), x->len, eng__hash(zn_member(x), x->len));
        assert(d == &x->dn);
        (void)d;
        xfree(x);
        x = next;
    }
    dict_resize_if_needed(&z->dict);
}

/* ---- type ops ------------------------------------------------------------ */

static size_t z_mem(const void *v)
{
    if (is_lp(v))
        return xmalloc_size(v);
    const struct zsl *z = v;
    size_t n = xmalloc_size(z) + xmalloc_size(z->header) + dict_table_bytes(&z->dict);
    for (const struct znode *x = z->header->level[0].forward; x; x = x->level[0].forward)
        n += xmalloc_size(x);
    return n;
}

static void *z_dup(const void *v)
{
    if (is_lp(v)) {
        const struct zlp *lp = v;
        struct zlp *d = lp_new(lp->used);
        memcpy(d->p, lp->p, lp->used);
        d->used = lp->used;
        d->count = lp->count;
        return d;
    }
    const struct zsl *z = v;
    struct zsl *d = zsl_new();
    for (const struct znode *x = z->header->level[0].forward; x; x = x->level[0].forward)
        zsl_insert(d, zn_member(x), x->len, x->score);
    return d;
}

const struct eng_type_ops eng__zset_ops = {z_free, z_mem, z_dup};

/* ---- helpers for the commands ------------------------------------------- */

static struct eng_key *lookup(struct eng_ctx *c, const char *key, size_t klen, int read, int *err)
{
    return eng__lookup_type(c, key, klen, ENG_T_ZSET, read, err);
}

static void set_enc(struct eng_key *k) { k->enc = is_lp(k->v.p) ? ENC_LISTPACK : ENC_SKIPLIST; }

/* After removals: an empty set goes, with a "del" event.  1 when deleted. */
static int settle(struct eng_ctx *c, struct eng_key *k)
{
    if (z_len(k->v.p))
        return 0;
    eng__changed(c, k->key, k->klen, ENG_EV_GENERIC, "del");
    eng__delete(c, k);
    return 1;
}

/* An argv under construction for the journal, numbers formatted inside.
 * Nothing is built when nobody keeps it (eng__journal_wanted).  Scores are
 * written with %.17g: exact, and one snprintf (the shortest form costs a
 * search). */
struct jargs {
    struct eng_str *argv;
    char (*num)[32];
    int argc, nnum;
};

static void jargs_init(struct eng_ctx *c, struct jargs *j, int max, int maxnum)
{
    j->argc = j->nnum = 0;
    j->argv = NULL, j->num = NULL;
    if (!eng__journal_wanted(c))
        return;
    j->argv = xmalloc(sizeof *j->argv * (size_t)max);
    if (maxnum)
        j->num = xmalloc(sizeof *j->num * (size_t)maxnum);
}
static void jargs_str(struct jargs *j, const char *p, size_t n)
{
    if (j->argv)
        j->argv[j->argc++] = (struct eng_str){p, n};
}
static void jargs_cstr(struct jargs *j, const char *s) { jargs_str(j, s, strlen(s)); }
static void jargs_double(struct jargs *j, double d)
{
    if (!j->argv)
        return;
    char *t = j->num[j->nnum++];
    jargs_str(j, t, (size_t)snprintf(t, sizeof j->num[0], "%.17g", d));
}
static void jargs_free(struct jargs *j)
{
    xfree(j->argv);
    xfree(j->num);
}
static void jargs_done(struct eng_ctx *c, struct jargs *j)
{
    if (j->argv)
        eng__journal(c, j->argc, j->argv);
    jargs_free(j);
}

/* ---- ZADD and friends ---------------------------------------------------- */

enum { ADD_NOP = 1, ADD_ADDED = 2, ADD_UPDATED = 4, ADD_NAN = 8 };

/* Redis's zsetAdd for one member. */
static int add_one(void **vp, unsigned flags, double score, const char *m, size_t n, double *newscore)
{
    double cur;
    if (z_find(*vp, m, n, &cur)) {
        if (flags & ENG_ZADD_NX)
            return ADD_NOP;
        if (flags & ENG_ZADD_INCR) {
            score += cur;
            if (isnan(score))
                return ADD_NAN;
        }
        if (((flags & ENG_ZADD_LT) && score >= cur) || ((flags & ENG_ZADD_GT) && score <= cur))
            return ADD_NOP;
        *newscore = score;
        if (score != cur) {
            z_rescore(vp, m, n, score);
            return ADD_UPDATED;
        }
        return 0;
    }
    if (flags & ENG_ZADD_XX)
        return ADD_NOP;
    z_insert(vp, m, n, score);
    *newscore = score;
    return ADD_ADDED;
}

int eng_zadd(struct eng_ctx *c, const char *key, size_t klen, unsigned flags, const double *scores,
             const struct eng_str *members, int n, struct eng_zadd_out *out)
{
    int err;
    struct eng_key *k = lookup(c, key, klen, 0, &err);
    if (err)
        return err;
    memset(out, 0, sizeof *out);
    if (!k && (flags & ENG_ZADD_XX))
        return 0;
    if (!k) {
        /* As Redis 7.0: the first member alone picks the encoding, and the
         * set converts as it grows (zeros added while it is a listpack lose
         * their sign, as there). */
        k = eng__key_new(key, klen, ENG_T_ZSET, ENC_LISTPACK, 0);
        k->v.p = z_new(1, members[0].n);
        eng__add(c, k);
    }
    struct jargs j;
    jargs_init(c, &j, 2 + 2 * n, n);
    jargs_cstr(&j, "ZADD");
    jargs_str(&j, key, klen);
    int rc = 0;
    for (int i = 0; i < n; i++) {
        double score = scores[i];
        int r = add_one(&k->v.p, flags, scores[i], members[i].p, members[i].n, &score);
        if (r & ADD_NAN) {
            rc = ERR_NAN;
            break;
        }
        out->added += (r & ADD_ADDED) != 0;
        out->updated += (r & ADD_UPDATED) != 0;
        if (!(r & ADD_NOP)) {
            out->processed++;
            out->score = score;
        }
        if (r & (ADD_ADDED | ADD_UPDATED)) {
            jargs_double(&j, score);
            jargs_str(&j, members[i].p, members[i].n);
        }
    }
    set_enc(k);
    if (out->added || out->updated) {
        jargs_done(c, &j);
        eng__changed(c, key, klen, ENG_EV_ZSET, (flags & ENG_ZADD_INCR) ? "zincr" : "zadd");
    } else {
        jargs_free(&j);
    }
    if (out->added)
        eng__signal_ready(c, key, klen);
    if (!z_len(k->v.p))
        eng__delete(c, k); /* nothing went in: leave no empty set behind */
    return rc;
}

int eng_zrem(struct eng_ctx *c, const char *key, size_t klen, const struct eng_str *members, int n, int64_t *removed)
{
    int err;
    struct eng_key *k = lookup(c, key, klen, 0, &err);
    if (err)
        return err;
    *removed = 0;
    if (!k)
        return 0;
    struct jargs j;
    jargs_init(c, &j, 2 + n, 0);
    jargs_cstr(&j, "ZREM");
    jargs_str(&j, key, klen);
    for (int i = 0; i < n && z_len(k->v.p); i++) {
        if (z_delete(k->v.p, members[i].p, members[i].n)) {
            (*removed)++;
            jargs_str(&j, members[i].p, members[i].n);
        }
    }
    if (!*removed) {
        jargs_free(&j);
        return 0;
    }
    if (!is_lp(k->v.p))
        dict_resize_if_needed(&as_sl(k->v.p)->dict);
    jargs_done(c, &j);
    eng__changed(c, key, klen, ENG_EV_ZSET, "zrem");
    settle(c, k);
    return 0;
}

int eng_zcard(struct eng_ctx *c, const char *key, size_t klen, int64_t *n)
{
    int err;
    struct eng_key *k = lookup(c, key, klen, 1, &err);
    if (err)
        return err;
    *n = k ? (int64_t)z_len(k->v.p) : 0;
    return 0;
}

int eng_zscore(struct eng_ctx *c, const char *key, size_t klen, const char *m, size_t ml, double *score)
{
    int err;
    struct eng_key *k = lookup(c, key, klen, 1, &err);
    if (!k)
        return err ? err : ERR_NOKEY;
    return z_find(k->v.p, m, ml, score) ? 0 : ERR_NOKEY;
}

int eng_zmscore(struct eng_ctx *c, const char *key, size_t klen, const struct eng_str *members, int n, double *scores,
                int *found)
{
    int err;
    struct eng_key *k = lookup(c, key, klen, 1, &err);
    if (err)
        return err;
    for (int i = 0; i < n; i++)
        found[i] = k ? z_find(k->v.p, members[i].p, members[i].n, &scores[i]) : 0;
    return 0;
}

int eng_zrank(struct eng_ctx *c, const char *key, size_t klen, const char *m, size_t ml, int rev, int64_t *rank,
              double *score)
{
    int err;
    struct eng_key *k = lookup(c, key, klen, 1, &err);
    if (!k)
        return err ? err : ERR_NOKEY;
    double s;
    if (!z_find(k->v.p, m, ml, &s))
        return ERR_NOKEY;
    uint64_t r = z_rank(k->v.p, m, ml);
    *rank = rev ? (int64_t)(z_len(k->v.p) - 1 - r) : (int64_t)r;
    if (score)
        *score = s;
    return 0;
}

/* ---- ranges ---------------------------------------------------------------- */

/* Hands out forward ranks [a, b), from the high end when rev. */
static void emit_ranks(void *v, uint64_t a, uint64_t b, int rev, eng_zset_count_fn *head, eng_zset_elem_fn *fn,
                       void *ud)
{
    if (head)
        head(ud, (int64_t)(b - a));
    if (a >= b)
        return;
    struct zit it;
    zit_seek(v, rev ? b - 1 : a, &it);
    for (uint64_t i = a; i < b; i++) {
        size_t n;
        double s;
        const char *m = zit_get(&it, &n, &s);
        fn(ud, m, n, s);
        if (rev)
            zit_prev(&it);
        else
            zit_next(&it);
    }
}

int eng_zrange(struct eng_ctx *c, const char *key, size_t klen, const struct eng_zrange *r, eng_zset_count_fn *head,
               eng_zset_elem_fn *fn, void *ud)
{
    int err;
    struct eng_key *k = lookup(c, key, klen, 1, &err);
    if (!k)
        return err ? err : ERR_NOKEY;
    uint64_t lo, hi, a, b;
    int skipped = 0;
    z_interval(k->v.p, r, &lo, &hi, &skipped);
    apply_limit(r, skipped ? 0 : r->offset, lo, hi, &a, &b);
    emit_ranks(k->v.p, a, b, r->rev, head, fn, ud);
    return 0;
}

int eng_zcount(struct eng_ctx *c, const char *key, size_t klen, const struct eng_zrange *r, int64_t *n)
{
    int err;
    struct eng_key *k = lookup(c, key, klen, 1, &err);
    if (err)
        return err;
    uint64_t lo = 0, hi = 0;
    if (k)
        z_interval(k->v.p, r, &lo, &hi, NULL);
    *n = (int64_t)(hi - lo);
    return 0;
}

int eng_zremrange(struct eng_ctx *c, const char *key, size_t klen, const struct eng_zrange *r, int64_t *removed)
{
    static const char *const events[] = {"zremrangebyrank", "zremrangebyscore", "zremrangebylex"};
    int err;
    struct eng_key *k = lookup(c, key, klen, 0, &err);
    if (err)
        return err;
    *removed = 0;
    if (!k)
        return 0;
    struct eng_zrange fwd = *r;
    fwd.rev = 0;
    uint64_t lo, hi;
    z_interval(k->v.p, &fwd, &lo, &hi, NULL);
    if (lo >= hi)
        return 0;
    z_del_ranks(k->v.p, lo, hi);
    *removed = (int64_t)(hi - lo);
    eng__journalf(c, "sbii", "ZREMRANGEBYRANK", key, klen, (int64_t)lo, (int64_t)hi - 1);
    eng__changed(c, key, klen, ENG_EV_ZSET, events[r->by]);
    settle(c, k);
    return 0;
}

/* Puts the new value v under dst (replacing whatever was there, expiry
 * included), or deletes dst when v is empty (v is freed).  Returns the
 * number of members stored. */
static int64_t store(struct eng_ctx *c, const char *dst, size_t dlen, void *v, const char *event)
{
    struct eng_key *old = eng__lookup(c, dst, dlen, 0);
    uint64_t n = z_len(v);
    if (!n) {
        z_free(v);
        if (old) {
            eng__journalf(c, "sb", "DEL", dst, dlen);
            eng__changed(c, dst, dlen, ENG_EV_GENERIC, "del");
            eng__delete(c, old);
        }
        return 0;
    }
    if (old)
        eng__delete(c, old);
    struct eng_key *k = eng__key_new(dst, dlen, ENG_T_ZSET, ENC_SKIPLIST, 0);
    k->v.p = v;
    set_enc(k);
    eng__add(c, k);
    eng__changed(c, dst, dlen, ENG_EV_ZSET, event);
    eng__signal_ready(c, dst, dlen);
    return (int64_t)n;
}

/* The members at forward ranks [a, b) of v as a new set, built as Redis's
 * ZRANGESTORE builds it: in reply order (rev: from the top), into a listpack
 * that turns into a skip list when it outgrows one (big: a skip list from
 * the start), so that the encoding, and the zeros that lose their sign while
 * in a listpack, come out as there. */
static void *copy_ranks(void *v, uint64_t a, uint64_t b, int rev, int big)
{
    uint64_t cap = b - a < ENG_ZSET_MAX_LISTPACK_ENTRIES ? b - a : ENG_ZSET_MAX_LISTPACK_ENTRIES;
    void *out = big ? (void *)zsl_new() : (void *)lp_new(cap * 16);
    struct zit it;
    if (a < b)
        zit_seek(v, rev ? b - 1 : a, &it);
    for (uint64_t i = a; i < b; i++) {
        size_t n;
        double s;
        const char *m = zit_get(&it, &n, &s);
        z_insert(&out, m, n, s);
        if (rev)
            zit_prev(&it);
        else
            zit_next(&it);
    }
    return out;
}

int eng_zrangestore(struct eng_ctx *c, const char *dst, size_t dlen, const char *src, size_t slen,
                    const struct eng_zrange *r, int64_t *n)
{
    int err;
    struct eng_key *k = lookup(c, src, slen, 0, &err);
    if (err)
        return err;
    uint64_t a = 0, b = 0;
    if (k) {
        uint64_t lo, hi;
        int skipped = 0;
        z_interval(k->v.p, r, &lo, &hi, &skipped);
        apply_limit(r, skipped ? 0 : r->offset, lo, hi, &a, &b);
    }
    /* A result of more than 128 starts as a skip list whatever the range
     * type (Redis starts score and lex results as listpacks, so that its
     * first 128 zeros lose their sign): the journal below replays it as a
     * rank range, which must build the very same set. */
    int big = b - a > ENG_ZSET_MAX_LISTPACK_ENTRIES;
    void *v = k ? copy_ranks(k->v.p, a, b, r->rev, big) : lp_new(0);
    if (a < b && !r->rev) {
        eng__journalf(c, "sbbii", "ZRANGESTORE", dst, dlen, src, slen, (int64_t)a, (int64_t)b - 1);
    } else if (a < b) { /* the same order of insertion: REV ranks */
        int64_t len = (int64_t)z_len(k->v.p);
        eng__journalf(c, "sbbiis", "ZRANGESTORE", dst, dlen, src, slen, len - (int64_t)b, len - 1 - (int64_t)a, "REV");
    }
    *n = store(c, dst, dlen, v, "zrangestore");
    return 0;
}

/* ---- pops ---------------------------------------------------------------- */

static void pop_from(struct eng_ctx *c, struct eng_key *k, int max, int64_t count, eng_zset_count_fn *head,
                     eng_zset_elem_fn *fn, void *ud)
{
    uint64_t len = z_len(k->v.p), n = (uint64_t)count < len ? (uint64_t)count : len;
    uint64_t a = max ? len - n : 0, b = max ? len : n;
    emit_ranks(k->v.p, a, b, max, head, fn, ud);
    z_del_ranks(k->v.p, a, b);
    eng__journalf(c, "sbi", max ? "ZPOPMAX" : "ZPOPMIN", k->key, (size_t)k->klen, (int64_t)n);
    eng__changed(c, k->key, k->klen, ENG_EV_ZSET, max ? "zpopmax" : "zpopmin");
    settle(c, k);
}

int eng_zpop(struct eng_ctx *c, const char *key, size_t klen, int max, int64_t count, eng_zset_count_fn *head,
             eng_zset_elem_fn *fn, void *ud)
{
    int err;
    struct eng_key *k = lookup(c, key, klen, 0, &err);
    if (!k)
        return err ? err : ERR_NOKEY;
    pop_from(c, k, max, count, head, fn, ud);
    return 0;
}

int eng_zset_mpop(struct eng_ctx *c, const struct eng_str *keys, int nkeys, int max, int64_t count,
                  eng_zset_count_fn *head, eng_zset_elem_fn *fn, void *ud, int *which)
{
    int err;
    struct eng_key *k = eng__first_key(c, keys, nkeys, ENG_T_ZSET, which, &err);
    if (!k)
        return err;
    pop_from(c, k, max, count, head, fn, ud);
    return 0;
}

/* ---- set operations ------------------------------------------------------ */

/* One input of a set operation. */
struct zsrc {
    int type; /* -1 missing, ENG_T_ZSET, ENG_T_SET */
    void *z;  /* ENG_T_ZSET: the value */
    const struct eng_str *key;
    uint64_t len;
    double weight;
    struct eng_str *members; /* ENG_T_SET: the members, copied */
    struct buf bytes;
};

static void collect_member(void *ud, const char *p, size_t n)
{
    struct buf *b = ud;
    buf_append(b, &n, sizeof n);
    buf_append(b, p, n);
}

/* Looks the keys up (all of them first, as Redis: a key of another type is
 * an error before any work), copying the members of plain sets. */
static int src_open(struct eng_ctx *c, const struct eng_str *keys, int n, const double *weights, struct zsrc *src)
{
    for (int i = 0; i < n; i++) {
        src[i] = (struct zsrc){.type = -1, .key = &keys[i], .weight = weights ? weights[i] : 1.0};
        buf_init(&src[i].bytes);
    }
    for (int i = 0; i < n; i++) {
        struct eng_key *k = eng__lookup(c, keys[i].p, keys[i].n, 0);
        if (!k)
            continue;
        if (k->type != ENG_T_ZSET && k->type != ENG_T_SET)
            return ERR_WRONGTYPE;
        src[i].type = (int)k->type;
        if (k->type == ENG_T_ZSET)
            src[i].z = k->v.p, src[i].len = z_len(k->v.p);
    }
    for (int i = 0; i < n; i++) {
        struct zsrc *s = &src[i];
        if (s->type != ENG_T_SET)
            continue;
        eng_smembers(c, s->key->p, s->key->n, NULL, collect_member, &s->bytes);
        for (size_t o = 0; o < s->bytes.len; s->len++) {
            size_t len;
            memcpy(&len, s->bytes.p + o, sizeof len);
            o += sizeof len + len;
        }
        s->members = xmalloc(sizeof *s->members * (s->len ? s->len : 1));
        size_t o = 0;
        for (uint64_t m = 0; m < s->len; m++) {
            size_t len;
            memcpy(&len, s->bytes.p + o, sizeof len);
            s->members[m] = (struct eng_str){s->bytes.p + o + sizeof len, len};
            o += sizeof len + len;
        }
    }
    return 0;
}

static void src_close(struct zsrc *src, int n)
{
    for (int i = 0; i < n; i++) {
        if (src[i].type == ENG_T_SET)
            xfree(src[i].members);
        buf_release(&src[i].bytes);
    }
}

/* Smallest first, equal sizes kept in argument order (as glibc's qsort, a
 * merge sort, leaves them in Redis): the order of the SUM additions. */
static void src_sort(struct zsrc *src, int n)
{
    for (int i = 1; i < n; i++) {
        struct zsrc t = src[i];
        int j = i;
        for (; j > 0 && src[j - 1].len > t.len; j--)
            src[j] = src[j - 1];
        src[j] = t;
    }
}

struct srcit {
    struct zsrc *s;
    uint64_t i;
    struct zit it;
};

static int srcit_next(struct srcit *si, const char **m, size_t *n, double *score)
{
    struct zsrc *s = si->s;
    if (si->i >= s->len)
        return 0;
    if (s->type == ENG_T_SET) {
        *m = s->members[si->i].p, *n = s->members[si->i].n, *score = 1.0;
    } else {
        if (si->i == 0)
            zit_seek(s->z, 0, &si->it);
        else
            zit_next(&si->it);
        *m = zit_get(&si->it, n, score);
    }
    si->i++;
    return 1;
}

static int src_find(struct eng_ctx *c, const struct zsrc *s, const char *m, size_t n, double *score)
{
    if (s->type == ENG_T_ZSET)
        return z_find(s->z, m, n, score);
    if (s->type == ENG_T_SET && eng_sismember(c, s->key->p, s->key->n, m, n) == 1) {
        *score = 1.0;
        return 1;
    }
    return 0;
}

static void aggregate(double *target, double val, int agg)
{
    if (agg == ENG_ZAGG_SUM) {
        *target = *target + val;
        if (isnan(*target)) /* inf + -inf: Redis's convention is 0 */
            *target = 0.0;
    } else if (agg == ENG_ZAGG_MIN) {
        *target = val < *target ? val : *target;
    } else {
        *target = val > *target ? val : *target;
    }
}

static int link_cb(void *ud, struct dict_node *n)
{
    zsl_link(ud, (struct znode *)n);
    return 0;
}

static struct zsl *op_union(struct zsrc *src, int n, int agg)
{
    struct zsl *acc = zsl_new();
    for (int i = 0; i < n; i++) {
        struct srcit si = {&src[i], 0, {0}};
        const char *m;
        size_t len;
        double s;
        while (srcit_next(&si, &m, &len, &s)) {
            double score = src[i].weight * s;
            if (isnan(score))
                score = 0;
            uint64_t h = eng__hash(m, len);
            struct znode *x = (struct znode *)dict_find(&acc->dict, m, len, h);
            if (x) {
                aggregate(&x->score, score, agg);
            } else {
                x = zn_new(zsl_random_level(acc), score, m, len);
                dict_add(&acc->dict, &x->dn, h);
            }
        }
    }
    /* Scores are final: now give the members their places. */
    dict_foreach(&acc->dict, link_cb, acc);
    return acc;
}

static struct zsl *op_inter(struct eng_ctx *c, struct zsrc *src, int n, int agg, int64_t limit, int64_t *card)
{
    struct zsl *out = card ? NULL : zsl_new();
    int64_t found = 0;
    struct srcit si = {&src[0], 0, {0}};
    const char *m;
    size_t len;
    double s;
    while (srcit_next(&si, &m, &len, &s)) {
        double score = src[0].weight * s;
        if (isnan(score))
            score = 0;
        int j;
        for (j = 1; j < n; j++) {
            double v;
            if (!src_find(c, &src[j], m, len, &v))
                break;
            aggregate(&score, v * src[j].weight, agg);
        }
        if (j < n)
            continue;
        found++;
        if (out)
            zsl_insert(out, m, len, score);
        else if (limit && found >= limit)
            break;
    }
    if (card)
        *card = found;
    return out;
}

static struct zsl *op_diff(struct eng_ctx *c, struct zsrc *src, int n)
{
    struct zsl *out = zsl_new();
    struct srcit si = {&src[0], 0, {0}};
    const char *m;
    size_t len;
    double s;
    while (srcit_next(&si, &m, &len, &s)) {
        int j;
        double v;
        for (j = 1; j < n; j++)
            if (src_find(c, &src[j], m, len, &v))
                break;
        if (j == n)
            zsl_insert(out, m, len, s);
    }
    return out;
}

static void journal_setop(struct eng_ctx *c, int op, const struct eng_str *keys, int n, const double *weights, int agg,
                          const char *dst, size_t dlen)
{
    static const char *const cmds[] = {"ZUNIONSTORE", "ZINTERSTORE", "ZDIFFSTORE"};
    static const char *const aggs[] = {"SUM", "MIN", "MAX"};
    struct jargs j;
    jargs_init(c, &j, 6 + 2 * n, n);
    jargs_cstr(&j, cmds[op]);
    jargs_str(&j, dst, dlen);
    char num[24];
    jargs_str(&j, num, num_fmt_i64(num, n));
    for (int i = 0; i < n; i++)
        jargs_str(&j, keys[i].p, keys[i].n);
    if (op != ENG_ZSETOP_DIFF) {
        if (weights) {
            jargs_cstr(&j, "WEIGHTS");
            for (int i = 0; i < n; i++)
                jargs_double(&j, weights[i]);
        }
        jargs_cstr(&j, "AGGREGATE");
        jargs_cstr(&j, aggs[agg]);
    }
    jargs_done(c, &j);
}

int eng_zsetop(struct eng_ctx *c, int op, const struct eng_str *keys, int n, const double *weights, int agg,
               const char *dst, size_t dlen, eng_zset_count_fn *head, eng_zset_elem_fn *fn, void *ud, int64_t *card)
{
    struct zsrc stack[8], *src = n <= 8 ? stack : xmalloc(sizeof *src * (size_t)n);
    int rc = src_open(c, keys, n, op == ENG_ZSETOP_DIFF ? NULL : weights, src);
    if (rc < 0)
        goto out;
    struct zsl *res;
    if (op == ENG_ZSETOP_DIFF) {
        res = op_diff(c, src, n);
    } else {
        src_sort(src, n);
        res = op == ENG_ZSETOP_UNION ? op_union(src, n, agg) : op_inter(c, src, n, agg, 0, NULL);
    }
    uint64_t len = res->length;
    if (card)
        *card = (int64_t)len;
    if (!dst) {
        emit_ranks(res, 0, len, 0, head, fn, ud);
        zsl_free(res);
        goto out;
    }
    size_t maxlen = 0;
    for (struct znode *x = res->header->level[0].forward; x; x = x->level[0].forward)
        maxlen = x->len > maxlen ? x->len : maxlen;
    void *v = res;
    if (len <= ENG_ZSET_MAX_LISTPACK_ENTRIES && maxlen <= ENG_ZSET_MAX_LISTPACK_VALUE)
        v = sl_to_lp(res);
    static const char *const events[] = {"zunionstore", "zinterstore", "zdiffstore"};
    if (len)
        journal_setop(c, op, keys, n, weights, agg, dst, dlen);
    store(c, dst, dlen, v, events[op]);
out:
    src_close(src, n);
    if (src != stack)
        xfree(src);
    return rc;
}

int eng_zintercard(struct eng_ctx *c, const struct eng_str *keys, int n, int64_t limit, int64_t *card)
{
    struct zsrc stack[8], *src = n <= 8 ? stack : xmalloc(sizeof *src * (size_t)n);
    int rc = src_open(c, keys, n, NULL, src);
    if (rc == 0) {
        src_sort(src, n);
        op_inter(c, src, n, ENG_ZAGG_SUM, limit, card);
    }
    src_close(src, n);
    if (src != stack)
        xfree(src);
    return rc;
}

/* ---- iteration ------------------------------------------------------------- */

struct scan_walk {
    const char *pat;
    size_t plen;
    eng_zset_elem_fn *fn;
    void *ud;
    int64_t visited;
};

static void scan_emit(struct scan_walk *w, const char *m, size_t n, double s)
{
    w->visited++;
    if (w->pat && !(w->plen == 1 && w->pat[0] == '*') && !glob_match(w->pat, w->plen, m, n, 0))
        return;
    w->fn(w->ud, m, n, s);
}

static void scan_visit(void *ud, struct dict_node *dn)
{
    const struct znode *x = (const struct znode *)dn;
    scan_emit(ud, zn_member(x), x->len, x->score);
}

int eng_zscan(struct eng_ctx *c, const char *key, size_t klen, uint64_t cursor, const char *pat, size_t plen,
              int64_t count, eng_zset_elem_fn *fn, void *ud, uint64_t *next)
{
    int err;
    struct eng_key *k = lookup(c, key, klen, 1, &err);
    if (err)
        return err;
    *next = 0;
    if (!k)
        return 0;
    struct scan_walk w = {pat, plen, fn, ud, 0};
    if (is_lp(k->v.p)) {
        struct zlp *lp = k->v.p;
        for (uint32_t o = 0; o < lp->used; o += (uint32_t)lp_esize(lp->p + o)) {
            size_t n;
            const char *m = lp_member(lp->p + o, &n);
            scan_emit(&w, m, n, lp_score(lp->p + o));
        }
        return 0;
    }
    if (count < 1)
        count = 10;
    /* As Redis: at most count * 10 buckets per call, so that a sparse table
     * (after many removals) still answers quickly. */
    int64_t budget = count * 10;
    struct zsl *z = k->v.p;
    do {
        cursor = dict_scan(&z->dict, cursor, scan_visit, &w);
    } while (cursor && budget-- && w.visited < count);
    *next = cursor;
    return 0;
}

static uint64_t rnd_next(uint64_t *s)
{
    *s ^= *s << 13, *s ^= *s >> 7, *s ^= *s << 17;
    return *s;
}

/* Hands out the members at the given ranks, in that order. */
static void emit_picks(void *v, const uint64_t *ranks, uint64_t n, eng_zset_elem_fn *fn, void *ud)
{
    for (uint64_t i = 0; i < n; i++) {
        struct zit it;
        size_t len;
        double s;
        zit_seek(v, ranks[i], &it);
        const char *m = zit_get(&it, &len, &s);
        fn(ud, m, len, s);
    }
}

int eng_zrandmember(struct eng_ctx *c, const char *key, size_t klen, int64_t count, eng_zset_count_fn *head,
                    eng_zset_elem_fn *fn, void *ud)
{
    int err;
    struct eng_key *k = lookup(c, key, klen, 1, &err);
    if (!k)
        return err ? err : ERR_NOKEY;
    void *v = k->v.p;
    uint64_t len = z_len(v);
    uint64_t *rnd = &eng__shard(c, key, klen)->rnd;
    if (count < 0) { /* repeats allowed */
        uint64_t n = (uint64_t)0 - (uint64_t)count;
        if (head)
            head(ud, (int64_t)n);
        for (uint64_t i = 0; i < n; i++) {
            uint64_t r = rnd_next(rnd) % len;
            emit_picks(v, &r, 1, fn, ud);
        }
        return 0;
    }
    if ((uint64_t)count >= len) { /* the whole set, highest first as Redis */
        emit_ranks(v, 0, len, 1, head, fn, ud);
        return 0;
    }
    uint64_t n = (uint64_t)count;
    uint64_t *ranks = xmalloc(sizeof *ranks * (n ? n : 1));
    if (n * 3 > len) {
        /* Many: a partial Fisher-Yates shuffle of all ranks (len < 3n). */
        uint64_t *all = xmalloc(sizeof *all * len);
        for (uint64_t i = 0; i < len; i++)
            all[i] = i;
        for (uint64_t i = 0; i < n; i++) {
            uint64_t j = i + rnd_next(rnd) % (len - i), t = all[i];
            all[i] = all[j], all[j] = t;
        }
        memcpy(ranks, all, sizeof *ranks * n);
        xfree(all);
    } else {
        /* Few: Floyd's sampling, the picks kept in a small open-addressing
         * set (rank + 1, 0 = empty), so memory is O(count) not O(card). */
        uint64_t cap = 16;
        while (cap < n * 2)
            cap <<= 1;
        uint64_t *seen = xcalloc(cap, sizeof *seen);
        for (uint64_t j = len - n, got = 0; j < len; j++) {
            uint64_t t = rnd_next(rnd) % (j + 1);
            for (int pass = 0; pass < 2; pass++) {
                uint64_t h = (t * 0x9E3779B97F4A7C15ULL) & (cap - 1);
                while (seen[h] && seen[h] != t + 1)
                    h = (h + 1) & (cap - 1);
                if (!seen[h]) {
                    seen[h] = t + 1;
                    ranks[got++] = t;
                    break;
                }
                t = j; /* t was taken: j cannot be */
            }
        }
        xfree(seen);
    }
    if (head)
        head(ud, (int64_t)n);
    emit_picks(v, ranks, n, fn, ud);
    xfree(ranks);
    return 0;
}
