/* resp_reader.c: the two RESP readers of resp.h.
 *
 * The request reader is the server's hot path: it turns the bytes a client
 * sent into argument views, as Redis 7's processMultibulkBuffer() and
 * processInlineBuffer() do, error wording included.  It never copies a
 * multibulk argument and keeps its place inside a half-received request
 * (which line it is in, how far the search for that line's end got, how many
 * arguments are done), so a request is scanned once however thinly it is
 * sliced.  Two deliberate differences from Redis: a NUL byte is an ordinary
 * byte (Redis's strchr() stops at it and waits for 64 KiB), and an inline line
 * over max_inline is refused even when its '\n' arrived in the same read.
 *
 * The value reader parses any RESP2/RESP3 reply into a tree for the replica
 * handshake, tools and tests; it is stateless and not fast.  An attribute
 * ("|") read at the top is returned as a RESP_ATTR value of its own (the value
 * it annotates is the next read); inside an aggregate it is skipped.
 * Neither reader does I/O or knows about commands. */
#include "resp.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"

/* Redis's PROTO_INLINE_MAX_SIZE: a "*N" or "$N" line still without its CR
 * after this many bytes is an error.  Fixed in Redis too, unlike max_inline. */
#define RESP_MAX_COUNT_LINE (64 * 1024)
/* Argument slots kept between requests; a bigger array (a huge MSET) is
 * shrunk back at the next request, as Redis frees its argv after each one. */
#define RESP_ARGS_KEEP 1024

/* Where the request reader is.  pos is always the start of the next thing to
 * read, relative to the request's first byte:
 *
 *   "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n"
 *    ^MB_COUNT                      ^BULK_LEN (nargs 2)
 *                ^BULK_DATA (bulk_len 3)
 */
enum req_state { RQ_START, RQ_INLINE, RQ_MB_COUNT, RQ_BULK_LEN, RQ_BULK_DATA };

void resp_req_reader_init(struct resp_req_reader *r, const struct resp_limits *lim)
{
    memset(r, 0, sizeof *r);
    r->lim = *lim;
    r->state = RQ_START;
    r->bulk_len = -1;
}

void resp_req_reader_release(struct resp_req_reader *r)
{
    xfree(r->args);
    xfree(r->scratch);
    r->args = NULL, r->scratch = NULL;
    r->args_cap = r->scratch_cap = 0;
}

/* Forget the request in progress, keep the arrays. */
static void req_reset(struct resp_req_reader *r)
{
    r->state = RQ_START;
    r->argc = r->nargs = 0;
    r->bulk_len = -1;
    r->pos = r->scan = 0;
}

static int req_fail(struct resp_req_reader *r, const char *msg)
{
    snprintf(r->err, sizeof r->err, "%s", msg);
    return ERR_PROTO;
}

/* Redis's string2ll(): optional '-', no '+', no spaces, no leading zeros
 * ("0" alone is fine, "-0" is not), at most 20 characters, fits in int64. */
static int parse_ll(const char *s, size_t n, int64_t *out)
{
    if (n == 0 || n > 20)
        return -1;
    if (n == 1 && s[0] == '0') {
        *out = 0;
        return 0;
    }
    int neg = s[0] == '-';
    size_t i = (size_t)neg;
    if (i == n || s[i] < '1' || s[i] > '9')
        return -1;
    uint64_t v = 0;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        uint64_t d = (uint64_t)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    if (v > (uint64_t)INT64_MAX + (uint64_t)neg)
        return -1;
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 0;
}

/* Room for n argument slots.  Grows to what is asked, no further: the count a
 * client announces is only trusted as far as its arguments really arrive. */
static int args_reserve(struct resp_req_reader *r, size_t n)
{
    if (n <= r->args_cap)
        return 0;
    struct resp_arg *a = xrealloc(r->args, n * sizeof *a);
    if (!a)
        return ERR_NOMEM;
    r->args = a;
    r->args_cap = n;
    return 0;
}

/* One more slot, doubling, never beyond `most`. */
static int args_grow(struct resp_req_reader *r, size_t most)
{
    size_t n = r->args_cap ? r->args_cap * 2 : 16;
    return args_reserve(r, n < most ? n : most);
}

/* Finds the CR that ends the line starting at r->pos, resuming the search at
 * r->scan.  As in Redis the line ends at the first CR and the byte after it
 * is skipped unchecked, but it must have arrived.  Returns 1 with *cr set,
 * ERR_AGAIN, or ERR_PROTO (`too_big`) once 64 KiB came without a CR. */
