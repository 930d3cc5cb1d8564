/* server.c: the server's threads.  server_new() opens the listeners (one
 * SO_REUSEPORT socket per worker and address, so the kernel spreads
 * connections without a hand-off thread), server_run() starts one thread per
 * worker and waits on the main loop for a signal or SHUTDOWN, then stops the
 * workers and joins them.  Also each worker's mailbox and cron. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "acl.h"
#include "base/alloc.h"
#include "base/clock.h"
#include "base/log.h"
#include "sendbatch.h"
#include "server_int.h"

static _Thread_local struct worker *current;

struct worker *worker_current(void) { return current; }

/* ---- mailbox ------------------------------------------------------------- */

/* The callback of the idle handles that keep the loop from sleeping: a
 * message to itself waiting (self_idle), busy polling (spin_idle). */
static void on_stay_awake(uv_idle_t *h) { (void)h; }

void worker_post(struct worker *w, int kind, uint64_t client_id, const void *data, size_t len)
{
    struct msg *m = xmalloc(sizeof *m + len);
    m->next = NULL;
    m->kind = kind;
    m->client_id = client_id;
    m->len = len;
    if (len)
        memcpy(m->data, data, len);
    pthread_mutex_lock(&w->mbox_lock);
    if (w->mbox_tail)
        w->mbox_tail->next = m;
    else
        w->mbox_head = m;
    w->mbox_tail = m;
    pthread_mutex_unlock(&w->mbox_lock);
    if (current != w) {
        uv_async_send(&w->wake);
    } else if (!w->self_posted && !w->stopping) { /* stopping: its handles are closed, server_free frees it */
        w->self_posted = 1;
        uv_idle_start(&w->self_idle, on_stay_awake);
    }
}

static struct client *find_client(struct worker *w, uint64_t id)
{
    struct kt_node *n = kt_find(&w->byid, 0, (const char *)&id, sizeof id);
    return n ? (struct client *)((char *)n - offsetof(struct client, idnode)) : NULL;
}

static void close_handle(uv_handle_t *h, void *arg)
{
    if (!uv_is_closing(h)) {
        if (h->type == UV_TCP && h->data && h->data != arg) {
            /* a client: close through its own path so it is unregistered */
            struct client *c = h->data;
            client_close(c);
        } else {
            uv_close(h, NULL);
        }
    }
}

static void worker_stop(struct worker *w)
{
    w->stopping = 1;
    /* listeners carry the worker as data, clients carry themselves */
    uv_walk(&w->loop, close_handle, w);
}

static void resume_paused(struct worker *w)
{
    struct client *next;
    for (struct client *c = w->clients; c; c = next) {
        next = c->wnext;
        if (c->flags & CL_PAUSED) {
            c->flags &= ~CL_PAUSED;
            client_process_input(c);
            client_flush(c);
        }
    }
}

static void drain(struct worker *w);

static void on_wake(uv_async_t *a) { drain(a->data); }

/* Busy polling pays where a few connections wait on each answer before
 * they send again (one client's round trip: the sleep and the wake-up cost
 * more than the gap).  With many connections the turns batch their requests
 * and polling would only fill the gaps between bursts with CPU: past this
 * many connections on the worker it sleeps at once. */
#define BUSY_POLL_MAX_CLIENTS 4

/* Keeps the loop from sleeping for busy-poll-us after a turn that served a
 * client; a turn with nothing to do past that lets it sleep again. */
static void spin_update(struct worker *w, int worked)
{
    int64_t us = w->srv->cfg->busy_poll_us;
    uint64_t now = uv_hrtime();
    if (worked && us > 0 && !w->stopping && w->nclients <= BUSY_POLL_MAX_CLIENTS) {
        w->spin_until = now + (uint64_t)us * 1000u;
        if (!w->spinning) {
            w->spinning = 1;
            uv_idle_start(&w->spin_idle, on_stay_awake);
        }
    } else if (w->spinning && (worked || now >= w->spin_until)) {
        w->spinning = 0; /* off, stopping, too many connections, or the window is over */
        uv_idle_stop(&w->spin_idle);
    }
}

static void on_self_check(uv_check_t *h)
{
    struct worker *w = h->data;
    if (w->self_posted) {
        /* what draining posts again waits for the next iteration's check */
        w->self_posted = 0;
        uv_idle_stop(&w->self_idle);
        drain(w);
    }
    int worked = w->flushq != NULL;
    client_flush_queued(w);
    if (worked || w->spinning)
        spin_update(w, worked);
}

