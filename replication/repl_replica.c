/* repl_replica.c: the replica side.  REPLICAOF/SLAVEOF (and NO ONE) change
 * the role at once, under the replication lock, so that INFO, ROLE and
 * -READONLY follow immediately; the replication thread then makes the link
 * follow.  The link is a state machine, one function per state, driven by
 * the bytes the master sends (Valkey's replica handshake):
 *
 *   CONNECT -> CONNECTING -> RECV_PONG -> [RECV_AUTH] -> RECV_PORT ->
 *   [RECV_IP] -> RECV_CAPA -> RECV_PSYNC -> TRANSFER -> CONNECTED
 *                                        \-> (+CONTINUE) CONNECTED
 *
 * Any failure closes the link; the cron reconnects a second later and asks
 * to continue from our replication id and offset (PSYNC id offset+1), so a
 * short cut costs no full copy.  TRANSFER loads the master's snapshot as it
 * arrives (flush, then every frame through the checked reader, restore.c)
 * with LOADING answered meanwhile.  CONNECTED applies the stream through the
 * "master client" (server_pseudo_*), counts its bytes into our offset and
 * relays them unchanged into our own backlog, for our own replicas.  A
 * transaction is relayed once its EXEC arrived: a cut in the middle of one
 * discards it and the offset stays before its MULTI. */
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/err.h"
#include "base/log.h"
#include "base/num.h"
#include "repl_int.h"
#include "snap_int.h"

struct repl_link {
    struct repl *r;
    uv_tcp_t tcp;
    uv_connect_t creq;
    int state, closing;
    char host[256];
    int64_t port;
    struct buf in;        /* bytes received, not yet used */
    int64_t last_io_ms;
    /* TRANSFER */
    char sync_id[REPL_ID_LEN + 1];
    uint64_t sync_off;
    int sync_db;
    int got_header, eof_format, chk_on;
    char mark[REPL_MARK_LEN + 1];
    uint64_t bulk_left, read_bytes;
    struct snap_check chk;
    int64_t t0_us;
    /* CONNECTED */
    struct resp_req_reader rd;
    struct buf txn;       /* a transaction's bytes until its EXEC */
    int in_txn;
    struct buf reply;     /* the master client's reply, checked for errors */
    int64_t last_err_log_ms;
};

static void link_drop(struct repl *r, struct repl_link *l, const char *why);

static int is_word(const struct eng_str *s, const char *w)
{
    size_t n = strlen(w);
    return s->n == n && !strncasecmp(s->p, w, n);
}

static void set_state(struct repl_link *l, int state)
{
    struct repl *r = l->r;
    l->state = state;
    pthread_mutex_lock(&r->mu);
    r->link_state = state;
    pthread_mutex_unlock(&r->mu);
}

/* ---- role changes (any thread) ------------------------------------------------------ */

int repl__set_master(struct repl *r, const char *host, int64_t port, const char *why)
{
    pthread_mutex_lock(&r->mu);
    while (r->applying && !repl__on_thread) { /* see apply_begin() */
        pthread_mutex_unlock(&r->mu);
        uv_sleep(1);
        pthread_mutex_lock(&r->mu);
    }
    if (host) {
        if (r->is_replica && !strcasecmp(host, r->master_host) && port == r->master_port) {
            pthread_mutex_unlock(&r->mu);
            log_info("REPLICAOF would result into synchronization with the master we are already connected with. "
                     "No operation performed.",
                     "%s", "");
            return 1;
        }
        r->is_replica = 1;
        atomic_store(&r->journal_on, 0);
        snprintf(r->master_host, sizeof r->master_host, "%s", host);
        r->master_port = port;
        r->link_state = LINK_CONNECT;
    } else {
        if (!r->is_replica) {
            pthread_mutex_unlock(&r->mu);
            return 1;
        }
        /* Our history goes on under a new id; the old one stays valid up to
         * here, so our former fellow replicas continue from us (PSYNC2). */
        if (r->bl.size) {
            memcpy(r->replid2, r->replid, sizeof r->replid2);
            r->second_off = (int64_t)atomic_load(&r->offset) + 1;
            repl__new_replid(r->replid);
        }
        r->is_replica = 0;
        r->master_host[0] = '\0';
        r->master_port = 0;
        r->link_state = LINK_NONE;
        r->last_db = -1;
        repl__ensure_backlog_locked(r);
        atomic_store(&r->journal_on, 1);
    }
    r->fo_state = FO_NONE;
    r->master_gen++;
    repl__drop_peers_locked(r); /* they reconnect and learn the new id */
    pthread_mutex_unlock(&r->mu);
    eng_set_replica(r->eng, host != NULL);
    server_set_read_only(r->srv, host && r->cfg->replica_read_only);
    if (atomic_load(&r->running))
        uv_async_send(&r->wake);
    if (host)
        log_info("REPLICAOF enabled", "master=%s:%lld why=\"%s\"", host, (long long)port, why);
    else
        log_info("MASTER MODE enabled", "why=\"%s\"", why);
    if (r->env.on_role_change)
        r->env.on_role_change(r->env.ud, host == NULL);
    return 0;
}

