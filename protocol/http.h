/* http.h: the HTTP/1.1 listener that other modules add routes to (webhooks,
 * provider callbacks, /metrics, /healthz, /readyz, the operator API).
 *
 * One listener (http-port, default 8080; http-bind), run on the loop given to
 * http_server_new() (the bot's loop, bot/app.h).  Requests are parsed by
 * Debian's http-parser; keep-alive and pipelining are honoured; limits on
 * header size, body size (http-max-body, default 1 MB) and idle time are
 * enforced with 431, 413 and a close.  Routes are matched on method and path
 * (exact, or a prefix when the pattern ends with '*'); an unknown path gets
 * 404, a known path with another method 405 (with Allow).
 *
 * Handlers run on the listener's loop thread and answer synchronously through
 * http_reply() (once, before returning).  Everything stays on that one
 * thread: no locks here. */
#ifndef PROTOCOL_HTTP_H
#define PROTOCOL_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/config.h"

struct uv_loop_s;

struct http_config {
    int64_t port;          /* http-port (0 = no listener) */
    char *bind;            /* http-bind, space-separated addresses */
    int64_t max_body;      /* http-max-body */
    int64_t max_header;    /* http-max-header (all header bytes of a request) */
    int64_t idle_timeout;  /* http-idle-timeout, seconds */
    int64_t max_conns;     /* http-maxclients */
};
/* Registers the http-* options; returns where their values land. */
struct http_config *http_options_register(struct cfg *c);

struct http_header {
    const char *name, *value; /* NUL-terminated; names as received */
};

struct http_request {
    const char *method;   /* "GET", "POST", ... */
    const char *path;     /* decoded path without the query, NUL-terminated */
    const char *query;    /* raw query string after '?', "" when none */
    const struct http_header *headers;
    int nheaders;
    const char *body;     /* NUL-terminated copy; body_len bytes */
    size_t body_len;
    const char *peer;     /* client address text */
    int64_t start_ns;     /* when the request's first byte arrived (monotonic) */
};

/* Case-insensitive header lookup; NULL when absent. */
const char *http_header(const struct http_request *r, const char *name);
/* The value of query parameter name (URL-decoded into out); 1 found, 0 not. */
int http_query_param(const struct http_request *r, const char *name, struct buf *out);

struct http_response; /* opaque: owned by the listener */

/* Answers the request: status, content type (NULL = none), body.  Extra
 * headers: NULL-terminated list of "Name: value" lines (may be NULL). */
void http_reply(struct http_response *res, int status, const char *content_type, const void *body, size_t len,
                const char *const *extra_headers);
/* JSON shortcuts: http_reply with application/json. */
void http_reply_json(struct http_response *res, int status, const char *json, size_t len);

typedef void http_handler_fn(void *ud, const struct http_request *req, struct http_response *res);

struct http_server;

/* Binds the listener (NULL with a message in err when it cannot).  The
 * loop must be run by the caller, on one thread. */
struct http_server *http_server_new(struct uv_loop_s *loop, const struct http_config *cfg, char *err, size_t errlen);
/* Adds a route.  method: "GET", "POST", ... or "*"; pattern "/metrics" or
 * "/api/v1/" with a trailing '*' (a prefix).  Routes are tried in the order
 * added.  Loop thread only. */
void http_route(struct http_server *s, const char *method, const char *pattern, http_handler_fn *fn, void *ud);
/* Closes the listener and every connection (handles close on the loop). */
void http_server_close(struct http_server *s);
void http_server_free(struct http_server *s);

/* Constant-time comparison of two byte strings (secrets, signatures):
 * 1 equal, 0 not; the time does not depend on where they differ. */
int http_secret_eq(const char *a, size_t alen, const char *b, size_t blen);

#endif
