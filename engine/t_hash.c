/* t_hash.c: the hash type (hash.h).  Two encodings, as Redis's:
 *
 * "listpack": one block holding the whole hash, fields and values
 * alternating, each a one-byte length then its bytes, in insertion order.
 * Sessions of a few short fields cost one allocation (Redis spends a robj
 * and a listpack with per-entry back-lengths on the same).
 *
 *   +-----+-----+-------+------+----+--------+----+--------+-- ... --+
 *   | tag | pad | count | used | fl | field  | vl | value  |         |
 *   +-----+-----+-------+------+----+--------+----+--------+-- ... --+
 *     1     1     2       4      1    fl       1    vl
 *
 * "hashtable": engine/dict.h, one node allocation per field holding the
 * field and the value after it, so a field costs its node and a bucket slot.
 *
 * A hash starts compact and converts for good when it passes
 * ENG_HASH_MAX_LISTPACK_ENTRIES fields or receives a field or value longer
 * than ENG_HASH_MAX_LISTPACK_VALUE bytes.  Each value block starts with a tag
 * byte naming its encoding because the type ops (free, mem, dup) are handed
 * the block alone.  Not here: argument parsing and replies (protocol/). */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/glob.h"
#include "base/num.h"
#include "engine_int.h"
#include "hash.h"

_Static_assert(ENG_HASH_MAX_LISTPACK_VALUE < 256, "listpack lengths are one byte");
_Static_assert(ENG_HASH_MAX_LISTPACK_ENTRIES < 65536, "listpack count is 16 bits");

enum { TAG_LISTPACK = 1, TAG_TABLE = 2 };

struct hlp {
    uint8_t tag;
    uint8_t pad;
    uint16_t count; /* pairs */
    uint32_t used;  /* bytes of p in use */
    unsigned char p[];
};

struct htab {
    uint8_t tag;
    struct dict d;
};

struct hnode {
    struct dict_node node;
    uint32_t flen, vlen;
    char data[]; /* field, then value */
};

/* ---- the compact form --------------------------------------------------- */

static struct hlp *lp_new(size_t cap)
{
    struct hlp *lp = xmalloc(sizeof *lp + cap);
    lp->tag = TAG_LISTPACK, lp->pad = 0, lp->count = 0, lp->used = 0;
    return lp;
}

static size_t lp_cap(const struct hlp *lp) { return xmalloc_size(lp) - sizeof *lp; }

/* Offset of the value of the pair whose field starts at o. */
static inline uint32_t lp_val(const struct hlp *lp, uint32_t o) { return o + 1 + lp->p[o]; }
/* Offset of the pair after the one at o. */
static inline uint32_t lp_next(const struct hlp *lp, uint32_t o)
{
    uint32_t v = lp_val(lp, o);
    return v + 1 + lp->p[v];
}

static int64_t lp_find(const struct hlp *lp, const char *f, size_t fl)
{
    for (uint32_t o = 0; o < lp->used; o = lp_next(lp, o))
        if (lp->p[o] == fl && memcmp(lp->p + o + 1, f, fl) == 0)
            return o;
    return -1;
}

static struct hlp *lp_reserve(struct hlp *lp, size_t more)
{
    if (lp->used + more > lp_cap(lp))
        lp = xrealloc(lp, sizeof *lp + lp->used + more);
    return lp;
}

/* Gives back memory a deletion left unused (malloc rounds to 16 anyway). */
static struct hlp *lp_trim(struct hlp *lp)
{
    if (lp_cap(lp) - lp->used >= 32)
        lp = xrealloc(lp, sizeof *lp + lp->used);
    return lp;
}

static struct hlp *lp_append(struct hlp *lp, const char *f, size_t fl, const char *v, size_t vl)
{
    lp = lp_reserve(lp, 2 + fl + vl);
    unsigned char *d = lp->p + lp->used;
    d[0] = (unsigned char)fl;
    memcpy(d + 1, f, fl);
    d[1 + fl] = (unsigned char)vl;
    memcpy(d + 2 + fl, v, vl);
    lp->used += (uint32_t)(2 + fl + vl);
    lp->count++;
    return lp;
}