int repl__replicaof(void *ud, int argc, const struct eng_str *argv, struct buf *out)
{
    struct repl *r = ud;
    pthread_mutex_lock(&r->mu);
    int failing_over = r->fo_state != FO_NONE;
    pthread_mutex_unlock(&r->mu);
    if (failing_over) {
        resp_w_error(out, "ERR REPLICAOF not allowed while failing over.");
        return -1;
    }
    if (is_word(&argv[1], "no") && is_word(&argv[2], "one")) {
        repl__set_master(r, NULL, 0, "REPLICAOF NO ONE");
        resp_w_simple(out, "OK");
        return 0;
    }
    int64_t port;
    if (num_parse_i64(argv[2].p, argv[2].n, &port) < 0 || port < 0 || port > 65535) {
        resp_w_error(out, "ERR Invalid master port");
        return -1;
    }
    char host[256];
    snprintf(host, sizeof host, "%.*s", (int)(argv[1].n < 255 ? argv[1].n : 255), argv[1].p);
    if (repl__set_master(r, host, port, "REPLICAOF") == 1)
        resp_w_simple(out, "OK Already connected to specified master");
    else
        resp_w_simple(out, "OK");
    return 0;
}

/* ---- sending ------------------------------------------------------------------------- */

struct link_write {
    uv_write_t req;
    char data[];
};

static void on_written(uv_write_t *req, int status) { xfree(req->data); }

static void link_send(struct repl_link *l, const char *p, size_t n)
{
    if (l->closing)
        return;
    struct link_write *w = xmalloc(sizeof *w + n);
    memcpy(w->data, p, n);
    w->req.data = w;
    uv_buf_t b = uv_buf_init(w->data, (unsigned)n);
    if (uv_write(&w->req, (uv_stream_t *)&l->tcp, &b, 1, on_written) < 0)
        xfree(w);
}

static void link_command(struct repl_link *l, int argc, const char *const *argv)
{
    struct eng_str v[8];
    struct buf b = BUF_INIT;
    for (int i = 0; i < argc && i < 8; i++)
        v[i] = (struct eng_str){argv[i], strlen(argv[i])};
    repl_encode(&b, argc, v);
    link_send(l, b.p, b.len);
    buf_release(&b);
}

static void send_ack(struct repl_link *l)
{
    char off[24];
    snprintf(off, sizeof off, "%llu", (unsigned long long)atomic_load(&l->r->offset));
    link_command(l, 3, (const char *const[]){"REPLCONF", "ACK", off});
}

/* ---- the handshake --------------------------------------------------------------------- */

static void send_port(struct repl_link *l)
{
    char port[24];
    int64_t p = l->r->cfg->announce_port ? l->r->cfg->announce_port : l->r->port;
    snprintf(port, sizeof port, "%lld", (long long)p);
    link_command(l, 3, (const char *const[]){"REPLCONF", "listening-port", port});
    set_state(l, LINK_RECV_PORT);
}

static void send_capa(struct repl_link *l)
{
    link_command(l, 5, (const char *const[]){"REPLCONF", "capa", "eof", "capa", "psync2"});
    set_state(l, LINK_RECV_CAPA);
}

