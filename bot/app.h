/* app.h: the bot's runtime, one thread with one libuv loop, holding the HTTP
 * listener (protocol/http.h), the outbound HTTP client (httpc.h) and the
 * bot's parts: Telegram ingress and outbox (tg_*.c), job queues, worker
 * pools, ledger and providers (queue*.c, ledger.c, pay*.c), the scheduler
 * and the operator API (sched.c, api.c).
 *
 * Threads.  Everything in bot/ runs on the app loop thread; nothing in bot/
 * takes a lock of its own.  State lives in the engine and is reached through
 * its C API (engine.h, hash.h, list.h, set.h, zset.h) with struct eng_ctx
 * and eng_lock_keys(): keys that must change together share a hash tag (see
 * keys.h), so that one lock covers them, and several tags locked in one call
 * are still atomic (ascending shard order).  RESP clients see the same keys.
 *
 * Roles.  Only a master processes: on a replica the webhook answers 503 (so
 * nginx and Telegram retry on the master), workers, the scheduler and the
 * outbox sender stand by.  app_is_master() tells; parts that need to act on a
 * change register with app_on_role().
 *
 * Parts plug in through app_part rows (below): each has an options
 * registration (before the configuration is read), a start (on the loop, once
 * the listener exists: add routes, timers, handlers) and a stop. */
#ifndef BOT_APP_H
#define BOT_APP_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/config.h"

struct uv_loop_s;
struct eng;
struct http_server;
struct httpc;
struct server_cmd;

struct app;

/* A part of the bot (tg, queue, ledger, sched, api...). */
struct app_part {
    const char *name;
    /* Registers the part's options (cfg_register); called before the
     * configuration is read.  May be NULL. */
    void (*options)(struct cfg *c);
    /* RESP commands the part adds (JOB.*), registered before the server is
     * built; may be NULL.  Handlers run on RESP worker threads: they may
     * only touch the engine (under eng_ctx locks), never app state. */
    const struct server_cmd *(*commands)(int *n);
    /* On the loop thread, after the listener and the client exist: routes,
     * timers, handlers.  0, or -1 with err (startup fails). */
    int (*start)(struct app *a, char *err, size_t errlen);
    /* On the loop thread, at shutdown: close handles, drop timers. */
    void (*stop)(struct app *a);
};

/* ---- for main.c --------------------------------------------------------- */

/* Registers the app's own options (http-*, bot-*) and every part's. */
struct app *app_new(struct cfg *c);
/* RESP command rows of every part (for server_register_commands). */
const struct server_cmd *app_commands(struct app *a, int *n);
/* Binds the listener and starts the thread: 0, or -1 with err. */
int app_start(struct app *a, struct eng *e, char *err, size_t errlen);
/* From replication's on_role_change (any thread). */
void app_set_role(struct app *a, int is_master);
/* Loading a snapshot (readyz says so). Any thread. */
void app_set_loading(struct app *a, int on);
/* What health.c needs from the server and replication, as callbacks (the
 * bot does not depend on replication/).  Set before app_start. */
struct app_health_env {
    void *ud;
    /* 1 when the RESP workers turn (their cron ran within a few seconds). */
    int (*server_alive)(void *ud);
    /* On a replica: "replica of host:port, link up|down" into out; nothing
     * on a master. */
    void (*replica_status)(void *ud, struct buf *out);
    /* INFO text of one section ("replication", "persistence") as the
     * server answers INFO; any thread; may be NULL (the operator API's
     * GET /api/v1/replication and /snapshots read it). */
    void (*info)(void *ud, const char *section, struct buf *out);
};
void app_set_health_env(struct app *a, const struct app_health_env *env);
/* Stops the parts, closes the loop, joins the thread. */
void app_stop(struct app *a);
void app_free(struct app *a);

/* ---- for the parts (loop thread) ------------------------------------------ */

struct eng *app_engine(struct app *a);
struct uv_loop_s *app_loop(struct app *a);
struct http_server *app_http(struct app *a);
struct httpc *app_httpc(struct app *a);
/* 1 on a master that has loaded its data: the parts act only then (a
 * master still loading a snapshot counts as not master, and becoming
 * loaded is a role change: app_on_role callbacks run). */
int app_is_master(const struct app *a);
/* fn(ud, is_master) on the loop thread after each role change. */
void app_on_role(struct app *a, void (*fn)(void *ud, int is_master), void *ud);
/* Wall-clock milliseconds (the engine's time base). */
int64_t app_now_ms(void);
/* A part's private state, by name (set at start, NULL before). */
void *app_part_state(struct app *a, const char *name);
void app_set_part_state(struct app *a, const char *name, void *state);
/* Adds a /metrics collector: fn appends Prometheus text (base/metrics.h) for
 * the part's families.  Called on the loop thread at each scrape. */
void app_add_collector(struct app *a, void (*fn)(void *ud, struct buf *out), void *ud);
/* Readiness reasons other parts may add (NULL when ready): /readyz answers
 * 503 with the first reason any part gives. */
void app_add_ready_check(struct app *a, const char *(*fn)(void *ud), void *ud);
/* Liveness checks of a part's own threads (NULL when alive, else what
 * stalled): /healthz answers 503 naming every one that fails.  Called on the loop
 * thread; fn must only read what its thread publishes atomically. */
void app_add_live_check(struct app *a, const char *(*fn)(void *ud), void *ud);

/* ---- for health.c -------------------------------------------------------- */

const struct app_health_env *app_health_env(const struct app *a);
int app_is_loading(const struct app *a);
/* Milliseconds since the loop's heartbeat timer last ran. */
int64_t app_loop_beat_age_ms(const struct app *a);
/* When app_new ran (wall ms): the process's start time. */
int64_t app_start_time_ms(const struct app *a);
/* Runs every collector into out (a scrape). */
void app_collect(struct app *a, struct buf *out);
/* The first reason a ready check gives, or NULL. */
const char *app_ready_reason(struct app *a);
/* Appends the reason of every live check that fails, one per line. */
void app_stall_reasons(struct app *a, struct buf *out);

#endif
