/* main.c: the composition root.  Reads the configuration, builds the modules,
 * wires them together, runs.  Nothing else lives here: every option belongs
 * to the module that uses it, every behaviour to its module. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <signal.h>
#include <pthread.h>

#include "base/alloc.h"
#include "base/config.h"
#include "base/log.h"
#include "app.h"
#include "engine.h"
#include "repl.h"
#include "replication.h"
#include "server.h"

extern char **environ;

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: obentchi-server [/path/to/obentchi.conf] [--option value ...]\n"
            "       obentchi-server --help | --version\n\n"
            "Options are named as redis-server's (port, bind, requirepass, maxmemory, ...)\n"
            "plus obentchi's own (shards ...); each can also come from the environment\n"
            "as OBENTCHI_<NAME> (e.g. OBENTCHI_PORT=6380).\n\n"
            "Examples:\n"
            "       obentchi-server                      (defaults: 127.0.0.1:6379)\n"
            "       obentchi-server --port 7777 --shards 4\n"
            "       obentchi-server /etc/obentchi.conf --loglevel verbose\n");
}

/* What the snapshot thread, the bot and its probes need from the server and
 * from replication. */
struct wiring {
    struct server *srv;
    struct repl *repl;
    struct repl_snap *snap;
    struct app *app;        /* NULL once freed, under app_lock */
    pthread_mutex_t app_lock; /* the snapshot thread outlives the bot */
    struct server_repl_ops ops;
};
static void set_loading(void *ud, int on)
{
    struct wiring *w = ud;
    server_set_loading(w->srv, on);
    pthread_mutex_lock(&w->app_lock);
    app_set_loading(w->app, on);
    pthread_mutex_unlock(&w->app_lock);
}
static uint64_t snap_repl_offset(void *ud) { return repl_offset_of(((struct wiring *)ud)->repl); }
static void on_role_change(void *ud, int is_master) { app_set_role(((struct wiring *)ud)->app, is_master); }
static int server_turns(void *ud) { return server_alive(((struct wiring *)ud)->srv, 5000); }
static void replica_status(void *ud, struct buf *out) { repl_status_text(((struct wiring *)ud)->repl, out); }
/* INFO sections for the operator API: replication's, then the snapshots'. */
static void info_text(void *ud, const char *section, struct buf *out)
{
    struct wiring *w = ud;
    w->ops.info(w->ops.ud, section, out);
    repl_snap_info(w->snap, section, out);
}
static void collect_server(void *ud, struct buf *out) { server_metrics(((struct wiring *)ud)->srv, out); }
static void collect_repl(void *ud, struct buf *out) { repl_metrics(((struct wiring *)ud)->repl, out); }
static void collect_snap(void *ud, struct buf *out) { repl_snap_metrics(((struct wiring *)ud)->snap, out); }

/* A start that failed on an ordinary error (a port in use, a bad option):
 * said in the log and on stderr, and nothing of the bot left behind (the
 * sanitizer builds check that). */
static int start_failed(struct app *app, const char *err)
{
    log_warn("startup failed", "error=\"%s\"", err);
    fprintf(stderr, "%s\n", err);
    app_free(app);
    return 1;
}

/* A thread that did not start once the bot runs: the bot leaves the wiring
 * and stops as on a normal exit, then the snapshot thread (it may be
 * loading into the engine). */