static void send_psync(struct repl_link *l)
{
    struct repl *r = l->r;
    char id[REPL_ID_LEN + 1] = "?", off[24] = "-1";
    pthread_mutex_lock(&r->mu);
    if (r->bl.size) { /* we have a history: ask to continue it */
        memcpy(id, r->replid, sizeof id);
        snprintf(off, sizeof off, "%llu", (unsigned long long)atomic_load(&r->offset) + 1);
    }
    int failover = r->fo_state == FO_IN_PROGRESS;
    pthread_mutex_unlock(&r->mu);
    if (failover)
        link_command(l, 4, (const char *const[]){"PSYNC", id, off, "FAILOVER"});
    else
        link_command(l, 3, (const char *const[]){"PSYNC", id, off});
    set_state(l, LINK_RECV_PSYNC);
    log_info("trying a partial resynchronization", "replid=%s offset=%s", id, off);
}

static void begin_transfer(struct repl_link *l);
static void continued(struct repl_link *l, const char *newid);

/* One reply line of the handshake (without its CRLF). */
static void handshake_line(struct repl_link *l, const char *line)
{
    struct repl *r = l->r;
    switch (l->state) {
    case LINK_RECV_PONG:
        if (line[0] == '-' && strncmp(line, "-NOAUTH", 7) && strncmp(line, "-NOPERM", 7) &&
            strncmp(line, "-ERR operation not permitted", 28))
            return link_drop(r, l, line);
        if (r->cfg->masterauth && *r->cfg->masterauth) {
            if (r->cfg->masteruser && *r->cfg->masteruser)
                link_command(l, 3, (const char *const[]){"AUTH", r->cfg->masteruser, r->cfg->masterauth});
            else
                link_command(l, 2, (const char *const[]){"AUTH", r->cfg->masterauth});
            set_state(l, LINK_RECV_AUTH);
        } else {
            send_port(l);
        }
        return;
    case LINK_RECV_AUTH:
        if (line[0] == '-')
            return link_drop(r, l, "unable to AUTH to MASTER");
        return send_port(l);
    case LINK_RECV_PORT:
        if (r->cfg->announce_ip && *r->cfg->announce_ip) {
            link_command(l, 3, (const char *const[]){"REPLCONF", "ip-address", r->cfg->announce_ip});
            set_state(l, LINK_RECV_IP);
            return;
        }
        return send_capa(l);
    case LINK_RECV_IP:
        return send_capa(l);
    case LINK_RECV_CAPA:
        return send_psync(l);
    case LINK_RECV_PSYNC:
        if (!strncmp(line, "+FULLRESYNC ", 12)) {
            /* +FULLRESYNC <replid> <offset> [<db>]: obentchi adds the db
             * its stream is in (a chained replica's relayed stream names it
             * only when it changes) */
            const char *id = line + 12, *sp = strchr(id, ' '), *off = sp ? sp + 1 : NULL;
            const char *sp2 = off ? strchr(off, ' ') : NULL;
            size_t offlen = off ? (sp2 ? (size_t)(sp2 - off) : strlen(off)) : 0;
            int64_t db = 0;
            if (!sp || sp - id != REPL_ID_LEN || num_parse_u64(off, offlen, &l->sync_off) < 0 ||
                (sp2 && num_parse_i64(sp2 + 1, strlen(sp2 + 1), &db) < 0))
                return link_drop(r, l, "bad FULLRESYNC reply");
            l->sync_db = (int)db;
            memcpy(l->sync_id, id, REPL_ID_LEN);
            l->sync_id[REPL_ID_LEN] = '\0';
            log_info("full resync from master", "replid=%s offset=%llu", l->sync_id,
                     (unsigned long long)l->sync_off);
            repl__failover_done(r, 1);
            return begin_transfer(l);
        }
        if (!strncmp(line, "+CONTINUE", 9)) {
            repl__failover_done(r, 1);
            return continued(l, line[9] == ' ' ? line + 10 : NULL);
        }
        return link_drop(r, l, line);
    }
}

/* ---- the full copy --------------------------------------------------------------------- */

static void begin_transfer(struct repl_link *l)
{
    struct repl *r = l->r;
    set_state(l, LINK_TRANSFER);
    l->got_header = 0;
    l->t0_us = clock_mono_us();
    pthread_mutex_lock(&r->mu);
    r->sync_start_ms = clock_wall_ms();
    r->sync_read = 0;
    pthread_mutex_unlock(&r->mu);
}