/* Replaces the value of the pair at o in place (the pair keeps its rank). */
static struct hlp *lp_replace(struct hlp *lp, uint32_t o, const char *v, size_t vl)
{
    uint32_t vo = lp_val(lp, o);
    size_t old = lp->p[vo];
    if (vl > old)
        lp = lp_reserve(lp, vl - old);
    uint32_t tail = vo + 1 + (uint32_t)old;
    memmove(lp->p + vo + 1 + vl, lp->p + tail, lp->used - tail);
    lp->p[vo] = (unsigned char)vl;
    memcpy(lp->p + vo + 1, v, vl);
    lp->used = (uint32_t)(lp->used - old + vl);
    return vl < old ? lp_trim(lp) : lp;
}

static struct hlp *lp_delete(struct hlp *lp, uint32_t o)
{
    uint32_t end = lp_next(lp, o);
    memmove(lp->p + o, lp->p + end, lp->used - end);
    lp->used -= end - o;
    lp->count--;
    return lp_trim(lp);
}

/* ---- the hashtable form ------------------------------------------------- */

static uint64_t node_hash(const struct dict_node *n)
{
    const struct hnode *h = (const struct hnode *)n;
    return eng__hash(h->data, h->flen);
}

static int node_eq(const struct dict_node *n, const void *key, size_t len)
{
    const struct hnode *h = (const struct hnode *)n;
    return h->flen == len && memcmp(h->data, key, len) == 0;
}

static const struct dict_type hnode_type = {node_hash, node_eq};

static struct hnode *node_new(const char *f, size_t fl, const char *v, size_t vl)
{
    struct hnode *h = xmalloc(sizeof *h + fl + vl);
    h->node.next = NULL;
    h->flen = (uint32_t)fl, h->vlen = (uint32_t)vl;
    memcpy(h->data, f, fl);
    memcpy(h->data + fl, v, vl);
    return h;
}

static struct htab *tab_new(void)
{
    struct htab *t = xmalloc(sizeof *t);
    t->tag = TAG_TABLE;
    dict_init(&t->d, &hnode_type);
    return t;
}


/* Sets field f of t; returns 1 when the field is new. */
static int tab_set(struct htab *t, const char *f, size_t fl, const char *v, size_t vl)
{
    uint64_t h = eng__hash(f, fl);
    struct hnode *old = (struct hnode *)dict_find(&t->d, f, fl, h);
    if (!old) {
        dict_add(&t->d, &node_new(f, fl, v, vl)->node, h);
        return 1;
    }
    if (sizeof *old + fl + vl <= xmalloc_size(old)) { /* fits: no allocation */
        memcpy(old->data + fl, v, vl);
        old->vlen = (uint32_t)vl;
        return 0;
    }
    struct hnode *n = node_new(f, fl, v, vl);
    dict_replace(&t->d, &old->node, &n->node, h);
    xfree(old);
    return 0;
}

static void convert(struct eng_key *k)
{
    struct hlp *lp = k->v.p;
    struct htab *t = tab_new();
    for (uint32_t o = 0; o < lp->used; o = lp_next(lp, o)) {
        uint32_t v = lp_val(lp, o);
        tab_set(t, (const char *)lp->p + o + 1, lp->p[o], (const char *)lp->p + v + 1, lp->p[v]);
    }
    xfree(lp);
    k->v.p = t;
    k->enc = ENC_HASHTABLE;
}

/* ---- one hash, whatever its form --------------------------------------- */

static int64_t hlen(const struct eng_key *k)
{
    if (k->enc == ENC_LISTPACK)
        return ((const struct hlp *)k->v.p)->count;
    return (int64_t)dict_size(&((struct htab *)k->v.p)->d);
}

/* 1 and *out when f is present. */
static int hget(struct eng_key *k, const char *f, size_t fl, struct eng_str *out)
{
    if (k->enc == ENC_LISTPACK) {
        struct hlp *lp = k->v.p;
        int64_t o = lp_find(lp, f, fl);
        if (o < 0)
            return 0;
        uint32_t v = lp_val(lp, (uint32_t)o);
        *out = (struct eng_str){(const char *)lp->p + v + 1, lp->p[v]};
        return 1;
    }
    struct htab *t = k->v.p;
    struct hnode *h = (struct hnode *)dict_find(&t->d, f, fl, eng__hash(f, fl));
    if (!h)
        return 0;
    *out = (struct eng_str){h->data + h->flen, h->vlen};
    return 1;
}

/* Sets f to v, converting the hash when it outgrows the compact form.
 * Returns 1 when f is new. */
