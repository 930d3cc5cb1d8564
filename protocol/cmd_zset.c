/* cmd_zset.c: sorted set commands (non-blocking).  Argument parsing with
 * Redis's rules for scores ("(1.5", "-inf"), lex bounds ("[a", "(a", "-",
 * "+") and the order in which Redis reports errors; replies in RESP2 and
 * RESP3 (scores as doubles, WITHSCORES as [member, score] pairs in RESP3).
 * The work is engine/t_zset.c's. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/num.h"
#include "server_int.h"
#include "zset.h"

#define K(i) k->argv[i].p, k->argv[i].n

/* ---- argument parsing ------------------------------------------------------ */

/* A NUL-terminated copy of argv[i] in tmp (or on the heap when longer). */
static char *arg_cstr(const struct call *k, int i, char *tmp, size_t cap)
{
    size_t n = k->argv[i].n;
    char *s = n < cap ? tmp : xmalloc(n + 1);
    memcpy(s, k->argv[i].p, n);
    s[n] = '\0';
    return s;
}

/* Redis's getDoubleFromObject: strtod over the whole argument, no leading
 * space, no NaN, no overflow.  0 or -1. */
static int parse_double(const struct call *k, int i, double *out)
{
    char tmp[128];
    size_t n = k->argv[i].n;
    if (n == 0 || isspace((unsigned char)k->argv[i].p[0]))
        return -1;
    char *s = arg_cstr(k, i, tmp, sizeof tmp), *end;
    errno = 0;
    double v = strtod(s, &end);
    int ok = (size_t)(end - s) == n && !isnan(v) &&
             !(errno == ERANGE && (v == HUGE_VAL || v == -HUGE_VAL || fpclassify(v) == FP_ZERO));
    if (s != tmp)
        xfree(s);
    if (!ok)
        return -1;
    *out = v;
    return 0;
}

/* A score bound as Redis's zslParseRange reads it: "(" for exclusive, then
 * strtod up to the end of the C string. */
static int parse_score_bound(const struct call *k, int i, double *v, int *ex)
{
    char tmp[128];
    char *s = arg_cstr(k, i, tmp, sizeof tmp), *p = s, *end;
    *ex = 0;
    if (*p == '(')
        p++, *ex = 1;
    double d = strtod(p, &end);
    int ok = *end == '\0' && !isnan(d);
    if (s != tmp)
        xfree(s);
    if (!ok)
        return -1;
    *v = d;
    return 0;
}

static int parse_lex_bound(const struct call *k, int i, struct eng_zlex *b)
{
    const char *p = k->argv[i].p;
    size_t n = k->argv[i].n;
    if (n == 0)
        return -1;
    switch (p[0]) {
    case '+':
    case '-':
        if (n != 1)
            return -1;
        *b = (struct eng_zlex){NULL, 0, p[0] == '+' ? ENG_ZLEX_MAX : ENG_ZLEX_MIN};
        return 0;
    case '(':
    case '[':
        *b = (struct eng_zlex){p + 1, n - 1, p[0] == '(' ? ENG_ZLEX_EXCL : ENG_ZLEX_INCL};
        return 0;
    default:
        return -1;
    }
}

/* Parses min and max of a score or lex range into r; replies on error. */
static int parse_range(struct call *k, int by, int imin, int imax, struct eng_zrange *r)
{
    if (by == ENG_ZBY_SCORE) {
        if (parse_score_bound(k, imin, &r->min, &r->minex) < 0 || parse_score_bound(k, imax, &r->max, &r->maxex) < 0) {
            reply_error(k, "ERR min or max is not a float");
            return -1;
        }
    } else if (parse_lex_bound(k, imin, &r->lmin) < 0 || parse_lex_bound(k, imax, &r->lmax) < 0) {
        reply_error(k, "ERR min or max not valid string range item");
        return -1;
    }
    return 0;
}

/* Redis's getPositiveLongFromObjectOrReply: msg is the error for both a
 * non-integer and a negative value. */
