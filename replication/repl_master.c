/* repl_master.c: the master side.  The engine's journal becomes the
 * replication stream (RESP commands, a SELECT whenever the db changes, a
 * transaction's writes kept together between MULTI and EXEC), which goes to
 * the backlog and to each replica's pending stream; a replica's worker
 * takes its pending stream into the connection's output (a "pump" posted at
 * most once at a time per replica, so a burst of writes costs one post).
 *
 * PSYNC: a replica whose replication id and offset the backlog still covers
 * continues (+CONTINUE and the missing bytes); any other gets a full copy.
 * The replication thread takes its point in time with a fork()
 * (snapshot_fork.c) while every shard is locked; at that instant the
 * replica gets the offset, and every write after it lands in its pending
 * stream, held back until the copy has gone out.  (On a chained replica
 * that thread also applies the master's stream, so nothing applied is left
 * unrelayed at the instant.)  The child's frames (the snapshot format,
 * docs/snapshot-format.md, lz4) are read by the thread and posted to the
 * replica's connection, framed as Redis frames a diskless copy:
 *
 *   +FULLRESYNC <replid> <offset> <db>\r\n$EOF:<40 byte mark>\r\n<frames><mark>
 *
 * <db> is obentchi's: the db the stream is in at the offset (a relayed
 * stream names its db only when it changes; Redis puts it in the RDB).
 *
 * Replicas acknowledge with REPLCONF ACK <offset> every second and when the
 * stream asks (REPLCONF GETACK *, sent when a WAIT waits).  Also FAILOVER. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/num.h"
#include "repl_int.h"
#include "snap_int.h"

#define XFER_CHUNK (1u << 20) /* raw bytes per snapshot chunk */
#define XFER_READ (64 * 1024)

static int is_word(const struct eng_str *s, const char *w)
{
    size_t n = strlen(w);
    return s->n == n && !strncasecmp(s->p, w, n);
}

void repl__new_replid(char out[REPL_ID_LEN + 1])
{
    unsigned char rnd[REPL_ID_LEN / 2];
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0 || read(fd, rnd, sizeof rnd) != (ssize_t)sizeof rnd) {
        uint64_t x = (uint64_t)clock_mono_us() ^ ((uint64_t)getpid() << 32);
        for (size_t i = 0; i < sizeof rnd; i++)
            x = x * 6364136223846793005ULL + 1442695040888963407ULL, rnd[i] = (unsigned char)(x >> 56);
    }
    if (fd >= 0)
        close(fd);
    for (size_t i = 0; i < sizeof rnd; i++)
        snprintf(out + 2 * i, 3, "%02x", rnd[i]);
}

static void peer_name(const struct server_replica_info *ri, char *out, size_t n)
{
    snprintf(out, n, "%s:%lld", ri->ip, (long long)ri->listening_port);
}

/* ---- the stream --------------------------------------------------------------- */

static struct repl_peer *peer_find(struct repl *r, const struct server_conn *c)
{
    for (struct repl_peer *p = r->peers; p; p = p->next)
        if (p->ri.conn.id == c->id && p->ri.conn.worker == c->worker)
            return p;
    return NULL;
}

/* On the replica's worker: its pending stream into its output. */
static void pump(void *ud, const struct server_conn *c, struct buf *out)
{
    struct repl *r = ud;
    pthread_mutex_lock(&r->mu);
    struct repl_peer *p = peer_find(r, c);
    if (p) {
        p->scheduled = 0;
        if (p->state == PEER_ONLINE && p->out.len) {
            if (!out->len) { /* hand the buffer over: no copy */
                struct buf t = *out;
                *out = p->out;
                p->out = t;
            } else {
                buf_append(out, p->out.p, p->out.len);
                buf_reset(&p->out);
            }
        }
    }
    pthread_mutex_unlock(&r->mu);
}

static void schedule_locked(struct repl *r, struct repl_peer *p)
{
    if (p->state != PEER_ONLINE || p->scheduled || !p->out.len)
        return;
    p->scheduled = 1;
    server_conn_call(r->srv, &p->ri.conn, pump, r);
}

/* What a replica is sent while its full copy goes out waits here, and counts
 * against the replica class's hard output limit as it would in its output
 * buffer (client-output-buffer-limit replica). */