static void drain(struct worker *w)
{
    pthread_mutex_lock(&w->mbox_lock);
    struct msg *m = w->mbox_head;
    w->mbox_head = w->mbox_tail = NULL;
    pthread_mutex_unlock(&w->mbox_lock);
    /* Drain everything: uv_async_send coalesces wake-ups. */
    while (m) {
        struct msg *next = m->next;
        struct client *c = m->client_id ? find_client(w, m->client_id) : NULL;
        switch (m->kind) {
        case MSG_KILL:
            if (c) {
                atomic_fetch_add(&w->srv->stat_kills, 1);
                client_close(c);
            }
            break;
        case MSG_WRITE:
            /* CLIENT REPLY OFF/SKIP silence MONITOR lines too, as in Redis */
            if (c && !(c->flags & (CL_NO_REPLY | CL_REPLY_SKIP))) {
                buf_append(&c->obuf, m->data, m->len);
                client_flush(c);
            }
            break;
        case MSG_RESUME:
            if (c) {
                c->flags &= ~CL_PAUSED;
                client_process_input(c);
                client_flush(c);
            } else if (!m->client_id) {
                resume_paused(w);
            }
            break;
        case MSG_CALLBACK: {
            void (*fn)(struct worker *, void *);
            void *arg;
            memcpy(&fn, m->data, sizeof fn);
            memcpy(&arg, m->data + sizeof fn, sizeof arg);
            fn(w, arg);
            break;
        }
        case MSG_CLOSE:
            if (c)
                client_close(c);
            break;
        case MSG_CONN_CALL:
            if (c && !(c->flags & CL_CLOSING)) {
                server_conn_fn *fn;
                void *ud;
                memcpy(&fn, m->data, sizeof fn);
                memcpy(&ud, m->data + sizeof fn, sizeof ud);
                struct server_conn conn = {w->id, c->id};
                fn(ud, &conn, &c->obuf);
                client_flush(c);
            }
            break;
        case MSG_STOP:
            worker_stop(w);
            break;
        }
        xfree(m);
        m = next;
    }
}

/* ---- cron ------------------------------------------------------------------ */

static void on_cron(uv_timer_t *t)
{
    struct worker *w = t->data;
    struct server *srv = w->srv;
    int64_t now = clock_wall_ms();
    int64_t period_us = 1000000 / (srv->cfg->hz > 0 ? srv->cfg->hz : 10);
    /* CONFIG SET hz: libuv scheduled this timer's next tick before calling
     * us, so the new period holds from the tick after. */
    if (uv_timer_get_repeat(t) != (uint64_t)(period_us / 1000))
        uv_timer_set_repeat(t, (uint64_t)(period_us / 1000));
    /* Active expiry for the shards this worker looks after, within a quarter
     * of the cron period (Redis's ACTIVE_EXPIRE_CYCLE_SLOW_TIME_PERC). */
    int nshards = eng_config(srv->eng)->nshards, mine = 0;
    for (int s = w->id; s < nshards; s += srv->nworkers)
        mine++;
    for (int s = w->id; s < nshards; s += srv->nworkers)
        eng_cron_shard(srv->eng, s, period_us / 4 / mine);
    /* Idle timeout and paused clients. */
    int64_t timeout = srv->cfg->timeout;
    struct client *next;
    for (struct client *c = w->clients; c; c = next) {
        next = c->wnext;
        if (timeout > 0 && !(c->flags & (CL_BLOCKED | CL_PUBSUB | CL_MONITOR | CL_REPLICA | CL_MASTER)) &&
            now - c->last_ms > timeout * 1000) {
            log_verbose("closing idle client", "id=%llu addr=%s", (unsigned long long)c->id, c->addr);
            client_close(c);
            continue;
        }
        if ((c->flags & CL_PAUSED) && !atomic_load(&srv->pause_until_ms)) {
            c->flags &= ~CL_PAUSED;
            client_process_input(c);
            client_flush(c);
        } else if (c->flags & CL_PAUSED) {
            int64_t until = atomic_load(&srv->pause_until_ms);
            if (until && now >= until) {
                atomic_store(&srv->pause_until_ms, 0);
                c->flags &= ~CL_PAUSED;
                client_process_input(c);
                client_flush(c);
            }
        } else if (c->obuf.len || c->wbuf.len) {
            client_flush(c); /* re-checks the soft output limit over time */
        }
    }
    /* Backstop for pushes made outside a dispatched command on a worker
     * (anything else serves right after the push): cheap when none. */
    blocking_serve_ready(srv);
    if (now - w->ops_sample_ms >= 1000) {
        STAT_SET(w->ops_sample_ms, now); /* server_alive and INFO read it on other threads */
        STAT_SET(w->ops_sample_cmds, w->commands); /* INFO reads it on other threads */
    }
    alloc_note_peak();
}

/* ---- listeners ------------------------------------------------------------- */

/* SO_REUSEPORT lets every worker bind the port, but it would also let a
 * second server bind it and share our connections.  So the first worker
 * first binds without it: a port held by anyone fails here. */
