/* fuzz_http.c: libFuzzer target for the HTTP listener's request parsing
 * (protocol/http.c on Debian's http-parser): request line, headers and their
 * limits, chunked and sized bodies, pipelining and keep-alive, the URL split
 * and decoding, routing (404/405), and the answers it writes.
 *
 * The file includes http.c to reach its connection (STYLE.md section 9).
 * A connection is made as on_connection() makes one, on one end of a
 * socketpair (no listener, no network); the input is fed to on_read() in
 * slices cut where a hash of the input says, as reads deliver it, and the
 * other end is drained.  Routes: an exact POST /hook, a GET prefix "/api/" + any,
 * whose handler reads every header, query parameter and the body.
 *
 * Checked besides ASan/UBSan: what is written starts with a status line,
 * and a request's header bytes and body stay within the configured limits. */
#include "../http.c"

#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>
#include "fuzz.h"

static uv_loop_t loop;
static struct http_server *S;
static const struct http_config cfg = {.port = 0, .max_body = 4096, .max_header = 2048, .idle_timeout = 60,
                                       .max_conns = 8};

static void on_api(void *ud, const struct http_request *req, struct http_response *res)
{
    struct buf b = BUF_INIT, v = BUF_INIT;
    buf_printf(&b, "%s %s ?%s\n", req->method, req->path, req->query);
    for (int i = 0; i < req->nheaders; i++)
        buf_printf(&b, "%s: %s\n", req->headers[i].name, req->headers[i].value);
    if (http_query_param(req, "q", &v))
        buf_printf(&b, "q=%.*s\n", (int)v.len, v.p ? v.p : "");
    const char *secret = http_header(req, "X-Secret");
    if (secret)
        buf_printf(&b, "secret ok=%d\n", http_secret_eq(secret, strlen(secret), "s3cret", 6));
    CHECK(req->body_len <= (size_t)cfg.max_body && req->body[req->body_len] == '\0');
    buf_append(&b, req->body, req->body_len);
    http_reply(res, 200, "text/plain", b.p, b.len, NULL);
    buf_release(&b);
    buf_release(&v);
}

static void on_hook(void *ud, const struct http_request *req, struct http_response *res)
{
    http_reply_json(res, req->body_len ? 200 : 400, "{}", 2);
}

static void setup(void)
{
    char err[256];
    log_set_level(LOG_WARNING + 1);
    CHECK(uv_loop_init(&loop) == 0);
    S = http_server_new(&loop, &cfg, err, sizeof err);
    CHECK(S != NULL);
    http_route(S, "POST", "/hook", on_hook, NULL);
    http_route(S, "GET", "/api/*", on_api, NULL);
}

void fuzz_cleanup(void)
{
    if (!S)
        return;
    http_server_close(S);
    uv_run(&loop, UV_RUN_NOWAIT);
    http_server_free(S);
    uv_run(&loop, UV_RUN_NOWAIT);
    uv_loop_close(&loop);
    S = NULL;
}

/* What the connection wrote: whole answers, each with a status line. */
static void drain(int fd, struct buf *got)
{
    char tmp[65536];
    ssize_t n;
    while ((n = read(fd, tmp, sizeof tmp)) > 0)
        buf_append(got, tmp, (size_t)n);
}

/* c is still open (in the server's list): compares pointers only, so it
 * is safe after c was freed. */
static int alive(const struct http_conn *c)
{
    for (const struct http_conn *p = S->conns; p; p = p->next)
        if (p == c)
            return 1;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!S)
        setup();
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) == 0);
    /* on_connection(), minus accept */
    struct http_conn *c = xcalloc(1, sizeof *c);
    c->srv = S;
    uv_tcp_init(&loop, &c->tcp);
    c->tcp.data = c;
    CHECK(uv_tcp_open(&c->tcp, sv[0]) == 0);
    c->next = S->conns;
    if (S->conns)
        S->conns->prev = c;
    S->conns = c;
    S->nconns++;
    snprintf(c->peer, sizeof c->peer, "fuzz");
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    c->last_ms = uv_now(&loop);
    uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, on_read);

    uint64_t seed = fuzz_seed(data, size);
    struct buf got = BUF_INIT;
    for (size_t off = 0; off < size && alive(c);) {
        size_t n = fuzz_next_slice(&seed, 11, 900);
        n = n < size - off ? n : size - off;
        memcpy(S->rbuf, data + off, n);
        uv_buf_t b = uv_buf_init(S->rbuf, (unsigned)n);
        on_read((uv_stream_t *)&c->tcp, (ssize_t)n, &b);
        off += n;
        if (alive(c) && c->state != HC_CLOSING) /* past a limit it answers 431/413 and closes */
            CHECK(c->hdr_bytes <= (size_t)cfg.max_header && c->body.len <= (size_t)cfg.max_body);
        uv_run(&loop, UV_RUN_NOWAIT); /* writes in flight; a closed c is freed here */
        drain(sv[1], &got);
    }
    while (S->conns) /* only c: the list holds the connections not closed yet */
        conn_close(S->conns);
    uv_run(&loop, UV_RUN_NOWAIT); /* on_conn_closed frees c */
    drain(sv[1], &got);
    close(sv[1]);
    if (got.len)
        CHECK(got.len >= 12 && !memcmp(got.p, "HTTP/1.1 ", 9));
    buf_release(&got);
    return 0;
}
