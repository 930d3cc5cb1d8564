/* snapshot.c: the snapshot scheduler (replication.h).  One background thread
 * does all the slow work: the restore at start, then each snapshot (fork,
 * frames from the child to the store, commit, prune), and checks the `save`
 * rules ten times a second.  Commands and hooks only post requests and read
 * the state under one lock, so no loop ever waits on a disk or on MongoDB
 * (SAVE and SHUTDOWN SAVE wait, on their own thread, as Redis's do).
 *
 * States, under s->lock:
 *
 *   loading --(restore done)--> idle --(BGSAVE, SAVE, a rule due)--> running
 *      running --(committed / failed)--> idle
 *
 * A failed snapshot leaves the previous ones as they were (the stores make
 * that so), logs one line saying why, sets rdb_last_bgsave_status:err and
 * counts in snapshot_failures; the rules retry it after 5 s, doubling up to
 * 5 minutes while it keeps failing. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/err.h"
#include "base/log.h"
#include "replication.h"
#include "resp.h"
#include "snap_int.h"

#define RETRY_FIRST_MS 5000
#define RETRY_MAX_MS 300000
#define RULE_CHECK_MS 100

struct repl_snap {
    struct eng *e;
    struct repl_snap_config *cfg;
    struct repl_snap_env env;
    struct server_cmd rows[3];
    pthread_t thread;
    int started;
    _Atomic int stop;
    pthread_mutex_t lock;
    pthread_cond_t wake, done;
    /* requests: a ticket per snapshot asked; SAVE waits for its own */
    uint64_t asked, finished, last_ok_ticket;
    int shutting;
    /* the running snapshot */
    int loading, running;
    struct snap_child *cur; /* the running writer (child or thread), under lock */
    int last_versioned;      /* the last one started was a versioned walk (no fork) */
    uint64_t cur_keys_total; /* keys at the running one's instant */
    int64_t run_start_ms;
    struct snap_progress *prog;
    uint64_t keys_total, cow_peak, chunks_done;
    /* results */
    int64_t lastsave_s, last_try_ms, last_bgsave_secs, last_fork_us;
    int last_ok;
    uint64_t saves, failures, consecutive_failures, last_cow, last_keys, last_bytes;
    char last_id[SNAP_ID_MAX], last_error[600];
    /* the restore at start */
    int64_t loading_start_s, loading_t0_us;
    uint64_t loading_total, loading_done, loading_keys, load_keys_loaded, load_keys_expired;
    /* the thread's own */
    struct snap_store *mongo;
};

static int mongo_configured(const struct repl_snap *s)
{
    return s->cfg->mongo_uri && *s->cfg->mongo_uri;
}

static const char *store_name(const struct repl_snap *s) { return mongo_configured(s) ? "mongo" : "file"; }

/* ---- stores ------------------------------------------------------------------------ */

/* The store for the next snapshot or restore: the MongoDB store is kept
 * across snapshots (one client, owned by this thread) and rebuilt after a
 * failure; the file store is made each time (dbfilename may change). */
static struct snap_store *store_get(struct repl_snap *s, int mongo, char *err, size_t errlen)
{
    if (!mongo) {
        char *base = repl_options_dbfilename();
        struct snap_store *st = snap_file_open(NULL, base);
        xfree(base);
        return st;
    }
    if (!s->mongo)
        s->mongo = snap_mongo_open(s->cfg->mongo_uri, s->cfg->mongo_database, s->cfg->mongo_collection,
                                   s->cfg->mongo_write_concern, err, errlen);
    return s->mongo;
}

static void store_put(struct repl_snap *s, struct snap_store *st, int failed)
{
    if (st != s->mongo)
        st->ops->close(st);
    else if (failed) { /* a fresh client next time: the old one may hold a dead connection */
        st->ops->close(st);
        s->mongo = NULL;
    }
}

/* ---- one snapshot ------------------------------------------------------------------ */

struct job {
    struct repl_snap *s;
    struct snap_store *st;
    struct snap_child ch;
    struct snap_meta meta;
    struct snap_pump pump;
    char err[600];
};

