/* httpc.c: the outbound HTTP client (httpc.h) on libcurl's multi interface,
 * driven by the bot's libuv loop as curl's multi-uv example does: curl tells
 * which sockets to watch (CURLMOPT_SOCKETFUNCTION -> uv_poll) and when to
 * wake it (CURLMOPT_TIMERFUNCTION -> uv_timer); the loop reports readiness
 * back with curl_multi_socket_action().  The multi handle keeps connections
 * open between requests (keep-alive, TLS sessions).
 *
 * Per request, as little as possible is built anew: finished requests go
 * to a spare list whole (the easy handle with its options; the request and
 * answer buffers with their capacity; the header list, kept as long as the
 * next request on it asks for the same header lines, which the Bot API
 * calls do), so a steady stream of calls allocates next to nothing here.
 * A reused handle is not curl_easy_reset(): the options every request
 * shares are set once, when the handle is made, and a request sets only
 * what differs (URL, timeout, method and body, headers).  A reset frees
 * and re-initialises every one of curl's ~90 string options, and curl
 * reads the proxy variables from the environment (five getenv()s) for a
 * request that names no proxy: together about 7,500 of the ~95,000
 * instructions a Bot API call cost the sender (callgrind).  So the proxy
 * is looked up once, at httpc_new(), as curl would, and named each time.
 *
 * Sockets stay watched between requests.  When a transfer ends, curl keeps
 * the connection and says CURL_POLL_REMOVE; the next transfer on it asks to
 * watch the same socket again.  Closing the uv_poll at REMOVE and opening a
 * new one at the next request cost five system calls a request (libuv probes
 * a new fd with epoll ADD and DEL, sets it non-blocking, then ADD and DEL
 * again): about a tenth of a payout's CPU.  So a socket's uv_poll lives as
 * long as the socket: at REMOVE it goes idle (still watched for readable,
 * found again by fd), and it is closed only when curl closes the socket,
 * which curl does through our CURLOPT_CLOSESOCKETFUNCTION.  An idle socket
 * that turns readable (the server closed it, or sent what nobody asked) is
 * no longer watched: curl finds out when it next picks the connection.
 *
 * Callbacks are only ever called from our libuv callbacks (or httpc_free),
 * never from inside a curl callback, so a callback may start new requests. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <curl/curl.h>
#include <uv.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "httpc.h"

#define HTTPC_DEFAULT_TIMEOUT_MS 10000
#define HTTPC_SPARE 256 /* finished requests kept for reuse */

struct hreq {
    struct httpc *h;
    CURL *easy;
    struct curl_slist *headers; /* "Expect:" then the request's lines */
    struct buf body;            /* the answer */
    struct buf post;            /* the request body (CURLOPT_POSTFIELDS points here) */
    const char *proxy;          /* the CURLOPT_PROXY the handle has (one of h's) */
    int custom;                 /* CURLOPT_CUSTOMREQUEST is set */
    char errbuf[CURL_ERROR_SIZE];
    httpc_cb *cb;
    void *ud;
    struct hreq *prev, *next; /* in flight */
};

/* One socket curl opened, watched while curl wants it (idle between the
 * transfers of a kept connection). */
struct hsock {
    uv_poll_t poll;
    struct httpc *h;
    curl_socket_t fd;
    int idle;   /* curl said REMOVE: the connection waits in its cache */
    int events; /* UV_READABLE | UV_WRITABLE being watched; 0: stopped */
};

struct httpc {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;
    struct hreq *inflight;
    int ninflight;
    struct hsock **byfd; /* fd -> its socket (idle ones included): every one we watch */
    int nbyfd;
    struct hreq *spare[HTTPC_SPARE]; /* finished, kept whole for reuse */
    int nspare;
    char *proxy_http, *proxy_https, *noproxy; /* from the environment, read at httpc_new() */
    int open_handles; /* timer + polls: the struct goes when the last closes */
    int freeing;
};

