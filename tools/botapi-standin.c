/* botapi-standin: a fast Bot API stand-in for tools/bench-webhook (issue 6's
 * benchmark, not the tests: they use tests/standins/botapi.py, which answers
 * 429, 403, 400 and slow calls on demand and records every call).  One
 * process, one libuv loop, the server's own HTTP listener (protocol/http.c,
 * http-parser), keep-alive: on a 2-core machine the stand-in's CPU is taken
 * from the server's, and this costs less per call than nginx's static
 * answers (tools/bench-webhook prints the stand-in's cost per call).
 *
 *   POST /bot<token>/sendMessage          -> 200 the real API's Message shape
 *   POST /bot<token>/answerCallbackQuery  -> 200 {"ok":true,"result":true}
 *   anything else under /bot<token>/      -> 404 {"ok":false,"error_code":404,...}
 *   a wrong token                         -> 401 {"ok":false,"error_code":401,...}
 *   GET  /_stats                          -> {"count": calls answered 200}
 *
 *   botapi-standin --port 9200 [--bind 127.0.0.1] [--token 1:bench]
 */
#include <stdio.h>
#include <string.h>

#include "base/buf.h"
#include "http.h"
#include "standin.h"

static struct {
    struct buf prefix; /* "/bot<token>/" */
    unsigned long long count, not_found, unauthorized;
} st;

static void on_call(void *ud, const struct http_request *req, struct http_response *res)
{
    (void)ud;
    if (strncmp(req->path, st.prefix.p, st.prefix.len)) {
        st.unauthorized++;
        static const char msg[] = "{\"ok\":false,\"error_code\":401,\"description\":\"Unauthorized\"}";
        http_reply_json(res, 401, msg, sizeof msg - 1);
        return;
    }
    const char *method = req->path + st.prefix.len;
    if (!strcmp(method, "sendMessage")) {
        static const char msg[] = "{\"ok\":true,\"result\":{\"message_id\":1,\"from\":{\"id\":1,\"is_bot\":true,"
                                  "\"first_name\":\"bench\"},\"chat\":{\"id\":1,\"type\":\"private\"},"
                                  "\"date\":1700000000,\"text\":\"ok\"}}";
        st.count++;
        http_reply_json(res, 200, msg, sizeof msg - 1);
    } else if (!strcmp(method, "answerCallbackQuery")) {
        static const char msg[] = "{\"ok\":true,\"result\":true}";
        st.count++;
        http_reply_json(res, 200, msg, sizeof msg - 1);
    } else {
        static const char msg[] = "{\"ok\":false,\"error_code\":404,\"description\":\"Not Found\"}";
        st.not_found++;
        http_reply_json(res, 404, msg, sizeof msg - 1);
    }
}

static void on_stats(void *ud, const struct http_request *req, struct http_response *res)
{
    (void)ud;
    (void)req;
    char body[160];
    int n = snprintf(body, sizeof body, "{\"count\":%llu,\"not_found\":%llu,\"unauthorized\":%llu}", st.count,
                     st.not_found, st.unauthorized);
    http_reply_json(res, 200, body, (size_t)n);
}

static void routes(struct http_server *srv)
{
    http_route(srv, "POST", "/bot*", on_call, NULL);
    http_route(srv, "GET", "/_stats", on_stats, NULL);
}

int main(int argc, char **argv)
{
    struct standin_args a;
    int rc = standin_parse(argc, argv, "botapi-standin", "--token", "1:bench", &a);
    if (rc)
        return rc;
    buf_init(&st.prefix);
    buf_printf(&st.prefix, "/bot%s/", a.secret);
    rc = standin_serve("botapi-standin", &a, routes);
    buf_release(&st.prefix);
    return rc;
}