static int arg_nonneg(struct call *k, int i, const char *msg, int64_t *out)
{
    int64_t v;
    if (num_parse_i64(K(i), &v) < 0 || v < 0) {
        reply_error(k, "ERR %s", msg);
        return -1;
    }
    *out = v;
    return 0;
}

/* Key i's type: 1 sorted set, 0 missing, -1 after a WRONGTYPE reply. */
static int probe_zset(struct call *k, int i)
{
    int t = eng_type(&k->ec, K(i));
    if (t < 0)
        return 0;
    if (t != ENG_T_ZSET) {
        reply_errcode(k, ERR_WRONGTYPE);
        return -1;
    }
    return 1;
}

/* The dispatcher locks the keys a getkeys function listed; a key list
 * longer than it takes is locked here (one extra key, dst, may be given). */
static void lock_all_keys(struct call *k, const struct eng_str *extra, const struct eng_str *keys, int n)
{
    int all = !extra || eng_holds(&k->ec, extra->p, extra->n);
    for (int i = 0; all && i < n; i++)
        all = eng_holds(&k->ec, keys[i].p, keys[i].n);
    if (all)
        return;
    struct eng_str *v = xmalloc(sizeof *v * (size_t)(n + 1));
    memcpy(v, keys, sizeof *v * (size_t)n);
    if (extra)
        v[n++] = *extra;
    if (k->ec.nlocked)
        eng_unlock(&k->ec);
    eng_lock_keys(&k->ec, v, n);
    xfree(v);
}

/* ---- reply writers handed to the engine ---------------------------------- */

struct zreply {
    struct call *k;
    int withscores;
    int pairs;                  /* each member as a [member, score] array */
    const struct eng_str *keys; /* ZMPOP: keys[which] goes before the members */
    int which;
};

static void w_head(void *ud, int64_t n)
{
    struct zreply *z = ud;
    if (z->keys) {
        resp_w_array(z->k->out, 2);
        resp_w_bulk(z->k->out, z->keys[z->which].p, z->keys[z->which].n);
    }
    resp_w_array(z->k->out, z->withscores && !z->pairs ? 2 * n : n);
}

static void w_elem(void *ud, const char *m, size_t n, double score)
{
    struct zreply *z = ud;
    if (z->pairs)
        resp_w_array(z->k->out, 2);
    resp_w_bulk(z->k->out, m, n);
    if (z->withscores)
        resp_w_double(z->k->out, z->k->proto, score);
}

static struct zreply zreply_for(struct call *k, int withscores)
{
    return (struct zreply){k, withscores, withscores && k->proto == 3, NULL, 0};
}

/* ---- ZADD, ZINCRBY, ZREM ----------------------------------------------------- */

static void zadd_generic(struct call *k, unsigned flags)
{
    int ch = 0, si = 2;
    for (; si < k->argc; si++) {
        if (arg_is(k, si, "NX"))
            flags |= ENG_ZADD_NX;
        else if (arg_is(k, si, "XX"))
            flags |= ENG_ZADD_XX;
        else if (arg_is(k, si, "CH"))
            ch = 1;
        else if (arg_is(k, si, "INCR"))
            flags |= ENG_ZADD_INCR;
        else if (arg_is(k, si, "GT"))
            flags |= ENG_ZADD_GT;
        else if (arg_is(k, si, "LT"))
            flags |= ENG_ZADD_LT;
        else
            break;
    }
    int n = k->argc - si;
    if (n % 2 || !n) {
        reply_syntax(k);
        return;
    }
    n /= 2;
    int nx = flags & ENG_ZADD_NX, gt = flags & ENG_ZADD_GT, lt = flags & ENG_ZADD_LT;
    if (nx && (flags & ENG_ZADD_XX)) {
        reply_error(k, "ERR XX and NX options at the same time are not compatible");
        return;
    }
    if ((gt && nx) || (lt && nx) || (gt && lt)) {
        reply_error(k, "ERR GT, LT, and/or NX options at the same time are not compatible");
        return;
    }
    if ((flags & ENG_ZADD_INCR) && n > 1) {
        reply_error(k, "ERR INCR option supports a single increment-element pair");
        return;
    }
    double *scores = xmalloc(sizeof *scores * (size_t)n);
    struct eng_str *members = xmalloc(sizeof *members * (size_t)n);
    for (int j = 0; j < n; j++) {
        if (parse_double(k, si + 2 * j, &scores[j]) < 0) {
            reply_errcode(k, ERR_NOTFLOAT);
            goto out;
        }
        members[j] = k->argv[si + 2 * j + 1];
    }
    struct eng_zadd_out r;
    int rc = eng_zadd(&k->ec, K(1), flags, scores, members, n, &r);
    if (rc == ERR_NAN)
        reply_error(k, "ERR resulting score is not a number (NaN)");
    else if (rc < 0)
        reply_errcode(k, rc);
    else if (!(flags & ENG_ZADD_INCR))
        resp_w_int(k->out, ch ? r.added + r.updated : r.added);
    else if (r.processed)
        resp_w_double(k->out, k->proto, r.score);
    else
        resp_w_null(k->out, k->proto);
out:
    xfree(scores);
    xfree(members);
}