/* The payload starts: what we held goes, and with it our history. */
static void begin_load(struct repl_link *l)
{
    struct repl *r = l->r;
    server_set_loading(r->srv, 1);
    pthread_mutex_lock(&r->mu);
    repl__new_replid(r->replid);
    memset(r->replid2, '0', REPL_ID_LEN);
    r->second_off = -1;
    repl_backlog_release(&r->bl);
    repl__drop_peers_locked(r);
    pthread_mutex_unlock(&r->mu);
    struct eng_ctx c;
    eng_ctx_init(&c, r->eng, 0);
    eng_lock_all(&c);
    eng_flush(&c, -1);
    eng_unlock(&c);
    snap_check_init(&l->chk, r->eng, clock_wall_ms());
    l->chk_on = 1;
}

static void end_load(struct repl_link *l)
{
    struct repl *r = l->r;
    uint64_t keys = l->chk.rd.loaded;
    snap_check_release(&l->chk);
    l->chk_on = 0;
    pthread_mutex_lock(&r->mu);
    memcpy(r->replid, l->sync_id, sizeof r->replid);
    atomic_store(&r->offset, l->sync_off);
    repl_backlog_init(&r->bl, (size_t)r->cfg->backlog_size);
    r->last_db = -1;
    r->link_state = LINK_CONNECTED;
    r->link_down_since = 0;
    pthread_mutex_unlock(&r->mu);
    server_set_loading(r->srv, 0);
    server_pseudo_reset(r->master_client);
    server_pseudo_select(r->master_client, l->sync_db);
    l->state = LINK_CONNECTED;
    log_info("MASTER <-> REPLICA sync: finished with success", "keys=%llu bytes=%llu ms=%lld",
             (unsigned long long)keys, (unsigned long long)l->read_bytes,
             (long long)((clock_mono_us() - l->t0_us) / 1000));
    send_ack(l);
}

/* Consumes what it can of l->in; 1 when the copy is complete. */
static int transfer(struct repl_link *l)
{
    struct repl *r = l->r;
    size_t pos = 0;
    if (!l->got_header) {
        while (pos < l->in.len && l->in.p[pos] == '\n')
            pos++; /* keepalives while the master prepares */
        char *nl = memchr(l->in.p + pos, '\n', l->in.len - pos);
        if (!nl) {
            buf_consume(&l->in, pos);
            return 0;
        }
        size_t len = (size_t)(nl - (l->in.p + pos));
        const char *line = l->in.p + pos;
        if (len && line[len - 1] == '\r')
            len--;
        if (line[0] != '$') {
            link_drop(r, l, "bad protocol from MASTER: no payload");
            return -1;
        }
        if (len == 5 + REPL_MARK_LEN && !strncmp(line, "$EOF:", 5)) {
            l->eof_format = 1;
            memcpy(l->mark, line + 5, REPL_MARK_LEN);
        } else if (num_parse_u64(line + 1, len - 1, &l->bulk_left) < 0) {
            link_drop(r, l, "bad payload length from MASTER");
            return -1;
        }
        pos = (size_t)(nl - l->in.p) + 1;
        l->got_header = 1;
        begin_load(l);
    }
    for (;;) {
        const char *p = l->in.p + pos;
        size_t avail = l->in.len - pos;
        if (!l->eof_format && avail > l->bulk_left)
            avail = (size_t)l->bulk_left;
        if (l->chk.state == 2) { /* the trailer came: the end mark, if any */
            if (!l->eof_format)
                break;
            if (avail < REPL_MARK_LEN)
                goto more;
            if (memcmp(p, l->mark, REPL_MARK_LEN)) {
                link_drop(r, l, "bad end mark of the payload");
                return -1;
            }
            pos += REPL_MARK_LEN;
            break;
        }
        if (!l->eof_format && l->bulk_left == 0)
            break;
        struct snap_frame f;
        size_t total;
        const char *why = "truncated";
        int rc = snap_frame_parse(p, avail, &f, &total, &why);
        if (rc == ERR_AGAIN)
            goto more;
        if (rc < 0 || snap_check_frame(&l->chk, p, total) < 0) {
            log_warn("MASTER <-> REPLICA sync: payload refused", "why=\"%s\"", rc < 0 ? why : l->chk.err);
            link_drop(r, l, "payload refused");
            return -1;
        }
        pos += total;
        if (!l->eof_format)
            l->bulk_left -= total;
    }
    buf_consume(&l->in, pos);
    if (snap_check_finish(&l->chk) < 0) {
        log_warn("MASTER <-> REPLICA sync: payload incomplete", "why=\"%s\"", l->chk.err);
        link_drop(r, l, "payload incomplete");
        return -1;
    }
    end_load(l);
    return 1;
more:
    buf_consume(&l->in, pos);
    return 0;
}