static int hset(struct eng_key *k, const char *f, size_t fl, const char *v, size_t vl)
{
    if (k->enc == ENC_LISTPACK && (fl > ENG_HASH_MAX_LISTPACK_VALUE || vl > ENG_HASH_MAX_LISTPACK_VALUE))
        convert(k);
    if (k->enc == ENC_HASHTABLE)
        return tab_set(k->v.p, f, fl, v, vl);
    struct hlp *lp = k->v.p;
    int64_t o = lp_find(lp, f, fl);
    if (o >= 0) {
        k->v.p = lp_replace(lp, (uint32_t)o, v, vl);
        return 0;
    }
    k->v.p = lp_append(lp, f, fl, v, vl);
    if (((struct hlp *)k->v.p)->count > ENG_HASH_MAX_LISTPACK_ENTRIES)
        convert(k);
    return 1;
}

/* Returns 1 when f was there. */
static int hdel(struct eng_key *k, const char *f, size_t fl)
{
    if (k->enc == ENC_LISTPACK) {
        int64_t o = lp_find(k->v.p, f, fl);
        if (o < 0)
            return 0;
        k->v.p = lp_delete(k->v.p, (uint32_t)o);
        return 1;
    }
    struct htab *t = k->v.p;
    struct dict_node *n = dict_unlink(&t->d, f, fl, eng__hash(f, fl));
    if (!n)
        return 0;
    xfree(n);
    dict_resize_if_needed(&t->d);
    return 1;
}

struct walk {
    eng_pair_fn *fn;
    void *ud;
    const char *pat;
    size_t plen;
    int64_t seen;
};

static void walk_node(void *ud, struct dict_node *n)
{
    struct walk *w = ud;
    struct hnode *h = (struct hnode *)n;
    w->seen++;
    if (!w->pat || glob_match(w->pat, w->plen, h->data, h->flen, 0))
        w->fn(w->ud, h->data, h->flen, h->data + h->flen, h->vlen);
}

static int walk_node_all(void *ud, struct dict_node *n)
{
    walk_node(ud, n);
    return 0;
}

static void walk_lp(const struct hlp *lp, struct walk *w)
{
    for (uint32_t o = 0; o < lp->used; o = lp_next(lp, o)) {
        uint32_t v = lp_val(lp, o);
        const char *f = (const char *)lp->p + o + 1;
        w->seen++;
        if (!w->pat || glob_match(w->pat, w->plen, f, lp->p[o], 0))
            w->fn(w->ud, f, lp->p[o], (const char *)lp->p + v + 1, lp->p[v]);
    }
}

static void hwalk(struct eng_key *k, struct walk *w)
{
    if (k->enc == ENC_LISTPACK)
        walk_lp(k->v.p, w);
    else
        dict_foreach(&((struct htab *)k->v.p)->d, walk_node_all, w);
}

/* ---- type ops ------------------------------------------------------------ */

static void hash_free(void *v)
{
    if (*(uint8_t *)v == TAG_TABLE)
        eng__dict_free_nodes(&((struct htab *)v)->d);
    xfree(v);
}

static size_t hash_mem(const void *v)
{
    size_t n = xmalloc_size(v);
    if (*(const uint8_t *)v == TAG_TABLE)
        n += eng__dict_mem(&((struct htab *)v)->d);
    return n;
}

static int dup_node(void *ud, struct dict_node *n)
{
    struct hnode *h = (struct hnode *)n;
    struct hnode *c = node_new(h->data, h->flen, h->data + h->flen, h->vlen);
    dict_add(&((struct htab *)ud)->d, &c->node, eng__hash(h->data, h->flen));
    return 0;
}

static void *hash_dup(const void *v)
{
    if (*(const uint8_t *)v == TAG_LISTPACK) {
        const struct hlp *lp = v;
        struct hlp *c = xmalloc(sizeof *c + lp->used);
        memcpy(c, lp, sizeof *c + lp->used);
        return c;
    }
    struct htab *t = tab_new();
    dict_foreach(&((struct htab *)v)->d, dup_node, t);
    return t;
}

const struct eng_type_ops eng__hash_ops = {hash_free, hash_mem, hash_dup};

/* ---- commands -------------------------------------------------------------- */

static struct eng_key *lookup(struct eng_ctx *c, const char *key, size_t klen, int read, int *err)
{
    return eng__lookup_type(c, key, klen, ENG_T_HASH, read, err);
}

