/* cmd_list.c: list commands (non-blocking).  Argument parsing, the order in
 * which Redis reports errors, and replies; the work is engine/t_list.c's. */
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/num.h"
#include "list.h"
#include "server_int.h"

#define K(i) k->argv[i].p, k->argv[i].n

/* ---- reply writers handed to the engine ---------------------------------- */

static void w_array(void *ud, int64_t n) { resp_w_array(((struct call *)ud)->out, n); }
static void w_bulk(void *ud, const char *p, size_t n) { resp_w_bulk(((struct call *)ud)->out, p, n); }

/* For the handlers where Redis looks the key up before parsing an argument:
 * 1 when key i holds a list, 0 when missing, -1 after a WRONGTYPE reply. */
static int probe_list(struct call *k, int i)
{
    int t = eng_type(&k->ec, K(i));
    if (t < 0)
        return 0;
    if (t != ENG_T_LIST) {
        reply_errcode(k, ERR_WRONGTYPE);
        return -1;
    }
    return 1;
}

/* LEFT|RIGHT: 0 and *where, or -1 after a syntax error reply. */
static int arg_where(struct call *k, int i, int *where)
{
    if (arg_is(k, i, "LEFT"))
        *where = ENG_LIST_HEAD;
    else if (arg_is(k, i, "RIGHT"))
        *where = ENG_LIST_TAIL;
    else {
        reply_syntax(k);
        return -1;
    }
    return 0;
}

/* Redis's getPositiveLongFromObjectOrReply: msg replaces both the "not an
 * integer" and the "negative" errors when given. */
static int arg_nonneg(struct call *k, int i, const char *msg, int64_t *out)
{
    int64_t v;
    if (num_parse_i64(K(i), &v) < 0) {
        if (msg)
            reply_error(k, "ERR %s", msg);
        else
            reply_errcode(k, ERR_NOTINT);
        return -1;
    }
    if (v < 0) {
        reply_error(k, "ERR %s", msg ? msg : "value is out of range, must be positive");
        return -1;
    }
    *out = v;
    return 0;
}

/* ---- push and pop ---------------------------------------------------------- */

static void push_generic(struct call *k, int where, int xx)
{
    int64_t len;
    int rc = eng_list_push(&k->ec, K(1), where, xx, k->argv + 2, k->argc - 2, &len);
    if (rc < 0)
        reply_errcode(k, rc);
    else
        resp_w_int(k->out, len);
}

void cmd_lpush(struct call *k) { push_generic(k, ENG_LIST_HEAD, 0); }
void cmd_rpush(struct call *k) { push_generic(k, ENG_LIST_TAIL, 0); }
void cmd_lpushx(struct call *k) { push_generic(k, ENG_LIST_HEAD, 1); }
void cmd_rpushx(struct call *k) { push_generic(k, ENG_LIST_TAIL, 1); }

static void pop_generic(struct call *k, int where)
{
    if (k->argc > 3) {
        reply_error(k, "ERR wrong number of arguments for '%s' command", k->cmd->name);
        return;
    }
    int64_t count = 1;
    int has_count = k->argc == 3;
    if (has_count && arg_nonneg(k, 2, "value is out of range, must be positive", &count) < 0)
        return;
    int rc;
    if (count == 0) { /* Redis answers an empty array, once the key checks out */
        int64_t len;
        rc = eng_list_len(&k->ec, K(1), &len);
        if (rc == 0 && len == 0)
            rc = ERR_NOKEY;
        else if (rc == 0)
            resp_w_array(k->out, 0);
    } else {
        rc = eng_list_pop(&k->ec, K(1), where, count, has_count ? w_array : NULL, w_bulk, k);
    }
    if (rc == ERR_NOKEY && has_count)
        resp_w_null_array(k->out, k->proto);
    else if (rc == ERR_NOKEY)
        resp_w_null(k->out, k->proto);
    else if (rc < 0)
        reply_errcode(k, rc);
}

void cmd_lpop(struct call *k) { pop_generic(k, ENG_LIST_HEAD); }
void cmd_rpop(struct call *k) { pop_generic(k, ENG_LIST_TAIL); }

