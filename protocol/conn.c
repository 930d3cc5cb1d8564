/* conn.c: one client connection on its worker's loop: reading and parsing
 * requests, running them, and writing replies, with the limits that keep one
 * client from hurting the others (query buffer, output buffer classes, idle
 * timeout).
 *
 * Output: handlers append to c->obuf.  After a batch of requests (everything
 * one read delivered: pipelining costs one write, not one per command) the
 * buffer is offered to the kernel with uv_try_write; what the kernel does not
 * take moves to c->wbuf and goes out through uv_write, while new replies keep
 * collecting in c->obuf. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "acl.h"
#include "base/alloc.h"
#include "base/clock.h"
#include "base/err.h"
#include "base/log.h"
#include "sendbatch.h"
#include "server_int.h"

#define READ_CHUNK (16 * 1024)
#define OBUF_CHECK_MIN (64 * 1024) /* below this no limit is worth checking per command */

static void on_close(uv_handle_t *h);

struct client *client_new(struct worker *w)
{
    struct server *srv = w->srv;
    struct client *c = xcalloc(1, sizeof *c);
    c->w = w;
    c->id = atomic_fetch_add(&srv->next_client_id, 1) + 1;
    c->proto = 2;
    c->authed = acl_default_nopass();
    c->ctime_ms = c->last_ms = clock_wall_ms();
    c->fd = -1;
    struct resp_limits lim = {srv->cfg->proto_max_bulk_len, srv->cfg->max_multibulk, 64 * 1024};
    resp_req_reader_init(&c->rd, &lim);
    uv_tcp_init(&w->loop, &c->tcp);
    c->tcp.data = c;
    return c;
}

static void unregister(struct client *c)
{
    struct server *srv = c->w->srv;
    pthread_mutex_lock(&srv->clients_lock);
    if (c->prev)
        c->prev->next = c->next;
    else if (srv->clients == c)
        srv->clients = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    pthread_mutex_unlock(&srv->clients_lock);
    struct worker *w = c->w;
    if (c->wprev)
        c->wprev->wnext = c->wnext;
    else if (w->clients == c)
        w->clients = c->wnext;
    if (c->wnext)
        c->wnext->wprev = c->wprev;
    c->wprev = c->wnext = NULL;
    kt_del(&w->byid, &c->idnode);
}

void client_register(struct client *c)
{
    struct server *srv = c->w->srv;
    struct worker *w = c->w;
    pthread_mutex_lock(&srv->clients_lock);
    c->next = srv->clients;
    if (srv->clients)
        srv->clients->prev = c;
    srv->clients = c;
    pthread_mutex_unlock(&srv->clients_lock);
    c->wnext = w->clients;
    if (w->clients)
        w->clients->wprev = c;
    w->clients = c;
    c->idnode = (struct kt_node){.db = 0, .key = (const char *)&c->id, .len = sizeof c->id};
    kt_add(&w->byid, &c->idnode);
    w->nclients++;
}

void client_close(struct client *c)
{
    if (c->flags & CL_CLOSING)
        return;
    struct server *srv = c->w->srv;
    c->flags |= CL_CLOSING;
    if (srv->hooks_internal.on_close)
        srv->hooks_internal.on_close(c);
    if (c->flags & CL_MONITOR)
        atomic_fetch_sub(&srv->nmonitors, 1);
    if (c->fd >= 0) { /* registered (accepted and counted) */
        unregister(c);
        atomic_fetch_sub(&srv->nclients, 1);
        c->w->nclients--;
    }
    uv_close((uv_handle_t *)&c->tcp, on_close);
}

static void on_close(uv_handle_t *h)
{
    struct client *c = h->data;
    if (c->flush_queued) { /* closed with the loop stopping before its check */
        struct client **pp = &c->w->flushq;
        while (*pp && *pp != c)
            pp = &(*pp)->flush_next;
        if (*pp)
            *pp = c->flush_next;
    }
    resp_req_reader_release(&c->rd);
    buf_release(&c->qbuf);
    buf_release(&c->obuf);
    buf_release(&c->wbuf);
    xfree(c->argv);
    xfree(c->name);
    xfree(c);
}

static int client_class(const struct client *c)
{
    if (c->flags & CL_REPLICA)
        return OBL_REPLICA;
    if (c->flags & CL_PUBSUB)
        return OBL_PUBSUB;
    return OBL_NORMAL;
}

/* Redis's checkClientOutputBufferLimits: a hard limit closes at once; the
 * soft limit closes a client that stayed over it for soft_seconds. */
