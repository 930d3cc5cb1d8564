/* httpc.h: the outbound HTTP client (Bot API, payout and payment providers):
 * libcurl's multi interface driven by the bot's libuv loop (curl's socket and
 * timer callbacks), reused connections, no blocking call anywhere.
 *
 * Loop thread only.  Every request ends in exactly one call of its callback,
 * on the loop thread, also when the client is freed first (status 0,
 * error "cancelled"). */
#ifndef BOT_HTTPC_H
#define BOT_HTTPC_H

#include <stddef.h>
#include <stdint.h>

struct uv_loop_s;
struct httpc;

struct httpc_result {
    int status;          /* HTTP status; 0 when no answer (network error, timeout) */
    const char *error;   /* curl's message when status == 0, else NULL */
    const char *body;    /* NUL-terminated */
    size_t body_len;
    double total_s;      /* time taken */
};
typedef void httpc_cb(void *ud, const struct httpc_result *r);

struct httpc_request {
    const char *method;                 /* "GET", "POST" */
    const char *url;
    const char *const *headers;         /* NULL-terminated "Name: value" lines, or NULL */
    const char *body;                   /* may be NULL */
    size_t body_len;
    int64_t timeout_ms;                 /* 0 = the client's default (10 s) */
};

struct httpc *httpc_new(struct uv_loop_s *loop);
/* Starts a request; cb(ud, result) runs later on the loop.  0, or -1 when it
 * cannot even start (cb is not called then). */
int httpc_send(struct httpc *h, const struct httpc_request *req, httpc_cb *cb, void *ud);
/* Requests in flight. */
int httpc_inflight(const struct httpc *h);
void httpc_free(struct httpc *h);

#endif
