/* t_string.c: the string type.  Three encodings: an int64 in place (ENC_INT),
 * the bytes after the key in the key's own block (ENC_EMBSTR: what SET makes,
 * one allocation per key), and a separate growable block (ENC_RAW: what APPEND
 * and SETRANGE make, so that repeated appends are amortised). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/num.h"
#include "engine_int.h"

/* Values up to this size share the key's block (Redis's embstr limit, so that
 * OBJECT ENCODING answers as Redis does); longer ones get their own block,
 * where a later APPEND can grow them in place. */
#define EMBSTR_MAX 44

/* Values that are canonical integers are stored as ENC_INT, as Redis does for
 * strings of up to 20 characters. */
static int as_int(const char *p, size_t n, int64_t *v) { return n <= 20 && num_parse_i64(p, n, v) == 0; }

static void view(const struct eng_key *k, struct eng_val *v)
{
    switch (k->enc) {
    case ENC_INT:
        v->n = num_fmt_i64(v->tmp, k->v.i);
        v->p = v->tmp;
        break;
    case ENC_EMBSTR:
        v->p = k->key + k->klen;
        v->n = (size_t)k->v.i;
        break;
    default: {
        const struct eng_raw *r = k->v.p;
        v->p = r->p;
        v->n = r->len;
    }
    }
}

/* may_int: store a canonical integer as ENC_INT (SET does; INCRBYFLOAT's
 * result stays a string, "embstr" in Redis even when it reads "3"). */
static struct eng_key *new_string(const char *key, size_t klen, const char *val, size_t vlen, int may_int)
{
    int64_t iv;
    if (may_int && as_int(val, vlen, &iv)) {
        struct eng_key *k = eng__key_new(key, klen, ENG_T_STRING, ENC_INT, 0);
        k->v.i = iv;
        return k;
    }
    if (vlen > EMBSTR_MAX) {
        struct eng_key *k = eng__key_new(key, klen, ENG_T_STRING, ENC_RAW, 0);
        struct eng_raw *r = xmalloc(sizeof *r + vlen);
        r->len = vlen;
        memcpy(r->p, val, vlen);
        k->v.p = r;
        return k;
    }
    struct eng_key *k = eng__key_new(key, klen, ENG_T_STRING, ENC_EMBSTR, vlen);
    k->v.i = (int64_t)vlen;
    memcpy(k->key + klen, val, vlen);
    return k;
}

/* Stores a new string value for key, replacing old (may be NULL). */
static struct eng_key *store(struct eng_ctx *c, struct eng_key *old, const char *key, size_t klen, const char *val,
                             size_t vlen, int may_int)
{
    if (may_int && old && old->enc == ENC_INT && old->type == ENG_T_STRING) {
        int64_t iv;
        if (as_int(val, vlen, &iv)) { /* in place: no allocation */
            old->v.i = iv;
            return old;
        }
    }
    struct eng_key *k = new_string(key, klen, val, vlen, may_int);
    if (old) {
        eng__free_value(old);
        eng__swap(c, old, k);
    } else {
        eng__add(c, k);
    }
    return k;
}

int eng_get(struct eng_ctx *c, const char *key, size_t klen, struct eng_val *v)
{
    int err;
    struct eng_key *k = eng__lookup_type(c, key, klen, ENG_T_STRING, 1, &err);
    if (!k)
        return err ? err : ERR_NOKEY;
    view(k, v);
    return 0;
}