/* The hash at key, created empty (and not yet added) when absent. */
static struct eng_key *lookup_or_new(struct eng_ctx *c, const char *key, size_t klen, int *err, int *created)
{
    struct eng_key *k = lookup(c, key, klen, 0, err);
    *created = 0;
    if (k || *err)
        return k;
    k = eng__key_new(key, klen, ENG_T_HASH, ENC_LISTPACK, 0);
    k->v.p = lp_new(0);
    *created = 1;
    return k;
}

/* Removes a hash its last deletion emptied. */
static void drop_if_empty(struct eng_ctx *c, struct eng_key *k, const char *key, size_t klen)
{
    if (hlen(k))
        return;
    eng__changed(c, key, klen, ENG_EV_GENERIC, "del");
    eng__delete(c, k);
}

int eng_hset(struct eng_ctx *c, const char *key, size_t klen, const struct eng_str *fv, int npairs, int64_t *added)
{
    int err, created;
    if (npairs <= 0) { /* no empty hash is ever made */
        lookup(c, key, klen, 0, &err);
        if (!err)
            *added = 0;
        return err;
    }
    struct eng_key *k = lookup_or_new(c, key, klen, &err, &created);
    if (!k)
        return err;
    if (k->enc == ENC_LISTPACK && npairs > 1) {
        /* one realloc for all the pairs rather than one each (a job or a
         * session is written in one HSET); what replacing left over is
         * trimmed after */
        size_t more = 0;
        for (int i = 0; i < npairs; i++)
            more += 2 + fv[2 * i].n + fv[2 * i + 1].n;
        k->v.p = lp_reserve(k->v.p, more);
    }
    int64_t n = 0;
    for (int i = 0; i < npairs; i++)
        n += hset(k, fv[2 * i].p, fv[2 * i].n, fv[2 * i + 1].p, fv[2 * i + 1].n);
    if (k->enc == ENC_LISTPACK && npairs > 1)
        k->v.p = lp_trim(k->v.p);
    if (created)
        eng__add(c, k);
    eng__journal_args(c, "HSET", key, klen, fv, 2 * npairs);
    eng__changed(c, key, klen, ENG_EV_HASH, "hset");
    *added = n;
    return 0;
}

int eng_hsetnx(struct eng_ctx *c, const char *key, size_t klen, const char *f, size_t fl, const char *v, size_t vl)
{
    int err, created;
    struct eng_key *k = lookup_or_new(c, key, klen, &err, &created);
    if (!k)
        return err;
    struct eng_str cur;
    if (!created && hget(k, f, fl, &cur))
        return 0;
    hset(k, f, fl, v, vl);
    if (created)
        eng__add(c, k);
    eng__journalf(c, "sbbb", "HSET", key, klen, f, fl, v, vl);
    eng__changed(c, key, klen, ENG_EV_HASH, "hset");
    return 1;
}

int eng_hget(struct eng_ctx *c, const char *key, size_t klen, const char *f, size_t fl, struct eng_str *out)
{
    int err;
    struct eng_key *k = lookup(c, key, klen, 1, &err);
    if (!k)
        return err ? err : ERR_NOKEY;
    return hget(k, f, fl, out) ? 0 : ERR_NOKEY;
}

int eng_hmget(struct eng_ctx *c, const char *key, size_t klen, const struct eng_str *fields, int n,
              struct eng_str *vals)
{
    int err;
    struct eng_key *k = lookup(c, key, klen, 1, &err);
    if (err)
        return err;
    for (int i = 0; i < n; i++)
        if (!k || !hget(k, fields[i].p, fields[i].n, &vals[i]))
            vals[i] = (struct eng_str){NULL, 0};
    return 0;
}

int eng_hdel(struct eng_ctx *c, const char *key, size_t klen, const struct eng_str *fields, int n, int64_t *deleted)
{
    int err;
    struct eng_key *k = lookup(c, key, klen, 0, &err);
    if (err)
        return err;
    int64_t d = 0;
    for (int i = 0; k && i < n && hlen(k); i++)
        d += hdel(k, fields[i].p, fields[i].n);
    if (d) {
        eng__journal_args(c, "HDEL", key, klen, fields, n);
        eng__changed(c, key, klen, ENG_EV_HASH, "hdel");
        drop_if_empty(c, k, key, klen);
    }
    *deleted = d;
    return 0;
}

