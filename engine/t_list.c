/* t_list.c: the list type (list.h).  A list is a doubly linked list of
 * blocks ("nodes"), each a flat run of length-prefixed elements:
 *
 *   node: +------+------+-------+------+-----+-------- ... --------+
 *         | prev | next | count | used | cap | entry entry entry   |
 *         +------+------+-------+------+-----+-------- ... --------+
 *
 *   entry, n < 128:   +---+---------+---+
 *                     | n | n bytes | n |
 *                     +---+---------+---+
 *   entry, n >= 128:  +------+---------+---------+---------+------+
 *                     | 0x80 | n (u64) | n bytes | n (u64) | 0x80 |
 *                     +------+---------+---------+---------+------+
 *
 * The length is written at both ends of an entry so that a node can be
 * walked backwards (RPOP, LINDEX from the tail, LPOS with a negative rank)
 * as Redis's listpack back-lengths allow.
 *
 * A small list is one node: the "listpack" encoding.  Past
 * ENG_LIST_MAX_LISTPACK_SIZE bytes it becomes a "quicklist": pushes open a
 * new node at the end when the end node is full, so LPUSH/RPUSH/LPOP/RPOP
 * are O(1) amortised, and LINDEX/LRANGE skip whole nodes by their counts.
 * Not here: argument parsing and replies (protocol/cmd_list.c). */
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "engine_int.h"
#include "list.h"

/* Redis's listpack header (6) and end byte (1): counted in a node's size so
 * that our limits track Redis's. */
#define NODE_OVERHEAD 7
#define LIMIT ENG_LIST_MAX_LISTPACK_SIZE

struct node {
    struct node *prev, *next;
    uint32_t count; /* entries */
    size_t used;    /* bytes of data in use */
    size_t cap;     /* bytes of data allocated */
    unsigned char data[];
};

struct qlist {
    struct node *head, *tail;
    uint64_t count;
    uint32_t nnodes;
    uint8_t quick; /* 1: "quicklist", 0: "listpack" (one node) */
};

/* ---- entries ------------------------------------------------------------- */

static size_t ent_size(size_t n) { return n < 128 ? n + 2 : n + 18; }

static void ent_write(unsigned char *p, const char *s, size_t n)
{
    if (n < 128) {
        p[0] = (unsigned char)n;
        memcpy(p + 1, s, n);
        p[n + 1] = (unsigned char)n;
        return;
    }
    uint64_t len = n;
    p[0] = 0x80;
    memcpy(p + 1, &len, 8);
    memcpy(p + 9, s, n);
    memcpy(p + 9 + n, &len, 8);
    p[17 + n] = 0x80;
}

/* The bytes of the entry at p. */
static const char *ent_get(const unsigned char *p, size_t *n)
{
    if (p[0] < 0x80) {
        *n = p[0];
        return (const char *)p + 1;
    }
    uint64_t len;
    memcpy(&len, p + 1, 8);
    *n = (size_t)len;
    return (const char *)p + 9;
}

static size_t ent_len_at(const unsigned char *p)
{
    size_t n;
    ent_get(p, &n);
    return ent_size(n);
}

/* Size of the entry that ends just before end. */
static size_t ent_len_before(const unsigned char *end)
{
    if (end[-1] < 0x80)
        return (size_t)end[-1] + 2;
    uint64_t len;
    memcpy(&len, end - 9, 8);
    return (size_t)len + 18;
}

static int ent_eq(const unsigned char *p, const char *s, size_t n)
{
    size_t en;
    const char *e = ent_get(p, &en);
    return en == n && memcmp(e, s, n) == 0;
}

/* ---- nodes --------------------------------------------------------------- */

static struct node *node_new(size_t cap)
{
    if (cap < 32)
        cap = 32;
    struct node *nd = xmalloc(sizeof *nd + cap);
    nd->prev = nd->next = NULL;
    nd->count = 0;
    nd->used = 0;
    nd->cap = cap;
    return nd;
}