void cmd_zadd(struct call *k) { zadd_generic(k, 0); }
void cmd_zincrby(struct call *k) { zadd_generic(k, ENG_ZADD_INCR); }

void cmd_zrem(struct call *k)
{
    int64_t removed;
    int rc = eng_zrem(&k->ec, K(1), k->argv + 2, k->argc - 2, &removed);
    if (rc < 0)
        reply_errcode(k, rc);
    else
        resp_w_int(k->out, removed);
}

/* ---- single reads -------------------------------------------------------- */

void cmd_zcard(struct call *k)
{
    int64_t n;
    int rc = eng_zcard(&k->ec, K(1), &n);
    if (rc < 0)
        reply_errcode(k, rc);
    else
        resp_w_int(k->out, n);
}

void cmd_zscore(struct call *k)
{
    double s;
    int rc = eng_zscore(&k->ec, K(1), K(2), &s);
    if (rc == 0)
        resp_w_double(k->out, k->proto, s);
    else if (rc == ERR_NOKEY)
        resp_w_null(k->out, k->proto);
    else
        reply_errcode(k, rc);
}

void cmd_zmscore(struct call *k)
{
    int n = k->argc - 2;
    double *scores = xmalloc(sizeof *scores * (size_t)n);
    int *found = xmalloc(sizeof *found * (size_t)n);
    int rc = eng_zmscore(&k->ec, K(1), k->argv + 2, n, scores, found);
    if (rc < 0) {
        reply_errcode(k, rc);
    } else {
        resp_w_array(k->out, n);
        for (int i = 0; i < n; i++) {
            if (found[i])
                resp_w_double(k->out, k->proto, scores[i]);
            else
                resp_w_null(k->out, k->proto);
        }
    }
    xfree(scores);
    xfree(found);
}

static void zrank_generic(struct call *k, int rev)
{
    int64_t rank;
    int rc = eng_zrank(&k->ec, K(1), K(2), rev, &rank, NULL);
    if (rc == 0)
        resp_w_int(k->out, rank);
    else if (rc == ERR_NOKEY)
        resp_w_null(k->out, k->proto);
    else
        reply_errcode(k, rc);
}

void cmd_zrank(struct call *k) { zrank_generic(k, 0); }
void cmd_zrevrank(struct call *k) { zrank_generic(k, 1); }

static void zcount_generic(struct call *k, int by)
{
    struct eng_zrange r = {.by = by, .limit = -1};
    if (parse_range(k, by, 2, 3, &r) < 0)
        return;
    int64_t n;
    int rc = eng_zcount(&k->ec, K(1), &r, &n);
    if (rc < 0)
        reply_errcode(k, rc);
    else
        resp_w_int(k->out, n);
}

void cmd_zcount(struct call *k) { zcount_generic(k, ENG_ZBY_SCORE); }
void cmd_zlexcount(struct call *k) { zcount_generic(k, ENG_ZBY_LEX); }