int eng_hexists(struct eng_ctx *c, const char *key, size_t klen, const char *f, size_t fl)
{
    int err;
    struct eng_key *k = lookup(c, key, klen, 1, &err);
    struct eng_str v;
    if (!k)
        return err;
    return hget(k, f, fl, &v);
}

int eng_hlen(struct eng_ctx *c, const char *key, size_t klen, int64_t *n)
{
    int err;
    struct eng_key *k = lookup(c, key, klen, 1, &err);
    if (err)
        return err;
    *n = k ? hlen(k) : 0;
    return 0;
}

int eng_hstrlen(struct eng_ctx *c, const char *key, size_t klen, const char *f, size_t fl, int64_t *n)
{
    int err;
    struct eng_key *k = lookup(c, key, klen, 1, &err);
    if (err)
        return err;
    struct eng_str v = {NULL, 0};
    if (k)
        hget(k, f, fl, &v);
    *n = (int64_t)v.n;
    return 0;
}

int eng_hgetall(struct eng_ctx *c, const char *key, size_t klen, eng_count_fn *head, eng_pair_fn *fn, void *ud)
{
    int err;
    struct eng_key *k = lookup(c, key, klen, 1, &err);
    if (err)
        return err;
    if (head)
        head(ud, k ? hlen(k) : 0);
    if (k) {
        struct walk w = {fn, ud, NULL, 0, 0};
        hwalk(k, &w);
    }
    return 0;
}

int eng_hincrby(struct eng_ctx *c, const char *key, size_t klen, const char *f, size_t fl, int64_t delta,
                int64_t *result)
{
    int err, created;
    struct eng_key *k = lookup_or_new(c, key, klen, &err, &created);
    if (!k)
        return err;
    int64_t cur = 0, next;
    struct eng_str v;
    if (!created && hget(k, f, fl, &v) && num_parse_i64(v.p, v.n, &cur) < 0)
        return ERR_NOTINT;
    if (__builtin_add_overflow(cur, delta, &next)) /* never on a new hash: cur is 0 */
        return ERR_OVERFLOW;
    char tmp[24];
    hset(k, f, fl, tmp, num_fmt_i64(tmp, next));
    if (created)
        eng__add(c, k);
    eng__journalf(c, "sbbi", "HINCRBY", key, klen, f, fl, delta);
    eng__changed(c, key, klen, ENG_EV_HASH, "hincrby");
    *result = next;
    return 0;
}

/* A stored value as a long double, as Redis's string2ld: values up to
 * ENG_LDOUBLE_CHARS bytes (HINCRBYFLOAT makes such), where num_parse_double
 * stops at 512. */
static int parse_ld(const char *p, size_t n, long double *out)
{
    if (n < 512)
        return num_parse_double(p, n, out);
    if (n >= ENG_LDOUBLE_CHARS || isspace((unsigned char)p[0]))
        return -1;
    char *tmp = xmalloc(n + 1), *end;
    memcpy(tmp, p, n);
    tmp[n] = '\0';
    errno = 0;
    long double v = strtold(tmp, &end);
    int ok = end == tmp + n && !isnan(v) && !(errno == ERANGE && (isinf(v) || v == 0));
    xfree(tmp);
    if (!ok)
        return -1;
    *out = v;
    return 0;
}

int eng_hincrbyfloat(struct eng_ctx *c, const char *key, size_t klen, const char *f, size_t fl, long double delta,
                     char *out, size_t *outlen)
{
    int err, created;
    struct eng_key *k = lookup_or_new(c, key, klen, &err, &created);
    if (!k)
        return err;
    long double cur = 0;
    struct eng_str v;
    if (!created && hget(k, f, fl, &v) && parse_ld(v.p, v.n, &cur) < 0)
        return ERR_NOTFLOAT;
    int n = num_fmt_ldouble(out, ENG_LDOUBLE_CHARS, cur + delta);
    if (n < 0) { /* NaN or infinite */
        if (created)
            eng__free_value(k), xfree(k);
        return ERR_NAN;
    }
    hset(k, f, fl, out, (size_t)n);
    if (created)
        eng__add(c, k);
    /* Replicas get the result, not the operation: float rounding must not
     * differ between machines. */
    eng__journalf(c, "sbbb", "HSET", key, klen, f, fl, out, (size_t)n);
    eng__changed(c, key, klen, ENG_EV_HASH, "hincrbyfloat");
    *outlen = (size_t)n;
    return 0;
}