/* The environment's proxies, as curl looks them up for a request that
 * names none: <scheme>_proxy (for https also HTTPS_PROXY; curl ignores
 * HTTP_PROXY), then all_proxy, ALL_PROXY; no_proxy, NO_PROXY.  "" where
 * none is set: curl then uses no proxy and reads no variable. */
static char *env_first(const char *a, const char *b, const char *c, const char *d)
{
    const char *names[] = {a, b, c, d};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        const char *v = names[i] ? getenv(names[i]) : NULL;
        if (v)
            return xstrdup(v);
    }
    return xstrdup("");
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

static void handle_closed(struct httpc *h)
{
    if (--h->open_handles == 0 && h->freeing) {
        xfree(h->proxy_http);
        xfree(h->proxy_https);
        xfree(h->noproxy);
        xfree(h->byfd);
        xfree(h);
    }
}

/* ---- finishing requests -------------------------------------------------- */

static void hreq_destroy(struct hreq *r)
{
    if (r->easy)
        curl_easy_cleanup(r->easy);
    curl_slist_free_all(r->headers);
    buf_release(&r->body);
    buf_release(&r->post);
    xfree(r);
}

static void hreq_release(struct hreq *r, int reuse)
{
    struct httpc *h = r->h;
    if (r->prev)
        r->prev->next = r->next;
    else
        h->inflight = r->next;
    if (r->next)
        r->next->prev = r->prev;
    r->prev = r->next = NULL;
    h->ninflight--;
    curl_multi_remove_handle(h->multi, r->easy);
    if (reuse && !h->freeing && h->nspare < HTTPC_SPARE) {
        buf_reset(&r->body);
        buf_reset(&r->post);
        r->cb = NULL;
        r->ud = NULL;
        h->spare[h->nspare++] = r;
    } else {
        hreq_destroy(r);
    }
}

/* 1 when r's header list is "Expect:" followed by exactly lines. */
static int headers_same(const struct curl_slist *l, const char *const *lines)
{
    if (!l || strcmp(l->data, "Expect:"))
        return 0;
    l = l->next;
    for (int i = 0; lines && lines[i]; i++, l = l->next)
        if (!l || strcmp(l->data, lines[i]))
            return 0;
    return l == NULL;
}

static void hreq_finish(struct hreq *r, CURLcode code)
{
    struct httpc_result res = {0};
    long status = 0;
    double total = 0;
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(r->easy, CURLINFO_TOTAL_TIME, &total);
    if (code != CURLE_OK)
        status = 0;
    res.status = (int)status;
    res.error = NULL;
    if (status == 0)
        res.error = r->errbuf[0] ? r->errbuf : curl_easy_strerror(code);
    if (!r->body.p)
        buf_grow(&r->body, 0);
    res.body = r->body.p;
    res.body_len = r->body.len;
    res.total_s = total;
    r->cb(r->ud, &res);
    hreq_release(r, code == CURLE_OK);
}

static void check_done(struct httpc *h)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(h->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        struct hreq *r = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        hreq_finish(r, m->data.result);
    }
}

/* ---- curl <-> libuv ------------------------------------------------------ */

static void on_poll(uv_poll_t *p, int status, int events)
{
    struct hsock *s = p->data;
    struct httpc *h = s->h;
    if (s->idle) { /* not curl's now: stop until it asks again */
        uv_poll_stop(&s->poll);
        s->events = 0;
        return;
    }
    int flags = 0;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    int running;
    curl_multi_socket_action(h->multi, s->fd, flags, &running);
    check_done(h);
}

static void on_poll_closed(uv_handle_t *hd);

static void on_timer(uv_timer_t *t)
{
    struct httpc *h = t->data;
    int running;
    curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(h);
}

static struct hsock *sock_of(const struct httpc *h, curl_socket_t fd)
{
    return fd >= 0 && fd < h->nbyfd ? h->byfd[fd] : NULL;
}

static void sock_close(struct httpc *h, struct hsock *s)
{
    h->byfd[s->fd] = NULL;
    uv_poll_stop(&s->poll);
    uv_close((uv_handle_t *)&s->poll, on_poll_closed);
}