/* ---- ranges ------------------------------------------------------------------ */

enum { AUTO = -1 };

/* Redis's zrangeGenericCommand.  ki: the key (the source for STORE, whose
 * destination is argv[ki - 1]); by/rev: preset by the legacy commands, or
 * AUTO when the options choose (ZRANGE, ZRANGESTORE). */
static void zrange_generic(struct call *k, int ki, int store, int by, int rev)
{
    int imin = ki + 1, imax = ki + 2, withscores = 0;
    int64_t offset = 0, limit = -1;
    for (int j = ki + 3; j < k->argc; j++) {
        int left = k->argc - j - 1;
        if (!store && arg_is(k, j, "WITHSCORES")) {
            withscores = 1;
        } else if (arg_is(k, j, "LIMIT") && left >= 2) {
            if (arg_i64(k, j + 1, &offset) < 0 || arg_i64(k, j + 2, &limit) < 0)
                return;
            j += 2;
        } else if (rev == AUTO && arg_is(k, j, "REV")) {
            rev = 1;
        } else if (by == AUTO && arg_is(k, j, "BYLEX")) {
            by = ENG_ZBY_LEX;
        } else if (by == AUTO && arg_is(k, j, "BYSCORE")) {
            by = ENG_ZBY_SCORE;
        } else {
            reply_syntax(k);
            return;
        }
    }
    if (rev == AUTO)
        rev = 0;
    if (by == AUTO)
        by = ENG_ZBY_RANK;
    if (limit != -1 && by == ENG_ZBY_RANK) {
        reply_error(k, "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX");
        return;
    }
    if (withscores && by == ENG_ZBY_LEX) {
        reply_error(k, "ERR syntax error, WITHSCORES not supported in combination with BYLEX");
        return;
    }
    if (rev && by != ENG_ZBY_RANK) { /* the range comes as max, min */
        int t = imin;
        imin = imax, imax = t;
    }
    struct eng_zrange r = {.by = by, .rev = rev, .offset = offset, .limit = limit};
    if (by == ENG_ZBY_RANK) {
        if (arg_i64(k, imin, &r.start) < 0 || arg_i64(k, imax, &r.stop) < 0)
            return;
    } else if (parse_range(k, by, imin, imax, &r) < 0) {
        return;
    }
    int rc;
    if (store) {
        int64_t n;
        rc = eng_zrangestore(&k->ec, K(ki - 1), K(ki), &r, &n);
        if (rc == 0)
            resp_w_int(k->out, n);
    } else {
        struct zreply z = zreply_for(k, withscores);
        rc = eng_zrange(&k->ec, K(ki), &r, w_head, w_elem, &z);
        if (rc == ERR_NOKEY)
            resp_w_array(k->out, 0), rc = 0;
    }
    if (rc < 0)
        reply_errcode(k, rc);
}

void cmd_zrange(struct call *k) { zrange_generic(k, 1, 0, AUTO, AUTO); }
void cmd_zrangestore(struct call *k) { zrange_generic(k, 2, 1, AUTO, AUTO); }
void cmd_zrevrange(struct call *k) { zrange_generic(k, 1, 0, ENG_ZBY_RANK, 1); }
void cmd_zrangebyscore(struct call *k) { zrange_generic(k, 1, 0, ENG_ZBY_SCORE, 0); }
void cmd_zrevrangebyscore(struct call *k) { zrange_generic(k, 1, 0, ENG_ZBY_SCORE, 1); }
void cmd_zrangebylex(struct call *k) { zrange_generic(k, 1, 0, ENG_ZBY_LEX, 0); }
void cmd_zrevrangebylex(struct call *k) { zrange_generic(k, 1, 0, ENG_ZBY_LEX, 1); }

