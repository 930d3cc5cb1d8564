/* http.c: the HTTP/1.1 listener other modules add routes to (http.h).
 *
 * Bytes are parsed by Debian's http-parser, fed straight from the read
 * buffer: a request's URL, header names and values and body are copied into
 * the connection's buffers (which keep their capacity, so a keep-alive
 * connection allocates nothing per request), then the route's handler runs
 * synchronously and its answer is appended to the connection's output.
 * Several pipelined requests in one read are all answered before the output
 * is written, with uv_try_write first, uv_write only for what is left; and
 * the answers of every connection read in one loop turn are written
 * together once that turn's reads are done (a uv_check), as Redis writes in
 * beforeSleep, in one system call where io_uring allows (sendbatch.h), so
 * that a client waiting on many connections wakes once for many answers.
 *
 * Limits: header bytes past http-max-header get 431, a body past
 * http-max-body 413 (both close the connection, since the rest of the
 * request cannot be skipped safely), malformed input 400 and a close.  A
 * connection idle, or with a request unfinished, for http-idle-timeout
 * seconds is closed by a sweep that runs once a second.  Past
 * http-maxclients connections, a new one gets 503 and is closed.
 *
 * What it is not: no TLS (nginx terminates it), no HTTP/2, no chunked or
 * streamed answers. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <http_parser.h>
#include <uv.h>

#include "base/alloc.h"
#include "base/log.h"
#include "base/num.h"
#include "http.h"
#include "sendbatch.h"

/* ---- options ------------------------------------------------------------ */

static struct http_config hc_;

static const struct cfg_option http_options[] = {
    {.name = "http-port", .type = CFG_INT, .flags = CFG_IMMUTABLE, .storage = &hc_.port, .dflt = "8080", .min = 0,
     .max = 65535},
    {.name = "http-bind", .type = CFG_STRING, .flags = CFG_IMMUTABLE, .storage = &hc_.bind, .dflt = "127.0.0.1"},
    {.name = "http-max-body", .type = CFG_MEMORY, .storage = &hc_.max_body, .dflt = "1mb", .min = 1,
     .max = (int64_t)1 << 30},
    {.name = "http-max-header", .type = CFG_MEMORY, .storage = &hc_.max_header, .dflt = "16kb", .min = 256,
     .max = 1 << 20},
    {.name = "http-idle-timeout", .type = CFG_INT, .storage = &hc_.idle_timeout, .dflt = "60", .min = 1,
     .max = 86400},
    {.name = "http-maxclients", .type = CFG_INT, .storage = &hc_.max_conns, .dflt = "10000", .min = 1,
     .max = 1000000},
};

struct http_config *http_options_register(struct cfg *c)
{
    cfg_register(c, http_options, sizeof http_options / sizeof http_options[0]);
    return &hc_;
}

/* ---- structures ---------------------------------------------------------- */

struct route {
    char *method;  /* "*" = any */
    char *pattern; /* without the trailing '*' when prefix */
    size_t plen;
    int prefix;
    http_handler_fn *fn;
    void *ud;
};

struct http_conn;

struct http_response {
    struct http_conn *c;
    int replied;
    int keep_alive;
};

/* Where a request's pieces lie in the connection's text buffer: offsets,
 * since the buffer may move while the request grows. */
struct hdr_off {
    size_t name, value;
};

enum { HC_READING = 0, HC_CLOSING = 1 };

