/* t_set.c: the set type (set.h).  Two encodings, as Redis 7.0's:
 *
 * "intset": the members, all canonical int64s, sorted in one array of the
 * narrowest width (2, 4 or 8 bytes) that holds them all; membership is a
 * binary search.
 *
 *   +-----+-------+-----+-------+---------------------------+
 *   | tag | width | pad | count | v[0] < v[1] < ... (width) |
 *   +-----+-------+-----+-------+---------------------------+
 *     1     1       2     4
 *
 * "hashtable": engine/dict.h, one node allocation per member holding its
 * bytes.  A set converts for good when it receives a member that is not an
 * integer or passes ENG_SET_MAX_INTSET_ENTRIES members.  The first byte of
 * each value block tags its encoding, for the type ops (free, mem, dup).
 *
 * The set operations (SINTER, SUNION, SDIFF and their STORE forms) build
 * their result as a set of the same kind, so a result of few integers is an
 * intset and lists in ascending order, as in Redis.  Not here: argument
 * parsing and replies (protocol/). */
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/glob.h"
#include "base/num.h"
#include "engine_int.h"
#include "set.h"

enum { TAG_INTSET = 3, TAG_TABLE = 4 };

struct iset {
    uint8_t tag;
    uint8_t width; /* 2, 4 or 8 */
    uint16_t pad;
    uint32_t count;
    unsigned char data[];
};

struct stab {
    uint8_t tag;
    struct dict d;
};

struct snode {
    struct dict_node node;
    uint32_t len;
    char p[];
};

/* A member as the set code passes it around: its bytes, and its integer
 * value when it comes from an intset (is_int). */
struct elem {
    const char *p;
    size_t n;
    int64_t v;
    int is_int;
    char buf[24];
};

static void elem_int(struct elem *e, int64_t v)
{
    e->v = v, e->is_int = 1;
    e->n = num_fmt_i64(e->buf, v);
    e->p = e->buf;
}

static void elem_str(struct elem *e, const char *p, size_t n)
{
    e->p = p, e->n = n, e->is_int = 0;
}

/* ---- intset --------------------------------------------------------------- */

static struct iset *is_new(void)
{
    struct iset *s = xmalloc(sizeof *s);
    s->tag = TAG_INTSET, s->width = 2, s->pad = 0, s->count = 0;
    return s;
}

static int width_of(int64_t v)
{
    if (v >= INT16_MIN && v <= INT16_MAX)
        return 2;
    return v >= INT32_MIN && v <= INT32_MAX ? 4 : 8;
}

static int64_t is_get_w(const struct iset *s, uint32_t i, int w)
{
    const unsigned char *p = s->data + (size_t)i * (size_t)w;
    if (w == 2) {
        int16_t x;
        memcpy(&x, p, 2);
        return x;
    }
    if (w == 4) {
        int32_t x;
        memcpy(&x, p, 4);
        return x;
    }
    int64_t x;
    memcpy(&x, p, 8);
    return x;
}

static int64_t is_get(const struct iset *s, uint32_t i) { return is_get_w(s, i, s->width); }

static void is_put(struct iset *s, uint32_t i, int64_t v)
{
    unsigned char *p = s->data + (size_t)i * s->width;
    if (s->width == 2) {
        int16_t x = (int16_t)v;
        memcpy(p, &x, 2);
    } else if (s->width == 4) {
        int32_t x = (int32_t)v;
        memcpy(p, &x, 4);
    } else {
        memcpy(p, &v, 8);
    }
}

/* 1 when v is present; *pos gets its index or where it would go. */
static int is_search(const struct iset *s, int64_t v, uint32_t *pos)
{
    uint32_t lo = 0, hi = s->count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        int64_t x = is_get(s, mid);
        if (x == v) {
            *pos = mid;
            return 1;
        }
        if (x < v)
            lo = mid + 1;
        else
            hi = mid;
    }
    *pos = lo;
    return 0;
}