static void zremrange_generic(struct call *k, int by)
{
    struct eng_zrange r = {.by = by, .limit = -1};
    if (by == ENG_ZBY_RANK) {
        if (arg_i64(k, 2, &r.start) < 0 || arg_i64(k, 3, &r.stop) < 0)
            return;
    } else if (parse_range(k, by, 2, 3, &r) < 0) {
        return;
    }
    int64_t removed;
    int rc = eng_zremrange(&k->ec, K(1), &r, &removed);
    if (rc < 0)
        reply_errcode(k, rc);
    else
        resp_w_int(k->out, removed);
}

void cmd_zremrangebyscore(struct call *k) { zremrange_generic(k, ENG_ZBY_SCORE); }
void cmd_zremrangebyrank(struct call *k) { zremrange_generic(k, ENG_ZBY_RANK); }
void cmd_zremrangebylex(struct call *k) { zremrange_generic(k, ENG_ZBY_LEX); }

/* ---- pops -------------------------------------------------------------------- */

static void zpop_generic(struct call *k, int max)
{
    if (k->argc > 3) {
        reply_syntax(k);
        return;
    }
    int64_t count = -1;
    if (k->argc == 3 && arg_nonneg(k, 2, "value is out of range, must be positive", &count) < 0)
        return;
    /* A single pop is a flat [member, score] even in RESP3. */
    struct zreply z = {k, 1, k->proto == 3 && count != -1, NULL, 0};
    int rc;
    if (count == 0) {
        int64_t n;
        rc = eng_zcard(&k->ec, K(1), &n);
        if (rc == 0)
            resp_w_array(k->out, 0);
    } else {
        rc = eng_zpop(&k->ec, K(1), max, count == -1 ? 1 : count, w_head, w_elem, &z);
    }
    if (rc == ERR_NOKEY)
        resp_w_array(k->out, 0);
    else if (rc < 0)
        reply_errcode(k, rc);
}

void cmd_zpopmin(struct call *k) { zpop_generic(k, 0); }
void cmd_zpopmax(struct call *k) { zpop_generic(k, 1); }

/* numkeys at argv[1], then the keys (ZMPOP, ZUNION, ZINTER, ZDIFF,
 * ZINTERCARD). */
int cmd_znumkeys_keys(int argc, const struct eng_str *argv, int *pos, int max)
{
    int64_t n;
    if (num_parse_i64(argv[1].p, argv[1].n, &n) < 0 || n < 1 || n > argc - 2 || n > max)
        return -1; /* the handler reports it, or locks a long key list itself */
    for (int i = 0; i < n; i++)
        pos[i] = 2 + i;
    return (int)n;
}

int cmd_zmpop_keys(int argc, const struct eng_str *argv, int *pos, int max)
{
    return cmd_znumkeys_keys(argc - 1, argv, pos, max); /* MIN|MAX follows the keys */
}

/* destination, numkeys, then the keys (ZUNIONSTORE, ZINTERSTORE,
 * ZDIFFSTORE). */
int cmd_zstore_keys(int argc, const struct eng_str *argv, int *pos, int max)
{
    int64_t n;
    if (num_parse_i64(argv[2].p, argv[2].n, &n) < 0 || n < 1 || n > argc - 3 || n + 1 > max)
        return -1;
    pos[0] = 1;
    for (int i = 0; i < n; i++)
        pos[1 + i] = 3 + i;
    return (int)n + 1;
}

void cmd_zmpop(struct call *k)
{
    int64_t numkeys, count = -1;
    if (num_parse_i64(K(1), &numkeys) < 0 || numkeys < 1) {
        reply_error(k, "ERR numkeys should be greater than 0");
        return;
    }
    if (numkeys > k->argc - 3) {
        reply_syntax(k);
        return;
    }
    int wi = 2 + (int)numkeys, max;
    if (arg_is(k, wi, "MIN"))
        max = 0;
    else if (arg_is(k, wi, "MAX"))
        max = 1;
    else {
        reply_syntax(k);
        return;
    }
    for (int i = wi + 1; i < k->argc; i++) {
        if (count == -1 && arg_is(k, i, "COUNT") && i + 1 < k->argc) {
            i++;
            if (num_parse_i64(K(i), &count) < 0 || count < 1) {
                reply_error(k, "ERR count should be greater than 0");
                return;
            }
        } else {
            reply_syntax(k);
            return;
        }
    }
    const struct eng_str *keys = k->argv + 2;
    lock_all_keys(k, NULL, keys, (int)numkeys);
    /* Members as [member, score] pairs in both protocols; the key first
     * (eng_zset_mpop sets z.which before calling w_head). */
    struct zreply z = {k, 1, 1, keys, 0};
    int rc = eng_zset_mpop(&k->ec, keys, (int)numkeys, max, count == -1 ? 1 : count, w_head, w_elem, &z, &z.which);
    if (rc == ERR_NOKEY)
        resp_w_null_array(k->out, k->proto);
    else if (rc < 0)
        reply_errcode(k, rc);
}