static void on_poll_closed(uv_handle_t *hd)
{
    struct hsock *s = hd->data;
    struct httpc *h = s->h;
    xfree(s);
    handle_closed(h);
}

static int sock_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    struct httpc *h = userp;
    struct hsock *s = socketp;
    (void)easy;
    if (!s)
        s = sock_of(h, fd);
    if (what == CURL_POLL_REMOVE) {
        if (s) { /* idle: keep watching for readable only */
            s->idle = 1;
            if (s->events != UV_READABLE) {
                uv_poll_start(&s->poll, UV_READABLE, on_poll);
                s->events = UV_READABLE;
            }
            curl_multi_assign(h->multi, fd, NULL);
        }
        return 0;
    }
    if (s && s->idle) {
        s->idle = 0;
        curl_multi_assign(h->multi, fd, s);
    }
    if (!s) {
        if (fd < 0)
            return -1;
        if (fd >= h->nbyfd) {
            int n = h->nbyfd ? h->nbyfd : 64;
            while (n <= fd)
                n *= 2;
            h->byfd = xrealloc(h->byfd, sizeof *h->byfd * (size_t)n);
            memset(h->byfd + h->nbyfd, 0, sizeof *h->byfd * (size_t)(n - h->nbyfd));
            h->nbyfd = n;
        }
        s = xcalloc(1, sizeof *s);
        s->h = h;
        s->fd = fd;
        if (uv_poll_init_socket(h->loop, &s->poll, fd) < 0) {
            xfree(s);
            return -1;
        }
        s->poll.data = s;
        h->open_handles++;
        h->byfd[fd] = s;
        curl_multi_assign(h->multi, fd, s);
    }
    int events = 0;
    if (what & CURL_POLL_IN)
        events |= UV_READABLE;
    if (what & CURL_POLL_OUT)
        events |= UV_WRITABLE;
    if (events != s->events) { /* unchanged: nothing to tell epoll */
        uv_poll_start(&s->poll, events, on_poll);
        s->events = events;
    }
    return 0;
}

/* curl closes a socket (a connection dropped or evicted from its cache):
 * its uv_poll goes first, so that the fd number, free again, can be watched
 * anew at once. */
static int close_cb(void *userp, curl_socket_t fd)
{
    struct httpc *h = userp;
    struct hsock *s = sock_of(h, fd);
    if (s)
        sock_close(h, s);
    return close(fd);
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    struct httpc *h = userp;
    (void)multi;
    if (timeout_ms < 0)
        uv_timer_stop(&h->timer);
    else /* 0: as soon as the loop turns (never call curl from here) */
        uv_timer_start(&h->timer, on_timer, (uint64_t)timeout_ms, 0);
    return 0;
}

static size_t write_cb(char *p, size_t size, size_t n, void *ud)
{
    struct hreq *r = ud;
    buf_append(&r->body, p, size * n);
    return size * n;
}

/* A new easy handle for r, with the options every request shares. */
static CURL *hreq_easy(struct httpc *h, struct hreq *r)
{
    CURL *e = r->easy = curl_easy_init();
    if (!e)
        return NULL;
    r->h = h;
    curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)r);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, close_cb);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, h);
    curl_easy_setopt(e, CURLOPT_NOPROXY, h->noproxy);
    /* HTTP/1.1, kept-alive connections, one request each at a time: what the
     * tests and their stand-ins exercise.  libcurl would otherwise offer
     * HTTP/2 over TLS, untested here: the one way to try HTTP/2 on loopback
     * (prior knowledge, h2c) fails every reused connection in Debian 12's
     * libcurl 7.88 ("Error in the HTTP2 framing layer", curl issue 10634,
     * fixed in 8.0) */
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    return e;
}

/* ---- API ----------------------------------------------------------------- */