static struct iset *is_resize(struct iset *s, uint32_t count)
{
    return xrealloc(s, sizeof *s + (size_t)count * s->width);
}

/* Rewrites s at width w (wider), from the top down so that it works in place. */
static struct iset *is_upgrade(struct iset *s, int w)
{
    int old = s->width;
    s->width = (uint8_t)w;
    s = is_resize(s, s->count);
    for (uint32_t i = s->count; i-- > 0;)
        is_put(s, i, is_get_w(s, i, old));
    return s;
}

/* Adds v; *added tells whether it was new. */
static struct iset *is_add(struct iset *s, int64_t v, int *added)
{
    uint32_t pos;
    *added = 0;
    if (width_of(v) > s->width) {
        /* Wider than every member: it goes at one end. */
        s = is_upgrade(s, width_of(v));
        pos = v < 0 ? 0 : s->count;
    } else if (is_search(s, v, &pos)) {
        return s;
    }
    s = is_resize(s, s->count + 1);
    memmove(s->data + (size_t)(pos + 1) * s->width, s->data + (size_t)pos * s->width,
            (size_t)(s->count - pos) * s->width);
    is_put(s, pos, v);
    s->count++;
    *added = 1;
    return s;
}

static struct iset *is_remove_at(struct iset *s, uint32_t pos)
{
    memmove(s->data + (size_t)pos * s->width, s->data + (size_t)(pos + 1) * s->width,
            (size_t)(s->count - pos - 1) * s->width);
    s->count--;
    return is_resize(s, s->count);
}

/* ---- hashtable -------------------------------------------------------------- */

static uint64_t node_hash(const struct dict_node *n)
{
    const struct snode *s = (const struct snode *)n;
    return eng__hash(s->p, s->len);
}

static int node_eq(const struct dict_node *n, const void *key, size_t len)
{
    const struct snode *s = (const struct snode *)n;
    return s->len == len && memcmp(s->p, key, len) == 0;
}

static const struct dict_type snode_type = {node_hash, node_eq};

static struct stab *tab_new(void)
{
    struct stab *t = xmalloc(sizeof *t);
    t->tag = TAG_TABLE;
    dict_init(&t->d, &snode_type);
    return t;
}

static int tab_add(struct stab *t, const char *p, size_t n)
{
    uint64_t h = eng__hash(p, n);
    if (dict_find(&t->d, p, n, h))
        return 0;
    struct snode *s = xmalloc(sizeof *s + n);
    s->node.next = NULL;
    s->len = (uint32_t)n;
    memcpy(s->p, p, n);
    dict_add(&t->d, &s->node, h);
    return 1;
}


/* ---- one set, whatever its form ----------------------------------------------- */

static int64_t scard(const struct eng_key *k)
{
    if (k->enc == ENC_INTSET)
        return ((const struct iset *)k->v.p)->count;
    return (int64_t)dict_size(&((struct stab *)k->v.p)->d);
}

static void convert(struct eng_key *k)
{
    struct iset *s = k->v.p;
    struct stab *t = tab_new();
    for (uint32_t i = 0; i < s->count; i++) {
        char buf[24];
        tab_add(t, buf, num_fmt_i64(buf, is_get(s, i)));
    }
    xfree(s);
    k->v.p = t;
    k->enc = ENC_HASHTABLE;
}

static int contains(struct eng_key *k, const struct elem *e)
{
    if (k->enc == ENC_INTSET) {
        int64_t v;
        uint32_t pos;
        if (e->is_int)
            v = e->v;
        else if (num_parse_i64(e->p, e->n, &v) < 0)
            return 0;
        return is_search(k->v.p, v, &pos);
    }
    struct stab *t = k->v.p;
    return dict_find(&t->d, e->p, e->n, eng__hash(e->p, e->n)) != NULL;
}

/* Adds e; returns 1 when new.  Converts an intset that a string or one
 * member too many would break. */