/* ---- set operations ---------------------------------------------------------- */

/* Redis's zunionInterDiffGenericCommand.  dsti: the destination's index (0:
 * none); numi: numkeys' index; card_only: ZINTERCARD. */
static void zsetop_generic(struct call *k, int dsti, int numi, int op, int card_only)
{
    int64_t setnum;
    if (arg_i64(k, numi, &setnum) < 0)
        return;
    if (setnum < 1) {
        reply_error(k, "ERR at least 1 input key is needed for '%s' command", k->cmd->name);
        return;
    }
    if (setnum > k->argc - numi - 1) {
        reply_syntax(k);
        return;
    }
    int n = (int)setnum;
    const struct eng_str *keys = k->argv + numi + 1, *dst = dsti ? &k->argv[dsti] : NULL;
    lock_all_keys(k, dst, keys, n);
    /* Redis looks the keys up before reading the options. */
    for (int i = 0; i < n; i++) {
        int t = eng_type(&k->ec, keys[i].p, keys[i].n);
        if (t >= 0 && t != ENG_T_ZSET && t != ENG_T_SET) {
            reply_errcode(k, ERR_WRONGTYPE);
            return;
        }
    }
    double *weights = NULL;
    int agg = ENG_ZAGG_SUM, withscores = 0;
    int64_t limit = 0;
    for (int j = numi + 1 + n; j < k->argc;) {
        int left = k->argc - j;
        if (op != ENG_ZSETOP_DIFF && !card_only && left >= n + 1 && arg_is(k, j, "WEIGHTS")) {
            if (!weights)
                weights = xmalloc(sizeof *weights * (size_t)n);
            for (int i = 0; i < n; i++) {
                if (parse_double(k, j + 1 + i, &weights[i]) < 0) {
                    reply_error(k, "ERR weight value is not a float");
                    goto out;
                }
            }
            j += n + 1;
        } else if (op != ENG_ZSETOP_DIFF && !card_only && left >= 2 && arg_is(k, j, "AGGREGATE")) {
            if (arg_is(k, j + 1, "SUM"))
                agg = ENG_ZAGG_SUM;
            else if (arg_is(k, j + 1, "MIN"))
                agg = ENG_ZAGG_MIN;
            else if (arg_is(k, j + 1, "MAX"))
                agg = ENG_ZAGG_MAX;
            else {
                reply_syntax(k);
                goto out;
            }
            j += 2;
        } else if (!dst && !card_only && arg_is(k, j, "WITHSCORES")) {
            withscores = 1;
            j++;
        } else if (card_only && left >= 2 && arg_is(k, j, "LIMIT")) {
            if (arg_nonneg(k, j + 1, "LIMIT can't be negative", &limit) < 0)
                goto out;
            j += 2;
        } else {
            reply_syntax(k);
            goto out;
        }
    }
    int64_t card;
    int rc;
    if (card_only) {
        rc = eng_zintercard(&k->ec, keys, n, limit, &card);
    } else if (dst) {
        rc = eng_zsetop(&k->ec, op, keys, n, weights, agg, dst->p, dst->n, NULL, NULL, NULL, &card);
    } else {
        struct zreply z = zreply_for(k, withscores);
        rc = eng_zsetop(&k->ec, op, keys, n, weights, agg, NULL, 0, w_head, w_elem, &z, NULL);
    }
    if (rc < 0)
        reply_errcode(k, rc);
    else if (dst || card_only)
        resp_w_int(k->out, card);
out:
    xfree(weights);
}