static int port_is_free(const struct addrinfo *ai)
{
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    if (fd < 0)
        return 0;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (ai->ai_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    int ok = bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 1) == 0;
    int saved = errno;
    close(fd);
    errno = saved;
    return ok;
}

static int open_listener(struct worker *w, const char *host, int port, char *err, size_t errlen)
{
    struct addrinfo hints = {0}, *res = NULL;
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST;
    const char *h = host;
    if (!strcmp(host, "*"))
        h = "0.0.0.0";
    else if (!strcmp(host, "::*") || !strcmp(host, "-::*"))
        h = "::";
    int rc = getaddrinfo(h, portstr, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "bind %s: %s", host, gai_strerror(rc));
        return -1;
    }
    if (w->id == 0 && !port_is_free(res)) {
        snprintf(err, errlen, "Could not create server TCP listening socket %s:%d: %s", host, port, strerror(errno));
        freeaddrinfo(res);
        return -1;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int one = 1;
    if (fd >= 0) {
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
        if (res->ai_family == AF_INET6)
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    }
    if (fd < 0 || bind(fd, res->ai_addr, res->ai_addrlen) < 0) {
        snprintf(err, errlen, "Could not create server TCP listening socket %s:%d: %s", host, port, strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(res);
        return -1;
    }
    freeaddrinfo(res);
    uv_tcp_t *l = &w->listeners[w->nlisteners];
    uv_tcp_init(&w->loop, l);
    l->data = w;
    if (uv_tcp_open(l, fd) < 0 || uv_listen((uv_stream_t *)l, (int)w->srv->cfg->tcp_backlog, conn_accept) < 0) {
        snprintf(err, errlen, "listen %s:%d: %s", host, port, strerror(errno));
        uv_close((uv_handle_t *)l, NULL);
        return -1;
    }
    w->nlisteners++;
    return 0;
}

static int open_listeners(struct worker *w, char *err, size_t errlen)
{
    struct server_config *sc = w->srv->cfg;
    if (sc->port == 0)
        return 0;
    char *binds = xstrdup(sc->bind && *sc->bind ? sc->bind : "127.0.0.1");
    int rc = 0;
    char *save = NULL;
    for (char *tok = strtok_r(binds, " ", &save); tok && rc == 0; tok = strtok_r(NULL, " ", &save)) {
        if (w->nlisteners >= (int)(sizeof w->listeners / sizeof w->listeners[0]))
            break;
        const char *host = tok[0] == '-' ? tok + 1 : tok; /* "-addr": optional */
        rc = open_listener(w, host, (int)sc->port, err, errlen);
        if (rc < 0 && tok[0] == '-')
            rc = 0;
    }
    xfree(binds);
    return rc;
}

/* ---- lifecycle ------------------------------------------------------------- */

static void make_run_id(char out[41])
{
    unsigned char r[20] = {0};
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0 || read(fd, r, sizeof r) != (ssize_t)sizeof r) {
        uint64_t x = (uint64_t)clock_mono_us() ^ ((uint64_t)getpid() << 32);
        for (int i = 0; i < 20; i++)
            x = x * 6364136223846793005ULL + 1, r[i] = (unsigned char)(x >> 56);
    }
    if (fd >= 0)
        close(fd);
    for (int i = 0; i < 20; i++)
        snprintf(out + 2 * i, 3, "%02x", r[i]);
}

struct server *server_new(struct server_config *sc, struct cfg *conf, const char *conf_path, struct eng *e,
                          char *err, size_t errlen)
{
    if (sc->daemonize) {
        snprintf(err, errlen, "daemonize yes is not supported: obentchi-server runs in the foreground; let systemd, "
                              "Docker or Kubernetes run it in the background (set daemonize no)");
        return NULL;
    }
    if (acl_load_config(err, errlen) < 0) /* the command table is whole by now */
        return NULL;
    sendbatch_enable(sc->io_uring); /* CONFIG SET io-uring changes it later (options.c) */
    struct server *s = xcalloc(1, sizeof *s);
    s->cfg = sc;
    s->conf = conf;
    s->conf_path = conf_path ? xstrdup(conf_path) : NULL;
    s->eng = e;
    s->start_ms = clock_wall_ms();
    make_run_id(s->run_id);
    pthread_mutex_init(&s->clients_lock, NULL);
    pthread_mutex_init(&s->slowlog_lock, NULL);
    s->nworkers = sc->io_threads > 0 ? (int)sc->io_threads : (int)sc->shards;
    s->workers = xcalloc((size_t)s->nworkers, sizeof *s->workers);
    features_init(s); /* transactions, pub/sub, blocking: registries and engine hooks */
    int ncmds = cmd_id_count(); /* statistics are by command id, subcommands included */
    for (int i = 0; i < s->nworkers; i++) {
        struct worker *w = &s->workers[i];
        w->id = i;
        w->ops_sample_ms = s->start_ms; /* server_alive: a cron that never ran is late too */
        w->srv = s;
        uv_loop_init(&w->loop);
        pthread_mutex_init(&w->mbox_lock, NULL);
        uv_async_init(&w->loop, &w->wake, on_wake);
        w->wake.data = w;
        uv_check_init(&w->loop, &w->self_check);
        w->self_check.data = w;
        uv_check_start(&w->self_check, on_self_check);
        uv_idle_init(&w->loop, &w->self_idle);
        w->self_idle.data = w;
        uv_idle_init(&w->loop, &w->spin_idle);
        w->spin_idle.data = w;
        uv_timer_init(&w->loop, &w->cron);
        w->cron.data = w;
        kt_init(&w->byid);
        w->cmdstats = xcalloc((size_t)ncmds, sizeof *w->cmdstats);
        if (open_listeners(w, err, errlen) < 0) {
            s->nworkers = i + 1;
            server_free(s);
            return NULL;
        }
    }
    return s;
}

