/* cmd_string.c: string commands.  Argument parsing and replies only: the
 * work is engine/t_string.c's. */
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/num.h"
#include "server_int.h"

#define K(i) k->argv[i].p, k->argv[i].n

static void reply_val(struct call *k, int rc, const struct eng_val *v)
{
    if (rc == 0)
        resp_w_bulk(k->out, v->p, v->n);
    else if (rc == ERR_NOKEY)
        resp_w_null(k->out, k->proto);
    else
        reply_errcode(k, rc);
}

void cmd_get(struct call *k)
{
    struct eng_val v;
    reply_val(k, eng_get(&k->ec, K(1), &v), &v);
}

enum { UNIT_S, UNIT_MS };

/* Parses an EX/PX/EXAT/PXAT value into an absolute time in ms, as Redis's
 * getExpireMillisecondsOrReply: positive, no overflow. */
static int expire_arg(struct call *k, int i, int unit, int absolute, int64_t *when)
{
    int64_t v;
    if (arg_i64(k, i, &v) < 0)
        return -1;
    if (v <= 0 || (unit == UNIT_S && v > INT64_MAX / 1000)) {
        reply_error(k, "ERR invalid expire time in '%s' command", k->cmd->name);
        return -1;
    }
    if (unit == UNIT_S)
        v *= 1000;
    if (!absolute) {
        if (v > INT64_MAX - k->ec.now_ms) {
            reply_error(k, "ERR invalid expire time in '%s' command", k->cmd->name);
            return -1;
        }
        v += k->ec.now_ms;
    }
    *when = v;
    return 0;
}

/* SET and GETEX options.  Returns 0, or -1 after replying. */
struct set_opts {
    unsigned flags;
    int64_t when;
    int persist;
};

/* Redis's parseExtendedStringArgumentsOrReply: an option may repeat (the
 * last value wins) but may not meet one it excludes (NX/XX; one expiry kind). */
static int parse_set_opts(struct call *k, int start, int getex, struct set_opts *o)
{
    static const char *const kinds[] = {"KEEPTTL", "PERSIST", "EX", "PX", "EXAT", "PXAT"};
    int expire_kind = -1;
    o->flags = 0, o->when = 0, o->persist = 0;
    for (int i = start; i < k->argc; i++) {
        int more = i + 1 < k->argc, kind = -1;
        for (int j = 0; j < 6; j++)
            if (arg_is(k, i, kinds[j]))
                kind = j;
        if (!getex && arg_is(k, i, "NX") && !(o->flags & ENG_SET_XX))
            o->flags |= ENG_SET_NX;
        else if (!getex && arg_is(k, i, "XX") && !(o->flags & ENG_SET_NX))
            o->flags |= ENG_SET_XX;
        else if (!getex && arg_is(k, i, "GET"))
            o->flags |= ENG_SET_GET;
        else if (kind == 0 && !getex && (expire_kind < 0 || expire_kind == kind))
            o->flags |= ENG_SET_KEEPTTL, expire_kind = kind;
        else if (kind == 1 && getex && (expire_kind < 0 || expire_kind == kind))
            o->persist = 1, expire_kind = kind;
        else if (kind >= 2 && more && (expire_kind < 0 || expire_kind == kind)) {
            int unit = (kind == 2 || kind == 4) ? UNIT_S : UNIT_MS;
            int absolute = kind >= 4;
            expire_kind = kind;
            if (expire_arg(k, ++i, unit, absolute, &o->when) < 0)
                return -1;
        } else {
            reply_syntax(k);
            return -1;
        }
    }
    return 0;
}

void cmd_set(struct call *k)
{
    struct set_opts o;
    if (parse_set_opts(k, 3, 0, &o) < 0)
        return;
    struct buf old = BUF_INIT;
    int had_old = 0;
    int rc = eng_set(&k->ec, K(1), K(2), o.flags, o.when, &old, &had_old);
    if (rc < 0)
        reply_errcode(k, rc);
    else if (o.flags & ENG_SET_GET) {
        if (had_old)
            resp_w_bulk(k->out, old.p, old.len);
        else
            resp_w_null(k->out, k->proto);
    } else if (rc == 1)
        reply_ok(k);
    else
        resp_w_null(k->out, k->proto);
    buf_release(&old);
}

void cmd_setnx(struct call *k) { resp_w_int(k->out, eng_set(&k->ec, K(1), K(2), ENG_SET_NX, 0, NULL, NULL) == 1); }

static void setex_generic(struct call *k, int unit)
{
    int64_t when;
    if (expire_arg(k, 2, unit, 0, &when) < 0)
        return;
    eng_set(&k->ec, K(1), K(3), 0, when, NULL, NULL);
    reply_ok(k);
}

void cmd_setex(struct call *k) { setex_generic(k, UNIT_S); }
void cmd_psetex(struct call *k) { setex_generic(k, UNIT_MS); }

void cmd_getset(struct call *k)
{
    struct buf old = BUF_INIT;
    int had_old = 0;
    int rc = eng_set(&k->ec, K(1), K(2), ENG_SET_GET, 0, &old, &had_old);
    if (rc < 0)
        reply_errcode(k, rc);
    else if (had_old)
        resp_w_bulk(k->out, old.p, old.len);
    else
        resp_w_null(k->out, k->proto);
    buf_release(&old);
}