static int job_fail(struct job *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int job_fail(struct job *j, const char *fmt, ...)
{
    if (!j->err[0]) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(j->err, sizeof j->err, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static void note_progress(void *ud)
{
    struct job *j = ud;
    struct repl_snap *s = j->s;
    uint64_t cow = atomic_load(&j->ch.progress->cow_bytes);
    pthread_mutex_lock(&s->lock);
    s->chunks_done = j->meta.chunks;
    if (cow > s->cow_peak)
        s->cow_peak = cow;
    pthread_mutex_unlock(&s->lock);
}

/* Runs one snapshot from fork to prune; 0 or -1 with j->err. */
static int job_run(struct job *j)
{
    struct repl_snap *s = j->s;
    char err[512] = "";
    j->st = store_get(s, mongo_configured(s), err, sizeof err);
    if (!j->st)
        return job_fail(j, "%s", err);
    snap_make_id(j->meta.id, clock_wall_ms());
    int rc = snap_fork_start(s->e, &j->meta, (size_t)s->cfg->snapshot_chunk_size, s->env.repl_offset, s->env.ud,
                             &j->ch);
    if (rc < 0)
        return job_fail(j, "fork: %s", strerror(-rc));
    pthread_mutex_lock(&s->lock);
    s->cur = &j->ch;
    s->prog = j->ch.progress;
    s->keys_total = j->ch.keys_total;
    s->last_fork_us = j->ch.fork_us;
    s->last_versioned = j->ch.thread != NULL;
    s->cur_keys_total = j->ch.keys_total;
    s->cow_peak = 0;
    pthread_mutex_unlock(&s->lock);
    log_info("snapshot started", "id=%s store=%s pid=%d keys=%" PRIu64 " fork_usec=%" PRId64, j->meta.id,
             j->st->ops->name, (int)j->ch.pid, j->ch.keys_total, j->ch.fork_us);
    j->pump = (struct snap_pump){.st = j->st, .meta = &j->meta, .on_chunk = note_progress, .ud = j, .child = &j->ch};
    rc = snap_pump_run(&j->pump, j->ch.fd);
    int waited = snap_child_wait(&j->ch, rc < 0, err, sizeof err);
    pthread_mutex_lock(&s->lock);
    s->cur = NULL;
    pthread_mutex_unlock(&s->lock);
    if (atomic_load(&s->stop) && (rc < 0 || waited < 0))
        return job_fail(j, "stopped: the server is shutting down");
    if (rc < 0)
        return job_fail(j, "%s", j->pump.err);
    if (waited < 0)
        return job_fail(j, "%s", err);
    if (j->st->ops->commit(j->st, &j->pump.trailer, j->pump.tframe.p, j->pump.tframe.len) < 0)
        return job_fail(j, "%s", j->st->err);
    j->pump.began = 0;
    if (j->st->ops->prune(j->st, (int)s->cfg->snapshot_keep) < 0)
        log_warn("removing old snapshots failed", "store=%s error=\"%s\"", j->st->ops->name, j->st->err);
    return 0;
}

static void job_finish(struct repl_snap *s, struct job *j, int rc, uint64_t ticket)
{
    int64_t now = clock_wall_ms();
    uint64_t cow = j->ch.progress ? atomic_load(&j->ch.progress->cow_bytes) : 0;
    if (rc == 0)
        eng_dirty_sub(s->e, j->ch.dirty_before);
    pthread_mutex_lock(&s->lock);
    int64_t secs = (now - s->run_start_ms + 500) / 1000;
    s->last_try_ms = now;
    s->last_bgsave_secs = secs;
    s->last_cow = cow;
    if (cow > s->cow_peak)
        s->cow_peak = cow;
    s->last_ok = rc == 0;
    if (rc == 0) {
        s->lastsave_s = now / 1000;
        s->saves++;
        s->consecutive_failures = 0;
        s->last_ok_ticket = ticket;
        snprintf(s->last_id, sizeof s->last_id, "%s", j->meta.id);
        s->last_keys = j->pump.trailer.counts.keys;
        s->last_bytes = j->meta.stored_bytes;
        s->last_error[0] = '\0';
    } else {
        s->failures++;
        s->consecutive_failures++;
        snprintf(s->last_error, sizeof s->last_error, "%s", j->err);
    }
    s->prog = NULL;
    s->finished = ticket;
    s->running = 0;
    pthread_cond_broadcast(&s->done);
    pthread_mutex_unlock(&s->lock);
    if (rc == 0)
        log_info("snapshot done", "id=%s store=%s keys=%" PRIu64 " chunks=%u bytes=%" PRIu64 " raw_bytes=%" PRIu64
                 " ms=%" PRId64 " child_cpu_ms=%" PRId64 " cow_bytes=%" PRIu64 " repl_offset=%" PRIu64,
                 j->meta.id, j->st->ops->name, j->pump.trailer.counts.keys, j->meta.chunks, j->meta.stored_bytes,
                 j->pump.trailer.raw_bytes, now - s->run_start_ms, j->ch.cpu_us / 1000, cow, j->meta.repl_offset);
    else
        log_warn("snapshot failed", "id=%s store=%s error=\"%s\" consecutive_failures=%" PRIu64, j->meta.id,
                 store_name(s), j->err, s->consecutive_failures);
}

static void run_snapshot(struct repl_snap *s)
{
    pthread_mutex_lock(&s->lock);
    uint64_t ticket = s->asked;
    pthread_mutex_unlock(&s->lock);
    struct job j = {.s = s};
    j.ch.fd = -1;
    int rc = job_run(&j);
    if (rc < 0 && j.pump.began)
        j.st->ops->abort(j.st);
    job_finish(s, &j, rc, ticket);
    if (j.st)
        store_put(s, j.st, rc < 0);
    snap_child_release(&j.ch);
    snap_pump_release(&j.pump);
}

/* ---- the save rules ------------------------------------------------------------------- */

static int64_t retry_delay_ms(uint64_t failures)
{
    int64_t d = RETRY_FIRST_MS;
    for (uint64_t i = 1; i < failures && d < RETRY_MAX_MS; i++)
        d *= 2;
    return d < RETRY_MAX_MS ? d : RETRY_MAX_MS;
}

/* Redis's serverCron test: a rule whose change count and time have both
 * passed, unless the last try failed too recently. */
static int rule_due(struct repl_snap *s)
{
    struct repl_save_rule rules[REPL_MAX_SAVE_RULES];
    int n = repl_options_rules(rules);
    if (!n)
        return 0;
    uint64_t dirty = eng_dirty(s->e);
    int64_t now = clock_wall_ms();
    pthread_mutex_lock(&s->lock);
    int due = 0;
    int backoff = !s->last_ok && now - s->last_try_ms < retry_delay_ms(s->consecutive_failures);
    for (int i = 0; i < n && !due && !backoff && !s->shutting; i++)
        due = dirty >= (uint64_t)rules[i].changes && now / 1000 - s->lastsave_s > rules[i].seconds;
    if (due && !s->running) {
        s->running = 1;
        s->run_start_ms = now;
        s->asked++;
    }
    pthread_mutex_unlock(&s->lock);
    return due;
}

/* ---- the restore at start ------------------------------------------------------------- */

static void load_begin(void *ud, uint64_t total)
{
    struct repl_snap *s = ud;
    pthread_mutex_lock(&s->lock);
    s->loading_total = total;
    s->loading_done = s->loading_keys = 0;
    pthread_mutex_unlock(&s->lock);
}

static void load_progress(void *ud, uint64_t bytes, uint64_t keys)
{
    struct repl_snap *s = ud;
    pthread_mutex_lock(&s->lock);
    s->loading_done = bytes;
    s->loading_keys = keys;
    pthread_mutex_unlock(&s->lock);
}

static int restore_source(const struct repl_snap *s)
{
    int from = s->cfg->restore_from;
    if (from == REPL_RESTORE_AUTO)
        from = mongo_configured(s) ? REPL_RESTORE_MONGO : REPL_RESTORE_FILE;
    return from;
}

/* Loads the newest usable snapshot.  A store that cannot be read (MongoDB
 * down) is retried with backoff while LOADING holds, rather than starting
 * empty: an empty start followed by snapshots would prune the good ones.
 * `restore-from none` starts empty on purpose. */
static void restore_at_start(struct repl_snap *s)
{
    int from = restore_source(s);
    if (!s->loading)
        return;
    int mongo = from == REPL_RESTORE_MONGO;
    struct snap_restore_ctl ctl = {.ud = s, .begin = load_begin, .progress = load_progress, .stop = &s->stop};
    for (uint64_t attempt = 1; !atomic_load(&s->stop); attempt++) {
        char err[512] = "";
        struct snap_store *st = store_get(s, mongo, err, sizeof err);
        struct snap_restore_result res;
        int rc = st ? snap_restore(st, s->e, &ctl, &res) : -1;
        if (st && rc < 0)
            snprintf(err, sizeof err, "%s", st->err);
        if (st)
            store_put(s, st, rc < 0);
        if (rc >= 0) {
            pthread_mutex_lock(&s->lock);
            s->load_keys_loaded = res.keys_loaded;
            s->load_keys_expired = res.keys_expired;
            pthread_mutex_unlock(&s->lock);
            eng_dirty_sub(s->e, eng_dirty(s->e));
            return;
        }
        int64_t delay = retry_delay_ms(attempt) / 5; /* 1 s, 2 s, ... 60 s */
        log_warn("restore failed, retrying (restore-from none starts empty)", "store=%s error=\"%s\" attempt=%" PRIu64
                 " retry_in_ms=%" PRId64, mongo ? "mongo" : "file", atomic_load(&s->stop) ? "stopped" : err, attempt,
                 delay);
        pthread_mutex_lock(&s->lock);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += delay / 1000;
        ts.tv_nsec += (delay % 1000) * 1000000;
        if (ts.tv_nsec >= 1000000000)
            ts.tv_sec++, ts.tv_nsec -= 1000000000;
        if (!atomic_load(&s->stop))
            pthread_cond_timedwait(&s->wake, &s->lock, &ts);
        pthread_mutex_unlock(&s->lock);
    }
}

/* ---- the thread ------------------------------------------------------------------------- */

static void *thread_main(void *arg)
{
    struct repl_snap *s = arg;
    restore_at_start(s);
    pthread_mutex_lock(&s->lock);
    s->loading = 0;
    pthread_mutex_unlock(&s->lock);
    if (s->env.set_loading)
        s->env.set_loading(s->env.ud, 0);
    for (;;) {
        pthread_mutex_lock(&s->lock);
        if (!s->running && !atomic_load(&s->stop)) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += RULE_CHECK_MS * 1000000L;
            if (ts.tv_nsec >= 1000000000)
                ts.tv_sec++, ts.tv_nsec -= 1000000000;
            pthread_cond_timedwait(&s->wake, &s->lock, &ts);
        }
        int run = s->running;
        pthread_mutex_unlock(&s->lock);
        if (atomic_load(&s->stop))
            break;
        if (run || rule_due(s))
            run_snapshot(s);
    }
    return NULL;
}

/* ---- requests ---------------------------------------------------------------------------- */

/* Asks for a snapshot now; the caller holds s->lock.  0, or -1 when one is
 * running already. */
static int ask_locked(struct repl_snap *s, uint64_t *ticket)
{
    if (s->running)
        return -1;
    s->running = 1;
    s->run_start_ms = clock_wall_ms();
    *ticket = ++s->asked;
    pthread_cond_signal(&s->wake);
    return 0;
}

/* Waits for the snapshot of ticket; 0 when it (or a later one) succeeded. */
static int wait_locked(struct repl_snap *s, uint64_t ticket)
{
    while (s->finished < ticket)
        pthread_cond_wait(&s->done, &s->lock);
    return s->last_ok_ticket >= ticket ? 0 : -1;
}

static int cmd_save(void *ud, const struct server_cmd_call *k)
{
    struct repl_snap *s = ud;
    uint64_t ticket;
    pthread_mutex_lock(&s->lock);
    int rc = ask_locked(s, &ticket);
    if (rc == 0)
        rc = wait_locked(s, ticket) < 0 ? -2 : 0;
    pthread_mutex_unlock(&s->lock);
    if (rc == -1)
        resp_w_error(k->out, "ERR Background save already in progress");
    else if (rc == -2)
        resp_w_error(k->out, "ERR");
    else
        resp_w_simple(k->out, "OK");
    return rc < 0 ? -1 : 0;
}

static int cmd_bgsave(void *ud, const struct server_cmd_call *k)
{
    struct repl_snap *s = ud;
    int schedule = k->argc == 2 && k->argv[1].n == 8 && !strncasecmp(k->argv[1].p, "schedule", 8);
    if (k->argc > 2 || (k->argc == 2 && !schedule)) {
        resp_w_error(k->out, "ERR syntax error");
        return -1;
    }
    /* SCHEDULE waits for another kind of child (Redis: an AOF rewrite);
     * snapshots are the only one here, and one already running refuses
     * both forms, as Redis does for its RDB child. */
    uint64_t ticket;
    pthread_mutex_lock(&s->lock);
    int rc = ask_locked(s, &ticket);
    pthread_mutex_unlock(&s->lock);
    if (rc == 0)
        resp_w_simple(k->out, "Background saving started");
    else
        resp_w_error(k->out, "ERR Background save already in progress");
    return rc;
}

static int cmd_lastsave(void *ud, const struct server_cmd_call *k)
{
    struct repl_snap *s = ud;
    pthread_mutex_lock(&s->lock);
    int64_t t = s->lastsave_s;
    pthread_mutex_unlock(&s->lock);
    resp_w_int(k->out, t);
    return 0;
}

int repl_snap_save_on_shutdown(void *ud, int explicit_save)
{
    struct repl_snap *s = ud;
    struct repl_save_rule rules[REPL_MAX_SAVE_RULES];
    if (!explicit_save && repl_options_rules(rules) == 0)
        return 0;
    pthread_mutex_lock(&s->lock);
    if (s->loading || !s->started) {
        pthread_mutex_unlock(&s->lock);
        log_warn("no snapshot on shutdown", "reason=%s", s->loading ? "still loading" : "not started");
        return 0;
    }
    s->shutting = 1;
    if (s->running) { /* as Redis: the background one goes, a new one is taken now */
        if (s->cur)
            snap_child_cancel(s->cur);
        while (s->running)
            pthread_cond_wait(&s->done, &s->lock);
    }
    uint64_t ticket;
    log_info("saving a snapshot before shutdown", "store=%s", store_name(s));
    int rc = ask_locked(s, &ticket) == 0 ? wait_locked(s, ticket) : -1;
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/* ---- INFO ------------------------------------------------------------------------------------ */

void repl_snap_info(void *ud, const char *section, struct buf *o)
{
    struct repl_snap *s = ud;
    if (strcmp(section, "persistence") != 0)
        return;
    uint64_t dirty = eng_dirty(s->e);
    int64_t now = clock_wall_ms();
    pthread_mutex_lock(&s->lock);
    uint64_t done = s->prog ? atomic_load(&s->prog->keys_done) : 0;
    uint64_t cow = s->prog ? atomic_load(&s->prog->cow_bytes) : 0;
    int running = s->running;
    buf_printf(o, "# Persistence\r\nloading:%d\r\nasync_loading:0\r\n", s->loading);
    buf_printf(o, "current_cow_peak:%" PRIu64 "\r\ncurrent_cow_size:%" PRIu64 "\r\ncurrent_cow_size_age:0\r\n",
               running ? s->cow_peak : 0, cow);
    buf_printf(o, "current_fork_perc:%.2f\r\ncurrent_save_keys_processed:%" PRIu64 "\r\n",
               running && s->keys_total ? 100.0 * (double)done / (double)s->keys_total : 0.0, done);
    buf_printf(o, "current_save_keys_total:%" PRIu64 "\r\nrdb_changes_since_last_save:%" PRIu64 "\r\n",
               running ? s->keys_total : 0, dirty);
    buf_printf(o, "rdb_bgsave_in_progress:%d\r\nrdb_last_save_time:%" PRId64 "\r\n", running, s->lastsave_s);
    buf_printf(o, "rdb_last_bgsave_status:%s\r\nrdb_last_bgsave_time_sec:%" PRId64 "\r\n", s->last_ok ? "ok" : "err",
               s->last_bgsave_secs);
    buf_printf(o, "rdb_current_bgsave_time_sec:%" PRId64 "\r\nrdb_saves:%" PRIu64 "\r\n",
               running ? (now - s->run_start_ms) / 1000 : -1, s->saves);
    buf_printf(o, "rdb_last_cow_size:%" PRIu64 "\r\nrdb_last_load_keys_expired:%" PRIu64 "\r\n", s->last_cow,
               s->load_keys_expired);
    buf_printf(o, "rdb_last_load_keys_loaded:%" PRIu64 "\r\n", s->load_keys_loaded);
    buf_puts(o, "aof_enabled:0\r\naof_rewrite_in_progress:0\r\naof_rewrite_scheduled:0\r\n"
                "aof_last_rewrite_time_sec:-1\r\naof_current_rewrite_time_sec:-1\r\n"
                "aof_last_bgrewrite_status:ok\r\naof_rewrites:0\r\naof_rewrites_consecutive_failures:0\r\n"
                "aof_last_write_status:ok\r\naof_last_cow_size:0\r\nmodule_fork_in_progress:0\r\n"
                "module_fork_last_cow_size:0\r\n");
    if (s->loading) {
        double secs = (double)(clock_mono_us() - s->loading_t0_us) / 1e6;
        double perc = s->loading_total ? 100.0 * (double)s->loading_done / (double)s->loading_total : 0.0;
        double rate = secs > 0 ? (double)s->loading_done / secs : 0;
        int64_t eta = rate > 0 && s->loading_total > s->loading_done
                          ? (int64_t)((double)(s->loading_total - s->loading_done) / rate)
                          : 1;
        buf_printf(o, "loading_start_time:%" PRId64 "\r\nloading_total_bytes:%" PRIu64 "\r\n", s->loading_start_s,
                   s->loading_total);
        buf_printf(o, "loading_rdb_used_mem:0\r\nloading_loaded_bytes:%" PRIu64 "\r\nloading_loaded_perc:%.2f\r\n",
                   s->loading_done, perc);
        buf_printf(o, "loading_eta_seconds:%" PRId64 "\r\nloading_keys_loaded:%" PRIu64 "\r\n", eta,
                   s->loading_keys);
    }
    /* obentchi's own: where snapshots go, and how they fare */
    int64_t retry = !s->last_ok ? s->last_try_ms + retry_delay_ms(s->consecutive_failures) - now : 0;
    buf_printf(o, "snapshot_store:%s\r\nsnapshot_last_id:%s\r\n", store_name(s), s->last_id);
    buf_printf(o, "snapshot_last_keys:%" PRIu64 "\r\nsnapshot_last_bytes:%" PRIu64 "\r\n", s->last_keys,
               s->last_bytes);
    buf_printf(o, "snapshot_last_fork_usec:%" PRId64 "\r\nsnapshot_current_chunks:%" PRIu64 "\r\n", s->last_fork_us,
               running ? s->chunks_done : 0);
    /* the pause clients saw (every shard locked: a fork, or a versioned walk's parity flip) */
    buf_printf(o, "snapshot_last_pause_usec:%" PRId64 "\r\nsnapshot_method:%s\r\n", s->last_fork_us,
               s->last_versioned ? "versioned" : "fork");
    buf_printf(o, "snapshot_current_keys_total:%" PRIu64 "\r\n", running && s->cur ? s->cur_keys_total : 0);
    buf_printf(o, "snapshot_failures:%" PRIu64 "\r\nsnapshot_consecutive_failures:%" PRIu64 "\r\n", s->failures,
               s->consecutive_failures);
    buf_printf(o, "snapshot_retry_in_sec:%" PRId64 "\r\nsnapshot_last_error:", retry > 0 ? (retry + 999) / 1000 : 0);
    for (const char *p = s->last_error; *p; p++)
        buf_putc(o, *p == '\r' || *p == '\n' ? ' ' : *p);
    buf_puts(o, "\r\n");
    pthread_mutex_unlock(&s->lock);
}

/* ---- life ------------------------------------------------------------------------------------ */

struct repl_snap *repl_snap_new(struct eng *e, struct repl_snap_config *cfg)
{
    struct repl_snap *s = xcalloc(1, sizeof *s);
    s->e = e;
    s->cfg = cfg;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->wake, NULL);
    pthread_cond_init(&s->done, NULL);
    s->lastsave_s = clock_wall_ms() / 1000;
    s->last_ok = 1;
    s->last_bgsave_secs = -1;
    s->rows[0] = (struct server_cmd){"save", cmd_save, s, 1, "admin noscript no-multi", "server",
                                     "Synchronously saves the database(s) to disk.", "1.0.0", ""};
    s->rows[1] = (struct server_cmd){"bgsave", cmd_bgsave, s, -1, "admin noscript", "server",
                                     "Asynchronously saves the database(s) to disk.", "1.0.0", "[SCHEDULE]"};
    s->rows[2] = (struct server_cmd){"lastsave", cmd_lastsave, s, 1, "fast loading stale", "server",
                                     "Returns the Unix timestamp of the last successful save to disk.", "1.0.0", ""};
    return s;
}

const struct server_cmd *repl_snap_commands(struct repl_snap *s, int *n)
{
    *n = (int)(sizeof s->rows / sizeof s->rows[0]);
    return s->rows;
}

/* Whether the restore has anything to do.  Files are looked at here, before
 * the server serves: with none, it starts ready rather than LOADING for an
 * instant.  MongoDB is asked by the thread (a network round trip). */
static int restore_needed(struct repl_snap *s)
{
    int from = restore_source(s);
    if (from != REPL_RESTORE_FILE)
        return from == REPL_RESTORE_MONGO;
    char err[8];
    struct snap_store *st = store_get(s, 0, err, sizeof err);
    struct snap_list l = {0};
    int rc = st->ops->list(st, &l);
    int n = l.n;
    snap_list_release(&l);
    store_put(s, st, 0);
    if (rc == 0 && n == 0)
        log_info("no snapshot found: starting empty", "store=file");
    return rc < 0 || n > 0;
}

int repl_snap_start(struct repl_snap *s, const struct repl_snap_env *env)
{
    if (env)
        s->env = *env;
    int restoring = restore_needed(s);
    pthread_mutex_lock(&s->lock);
    s->loading = restoring;
    s->loading_start_s = clock_wall_ms() / 1000;
    s->loading_t0_us = clock_mono_us();
    pthread_mutex_unlock(&s->lock);
    if (restoring && s->env.set_loading)
        s->env.set_loading(s->env.ud, 1);
    int rc = pthread_create(&s->thread, NULL, thread_main, s);
    if (rc != 0) {
        if (s->env.set_loading)
            s->env.set_loading(s->env.ud, 0);
        return -rc;
    }
    s->started = 1;
    return 0;
}

int repl_snap_loading(struct repl_snap *s)
{
    pthread_mutex_lock(&s->lock);
    int on = s->loading;
    pthread_mutex_unlock(&s->lock);
    return on;
}

void repl_snap_free(struct repl_snap *s)
{
    if (!s)
        return;
    if (s->started) {
        pthread_mutex_lock(&s->lock);
        atomic_store(&s->stop, 1);
        if (s->cur)
            snap_child_cancel(s->cur);
        pthread_cond_broadcast(&s->wake);
        pthread_mutex_unlock(&s->lock);
        pthread_join(s->thread, NULL);
    }
    if (s->mongo)
        s->mongo->ops->close(s->mongo);
    pthread_cond_destroy(&s->wake);
    pthread_cond_destroy(&s->done);
    pthread_mutex_destroy(&s->lock);
    xfree(s);
}