struct httpc *httpc_new(struct uv_loop_s *loop)
{
    pthread_once(&curl_once, curl_init_once);
    struct httpc *h = xcalloc(1, sizeof *h);
    h->loop = loop;
    h->multi = curl_multi_init();
    uv_timer_init(loop, &h->timer);
    h->timer.data = h;
    h->open_handles = 1;
    h->proxy_http = env_first("http_proxy", NULL, "all_proxy", "ALL_PROXY");
    h->proxy_https = env_first("https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY");
    h->noproxy = env_first("no_proxy", "NO_PROXY", NULL, NULL);
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
    /* connections kept per host: enough for a pool of workers */
    curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, 256L);
    return h;
}

int httpc_send(struct httpc *h, const struct httpc_request *req, httpc_cb *cb, void *ud)
{
    if (h->freeing || !req || !req->url || !cb)
        return -1;
    struct hreq *r = h->nspare ? h->spare[--h->nspare] : xcalloc(1, sizeof *r);
    if (!r->easy && !hreq_easy(h, r)) {
        hreq_destroy(r);
        return -1;
    }
    r->cb = cb;
    r->ud = ud;
    r->errbuf[0] = '\0';
    CURL *e = r->easy;
    curl_easy_setopt(e, CURLOPT_URL, req->url);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(req->timeout_ms > 0 ? req->timeout_ms : HTTPC_DEFAULT_TIMEOUT_MS));
    const char *proxy = strncasecmp(req->url, "https:", 6) ? h->proxy_http : h->proxy_https;
    if (r->proxy != proxy) {
        curl_easy_setopt(e, CURLOPT_PROXY, proxy);
        r->proxy = proxy;
    }
    const char *method = req->method ? req->method : "GET";
    int custom = 0;
    if (req->body || strcmp(method, "GET")) {
        /* the body is copied into r's own buffer (capacity kept across
         * reuses), which lives until the request ends */
        buf_reset(&r->post);
        if (req->body && req->body_len)
            buf_append(&r->post, req->body, req->body_len);
        if (!r->post.p)
            buf_grow(&r->post, 0);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->post.len);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->post.p);
        custom = strcmp(method, "POST") != 0;
    } else {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    }
    if (custom || r->custom)
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, custom ? method : NULL);
    r->custom = custom;
    /* no "Expect: 100-continue" round trip for bodies over 1 KB */
    if (!headers_same(r->headers, req->headers)) {
        curl_slist_free_all(r->headers);
        r->headers = curl_slist_append(NULL, "Expect:");
        for (int i = 0; req->headers && req->headers[i]; i++)
            r->headers = curl_slist_append(r->headers, req->headers[i]);
    }
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers);
    r->next = h->inflight;
    if (h->inflight)
        h->inflight->prev = r;
    h->inflight = r;
    h->ninflight++;
    if (curl_multi_add_handle(h->multi, e) != CURLM_OK) {
        r->cb = NULL;
        hreq_release(r, 0);
        return -1;
    }
    return 0;
}

int httpc_inflight(const struct httpc *h) { return h->ninflight; }

static void on_timer_closed(uv_handle_t *hd) { handle_closed(hd->data); }

void httpc_free(struct httpc *h)
{
    if (!h)
        return;
    h->freeing = 1;
    /* every request in flight ends with "cancelled" */
    while (h->inflight) {
        struct hreq *r = h->inflight;
        struct httpc_result res = {.status = 0, .error = "cancelled", .body = "", .body_len = 0};
        r->cb(r->ud, &res);
        hreq_release(r, 0);
    }
    for (int i = 0; i < h->nspare; i++)
        hreq_destroy(h->spare[i]);
    h->nspare = 0;
    /* stop watching first (the polls leave epoll now), then let curl close
     * its cached connections without telling us */
    for (int fd = 0; fd < h->nbyfd; fd++)
        if (h->byfd[fd])
            sock_close(h, h->byfd[fd]);
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, NULL);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, NULL);
    curl_multi_cleanup(h->multi);
    h->multi = NULL;
    uv_timer_stop(&h->timer);
    uv_close((uv_handle_t *)&h->timer, on_timer_closed);
    /* h itself goes when the last handle's close callback ran (loop turns) */
}