static int over_output_limit(struct client *c)
{
    const struct obuf_limit *l = &c->w->srv->cfg->obuf_limits[client_class(c)];
    size_t pending = c->obuf.len + (c->wbuf.len - c->wpos);
    if (l->hard && pending >= (size_t)l->hard)
        return 1;
    if (l->soft && pending >= (size_t)l->soft) {
        int64_t now = clock_wall_ms();
        if (!c->obuf_soft_since_ms)
            c->obuf_soft_since_ms = now;
        else if (now - c->obuf_soft_since_ms >= l->soft_seconds * 1000)
            return 1;
    } else {
        c->obuf_soft_since_ms = 0;
    }
    return 0;
}

/* n bytes of c's replies went to the kernel. */
static void count_sent(struct client *c, uint64_t n)
{
    c->net_out += n;
    STAT_ADD(c->w->net_out, n);
}

static void on_write(uv_write_t *req, int status)
{
    struct client *c = req->data;
    c->writing = 0;
    if (c->flags & CL_CLOSING)
        return;
    if (status < 0) {
        client_close(c);
        return;
    }
    count_sent(c, c->wbuf.len - c->wpos);
    buf_recycle(&c->wbuf);
    c->wpos = 0;
    client_flush(c);
}

static void close_over_limit(struct client *c)
{
    log_warn("client closed for overcoming of output buffer limits", "id=%llu addr=%s pending=%zu",
             (unsigned long long)c->id, c->addr, c->obuf.len + c->wbuf.len - c->wpos);
    client_close(c);
}

/* Whether c's replies may go to the kernel now; closes c when they must not
 * (over its output limit) or when it was only waiting for them to go. */
static int flush_ready(struct client *c)
{
    if (c->flags & CL_CLOSING)
        return 0;
    /* CLIENT REPLY OFF/SKIP: the dispatcher cuts replies per command */
    if (over_output_limit(c)) {
        close_over_limit(c);
        return 0;
    }
    if (c->writing)
        return 0;
    if (c->obuf.len == 0) {
        if (c->flags & (CL_CLOSE_AFTER_REPLY | CL_CLOSE_ASAP))
            client_close(c);
        return 0;
    }
    return 1;
}

/* What the kernel took of c->obuf (n bytes, or a libuv/-errno error): what
 * it did not take goes out through uv_write. */
static void client_sent(struct client *c, ssize_t n)
{
    if (c->flags & CL_CLOSING)
        return;
    if (n == (ssize_t)c->obuf.len) {
        count_sent(c, (uint64_t)n);
        buf_recycle(&c->obuf);
        if (c->flags & (CL_CLOSE_AFTER_REPLY | CL_CLOSE_ASAP))
            client_close(c);
        return;
    }
    if (n < 0 && n != UV_EAGAIN) {
        client_close(c);
        return;
    }
    if (n < 0)
        n = 0;
    count_sent(c, (uint64_t)n);
    struct buf t = c->wbuf;
    c->wbuf = c->obuf;
    c->obuf = t;
    c->wpos = (size_t)n;
    uv_buf_t rest = uv_buf_init(c->wbuf.p + n, (unsigned)(c->wbuf.len - (size_t)n));
    c->wreq.data = c;
    c->writing = 1;
    if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &rest, 1, on_write) < 0) {
        c->writing = 0;
        client_close(c);
    }
}

void client_flush(struct client *c)
{
    if (!flush_ready(c))
        return;
    uv_buf_t b = uv_buf_init(c->obuf.p, (unsigned)c->obuf.len);
    client_sent(c, uv_try_write((uv_stream_t *)&c->tcp, &b, 1));
}

/* Until a client authenticates, Redis 7 accepts at most 10 arguments of at
 * most 16 KiB each, so that an anonymous peer cannot make us buffer much. */
#define UNAUTH_MAX_ARGS 10
#define UNAUTH_MAX_BULK 16384

static void set_reader_limits(struct client *c)
{
    const struct server_config *sc = c->w->srv->cfg;
    c->rd.lim.max_bulk = c->authed ? sc->proto_max_bulk_len : UNAUTH_MAX_BULK;
    c->rd.lim.max_multibulk = c->authed ? sc->max_multibulk : UNAUTH_MAX_ARGS;
}

static void protocol_error(struct client *c)
{
    char msg[256];
    const char *what = c->rd.err;
    if (!c->authed && !strcmp(what, "invalid multibulk length"))
        what = "unauthenticated multibulk length";
    else if (!c->authed && !strcmp(what, "invalid bulk length"))
        what = "unauthenticated bulk length";
    snprintf(msg, sizeof msg, "ERR Protocol error: %s", what);
    resp_w_error(&c->obuf, msg);
    c->flags |= CL_CLOSE_AFTER_REPLY;
    log_verbose("protocol error from client", "id=%llu addr=%s err=\"%s\"", (unsigned long long)c->id, c->addr,
                c->rd.err);
}

