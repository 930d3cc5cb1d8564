/* health.c: the probes and the scrape (bot_part_health).
 *
 *   GET /healthz  200 "ok" when the process turns: the bot loop's heartbeat
 *                 timer ran within HEALTH_STALL_MS, the RESP workers'
 *                 crons too (server_alive), and every part's own threads
 *                 (app_add_live_check: the Bot API sender); else 503
 *                 naming everything that stalled, one per line (one
 *                 stuck lock can stop several threads: ops see them all).
 *                 A liveness probe: a failure means restart the process.
 *   GET /readyz   200 "ready" when the data is loaded and this node is the
 *                 master and every part's ready check passes; else 503 with
 *                 the reason ("loading", "replica of host:port, link up",
 *                 or a part's reason).  A readiness probe: nginx and the
 *                 webhook Service send traffic to the ready master only.
 *   GET /metrics  Prometheus text: process families here, then every
 *                 collector (server, replication, snapshots, the parts). */
#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "base/metrics.h"
#include "http.h"
#include "parts.h"

#define HEALTH_STALL_MS 5000

static void healthz(void *ud, const struct http_request *req, struct http_response *res)
{
    struct app *a = ud;
    (void)req;
    const struct app_health_env *env = app_health_env(a);
    struct buf why = BUF_INIT;
    if (app_loop_beat_age_ms(a) > HEALTH_STALL_MS)
        buf_puts(&why, "bot loop stalled\n");
    if (env->server_alive && !env->server_alive(env->ud))
        buf_puts(&why, "RESP workers stalled\n");
    app_stall_reasons(a, &why);
    if (why.len)
        http_reply(res, 503, "text/plain", why.p, why.len, NULL);
    else
        http_reply(res, 200, "text/plain", "ok\n", 3, NULL);
    buf_release(&why);
}

static void readyz(void *ud, const struct http_request *req, struct http_response *res)
{
    struct app *a = ud;
    (void)req;
    struct buf why = BUF_INIT;
    if (app_is_loading(a)) {
        buf_puts(&why, "loading");
    } else if (!app_is_master(a)) {
        const struct app_health_env *env = app_health_env(a);
        if (env->replica_status)
            env->replica_status(env->ud, &why);
        if (!why.len)
            buf_puts(&why, "replica");
    } else {
        const char *r = app_ready_reason(a);
        if (r)
            buf_puts(&why, r);
    }
    if (why.len) {
        buf_putc(&why, '\n');
        http_reply(res, 503, "text/plain", why.p, why.len, NULL);
    } else {
        http_reply(res, 200, "text/plain", "ready\n", 6, NULL);
    }
    buf_release(&why);
}

static int64_t count_open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    int64_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the directory's own descriptor */
}

static int64_t resident_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long long size = 0, rss = 0;
    if (!f)
        return -1;
    int ok = fscanf(f, "%lld %lld", &size, &rss) == 2;
    fclose(f);
    return ok ? rss * (int64_t)sysconf(_SC_PAGESIZE) : -1;
}

static void process_metrics(struct app *a, struct buf *out)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
                 (double)ru.ru_stime.tv_usec / 1e6;
    metrics_family(out, "process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.");
    metrics_sample(out, "process_cpu_seconds_total", NULL, cpu);
    metrics_family(out, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
    metrics_sample_int(out, "process_resident_memory_bytes", NULL, resident_bytes());
    metrics_family(out, "process_open_fds", "gauge", "Number of open file descriptors.");
    metrics_sample_int(out, "process_open_fds", NULL, count_open_fds());
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
        metrics_family(out, "process_max_fds", "gauge", "Maximum number of open file descriptors.");
        metrics_sample_int(out, "process_max_fds", NULL, (int64_t)rl.rlim_cur);
    }
    metrics_family(out, "process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.");
    metrics_sample(out, "process_start_time_seconds", NULL, (double)app_start_time_ms(a) / 1000.0);
}

static void metrics(void *ud, const struct http_request *req, struct http_response *res)
{
    struct app *a = ud;
    (void)req;
    struct buf out = BUF_INIT;
    buf_grow(&out, 64 * 1024);
    process_metrics(a, &out);
    metrics_family(&out, "obentchi_up", "gauge", "1 when the bot loop serves (this scrape).");
    metrics_sample_int(&out, "obentchi_up", NULL, 1);
    metrics_family(&out, "obentchi_bot_master", "gauge", "1 when the bot acts as master, 0 when it stands by.");
    metrics_sample_int(&out, "obentchi_bot_master", NULL, app_is_master(a));
    app_collect(a, &out);
    http_reply(res, 200, "text/plain; version=0.0.4", out.p, out.len, NULL);
    buf_release(&out);
}

static int health_start(struct app *a, char *err, size_t errlen)
{
    (void)err, (void)errlen;
    struct http_server *s = app_http(a);
    http_route(s, "GET", "/healthz", healthz, a);
    http_route(s, "GET", "/readyz", readyz, a);
    http_route(s, "GET", "/metrics", metrics, a);
    return 0;
}

const struct app_part bot_part_health = {.name = "health", .start = health_start};