void cmd_zunionstore(struct call *k) { zsetop_generic(k, 1, 2, ENG_ZSETOP_UNION, 0); }
void cmd_zinterstore(struct call *k) { zsetop_generic(k, 1, 2, ENG_ZSETOP_INTER, 0); }
void cmd_zdiffstore(struct call *k) { zsetop_generic(k, 1, 2, ENG_ZSETOP_DIFF, 0); }
void cmd_zunion(struct call *k) { zsetop_generic(k, 0, 1, ENG_ZSETOP_UNION, 0); }
void cmd_zinter(struct call *k) { zsetop_generic(k, 0, 1, ENG_ZSETOP_INTER, 0); }
void cmd_zdiff(struct call *k) { zsetop_generic(k, 0, 1, ENG_ZSETOP_DIFF, 0); }
void cmd_zintercard(struct call *k) { zsetop_generic(k, 0, 1, ENG_ZSETOP_INTER, 1); }

/* ---- ZSCAN, ZRANDMEMBER -------------------------------------------------------- */

struct scan_reply {
    struct buf out;
    int64_t n;
};

/* ZSCAN answers scores as bulk strings in both protocols, as Redis does. */
static void collect_scan(void *ud, const char *m, size_t n, double score)
{
    struct scan_reply *r = ud;
    char num[64];
    resp_w_bulk(&r->out, m, n);
    resp_w_bulk(&r->out, num, num_fmt_double(num, sizeof num, score));
    r->n += 2;
}

void cmd_zscan(struct call *k)
{
    uint64_t cursor;
    if (arg_scan_cursor(k, 2, &cursor) < 0)
        return;
    int p = probe_zset(k, 1);
    if (p < 0)
        return;
    if (p == 0) {
        reply_empty_scan(k);
        return;
    }
    const char *pat;
    size_t plen;
    int64_t count;
    if (arg_scan_opts(k, 3, &pat, &plen, &count, NULL) < 0)
        return;
    struct scan_reply r = {BUF_INIT, 0};
    uint64_t next;
    int rc = eng_zscan(&k->ec, K(1), cursor, pat, plen, count, collect_scan, &r, &next);
    if (rc < 0) {
        reply_errcode(k, rc);
    } else {
        resp_w_array(k->out, 2);
        resp_w_bulk_i64(k->out, (int64_t)next);
        resp_w_array(k->out, r.n);
        buf_append(k->out, r.out.p, r.out.len);
    }
    buf_release(&r.out);
}

static void w_member(void *ud, const char *m, size_t n, double score) { resp_w_bulk(((struct call *)ud)->out, m, n); }

void cmd_zrandmember(struct call *k)
{
    if (k->argc == 2) {
        int rc = eng_zrandmember(&k->ec, K(1), 1, NULL, w_member, k);
        if (rc == ERR_NOKEY)
            resp_w_null(k->out, k->proto);
        else if (rc < 0)
            reply_errcode(k, rc);
        return;
    }
    int64_t count;
    if (arg_i64(k, 2, &count) < 0)
        return;
    if (count == INT64_MIN) {
        reply_error(k, "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807");
        return;
    }
    if (k->argc > 4 || (k->argc == 4 && !arg_is(k, 3, "WITHSCORES"))) {
        reply_syntax(k);
        return;
    }
    int withscores = k->argc == 4;
    if (withscores && (count < -INT64_MAX / 2 || count > INT64_MAX / 2)) {
        reply_error(k, "ERR value is out of range");
        return;
    }
    struct zreply z = zreply_for(k, withscores);
    int rc = eng_zrandmember(&k->ec, K(1), count, w_head, w_elem, &z);
    if (rc == ERR_NOKEY)
        resp_w_array(k->out, 0);
    else if (rc < 0)
        reply_errcode(k, rc);
}