static int over_limit_locked(struct repl *r, struct repl_peer *p)
{
    int64_t hard = r->sc ? r->sc->obuf_limits[OBL_REPLICA].hard : 0;
    if (!hard || (int64_t)p->out.len < hard)
        return 0;
    char name[128];
    peer_name(&p->ri, name, sizeof name);
    log_warn("replica closed for overcoming of output buffer limits", "replica=%s pending=%zu", name, p->out.len);
    p->killed = 1;
    buf_release(&p->out);
    server_conn_kill(r->srv, &p->ri.conn);
    return 1;
}

void repl__feed_locked(struct repl *r, const void *p, size_t n)
{
    if (!r->bl.size || !n)
        return;
    repl_backlog_append(&r->bl, p, n);
    atomic_store(&r->offset, atomic_load(&r->offset) + n);
    for (struct repl_peer *pr = r->peers; pr; pr = pr->next) {
        if (pr->state == PEER_WAIT_BGSAVE || pr->killed)
            continue; /* its copy's instant is not taken yet, or it is going */
        buf_append(&pr->out, p, n);
        if (over_limit_locked(r, pr))
            continue;
        schedule_locked(r, pr);
    }
}

static void feed_db_locked(struct repl *r, int db)
{
    if (db == r->last_db)
        return;
    struct buf sel = BUF_INIT;
    repl_encode_select(&sel, db);
    repl__feed_locked(r, sel.p, sel.len);
    buf_release(&sel);
    r->last_db = db;
}

void repl__ensure_backlog_locked(struct repl *r)
{
    if (r->bl.size)
        return;
    if (!r->is_replica) { /* Redis: a new history starts with the backlog */
        repl__new_replid(r->replid);
        memset(r->replid2, '0', REPL_ID_LEN);
        r->replid2[REPL_ID_LEN] = '\0';
        r->second_off = -1;
    }
    repl_backlog_init(&r->bl, (size_t)r->cfg->backlog_size);
    r->last_db = -1;
    atomic_store(&r->journal_on, !r->is_replica);
}

void repl__drop_peers_locked(struct repl *r)
{
    for (struct repl_peer *p = r->peers; p; p = p->next)
        server_conn_kill(r->srv, &p->ri.conn);
}

/* The journal, per thread: a transaction's entries wait here until its
 * EXEC, so that no other thread's entry falls between its MULTI and EXEC. */
struct tl_journal {
    struct buf one, txn;
    int in_txn, first_db, cur_db;
    int registered;
};
static _Thread_local struct tl_journal tl;
/* Frees a thread's buffers when it ends (the workers at shutdown). */
static pthread_key_t tl_key;
static pthread_once_t tl_once = PTHREAD_ONCE_INIT;

static void tl_release(void *p)
{
    struct tl_journal *t = p;
    buf_release(&t->one);
    buf_release(&t->txn);
}

static void tl_key_make(void) { pthread_key_create(&tl_key, tl_release); }

static void tl_register(void)
{
    if (tl.registered)
        return;
    tl.registered = 1;
    pthread_once(&tl_once, tl_key_make);
    pthread_setspecific(tl_key, &tl);
}

static void journal_exec(struct repl *r)
{
    static const struct eng_str multi = {"MULTI", 5}, exec = {"EXEC", 4};
    tl.in_txn = 0;
    if (!tl.txn.len)
        return;
    buf_reset(&tl.one);
    repl_encode(&tl.one, 1, &multi);
    pthread_mutex_lock(&r->mu);
    if (atomic_load(&r->journal_on)) {
        feed_db_locked(r, tl.first_db);
        repl__feed_locked(r, tl.one.p, tl.one.len);
        repl__feed_locked(r, tl.txn.p, tl.txn.len);
        buf_reset(&tl.one);
        repl_encode(&tl.one, 1, &exec);
        repl__feed_locked(r, tl.one.p, tl.one.len);
        r->last_db = tl.cur_db;
    }
    pthread_mutex_unlock(&r->mu);
    buf_reset(&tl.txn);
}

/* A master that never had a replica drops what repl__journal gets (but a
 * transaction's markers, which the engine sends whatever this says). */
int repl__journal_wanted(void *ud)
{
    struct repl *r = ud;
    return atomic_load_explicit(&r->journal_on, memory_order_relaxed);
}

