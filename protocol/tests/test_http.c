/* test_http.c: the HTTP listener (protocol/http.c) on a real loop and
 * loopback sockets: routing, 404/405 with Allow, keep-alive and pipelining,
 * header and body limits, malformed requests, query parameters, and the
 * constant-time comparison.  A client thread speaks raw bytes; the test's
 * thread runs the loop. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "base/alloc.h"
#include "base/tests/free_port.h"
#include "http.h"

/* ---- handlers ------------------------------------------------------------ */

static void h_hello(void *ud, const struct http_request *req, struct http_response *res)
{
    (void)ud;
    struct buf b = BUF_INIT;
    buf_printf(&b, "%s %s q=%s", req->method, req->path, req->query);
    const char *x = http_header(req, "x-test");
    if (x)
        buf_printf(&b, " x=%s", x);
    http_reply(res, 200, "text/plain", b.p, b.len, NULL);
    buf_release(&b);
}

static void h_echo(void *ud, const struct http_request *req, struct http_response *res)
{
    (void)ud;
    const char *extra[] = {"X-Len: yes", NULL};
    http_reply(res, 201, "application/octet-stream", req->body, req->body_len, extra);
}

static void h_prefix(void *ud, const struct http_request *req, struct http_response *res)
{
    (void)ud;
    struct buf v = BUF_INIT;
    int found = http_query_param(req, "name", &v);
    struct buf b = BUF_INIT;
    buf_printf(&b, "prefix %s name=%s(%d)", req->path, found ? v.p : "", found);
    http_reply_json(res, 200, b.p, b.len);
    buf_release(&b);
    buf_release(&v);
}

static void h_silent(void *ud, const struct http_request *req, struct http_response *res)
{
    (void)ud, (void)req, (void)res; /* forgets to answer: the listener says 500 */
}

/* ---- the client thread ----------------------------------------------------- */

struct exchange {
    int port;
    const char *send;  /* bytes to send at once */
    size_t send_len;
    char got[65536];
    size_t got_len;
    int closed;        /* the server closed the connection */
    uv_async_t *done;
};

static void client_thread(void *arg)
{
    struct exchange *x = arg;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)x->port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    /* up to 5 s for the first bytes (a loaded machine), then 300 ms of
     * silence ends the exchange on a connection kept open */
    struct timeval tv = {.tv_sec = 5, .tv_usec = 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0) {
        size_t off = 0;
        while (off < x->send_len) {
            ssize_t n = send(fd, x->send + off, x->send_len - off, MSG_NOSIGNAL);
            if (n <= 0)
                break;
            off += (size_t)n;
        }
        for (;;) {
            ssize_t n = recv(fd, x->got + x->got_len, sizeof x->got - 1 - x->got_len, 0);
            if (n == 0) {
                x->closed = 1;
                break;
            }
            if (n < 0) /* timeout: the server keeps the connection open */
                break;
            x->got_len += (size_t)n;
            tv = (struct timeval){.tv_sec = 0, .tv_usec = 300000};
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        }
    }
    x->got[x->got_len] = '\0';
    close(fd);
    uv_async_send(x->done);
}

static void on_done(uv_async_t *h) { uv_stop(h->loop); }

struct fixture {
    uv_loop_t loop;
    struct http_server *srv;
    struct http_config cfg;
    uv_async_t done;
};