struct http_conn {
    uv_tcp_t tcp;
    struct http_server *srv;
    struct http_conn *prev, *next;
    http_parser parser;
    char peer[64];
    /* the request being read */
    struct buf text;          /* url\0 name\0 value\0 ... */
    struct hdr_off *hdrs;
    int nhdrs, hdrs_cap;
    int last_was_value;       /* http-parser gives names and values in pieces */
    size_t hdr_bytes;
    struct buf body;
    int in_request;
    int64_t req_start_ns;
    /* output */
    struct buf out;           /* answers not yet handed to the kernel */
    struct buf wbuf;          /* bytes of the uv_write in flight */
    uv_write_t wreq;
    int writing;
    int state;                /* HC_* */
    int close_after_write;
    int flush_queued;         /* on srv->flushq */
    struct http_conn *flush_next;
    uint64_t last_ms;         /* last read (uv_now) */
    struct http_response res;
    struct http_header *hv;   /* the header views handed to handlers */
    int hv_cap;
};

struct http_server {
    uv_loop_t *loop;
    struct http_config cfg;
    uv_tcp_t listeners[8];
    int nlisteners;
    uv_timer_t sweep;
    uv_check_t flush_check;   /* writes what this loop turn's reads answered */
    struct http_conn *flushq;
    struct sendbatch *batch;  /* made at the first turn with two answers */
    int nobatch;              /* io_uring is not to be had: one send each */
    struct route *routes;
    int nroutes;
    struct http_conn *conns;
    int nconns;
    int closing;
    int open_handles;         /* listeners, sweep, flush_check: http_server_free waits for 0 */
    char rbuf[65536];         /* shared read buffer: reads are handled at once */
    http_parser_settings settings;
};

static void conn_close(struct http_conn *c);
static void conn_flush(struct http_conn *c);
static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *b);
static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *b);

/* ---- answers ------------------------------------------------------------- */

static const char *status_text(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return status < 300 ? "OK" : status < 500 ? "Error" : "Server Error";
    }
}

/* Appends one whole answer to c's output. */
static void write_answer(struct http_conn *c, int status, const char *ctype, const void *body, size_t len,
                         const char *const *extra, int keep_alive)
{
    struct buf *o = &c->out;
    char num[24];
    /* no printf: this runs once per request */
    buf_grow(o, 128 + len);
    buf_puts(o, "HTTP/1.1 ");
    buf_append(o, num, num_fmt_i64(num, status));
    buf_putc(o, ' ');
    buf_puts(o, status_text(status));
    buf_puts(o, "\r\n");
    if (ctype) {
        buf_puts(o, "Content-Type: ");
        buf_puts(o, ctype);
        buf_puts(o, "\r\n");
    }
    for (int i = 0; extra && extra[i]; i++) {
        buf_puts(o, extra[i]);
        buf_puts(o, "\r\n");
    }
    buf_puts(o, "Content-Length: ");
    buf_append(o, num, num_fmt_i64(num, (int64_t)len));
    buf_puts(o, "\r\n");
    if (!keep_alive)
        buf_puts(o, "Connection: close\r\n");
    buf_puts(o, "\r\n");
    if (len)
        buf_append(o, body, len);
}

void http_reply(struct http_response *res, int status, const char *content_type, const void *body, size_t len,
                const char *const *extra_headers)
{
    if (res->replied)
        return; /* one answer per request: a second call is a bug, dropped */
    res->replied = 1;
    write_answer(res->c, status, content_type, body, len, extra_headers, res->keep_alive);
}

void http_reply_json(struct http_response *res, int status, const char *json, size_t len)
{
    http_reply(res, status, "application/json", json, len, NULL);
}

/* An answer of the listener itself (errors), then the connection closes. */
static void reply_and_close(struct http_conn *c, int status, const char *text)
{
    if (c->state == HC_CLOSING)
        return;
    write_answer(c, status, "text/plain", text, strlen(text), NULL, 0);
    c->close_after_write = 1;
    c->state = HC_CLOSING;
    uv_read_stop((uv_stream_t *)&c->tcp);
}

/* ---- requests ------------------------------------------------------------ */

const char *http_header(const struct http_request *r, const char *name)
{
    for (int i = 0; i < r->nheaders; i++)
        if (!strcasecmp(r->headers[i].name, name))
            return r->headers[i].value;
    return NULL;
}

