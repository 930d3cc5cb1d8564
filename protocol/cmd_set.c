/* cmd_set.c: set commands.  Argument parsing and replies only: the work is
 * engine/t_set.c's (engine/set.h).  Replies follow Redis 7.0 in RESP2 and
 * RESP3: SMEMBERS, SINTER, SUNION, SDIFF and SPOP with a count are sets in
 * RESP3, SRANDMEMBER with a count an array. */
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/num.h"
#include "server_int.h"
#include "set.h"

#define K(i) k->argv[i].p, k->argv[i].n

struct out {
    struct call *k;
    int as_set; /* RESP3 set header, else array */
};

static void out_head(void *ud, int64_t n)
{
    struct out *o = ud;
    if (o->as_set)
        resp_w_set(o->k->out, o->k->proto, n);
    else
        resp_w_array(o->k->out, n);
}

static void out_member(void *ud, const char *p, size_t n) { resp_w_bulk(((struct out *)ud)->k->out, p, n); }

static void reply_count_rc(struct call *k, int rc, int64_t n)
{
    if (rc < 0)
        reply_errcode(k, rc);
    else
        resp_w_int(k->out, n);
}

void cmd_sadd(struct call *k)
{
    int64_t n = 0;
    int rc = eng_sadd(&k->ec, K(1), &k->argv[2], k->argc - 2, &n);
    reply_count_rc(k, rc, n);
}

void cmd_srem(struct call *k)
{
    int64_t n = 0;
    int rc = eng_srem(&k->ec, K(1), &k->argv[2], k->argc - 2, &n);
    reply_count_rc(k, rc, n);
}

void cmd_sismember(struct call *k)
{
    int rc = eng_sismember(&k->ec, K(1), K(2));
    reply_count_rc(k, rc, rc);
}

void cmd_smismember(struct call *k)
{
    int n = k->argc - 2;
    int stack[64], *in = n > 64 ? xmalloc(sizeof *in * (size_t)n) : stack;
    int rc = eng_smismember(&k->ec, K(1), &k->argv[2], n, in);
    if (rc < 0) {
        reply_errcode(k, rc);
    } else {
        resp_w_array(k->out, n);
        for (int i = 0; i < n; i++)
            resp_w_int(k->out, in[i]);
    }
    if (in != stack)
        xfree(in);
}

void cmd_scard(struct call *k)
{
    int64_t n = 0;
    int rc = eng_scard(&k->ec, K(1), &n);
    reply_count_rc(k, rc, n);
}

void cmd_smembers(struct call *k)
{
    struct out o = {k, 1};
    int rc = eng_smembers(&k->ec, K(1), out_head, out_member, &o);
    if (rc < 0)
        reply_errcode(k, rc);
}

/* The single-member forms of SPOP and SRANDMEMBER: a bulk or a null. */
struct one {
    struct call *k;
    int got;
};

static void one_head(void *ud, int64_t n)
{
    struct one *o = ud;
    if (n == 0)
        resp_w_null(o->k->out, o->k->proto);
}

static void one_member(void *ud, const char *p, size_t n) { resp_w_bulk(((struct one *)ud)->k->out, p, n); }

void cmd_spop(struct call *k)
{
    if (k->argc > 3) {
        reply_syntax(k);
        return;
    }
    int rc;
    if (k->argc == 2) {
        struct one o = {k, 0};
        rc = eng_spop(&k->ec, K(1), 1, one_head, one_member, &o);
    } else {
        int64_t count;
        if (num_parse_i64(K(2), &count) < 0 || count < 0) {
            reply_error(k, "ERR value is out of range, must be positive");
            return;
        }
        struct out o = {k, 1};
        rc = eng_spop(&k->ec, K(1), count, out_head, out_member, &o);
    }
    if (rc < 0)
        reply_errcode(k, rc);
}

