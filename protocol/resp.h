/* resp.h: the RESP2/RESP3 reader and writer.  Bytes in, values out; bytes
 * out; no I/O, no engine, base only (STYLE.md section 7).
 *
 * Two readers:
 *  - the request reader (server hot path): turns the bytes clients send into
 *    argv views, for multibulk ("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n") and inline
 *    ("GET k\r\n") requests.  Zero copy: views point into the caller's buffer.
 *    Resumable at any byte: the reader keeps its place inside a half-received
 *    request, so a huge request is scanned once, however it is sliced.
 *  - the value reader (replica handshake, tools, tests): any RESP2/RESP3 value
 *    into a tree, with limits on sizes and depth.
 *
 * The writer appends replies to a struct buf.  Functions that take `proto`
 * write the RESP3 type when proto == 3 and Redis's RESP2 fallback otherwise
 * (map -> flat array, double -> bulk string, null -> $-1, bool -> :0/:1, ...). */
#ifndef PROTOCOL_RESP_H
#define PROTOCOL_RESP_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

/* ---- request reader ---------------------------------------------------- */

struct resp_limits {
    int64_t max_bulk;      /* proto-max-bulk-len: longest argument */
    int64_t max_multibulk; /* most arguments in one request */
    int64_t max_inline;    /* longest inline request line (Redis: 64 KiB) */
};

struct resp_arg {
    size_t off; /* offset of the argument's bytes from the request's start */
    size_t len;
};

struct resp_req_reader {
    struct resp_limits lim;
    /* private state, valid between calls while a request is half received */
    int state;
    int64_t argc;          /* arguments announced by the multibulk header */
    int64_t nargs;         /* arguments parsed so far */
    int64_t bulk_len;      /* length of the bulk being read, -1 if none */
    size_t pos;            /* scan position relative to the request's start */
    struct resp_arg *args; /* parsed arguments (owned) */
    size_t args_cap;
    char err[128];         /* message of the last protocol error */
    /* private, added after the first contract (backwards compatible) */
    size_t scan;           /* where the search for the current line's end resumes */
    char *scratch;         /* unquoted inline arguments (owned) */
    size_t scratch_cap;
    int in_scratch;        /* the last request's args are offsets into scratch */
};

void resp_req_reader_init(struct resp_req_reader *r, const struct resp_limits *lim);
void resp_req_reader_release(struct resp_req_reader *r);

/* Reads one request from buf[0..len), where buf starts at the first byte of a
 * request not yet returned.  The caller must present the same unconsumed bytes
 * (plus any new ones) at the next call; the buffer may move in memory.
 * Returns:
 *   1        a request is complete: *argc arguments at r->args (offsets into
 *            buf), *used bytes belong to it (consume them after executing);
 *            *argc may be 0 for an empty inline line, which the caller skips;
 *   ERR_AGAIN  need more bytes (nothing to consume);
 *   ERR_PROTO  malformed or over a limit; r->err holds Redis's wording
 *              without the "ERR Protocol error: " prefix, e.g.
 *              "invalid bulk length", "invalid multibulk length",
 *              "expected '$', got 'x'", "unbalanced quotes in request",
 *              "too big inline request", "too big mbulk count string". */
int resp_req_read(struct resp_req_reader *r, const char *buf, size_t len, int64_t *argc, size_t *used);

/* The bytes of argument i (0 <= i < *argc) of the request resp_req_read() just
 * returned, given the same buf; *len gets its length.  Use it rather than
 * buf + r->args[i].off: an inline request whose arguments needed unquoting
 * (SET k "a b", "\x00") has all its arguments in the reader's scratch, and
 * then r->args[i].off is an offset into that scratch.  Borrowed: valid until
 * the next resp_req_read() or resp_req_reader_release().
 * (Both readers also return ERR_NOMEM, but only when a test injects an
 * allocation failure with alloc_fail_after(); otherwise xmalloc aborts.) */
static inline const char *resp_req_arg(const struct resp_req_reader *r, const char *buf, int64_t i, size_t *len)
{
    *len = r->args[i].len;
    return (r->in_scratch ? r->scratch : buf) + r->args[i].off;
}

/* ---- value reader ------------------------------------------------------ */

enum resp_type {
    RESP_SIMPLE = '+', RESP_ERROR = '-', RESP_INT = ':', RESP_BULK = '$', RESP_ARRAY = '*',
    RESP_NULL = '_', RESP_DOUBLE = ',', RESP_BOOL = '#', RESP_BLOBERR = '!', RESP_VERBATIM = '=',
    RESP_BIGNUM = '(', RESP_MAP = '%', RESP_SET = '~', RESP_ATTR = '|', RESP_PUSH = '>'
};

struct resp_value {
    enum resp_type type;
    int is_null;                /* RESP2 $-1 / *-1 read as RESP_BULK/RESP_ARRAY with is_null */
    int64_t i;                  /* RESP_INT, RESP_BOOL */
    double d;                   /* RESP_DOUBLE */
    char *str;                  /* SIMPLE, ERROR, BULK, BLOBERR, VERBATIM, BIGNUM: NUL-terminated copy */
    size_t len;
    struct resp_value *elems;   /* ARRAY, SET, PUSH: n; MAP, ATTR: 2n (key, value, ...) */
    size_t n;
};

struct resp_value_limits {
    int64_t max_bulk, max_elems;
    int max_depth;
};

/* Parses one whole value from buf[0..len).  Returns 1 and fills *v (owned:
 * resp_value_free) with *used bytes consumed; ERR_AGAIN when incomplete
 * (stateless: call again with more bytes); ERR_PROTO when malformed or over a
 * limit.  lim may be NULL for defaults (512 MiB bulk, 1M elements, depth 64). */
int resp_value_read(const char *buf, size_t len, const struct resp_value_limits *lim, struct resp_value *v,
                    size_t *used);
void resp_value_free(struct resp_value *v);

/* ---- writer ------------------------------------------------------------ */

void resp_w_simple(struct buf *b, const char *s);               /* +s\r\n */
void resp_w_simplen(struct buf *b, const char *s, size_t n);
void resp_w_error(struct buf *b, const char *s);                /* -s\r\n; CR/LF in s become spaces */
void resp_w_errorf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void resp_w_int(struct buf *b, int64_t v);                      /* :v\r\n */
void resp_w_bulk(struct buf *b, const void *p, size_t n);       /* $n\r\n...\r\n */
void resp_w_bulkstr(struct buf *b, const char *s);
void resp_w_bulk_i64(struct buf *b, int64_t v);                 /* integer as a bulk string */
void resp_w_null(struct buf *b, int proto);                     /* _ or $-1 */
void resp_w_null_array(struct buf *b, int proto);               /* _ or *-1 */
void resp_w_array(struct buf *b, int64_t n);                    /* *n */
void resp_w_map(struct buf *b, int proto, int64_t pairs);       /* %n or *2n */
void resp_w_set(struct buf *b, int proto, int64_t n);           /* ~n or *n */
void resp_w_push(struct buf *b, int proto, int64_t n);          /* >n or *n */
void resp_w_double(struct buf *b, int proto, double d);         /* ,d or bulk "d" (Redis's formatting) */
void resp_w_bool(struct buf *b, int proto, int v);              /* #t/#f or :1/:0 */
void resp_w_verbatim(struct buf *b, int proto, const char *fmt3, const void *p, size_t n); /* =n\r\ntxt:... or bulk */
void resp_w_bignum(struct buf *b, int proto, const char *digits); /* (digits or bulk */

#endif
