/* reply.c: error replies and argument helpers shared by all handlers.  This is
 * the one place where engine and base error codes become Redis's words. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/num.h"
#include "server_int.h"

void reply_ok(struct call *k) { resp_w_simplen(k->out, "OK", 2); }

void reply_error(struct call *k, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    resp_w_error(k->out, msg);
    k->failed = 1;
}

void reply_errcode(struct call *k, int code)
{
    switch (code) {
    case ERR_WRONGTYPE:
        reply_error(k, "WRONGTYPE Operation against a key holding the wrong kind of value");
        break;
    case ERR_NOTINT:
        reply_error(k, "ERR value is not an integer or out of range");
        break;
    case ERR_NOTFLOAT:
        reply_error(k, "ERR value is not a valid float");
        break;
    case ERR_OVERFLOW:
        reply_error(k, "ERR increment or decrement would overflow");
        break;
    case ERR_NAN:
        reply_error(k, "ERR increment would produce NaN or Infinity");
        break;
    case ERR_NOKEY:
        reply_error(k, "ERR no such key");
        break;
    case ERR_TOOBIG:
        reply_error(k, "ERR string exceeds maximum allowed size (proto-max-bulk-len)");
        break;
    case ERR_SYNTAX:
        reply_syntax(k);
        break;
    case ERR_OOM:
        reply_error(k, "OOM command not allowed when used memory > 'maxmemory'.");
        break;
    default:
        reply_error(k, "ERR %s", err_msg(code));
    }
}

int arg_scan_container(struct call *k, int (*card)(struct eng_ctx *, const char *, size_t, int64_t *),
                       uint64_t *cursor, const char **pat, size_t *plen, int64_t *count)
{
    if (arg_scan_cursor(k, 2, cursor) < 0)
        return -1;
    /* The key is checked before the options, as Redis does. */
    int64_t n;
    int rc = card(&k->ec, k->argv[1].p, k->argv[1].n, &n);
    if (rc < 0) {
        reply_errcode(k, rc);
        return -1;
    }
    if (n == 0) {
        reply_empty_scan(k);
        return 0;
    }
    return arg_scan_opts(k, 3, pat, plen, count, NULL) < 0 ? -1 : 1;
}

void reply_help(struct call *k, const char *const *lines, size_t n)
{
    resp_w_array(k->out, (int64_t)n);
    for (size_t i = 0; i < n; i++)
        resp_w_simple(k->out, lines[i]);
}

void reply_syntax(struct call *k) { reply_error(k, "ERR syntax error"); }
void reply_nokey(struct call *k) { reply_error(k, "ERR no such key"); }

int arg_i64(struct call *k, int i, int64_t *out)
{
    if (num_parse_i64(k->argv[i].p, k->argv[i].n, out) < 0) {
        reply_errcode(k, ERR_NOTINT);
        return -1;
    }
    return 0;
}

int arg_i64_range(struct call *k, int i, int64_t lo, int64_t hi, const char *what, int64_t *out)
{
    int64_t v;
    if (arg_i64(k, i, &v) < 0)
        return -1;
    if (v < lo || v > hi) {
        if (what)
            reply_error(k, "ERR %s", what);
        else
            reply_errcode(k, ERR_NOTINT);
        return -1;
    }
    *out = v;
    return 0;
}

int arg_double(struct call *k, int i, long double *out)
{
    if (num_parse_double(k->argv[i].p, k->argv[i].n, out) < 0) {
        reply_errcode(k, ERR_NOTFLOAT);
        return -1;
    }
    return 0;
}

int arg_is(const struct call *k, int i, const char *word)
{
    size_t n = strlen(word);
    return i < k->argc && k->argv[i].n == n && strncasecmp(k->argv[i].p, word, n) == 0;
}

char *arg_strdup(const struct call *k, int i) { return xstrndup(k->argv[i].p, k->argv[i].n); }

void bulklist_add(void *ud, const char *p, size_t n)
{
    struct bulklist *l = ud;
    buf_append(&l->bytes, p, n);
    buf_append(&l->lens, &n, sizeof n);
    l->n++;
}

void reply_bulklist(struct call *k, struct bulklist *l)
{
    resp_w_array(k->out, l->n);
    const size_t *lens = (const size_t *)l->lens.p;
    size_t off = 0;
    for (int64_t i = 0; i < l->n; i++) {
        resp_w_bulk(k->out, l->bytes.p + off, lens[i]);
        off += lens[i];
    }
    buf_release(&l->bytes);
    buf_release(&l->lens);
}

void reply_scan(struct call *k, uint64_t next, struct bulklist *l)
{
    resp_w_array(k->out, 2);
    resp_w_bulk_i64(k->out, (int64_t)next);
    reply_bulklist(k, l);
}

/* The reply to a scan of a missing or empty key: cursor 0, no elements. */
void reply_empty_scan(struct call *k)
{
    resp_w_array(k->out, 2);
    resp_w_bulk(k->out, "0", 1);
    resp_w_array(k->out, 0);
}

/* A SCAN cursor as Redis reads it (strtoul: an optional sign, digits, no
 * space before; "" is 0 and "-1" wraps). */
int arg_scan_cursor(struct call *k, int i, uint64_t *out)
{
    const char *p = k->argv[i].p, *end = p + k->argv[i].n;
    int neg = 0;
    uint64_t v = 0;
    if (p < end && (*p == '+' || *p == '-')) {
        neg = *p++ == '-';
        if (p == end)
            goto bad;
    }
    for (; p < end; p++) {
        if (*p < '0' || *p > '9' || v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
            goto bad;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    *out = neg ? (uint64_t)0 - v : v;
    return 0;
bad:
    reply_error(k, "ERR invalid cursor");
    return -1;
}

/* SCAN-family options from argv[i] on: MATCH pattern, COUNT n (>= 1) and,
 * where type is not NULL (SCAN only), TYPE name (-1 when absent; an unknown
 * name matches nothing, as in Redis 7.0). */
int arg_scan_opts(struct call *k, int i, const char **pat, size_t *plen, int64_t *count, int *type)
{
    *pat = NULL, *plen = 0, *count = 10;
    if (type)
        *type = -1;
    for (; i < k->argc; i++) {
        int more = i + 1 < k->argc;
        if (more && arg_is(k, i, "MATCH")) {
            *pat = k->argv[i + 1].p, *plen = k->argv[i + 1].n;
            i++;
        } else if (more && arg_is(k, i, "COUNT")) {
            if (arg_i64(k, ++i, count) < 0)
                return -1;
            if (*count < 1) {
                reply_syntax(k);
                return -1;
            }
        } else if (more && type && arg_is(k, i, "TYPE")) {
            i++;
            *type = ENG_T__COUNT;
            for (int t = 0; t < ENG_T__COUNT; t++)
                if (arg_is(k, i, eng_type_name(t)))
                    *type = t;
        } else {
            reply_syntax(k);
            return -1;
        }
    }
    return 0;
}
