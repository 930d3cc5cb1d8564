/* cmd_hash.c: hash commands.  Argument parsing and replies only: the work is
 * engine/t_hash.c's (engine/hash.h).  Replies follow Redis 7.0 in RESP2 and
 * RESP3 (HGETALL is a map in RESP3, HRANDFIELD WITHVALUES a list of pairs). */
#include <math.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/num.h"
#include "hash.h"
#include "server_int.h"

#define K(i) k->argv[i].p, k->argv[i].n

/* What the reply callbacks write of each pair. */
enum { OUT_FIELDS = 1, OUT_VALUES = 2, OUT_BOTH = 3, OUT_PAIRS = 4 /* RESP3 [field, value] arrays */ };

struct out {
    struct call *k;
    int what;
    int head; /* the header to write: 'a' array of elements, 'm' map of pairs */
};

static void out_head(void *ud, int64_t n)
{
    struct out *o = ud;
    if (o->head == 'm')
        resp_w_map(o->k->out, o->k->proto, n);
    else
        resp_w_array(o->k->out, o->what == OUT_BOTH ? 2 * n : n);
}

static void out_pair(void *ud, const char *f, size_t fl, const char *v, size_t vl)
{
    struct out *o = ud;
    if (o->what == OUT_PAIRS)
        resp_w_array(o->k->out, 2);
    if (o->what != OUT_VALUES)
        resp_w_bulk(o->k->out, f, fl);
    if (o->what != OUT_FIELDS)
        resp_w_bulk(o->k->out, v, vl);
}

static int check_pairs(struct call *k)
{
    if (k->argc % 2) {
        reply_error(k, "ERR wrong number of arguments for '%s' command", k->cmd->name);
        return -1;
    }
    return 0;
}

static void hset_generic(struct call *k, int reply_count)
{
    if (check_pairs(k) < 0)
        return;
    int64_t added;
    int rc = eng_hset(&k->ec, K(1), &k->argv[2], (k->argc - 2) / 2, &added);
    if (rc < 0)
        reply_errcode(k, rc);
    else if (reply_count)
        resp_w_int(k->out, added);
    else
        reply_ok(k);
}

void cmd_hset(struct call *k) { hset_generic(k, 1); }
void cmd_hmset(struct call *k) { hset_generic(k, 0); }

static void reply_int_rc(struct call *k, int rc)
{
    if (rc < 0)
        reply_errcode(k, rc);
    else
        resp_w_int(k->out, rc);
}

void cmd_hsetnx(struct call *k) { reply_int_rc(k, eng_hsetnx(&k->ec, K(1), K(2), K(3))); }
void cmd_hexists(struct call *k) { reply_int_rc(k, eng_hexists(&k->ec, K(1), K(2))); }

void cmd_hget(struct call *k)
{
    struct eng_str v;
    int rc = eng_hget(&k->ec, K(1), K(2), &v);
    if (rc == 0)
        resp_w_bulk(k->out, v.p, v.n);
    else if (rc == ERR_NOKEY)
        resp_w_null(k->out, k->proto);
    else
        reply_errcode(k, rc);
}

void cmd_hmget(struct call *k)
{
    int n = k->argc - 2;
    struct eng_str stack[32], *vals = n > 32 ? xmalloc(sizeof *vals * (size_t)n) : stack;
    int rc = eng_hmget(&k->ec, K(1), &k->argv[2], n, vals);
    if (rc < 0) {
        reply_errcode(k, rc);
    } else {
        resp_w_array(k->out, n);
        for (int i = 0; i < n; i++) {
            if (vals[i].p)
                resp_w_bulk(k->out, vals[i].p, vals[i].n);
            else
                resp_w_null(k->out, k->proto);
        }
    }
    if (vals != stack)
        xfree(vals);
}

static void reply_count_rc(struct call *k, int rc, int64_t n)
{
    if (rc < 0)
        reply_errcode(k, rc);
    else
        resp_w_int(k->out, n);
}

void cmd_hdel(struct call *k)
{
    int64_t n = 0;
    int rc = eng_hdel(&k->ec, K(1), &k->argv[2], k->argc - 2, &n);
    reply_count_rc(k, rc, n);
}

void cmd_hlen(struct call *k)
{
    int64_t n = 0;
    int rc = eng_hlen(&k->ec, K(1), &n);
    reply_count_rc(k, rc, n);
}

void cmd_hstrlen(struct call *k)
{
    int64_t n = 0;
    int rc = eng_hstrlen(&k->ec, K(1), K(2), &n);
    reply_count_rc(k, rc, n);
}