void repl__journal(void *ud, int db, int argc, const struct eng_str *argv)
{
    struct repl *r = ud;
    if (argc == 1 && is_word(&argv[0], "MULTI")) {
        tl_register();
        tl.in_txn = 1;
        tl.first_db = tl.cur_db = -1;
        buf_reset(&tl.txn);
        return;
    }
    if (argc == 1 && tl.in_txn && is_word(&argv[0], "EXEC")) {
        journal_exec(r);
        return;
    }
    if (!atomic_load_explicit(&r->journal_on, memory_order_relaxed))
        return; /* no replica ever, or a replica (its master's stream is relayed) */
    if (tl.in_txn) {
        if (tl.first_db < 0)
            tl.first_db = db;
        else if (db != tl.cur_db)
            repl_encode_select(&tl.txn, db);
        tl.cur_db = db;
        repl_encode(&tl.txn, argc, argv);
        return;
    }
    tl_register();
    buf_reset(&tl.one);
    repl_encode(&tl.one, argc, argv);
    pthread_mutex_lock(&r->mu);
    if (atomic_load(&r->journal_on)) {
        feed_db_locked(r, db);
        repl__feed_locked(r, tl.one.p, tl.one.len);
    }
    pthread_mutex_unlock(&r->mu);
    buf_recycle(&tl.one);
}

/* ---- PSYNC --------------------------------------------------------------------- */

static struct repl_peer *peer_new(const struct server_replica_info *ri, int state)
{
    struct repl_peer *p = xcalloc(1, sizeof *p);
    p->ri = *ri;
    p->state = state;
    p->since_ms = p->ack_ms = clock_wall_ms();
    return p;
}

static void peer_link_locked(struct repl *r, struct repl_peer *p)
{
    p->next = r->peers;
    r->peers = p;
    r->npeers++;
}

static void peer_unlink_locked(struct repl *r, struct repl_peer *p)
{
    for (struct repl_peer **pp = &r->peers; *pp; pp = &(*pp)->next) {
        if (*pp == p) {
            *pp = p->next;
            r->npeers--;
            return;
        }
    }
}

static void peer_free(struct repl_peer *p)
{
    buf_release(&p->out);
    xfree(p);
}

/* Under mu: a continuation from `want` when the history allows it. */
static int try_continue_locked(struct repl *r, const struct server_replica_info *ri, const struct eng_str *id,
                               const struct eng_str *offs, struct buf *out)
{
    uint64_t want;
    char name[128];
    peer_name(ri, name, sizeof name);
    if (num_parse_u64(offs->p, offs->n, &want) < 0 || id->n != REPL_ID_LEN)
        return 0;
    uint64_t off = atomic_load(&r->offset);
    int ours = !memcmp(id->p, r->replid, REPL_ID_LEN);
    int old = !memcmp(id->p, r->replid2, REPL_ID_LEN) && r->second_off >= 0 && want <= (uint64_t)r->second_off;
    if (!ours && !old) {
        if (id->n && id->p[0] != '?')
            log_info("partial resynchronization not accepted: replication id mismatch", "replica=%s", name);
        return 0;
    }
    uint64_t first = off - r->bl.histlen + 1;
    if (!r->bl.size || want < first || want > off + 1) {
        log_info("unable to partial resync with replica: lack of backlog", "replica=%s want=%llu first=%llu",
                 name, (unsigned long long)want, (unsigned long long)first);
        return 0;
    }
    if (ri->capa & SERVER_CAPA_PSYNC2)
        buf_printf(out, "+CONTINUE %s\r\n", r->replid);
    else
        buf_puts(out, "+CONTINUE\r\n");
    repl_backlog_tail(&r->bl, off + 1 - want, out);
    struct repl_peer *p = peer_new(ri, PEER_ONLINE);
    p->ack_off = want - 1;
    peer_link_locked(r, p);
    log_info("partial resynchronization request accepted", "replica=%s bytes=%llu from=%llu", name,
             (unsigned long long)(off + 1 - want), (unsigned long long)want);
    return 1;
}

static void random_mark(char out[REPL_MARK_LEN + 1])
{
    char id[REPL_ID_LEN + 1];
    repl__new_replid(id);
    memcpy(out, id, REPL_MARK_LEN);
    out[REPL_MARK_LEN] = '\0';
}