/* Points the neighbours (and the list's ends) at nd after nd moved. */
static void relink(struct qlist *l, struct node *nd)
{
    if (nd->prev)
        nd->prev->next = nd;
    else
        l->head = nd;
    if (nd->next)
        nd->next->prev = nd;
    else
        l->tail = nd;
}

/* Room for extra more bytes in nd; returns the node (it may move). */
static struct node *node_reserve(struct qlist *l, struct node *nd, size_t extra)
{
    size_t need = nd->used + extra;
    if (need <= nd->cap)
        return nd;
    size_t cap = nd->cap * 2;
    if (cap > LIMIT)
        cap = LIMIT;
    if (cap < need)
        cap = need;
    nd = xrealloc(nd, sizeof *nd + cap);
    nd->cap = cap;
    relink(l, nd);
    return nd;
}

/* Gives back the memory of a node that shrank a lot. */
static struct node *node_shrink(struct qlist *l, struct node *nd)
{
    if (nd->cap <= 64 || nd->cap / 4 <= nd->used)
        return nd;
    size_t cap = nd->used * 2 < 32 ? 32 : nd->used * 2;
    nd = xrealloc(nd, sizeof *nd + cap);
    nd->cap = cap;
    relink(l, nd);
    return nd;
}

static int node_fits(const struct node *nd, size_t esz) { return nd->used + esz + NODE_OVERHEAD <= LIMIT; }

/* Links nd after `after` (NULL: at the head). */
static void node_link(struct qlist *l, struct node *after, struct node *nd)
{
    nd->prev = after;
    nd->next = after ? after->next : l->head;
    relink(l, nd);
    l->nnodes++;
}

static void node_unlink(struct qlist *l, struct node *nd)
{
    if (nd->prev)
        nd->prev->next = nd->next;
    else
        l->head = nd->next;
    if (nd->next)
        nd->next->prev = nd->prev;
    else
        l->tail = nd->prev;
    l->nnodes--;
    xfree(nd);
}

/* Writes an entry at off inside nd (which has room). */
static void node_put(struct node *nd, size_t off, const char *s, size_t n)
{
    size_t esz = ent_size(n);
    memmove(nd->data + off + esz, nd->data + off, nd->used - off);
    ent_write(nd->data + off, s, n);
    nd->used += esz;
    nd->count++;
}

/* Moves the entries of nd from off on into a new node linked after nd. */
static struct node *node_split(struct qlist *l, struct node *nd, size_t off)
{
    size_t tail = nd->used - off;
    struct node *b = node_new(tail);
    memcpy(b->data, nd->data + off, tail);
    b->used = tail;
    uint32_t before = 0;
    for (size_t o = 0; o < off; o += ent_len_at(nd->data + o))
        before++;
    b->count = nd->count - before;
    nd->count = before;
    nd->used = off;
    node_link(l, nd, b);
    return b;
}

/* ---- the list ------------------------------------------------------------ */

static struct qlist *ql_new(void) { return xcalloc(1, sizeof(struct qlist)); }

static void ql_free(void *v)
{
    struct qlist *l = v;
    for (struct node *nd = l->head, *next; nd; nd = next) {
        next = nd->next;
        xfree(nd);
    }
    xfree(l);
}

/* Keeps the encoding as Redis 7.2 would: quicklist once the list outgrows one
 * block, listpack again when it is one block of at most half the limit. */
static void ql_update_enc(struct qlist *l)
{
    if (!l->quick && (l->nnodes > 1 || (l->head && l->head->used + NODE_OVERHEAD > LIMIT)))
        l->quick = 1;
    else if (l->quick && l->nnodes == 1 && l->head->used + NODE_OVERHEAD <= LIMIT / 2)
        l->quick = 0;
}

