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