static int hexval(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Percent-decodes p[0..n) into out; plus_space for query values. */
static void url_decode(struct buf *out, const char *p, size_t n, int plus_space)
{
    for (size_t i = 0; i < n; i++) {
        int hi, lo;
        if (p[i] == '%' && i + 2 < n && (hi = hexval(p[i + 1])) >= 0 && (lo = hexval(p[i + 2])) >= 0) {
            buf_putc(out, (char)(hi * 16 + lo));
            i += 2;
        } else if (plus_space && p[i] == '+') {
            buf_putc(out, ' ');
        } else {
            buf_putc(out, p[i]);
        }
    }
}

int http_query_param(const struct http_request *r, const char *name, struct buf *out)
{
    size_t nlen = strlen(name);
    const char *q = r->query;
    while (*q) {
        const char *end = strchr(q, '&');
        size_t len = end ? (size_t)(end - q) : strlen(q);
        const char *eq = memchr(q, '=', len);
        size_t klen = eq ? (size_t)(eq - q) : len;
        struct buf key = BUF_INIT;
        url_decode(&key, q, klen, 1);
        int match = key.len == nlen && !memcmp(key.p, name, nlen);
        buf_release(&key);
        if (match) {
            buf_reset(out);
            if (eq)
                url_decode(out, eq + 1, len - klen - 1, 1);
            if (!out->p)
                buf_grow(out, 0);
            return 1;
        }
        q += len;
        if (*q == '&')
            q++;
    }
    return 0;
}

int http_secret_eq(const char *a, size_t alen, const char *b, size_t blen)
{
    /* Every byte of the longer string is visited whatever the contents; the
     * lengths' difference is folded in, never used to return early. */
    size_t n = alen > blen ? alen : blen;
    volatile unsigned char acc = (unsigned char)(alen != blen);
    for (size_t i = 0; i < n; i++) {
        unsigned char x = i < alen ? (unsigned char)a[i] : 0;
        unsigned char y = i < blen ? (unsigned char)b[i] : 0;
        acc |= (unsigned char)(x ^ y);
    }
    return acc == 0;
}

/* ---- routing ------------------------------------------------------------- */

void http_route(struct http_server *s, const char *method, const char *pattern, http_handler_fn *fn, void *ud)
{
    s->routes = xrealloc(s->routes, sizeof *s->routes * (size_t)(s->nroutes + 1));
    struct route *r = &s->routes[s->nroutes++];
    size_t n = strlen(pattern);
    r->prefix = n > 0 && pattern[n - 1] == '*';
    r->plen = r->prefix ? n - 1 : n;
    r->pattern = xstrndup(pattern, r->plen);
    r->method = xstrdup(method);
    r->fn = fn;
    r->ud = ud;
}

static int route_matches_path(const struct route *r, const char *path)
{
    if (r->prefix)
        return !strncmp(path, r->pattern, r->plen);
    return !strcmp(path, r->pattern);
}

static void route_request(struct http_conn *c, const struct http_request *req)
{
    struct http_server *s = c->srv;
    struct buf allow = BUF_INIT;
    for (int i = 0; i < s->nroutes; i++) {
        struct route *r = &s->routes[i];
        if (!route_matches_path(r, req->path))
            continue;
        if (!strcmp(r->method, "*") || !strcmp(r->method, req->method)) {
            r->fn(r->ud, req, &c->res);
            buf_release(&allow);
            if (!c->res.replied)
                http_reply(&c->res, 500, "text/plain", "no answer\n", 10, NULL);
            return;
        }
        if (!allow.len || !strstr(allow.p, r->method)) {
            buf_puts(&allow, allow.len ? ", " : "Allow: ");
            buf_puts(&allow, r->method);
        }
    }
    if (allow.len) {
        const char *extra[] = {allow.p, NULL};
        http_reply(&c->res, 405, "text/plain", "method not allowed\n", 19, extra);
    } else {
        http_reply(&c->res, 404, "text/plain", "not found\n", 10, NULL);
    }
    buf_release(&allow);
}

/* ---- http-parser callbacks ---------------------------------------------- */

static void request_reset(struct http_conn *c)
{
    buf_reset(&c->text);
    buf_reset(&c->body);
    c->nhdrs = 0;
    c->last_was_value = 0;
    c->hdr_bytes = 0;
    c->in_request = 0;
}

static int on_message_begin(http_parser *p)
{
    struct http_conn *c = p->data;
    request_reset(c);
    c->in_request = 1;
    c->req_start_ns = (int64_t)uv_hrtime();
    return 0;
}

/* Header bytes count against http-max-header: over it, 431 and close. */
static int count_header_bytes(struct http_conn *c, size_t n)
{
    c->hdr_bytes += n;
    if (c->hdr_bytes > (size_t)c->srv->cfg.max_header) {
        reply_and_close(c, 431, "request header fields too large\n");
        return -1;
    }
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t n)
{
    struct http_conn *c = p->data;
    if (count_header_bytes(c, n) < 0)
        return 1;
    buf_append(&c->text, at, n); /* the URL is the first string of text */
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t n)
{
    struct http_conn *c = p->data;
    if (count_header_bytes(c, n) < 0)
        return 1;
    if (c->nhdrs == 0 || c->last_was_value) { /* a new header starts */
        buf_putc(&c->text, '\0');             /* ends the URL or the previous value */
        if (c->nhdrs == c->hdrs_cap) {
            c->hdrs_cap = c->hdrs_cap ? c->hdrs_cap * 2 : 16;
            c->hdrs = xrealloc(c->hdrs, sizeof *c->hdrs * (size_t)c->hdrs_cap);
        }
        c->hdrs[c->nhdrs].name = c->text.len;
        c->hdrs[c->nhdrs].value = 0;
        c->nhdrs++;
        c->last_was_value = 0;
    }
    buf_append(&c->text, at, n);
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t n)
{
    struct http_conn *c = p->data;
    if (count_header_bytes(c, n) < 0)
        return 1;
    if (!c->last_was_value) {
        buf_putc(&c->text, '\0'); /* ends the name */
        c->hdrs[c->nhdrs - 1].value = c->text.len;
        c->last_was_value = 1;
    }
    buf_append(&c->text, at, n);
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    struct http_conn *c = p->data;
    buf_putc(&c->text, '\0');
    if (c->nhdrs && !c->last_was_value) /* a name without a value */
        c->hdrs[c->nhdrs - 1].value = c->text.len - 1;
    if ((p->flags & F_CONTENTLENGTH) && p->content_length > (uint64_t)c->srv->cfg.max_body) {
        reply_and_close(c, 413, "request body too large\n");
        return -1;
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t n)
{
    struct http_conn *c = p->data;
    if (c->body.len + n > (size_t)c->srv->cfg.max_body) { /* chunked bodies have no length up front */
        reply_and_close(c, 413, "request body too large\n");
        return 1;
    }
    buf_append(&c->body, at, n);
    return 0;
}

/* Splits the URL into a decoded path and the raw query (in c->text, after
 * the headers: offsets stay valid, pointers are taken afterwards). */
static int split_url(struct http_conn *c, size_t *path_off, size_t *query_off)
{
    const char *url = c->text.p;
    size_t ulen = strlen(url);
    size_t ps = 0, pl = ulen, qs = 0, ql = 0;
    if (ulen == 0)
        return -1;
    if (url[0] != '/') { /* absolute-form or '*': let http-parser split it */
        struct http_parser_url u;
        http_parser_url_init(&u);
        if (http_parser_parse_url(url, ulen, 0, &u) != 0)
            return -1;
        ps = u.field_data[UF_PATH].off, pl = u.field_data[UF_PATH].len;
        if (!(u.field_set & (1 << UF_PATH)))
            ps = pl = 0;
        if (u.field_set & (1 << UF_QUERY))
            qs = u.field_data[UF_QUERY].off, ql = u.field_data[UF_QUERY].len;
    } else {
        const char *q = memchr(url, '?', ulen);
        const char *h = memchr(url, '#', ulen);
        size_t end = h ? (size_t)(h - url) : ulen;
        if (q && (size_t)(q - url) < end) {
            pl = (size_t)(q - url);
            qs = pl + 1, ql = end - qs;
        } else {
            pl = end;
        }
    }
    /* room first: the copies below read from the same buffer */
    buf_grow(&c->text, pl + ql + 4);
    *path_off = c->text.len;
    if (pl == 0)
        buf_putc(&c->text, '/');
    else
        url_decode(&c->text, c->text.p + ps, pl, 0);
    buf_putc(&c->text, '\0');
    *query_off = c->text.len;
    buf_append(&c->text, c->text.p + qs, ql);
    buf_putc(&c->text, '\0');
    return 0;
}

static int on_message_complete(http_parser *p)
{
    struct http_conn *c = p->data;
    struct http_server *s = c->srv;
    size_t path_off, query_off;
    c->in_request = 0;
    if (c->state == HC_CLOSING)
        return 1;
    if (split_url(c, &path_off, &query_off) < 0) {
        reply_and_close(c, 400, "bad request\n");
        return 1;
    }
    if (c->hv_cap < c->nhdrs) {
        c->hv_cap = c->nhdrs;
        c->hv = xrealloc(c->hv, sizeof *c->hv * (size_t)c->hv_cap);
    }
    for (int i = 0; i < c->nhdrs; i++)
        c->hv[i] = (struct http_header){c->text.p + c->hdrs[i].name, c->text.p + c->hdrs[i].value};
    if (!c->body.p)
        buf_grow(&c->body, 0);
    struct http_request req = {
        .method = http_method_str((enum http_method)p->method),
        .path = c->text.p + path_off,
        .query = c->text.p + query_off,
        .headers = c->hv,
        .nheaders = c->nhdrs,
        .body = c->body.p,
        .body_len = c->body.len,
        .peer = c->peer,
        .start_ns = c->req_start_ns,
    };
    c->res = (struct http_response){.c = c, .replied = 0, .keep_alive = http_should_keep_alive(p) && !s->closing};
    route_request(c, &req);
    if (!c->res.keep_alive) {
        c->close_after_write = 1;
        c->state = HC_CLOSING;
        uv_read_stop((uv_stream_t *)&c->tcp);
        return 1; /* stop: whatever was pipelined after it is not read */
    }
    return 0;
}

/* ---- connections --------------------------------------------------------- */

static void on_conn_closed(uv_handle_t *h)
{
    struct http_conn *c = h->data;
    if (c->flush_queued) { /* closed with the loop stopping before its check */
        struct http_conn **pp = &c->srv->flushq;
        while (*pp && *pp != c)
            pp = &(*pp)->flush_next;
        if (*pp)
            *pp = c->flush_next;
    }
    buf_release(&c->text);
    buf_release(&c->body);
    buf_release(&c->out);
    buf_release(&c->wbuf);
    xfree(c->hdrs);
    xfree(c->hv);
    xfree(c);
}

static void conn_close(struct http_conn *c)
{
    struct http_server *s = c->srv;
    if (uv_is_closing((uv_handle_t *)&c->tcp))
        return;
    c->state = HC_CLOSING;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    s->nconns--;
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

static void on_write_done(uv_write_t *req, int status)
{
    struct http_conn *c = req->data;
    c->writing = 0;
    buf_reset(&c->wbuf);
    if (uv_is_closing((uv_handle_t *)&c->tcp))
        return;
    if (status < 0) {
        conn_close(c);
        return;
    }
    conn_flush(c);
    if (c->state != HC_CLOSING && !c->writing && !uv_is_active((uv_handle_t *)&c->tcp))
        uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, on_read);
}

/* What the kernel took of c->out (n bytes, or a libuv/-errno error): the
 * rest goes through uv_write, and c->out keeps collecting answers meanwhile. */
static void conn_sent(struct http_conn *c, ssize_t n)
{
    if (uv_is_closing((uv_handle_t *)&c->tcp))
        return;
    if (n < 0 && n != UV_EAGAIN) {
        conn_close(c);
        return;
    }
    if (n < 0)
        n = 0;
    if ((size_t)n < c->out.len) {
        buf_consume(&c->out, (size_t)n);
        struct buf t = c->wbuf;
        c->wbuf = c->out;
        c->out = t;
        buf_reset(&c->out);
        c->writing = 1;
        c->wreq.data = c;
        uv_buf_t wb = uv_buf_init(c->wbuf.p, (unsigned)c->wbuf.len);
        if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &wb, 1, on_write_done) < 0) {
            c->writing = 0;
            conn_close(c);
        }
        return;
    }
    buf_reset(&c->out);
    if (c->close_after_write)
        conn_close(c);
}

