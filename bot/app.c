/* app.c: the bot's host (app.h): one thread, one libuv loop, holding the
 * HTTP listener, the outbound client and the parts (parts.h), in the
 * table's order.
 *
 * Start.  app_start() creates the loop and binds the listener on the
 * caller's thread (so a port in use fails the server's start with a clear
 * message), then starts the thread, which runs every part's start on the
 * loop and reports the outcome back before app_start() returns: a part that
 * cannot start fails the process's start too.
 *
 * Other threads talk to the loop only through one uv_async: role changes
 * (replication's thread), stop (main).  Loading and the role are plain
 * atomics that any thread may set.  Stop runs the parts' stops in reverse
 * order, closes the listener, the client and the app's own handles, lets
 * the loop finish their closes, and the thread ends. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include <uv.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/log.h"
#include "beat.h"
#include "http.h"
#include "httpc.h"
#include "parts.h"
#include "server.h"

static const struct app_part *const parts[] = {
    &bot_part_health, &bot_part_ledger, &bot_part_queue, &bot_part_pay,
    &bot_part_tg,     &bot_part_sched,  &bot_part_api,
};
enum { NPARTS = sizeof parts / sizeof parts[0] };

struct collector {
    void (*fn)(void *ud, struct buf *out);
    void *ud;
};
struct ready_check {
    const char *(*fn)(void *ud);
    void *ud;
};
struct role_cb {
    void (*fn)(void *ud, int is_master);
    void *ud;
};

struct app {
    struct http_config *hcfg;
    struct eng *eng;
    uv_loop_t loop;
    int loop_init;
    uv_thread_t thread;
    int thread_started;
    uv_async_t wake;
    struct beat beat;           /* the loop's heartbeat, read by any thread */
    struct http_server *http;
    struct httpc *httpc;
    /* set by any thread, acted on by the loop */
    _Atomic int is_master;      /* the role the loop last acted on */
    _Atomic int want_master;    /* the role replication last told */
    _Atomic int loading;
    _Atomic int stop_asked;
    /* start hand-shake */
    uv_sem_t started;
    int start_rc;
    char start_err[256];
    int nstarted;               /* parts whose start succeeded */
    /* parts */
    struct server_cmd *cmds;
    int ncmds;
    void *state[NPARTS];
    struct collector *collectors;
    int ncollectors;
    struct ready_check *checks; /* readiness (app_add_ready_check) */
    int nchecks;
    struct ready_check *live; /* liveness (app_add_live_check) */
    int nlive;
    struct role_cb *role_cbs;
    int nrole_cbs;
    struct app_health_env health;
    int64_t start_wall_ms;
};

/* ---- construction -------------------------------------------------------- */

struct app *app_new(struct cfg *c)
{
    struct app *a = xcalloc(1, sizeof *a);
    a->hcfg = http_options_register(c);
    for (int i = 0; i < NPARTS; i++)
        if (parts[i]->options)
            parts[i]->options(c);
    atomic_store(&a->is_master, 1);
    atomic_store(&a->want_master, 1);
    a->start_wall_ms = clock_wall_ms();
    return a;
}

const struct server_cmd *app_commands(struct app *a, int *n)
{
    if (!a->cmds) {
        for (int i = 0; i < NPARTS; i++) {
            int k = 0;
            const struct server_cmd *rows = parts[i]->commands ? parts[i]->commands(&k) : NULL;
            if (!rows || k <= 0)
                continue;
            a->cmds = xrealloc(a->cmds, sizeof *a->cmds * (size_t)(a->ncmds + k));
            memcpy(a->cmds + a->ncmds, rows, sizeof *rows * (size_t)k);
            a->ncmds += k;
        }
    }
    *n = a->ncmds;
    return a->cmds;
}

void app_set_health_env(struct app *a, const struct app_health_env *env) { a->health = *env; }
const struct app_health_env *app_health_env(const struct app *a) { return &a->health; }

/* ---- the loop thread ----------------------------------------------------- */

static void stop_on_loop(struct app *a)
{
    for (int i = a->nstarted - 1; i >= 0; i--)
        if (parts[i]->stop)
            parts[i]->stop(a);
    a->nstarted = 0;
    http_server_close(a->http);
    httpc_free(a->httpc);
    a->httpc = NULL;
    beat_close(&a->beat);
    uv_close((uv_handle_t *)&a->wake, NULL);
}