static int add(struct eng_key *k, const struct elem *e)
{
    if (k->enc == ENC_INTSET) {
        int64_t v;
        if (e->is_int || num_parse_i64(e->p, e->n, &v) == 0) {
            int added;
            k->v.p = is_add(k->v.p, e->is_int ? e->v : v, &added);
            if (((struct iset *)k->v.p)->count > ENG_SET_MAX_INTSET_ENTRIES)
                convert(k);
            return added;
        }
        convert(k);
    }
    return tab_add(k->v.p, e->p, e->n);
}

static int add_str(struct eng_key *k, const char *p, size_t n)
{
    struct elem e;
    elem_str(&e, p, n);
    return add(k, &e);
}

static int rem(struct eng_key *k, const char *p, size_t n)
{
    if (k->enc == ENC_INTSET) {
        int64_t v;
        uint32_t pos;
        if (num_parse_i64(p, n, &v) < 0 || !is_search(k->v.p, v, &pos))
            return 0;
        k->v.p = is_remove_at(k->v.p, pos);
        return 1;
    }
    struct stab *t = k->v.p;
    struct dict_node *x = dict_unlink(&t->d, p, n, eng__hash(p, n));
    if (!x)
        return 0;
    xfree(x);
    dict_resize_if_needed(&t->d);
    return 1;
}

typedef int each_fn(void *ud, const struct elem *e);

struct each {
    each_fn *fn;
    void *ud;
};

static int each_node(void *ud, struct dict_node *n)
{
    struct each *x = ud;
    struct snode *s = (struct snode *)n;
    struct elem e;
    elem_str(&e, s->p, s->len);
    return x->fn(x->ud, &e);
}

/* Calls fn for every member until it returns non-zero. */
static void each(struct eng_key *k, each_fn *fn, void *ud)
{
    if (k->enc == ENC_INTSET) {
        struct iset *s = k->v.p;
        struct elem e;
        for (uint32_t i = 0; i < s->count; i++) {
            elem_int(&e, is_get(s, i));
            if (fn(ud, &e))
                return;
        }
        return;
    }
    struct each x = {fn, ud};
    dict_foreach(&((struct stab *)k->v.p)->d, each_node, &x);
}

struct emit {
    eng_member_fn *fn;
    void *ud;
};

static int emit_elem(void *ud, const struct elem *e)
{
    struct emit *x = ud;
    x->fn(x->ud, e->p, e->n);
    return 0;
}

static void emit_all(struct eng_key *k, eng_member_fn *fn, void *ud)
{
    struct emit x = {fn, ud};
    each(k, emit_elem, &x);
}

/* ---- type ops ---------------------------------------------------------------- */

static void set_free(void *v)
{
    if (*(uint8_t *)v == TAG_TABLE)
        eng__dict_free_nodes(&((struct stab *)v)->d);
    xfree(v);
}

static size_t set_mem(const void *v)
{
    size_t n = xmalloc_size(v);
    if (*(const uint8_t *)v == TAG_TABLE)
        n += eng__dict_mem(&((struct stab *)v)->d);
    return n;
}

static int dup_node(void *ud, struct dict_node *n)
{
    struct snode *s = (struct snode *)n;
    tab_add(ud, s->p, s->len);
    return 0;
}

static void *set_dup(const void *v)
{
    if (*(const uint8_t *)v == TAG_INTSET) {
        const struct iset *s = v;
        size_t n = sizeof *s + (size_t)s->count * s->width;
        struct iset *c = xmalloc(n);
        memcpy(c, s, n);
        return c;
    }
    struct stab *t = tab_new();
    dict_foreach(&((struct stab *)v)->d, dup_node, t);
    return t;
}

const struct eng_type_ops eng__set_ops = {set_free, set_mem, set_dup};

/* ---- helpers of the commands ----------------------------------------------- */

static struct eng_key *lookup(struct eng_ctx *c, const char *key, size_t klen, int read, int *err)
{
    return eng__lookup_type(c, key, klen, ENG_T_SET, read, err);
}