/* Hands c->out to the kernel: try_write first, uv_write for what is left.
 * While a write is in flight, new answers wait in c->out. */
static void conn_flush(struct http_conn *c)
{
    if (c->writing || uv_is_closing((uv_handle_t *)&c->tcp))
        return;
    if (c->out.len) {
        uv_buf_t b = uv_buf_init(c->out.p, (unsigned)c->out.len);
        conn_sent(c, uv_try_write((uv_stream_t *)&c->tcp, &b, 1));
    } else if (c->close_after_write) {
        conn_close(c);
    }
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    struct http_conn *c = h->data;
    struct http_server *s = c->srv;
    (void)suggested;
    /* One shared buffer: libuv calls read_cb right after, and read_cb
     * consumes every byte before returning. */
    *b = uv_buf_init(s->rbuf, sizeof s->rbuf);
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *b)
{
    struct http_conn *c = st->data;
    if (nread == 0)
        return;
    if (nread < 0) {
        conn_close(c);
        return;
    }
    c->last_ms = uv_now(c->srv->loop);
    if (c->state == HC_CLOSING)
        return;
    size_t done = http_parser_execute(&c->parser, &c->srv->settings, b->base, (size_t)nread);
    enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
    if (c->state != HC_CLOSING && (e != HPE_OK || (done != (size_t)nread && !c->parser.upgrade))) {
        if (e == HPE_HEADER_OVERFLOW)
            reply_and_close(c, 431, "request header fields too large\n");
        else
            reply_and_close(c, 400, "bad request\n");
    } else if (c->state != HC_CLOSING && c->parser.upgrade) {
        reply_and_close(c, 400, "upgrade not supported\n");
    }
    /* on_read runs only in the poll phase: flush_check writes this before
     * the closing phase can free the connection */
    if (!c->flush_queued) {
        c->flush_queued = 1;
        c->flush_next = c->srv->flushq;
        c->srv->flushq = c;
    }
}