/* The role the parts act on: a master that has loaded its data (while a
 * snapshot loads, what they would read is not there yet, and what they
 * would write the load overwrites).  Parts hear of it when it changes, so
 * recovery of work left in the engine runs once the load is done. */
static void apply_role(struct app *a)
{
    int want = atomic_load(&a->want_master) && !atomic_load(&a->loading);
    if (want == atomic_load(&a->is_master))
        return;
    atomic_store(&a->is_master, want);
    log_info("bot role", "role=%s", want ? "master" : "replica");
    for (int i = 0; i < a->nrole_cbs; i++)
        a->role_cbs[i].fn(a->role_cbs[i].ud, want);
}

static void on_wake(uv_async_t *h)
{
    struct app *a = h->data;
    if (atomic_load(&a->stop_asked)) {
        stop_on_loop(a);
        return;
    }
    apply_role(a);
}

static void app_thread(void *arg)
{
    struct app *a = arg;
    a->start_rc = 0;
    for (int i = 0; i < NPARTS; i++) {
        if (parts[i]->start && parts[i]->start(a, a->start_err, sizeof a->start_err) < 0) {
            a->start_rc = -1;
            char tmp[sizeof a->start_err];
            snprintf(tmp, sizeof tmp, "%s", a->start_err);
            snprintf(a->start_err, sizeof a->start_err, "bot part %s: %.200s", parts[i]->name, tmp);
            break;
        }
        a->nstarted = i + 1;
    }
    if (a->start_rc < 0)
        stop_on_loop(a);
    int ok = a->start_rc == 0;
    uv_sem_post(&a->started); /* a may not be touched by main until then */
    if (ok) {
        beat_now(&a->beat);
        /* a role told before the loop ran */
        apply_role(a);
    }
    uv_run(&a->loop, UV_RUN_DEFAULT);
    /* every handle closed: stragglers (parts' closes) finish here */
    uv_run(&a->loop, UV_RUN_NOWAIT);
}

int app_start(struct app *a, struct eng *e, char *err, size_t errlen)
{
    a->eng = e;
    if (uv_loop_init(&a->loop) < 0) {
        snprintf(err, errlen, "bot: cannot create the event loop");
        return -1;
    }
    a->loop_init = 1;
    a->http = http_server_new(&a->loop, a->hcfg, err, errlen);
    if (!a->http)
        goto fail_loop;
    a->httpc = httpc_new(&a->loop);
    uv_async_init(&a->loop, &a->wake, on_wake);
    a->wake.data = a;
    beat_init(&a->beat, &a->loop);
    uv_sem_init(&a->started, 0);
    if (uv_thread_create(&a->thread, app_thread, a) < 0) {
        snprintf(err, errlen, "bot: cannot start its thread");
        uv_sem_destroy(&a->started);
        goto fail_handles;
    }
    a->thread_started = 1;
    uv_sem_wait(&a->started);
    uv_sem_destroy(&a->started);
    if (a->start_rc < 0) {
        snprintf(err, errlen, "%s", a->start_err);
        uv_thread_join(&a->thread);
        a->thread_started = 0;
        http_server_free(a->http);
        a->http = NULL;
        uv_loop_close(&a->loop);
        a->loop_init = 0;
        return -1;
    }
    if (a->hcfg->port > 0)
        log_info("http listener", "bind=\"%s\" port=%lld", a->hcfg->bind ? a->hcfg->bind : "",
                 (long long)a->hcfg->port);
    return 0;
fail_handles:
    http_server_close(a->http);
    httpc_free(a->httpc);
    a->httpc = NULL;
    beat_close(&a->beat);
    uv_close((uv_handle_t *)&a->wake, NULL);
    uv_run(&a->loop, UV_RUN_DEFAULT);
    http_server_free(a->http);
    a->http = NULL;
fail_loop:
    uv_loop_close(&a->loop);
    a->loop_init = 0;
    return -1;
}

void app_set_role(struct app *a, int is_master)
{
    if (!a)
        return;
    atomic_store(&a->want_master, is_master ? 1 : 0);
    if (a->thread_started)
        uv_async_send(&a->wake);
    else
        atomic_store(&a->is_master, is_master && !atomic_load(&a->loading));
}