/* A new, empty set not yet in the keyspace. */
static struct eng_key *set_new(const char *key, size_t klen)
{
    struct eng_key *k = eng__key_new(key, klen, ENG_T_SET, ENC_INTSET, 0);
    k->v.p = is_new();
    return k;
}

static void set_discard(struct eng_key *k)
{
    eng__free_value(k);
    xfree(k);
}

/* Deletes a set its last removal emptied; returns 1 when it did. */
static int drop_if_empty(struct eng_ctx *c, struct eng_key *k, const char *key, size_t klen)
{
    if (scard(k))
        return 0;
    eng__changed(c, key, klen, ENG_EV_GENERIC, "del");
    eng__delete(c, k);
    return 1;
}

/* ---- commands ------------------------------------------------------------------ */

int eng_sadd(struct eng_ctx *c, const char *key, size_t klen, const struct eng_str *members, int n, int64_t *added)
{
    int err;
    struct eng_key *k = lookup(c, key, klen, 0, &err);
    if (err)
        return err;
    int created = !k && n > 0; /* no empty set is ever made */
    if (created)
        k = set_new(key, klen);
    int64_t a = 0;
    for (int i = 0; k && i < n; i++)
        a += add_str(k, members[i].p, members[i].n);
    if (created)
        eng__add(c, k);
    if (a) {
        eng__journal_args(c, "SADD", key, klen, members, n);
        eng__changed(c, key, klen, ENG_EV_SET, "sadd");
    }
    *added = a;
    return 0;
}

int eng_srem(struct eng_ctx *c, const char *key, size_t klen, const struct eng_str *members, int n, int64_t *removed)
{
    int err;
    struct eng_key *k = lookup(c, key, klen, 0, &err);
    if (err)
        return err;
    int64_t r = 0;
    for (int i = 0; k && i < n && scard(k); i++)
        r += rem(k, members[i].p, members[i].n);
    if (r) {
        eng__journal_args(c, "SREM", key, klen, members, n);
        eng__changed(c, key, klen, ENG_EV_SET, "srem");
        drop_if_empty(c, k, key, klen);
    }
    *removed = r;
    return 0;
}

int eng_sismember(struct eng_ctx *c, const char *key, size_t klen, const char *m, size_t ml)
{
    int err;
    struct eng_key *k = lookup(c, key, klen, 1, &err);
    if (!k)
        return err;
    struct elem e;
    elem_str(&e, m, ml);
    return contains(k, &e);
}

int eng_smismember(struct eng_ctx *c, const char *key, size_t klen, const struct eng_str *members, int n, int *out)
{
    int err;
    struct eng_key *k = lookup(c, key, klen, 1, &err);
    if (err)
        return err;
    for (int i = 0; i < n; i++) {
        struct elem e;
        elem_str(&e, members[i].p, members[i].n);
        out[i] = k ? contains(k, &e) : 0;
    }
    return 0;
}

int eng_scard(struct eng_ctx *c, const char *key, size_t klen, int64_t *n)
{
    int err;
    struct eng_key *k = lookup(c, key, klen, 1, &err);
    if (err)
        return err;
    *n = k ? scard(k) : 0;
    return 0;
}

int eng_smembers(struct eng_ctx *c, const char *key, size_t klen, eng_set_count_fn *head, eng_member_fn *fn,
                 void *ud)
{
    int err;
    struct eng_key *k = lookup(c, key, klen, 1, &err);
    if (err)
        return err;
    if (head)
        head(ud, k ? scard(k) : 0);
    if (k)
        emit_all(k, fn, ud);
    return 0;
}

/* ---- random members ------------------------------------------------------ */

/* count distinct random intset indexes, ascending (selection sampling). */
static void pick_indexes(uint64_t *rs, uint32_t size, int64_t count, uint32_t *out)
{
    int64_t need = count, got = 0;
    for (uint32_t i = 0; i < size && need; i++)
        if ((int64_t)(eng__rand(rs) % (uint64_t)(size - i)) < need)
            out[got++] = i, need--;
}