/* Inserts s at byte offset off of nd (nd NULL: the list is empty). */
static void ql_insert(struct qlist *l, struct node *nd, size_t off, const char *s, size_t n)
{
    size_t esz = ent_size(n);
    l->count++;
    if (!nd) {
        nd = node_new(esz);
        node_link(l, NULL, nd);
        node_put(nd, 0, s, n);
        return;
    }
    if (node_fits(nd, esz)) {
        nd = node_reserve(l, nd, esz);
        node_put(nd, off, s, n);
        return;
    }
    if (off == 0 && nd->prev && node_fits(nd->prev, esz)) {
        struct node *p = node_reserve(l, nd->prev, esz);
        node_put(p, p->used, s, n);
        return;
    }
    if (off == nd->used && nd->next && node_fits(nd->next, esz)) {
        struct node *p = node_reserve(l, nd->next, esz);
        node_put(p, 0, s, n);
        return;
    }
    struct node *after = nd;
    if (off == 0) {
        after = nd->prev;
    } else if (off < nd->used) {
        /* Split: nd keeps [0, off), the rest moves to a node after it. */
        struct node *b = node_split(l, nd, off);
        if (node_fits(nd, esz)) {
            nd = node_reserve(l, nd, esz);
            node_put(nd, nd->used, s, n);
            return;
        }
        if (node_fits(b, esz)) {
            b = node_reserve(l, b, esz);
            node_put(b, 0, s, n);
            return;
        }
    }
    struct node *fresh = node_new(esz);
    node_link(l, after, fresh);
    node_put(fresh, 0, s, n);
}

/* A position in the list: the entry at byte off of node nd. */
struct pos {
    struct node *nd;
    size_t off;
};

static void pos_next(struct pos *p)
{
    p->off += ent_len_at(p->nd->data + p->off);
    if (p->off >= p->nd->used)
        p->nd = p->nd->next, p->off = 0;
}

static void pos_prev(struct pos *p)
{
    if (p->off == 0) {
        p->nd = p->nd->prev;
        if (p->nd)
            p->off = p->nd->used - ent_len_before(p->nd->data + p->nd->used);
        return;
    }
    p->off -= ent_len_before(p->nd->data + p->off);
}

static struct pos pos_first(const struct qlist *l) { return (struct pos){l->head, 0}; }
static struct pos pos_last(const struct qlist *l)
{
    struct pos p = {l->tail, 0};
    if (p.nd)
        p.off = p.nd->used - ent_len_before(p.nd->data + p.nd->used);
    return p;
}

/* The entry at index i (0 <= i < count), walked from the nearer end. */
static struct pos pos_at(const struct qlist *l, uint64_t i)
{
    struct node *nd;
    uint64_t in; /* index inside nd */
    if (i < l->count / 2) {
        for (nd = l->head; i >= nd->count; nd = nd->next)
            i -= nd->count;
        in = i;
    } else {
        uint64_t back = l->count - 1 - i; /* entries after i */
        for (nd = l->tail; back >= nd->count; nd = nd->prev)
            back -= nd->count;
        in = nd->count - 1 - back;
    }
    struct pos p = {nd, 0};
    if (in < nd->count / 2) {
        while (in--)
            p.off += ent_len_at(nd->data + p.off);
    } else {
        p.off = nd->used;
        for (uint64_t k = nd->count - in; k; k--)
            p.off -= ent_len_before(nd->data + p.off);
    }
    return p;
}

static const char *pos_get(const struct pos *p, size_t *n) { return ent_get(p->nd->data + p->off, n); }

/* Deletes the entry at *p; *p moves to the entry that followed it (forward)
 * or preceded it (backward), or to nd NULL past the end. */
static void pos_del(struct qlist *l, struct pos *p, int backward)
{
    struct pos prev = *p;
    if (backward)
        pos_prev(&prev);
    struct node *nd = p->nd;
    size_t esz = ent_len_at(nd->data + p->off);
    memmove(nd->data + p->off, nd->data + p->off + esz, nd->used - p->off - esz);
    nd->used -= esz;
    nd->count--;
    l->count--;
    if (nd->count == 0) {
        struct node *next = nd->next;
        node_unlink(l, nd);
        *p = backward ? prev : (struct pos){next, 0};
        return;
    }
    if (backward) {
        *p = prev;
        return;
    }
    if (p->off >= nd->used)
        p->nd = nd->next, p->off = 0;
}