void client_process_input(struct client *c)
{
    while (c->qpos < c->qbuf.len) {
        if (c->flags & (CL_CLOSE_AFTER_REPLY | CL_CLOSE_ASAP | CL_CLOSING | CL_PAUSED | CL_BLOCKED))
            break;
        int64_t argc;
        size_t used;
        const char *base = c->qbuf.p + c->qpos;
        if (!c->authed || c->rd.lim.max_bulk != c->w->srv->cfg->proto_max_bulk_len)
            set_reader_limits(c); /* AUTH may have just succeeded, or CONFIG SET changed a limit */
        int rc = resp_req_read(&c->rd, base, c->qbuf.len - c->qpos, &argc, &used);
        if (rc == ERR_AGAIN)
            break;
        if (rc < 0) {
            protocol_error(c);
            break;
        }
        if (argc > 0) {
            if (argc > c->argv_cap) {
                c->argv_cap = (int)argc;
                c->argv = xrealloc(c->argv, sizeof *c->argv * (size_t)argc);
            }
            for (int64_t i = 0; i < argc; i++) {
                size_t len;
                const char *p = resp_req_arg(&c->rd, base, (int)i, &len);
                c->argv[i] = (struct eng_str){p, len};
            }
            if (dispatch_request(c, (int)argc, c->argv))
                break; /* paused: the request stays in the buffer */
            /* Checked after every command, as Redis does after every reply:
             * a pipeline of big replies to a client that does not read must
             * not grow the buffer past the limit before the batch ends. */
            if (c->obuf.len > OBUF_CHECK_MIN && over_output_limit(c)) {
                c->qpos += used;
                close_over_limit(c);
                break;
            }
        }
        c->qpos += used;
    }
    /* Compact: move the unparsed tail to the front. */
    if (c->qpos == c->qbuf.len) {
        c->qpos = 0;
        buf_recycle(&c->qbuf);
    } else if (c->qpos > 0 && !(c->flags & CL_PAUSED)) {
        buf_consume(&c->qbuf, c->qpos);
        c->qpos = 0;
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    struct client *c = h->data;
    if (c->qbuf.cap - c->qbuf.len < READ_CHUNK + 1)
        buf_grow(&c->qbuf, READ_CHUNK);
    b->base = c->qbuf.p + c->qbuf.len;
    b->len = c->qbuf.cap - c->qbuf.len - 1;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    struct client *c = s->data;
    if (nread < 0) {
        client_close(c);
        return;
    }
    if (nread == 0)
        return;
    c->qbuf.len += (size_t)nread;
    c->qbuf.p[c->qbuf.len] = '\0';
    c->net_in += (uint64_t)nread;
    STAT_ADD(c->w->net_in, (uint64_t)nread);
    c->last_ms = clock_wall_ms();
    if (c->flags & (CL_CLOSE_AFTER_REPLY | CL_CLOSE_ASAP))
        return; /* discard input of a client on its way out */
    client_process_input(c);
    int64_t limit = c->w->srv->cfg->client_query_buffer_limit;
    if (limit > 0 && (int64_t)(c->qbuf.len - c->qpos) > limit) {
        log_warn("closing client that reached max query buffer length", "id=%llu addr=%s qbuf=%zu",
                 (unsigned long long)c->id, c->addr, c->qbuf.len - c->qpos);
        client_close(c);
        return;
    }
    /* on_read runs only in the poll phase, so self_check flushes the queue
     * before the closing phase can free a client that is on it */
    if (!c->flush_queued) {
        c->flush_queued = 1;
        c->flush_next = c->w->flushq;
        c->w->flushq = c;
    }
}

static void on_batch_sent(void *ud, ssize_t res) { client_sent(ud, res); }

/* The replies of every client that read in this loop turn: one alone goes
 * out by itself, two or more in one system call (sendbatch.h) where
 * io_uring can be had. */
void client_flush_queued(struct worker *w)
{
    struct client *c = w->flushq;
    w->flushq = NULL;
    struct sendbatch *b = sendbatch_for_turn(&w->batch, &w->nobatch, c && c->flush_next);
    while (c) {
        struct client *next = c->flush_next;
        c->flush_queued = 0;
        if (!b || c->fd < 0) {
            client_flush(c);
        } else if (flush_ready(c)) {
            if (sendbatch_add(b, c->fd, c->obuf.p, c->obuf.len, c) < 0) {
                sendbatch_run(b, on_batch_sent); /* full: send these first */
                if (sendbatch_add(b, c->fd, c->obuf.p, c->obuf.len, c) < 0)
                    client_sent(c, UV_EAGAIN); /* the batch broke: uv_write */
            }
        }
        c = next;
    }
    if (b)
        sendbatch_run(b, on_batch_sent);
}

static void fmt_addr(const struct sockaddr_storage *ss, char *out, size_t cap)
{
    char ip[64] = "?";
    int port = 0;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        uv_ip4_name(a, ip, sizeof ip);
        port = ntohs(a->sin_port);
        snprintf(out, cap, "%s:%d", ip, port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        uv_ip6_name(a, ip, sizeof ip);
        port = ntohs(a->sin6_port);
        snprintf(out, cap, "%s:%d", ip, port);
    } else {
        snprintf(out, cap, "?:0");
    }
}

/* Redis's connIsLocal(): the peer is on the loopback interface. */
static int peer_is_loopback(const struct sockaddr_storage *ss)
{
    static const unsigned char v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (ss->ss_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
    if (ss->ss_family == AF_INET6) {
        const unsigned char *a = ((const struct sockaddr_in6 *)ss)->sin6_addr.s6_addr;
        return IN6_IS_ADDR_LOOPBACK((const struct in6_addr *)a) || (!memcmp(a, v4mapped, 12) && a[12] == 127);
    }
    return 0;
}

/* protected-mode: no password for the default user, so only loopback peers
 * get in; the others get Redis's -DENIED and the connection closes. */
static int refused_by_protected_mode(struct client *c, const struct sockaddr_storage *peer)
{
    static const char msg[] =
        "-DENIED Redis is running in protected mode because protected mode is enabled and no password is set "
        "for the default user. In this mode connections are only accepted from the loopback interface. If you "
        "want to connect from external computers to Redis you may adopt one of the following solutions: 1) Just "
        "disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface "
        "by connecting to Redis from the same host the server is running, however MAKE SURE Redis is not "
        "publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) "
        "Alternatively you can just disable the protected mode by editing the Redis configuration file, and "
        "setting the protected mode option to 'no', and then restarting the server. 3) If you started the server "
        "manually just for testing, restart it with the '--protected-mode no' option. 4) Set up an "
        "authentication password for the default user. NOTE: You only need to do one of the above things in "
        "order for the server to start accepting connections from the outside.\r\n";
    if (!c->w->srv->cfg->protected_mode || !acl_default_nopass() || peer_is_loopback(peer))
        return 0;
    uv_buf_t b = uv_buf_init((char *)msg, sizeof msg - 1);
    uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    log_verbose("connection refused by protected mode", "addr=%s", c->addr);
    return 1;
}

void conn_accept(uv_stream_t *listener, int status)
{
    struct worker *w = listener->data;
    struct server *srv = w->srv;
    if (status < 0)
        return;
    struct client *c = client_new(w);
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) < 0) {
        client_close(c);
        return;
    }
    STAT_ADD(w->conns_received, 1);
    if (atomic_fetch_add(&srv->nclients, 1) >= srv->cfg->maxclients) {
        atomic_fetch_sub(&srv->nclients, 1);
        static const char msg[] = "-ERR max number of clients reached\r\n";
        uv_buf_t b = uv_buf_init((char *)msg, sizeof msg - 1);
        uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
        STAT_ADD(w->rejected_conns, 1);
        client_close(c);
        return;
    }
    uv_os_fd_t fd;
    uv_fileno((uv_handle_t *)&c->tcp, &fd);
    c->fd = fd;
    struct sockaddr_storage ss;
    int len = sizeof ss;
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0)
        fmt_addr(&ss, c->addr, sizeof c->addr);
    else
        ss.ss_family = AF_UNSPEC;
    if (refused_by_protected_mode(c, &ss)) {
        atomic_fetch_sub(&srv->nclients, 1);
        STAT_ADD(w->rejected_conns, 1);
        c->fd = -1; /* never registered: client_close must not unregister nor count it out again */
        client_close(c);
        return;
    }
    len = sizeof ss;
    if (uv_tcp_getsockname(&c->tcp, (struct sockaddr *)&ss, &len) == 0)
        fmt_addr(&ss, c->laddr, sizeof c->laddr);
    uv_tcp_nodelay(&c->tcp, 1);
    if (srv->cfg->tcp_keepalive > 0)
        uv_tcp_keepalive(&c->tcp, 1, (unsigned)srv->cfg->tcp_keepalive);
    client_register(c);
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0)
        client_close(c);
}