/* A client that pipelines without reading: stop reading until the output
 * drains, so memory stays bounded. */
static void after_flush(struct http_conn *c)
{
    if (c->writing && c->wbuf.len > (1u << 20) && c->state != HC_CLOSING)
        uv_read_stop((uv_stream_t *)&c->tcp);
}

static void on_batch_sent(void *ud, ssize_t res)
{
    struct http_conn *c = ud;
    conn_sent(c, res);
    after_flush(c);
}

/* Can c's answers go into the batch?  Only a plain send of c->out, with no
 * uv_write in flight (which has to finish first). */
static int batchable(struct http_conn *c, int *fd)
{
    uv_os_fd_t f;
    if (c->writing || !c->out.len || uv_is_closing((uv_handle_t *)&c->tcp) ||
        uv_fileno((uv_handle_t *)&c->tcp, &f) < 0)
        return 0;
    *fd = f;
    return 1;
}

static void on_flush_check(uv_check_t *h)
{
    struct http_server *s = h->data;
    struct http_conn *c = s->flushq;
    s->flushq = NULL;
    /* one answer goes out by itself; two or more in one system call */
    struct sendbatch *b = sendbatch_for_turn(&s->batch, &s->nobatch, c && c->flush_next);
    while (c) {
        struct http_conn *next = c->flush_next;
        int fd;
        c->flush_queued = 0;
        if (b && batchable(c, &fd)) {
            if (sendbatch_add(b, fd, c->out.p, c->out.len, c) < 0) {
                sendbatch_run(b, on_batch_sent); /* full: send these first */
                if (sendbatch_add(b, fd, c->out.p, c->out.len, c) < 0)
                    on_batch_sent(c, UV_EAGAIN); /* the batch broke: uv_write */
            }
        } else {
            conn_flush(c);
            after_flush(c);
        }
        c = next;
    }
    if (b)
        sendbatch_run(b, on_batch_sent);
}