/* Removes n entries from the head (or the tail), whole nodes at a time. */
static void ql_del_end(struct qlist *l, uint64_t n, int tail)
{
    while (n) {
        struct node *nd = tail ? l->tail : l->head;
        if (n >= nd->count) {
            n -= nd->count;
            l->count -= nd->count;
            node_unlink(l, nd);
            continue;
        }
        size_t off = 0;
        if (!tail) {
            for (uint64_t k = n; k; k--)
                off += ent_len_at(nd->data + off);
            memmove(nd->data, nd->data + off, nd->used - off);
            nd->used -= off;
        } else {
            off = nd->used;
            for (uint64_t k = n; k; k--)
                off -= ent_len_before(nd->data + off);
            nd->used = off;
        }
        nd->count -= (uint32_t)n;
        l->count -= n;
        node_shrink(l, nd);
        n = 0;
    }
}

static void ql_push(struct qlist *l, int where, const char *s, size_t n)
{
    if (where == ENG_LIST_HEAD)
        ql_insert(l, l->head, 0, s, n);
    else
        ql_insert(l, l->tail, l->tail ? l->tail->used : 0, s, n);
}

/* ---- type ops ------------------------------------------------------------ */

static size_t ql_mem(const void *v)
{
    const struct qlist *l = v;
    size_t n = xmalloc_size(l);
    for (const struct node *nd = l->head; nd; nd = nd->next)
        n += xmalloc_size(nd);
    return n;
}

static void *ql_dup(const void *v)
{
    const struct qlist *l = v;
    struct qlist *d = ql_new();
    d->quick = l->quick;
    d->count = l->count;
    for (const struct node *nd = l->head; nd; nd = nd->next) {
        struct node *c = node_new(nd->used);
        memcpy(c->data, nd->data, nd->used);
        c->used = nd->used;
        c->count = nd->count;
        node_link(d, d->tail, c);
    }
    return d;
}

const struct eng_type_ops eng__list_ops = {ql_free, ql_mem, ql_dup};

/* ---- helpers for the commands ------------------------------------------- */

static struct eng_key *lookup(struct eng_ctx *c, const char *key, size_t klen, int read, int *err)
{
    return eng__lookup_type(c, key, klen, ENG_T_LIST, read, err);
}

static struct qlist *list_of(struct eng_key *k) { return k->v.p; }

/* After a change: the key's encoding follows the list's, an empty list goes
 * (with a "del" event).  Returns 1 when the key was deleted. */
static int settle(struct eng_ctx *c, struct eng_key *k)
{
    struct qlist *l = list_of(k);
    if (l->count == 0) {
        eng__changed(c, k->key, k->klen, ENG_EV_GENERIC, "del");
        eng__delete(c, k);
        return 1;
    }
    ql_update_enc(l);
    k->enc = l->quick ? ENC_QUICKLIST : ENC_LISTPACK;
    return 0;
}

static struct eng_key *create(struct eng_ctx *c, const char *key, size_t klen)
{
    struct eng_key *k = eng__key_new(key, klen, ENG_T_LIST, ENC_LISTPACK, 0);
    k->v.p = ql_new();
    eng__add(c, k);
    return k;
}

/* Normalises LRANGE/LTRIM indexes: [*start, *stop] inside [0, len), or
 * returns 0 when the range is empty. */
static int norm_range(int64_t len, int64_t *start, int64_t *stop)
{
    if (*start < 0)
        *start = len + *start;
    if (*stop < 0)
        *stop = len + *stop;
    if (*start < 0)
        *start = 0;
    if (*start > *stop || *start >= len)
        return 0;
    if (*stop >= len)
        *stop = len - 1;
    return 1;
}

/* ---- commands ------------------------------------------------------------- */