static int req_line(struct resp_req_reader *r, const char *buf, size_t len, const char *too_big, size_t *cr)
{
    const char *p = memchr(buf + r->scan, '\r', len - r->scan);
    if (!p) {
        r->scan = len;
        return len - r->pos > RESP_MAX_COUNT_LINE ? req_fail(r, too_big) : ERR_AGAIN;
    }
    r->scan = (size_t)(p - buf);
    if (r->scan + 1 >= len)
        return ERR_AGAIN;
    *cr = r->scan;
    return 1;
}

/* "*N\r\n": N <= 0 is an empty request, as in Redis (any negative count). */
static int req_mb_count(struct resp_req_reader *r, const char *buf, size_t len)
{
    size_t cr;
    int64_t n;
    int rc = req_line(r, buf, len, "too big mbulk count string", &cr);
    if (rc != 1)
        return rc;
    if (parse_ll(buf + 1, cr - 1, &n) < 0 || n > r->lim.max_multibulk)
        return req_fail(r, "invalid multibulk length");
    if (n > 0) {
        size_t first = n < RESP_ARGS_KEEP ? (size_t)n : RESP_ARGS_KEEP;
        if (r->args_cap > RESP_ARGS_KEEP && (size_t)n <= RESP_ARGS_KEEP) {
            struct resp_arg *a = xrealloc(r->args, RESP_ARGS_KEEP * sizeof *a);
            if (!a)
                return ERR_NOMEM;
            r->args = a, r->args_cap = RESP_ARGS_KEEP;
        }
        if (args_reserve(r, first) < 0)
            return ERR_NOMEM;
    }
    r->pos = r->scan = cr + 2;
    r->argc = n > 0 ? n : 0;
    r->state = RQ_BULK_LEN;
    return 0;
}

/* "$N\r\n" before each argument. */
static int req_bulk_len(struct resp_req_reader *r, const char *buf, size_t len)
{
    size_t cr;
    int64_t n;
    int rc = req_line(r, buf, len, "too big bulk count string", &cr);
    if (rc != 1)
        return rc;
    if (buf[r->pos] != '$') {
        snprintf(r->err, sizeof r->err, "expected '$', got '%c'", buf[r->pos]);
        return ERR_PROTO;
    }
    if (parse_ll(buf + r->pos + 1, cr - r->pos - 1, &n) < 0 || n < 0 || n > r->lim.max_bulk)
        return req_fail(r, "invalid bulk length");
    r->bulk_len = n;
    r->pos = r->scan = cr + 2;
    r->state = RQ_BULK_DATA;
    return 0;
}

/* The loop of processMultibulkBuffer().  The two bytes after an argument are
 * skipped without looking, like Redis does: a client Redis accepts must work
 * here, and Redis has no error wording for a bad terminator. */
static int req_multibulk(struct resp_req_reader *r, const char *buf, size_t len)
{
    int rc;
    if (r->state == RQ_MB_COUNT && (rc = req_mb_count(r, buf, len)) < 0)
        return rc;
    while (r->nargs < r->argc) {
        if (r->state == RQ_BULK_LEN && (rc = req_bulk_len(r, buf, len)) < 0)
            return rc;
        if (len - r->pos < (uint64_t)r->bulk_len + 2)
            return ERR_AGAIN;
        if ((size_t)r->nargs == r->args_cap && args_grow(r, (size_t)r->argc) < 0)
            return ERR_NOMEM;
        r->args[r->nargs].off = r->pos;
        r->args[r->nargs].len = (size_t)r->bulk_len;
        r->nargs++;
        r->pos = r->scan = r->pos + (size_t)r->bulk_len + 2;
        r->bulk_len = -1;
        r->state = RQ_BULK_LEN;
    }
    return 1;
}