static int setup(void **state)
{
    struct fixture *f = xcalloc(1, sizeof *f);
    uv_loop_init(&f->loop);
    f->cfg = (struct http_config){.port = free_port(), .bind = "127.0.0.1", .max_body = 1000, .max_header = 512,
                                  .idle_timeout = 60, .max_conns = 100};
    char err[256];
    f->srv = http_server_new(&f->loop, &f->cfg, err, sizeof err);
    assert_non_null(f->srv);
    http_route(f->srv, "GET", "/hello", h_hello, NULL);
    http_route(f->srv, "POST", "/echo", h_echo, NULL);
    http_route(f->srv, "PUT", "/echo", h_echo, NULL);
    http_route(f->srv, "*", "/api/*", h_prefix, NULL);
    http_route(f->srv, "GET", "/silent", h_silent, NULL);
    uv_async_init(&f->loop, &f->done, on_done);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    http_server_close(f->srv);
    uv_close((uv_handle_t *)&f->done, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    http_server_free(f->srv);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    xfree(f);
    return 0;
}

/* Sends raw bytes, runs the loop until the client has its answer. */
static struct exchange *exchange(struct fixture *f, const char *bytes, size_t len)
{
    struct exchange *x = xcalloc(1, sizeof *x);
    x->port = (int)f->cfg.port;
    x->send = bytes;
    x->send_len = len;
    x->done = &f->done;
    uv_thread_t t;
    uv_thread_create(&t, client_thread, x);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    uv_thread_join(&t);
    return x;
}
#define EXCHANGE(f, s) exchange(f, s, sizeof(s) - 1)

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

/* ---- tests ------------------------------------------------------------------ */

static void test_get_and_keepalive(void **state)
{
    struct fixture *f = *state;
    struct exchange *x = EXCHANGE(f, "GET /hello?a=1&b=2 HTTP/1.1\r\nHost: x\r\nX-Test: yes\r\n\r\n");
    assert_string_equal(x->got, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 26\r\n\r\n"
                                "GET /hello q=a=1&b=2 x=yes");
    assert_false(x->closed); /* HTTP/1.1: kept open */
    xfree(x);
}

static void test_pipelined(void **state)
{
    struct fixture *f = *state;
    struct exchange *x = EXCHANGE(f, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"
                                     "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nabcde"
                                     "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"
                                     "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                                     "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    /* four answers in order; the one after Connection: close is never read */
    assert_int_equal(count(x->got, "HTTP/1.1 "), 4);
    const char *a = strstr(x->got, "HTTP/1.1 200"), *b = strstr(x->got, "HTTP/1.1 201"),
               *c = strstr(x->got, "HTTP/1.1 404"), *d = strstr(a + 1, "HTTP/1.1 200");
    assert_true(a && b && c && d && a < b && b < c && c < d);
    assert_non_null(strstr(b, "X-Len: yes\r\nContent-Length: 5\r\n\r\nabcde"));
    assert_non_null(strstr(d, "Connection: close\r\n"));
    assert_true(x->closed);
    xfree(x);
}

static void test_http10_closes(void **state)
{
    struct fixture *f = *state;
    struct exchange *x = EXCHANGE(f, "GET /hello HTTP/1.0\r\n\r\n");
    assert_non_null(strstr(x->got, "HTTP/1.1 200 OK\r\n"));
    assert_non_null(strstr(x->got, "Connection: close\r\n"));
    assert_true(x->closed);
    xfree(x);
}

static void test_404_405(void **state)
{
    struct fixture *f = *state;
    struct exchange *x = EXCHANGE(f, "DELETE /echo HTTP/1.1\r\nHost: x\r\n\r\nGET /missing HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_non_null(strstr(x->got, "HTTP/1.1 405 Method Not Allowed\r\n"));
    assert_non_null(strstr(x->got, "Allow: POST, PUT\r\n"));
    assert_non_null(strstr(x->got, "HTTP/1.1 404 Not Found\r\n"));
    assert_false(x->closed);
    xfree(x);
}

static void test_prefix_and_query(void **state)
{
    struct fixture *f = *state;
    struct exchange *x = EXCHANGE(f, "DELETE /api/v1/users%2F7?x=1&name=a%20b+c HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_non_null(strstr(x->got, "Content-Type: application/json\r\n"));
    assert_non_null(strstr(x->got, "prefix /api/v1/users/7 name=a b c(1)"));
    xfree(x);
}

static void test_no_answer_is_500(void **state)
{
    struct fixture *f = *state;
    struct exchange *x = EXCHANGE(f, "GET /silent HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_non_null(strstr(x->got, "HTTP/1.1 500 "));
    xfree(x);
}

static void test_body_too_large(void **state)
{
    struct fixture *f = *state;
    struct exchange *x = EXCHANGE(f, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1001\r\n\r\n");
    assert_non_null(strstr(x->got, "HTTP/1.1 413 Payload Too Large\r\n"));
    assert_non_null(strstr(x->got, "Connection: close\r\n"));
    assert_true(x->closed);
    xfree(x);
    /* chunked: no length up front, caught while reading */
    char big[1400];
    int n = snprintf(big, sizeof big, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3e8\r\n");
    memset(big + n, 'a', 1000);
    memcpy(big + n + 1000, "\r\n5\r\nbbbbb\r\n0\r\n\r\n", 17);
    x = exchange(f, big, (size_t)n + 1000 + 17);
    assert_non_null(strstr(x->got, "HTTP/1.1 413 "));
    assert_true(x->closed);
    xfree(x);
    /* at the limit: fine */
    n = snprintf(big, sizeof big, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n");
    memset(big + n, 'z', 1000);
    x = exchange(f, big, (size_t)n + 1000);
    assert_non_null(strstr(x->got, "HTTP/1.1 201 "));
    assert_non_null(strstr(x->got, "Content-Length: 1000\r\n"));
    xfree(x);
}

static void test_header_too_large(void **state)
{
    struct fixture *f = *state;
    char req[2048];
    int n = snprintf(req, sizeof req, "GET /hello HTTP/1.1\r\nHost: x\r\nX-Big: ");
    memset(req + n, 'h', 600);
    memcpy(req + n + 600, "\r\n\r\n", 4);
    struct exchange *x = exchange(f, req, (size_t)n + 604);
    assert_non_null(strstr(x->got, "HTTP/1.1 431 Request Header Fields Too Large\r\n"));
    assert_true(x->closed);
    xfree(x);
}

static void test_malformed(void **state)
{
    struct fixture *f = *state;
    struct exchange *x = EXCHANGE(f, "GET /hello HTTP/1.1\r\nHost x\r\n\r\n");
    assert_non_null(strstr(x->got, "HTTP/1.1 400 Bad Request\r\n"));
    assert_true(x->closed);
    xfree(x);
    x = EXCHANGE(f, "\x01\x02garbage\r\n\r\n");
    assert_non_null(strstr(x->got, "HTTP/1.1 400 "));
    assert_true(x->closed);
    xfree(x);
}

static void test_bind_error(void **state)
{
    struct fixture *f = *state;
    char err[256] = "";
    struct http_config c = f->cfg; /* same port: in use */
    struct http_server *s = http_server_new(&f->loop, &c, err, sizeof err);
    assert_null(s);
    assert_non_null(strstr(err, "Could not create the HTTP listener"));
    c.bind = "not-an-address";
    c.port = free_port();
    s = http_server_new(&f->loop, &c, err, sizeof err);
    assert_null(s);
    assert_non_null(strstr(err, "invalid address"));
}

static void test_secret_eq(void **state)
{
    (void)state;
    assert_true(http_secret_eq("abc", 3, "abc", 3));
    assert_false(http_secret_eq("abc", 3, "abd", 3));
    assert_false(http_secret_eq("abc", 3, "abcd", 4));
    assert_false(http_secret_eq("", 0, "a", 1));
    assert_true(http_secret_eq("", 0, "", 0));
    assert_false(http_secret_eq("a\0b", 3, "a\0c", 3));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_get_and_keepalive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pipelined, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http10_closes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_404_405, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prefix_and_query, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_answer_is_500, setup, teardown),
        cmocka_unit_test_setup_teardown(test_body_too_large, setup, teardown),
        cmocka_unit_test_setup_teardown(test_header_too_large, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bind_error, setup, teardown),
        cmocka_unit_test(test_secret_eq),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