int eng_list_push(struct eng_ctx *c, const char *key, size_t klen, int where, int xx, const struct eng_str *elems,
                  int n, int64_t *len)
{
    int err;
    struct eng_key *k = lookup(c, key, klen, 0, &err);
    if (err)
        return err;
    if (!k && xx) {
        *len = 0;
        return 0;
    }
    if (!k)
        k = create(c, key, klen);
    struct qlist *l = list_of(k);
    for (int i = 0; i < n; i++)
        ql_push(l, where, elems[i].p, elems[i].n);
    settle(c, k);
    *len = (int64_t)l->count;
    eng__journal_args(c, where == ENG_LIST_HEAD ? "LPUSH" : "RPUSH", key, klen, elems, n);
    eng__changed(c, key, klen, ENG_EV_LIST, where == ENG_LIST_HEAD ? "lpush" : "rpush");
    eng__signal_ready(c, key, klen);
    return 0;
}

/* Pops from a list known to exist; deletes the key when it empties. */
static void pop_from(struct eng_ctx *c, struct eng_key *k, int where, int64_t count, eng_list_count_fn *head,
                     eng_list_elem_fn *fn, void *ud)
{
    struct qlist *l = list_of(k);
    uint64_t n = (uint64_t)count < l->count ? (uint64_t)count : l->count;
    if (head)
        head(ud, (int64_t)n);
    struct pos p = where == ENG_LIST_HEAD ? pos_first(l) : pos_last(l);
    for (uint64_t i = 0; i < n; i++) {
        size_t len;
        const char *s = pos_get(&p, &len);
        fn(ud, s, len);
        if (where == ENG_LIST_HEAD)
            pos_next(&p);
        else
            pos_prev(&p);
    }
    ql_del_end(l, n, where == ENG_LIST_TAIL);
    const char *cmd = where == ENG_LIST_HEAD ? "LPOP" : "RPOP";
    if (n == 1)
        eng__journalf(c, "sb", cmd, k->key, (size_t)k->klen);
    else
        eng__journalf(c, "sbi", cmd, k->key, (size_t)k->klen, (int64_t)n);
    eng__changed(c, k->key, k->klen, ENG_EV_LIST, where == ENG_LIST_HEAD ? "lpop" : "rpop");
    settle(c, k);
}

int eng_list_pop(struct eng_ctx *c, const char *key, size_t klen, int where, int64_t count, eng_list_count_fn *head,
                 eng_list_elem_fn *fn, void *ud)
{
    int err;
    struct eng_key *k = lookup(c, key, klen, 0, &err);
    if (!k)
        return err ? err : ERR_NOKEY;
    pop_from(c, k, where, count, head, fn, ud);
    return 0;
}

int eng_list_mpop(struct eng_ctx *c, const struct eng_str *keys, int nkeys, int where, int64_t count,
                  eng_list_count_fn *head, eng_list_elem_fn *fn, void *ud, int *which)
{
    int err;
    struct eng_key *k = eng__first_key(c, keys, nkeys, ENG_T_LIST, which, &err);
    if (!k)
        return err;
    pop_from(c, k, where, count, head, fn, ud);
    return 0;
}

int eng_lmove(struct eng_ctx *c, const char *src, size_t slen, const char *dst, size_t dlen, int from, int to,
              eng_list_count_fn *head, eng_list_elem_fn *fn, void *ud)
{
    int err;
    struct eng_key *sk = lookup(c, src, slen, 0, &err);
    if (!sk)
        return err ? err : ERR_NOKEY;
    struct eng_key *dk = lookup(c, dst, dlen, 0, &err);
    if (err)
        return err;
    struct qlist *sl = list_of(sk);
    struct pos p = from == ENG_LIST_HEAD ? pos_first(sl) : pos_last(sl);
    size_t n;
    const char *s = pos_get(&p, &n);
    char *copy = xmalloc(n ? n : 1);
    memcpy(copy, s, n);
    ql_del_end(sl, 1, from == ENG_LIST_TAIL);
    /* The source stays (even empty) until the push: with src == dst the
     * element goes back into the same list. */
    if (!dk)
        dk = create(c, dst, dlen);
    ql_push(list_of(dk), to, copy, n);
    settle(c, dk);
    eng__journalf(c, "sbbss", "LMOVE", src, slen, dst, dlen, from == ENG_LIST_HEAD ? "LEFT" : "RIGHT",
                  to == ENG_LIST_HEAD ? "LEFT" : "RIGHT");
    eng__changed(c, dst, dlen, ENG_EV_LIST, to == ENG_LIST_HEAD ? "lpush" : "rpush");
    eng__signal_ready(c, dst, dlen);
    eng__changed(c, src, slen, ENG_EV_LIST, from == ENG_LIST_HEAD ? "lpop" : "rpop");
    settle(c, sk);
    if (head)
        head(ud, 1);
    fn(ud, copy, n);
    xfree(copy);
    return 0;
}