static void on_connection(uv_stream_t *listener, int status)
{
    struct http_server *s = listener->data;
    if (status < 0)
        return;
    struct http_conn *c = xcalloc(1, sizeof *c);
    c->srv = s;
    uv_tcp_init(s->loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) < 0) {
        uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
        return;
    }
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->nconns++;
    uv_tcp_nodelay(&c->tcp, 1);
    struct sockaddr_storage ss;
    int len = sizeof ss;
    c->peer[0] = '\0';
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET6)
            uv_ip6_name((struct sockaddr_in6 *)&ss, c->peer, sizeof c->peer);
        else
            uv_ip4_name((struct sockaddr_in *)&ss, c->peer, sizeof c->peer);
    }
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    c->last_ms = uv_now(s->loop);
    if (s->nconns > s->cfg.max_conns || s->closing) {
        reply_and_close(c, 503, "too many connections\n");
        conn_flush(c);
        return;
    }
    uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, on_read);
}

/* Once a second: close connections idle (or stuck in a request) too long,
 * and resume reading on those whose output drained. */
static void on_sweep(uv_timer_t *t)
{
    struct http_server *s = t->data;
    uint64_t now = uv_now(s->loop);
    uint64_t limit = (uint64_t)s->cfg.idle_timeout * 1000;
    for (struct http_conn *c = s->conns, *next; c; c = next) {
        next = c->next;
        if (now - c->last_ms >= limit) {
            conn_close(c);
            continue;
        }
        if (c->state != HC_CLOSING && !c->writing && !uv_is_active((uv_handle_t *)&c->tcp))
            uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, on_read);
    }
}