/* A full copy is asked: the replica waits (WAIT_BGSAVE: no stream yet) until
 * the thread takes the point in time (repl__xfer_start_all). */
static int full_sync(struct repl *r, const struct server_replica_info *ri, int is_psync)
{
    char name[128];
    peer_name(ri, name, sizeof name);
    struct repl_xfer *x = xcalloc(1, sizeof *x);
    x->r = r;
    x->conn = ri->conn;
    x->is_psync = is_psync;
    random_mark(x->mark);
    pthread_mutex_lock(&r->mu);
    peer_link_locked(r, peer_new(ri, PEER_WAIT_BGSAVE));
    x->next = r->xfer_new;
    r->xfer_new = x;
    pthread_mutex_unlock(&r->mu);
    if (atomic_load(&r->running))
        uv_async_send(&r->wake);
    log_info("full resync requested", "replica=%s", name);
    return 1;
}

int repl__psync(void *ud, const struct server_replica_info *ri, int argc, const struct eng_str *argv,
                struct buf *out)
{
    struct repl *r = ud;
    int is_psync = is_word(&argv[0], "psync");
    pthread_mutex_lock(&r->mu);
    int blocked = r->is_replica && r->link_state != LINK_CONNECTED;
    int matches = is_psync && argc > 1 && argv[1].n == REPL_ID_LEN && !memcmp(argv[1].p, r->replid, REPL_ID_LEN);
    pthread_mutex_unlock(&r->mu);
    if (is_psync && argc > 3 && is_word(&argv[3], "failover")) {
        /* The old master of a FAILOVER hands over: become the master. */
        if (!matches) {
            resp_w_error(out, "ERR PSYNC FAILOVER replid must match my replid.");
            return -1;
        }
        repl__set_master(r, NULL, 0, "FAILOVER requested by the old master");
        blocked = 0;
    }
    if (blocked) {
        resp_w_error(out, "NOMASTERLINK Can't SYNC while not connected with my master");
        return -1;
    }
    if (is_psync && argc >= 3) {
        pthread_mutex_lock(&r->mu);
        int ok = try_continue_locked(r, ri, &argv[1], &argv[2], out);
        pthread_mutex_unlock(&r->mu);
        if (ok) {
            atomic_fetch_add(&r->stat_sync_partial_ok, 1);
            return 1;
        }
        if (argv[1].n && argv[1].p[0] != '?') /* a continuation was asked and refused (Redis's rule) */
            atomic_fetch_add(&r->stat_sync_partial_err, 1);
    }
    atomic_fetch_add(&r->stat_sync_full, 1);
    return full_sync(r, ri, is_psync);
}

/* ---- acknowledgements ------------------------------------------------------------ */

void repl__ack(void *ud, const struct server_conn *c, uint64_t off)
{
    struct repl *r = ud;
    pthread_mutex_lock(&r->mu);
    struct repl_peer *p = peer_find(r, c);
    int wake = 0;
    if (p) {
        if (off > p->ack_off)
            p->ack_off = off;
        p->ack_ms = clock_wall_ms();
        wake = r->fo_state == FO_WAIT_SYNC;
    }
    pthread_mutex_unlock(&r->mu);
    if (wake && atomic_load(&r->running))
        uv_async_send(&r->wake);
}

void repl__replica_closed(void *ud, const struct server_conn *c)
{
    struct repl *r = ud;
    pthread_mutex_lock(&r->mu);
    struct repl_peer *p = peer_find(r, c);
    if (p)
        peer_unlink_locked(r, p);
    pthread_mutex_unlock(&r->mu);
    if (p) {
        char name[128];
        peer_name(&p->ri, name, sizeof name);
        log_info("connection with replica lost", "replica=%s", name);
        peer_free(p);
    }
}

uint64_t repl__offset(void *ud) { return atomic_load(&((struct repl *)ud)->offset); }

uint64_t repl_offset_of(void *ud) { return repl__offset(ud); }

int repl__acked(void *ud, uint64_t off)
{
    struct repl *r = ud;
    int n = 0;
    pthread_mutex_lock(&r->mu);
    if (r->is_replica) {
        n = -1;
    } else {
        for (struct repl_peer *p = r->peers; p; p = p->next)
            n += p->state == PEER_ONLINE && p->ack_off >= off;
    }
    pthread_mutex_unlock(&r->mu);
    return n;
}