/* ---- the stream ------------------------------------------------------------------------- */

static void continued(struct repl_link *l, const char *newid)
{
    struct repl *r = l->r;
    pthread_mutex_lock(&r->mu);
    if (newid && strlen(newid) == REPL_ID_LEN && memcmp(newid, r->replid, REPL_ID_LEN)) {
        /* the master's history goes on under a new id (it was promoted) */
        memcpy(r->replid2, r->replid, sizeof r->replid2);
        r->second_off = (int64_t)atomic_load(&r->offset) + 1;
        memcpy(r->replid, newid, REPL_ID_LEN);
        repl__drop_peers_locked(r);
    }
    r->link_state = LINK_CONNECTED;
    r->link_down_since = 0;
    pthread_mutex_unlock(&r->mu);
    l->state = LINK_CONNECTED;
    log_info("MASTER <-> REPLICA sync: master accepted a partial resynchronization", "replid=%s",
             newid ? newid : "(same)");
}

static void relay(struct repl *r, const char *p, size_t n)
{
    if (!n)
        return;
    pthread_mutex_lock(&r->mu);
    if (r->is_replica)
        repl__feed_locked(r, p, n);
    pthread_mutex_unlock(&r->mu);
}

/* Runs one command of the stream.  The master's commands replay
 * deterministically: an error here means the replica diverged, which the
 * log says (once a second at most). */
static void exec_one(struct repl_link *l, int argc, const struct eng_str *argv)
{
    struct buf *reply = &l->reply;
    buf_reset(reply);
    server_pseudo_exec(l->r->master_client, argc, argv, reply);
    if (reply->len > 2 && reply->p[0] == '-') {
        int64_t now = clock_wall_ms();
        if (now - l->last_err_log_ms >= 1000) {
            l->last_err_log_ms = now;
            log_warn("a command of the master's stream failed on this replica", "cmd=%.*s reply=\"%.*s\"",
                     (int)(argv[0].n < 32 ? argv[0].n : 32), argv[0].p,
                     (int)(reply->len < 200 ? reply->len - 2 : 200), reply->p);
        }
    }
    if (reply->cap > 65536)
        buf_release(reply);
}

/* Applies the complete commands of l->in. */
static void apply_stream(struct repl_link *l)
{
    struct repl *r = l->r;
    size_t pos = 0, from = 0;
    struct eng_str argv_stack[16], *argv = argv_stack;
    int cap = 16;
    while (pos < l->in.len && !l->closing) {
        int64_t argc;
        size_t used;
        const char *base = l->in.p + pos;
        int rc = resp_req_read(&l->rd, base, l->in.len - pos, &argc, &used);
        if (rc == ERR_AGAIN)
            break;
        if (rc < 0) {
            log_warn("protocol error in the master's stream", "err=\"%s\"", l->rd.err);
            relay(r, l->in.p + from, pos - from);
            from = pos;
            link_drop(r, l, "protocol error");
            break;
        }
        if (argc > cap) {
            cap = (int)argc;
            argv = argv == argv_stack ? xmalloc(sizeof *argv * (size_t)cap)
                                      : xrealloc(argv, sizeof *argv * (size_t)cap);
        }
        for (int64_t i = 0; i < argc; i++) {
            size_t n;
            const char *p = resp_req_arg(&l->rd, base, i, &n);
            argv[i] = (struct eng_str){p, n};
        }
        int getack = argc >= 2 && is_word(&argv[0], "replconf") && is_word(&argv[1], "getack");
        int multi = argc >= 1 && is_word(&argv[0], "multi");
        if (multi && !l->in_txn) {
            relay(r, l->in.p + from, pos - from);
            l->in_txn = 1;
            buf_reset(&l->txn);
        }
        if (argc > 0 && !getack && !is_word(&argv[0], "ping") && !is_word(&argv[0], "replconf"))
            exec_one(l, (int)argc, argv);
        if (l->in_txn) {
            buf_append(&l->txn, base, used);
            pos += used;
            from = pos;
            if (argc >= 1 && (is_word(&argv[0], "exec") || is_word(&argv[0], "discard"))) {
                relay(r, l->txn.p, l->txn.len);
                l->in_txn = 0;
                buf_reset(&l->txn);
            }
            continue;
        }
        pos += used;
        if (getack) {
            relay(r, l->in.p + from, pos - from);
            from = pos;
            send_ack(l);
        }
    }
    relay(r, l->in.p + from, pos - from);
    buf_consume(&l->in, pos);
    if (argv != argv_stack)
        xfree(argv);
}