int eng_set(struct eng_ctx *c, const char *key, size_t klen, const char *val, size_t vlen, unsigned flags,
            int64_t expire_at_ms, struct buf *old_out, int *had_old)
{
    struct eng_key *old = eng__lookup(c, key, klen, 0);
    if (had_old)
        *had_old = 0;
    if (flags & ENG_SET_GET) {
        if (old && old->type != ENG_T_STRING)
            return ERR_WRONGTYPE;
        if (old) {
            struct eng_val v;
            view(old, &v);
            buf_append(old_out, v.p, v.n);
            *had_old = 1;
        }
    }
    if (((flags & ENG_SET_NX) && old) || ((flags & ENG_SET_XX) && !old))
        return 0;
    int64_t keep = (old && (flags & ENG_SET_KEEPTTL)) ? eng__get_expire(c, old) : -1;
    if (old && old->is_volatile && !(flags & ENG_SET_KEEPTTL))
        eng__set_expire(c, old, 0);
    if (old && old->type != ENG_T_STRING) {
        eng__delete(c, old);
        old = NULL;
    }
    struct eng_key *k = store(c, old, key, klen, val, vlen, 1);
    if (expire_at_ms > 0)
        eng__set_expire(c, k, expire_at_ms);
    else if (keep > 0 && !k->is_volatile)
        eng__set_expire(c, k, keep);
    if (expire_at_ms > 0)
        eng__journalf(c, "sbbsi", "SET", key, klen, val, vlen, "PXAT", expire_at_ms);
    else if (flags & ENG_SET_KEEPTTL)
        eng__journalf(c, "sbbs", "SET", key, klen, val, vlen, "KEEPTTL");
    else
        eng__journalf(c, "sbb", "SET", key, klen, val, vlen);
    eng__changed(c, key, klen, ENG_EV_STRING, "set");
    if (expire_at_ms > 0)
        eng__changed(c, key, klen, ENG_EV_GENERIC, "expire");
    return 1;
}

int eng_incrby(struct eng_ctx *c, const char *key, size_t klen, int64_t delta, int64_t *result)
{
    int err;
    struct eng_key *k = eng__lookup_type(c, key, klen, ENG_T_STRING, 0, &err);
    if (err)
        return err;
    int64_t cur = 0;
    if (k && k->enc != ENC_INT) {
        struct eng_val v;
        view(k, &v);
        if (!as_int(v.p, v.n, &cur))
            return ERR_NOTINT;
    } else if (k) {
        cur = k->v.i;
    }
    int64_t next;
    if (__builtin_add_overflow(cur, delta, &next))
        return ERR_OVERFLOW;
    if (k && k->enc == ENC_INT) {
        k->v.i = next;
    } else {
        char tmp[24];
        size_t n = num_fmt_i64(tmp, next);
        if (k)
            eng__free_value(k), k->enc = ENC_INT, k->v.i = 0;
        store(c, k, key, klen, tmp, n, 1);
    }
    *result = next;
    eng__journalf(c, "sbi", "INCRBY", key, klen, delta);
    eng__changed(c, key, klen, ENG_EV_STRING, delta >= 0 ? "incrby" : "decrby");
    return 0;
}

int eng_incrbyfloat(struct eng_ctx *c, const char *key, size_t klen, long double delta, char *out, size_t *outlen)
{
    int err;
    struct eng_key *k = eng__lookup_type(c, key, klen, ENG_T_STRING, 0, &err);
    if (err)
        return err;
    long double cur = 0;
    if (k) {
        struct eng_val v;
        view(k, &v);
        if (num_parse_double(v.p, v.n, &cur) < 0)
            return ERR_NOTFLOAT;
    }
    long double next = cur + delta;
    if (isnan(next) || isinf(next))
        return ERR_NAN;
    int n = num_fmt_ldouble(out, ENG_LDBL_CHARS, next);
    if (n < 0)
        return ERR_NAN;
    *outlen = (size_t)n;
    store(c, k, key, klen, out, (size_t)n, 0);
    /* Replicas get the result, not the operation: float rounding must not
     * differ between machines. */
    eng__journalf(c, "sbbs", "SET", key, klen, out, (size_t)n, "KEEPTTL");
    eng__changed(c, key, klen, ENG_EV_STRING, "incrbyfloat");
    return 0;
}

/* Turns k into ENC_RAW with room for at least `need` bytes. */
static struct eng_raw *make_raw(struct eng_key *k, size_t need)
{
    if (k->enc == ENC_RAW) {
        struct eng_raw *r = k->v.p;
        size_t cap = xmalloc_size(r) - sizeof *r;
        if (cap < need) {
            size_t want = need < (1u << 20) ? need * 2 : need + (1u << 20);
            r = xrealloc(r, sizeof *r + want);
            k->v.p = r;
        }
        return r;
    }
    struct eng_val v;
    view(k, &v);
    size_t want = need > v.n ? need : v.n;
    struct eng_raw *r = xmalloc(sizeof *r + want);
    memcpy(r->p, v.p, v.n);
    r->len = v.n;
    /* The embedded bytes stay in the key block unused until the key is next
     * rewritten; shrinking the block would move the key (and its dict link). */
    k->enc = ENC_RAW;
    k->v.p = r;
    return r;
}