static void send_getack_locked(struct repl *r)
{
    static const char getack[] = "*3\r\n$8\r\nREPLCONF\r\n$6\r\nGETACK\r\n$1\r\n*\r\n";
    repl__feed_locked(r, getack, sizeof getack - 1);
    r->getack_end = atomic_load(&r->offset);
}

void repl__request_acks(void *ud, uint64_t off)
{
    struct repl *r = ud;
    pthread_mutex_lock(&r->mu);
    /* one GETACK after off is enough: its answer covers off */
    if (!r->is_replica && r->npeers && r->getack_end <= off)
        send_getack_locked(r);
    pthread_mutex_unlock(&r->mu);
}

/* ---- full copies on their way (the replication thread) ----------------------------- */

static void xfer_closed(uv_handle_t *h);

static void xfer_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    static _Thread_local char chunk[XFER_READ];
    b->base = chunk;
    b->len = sizeof chunk;
}

static int peer_alive(struct repl *r, const struct server_conn *c)
{
    pthread_mutex_lock(&r->mu);
    int alive = peer_find(r, c) != NULL;
    pthread_mutex_unlock(&r->mu);
    return alive;
}

static void xfer_end(struct repl_xfer *x, int eof)
{
    if (x->closing)
        return;
    x->closing = eof ? 1 : 2;
    uv_read_stop((uv_stream_t *)&x->pipe);
    uv_close((uv_handle_t *)&x->pipe, xfer_closed);
}

static void xfer_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    struct repl_xfer *x = s->data;
    if (n > 0) {
        if (!peer_alive(x->r, &x->conn)) {
            xfer_end(x, 0); /* the child is stopped when the pipe closed */
            return;
        }
        server_conn_send(x->r->srv, &x->conn, b->base, (size_t)n);
        x->bytes += (uint64_t)n;
    } else if (n < 0) {
        xfer_end(x, n == UV_EOF);
    }
}

static void xfer_unlink(struct repl *r, struct repl_xfer *x)
{
    for (struct repl_xfer **pp = &r->xfers; *pp; pp = &(*pp)->next) {
        if (*pp == x) {
            *pp = x->next;
            return;
        }
    }
}

static void xfer_closed(uv_handle_t *h)
{
    struct repl_xfer *x = h->data;
    struct repl *r = x->r;
    char why[128] = "";
    x->child.fd = -1; /* closed with the pipe (a versioned writer then fails its write) */
    int ok = snap_child_wait(&x->child, x->closing != 1, why, sizeof why) == 0 && x->closing == 1;
    if (ok) {
        /* the mark, then the stream held back meanwhile (same mailbox: in order) */
        server_conn_send(r->srv, &x->conn, x->mark, REPL_MARK_LEN);
        pthread_mutex_lock(&r->mu);
        struct repl_peer *p = peer_find(r, &x->conn);
        if (p) {
            p->state = PEER_ONLINE;
            p->ack_ms = clock_wall_ms();
            schedule_locked(r, p);
        }
        pthread_mutex_unlock(&r->mu);
        log_info("synchronization with replica succeeded", "bytes=%llu ms=%lld", (unsigned long long)x->bytes,
                 (long long)((clock_mono_us() - x->t0_us) / 1000));
    } else {
        server_conn_kill(r->srv, &x->conn);
        log_warn("full copy to a replica failed", "bytes=%llu why=\"%s\"", (unsigned long long)x->bytes, why);
    }
    x->child.fd = -1; /* closed with the pipe */
    snap_child_release(&x->child);
    xfer_unlink(r, x);
    xfree(x);
}

struct fork_at {
    struct repl *r;
    struct repl_xfer *x;
    char replid[REPL_ID_LEN + 1];
    uint64_t off;
    int db, gone;
};

/* Called by snap_fork_start with every shard locked: the instant.  On a
 * replica this thread applies the stream, so nothing applied is unrelayed
 * now; the stream's db goes to the replica with the offset, since a relayed
 * stream names it only when it changes. */