/* Removes members that were picked as views (journal before freeing). */
static void pop_some(struct eng_ctx *c, struct eng_key *k, const char *key, size_t klen, int64_t count,
                     uint64_t *rs, eng_member_fn *fn, void *ud)
{
    struct eng_str *argv = xmalloc(sizeof *argv * (size_t)count);
    if (k->enc == ENC_INTSET) {
        struct iset *s = k->v.p;
        uint32_t *idx = xmalloc(sizeof *idx * (size_t)count);
        char *digits = xmalloc(24 * (size_t)count);
        pick_indexes(rs, s->count, count, idx);
        for (int64_t i = 0; i < count; i++)
            argv[i] = (struct eng_str){digits + 24 * i, num_fmt_i64(digits + 24 * i, is_get(s, idx[i]))};
        eng__journal_args(c, "SREM", key, klen, argv, (int)count);
        for (int64_t i = count; i-- > 0;) { /* from the top: lower indexes stay put */
            fn(ud, argv[i].p, argv[i].n);
            s = is_remove_at(s, idx[i]);
        }
        k->v.p = s;
        xfree(idx), xfree(digits);
    } else {
        struct stab *t = k->v.p;
        struct dict_node **picked = xmalloc(sizeof *picked * (size_t)count);
        eng__dict_pick(&t->d, count, rs, picked);
        for (int64_t i = 0; i < count; i++) {
            struct snode *sn = (struct snode *)picked[i];
            argv[i] = (struct eng_str){sn->p, sn->len};
        }
        eng__journal_args(c, "SREM", key, klen, argv, (int)count);
        for (int64_t i = 0; i < count; i++) {
            fn(ud, argv[i].p, argv[i].n);
            struct dict_node *x = dict_unlink(&t->d, argv[i].p, argv[i].n, eng__hash(argv[i].p, argv[i].n));
            xfree(x);
        }
        dict_resize_if_needed(&t->d);
        xfree(picked);
    }
    xfree(argv);
}

int eng_spop(struct eng_ctx *c, const char *key, size_t klen, int64_t count, eng_set_count_fn *head,
             eng_member_fn *fn, void *ud)
{
    int err;
    struct eng_key *k = lookup(c, key, klen, 0, &err);
    if (err)
        return err;
    int64_t size = k ? scard(k) : 0;
    int64_t n = count < size ? count : size;
    if (head)
        head(ud, n);
    if (n <= 0)
        return 0;
    if (n == size) { /* everything: reply, then the key goes */
        emit_all(k, fn, ud);
        eng__journalf(c, "sb", "DEL", key, klen);
        eng__changed(c, key, klen, ENG_EV_SET, "spop");
        eng__changed(c, key, klen, ENG_EV_GENERIC, "del");
        eng__delete(c, k);
        return 0;
    }
    pop_some(c, k, key, klen, n, &eng__shard(c, key, klen)->rnd, fn, ud);
    eng__changed(c, key, klen, ENG_EV_SET, "spop");
    return 0;
}

static void rand_repeats(struct eng_key *k, int64_t count, uint64_t *rs, eng_member_fn *fn, void *ud)
{
    if (k->enc == ENC_INTSET) {
        struct iset *s = k->v.p;
        while (count--) {
            char buf[24];
            fn(ud, buf, num_fmt_i64(buf, is_get(s, (uint32_t)(eng__rand(rs) % s->count))));
        }
        return;
    }
    struct stab *t = k->v.p;
    while (count--) {
        struct snode *sn = (struct snode *)dict_random(&t->d, eng__rand(rs));
        fn(ud, sn->p, sn->len);
    }
}

static void rand_distinct(struct eng_key *k, int64_t count, uint64_t *rs, eng_member_fn *fn, void *ud)
{
    if (k->enc == ENC_INTSET) {
        struct iset *s = k->v.p;
        uint32_t idx[ENG_SET_MAX_INTSET_ENTRIES];
        pick_indexes(rs, s->count, count, idx);
        for (int64_t i = 0; i < count; i++) {
            char buf[24];
            fn(ud, buf, num_fmt_i64(buf, is_get(s, idx[i])));
        }
        return;
    }
    struct dict_node **picked = xmalloc(sizeof *picked * (size_t)count);
    eng__dict_pick(&((struct stab *)k->v.p)->d, count, rs, picked);
    for (int64_t i = 0; i < count; i++)
        fn(ud, ((struct snode *)picked[i])->p, ((struct snode *)picked[i])->len);
    xfree(picked);
}