void cmd_getdel(struct call *k)
{
    struct buf v = BUF_INIT;
    int rc = eng_getdel(&k->ec, K(1), &v);
    struct eng_val view = {.p = v.p, .n = v.len};
    reply_val(k, rc, &view);
    buf_release(&v);
}

void cmd_getex(struct call *k)
{
    struct set_opts o;
    if (parse_set_opts(k, 2, 1, &o) < 0)
        return;
    struct eng_val v;
    int rc = eng_get(&k->ec, K(1), &v);
    reply_val(k, rc, &v); /* reply first: an expiry in the past deletes the key */
    if (rc != 0)
        return;
    if (o.when)
        eng_expire_at(&k->ec, K(1), o.when, 0);
    else if (o.persist)
        eng_persist(&k->ec, K(1));
}

void cmd_mget(struct call *k)
{
    resp_w_array(k->out, k->argc - 1);
    for (int i = 1; i < k->argc; i++) {
        struct eng_val v;
        if (eng_get(&k->ec, K(i), &v) == 0)
            resp_w_bulk(k->out, v.p, v.n);
        else
            resp_w_null(k->out, k->proto);
    }
}

static int check_pairs(struct call *k)
{
    if (k->argc % 2 == 0) {
        reply_error(k, "ERR wrong number of arguments for '%s' command", k->cmd->name);
        return -1;
    }
    return 0;
}

void cmd_mset(struct call *k)
{
    if (check_pairs(k) < 0)
        return;
    for (int i = 1; i < k->argc; i += 2)
        eng_set(&k->ec, K(i), K(i + 1), 0, 0, NULL, NULL);
    reply_ok(k);
}

void cmd_msetnx(struct call *k)
{
    if (check_pairs(k) < 0)
        return;
    for (int i = 1; i < k->argc; i += 2) {
        if (eng_exists(&k->ec, K(i))) {
            resp_w_int(k->out, 0);
            return;
        }
    }
    for (int i = 1; i < k->argc; i += 2)
        eng_set(&k->ec, K(i), K(i + 1), 0, 0, NULL, NULL);
    resp_w_int(k->out, 1);
}

static void incr_generic(struct call *k, int64_t delta)
{
    int64_t v;
    int rc = eng_incrby(&k->ec, K(1), delta, &v);
    if (rc < 0)
        reply_errcode(k, rc);
    else
        resp_w_int(k->out, v);
}

void cmd_incr(struct call *k) { incr_generic(k, 1); }
void cmd_decr(struct call *k) { incr_generic(k, -1); }

void cmd_incrby(struct call *k)
{
    int64_t d;
    if (arg_i64(k, 2, &d) == 0)
        incr_generic(k, d);
}

void cmd_decrby(struct call *k)
{
    int64_t d;
    if (arg_i64(k, 2, &d) < 0)
        return;
    if (d == INT64_MIN) {
        reply_error(k, "ERR decrement would overflow");
        return;
    }
    incr_generic(k, -d);
}

void cmd_incrbyfloat(struct call *k)
{
    long double d;
    if (arg_double(k, 2, &d) < 0)
        return;
    char out[ENG_LDBL_CHARS];
    size_t n;
    int rc = eng_incrbyfloat(&k->ec, K(1), d, out, &n);
    if (rc < 0)
        reply_errcode(k, rc);
    else
        resp_w_bulk(k->out, out, n);
}

void cmd_append(struct call *k)
{
    int64_t len;
    int rc = eng_append(&k->ec, K(1), K(2), k->srv->cfg->proto_max_bulk_len, &len);
    if (rc < 0)
        reply_errcode(k, rc);
    else
        resp_w_int(k->out, len);
}

void cmd_strlen(struct call *k)
{
    int64_t len;
    int rc = eng_strlen(&k->ec, K(1), &len);
    if (rc < 0)
        reply_errcode(k, rc);
    else
        resp_w_int(k->out, len);
}

void cmd_getrange(struct call *k)
{
    int64_t start, end;
    if (arg_i64(k, 2, &start) < 0 || arg_i64(k, 3, &end) < 0)
        return;
    struct eng_val v;
    int rc = eng_get(&k->ec, K(1), &v);
    if (rc == ERR_NOKEY) {
        resp_w_bulk(k->out, "", 0);
        return;
    }
    if (rc < 0) {
        reply_errcode(k, rc);
        return;
    }
    int64_t len = (int64_t)v.n;
    /* Redis's getrangeCommand: both negative and start > end is empty. */
    if (start < 0 && end < 0 && start > end) {
        resp_w_bulk(k->out, "", 0);
        return;
    }
    if (start < 0)
        start += len;
    if (end < 0)
        end += len;
    if (start < 0)
        start = 0;
    if (end < 0)
        end = 0;
    if (end >= len)
        end = len - 1;
    if (start > end || len == 0)
        resp_w_bulk(k->out, "", 0);
    else
        resp_w_bulk(k->out, v.p + start, (size_t)(end - start + 1));
}

void cmd_setrange(struct call *k)
{
    int64_t off, len;
    if (arg_i64(k, 2, &off) < 0)
        return;
    if (off < 0) {
        reply_error(k, "ERR offset is out of range");
        return;
    }
    int rc = eng_setrange(&k->ec, K(1), off, K(3), k->srv->cfg->proto_max_bulk_len, &len);
    if (rc < 0)
        reply_errcode(k, rc);
    else
        resp_w_int(k->out, len);
}