/* ---- the server ---------------------------------------------------------- */

static void on_handle_closed(uv_handle_t *h)
{
    struct http_server *s = h->data;
    s->open_handles--;
}

static int listen_one(struct http_server *s, const char *addr, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    int port = (int)s->cfg.port;
    if (strchr(addr, ':')) {
        if (uv_ip6_addr(addr, port, (struct sockaddr_in6 *)&ss) < 0)
            goto bad;
    } else if (uv_ip4_addr(addr, port, (struct sockaddr_in *)&ss) < 0) {
        goto bad;
    }
    if (s->nlisteners == (int)(sizeof s->listeners / sizeof s->listeners[0])) {
        snprintf(err, errlen, "http-bind: too many addresses");
        return -1;
    }
    uv_tcp_t *l = &s->listeners[s->nlisteners];
    uv_tcp_init(s->loop, l);
    l->data = s;
    s->open_handles++;
    s->nlisteners++;
    int rc = uv_tcp_bind(l, (struct sockaddr *)&ss, strchr(addr, ':') ? UV_TCP_IPV6ONLY : 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)l, 511, on_connection);
    if (rc < 0) {
        snprintf(err, errlen, "Could not create the HTTP listener on %s:%d: %s", addr, port, uv_strerror(rc));
        return rc;
    }
    return 0;