int eng_srandmember(struct eng_ctx *c, const char *key, size_t klen, int64_t count, eng_set_count_fn *head,
                    eng_member_fn *fn, void *ud)
{
    int err;
    struct eng_key *k = lookup(c, key, klen, 1, &err);
    if (err)
        return err;
    int64_t size = k ? scard(k) : 0;
    int uniq = count >= 0;
    int64_t n = uniq ? (count < size ? count : size) : (size ? -count : 0);
    if (head)
        head(ud, n);
    if (!n)
        return 0;
    uint64_t *rs = &eng__shard(c, key, klen)->rnd;
    if (!uniq)
        rand_repeats(k, n, rs, fn, ud);
    else if (n == size)
        emit_all(k, fn, ud);
    else
        rand_distinct(k, n, rs, fn, ud);
    return 0;
}

int eng_smove(struct eng_ctx *c, const char *src, size_t slen, const char *dst, size_t dlen, const char *m,
              size_t ml)
{
    int err;
    struct eng_key *s = lookup(c, src, slen, 0, &err);
    if (err)
        return err;
    struct eng_key *d = lookup(c, dst, dlen, 0, &err);
    if (!s)
        return 0;
    if (err)
        return err;
    if (s == d) {
        struct elem e;
        elem_str(&e, m, ml);
        return contains(s, &e);
    }
    if (!rem(s, m, ml))
        return 0;
    eng__journalf(c, "sbbb", "SMOVE", src, slen, dst, dlen, m, ml);
    eng__changed(c, src, slen, ENG_EV_SET, "srem");
    drop_if_empty(c, s, src, slen);
    int created = !d;
    if (created)
        d = set_new(dst, dlen);
    int added = add_str(d, m, ml);
    if (created)
        eng__add(c, d);
    if (added) /* dst may have had it already */
        eng__changed(c, dst, dlen, ENG_EV_SET, "sadd");
    return 1;
}

/* ---- set algebra -------------------------------------------------------------- */

/* The keys' sets (NULL for missing ones); ERR_WRONGTYPE when one is not a
 * set.  Every key is looked up, so a wrong type anywhere is reported even
 * after a missing key, as Redis does. */
static int gather(struct eng_ctx *c, const struct eng_str *keys, int n, int read, struct eng_key **sets,
                  int *missing)
{
    *missing = 0;
    for (int i = 0; i < n; i++) {
        int err;
        sets[i] = lookup(c, keys[i].p, keys[i].n, read, &err);
        if (err)
            return err;
        *missing += !sets[i];
    }
    return 0;
}

/* Sorts sets by size, smallest first (few keys: insertion sort). */
static void by_size(struct eng_key **sets, int n)
{
    for (int i = 1; i < n; i++) {
        struct eng_key *x = sets[i];
        int j = i;
        for (; j > 0 && scard(sets[j - 1]) > scard(x); j--)
            sets[j] = sets[j - 1];
        sets[j] = x;
    }
}

struct inter {
    struct eng_key **sets;
    int n;
    int64_t found, limit;
    struct eng_key *into; /* result set, or NULL to count only */
    struct elem *list;    /* or members listed here (list_cap) */
    int64_t list_cap;
};

static int inter_visit(void *ud, const struct elem *e)
{
    struct inter *x = ud;
    for (int j = 1; j < x->n; j++)
        if (x->sets[j] != x->sets[0] && !contains(x->sets[j], e))
            return 0;
    if (x->into)
        add(x->into, e);
    if (x->list) {
        if (x->found == x->list_cap) {
            x->list_cap *= 2;
            x->list = xrealloc(x->list, sizeof *x->list * (size_t)x->list_cap);
        }
        x->list[x->found] = *e;
        if (e->is_int)
            x->list[x->found].p = NULL; /* its text lives in the copy's buf */
    }
    x->found++;
    return x->limit && x->found >= x->limit;
}