/* ---- random fields ------------------------------------------------------- */

static void emit_node(struct hnode *h, eng_pair_fn *fn, void *ud)
{
    fn(ud, h->data, h->flen, h->data + h->flen, h->vlen);
}

static void emit_lp(const struct hlp *lp, uint32_t o, eng_pair_fn *fn, void *ud)
{
    uint32_t v = lp_val(lp, o);
    fn(ud, (const char *)lp->p + o + 1, lp->p[o], (const char *)lp->p + v + 1, lp->p[v]);
}

/* Compact form: with repeats, or distinct in the hash's order (selection
 * sampling, as Redis's lpRandomPairsUnique keeps listpack order). */
static void rand_lp(uint64_t *rs, const struct hlp *lp, int64_t count, int uniq, eng_pair_fn *fn, void *ud)
{
    uint32_t offs[ENG_HASH_MAX_LISTPACK_ENTRIES + 1];
    int n = 0;
    for (uint32_t o = 0; o < lp->used; o = lp_next(lp, o))
        offs[n++] = o;
    if (!uniq) {
        while (count--)
            emit_lp(lp, offs[eng__rand(rs) % (uint64_t)n], fn, ud);
        return;
    }
    int64_t need = count;
    for (int i = 0; i < n && need; i++) {
        if ((int64_t)(eng__rand(rs) % (uint64_t)(n - i)) < need) {
            emit_lp(lp, offs[i], fn, ud);
            need--;
        }
    }
}

static void rand_tab(uint64_t *rs, struct htab *t, int64_t count, int uniq, eng_pair_fn *fn, void *ud)
{
    if (!uniq) {
        while (count--)
            emit_node((struct hnode *)dict_random(&t->d, eng__rand(rs)), fn, ud);
        return;
    }
    struct dict_node **picked = xmalloc(sizeof *picked * (size_t)count);
    eng__dict_pick(&t->d, count, rs, picked);
    for (int64_t i = 0; i < count; i++)
        emit_node((struct hnode *)picked[i], fn, ud);
    xfree(picked);
}

int eng_hrandfield(struct eng_ctx *c, const char *key, size_t klen, int64_t count, eng_count_fn *head,
                   eng_pair_fn *fn, void *ud)
{
    int err;
    struct eng_key *k = lookup(c, key, klen, 1, &err);
    if (err)
        return err;
    int64_t size = k ? hlen(k) : 0;
    int uniq = count >= 0;
    int64_t n = uniq ? count : -count;
    if (uniq && n > size)
        n = size;
    if (!size)
        n = 0;
    if (head)
        head(ud, n);
    if (!n)
        return 0;
    if (uniq && n == size) {
        struct walk w = {fn, ud, NULL, 0, 0};
        hwalk(k, &w);
        return 0;
    }
    uint64_t *rs = &eng__shard(c, key, klen)->rnd; /* the shard lock is held */
    if (k->enc == ENC_LISTPACK)
        rand_lp(rs, k->v.p, n, uniq, fn, ud);
    else
        rand_tab(rs, k->v.p, n, uniq, fn, ud);
    return 0;
}

int eng_hscan(struct eng_ctx *c, const char *key, size_t klen, uint64_t cursor, const char *pat, size_t plen,
              int64_t count, eng_pair_fn *fn, void *ud, uint64_t *next)
{
    int err;
    struct eng_key *k = lookup(c, key, klen, 1, &err);
    if (err)
        return err;
    struct walk w = {fn, ud, pat, plen, 0};
    if (pat && plen == 1 && pat[0] == '*')
        w.pat = NULL;
    *next = 0;
    if (!k)
        return 0;
    if (k->enc == ENC_LISTPACK) {
        walk_lp(k->v.p, &w);
        return 0;
    }
    /* As Redis's scanGenericCommand: COUNT counts elements visited, before
     * MATCH filters them; empty buckets are bounded by count * 10 steps. */
    struct dict *d = &((struct htab *)k->v.p)->d;
    int64_t steps = count * 10;
    do {
        cursor = dict_scan(d, cursor, walk_node, &w);
    } while (cursor && steps-- && w.seen < count);
    *next = cursor;
    return 0;
}