/* numkeys at argv[1], then the keys. */
int cmd_lmpop_keys(int argc, const struct eng_str *argv, int *pos, int max)
{
    int64_t n;
    if (num_parse_i64(argv[1].p, argv[1].n, &n) < 0 || n < 1 || n > argc - 3 || n > max)
        return -1; /* the handler reports it, or locks a long key list itself */
    for (int i = 0; i < n; i++)
        pos[i] = 2 + i;
    return (int)n;
}

/* The dispatcher locks what getkeys could list; a longer key list than it
 * takes is locked here. */
static void lock_all_keys(struct call *k, const struct eng_str *keys, int n)
{
    for (int i = 0; i < n; i++) {
        if (!eng_holds(&k->ec, keys[i].p, keys[i].n)) {
            if (k->ec.nlocked)
                eng_unlock(&k->ec);
            eng_lock_keys(&k->ec, keys, n);
            return;
        }
    }
}

struct mpop_reply {
    struct call *k;
    const struct eng_str *keys;
    int which;
};

static void w_mpop_head(void *ud, int64_t n)
{
    struct mpop_reply *m = ud;
    resp_w_array(m->k->out, 2);
    resp_w_bulk(m->k->out, m->keys[m->which].p, m->keys[m->which].n);
    resp_w_array(m->k->out, n);
}

static void w_mpop_elem(void *ud, const char *p, size_t n) { resp_w_bulk(((struct mpop_reply *)ud)->k->out, p, n); }

void cmd_lmpop(struct call *k)
{
    int64_t numkeys, count = -1;
    if (num_parse_i64(K(1), &numkeys) < 0 || numkeys < 1) {
        reply_error(k, "ERR numkeys should be greater than 0");
        return;
    }
    int where;
    if (numkeys > k->argc - 3) {
        reply_syntax(k);
        return;
    }
    int wi = 2 + (int)numkeys;
    if (arg_where(k, wi, &where) < 0)
        return;
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
    if (count == -1)
        count = 1;
    lock_all_keys(k, k->argv + 2, (int)numkeys);
    struct mpop_reply m = {k, k->argv + 2, 0};
    int rc = eng_list_mpop(&k->ec, k->argv + 2, (int)numkeys, where, count, w_mpop_head, w_mpop_elem, &m, &m.which);
    if (rc == ERR_NOKEY)
        resp_w_null_array(k->out, k->proto);
    else if (rc < 0)
        reply_errcode(k, rc);
}

static void move_generic(struct call *k, int from, int to)
{
    int rc = eng_lmove(&k->ec, K(1), K(2), from, to, NULL, w_bulk, k);
    if (rc == ERR_NOKEY)
        resp_w_null(k->out, k->proto);
    else if (rc < 0)
        reply_errcode(k, rc);
}

void cmd_lmove(struct call *k)
{
    int from, to;
    if (arg_where(k, 3, &from) < 0 || arg_where(k, 4, &to) < 0)
        return;
    move_generic(k, from, to);
}

void cmd_rpoplpush(struct call *k) { move_generic(k, ENG_LIST_TAIL, ENG_LIST_HEAD); }

/* ---- reading --------------------------------------------------------------- */

void cmd_llen(struct call *k)
{
    int64_t len;
    int rc = eng_list_len(&k->ec, K(1), &len);
    if (rc < 0)
        reply_errcode(k, rc);
    else
        resp_w_int(k->out, len);
}

void cmd_lrange(struct call *k)
{
    int64_t start, stop;
    if (arg_i64(k, 2, &start) < 0 || arg_i64(k, 3, &stop) < 0)
        return;
    int rc = eng_list_range(&k->ec, K(1), start, stop, w_array, w_bulk, k);
    if (rc == ERR_NOKEY)
        resp_w_array(k->out, 0);
    else if (rc < 0)
        reply_errcode(k, rc);
}

void cmd_lindex(struct call *k)
{
    int64_t index;
    if (num_parse_i64(K(2), &index) < 0) {
        /* Redis looks the key up first: a missing key answers nil. */
        int p = probe_list(k, 1);
        if (p == 0)
            resp_w_null(k->out, k->proto);
        else if (p > 0)
            reply_errcode(k, ERR_NOTINT);
        return;
    }
    struct eng_str v;
    int rc = eng_list_index(&k->ec, K(1), index, &v);
    if (rc == 0)
        resp_w_bulk(k->out, v.p, v.n);
    else if (rc == ERR_NOKEY || rc == ERR_RANGE)
        resp_w_null(k->out, k->proto);
    else
        reply_errcode(k, rc);
}