int eng_list_len(struct eng_ctx *c, const char *key, size_t klen, int64_t *len)
{
    int err;
    struct eng_key *k = lookup(c, key, klen, 1, &err);
    if (err)
        return err;
    *len = k ? (int64_t)list_of(k)->count : 0;
    return 0;
}

int eng_list_range(struct eng_ctx *c, const char *key, size_t klen, int64_t start, int64_t stop,
                   eng_list_count_fn *head, eng_list_elem_fn *fn, void *ud)
{
    int err;
    struct eng_key *k = lookup(c, key, klen, 1, &err);
    if (!k)
        return err ? err : ERR_NOKEY;
    struct qlist *l = list_of(k);
    if (!norm_range((int64_t)l->count, &start, &stop)) {
        if (head)
            head(ud, 0);
        return 0;
    }
    if (head)
        head(ud, stop - start + 1);
    struct pos p = pos_at(l, (uint64_t)start);
    for (int64_t i = start; i <= stop; i++) {
        size_t n;
        const char *s = pos_get(&p, &n);
        fn(ud, s, n);
        pos_next(&p);
    }
    return 0;
}

/* Index i (negative from the end) into [0, count), or -1 when outside. */
static int64_t norm_index(const struct qlist *l, int64_t i)
{
    if (i < 0)
        i += (int64_t)l->count;
    return i < 0 || i >= (int64_t)l->count ? -1 : i;
}

int eng_list_index(struct eng_ctx *c, const char *key, size_t klen, int64_t index, struct eng_str *out)
{
    int err;
    struct eng_key *k = lookup(c, key, klen, 1, &err);
    if (!k)
        return err ? err : ERR_NOKEY;
    int64_t i = norm_index(list_of(k), index);
    if (i < 0)
        return ERR_RANGE;
    struct pos p = pos_at(list_of(k), (uint64_t)i);
    out->p = pos_get(&p, &out->n);
    return 0;
}

int eng_list_set(struct eng_ctx *c, const char *key, size_t klen, int64_t index, const char *s, size_t n)
{
    int err;
    struct eng_key *k = lookup(c, key, klen, 0, &err);
    if (!k)
        return err ? err : ERR_NOKEY;
    struct qlist *l = list_of(k);
    int64_t i = norm_index(l, index);
    if (i < 0)
        return ERR_RANGE;
    struct pos p = pos_at(l, (uint64_t)i);
    size_t osz = ent_len_at(p.nd->data + p.off), nsz = ent_size(n);
    struct node *nd = p.nd;
    if (nsz > osz)
        nd = node_reserve(l, nd, nsz - osz);
    memmove(nd->data + p.off + nsz, nd->data + p.off + osz, nd->used - p.off - osz);
    ent_write(nd->data + p.off, s, n);
    nd->used = nd->used + nsz - osz;
    if (nsz < osz)
        node_shrink(l, nd);
    settle(c, k);
    eng__journalf(c, "sbib", "LSET", key, klen, index, s, n);
    eng__changed(c, key, klen, ENG_EV_LIST, "lset");
    return 0;
}

int eng_list_insert(struct eng_ctx *c, const char *key, size_t klen, int after, const char *pivot, size_t plen,
                    const char *elem, size_t elen, int64_t *len)
{
    int err;
    struct eng_key *k = lookup(c, key, klen, 0, &err);
    if (err)
        return err;
    if (!k) {
        *len = 0;
        return 0;
    }
    struct qlist *l = list_of(k);
    struct pos p = pos_first(l);
    while (p.nd && !ent_eq(p.nd->data + p.off, pivot, plen))
        pos_next(&p);
    if (!p.nd) {
        *len = -1;
        return 0;
    }
    size_t off = p.off;
    if (after)
        off += ent_len_at(p.nd->data + off);
    ql_insert(l, p.nd, off, elem, elen);
    settle(c, k);
    *len = (int64_t)l->count;
    eng__journalf(c, "sbsbb", "LINSERT", key, klen, after ? "AFTER" : "BEFORE", pivot, plen, elem, elen);
    eng__changed(c, key, klen, ENG_EV_LIST, "linsert");
    eng__signal_ready(c, key, klen);
    return 0;
}