/* isspace() in the C locale: what sdssplitargs() skips between arguments. */
static int is_blank(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }
/* What ends an unquoted argument in sdssplitargs(): no '\v' or '\f'. */
static int is_sep(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }
static int is_hex(char c) { return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f'); }
static int hex_val(char c) { return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10; }

static int inline_push(struct resp_req_reader *r, size_t off, size_t len)
{
    if ((size_t)r->nargs == r->args_cap && args_grow(r, SIZE_MAX) < 0)
        return ERR_NOMEM;
    r->args[r->nargs].off = off;
    r->args[r->nargs].len = len;
    r->nargs++;
    return 0;
}

/* A line without quotes: arguments are plain runs of bytes, views into buf. */
static int inline_split(struct resp_req_reader *r, const char *line, size_t n)
{
    size_t i = 0;
    for (;;) {
        while (i < n && is_blank(line[i]))
            i++;
        if (i == n)
            return 0;
        size_t start = i;
        while (i < n && !is_sep(line[i]))
            i++;
        if (inline_push(r, start, i - start) < 0)
            return ERR_NOMEM;
    }
}

/* One quoted argument of sdssplitargs() from *pp, unescaped into out; returns
 * its length, or -1 on unbalanced quotes (a closing quote must be followed by
 * a blank or the end of the line).  A NUL byte is an ordinary byte here,
 * where Redis's C-string scan would stop at it. */
static long inline_token(const char **pp, const char *end, char *out)
{
    const char *p = *pp;
    long o = 0;
    int inq = 0, insq = 0;
    for (;;) {
        if ((inq || insq) && p == end)
            return -1;
        if (inq) {
            if (*p == '\\' && end - p >= 4 && p[1] == 'x' && is_hex(p[2]) && is_hex(p[3])) {
                out[o++] = (char)(hex_val(p[2]) * 16 + hex_val(p[3]));
                p += 3;
            } else if (*p == '\\' && p + 1 < end) {
                p++;
                out[o++] = *p == 'n' ? '\n' : *p == 'r' ? '\r' : *p == 't' ? '\t' : *p == 'b' ? '\b'
                         : *p == 'a' ? '\a' : *p;
            } else if (*p == '"') {
                if (p + 1 < end && !is_blank(p[1]))
                    return -1;
                *pp = p + 1;
                return o;
            } else {
                out[o++] = *p;
            }
        } else if (insq) {
            if (*p == '\\' && p + 1 < end && p[1] == '\'') {
                p++;
                out[o++] = '\'';
            } else if (*p == '\'') {
                if (p + 1 < end && !is_blank(p[1]))
                    return -1;
                *pp = p + 1;
                return o;
            } else {
                out[o++] = *p;
            }
        } else if (p == end || is_sep(*p)) {
            *pp = p == end ? p : p + 1;
            return o;
        } else if (*p == '"') {
            inq = 1;
        } else if (*p == '\'') {
            insq = 1;
        } else {
            out[o++] = *p;
        }
        p++;
    }
}

/* A line with quotes: sdssplitargs() proper, every argument copied into the
 * scratch (unescaping only shrinks, so n bytes are enough). */
static int inline_unquote(struct resp_req_reader *r, const char *line, size_t n)
{
    if (r->scratch_cap < n) {
        char *s = xrealloc(r->scratch, n);
        if (!s)
            return ERR_NOMEM;
        r->scratch = s, r->scratch_cap = n;
    }
    const char *p = line, *end = line + n;
    size_t o = 0;
    for (;;) {
        while (p < end && is_blank(*p))
            p++;
        if (p == end)
            return 0;
        long t = inline_token(&p, end, r->scratch + o);
        if (t < 0)
            return req_fail(r, "unbalanced quotes in request");
        if (inline_push(r, o, (size_t)t) < 0)
            return ERR_NOMEM;
        o += (size_t)t;
    }
}

/* processInlineBuffer(): a line up to '\n' (a '\r' before it is dropped). */
static int req_inline(struct resp_req_reader *r, const char *buf, size_t len)
{
    const char *nl = memchr(buf + r->scan, '\n', len - r->scan);
    if (!nl) {
        r->scan = len;
        if (len - (buf[len - 1] == '\r') > (uint64_t)r->lim.max_inline)
            return req_fail(r, "too big inline request");
        return ERR_AGAIN;
    }
    size_t end = (size_t)(nl - buf);
    r->scan = end;
    size_t n = end - (end > 0 && buf[end - 1] == '\r');
    if (n > (uint64_t)r->lim.max_inline)
        return req_fail(r, "too big inline request");
    int quoted = memchr(buf, '"', n) || memchr(buf, '\'', n);
    r->nargs = 0;
    int rc = quoted ? inline_unquote(r, buf, n) : inline_split(r, buf, n);
    if (rc < 0)
        return rc;
    r->in_scratch = quoted;
    r->pos = end + 1;
    return 1;
}

int resp_req_read(struct resp_req_reader *r, const char *buf, size_t len, int64_t *argc, size_t *used)
{
    int rc;
    assert(len >= r->pos && len >= r->scan);
    if (len == 0)
        return ERR_AGAIN;
    if (r->state == RQ_START) {
        r->in_scratch = 0;
        r->state = buf[0] == '*' ? RQ_MB_COUNT : RQ_INLINE;
    }
    rc = r->state == RQ_INLINE ? req_inline(r, buf, len) : req_multibulk(r, buf, len);
    if (rc == 1) {
        *argc = r->nargs;
        *used = r->pos;
        req_reset(r);
    } else if (rc == ERR_PROTO) {
        req_reset(r);
    }
    return rc;
}

/* ---- value reader ------------------------------------------------------ */

/* Two passes over the same bytes: the first (v == NULL) checks that a whole,
 * valid value is there and allocates nothing, so a peer announcing a million
 * elements costs nothing until they have arrived; the second builds the tree
 * and can then only fail for lack of memory.  Recursion is bounded by
 * max_depth. */
struct vreader {
    const char *buf;
    size_t len;
    struct resp_value_limits lim;
};

static const struct resp_value_limits value_defaults = {512LL * 1024 * 1024, 1024 * 1024, 64};

/* The line from s to its CRLF: 1 with *cr, ERR_AGAIN, or ERR_PROTO for a CR
 * not followed by LF or a line longer than max_bulk. */
static int v_line(const struct vreader *p, size_t s, size_t *cr)
{
    const char *c = memchr(p->buf + s, '\r', p->len - s);
    if (!c)
        return p->len - s > (uint64_t)p->lim.max_bulk ? ERR_PROTO : ERR_AGAIN;
    size_t i = (size_t)(c - p->buf);
    if (i + 1 >= p->len)
        return ERR_AGAIN;
    if (p->buf[i + 1] != '\n' || i - s > (uint64_t)p->lim.max_bulk)
        return ERR_PROTO;
    *cr = i;
    return 1;
}

static int v_str(struct resp_value *v, const char *s, size_t n)
{
    if (!v)
        return 0;
    if (!(v->str = xstrndup(s, n)))
        return ERR_NOMEM;
    v->len = n;
    return 0;
}

/* ",1.5", ",inf", ",-inf", ",nan", ",1e+20": digits, sign, dot and exponent
 * only, so strtod's hex floats, "infinity" and leading spaces are refused. */
static int v_double(const char *s, size_t n, double *out)
{
    char tmp[512];
    if (n == 0 || n >= sizeof tmp)
        return -1;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    const char *t = tmp + (tmp[0] == '-' || tmp[0] == '+');
    if (!strcmp(t, "inf") || !strcmp(t, "nan")) {
        *out = t[0] == 'i' ? INFINITY : NAN;
        *out = tmp[0] == '-' ? -*out : *out;
        return 0;
    }
    if (strspn(t, "0123456789.eE+-") != strlen(t) || !((*t >= '0' && *t <= '9') || *t == '.'))
        return -1;
    char *end;
    *out = strtod(tmp, &end);
    return *end ? -1 : 0;
}

/* A one-line value; s..cr is its text after the type byte. */
static int v_simple(char t, const char *s, size_t n, struct resp_value *v)
{
    int64_t i = 0;
    double d = 0;
    switch (t) {
    case '+':
    case '-':
        return v_str(v, s, n);
    case '(':
        if (n == (size_t)(s[0] == '-') || strspn(s + (s[0] == '-'), "0123456789") != n - (s[0] == '-'))
            return ERR_PROTO;
        return v_str(v, s, n);
    case ':':
        if (parse_ll(s, n, &i) < 0)
            return ERR_PROTO;
        break;
    case '#':
        if (n != 1 || (s[0] != 't' && s[0] != 'f'))
            return ERR_PROTO;
        i = s[0] == 't';
        break;
    case ',':
        if (v_double(s, n, &d) < 0)
            return ERR_PROTO;
        break;
    case '_':
        if (n != 0)
            return ERR_PROTO;
        break;
    }
    if (v)
        v->i = i, v->d = d;
    return 0;
}

/* "$N\r\n<N bytes>\r\n", and the same for '!' and '=' (the latter's payload
 * keeps its "txt:" prefix in str).  "$-1" is RESP2's null; "$?" (streamed) is
 * refused. */
static int v_blob(const struct vreader *p, char t, size_t s, size_t cr, size_t *pos, struct resp_value *v)
{
    int64_t n;
    if (parse_ll(p->buf + s, cr - s, &n) < 0 || n < (t == '$' ? -1 : 0) || n > p->lim.max_bulk)
        return ERR_PROTO;
    size_t at = cr + 2;
    if (n == -1) {
        if (v)
            v->is_null = 1;
        *pos = at;
        return 0;
    }
    if (p->len - at < (uint64_t)n + 2)
        return ERR_AGAIN;
    if (p->buf[at + n] != '\r' || p->buf[at + n + 1] != '\n')
        return ERR_PROTO;
    if (t == '=' && (n < 4 || p->buf[at + 3] != ':'))
        return ERR_PROTO;
    *pos = at + (size_t)n + 2;
    return v_str(v, p->buf + at, (size_t)n);
}

static int v_parse(const struct vreader *p, size_t *pos, int depth, struct resp_value *v);

/* "*N", "~N", ">N" (N elements), "%N", "|N" (N pairs).  "*-1" is RESP2's
 * null array; "*?" (streamed) is refused.  An attribute in front of an element
 * is skipped: it annotates the element and is not one of the N. */
static int v_aggregate(const struct vreader *p, char t, size_t s, size_t cr, size_t *pos, int depth,
                       struct resp_value *v)
{
    int64_t n;
    if (parse_ll(p->buf + s, cr - s, &n) < 0 || n < (t == '*' ? -1 : 0) || n > p->lim.max_elems)
        return ERR_PROTO;
    if (depth >= p->lim.max_depth)
        return ERR_PROTO;
    size_t at = cr + 2;
    if (n == -1) {
        if (v)
            v->is_null = 1;
        *pos = at;
        return 0;
    }
    size_t count = (size_t)n * (t == '%' || t == '|' ? 2 : 1);
    if (v && count && !(v->elems = xcalloc(count, sizeof *v->elems)))
        return ERR_NOMEM;
    if (v)
        v->n = (size_t)n;
    for (size_t i = 0; i < count; i++) {
        int rc;
        while (at < p->len && p->buf[at] == '|')
            if ((rc = v_parse(p, &at, depth + 1, NULL)) < 0)
                return rc;
        if ((rc = v_parse(p, &at, depth + 1, v ? &v->elems[i] : NULL)) < 0)
            return rc;
    }
    *pos = at;
    return 0;
}

static int v_parse(const struct vreader *p, size_t *pos, int depth, struct resp_value *v)
{
    size_t s = *pos + 1, cr;
    if (*pos >= p->len)
        return ERR_AGAIN;
    char t = p->buf[*pos];
    if (!strchr("+-:$*_,#!=(%~|>", t) || t == '\0')
        return ERR_PROTO;
    int rc = v_line(p, s, &cr);
    if (rc != 1)
        return rc;
    if (v) {
        memset(v, 0, sizeof *v);
        v->type = (enum resp_type)t;
    }
    switch (t) {
    case '$':
    case '!':
    case '=':
        return v_blob(p, t, s, cr, pos, v);
    case '*':
    case '~':
    case '>':
    case '%':
    case '|':
        return v_aggregate(p, t, s, cr, pos, depth, v);
    }
    if ((rc = v_simple(t, p->buf + s, cr - s, v)) < 0)
        return rc;
    *pos = cr + 2;
    return 0;
}

int resp_value_read(const char *buf, size_t len, const struct resp_value_limits *lim, struct resp_value *v,
                    size_t *used)
{
    struct vreader p = {buf, len, lim ? *lim : value_defaults};
    struct resp_value tmp = {0};
    size_t pos = 0;
    int rc = v_parse(&p, &pos, 0, NULL);
    if (rc < 0)
        return rc;
    pos = 0;
    if ((rc = v_parse(&p, &pos, 0, &tmp)) < 0) {
        resp_value_free(&tmp);
        return rc;
    }
    *v = tmp;
    *used = pos;
    return 1;
}

void resp_value_free(struct resp_value *v)
{
    size_t count = v->n * (v->type == RESP_MAP || v->type == RESP_ATTR ? 2 : 1);
    if (v->elems)
        for (size_t i = 0; i < count; i++)
            resp_value_free(&v->elems[i]);
    xfree(v->elems);
    xfree(v->str);
    v->elems = NULL, v->str = NULL;
    v->n = v->len = 0;
}