struct pos_reply {
    struct buf out;
    int64_t n;
};

static void collect_pos(void *ud, int64_t index)
{
    struct pos_reply *r = ud;
    resp_w_int(&r->out, index);
    r->n++;
}

void cmd_lpos(struct call *k)
{
    int64_t rank = 1, count = -1, maxlen = 0;
    for (int i = 3; i < k->argc; i++) {
        int more = i + 1 < k->argc;
        if (more && arg_is(k, i, "RANK")) {
            if (arg_i64(k, ++i, &rank) < 0)
                return;
            if (rank == 0) {
                reply_error(k, "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... "
                               "or use negative to start from the end of the list");
                return;
            }
            if (rank == INT64_MIN) /* Redis 7.0 negates it in place: it stays the first match from the tail */
                rank = -1;
        } else if (more && arg_is(k, i, "COUNT")) {
            if (arg_nonneg(k, ++i, "COUNT can't be negative", &count) < 0)
                return;
        } else if (more && arg_is(k, i, "MAXLEN")) {
            if (arg_nonneg(k, ++i, "MAXLEN can't be negative", &maxlen) < 0)
                return;
        } else {
            reply_syntax(k);
            return;
        }
    }
    int p = probe_list(k, 1);
    if (p < 0)
        return;
    if (p == 0) {
        if (count != -1)
            resp_w_array(k->out, 0);
        else
            resp_w_null(k->out, k->proto);
        return;
    }
    struct pos_reply r = {BUF_INIT, 0};
    int rc = eng_list_pos(&k->ec, K(1), K(2), rank, count == -1 ? 1 : count, maxlen, collect_pos, &r);
    if (rc < 0) {
        reply_errcode(k, rc);
    } else if (count != -1) {
        resp_w_array(k->out, r.n);
        buf_append(k->out, r.out.p, r.out.len);
    } else if (r.n) {
        buf_append(k->out, r.out.p, r.out.len);
    } else {
        resp_w_null(k->out, k->proto);
    }
    buf_release(&r.out);
}

/* ---- writing in place ------------------------------------------------------ */

void cmd_lset(struct call *k)
{
    int64_t index;
    if (num_parse_i64(K(2), &index) < 0) {
        int p = probe_list(k, 1);
        if (p == 0)
            reply_nokey(k);
        else if (p > 0)
            reply_errcode(k, ERR_NOTINT);
        return;
    }
    int rc = eng_list_set(&k->ec, K(1), index, K(3));
    if (rc == 0)
        reply_ok(k);
    else if (rc == ERR_RANGE)
        reply_error(k, "ERR index out of range");
    else
        reply_errcode(k, rc);
}

void cmd_linsert(struct call *k)
{
    int after;
    if (arg_is(k, 2, "AFTER"))
        after = 1;
    else if (arg_is(k, 2, "BEFORE"))
        after = 0;
    else {
        reply_syntax(k);
        return;
    }
    int64_t len;
    int rc = eng_list_insert(&k->ec, K(1), after, K(3), K(4), &len);
    if (rc < 0)
        reply_errcode(k, rc);
    else
        resp_w_int(k->out, len);
}

void cmd_lrem(struct call *k)
{
    int64_t count, removed;
    if (arg_i64(k, 2, &count) < 0)
        return;
    int rc = eng_list_rem(&k->ec, K(1), count, K(3), &removed);
    if (rc < 0)
        reply_errcode(k, rc);
    else
        resp_w_int(k->out, removed);
}

void cmd_ltrim(struct call *k)
{
    int64_t start, stop;
    if (arg_i64(k, 2, &start) < 0 || arg_i64(k, 3, &stop) < 0)
        return;
    int rc = eng_list_trim(&k->ec, K(1), start, stop);
    if (rc < 0)
        reply_errcode(k, rc);
    else
        reply_ok(k);
}