static int threads_failed(struct wiring *w, const char *err)
{
    pthread_mutex_lock(&w->app_lock);
    struct app *app = w->app;
    w->app = NULL;
    pthread_mutex_unlock(&w->app_lock);
    int rc = start_failed(app, err);
    repl_snap_free(w->snap);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        usage(stdout);
        return 0;
    }
    if (argc == 2 && (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-v"))) {
        printf("obentchi-server v=%s (Redis protocol 7.0 compatible)\n", OBENTCHI_VERSION);
        return 0;
    }
    signal(SIGPIPE, SIG_IGN);

    char err[512];
    struct cfg *conf = cfg_new();
    struct server_config *sc = server_options_register(conf);
    struct repl_snap_config *rc_snap = repl_options_register(conf);
    struct repl_config *rc_repl = repl_config_register(conf);
    struct app *app = app_new(conf); /* http-* and the bot parts' options */
    char *conf_path = NULL;
    if (cfg_defaults(conf, err, sizeof err) < 0 ||
        cfg_load_all(conf, argc, argv, environ, &conf_path, err, sizeof err) < 0 ||
        repl_options_check(err, sizeof err) < 0) {
        fprintf(stderr, "\n*** FATAL CONFIG FILE ERROR (obentchi %s) ***\n%s\n", OBENTCHI_VERSION, err);
        return 1;
    }
    if (sc->logfile && *sc->logfile && log_open(sc->logfile) < 0) {
        fprintf(stderr, "Can't open the log file: %s\n", sc->logfile);
        return 1;
    }
    log_set_level((enum log_level)sc->loglevel);
    log_set_format((enum log_format)sc->log_format);
    if (sc->dir && *sc->dir && chdir(sc->dir) < 0) {
        fprintf(stderr, "Can't chdir to '%s'\n", sc->dir);
        return 1;
    }
    long ncores = sysconf(_SC_NPROCESSORS_ONLN);
    ncores = ncores < 1 ? 1 : ncores > 256 ? 256 : ncores;
    if (sc->shards == 0)
        sc->shards = ncores;
    /* Worker threads: one per shard, but one core is left to the bot's
     * loop, snapshots, replication and, on a small node, whatever else runs
     * there.  On 2 cores one worker beside a load generator serves as much as
     * two and with fewer wake-ups: less CPU per request, a lower p99
     * (tools/bench, figures in the README). */
    if (sc->io_threads == 0) {
        long n = ncores > 1 ? ncores - 1 : 1;
        sc->io_threads = n < sc->shards ? n : sc->shards;
    }

    struct eng_config ec = {.nshards = (int)sc->shards, .ndb = (int)sc->databases, .maxmemory = sc->maxmemory,
                            .policy = sc->maxmemory_policy, .maxmemory_samples = (int)sc->maxmemory_samples};
    struct eng *e = eng_new(&ec);
    server_options_bind_engine(e);
    struct repl_snap *snap = repl_snap_new(e, rc_snap);
    struct repl *repl = repl_new(e, rc_repl);
    int ncmds;
    const struct server_cmd *cmds = repl_snap_commands(snap, &ncmds);
    int nbot;
    const struct server_cmd *bot_cmds = app_commands(app, &nbot);
    struct server *srv = NULL;
    if (server_register_commands(cmds, ncmds, err, sizeof err) == 0 &&
        (nbot == 0 || server_register_commands(bot_cmds, nbot, err, sizeof err) == 0))
        srv = server_new(sc, conf, conf_path, e, err, sizeof err);
    if (!srv)
        return start_failed(app, err);
    log_info("obentchi starting", "version=%s pid=%d port=%lld shards=%lld config=%s", OBENTCHI_VERSION,
             (int)getpid(), (long long)sc->port, (long long)sc->shards, conf_path ? conf_path : "none");
    server_set_hooks(srv, &(struct server_hooks){.ud = snap, .info = repl_snap_info,
                                                 .save_on_shutdown = repl_snap_save_on_shutdown});
    struct server_repl_ops ops;
    repl_ops(repl, &ops);
    server_set_repl_ops(srv, &ops);
    struct wiring wiring = {.srv = srv, .repl = repl, .snap = snap, .app = app, .ops = ops,
                            .app_lock = PTHREAD_MUTEX_INITIALIZER};
    /* The bot: its listener binds here (a port in use stops the start), its
     * parts start on its own thread; it acts only while this node is a master
     * that has loaded its data. */
    app_set_health_env(app, &(struct app_health_env){.ud = &wiring, .server_alive = server_turns,
                                                     .replica_status = replica_status, .info = info_text});
    app_add_collector(app, collect_server, &wiring);
    app_add_collector(app, collect_repl, &wiring);
    app_add_collector(app, collect_snap, &wiring);
    app_set_role(app, !(rc_repl->master_host && *rc_repl->master_host));
    app_set_loading(app, 1); /* until the snapshot thread says whether it restores: no 200 from /readyz before */
    if (app_start(app, e, err, sizeof err) < 0)
        return start_failed(app, err);
    struct repl_snap_env env = {.ud = &wiring, .set_loading = set_loading, .repl_offset = snap_repl_offset};
    if (repl_snap_start(snap, &env) < 0)
        return threads_failed(&wiring, "cannot start the snapshot thread");
    if (!repl_snap_loading(snap))
        app_set_loading(app, 0); /* nothing to restore (a restore clears it when done) */
    if (repl_start(repl, srv, sc, &(struct repl_env){.ud = &wiring, .on_role_change = on_role_change}) < 0)
        return threads_failed(&wiring, "cannot start the replication thread");
    /* the pid file only once every part runs: a failed start leaves none */
    if (sc->pidfile && *sc->pidfile) {
        FILE *f = fopen(sc->pidfile, "w");
        if (f) {
            fprintf(f, "%d\n", (int)getpid());
            fclose(f);
        }
    }
    int rc = server_run(srv); /* stops replication's thread on its way out */
    /* the bot first: its parts use the engine and the server.  The snapshot
     * thread, still running, may say a restore ended: it finds no bot */
    pthread_mutex_lock(&wiring.app_lock);
    wiring.app = NULL;
    pthread_mutex_unlock(&wiring.app_lock);
    app_free(app);
    repl_snap_free(snap); /* before the engine: its thread may be loading into it */
    server_free(srv);
    repl_free(repl); /* after the server: closing replicas still report to it */
    eng_free(e);
    if (sc->pidfile && *sc->pidfile)
        unlink(sc->pidfile);
    xfree(conf_path);
    cfg_free(conf);
    return rc;
}