/* ---- the connection ---------------------------------------------------------------------- */

static void on_link_closed(uv_handle_t *h)
{
    struct repl_link *l = h->data;
    buf_release(&l->in);
    buf_release(&l->txn);
    buf_release(&l->reply);
    resp_req_reader_release(&l->rd);
    xfree(l);
}

static void link_drop(struct repl *r, struct repl_link *l, const char *why)
{
    if (l->closing)
        return;
    l->closing = 1;
    int was = l->state;
    if (l->chk_on) {
        snap_check_release(&l->chk);
        l->chk_on = 0;
        server_set_loading(r->srv, 0);
    }
    if (l->in_txn) /* the half transaction goes; the offset is still before it */
        server_pseudo_reset(r->master_client);
    uv_close((uv_handle_t *)&l->tcp, on_link_closed);
    if (r->link == l)
        r->link = NULL;
    pthread_mutex_lock(&r->mu);
    if (was == LINK_CONNECTED)
        r->link_down_since = clock_wall_ms() / 1000;
    if (r->link_state != LINK_NONE)
        r->link_state = r->is_replica ? LINK_CONNECT : LINK_NONE;
    pthread_mutex_unlock(&r->mu);
    r->link_retry_ms = clock_wall_ms() + 1000;
    if (was != LINK_CONNECTED && was != LINK_TRANSFER)
        repl__failover_done(r, 0); /* a FAILOVER's PSYNC did not go through */
    if (was == LINK_CONNECTED)
        log_warn("connection with master lost", "why=\"%s\"", why);
    else
        log_info("replication link closed", "state=%d why=\"%s\"", was, why);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    struct repl_link *l = h->data;
    buf_grow(&l->in, 64 * 1024);
    b->base = l->in.p + l->in.len;
    b->len = l->in.cap - l->in.len - 1;
}

static int apply_begin(struct repl *r);
static void apply_end(struct repl *r);
static void process(struct repl_link *l, ssize_t n);

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    struct repl_link *l = s->data;
    struct repl *r = l->r;
    if (l->closing)
        return;
    if (n < 0) {
        link_drop(r, l, n == UV_EOF ? "connection closed by the master" : uv_strerror((int)n));
        return;
    }
    if (n == 0)
        return;
    l->in.len += (size_t)n;
    l->in.p[l->in.len] = '\0';
    l->last_io_ms = clock_wall_ms();
    atomic_store(&r->last_io_ms, l->last_io_ms);
    if (!apply_begin(r))
        return; /* the role changed: the link goes at the next wake-up */
    process(l, n);
    apply_end(r);
}

/* A role change waits for the bytes being applied (apply_begin ... apply_end)
 * to be applied and relayed: no write ends up in the data but not in the
 * stream our own replicas continue from. */
static int apply_begin(struct repl *r)
{
    pthread_mutex_lock(&r->mu);
    int ok = r->is_replica && r->master_gen == r->link_gen;
    r->applying = ok;
    pthread_mutex_unlock(&r->mu);
    return ok;
}

static void apply_end(struct repl *r)
{
    pthread_mutex_lock(&r->mu);
    r->applying = 0;
    pthread_mutex_unlock(&r->mu);
}

static void process(struct repl_link *l, ssize_t n)
{
    while (!l->closing && l->in.len) {
        if (l->state == LINK_TRANSFER) {
            l->read_bytes += (uint64_t)n;
            pthread_mutex_lock(&l->r->mu);
            l->r->sync_read = l->read_bytes;
            pthread_mutex_unlock(&l->r->mu);
            n = 0;
            if (transfer(l) <= 0)
                return;
            continue; /* the stream may follow the copy in the same read */
        }
        if (l->state == LINK_CONNECTED) {
            apply_stream(l);
            return;
        }
        char *nl = memchr(l->in.p, '\n', l->in.len);
        if (!nl)
            return;
        *nl = '\0';
        if (nl > l->in.p && nl[-1] == '\r')
            nl[-1] = '\0';
        char line[512];
        snprintf(line, sizeof line, "%s", l->in.p);
        buf_consume(&l->in, (size_t)(nl - l->in.p) + 1);
        if (line[0])
            handshake_line(l, line);
    }
}