/* SINTER without a destination replies in the order of the smallest set, as
 * Redis does; the members are listed first so the count leads the reply. */
static void inter_reply(struct eng_key **sets, int n, eng_set_count_fn *head, eng_member_fn *fn, void *ud,
                        int64_t *card)
{
    struct inter x = {sets, n, 0, 0, NULL, xmalloc(sizeof(struct elem) * 16), 16};
    each(sets[0], inter_visit, &x);
    if (head)
        head(ud, x.found);
    for (int64_t i = 0; i < x.found; i++)
        fn(ud, x.list[i].p ? x.list[i].p : x.list[i].buf, x.list[i].n);
    xfree(x.list);
    if (card)
        *card = x.found;
}

struct fold {
    struct eng_key *into;
    int adding;
};

static int fold_visit(void *ud, const struct elem *e)
{
    struct fold *f = ud;
    if (f->adding)
        add(f->into, e);
    else if (contains(f->into, e))
        rem(f->into, e->p, e->n);
    return 0;
}

struct diff1 {
    struct eng_key **sets;
    int n;
    struct eng_key *into;
};

static int diff1_visit(void *ud, const struct elem *e)
{
    struct diff1 *x = ud;
    for (int j = 1; j < x->n; j++)
        if (x->sets[j] && (x->sets[j] == x->sets[0] || contains(x->sets[j], e)))
            return 0;
    add(x->into, e);
    return 0;
}

/* SDIFF as Redis 7.0 computes it, so that the result's encoding is the same:
 * algorithm 1 (members of the first set in none of the others) unless adding
 * all of the first set and removing the others' is estimated to be cheaper.
 * The second may pass through a hashtable that the first never builds. */
static void diff(struct eng_key **sets, int n, struct eng_key *r)
{
    int64_t one = 0, two = 0;
    for (int j = 0; j < n; j++)
        if (sets[j])
            one += scard(sets[0]), two += scard(sets[j]);
    if (one / 2 <= two) {
        struct diff1 x = {sets, n, r};
        each(sets[0], diff1_visit, &x);
        return;
    }
    for (int j = 0; j < n; j++) {
        if (!sets[j])
            continue;
        struct fold f = {r, j == 0};
        each(sets[j], fold_visit, &f);
        if (scard(r) == 0)
            break;
    }
}

/* Builds the result of op over sets into a new set named name. */
static struct eng_key *compute(enum eng_setop op, struct eng_key **sets, int n, int missing, const char *name,
                               size_t nlen)
{
    struct eng_key *r = set_new(name, nlen);
    if (op == ENG_SETOP_INTER) {
        if (!missing) {
            by_size(sets, n);
            struct inter x = {sets, n, 0, 0, r, NULL, 0};
            each(sets[0], inter_visit, &x);
        }
    } else if (op == ENG_SETOP_DIFF) {
        if (sets[0])
            diff(sets, n, r);
    } else {
        for (int i = 0; i < n; i++) {
            struct fold f = {r, 1};
            if (sets[i])
                each(sets[i], fold_visit, &f);
        }
    }
    return r;
}

static void store(struct eng_ctx *c, enum eng_setop op, const struct eng_str *keys, int n, const char *dst,
                  size_t dlen, struct eng_key *r)
{
    static const char *const cmds[] = {"SINTERSTORE", "SUNIONSTORE", "SDIFFSTORE"};
    static const char *const events[] = {"sinterstore", "sunionstore", "sdiffstore"};
    struct eng_key *old = eng__lookup(c, dst, dlen, 0);
    if (!scard(r)) {
        set_discard(r);
        if (!old)
            return;
        eng__delete(c, old);
        eng__journal_args(c, cmds[op], dst, dlen, keys, n);
        eng__changed(c, dst, dlen, ENG_EV_GENERIC, "del");
        return;
    }
    if (old)
        eng__delete(c, old); /* the TTL goes with it, as with Redis's setKey */
    eng__add(c, r);
    eng__journal_args(c, cmds[op], dst, dlen, keys, n);
    eng__changed(c, dst, dlen, ENG_EV_SET, events[op]);
}

