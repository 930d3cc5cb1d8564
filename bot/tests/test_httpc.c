/* test_httpc.c: the outbound client (bot/httpc.c) against the HTTP listener
 * (protocol/http.c) on the same loop: GET and POST with headers and body,
 * many requests at once over reused connections, one request after another
 * on one kept connection that the server later drops, the per-request timeout,
 * a refused connection, cancellation when the client is freed (every
 * request gets exactly one callback), methods one after another on a reused
 * handle, and proxies from the environment.  Every handle closes and the loop
 * closes cleanly. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "base/alloc.h"
#include "base/tests/free_port.h"
#include "http.h"
#include "httpc.h"

struct fixture {
    uv_loop_t loop;
    struct http_server *srv;
    struct httpc *hc;
    int port;
};

static void h_echo(void *ud, const struct http_request *req, struct http_response *res)
{
    (void)ud;
    struct buf b = BUF_INIT;
    const char *x = http_header(req, "X-Token");
    buf_printf(&b, "%s %s token=%s body=%.*s", req->method, req->path, x ? x : "-", (int)req->body_len, req->body);
    http_reply(res, 200, "text/plain", b.p, b.len, NULL);
    buf_release(&b);
}

static void h_teapot(void *ud, const struct http_request *req, struct http_response *res)
{
    (void)ud, (void)req;
    http_reply_json(res, 429, "{\"ok\":false}", 12);
}

/* A handler that blocks the loop longer than the client's timeout would be
 * wrong; a slow peer is simulated by a listener that accepts and never
 * answers: a plain TCP socket listening (the kernel completes the connect). */
static int silent_listener(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    bind(fd, (struct sockaddr *)&a, sizeof a);
    listen(fd, 16);
    getsockname(fd, (struct sockaddr *)&a, &len);
    *port = ntohs(a.sin_port);
    return fd;
}

static int setup(void **state)
{
    struct fixture *f = xcalloc(1, sizeof *f);
    uv_loop_init(&f->loop);
    f->port = free_port();
    struct http_config cfg = {.port = f->port, .bind = "127.0.0.1", .max_body = 1 << 20, .max_header = 16384,
                              .idle_timeout = 60, .max_conns = 1000};
    char err[256];
    f->srv = http_server_new(&f->loop, &cfg, err, sizeof err);
    assert_non_null(f->srv);
    http_route(f->srv, "*", "/echo*", h_echo, f);
    http_route(f->srv, "GET", "/limited", h_teapot, f);
    f->hc = httpc_new(&f->loop);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    httpc_free(f->hc);
    http_server_close(f->srv);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    http_server_free(f->srv);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    xfree(f);
    return 0;
}

struct result {
    int calls, status;
    char body[512];
    char error[256];
    int *pending;
    uv_loop_t *loop;
};

static void on_result(void *ud, const struct httpc_result *r)
{
    struct result *x = ud;
    x->calls++;
    x->status = r->status;
    snprintf(x->body, sizeof x->body, "%.*s", (int)r->body_len, r->body);
    snprintf(x->error, sizeof x->error, "%s", r->error ? r->error : "");
    if (x->pending && --*x->pending == 0)
        uv_stop(x->loop);
}

static void run_until_done(struct fixture *f, int *pending)
{
    for (int i = 0; i < 2000 && *pending > 0; i++)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_int_equal(*pending, 0);
}

static void test_get_and_post(void **state)
{
    struct fixture *f = *state;
    char url[128];
    int pending = 2;
    struct result a = {.pending = &pending, .loop = &f->loop}, b = a;
    snprintf(url, sizeof url, "http://127.0.0.1:%d/echo/x?y=1", f->port);
    const char *hdrs[] = {"X-Token: t1", NULL};
    assert_int_equal(httpc_send(f->hc, &(struct httpc_request){.method = "GET", .url = url, .headers = hdrs}, on_result,
                                &a),
                     0);
    assert_int_equal(httpc_send(f->hc,
                                &(struct httpc_request){.method = "POST", .url = url, .body = "{\"a\":1}", .body_len = 7},
                                on_result, &b),
                     0);
    assert_int_equal(httpc_inflight(f->hc), 2);
    run_until_done(f, &pending);
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.status, 200);
    assert_string_equal(a.body, "GET /echo/x token=t1 body=");
    assert_int_equal(b.calls, 1);
    assert_string_equal(b.body, "POST /echo/x token=- body={\"a\":1}");
    assert_int_equal(httpc_inflight(f->hc), 0);
    /* a non-2xx status is a status, not an error */
    pending = 1;
    struct result c = {.pending = &pending, .loop = &f->loop};
    snprintf(url, sizeof url, "http://127.0.0.1:%d/limited", f->port);
    assert_int_equal(httpc_send(f->hc, &(struct httpc_request){.url = url}, on_result, &c), 0);
    run_until_done(f, &pending);
    assert_int_equal(c.status, 429);
    assert_string_equal(c.error, "");
    assert_string_equal(c.body, "{\"ok\":false}");
}

