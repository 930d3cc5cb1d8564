/* resp_writer.c: the reply writer of resp.h.
 *
 * Every reply goes through these functions so that the framing ("\r\n",
 * lengths, RESP2 fallbacks) lives in one place.  They are on the hot path of
 * every command, so none of them calls printf except resp_w_errorf(): a
 * header is formatted with num_fmt_i64() into a stack buffer and each reply
 * costs one buf_grow() and a few memcpy()s.  The writer does not decide what
 * to reply or which protocol a client speaks; callers pass `proto`. */
#include "resp.h"

#include <assert.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>

#include "base/num.h"

/* Longest header: type byte, "-9223372036854775808", CRLF, and the NUL that
 * num_fmt_i64() writes before we overwrite it. */
#define HDR_MAX 32

/* "<type><n>\r\n" into dst; returns its length. */
static size_t head(char *dst, char type, int64_t n)
{
    size_t k = 1 + num_fmt_i64(dst + 1, n);
    dst[0] = type;
    dst[k++] = '\r';
    dst[k++] = '\n';
    return k;
}

/* Room for n more bytes; returns where to write them.  w_done() commits them
 * and keeps buf.h's promise of a NUL after the last byte. */
static char *w_room(struct buf *b, size_t n)
{
    buf_grow(b, n);
    return b->p + b->len;
}

static void w_done(struct buf *b, size_t n)
{
    b->len += n;
    b->p[b->len] = '\0';
}

static void w_head(struct buf *b, char type, int64_t n)
{
    char *d = w_room(b, HDR_MAX);
    w_done(b, head(d, type, n));
}

/* "<type><s>\r\n" for a one-line reply whose text must not break the line. */
static void w_line(struct buf *b, char type, const char *s, size_t n)
{
    char *d = w_room(b, n + 3);
    d[0] = type;
    memcpy(d + 1, s, n);
    /* A CR or LF would end the reply early and let the rest of the text be
     * read as another reply (Redis does the same for errors). */
    for (size_t i = 1; i <= n; i++)
        if (d[i] == '\r' || d[i] == '\n')
            d[i] = ' ';
    d[n + 1] = '\r';
    d[n + 2] = '\n';
    w_done(b, n + 3);
}

void resp_w_simplen(struct buf *b, const char *s, size_t n) { w_line(b, '+', s, n); }

void resp_w_simple(struct buf *b, const char *s) { w_line(b, '+', s, strlen(s)); }

void resp_w_error(struct buf *b, const char *s) { w_line(b, '-', s, strlen(s)); }

void resp_w_errorf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    buf_putc(b, '-');
    size_t start = b->len;
    va_start(ap, fmt);
    buf_vprintf(b, fmt, ap);
    va_end(ap);
    for (size_t i = start; i < b->len; i++)
        if (b->p[i] == '\r' || b->p[i] == '\n')
            b->p[i] = ' ';
    buf_append(b, "\r\n", 2);
}

void resp_w_int(struct buf *b, int64_t v) { w_head(b, ':', v); }

void resp_w_bulk(struct buf *b, const void *p, size_t n)
{
    char *d = w_room(b, HDR_MAX + n + 2);
    size_t k = head(d, '$', (int64_t)n);
    memcpy(d + k, p, n);
    d[k + n] = '\r';
    d[k + n + 1] = '\n';
    w_done(b, k + n + 2);
}

void resp_w_bulkstr(struct buf *b, const char *s) { resp_w_bulk(b, s, strlen(s)); }

void resp_w_bulk_i64(struct buf *b, int64_t v)
{
    char digits[24];
    resp_w_bulk(b, digits, num_fmt_i64(digits, v));
}

void resp_w_null(struct buf *b, int proto)
{
    if (proto == 3)
        buf_append(b, "_\r\n", 3);
    else
        buf_append(b, "$-1\r\n", 5);
}

void resp_w_null_array(struct buf *b, int proto)
{
    if (proto == 3)
        buf_append(b, "_\r\n", 3);
    else
        buf_append(b, "*-1\r\n", 5);
}

void resp_w_array(struct buf *b, int64_t n) { w_head(b, '*', n); }

void resp_w_map(struct buf *b, int proto, int64_t pairs)
{
    if (proto == 3)
        w_head(b, '%', pairs);
    else
        w_head(b, '*', pairs * 2);
}

void resp_w_set(struct buf *b, int proto, int64_t n) { w_head(b, proto == 3 ? '~' : '*', n); }

void resp_w_push(struct buf *b, int proto, int64_t n) { w_head(b, proto == 3 ? '>' : '*', n); }

/* Redis 7's d2string(): "inf", "-inf", "nan", "-0", else the shortest text
 * that reads back to the same double. */
void resp_w_double(struct buf *b, int proto, double d)
{
    char txt[64];
    size_t n = 3;
    if (isnan(d))
        memcpy(txt, "nan", 4);
    else
        n = num_fmt_double(txt, sizeof txt, d);
    if (proto == 3)
        w_line(b, ',', txt, n);
    else
        resp_w_bulk(b, txt, n);
}

void resp_w_bool(struct buf *b, int proto, int v)
{
    if (proto == 3)
        buf_append(b, v ? "#t\r\n" : "#f\r\n", 4);
    else
        buf_append(b, v ? ":1\r\n" : ":0\r\n", 4);
}

/* RESP3 "=<n+4>\r\n<fmt3>:<text>\r\n"; RESP2 a bulk string of the text alone,
 * as Redis's addReplyVerbatim(). */
void resp_w_verbatim(struct buf *b, int proto, const char *fmt3, const void *p, size_t n)
{
    if (proto != 3) {
        resp_w_bulk(b, p, n);
        return;
    }
    assert(strlen(fmt3) == 3);
    char *d = w_room(b, HDR_MAX + 4 + n + 2);
    size_t k = head(d, '=', (int64_t)n + 4);
    memcpy(d + k, fmt3, 3);
    d[k + 3] = ':';
    memcpy(d + k + 4, p, n);
    d[k + 4 + n] = '\r';
    d[k + 4 + n + 1] = '\n';
    w_done(b, k + 4 + n + 2);
}

void resp_w_bignum(struct buf *b, int proto, const char *digits)
{
    if (proto == 3)
        w_line(b, '(', digits, strlen(digits));
    else
        resp_w_bulkstr(b, digits);
}