bad:
    snprintf(err, errlen, "http-bind: invalid address '%s'", addr);
    return -1;
}

static void close_handles_now(struct http_server *s)
{
    for (int i = 0; i < s->nlisteners; i++)
        if (!uv_is_closing((uv_handle_t *)&s->listeners[i]))
            uv_close((uv_handle_t *)&s->listeners[i], on_handle_closed);
    if (!uv_is_closing((uv_handle_t *)&s->sweep))
        uv_close((uv_handle_t *)&s->sweep, on_handle_closed);
    if (!uv_is_closing((uv_handle_t *)&s->flush_check))
        uv_close((uv_handle_t *)&s->flush_check, on_handle_closed);
}

struct http_server *http_server_new(struct uv_loop_s *loop, const struct http_config *cfg, char *err, size_t errlen)
{
    struct http_server *s = xcalloc(1, sizeof *s);
    s->loop = loop;
    s->cfg = *cfg;
    s->cfg.bind = NULL; /* not kept: only used here */
    s->settings = (http_parser_settings){
        .on_message_begin = on_message_begin,
        .on_url = on_url,
        .on_header_field = on_header_field,
        .on_header_value = on_header_value,
        .on_headers_complete = on_headers_complete,
        .on_body = on_body,
        .on_message_complete = on_message_complete,
    };
    uv_timer_init(loop, &s->sweep);
    s->sweep.data = s;
    s->open_handles = 1;
    uv_unref((uv_handle_t *)&s->sweep);
    uv_timer_start(&s->sweep, on_sweep, 1000, 1000);
    uv_check_init(loop, &s->flush_check);
    s->flush_check.data = s;
    s->open_handles++;
    uv_unref((uv_handle_t *)&s->flush_check);
    uv_check_start(&s->flush_check, on_flush_check);
    if (cfg->port > 0) {
        const char *bind = cfg->bind && *cfg->bind ? cfg->bind : "127.0.0.1";
        char *copy = xstrdup(bind), *save = NULL;
        int opened = 0, rc = 0;
        for (char *a = strtok_r(copy, " ", &save); a; a = strtok_r(NULL, " ", &save)) {
            int optional = a[0] == '-';
            char e2[256];
            rc = listen_one(s, a + optional, e2, sizeof e2);
            if (rc == 0) {
                opened++;
            } else if (!optional) {
                snprintf(err, errlen, "%s", e2);
                break;
            } else {
                rc = 0;
            }
        }
        xfree(copy);
        if (rc == 0 && !opened) {
            snprintf(err, errlen, "Could not create the HTTP listener: no address of '%s' could be bound", bind);
            rc = -1;
        }
        if (rc < 0) {
            close_handles_now(s);
            /* the closes complete on the caller's next loop run; wait here */
            while (s->open_handles > 0)
                uv_run(loop, UV_RUN_NOWAIT);
            http_server_free(s);
            return NULL;
        }
    }
    return s;
}

void http_server_close(struct http_server *s)
{
    if (!s || s->closing)
        return;
    s->closing = 1;
    close_handles_now(s);
    while (s->conns)
        conn_close(s->conns);
}

void http_server_free(struct http_server *s)
{
    if (!s)
        return;
    /* every handle must have closed (the loop ran after http_server_close) */
    while (s->open_handles > 0 && s->loop)
        uv_run(s->loop, UV_RUN_NOWAIT);
    for (int i = 0; i < s->nroutes; i++) {
        xfree(s->routes[i].method);
        xfree(s->routes[i].pattern);
    }
    xfree(s->routes);
    sendbatch_free(s->batch);
    xfree(s);
}