static int count_fds(void)
{
    int n = 0;
    uv_fs_t req;
    if (uv_fs_scandir(NULL, &req, "/proc/self/fd", 0, NULL) >= 0) {
        uv_dirent_t d;
        while (uv_fs_scandir_next(&req, &d) != UV_EOF)
            n++;
    }
    uv_fs_req_cleanup(&req);
    return n;
}

static void send_one(struct fixture *f, const char *url, struct result *r)
{
    int pending = 1;
    *r = (struct result){.pending = &pending, .loop = &f->loop};
    assert_int_equal(httpc_send(f->hc, &(struct httpc_request){.url = url}, on_result, r), 0);
    run_until_done(f, &pending);
    assert_int_equal(r->calls, 1);
}

static void tick(uv_timer_t *t) { (void)t; }

/* One request after another rides one kept connection: the socket stays
 * watched between them (no fd per request), and when the server drops the
 * idle connection, the next request still gets through on a new one. */
static void test_keepalive_then_server_drops_idle(void **state)
{
    struct fixture *f = *state;
    int port = free_port();
    struct http_config cfg = {.port = port, .bind = "127.0.0.1", .max_body = 1 << 20, .max_header = 16384,
                              .idle_timeout = 1, .max_conns = 1000};
    char err[256], url[128];
    struct http_server *srv = http_server_new(&f->loop, &cfg, err, sizeof err);
    assert_non_null(srv);
    http_route(srv, "*", "/echo*", h_echo, f);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/echo/k", port);
    struct result r;
    send_one(f, url, &r);
    assert_int_equal(r.status, 200);
    int fds = count_fds();
    for (int i = 0; i < 50; i++) {
        send_one(f, url, &r);
        assert_int_equal(r.status, 200);
        assert_string_equal(r.body, "GET /echo/k token=- body=");
    }
    assert_true(count_fds() <= fds); /* one connection, not one per request */
    /* the server closes the connection after 1 s idle: the loop sees the
     * idle socket turn readable (EOF) while curl holds it in its cache */
    uint64_t until = uv_now(&f->loop) + 2200;
    uv_timer_t t;
    uv_timer_init(&f->loop, &t);
    while (uv_now(&f->loop) < until) {
        uv_timer_start(&t, tick, 100, 0);
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    uv_close((uv_handle_t *)&t, NULL);
    for (int i = 0; i < 3; i++) {
        send_one(f, url, &r);
        assert_int_equal(r.status, 200);
        assert_string_equal(r.error, "");
    }
    assert_true(count_fds() <= fds);
    http_server_close(srv);
    for (int i = 0; i < 20; i++)
        uv_run(&f->loop, UV_RUN_NOWAIT);
    http_server_free(srv);
}

static void test_many_at_once(void **state)
{
    struct fixture *f = *state;
    enum { N = 200 };
    static struct result rs[N];
    int pending = N;
    char url[128];
    for (int round = 0; round < 2; round++) {
        pending = N;
        for (int i = 0; i < N; i++) {
            rs[i] = (struct result){.pending = &pending, .loop = &f->loop};
            snprintf(url, sizeof url, "http://127.0.0.1:%d/echo/%d", f->port, i);
            assert_int_equal(httpc_send(f->hc, &(struct httpc_request){.url = url}, on_result, &rs[i]), 0);
        }
        run_until_done(f, &pending);
        for (int i = 0; i < N; i++) {
            char want[64];
            snprintf(want, sizeof want, "GET /echo/%d token=- body=", i);
            assert_int_equal(rs[i].calls, 1);
            assert_int_equal(rs[i].status, 200);
            assert_string_equal(rs[i].body, want);
        }
    }
}

static void test_timeout_and_refused(void **state)
{
    struct fixture *f = *state;
    int sport;
    int sfd = silent_listener(&sport);
    char url[128], url2[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/slow", sport);
    snprintf(url2, sizeof url2, "http://127.0.0.1:%d/x", free_port()); /* nobody listens */
    int pending = 2;
    struct result a = {.pending = &pending, .loop = &f->loop}, b = a;
    uint64_t t0 = uv_hrtime();
    assert_int_equal(httpc_send(f->hc, &(struct httpc_request){.url = url, .timeout_ms = 300}, on_result, &a), 0);
    assert_int_equal(httpc_send(f->hc, &(struct httpc_request){.url = url2}, on_result, &b), 0);
    run_until_done(f, &pending);
    double secs = (double)(uv_hrtime() - t0) / 1e9;
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.status, 0);
    assert_true(strlen(a.error) > 0);
    assert_true(secs >= 0.25 && secs < 5);
    assert_int_equal(b.calls, 1);
    assert_int_equal(b.status, 0);
    assert_true(strlen(b.error) > 0);
    close(sfd);
}

static void test_cancel_on_free(void **state)
{
    struct fixture *f = *state;
    int sport;
    int sfd = silent_listener(&sport);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/slow", sport);
    struct result a = {0}, b = {0};
    assert_int_equal(httpc_send(f->hc, &(struct httpc_request){.url = url}, on_result, &a), 0);
    assert_int_equal(httpc_send(f->hc, &(struct httpc_request){.url = url}, on_result, &b), 0);
    for (int i = 0; i < 5; i++)
        uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(a.calls, 0);
    httpc_free(f->hc);
    f->hc = NULL;
    assert_int_equal(a.calls, 1);
    assert_int_equal(b.calls, 1);
    assert_int_equal(a.status, 0);
    assert_string_equal(a.error, "cancelled");
    close(sfd);
}

static void test_bad_request(void **state)
{
    struct fixture *f = *state;
    struct result a = {0};
    assert_int_equal(httpc_send(f->hc, &(struct httpc_request){.url = NULL}, on_result, &a), -1);
    assert_int_equal(a.calls, 0);
    assert_int_equal(httpc_inflight(f->hc), 0);
}

/* One request after another on one reused easy handle: each request's
 * method, body and headers are its own, none left over from the request
 * before (a GET after a POST sends no body, a POST after a PUT is a POST). */
static void test_methods_on_a_reused_handle(void **state)
{
    struct fixture *f = *state;
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/echo/m", f->port);
    const char *tok[] = {"X-Token: t2", NULL};
    struct {
        struct httpc_request req;
        const char *want;
    } steps[] = {
        {{.method = "POST", .url = url, .body = "a=1", .body_len = 3, .headers = tok}, "POST /echo/m token=t2 body=a=1"},
        {{.method = "GET", .url = url}, "GET /echo/m token=- body="},
        {{.method = "PUT", .url = url, .body = "b", .body_len = 1}, "PUT /echo/m token=- body=b"},
        {{.method = "POST", .url = url, .body = "c", .body_len = 1}, "POST /echo/m token=- body=c"},
        {{.method = "DELETE", .url = url}, "DELETE /echo/m token=- body="},
        {{.url = url, .headers = tok}, "GET /echo/m token=t2 body="},
    };
    for (size_t i = 0; i < sizeof steps / sizeof *steps; i++) {
        int pending = 1;
        struct result r = {.pending = &pending, .loop = &f->loop};
        assert_int_equal(httpc_send(f->hc, &steps[i].req, on_result, &r), 0);
        run_until_done(f, &pending);
        assert_int_equal(r.status, 200);
        assert_string_equal(r.body, steps[i].want);
    }
}

/* Proxies come from the environment, as curl reads them, looked up when the
 * client is made: a request for a host that does not resolve reaches the
 * proxy (this test's server, which answers the absolute-form request) even
 * after the variable is gone, and a host in no_proxy is reached directly
 * although the proxy named refuses connections. */
static void test_proxy_from_environment(void **state)
{
    struct fixture *f = *state;
    char proxy[64], url[128];
    snprintf(proxy, sizeof proxy, "http://127.0.0.1:%d", f->port);
    setenv("http_proxy", proxy, 1);
    struct httpc *via = httpc_new(&f->loop);
    snprintf(proxy, sizeof proxy, "http://127.0.0.1:%d", free_port()); /* nobody listens */
    setenv("http_proxy", proxy, 1);
    setenv("no_proxy", "127.0.0.1", 1);
    struct httpc *direct = httpc_new(&f->loop);
    unsetenv("http_proxy");
    unsetenv("no_proxy");
    int pending = 2;
    struct result a = {.pending = &pending, .loop = &f->loop}, b = a;
    assert_int_equal(
        httpc_send(via, &(struct httpc_request){.url = "http://obentchi-proxy-test.invalid/echo/p"}, on_result, &a), 0);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/echo/d", f->port);
    assert_int_equal(httpc_send(direct, &(struct httpc_request){.url = url}, on_result, &b), 0);
    run_until_done(f, &pending);
    assert_int_equal(a.status, 200);
    assert_string_equal(a.body, "GET /echo/p token=- body=");
    assert_int_equal(b.status, 200);
    assert_string_equal(b.body, "GET /echo/d token=- body=");
    httpc_free(via);
    httpc_free(direct);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_get_and_post, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keepalive_then_server_drops_idle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout_and_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_on_free, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_request, setup, teardown),
        cmocka_unit_test_setup_teardown(test_methods_on_a_reused_handle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_proxy_from_environment, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