void app_set_loading(struct app *a, int on)
{
    if (!a)
        return;
    atomic_store(&a->loading, on ? 1 : 0);
    if (a->thread_started)
        uv_async_send(&a->wake);
    else
        atomic_store(&a->is_master, atomic_load(&a->want_master) && !on);
}

int app_is_loading(const struct app *a) { return atomic_load(&a->loading); }

void app_stop(struct app *a)
{
    if (!a || !a->thread_started)
        return;
    atomic_store(&a->stop_asked, 1);
    uv_async_send(&a->wake);
    uv_thread_join(&a->thread);
    a->thread_started = 0;
    http_server_free(a->http);
    a->http = NULL;
    if (uv_loop_close(&a->loop) != 0)
        log_warn("bot loop closed with handles open", "%s", "");
    a->loop_init = 0;
}

void app_free(struct app *a)
{
    if (!a)
        return;
    app_stop(a);
    xfree(a->cmds);
    xfree(a->collectors);
    xfree(a->checks);
    xfree(a->live);
    xfree(a->role_cbs);
    xfree(a);
}

/* ---- for the parts -------------------------------------------------------- */

struct eng *app_engine(struct app *a) { return a->eng; }
struct uv_loop_s *app_loop(struct app *a) { return &a->loop; }
struct http_server *app_http(struct app *a) { return a->http; }
struct httpc *app_httpc(struct app *a) { return a->httpc; }
int app_is_master(const struct app *a) { return atomic_load(&a->is_master); }
int64_t app_now_ms(void) { return clock_wall_ms(); }
int64_t app_start_time_ms(const struct app *a) { return a->start_wall_ms; }

int64_t app_loop_beat_age_ms(const struct app *a)
{
    return beat_age_ms(&a->beat);
}

void app_on_role(struct app *a, void (*fn)(void *ud, int is_master), void *ud)
{
    a->role_cbs = xrealloc(a->role_cbs, sizeof *a->role_cbs * (size_t)(a->nrole_cbs + 1));
    a->role_cbs[a->nrole_cbs++] = (struct role_cb){fn, ud};
}

static int part_index(const char *name)
{
    for (int i = 0; i < NPARTS; i++)
        if (!strcmp(parts[i]->name, name))
            return i;
    return -1;
}

void *app_part_state(struct app *a, const char *name)
{
    int i = part_index(name);
    return i < 0 ? NULL : a->state[i];
}

void app_set_part_state(struct app *a, const char *name, void *state)
{
    int i = part_index(name);
    if (i >= 0)
        a->state[i] = state;
}

void app_add_collector(struct app *a, void (*fn)(void *ud, struct buf *out), void *ud)
{
    a->collectors = xrealloc(a->collectors, sizeof *a->collectors * (size_t)(a->ncollectors + 1));
    a->collectors[a->ncollectors++] = (struct collector){fn, ud};
}

static void add_check(struct ready_check **v, int *n, const char *(*fn)(void *ud), void *ud)
{
    *v = xrealloc(*v, sizeof **v * (size_t)(*n + 1));
    (*v)[(*n)++] = (struct ready_check){fn, ud};
}

static const char *first_reason(const struct ready_check *v, int n)
{
    for (int i = 0; i < n; i++) {
        const char *r = v[i].fn(v[i].ud);
        if (r)
            return r;
    }
    return NULL;
}

void app_add_ready_check(struct app *a, const char *(*fn)(void *ud), void *ud)
{
    add_check(&a->checks, &a->nchecks, fn, ud);
}

void app_add_live_check(struct app *a, const char *(*fn)(void *ud), void *ud)
{
    add_check(&a->live, &a->nlive, fn, ud);
}

void app_collect(struct app *a, struct buf *out)
{
    for (int i = 0; i < a->ncollectors; i++)
        a->collectors[i].fn(a->collectors[i].ud, out);
}

const char *app_ready_reason(struct app *a) { return first_reason(a->checks, a->nchecks); }

void app_stall_reasons(struct app *a, struct buf *out)
{
    for (int i = 0; i < a->nlive; i++) {
        const char *r = a->live[i].fn(a->live[i].ud);
        if (r)
            buf_printf(out, "%s\n", r);
    }
}