void server_set_hooks(struct server *s, const struct server_hooks *h)
{
    s->hooks = *h;
    features_set_journal(s); /* the engine's journal hook forwards to h->journal */
}

static void worker_main(void *arg)
{
    struct worker *w = arg;
    current = w;
    uint64_t period = (uint64_t)(1000 / (w->srv->cfg->hz > 0 ? w->srv->cfg->hz : 10));
    uv_timer_start(&w->cron, on_cron, period, period);
    uv_run(&w->loop, UV_RUN_DEFAULT);
}

static uv_signal_t sig_term, sig_int;

static void begin_shutdown(struct server *s)
{
    uv_signal_stop(&sig_term);
    uv_signal_stop(&sig_int);
    uv_close((uv_handle_t *)&sig_term, NULL);
    uv_close((uv_handle_t *)&sig_int, NULL);
    uv_close((uv_handle_t *)&s->main_wake, NULL);
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct server *s = h->data;
    log_info(signum == SIGINT ? "received SIGINT, shutting down" : "received SIGTERM, shutting down", "%s", "");
    if (s->hooks.save_on_shutdown)
        s->hooks.save_on_shutdown(s->hooks.ud, 0);
    begin_shutdown(s);
}

static void on_main_wake(uv_async_t *a)
{
    struct server *s = a->data;
    if (atomic_load(&s->shutdown_asked))
        begin_shutdown(s);
}

int server_run(struct server *s)
{
    uv_loop_t *main_loop = uv_default_loop();
    s->main_loop = main_loop;
    uv_signal_init(main_loop, &sig_term);
    uv_signal_init(main_loop, &sig_int);
    sig_term.data = sig_int.data = s;
    uv_signal_start(&sig_term, on_signal, SIGTERM);
    uv_signal_start(&sig_int, on_signal, SIGINT);
    uv_async_init(main_loop, &s->main_wake, on_main_wake);
    s->main_wake.data = s;
    for (int i = 0; i < s->nworkers; i++)
        uv_thread_create(&s->workers[i].thread, worker_main, &s->workers[i]);
    log_info("ready to accept connections", "port=%lld shards=%lld io_threads=%d", (long long)s->cfg->port,
             (long long)s->cfg->shards, s->nworkers);
    uv_run(main_loop, UV_RUN_DEFAULT);
    if (s->repl.stopping) /* its thread posts to the workers: it stops first */
        s->repl.stopping(s->repl.ud);
    for (int i = 0; i < s->nworkers; i++)
        worker_post(&s->workers[i], MSG_STOP, 0, NULL, 0);
    for (int i = 0; i < s->nworkers; i++)
        uv_thread_join(&s->workers[i].thread);
    uv_loop_close(main_loop);
    log_info("server stopped", "%s", "");
    return 0;
}

static void drain_and_close(struct worker *w)
{
    uv_walk(&w->loop, close_handle, w);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    while (w->mbox_head) {
        struct msg *m = w->mbox_head;
        w->mbox_head = m->next;
        xfree(m);
    }
    uv_loop_close(&w->loop);
}

void server_free(struct server *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->nworkers; i++) {
        struct worker *w = &s->workers[i];
        drain_and_close(w);
        sendbatch_free(w->batch);
        pthread_mutex_destroy(&w->mbox_lock);
        kt_release(&w->byid);
        xfree(w->cmdstats);
    }
    for (int i = 0; i < s->slowlog_len; i++) {
        struct slowlog_entry *e = &s->slowlog[i];
        for (int j = 0; j < e->argc; j++)
            xfree((void *)e->argv[j].p);
        xfree(e->argv);
    }
    xfree(s->slowlog);
    xfree(s->workers);
    features_free(s);
    xfree(s->conf_path);
    pthread_mutex_destroy(&s->clients_lock);
    pthread_mutex_destroy(&s->slowlog_lock);
    xfree(s);
}