static struct eng_key *get_or_create_raw(struct eng_ctx *c, const char *key, size_t klen, int *err)
{
    struct eng_key *k = eng__lookup_type(c, key, klen, ENG_T_STRING, 0, err);
    if (*err)
        return NULL;
    if (!k) {
        k = eng__key_new(key, klen, ENG_T_STRING, ENC_RAW, 0);
        struct eng_raw *r = xmalloc(sizeof *r + 8);
        r->len = 0;
        k->v.p = r;
        eng__add(c, k);
    }
    return k;
}

int eng_append(struct eng_ctx *c, const char *key, size_t klen, const char *p, size_t n, int64_t max_len,
               int64_t *newlen)
{
    int err;
    struct eng_key *k = eng__lookup_type(c, key, klen, ENG_T_STRING, 0, &err);
    if (err)
        return err;
    struct eng_val v = {0};
    if (k)
        view(k, &v);
    if ((int64_t)(v.n + n) > max_len)
        return ERR_TOOBIG;
    k = get_or_create_raw(c, key, klen, &err);
    struct eng_raw *r = make_raw(k, v.n + n);
    memcpy(r->p + r->len, p, n);
    r->len += n;
    *newlen = (int64_t)r->len;
    eng__journalf(c, "sbb", "APPEND", key, klen, p, n);
    eng__changed(c, key, klen, ENG_EV_STRING, "append");
    return 0;
}

int eng_setrange(struct eng_ctx *c, const char *key, size_t klen, int64_t off, const char *p, size_t n,
                 int64_t max_len, int64_t *newlen)
{
    int err;
    struct eng_key *k = eng__lookup_type(c, key, klen, ENG_T_STRING, 0, &err);
    if (err)
        return err;
    struct eng_val v = {0};
    if (k)
        view(k, &v);
    if (n == 0) { /* nothing to write: report the length, create nothing */
        *newlen = (int64_t)v.n;
        return 0;
    }
    /* Written so that it cannot overflow: off comes from the client and may
     * be anything up to INT64_MAX (off + n wrapped negative, and SETRANGE k
     * 9223372036854775807 x then tried to allocate 2^63 bytes). */
    if (off > max_len || (int64_t)n > max_len - off)
        return ERR_TOOBIG;
    k = get_or_create_raw(c, key, klen, &err);
    size_t end = (size_t)off + n;
    struct eng_raw *r = make_raw(k, end > v.n ? end : v.n);
    if (r->len < (size_t)off)
        memset(r->p + r->len, 0, (size_t)off - r->len);
    memcpy(r->p + off, p, n);
    if (end > r->len)
        r->len = end;
    *newlen = (int64_t)r->len;
    eng__journalf(c, "sbib", "SETRANGE", key, klen, off, p, n);
    eng__changed(c, key, klen, ENG_EV_STRING, "setrange");
    return 0;
}

int eng_strlen(struct eng_ctx *c, const char *key, size_t klen, int64_t *len)
{
    int err;
    struct eng_key *k = eng__lookup_type(c, key, klen, ENG_T_STRING, 1, &err);
    if (err)
        return err;
    struct eng_val v = {0};
    if (k)
        view(k, &v);
    *len = (int64_t)v.n;
    return 0;
}

int eng_getdel(struct eng_ctx *c, const char *key, size_t klen, struct buf *out)
{
    int err;
    struct eng_key *k = eng__lookup_type(c, key, klen, ENG_T_STRING, 1, &err);
    if (!k)
        return err ? err : ERR_NOKEY;
    struct eng_val v;
    view(k, &v);
    buf_append(out, v.p, v.n);
    eng__journalf(c, "sb", "DEL", key, klen);
    eng__changed(c, key, klen, ENG_EV_GENERIC, "del");
    eng__delete(c, k);
    return 0;
}