static uint64_t fork_offset(void *ud)
{
    struct fork_at *f = ud;
    struct repl *r = f->r;
    pthread_mutex_lock(&r->mu);
    struct repl_peer *p = peer_find(r, &f->x->conn);
    if (!p) {
        f->gone = 1;
    } else {
        repl__ensure_backlog_locked(r);
        f->off = atomic_load(&r->offset);
        memcpy(f->replid, r->replid, sizeof f->replid);
        p->state = PEER_SEND_BULK;
        p->sync_off = f->off;
        buf_reset(&p->out);
        if (r->is_replica)
            f->db = r->master_client ? server_pseudo_db(r->master_client) : 0;
        else
            r->last_db = -1; /* the replica starts in db 0: name the db again */
    }
    pthread_mutex_unlock(&r->mu);
    return f->off;
}

/* Forks the point in time for x and starts reading its frames. */
static void xfer_start(struct repl *r, struct repl_xfer *x)
{
    struct fork_at f = {.r = r, .x = x};
    struct snap_meta m = {0};
    struct snap_child ch;
    snap_make_id(m.id, clock_wall_ms());
    x->t0_us = clock_mono_us();
    int rc = snap_fork_start(r->eng, &m, XFER_CHUNK, fork_offset, &f, &ch);
    if (rc < 0 || f.gone) {
        char why[128];
        if (rc < 0) {
            log_warn("cannot fork for a replica's full copy", "error=\"%s\"", strerror(-rc));
        } else {
            snap_child_wait(&ch, 1, why, sizeof why);
            snap_child_release(&ch);
        }
        server_conn_kill(r->srv, &x->conn);
        xfree(x);
        return;
    }
    x->child = ch; /* its pipe goes to x->pipe, closed with it */
    char head[160];
    int n = 0;
    if (x->is_psync)
        n = snprintf(head, sizeof head, "+FULLRESYNC %s %llu %d\r\n", f.replid, (unsigned long long)f.off, f.db);
    n += snprintf(head + n, sizeof head - (size_t)n, "$EOF:%s\r\n", x->mark);
    server_conn_send(r->srv, &x->conn, head, (size_t)n);
    log_info("sending a snapshot over the socket", "offset=%llu fork_us=%lld", (unsigned long long)f.off,
             (long long)(clock_mono_us() - x->t0_us));
    x->next = r->xfers;
    r->xfers = x;
    uv_pipe_init(&r->loop, &x->pipe, 0);
    x->pipe.data = x;
    x->started = 1;
    if (uv_pipe_open(&x->pipe, x->child.fd) < 0 ||
        uv_read_start((uv_stream_t *)&x->pipe, xfer_alloc, xfer_read) < 0)
        xfer_end(x, 0);
}

void repl__xfer_start_all(struct repl *r)
{
    pthread_mutex_lock(&r->mu);
    struct repl_xfer *x = r->xfer_new;
    r->xfer_new = NULL;
    pthread_mutex_unlock(&r->mu);
    while (x) {
        struct repl_xfer *next = x->next;
        xfer_start(r, x);
        x = next;
    }
}

void repl__xfer_stop_all(struct repl *r)
{
    pthread_mutex_lock(&r->mu);
    struct repl_xfer *x = r->xfer_new;
    r->xfer_new = NULL;
    pthread_mutex_unlock(&r->mu);
    while (x) { /* never forked */
        struct repl_xfer *next = x->next;
        xfree(x);
        x = next;
    }
    for (x = r->xfers; x; x = x->next)
        xfer_end(x, 0);
}

/* ---- the periodic work -------------------------------------------------------------- */

void repl__master_cron(struct repl *r, int64_t now_ms)
{
    static const char ping[] = "*1\r\n$4\r\nPING\r\n";
    pthread_mutex_lock(&r->mu);
    if (!r->is_replica && r->npeers && now_ms - r->last_ping_ms >= r->cfg->ping_period * 1000) {
        r->last_ping_ms = now_ms;
        repl__feed_locked(r, ping, sizeof ping - 1);
    }
    for (struct repl_peer *p = r->peers; p; p = p->next) {
        if (p->state == PEER_ONLINE && now_ms - p->ack_ms > r->cfg->repl_timeout * 1000) {
            char name[128];
            peer_name(&p->ri, name, sizeof name);
            log_warn("disconnecting timedout replica", "replica=%s", name);
            p->ack_ms = now_ms; /* once: the close comes through its worker */
            server_conn_kill(r->srv, &p->ri.conn);
        }
    }
    pthread_mutex_unlock(&r->mu);
}