void cmd_srandmember(struct call *k)
{
    if (k->argc > 3) {
        reply_syntax(k);
        return;
    }
    int rc;
    if (k->argc == 2) {
        struct one o = {k, 0};
        rc = eng_srandmember(&k->ec, K(1), 1, one_head, one_member, &o);
    } else {
        int64_t count;
        if (arg_i64(k, 2, &count) < 0)
            return;
        if (count == INT64_MIN) {
            reply_error(k, "ERR value is out of range, value must between -9223372036854775807 and "
                           "9223372036854775807");
            return;
        }
        struct out o = {k, 0};
        rc = eng_srandmember(&k->ec, K(1), count, out_head, out_member, &o);
    }
    if (rc < 0)
        reply_errcode(k, rc);
}

void cmd_smove(struct call *k)
{
    int rc = eng_smove(&k->ec, K(1), K(2), K(3));
    reply_count_rc(k, rc, rc);
}

static void setop_generic(struct call *k, enum eng_setop op, int store)
{
    int first = store ? 2 : 1;
    int64_t card = 0;
    struct out o = {k, 1};
    int rc = eng_setop(&k->ec, op, &k->argv[first], k->argc - first, store ? k->argv[1].p : NULL,
                       store ? k->argv[1].n : 0, out_head, out_member, &o, &card);
    if (rc < 0)
        reply_errcode(k, rc);
    else if (store)
        resp_w_int(k->out, card);
}

void cmd_sinter(struct call *k) { setop_generic(k, ENG_SETOP_INTER, 0); }
void cmd_sunion(struct call *k) { setop_generic(k, ENG_SETOP_UNION, 0); }
void cmd_sdiff(struct call *k) { setop_generic(k, ENG_SETOP_DIFF, 0); }
void cmd_sinterstore(struct call *k) { setop_generic(k, ENG_SETOP_INTER, 1); }
void cmd_sunionstore(struct call *k) { setop_generic(k, ENG_SETOP_UNION, 1); }
void cmd_sdiffstore(struct call *k) { setop_generic(k, ENG_SETOP_DIFF, 1); }

/* SINTERCARD numkeys key [key ...] [LIMIT limit]: numkeys, or -1 when it is
 * not a count of keys that the arguments hold. */
static int64_t intercard_numkeys(int argc, const struct eng_str *argv)
{
    int64_t n;
    if (num_parse_i64(argv[1].p, argv[1].n, &n) < 0 || n < 1 || n > argc - 2)
        return -1;
    return n;
}

int cmd_sintercard_keys(int argc, const struct eng_str *argv, int *pos, int max)
{
    int64_t n = intercard_numkeys(argc, argv);
    if (n < 0 || n > max)
        return -1; /* the handler reports it */
    for (int i = 0; i < n; i++)
        pos[i] = 2 + i;
    return (int)n;
}

void cmd_sintercard(struct call *k)
{
    int64_t numkeys, limit = 0;
    if (num_parse_i64(K(1), &numkeys) < 0 || numkeys < 1) {
        reply_error(k, "ERR numkeys should be greater than 0");
        return;
    }
    if (numkeys > k->argc - 2) {
        reply_error(k, "ERR Number of keys can't be greater than number of args");
        return;
    }
    for (int i = 2 + (int)numkeys; i < k->argc; i++) {
        if (arg_is(k, i, "LIMIT") && i + 1 < k->argc) {
            i++;
            if (num_parse_i64(K(i), &limit) < 0 || limit < 0) {
                reply_error(k, "ERR LIMIT can't be negative");
                return;
            }
        } else {
            reply_syntax(k);
            return;
        }
    }
    int64_t card = 0;
    int rc = eng_sintercard(&k->ec, &k->argv[2], (int)numkeys, limit, &card);
    reply_count_rc(k, rc, card);
}

void cmd_sscan(struct call *k)
{
    uint64_t cursor;
    const char *pat;
    size_t plen;
    int64_t count;
    if (arg_scan_container(k, eng_scard, &cursor, &pat, &plen, &count) <= 0)
        return;
    struct bulklist s = BULKLIST_INIT;
    uint64_t next;
    eng_sscan(&k->ec, K(1), cursor, pat, plen, count, bulklist_add, &s, &next);
    reply_scan(k, next, &s);
}