int eng_list_rem(struct eng_ctx *c, const char *key, size_t klen, int64_t count, const char *elem, size_t elen,
                 int64_t *removed)
{
    int err;
    struct eng_key *k = lookup(c, key, klen, 0, &err);
    if (err)
        return err;
    *removed = 0;
    if (!k)
        return 0;
    struct qlist *l = list_of(k);
    int backward = count < 0;
    uint64_t limit = count == 0 ? UINT64_MAX : backward ? (uint64_t)0 - (uint64_t)count : (uint64_t)count;
    struct pos p = backward ? pos_last(l) : pos_first(l);
    uint64_t n = 0;
    while (p.nd && n < limit) {
        if (ent_eq(p.nd->data + p.off, elem, elen)) {
            pos_del(l, &p, backward);
            n++;
        } else if (backward) {
            pos_prev(&p);
        } else {
            pos_next(&p);
        }
    }
    if (n == 0)
        return 0;
    for (struct node *nd = l->head; nd; nd = nd->next)
        nd = node_shrink(l, nd);
    *removed = (int64_t)n;
    eng__journalf(c, "sbib", "LREM", key, klen, count, elem, elen);
    eng__changed(c, key, klen, ENG_EV_LIST, "lrem");
    settle(c, k);
    return 0;
}

int eng_list_trim(struct eng_ctx *c, const char *key, size_t klen, int64_t start, int64_t stop)
{
    int err;
    struct eng_key *k = lookup(c, key, klen, 0, &err);
    if (!k)
        return err;
    struct qlist *l = list_of(k);
    int64_t len = (int64_t)l->count, from = start, to = stop;
    uint64_t ltrim, rtrim;
    if (!norm_range(len, &from, &to)) {
        ltrim = (uint64_t)len, rtrim = 0;
    } else {
        ltrim = (uint64_t)from;
        rtrim = (uint64_t)(len - to - 1);
    }
    ql_del_end(l, ltrim, 0);
    ql_del_end(l, rtrim, 1);
    if (ltrim + rtrim)
        eng__journalf(c, "sbii", "LTRIM", key, klen, start, stop);
    eng__changed(c, key, klen, ENG_EV_LIST, "ltrim");
    settle(c, k);
    return 0;
}

int eng_list_pos(struct eng_ctx *c, const char *key, size_t klen, const char *elem, size_t elen, int64_t rank,
                 int64_t count, int64_t maxlen, void (*fn)(void *ud, int64_t index), void *ud)
{
    int err;
    struct eng_key *k = lookup(c, key, klen, 1, &err);
    if (!k)
        return err;
    struct qlist *l = list_of(k);
    int backward = rank < 0;
    uint64_t skip = backward ? (uint64_t)0 - (uint64_t)rank - 1 : (uint64_t)rank - 1;
    uint64_t want = count == 0 ? UINT64_MAX : (uint64_t)count;
    uint64_t cap = maxlen == 0 ? UINT64_MAX : (uint64_t)maxlen;
    struct pos p = backward ? pos_last(l) : pos_first(l);
    int64_t idx = backward ? (int64_t)l->count - 1 : 0, found = 0;
    for (uint64_t seen = 0; p.nd && seen < cap && (uint64_t)found < want; seen++) {
        if (ent_eq(p.nd->data + p.off, elem, elen)) {
            if (skip)
                skip--;
            else
                fn(ud, idx), found++;
        }
        if (backward)
            pos_prev(&p), idx--;
        else
            pos_next(&p), idx++;
    }
    return 0;
}