static void on_connect(uv_connect_t *req, int status)
{
    struct repl_link *l = req->data;
    if (l->closing)
        return;
    if (status < 0) {
        log_warn("error condition on socket for SYNC", "master=%s:%lld error=\"%s\"", l->host, (long long)l->port,
                 uv_strerror(status));
        return link_drop(l->r, l, "connect failed");
    }
    log_info("MASTER <-> REPLICA sync started", "master=%s:%lld", l->host, (long long)l->port);
    uv_tcp_nodelay(&l->tcp, !l->r->cfg->disable_tcp_nodelay);
    l->last_io_ms = clock_wall_ms();
    if (uv_read_start((uv_stream_t *)&l->tcp, on_alloc, on_read) < 0)
        return link_drop(l->r, l, "read failed");
    link_command(l, 1, (const char *const[]){"PING"});
    set_state(l, LINK_RECV_PONG);
}

static int resolve(const char *host, int64_t port, struct sockaddr_storage *sa)
{
    if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)sa) == 0 ||
        uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)sa) == 0)
        return 0;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    char ps[16];
    snprintf(ps, sizeof ps, "%lld", (long long)port);
    if (getaddrinfo(host, ps, &hints, &res) != 0 || !res)
        return -1;
    memcpy(sa, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    return 0;
}

static void link_connect(struct repl *r)
{
    struct repl_link *l = xcalloc(1, sizeof *l);
    l->r = r;
    pthread_mutex_lock(&r->mu);
    snprintf(l->host, sizeof l->host, "%s", r->master_host);
    l->port = r->master_port;
    r->link_gen = r->master_gen;
    pthread_mutex_unlock(&r->mu);
    struct resp_limits lim = {INT64_MAX / 2, INT64_MAX / 2, 64 * 1024};
    resp_req_reader_init(&l->rd, &lim);
    uv_tcp_init(&r->loop, &l->tcp);
    l->tcp.data = l;
    l->creq.data = l;
    l->last_io_ms = clock_wall_ms();
    r->link = l;
    set_state(l, LINK_CONNECTING);
    struct sockaddr_storage sa;
    if (resolve(l->host, l->port, &sa) < 0) {
        log_warn("cannot resolve the master's address", "master=%s", l->host);
        return link_drop(r, l, "resolve failed");
    }
    if (uv_tcp_connect(&l->creq, &l->tcp, (const struct sockaddr *)&sa, on_connect) < 0)
        link_drop(r, l, "connect failed");
}

/* ---- the thread's periodic work ------------------------------------------------------------ */

void repl__link_follow(struct repl *r)
{
    pthread_mutex_lock(&r->mu);
    unsigned gen = r->master_gen;
    int replica = r->is_replica;
    pthread_mutex_unlock(&r->mu);
    if (r->link && (r->link_gen != gen || !replica))
        link_drop(r, r->link, replica ? "a new master" : "now a master");
    if (r->link_gen != gen) {
        server_pseudo_reset(r->master_client);
        r->link_gen = gen;
        r->link_retry_ms = 0;
    }
    if (!replica || r->link)
        return;
    if (clock_wall_ms() < r->link_retry_ms || server_is_loading(r->srv))
        return; /* a snapshot restore at start comes first */
    link_connect(r);
}

void repl__replica_cron(struct repl *r, int64_t now_ms)
{
    repl__link_follow(r);
    struct repl_link *l = r->link;
    if (!l || l->closing)
        return;
    if (now_ms - l->last_io_ms > r->cfg->repl_timeout * 1000) {
        log_warn("MASTER timeout: no data nor PING received", "state=%d", l->state);
        return link_drop(r, l, "timeout");
    }
    if (l->state == LINK_CONNECTED && now_ms - r->last_ack_ms >= 1000) {
        r->last_ack_ms = now_ms;
        send_ack(l);
    }
}

void repl__link_free(struct repl *r)
{
    if (r->link)
        link_drop(r, r->link, "shutdown");
}