int eng_setop(struct eng_ctx *c, enum eng_setop op, const struct eng_str *keys, int n, const char *dst, size_t dlen,
              eng_set_count_fn *head, eng_member_fn *fn, void *ud, int64_t *card)
{
    struct eng_key *stack[16], **sets = n > 16 ? xmalloc(sizeof *sets * (size_t)n) : stack;
    int missing;
    int rc = gather(c, keys, n, dst == NULL, sets, &missing);
    if (rc < 0)
        goto out;
    if (!dst && op == ENG_SETOP_INTER) {
        if (missing) {
            if (head)
                head(ud, 0);
            if (card)
                *card = 0;
        } else {
            by_size(sets, n);
            inter_reply(sets, n, head, fn, ud, card);
        }
        goto out;
    }
    struct eng_key *r = compute(op, sets, n, missing, dst ? dst : "", dst ? dlen : 0);
    if (card)
        *card = scard(r);
    if (dst) {
        store(c, op, keys, n, dst, dlen, r);
    } else {
        if (head)
            head(ud, scard(r));
        emit_all(r, fn, ud);
        set_discard(r);
    }
out:
    if (sets != stack)
        xfree(sets);
    return rc;
}

int eng_sintercard(struct eng_ctx *c, const struct eng_str *keys, int n, int64_t limit, int64_t *card)
{
    struct eng_key *stack[16], **sets = n > 16 ? xmalloc(sizeof *sets * (size_t)n) : stack;
    int missing;
    int rc = gather(c, keys, n, 1, sets, &missing);
    if (rc == 0) {
        struct inter x = {sets, n, 0, limit, NULL, NULL, 0};
        if (!missing) {
            by_size(sets, n);
            each(sets[0], inter_visit, &x);
        }
        *card = x.found;
    }
    if (sets != stack)
        xfree(sets);
    return rc;
}

/* ---- SSCAN ----------------------------------------------------------------------- */

struct scan {
    eng_member_fn *fn;
    void *ud;
    const char *pat;
    size_t plen;
    int64_t seen;
};

static void scan_member(struct scan *s, const char *p, size_t n)
{
    s->seen++;
    if (!s->pat || glob_match(s->pat, s->plen, p, n, 0))
        s->fn(s->ud, p, n);
}

static void scan_node(void *ud, struct dict_node *n)
{
    scan_member(ud, ((struct snode *)n)->p, ((struct snode *)n)->len);
}

int eng_sscan(struct eng_ctx *c, const char *key, size_t klen, uint64_t cursor, const char *pat, size_t plen,
              int64_t count, eng_member_fn *fn, void *ud, uint64_t *next)
{
    int err;
    struct eng_key *k = lookup(c, key, klen, 1, &err);
    if (err)
        return err;
    struct scan s = {fn, ud, pat, plen, 0};
    if (pat && plen == 1 && pat[0] == '*')
        s.pat = NULL;
    *next = 0;
    if (!k)
        return 0;
    if (k->enc == ENC_INTSET) {
        struct iset *is = k->v.p;
        for (uint32_t i = 0; i < is->count; i++) {
            char buf[24];
            scan_member(&s, buf, num_fmt_i64(buf, is_get(is, i)));
        }
        return 0;
    }
    /* As Redis: COUNT counts members visited before MATCH filters them. */
    struct dict *d = &((struct stab *)k->v.p)->d;
    int64_t steps = count * 10;
    do {
        cursor = dict_scan(d, cursor, scan_node, &s);
    } while (cursor && steps-- && s.seen < count);
    *next = cursor;
    return 0;
}