static void getall_generic(struct call *k, int what)
{
    struct out o = {k, what, what == OUT_BOTH ? 'm' : 'a'};
    int rc = eng_hgetall(&k->ec, K(1), out_head, out_pair, &o);
    if (rc < 0)
        reply_errcode(k, rc);
}

void cmd_hkeys(struct call *k) { getall_generic(k, OUT_FIELDS); }
void cmd_hvals(struct call *k) { getall_generic(k, OUT_VALUES); }
void cmd_hgetall(struct call *k) { getall_generic(k, OUT_BOTH); }

void cmd_hincrby(struct call *k)
{
    int64_t delta, v;
    if (arg_i64(k, 3, &delta) < 0)
        return;
    int rc = eng_hincrby(&k->ec, K(1), K(2), delta, &v);
    if (rc == ERR_NOTINT)
        reply_error(k, "ERR hash value is not an integer");
    else
        reply_count_rc(k, rc, v);
}

void cmd_hincrbyfloat(struct call *k)
{
    long double delta;
    if (arg_double(k, 3, &delta) < 0)
        return;
    if (isnan(delta) || isinf(delta)) {
        reply_error(k, "ERR value is NaN or Infinity");
        return;
    }
    char *out = xmalloc(ENG_LDOUBLE_CHARS);
    size_t n;
    int rc = eng_hincrbyfloat(&k->ec, K(1), K(2), delta, out, &n);
    if (rc == ERR_NOTFLOAT)
        reply_error(k, "ERR hash value is not a float");
    else if (rc < 0)
        reply_errcode(k, rc);
    else
        resp_w_bulk(k->out, out, n);
    xfree(out);
}

/* A count in -LONG_MAX..LONG_MAX, with Redis's words (HRANDFIELD,
 * SRANDMEMBER share them through their own copies). */
static int arg_count(struct call *k, int i, int64_t *out)
{
    if (arg_i64(k, i, out) < 0)
        return -1;
    if (*out == INT64_MIN) {
        reply_error(k, "ERR value is out of range, value must between -9223372036854775807 and "
                       "9223372036854775807");
        return -1;
    }
    return 0;
}

static void hrandfield_count(struct call *k)
{
    int withvalues = 0;
    int64_t count;
    if (arg_count(k, 2, &count) < 0)
        return;
    if (k->argc >= 4) {
        if (!arg_is(k, 3, "WITHVALUES") || k->argc > 4) {
            reply_syntax(k);
            return;
        }
        withvalues = 1;
    }
    /* Redis refuses counts whose reply length would overflow when doubled. */
    if (withvalues && (count > INT64_MAX / 2 || count < -(INT64_MAX / 2))) {
        reply_error(k, "ERR value is out of range");
        return;
    }
    struct out o = {k, OUT_FIELDS, 'a'};
    if (withvalues)
        o.what = k->proto > 2 ? OUT_PAIRS : OUT_BOTH;
    int rc = eng_hrandfield(&k->ec, K(1), count, out_head, out_pair, &o);
    if (rc < 0)
        reply_errcode(k, rc);
}

struct one {
    struct eng_str f;
    int got;
};

static void one_head(void *ud, int64_t n) {}

static void one_pair(void *ud, const char *f, size_t fl, const char *v, size_t vl)
{
    struct one *o = ud;
    o->f = (struct eng_str){f, fl};
    o->got = 1;
}

void cmd_hrandfield(struct call *k)
{
    if (k->argc >= 3) {
        hrandfield_count(k);
        return;
    }
    struct one o = {{NULL, 0}, 0};
    int rc = eng_hrandfield(&k->ec, K(1), 1, one_head, one_pair, &o);
    if (rc < 0)
        reply_errcode(k, rc);
    else if (o.got) /* a view into the hash: valid while the lock is held */
        resp_w_bulk(k->out, o.f.p, o.f.n);
    else
        resp_w_null(k->out, k->proto);
}

/* Pairs collected under the lock, replied after (the count comes first). */
static void scan_pair(void *ud, const char *f, size_t fl, const char *v, size_t vl)
{
    bulklist_add(ud, f, fl);
    bulklist_add(ud, v, vl);
}

void cmd_hscan(struct call *k)
{
    uint64_t cursor;
    const char *pat;
    size_t plen;
    int64_t count;
    if (arg_scan_container(k, eng_hlen, &cursor, &pat, &plen, &count) <= 0)
        return;
    struct bulklist s = BULKLIST_INIT;
    uint64_t next;
    eng_hscan(&k->ec, K(1), cursor, pat, plen, count, scan_pair, &s, &next);
    reply_scan(k, next, &s);
}
