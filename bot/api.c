/* api.c: the operator HTTP API under /api/v1/ (docs/openapi.yaml describes
 * every route; tests/integration/test_api.py checks live answers against
 * it).
 *
 * One prefix route on the listener; the path is split into segments and
 * matched against a table of rows (method, pattern, handler), ':' standing
 * for one segment handed to the handler.  A path that matches a pattern
 * with another method gets 405 with Allow.  Every request needs
 * "Authorization: Bearer <api-token>" (compared in constant time), else
 * 401; with no api-token configured the API answers 403.  Bodies are JSON
 * objects, checked field by field (unknown fields refused); errors are
 * {"error": {"code", "message"}}.  Writes are refused on a replica (503
 * not_master), reads are served from its copy.
 *
 * Not for: anything a RESP client can do as well (the JOB.* commands), or
 * the bot's users (the webhook). */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>
#include <uv.h>

#include "base/alloc.h"
#include "base/log.h"
#include "base/metrics.h"
#include "base/num.h"
#include "broadcast.h"
#include "engine.h"
#include "http.h"
#include "keys.h"
#include "ledger.h"
#include "parts.h"
#include "queue.h"
#include "scheduler.h"
#include "tg.h"

static struct {
    char *token;
} ao;

static struct cfg *the_cfg;

static const struct cfg_option options_table[] = {
    {.name = "api-token", .type = CFG_STRING, .flags = CFG_SECRET | CFG_FILE_OK, .storage = &ao.token, .dflt = ""},
};

static void api_options(struct cfg *c)
{
    the_cfg = c;
    cfg_register(c, options_table, sizeof options_table / sizeof options_table[0]);
}

/* ---- requests ---------------------------------------------------------------- */

struct api;

struct rq {
    struct api *api;
    struct app *a;
    const struct http_request *req;
    struct http_response *res;
    const char *arg[4];
    cJSON *body;
    struct buf out;
    int status;
};

typedef void handler_fn(struct rq *r);

struct row {
    const char *method, *pattern;
    handler_fn *fn;
    int write;
};

enum { NCLASSES = 4 }; /* 2xx 3xx 4xx 5xx */
enum { API_OUT_KEEP = 64 * 1024 }; /* largest answer buffer kept between requests */

struct api {
    struct app *a;
    uint64_t *counts; /* [row][class] */
    uint64_t unmatched[NCLASSES];
    struct metrics_hist latency;
    struct buf out; /* answers are built here, reused from request to request */
};

/* ---- JSON out ----------------------------------------------------------------
 * Answers are written straight into the request's buffer, without printf or
 * a cJSON tree: the look-ups run tens of thousands of times a second
 * (tools/bench-api), and formatting was most of their user-space time. */

/* Appends a string literal (its length known at compile time). */
#define LIT(b, s) buf_append((b), (s), sizeof(s) - 1)

static void json_i64(struct buf *b, int64_t v)
{
    char t[24];
    buf_append(b, t, num_fmt_i64(t, v));
}

/* Appends v as "%.3f" would for the values we hand it (seconds with
 * millisecond precision, finite); anything else goes through printf. */
static void json_fixed3(struct buf *b, double v)
{
    if (!(v >= 0 && v < 9e15)) {
        buf_printf(b, "%.3f", v);
        return;
    }
    int64_t ms = (int64_t)(v * 1000 + 0.5);
    char t[4] = {'.', (char)('0' + ms / 100 % 10), (char)('0' + ms / 10 % 10), (char)('0' + ms % 10)};
    json_i64(b, ms / 1000);
    buf_append(b, t, 4);
}

/* Appends s as a JSON string: runs of plain bytes in one append, '"' and
 * '\\' escaped, control bytes as \u00XX. */
static void json_str(struct buf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    buf_putc(b, '"');
    const char *run = s;
    for (const unsigned char *p = (const unsigned char *)s;; p++) {
        if (*p >= 0x20 && *p != '"' && *p != '\\')
            continue;
        buf_append(b, run, (size_t)((const char *)p - run));
        if (!*p)
            break;
        if (*p < 0x20) {
            char e[6] = {'\\', 'u', '0', '0', hex[*p >> 4], hex[*p & 15]};
            buf_append(b, e, 6);
        } else {
            char e[2] = {'\\', (char)*p};
            buf_append(b, e, 2);
        }
        run = (const char *)p + 1;
    }
    buf_putc(b, '"');
}

static void reply(struct rq *r, int status)
{
    r->status = status;
    http_reply_json(r->res, status, r->out.len ? r->out.p : "{}", r->out.len ? r->out.len : 2);
}

static void answer_error(struct rq *r, int status, const char *const *hdrs, const char *code, const char *msg)
{
    buf_reset(&r->out);
    buf_puts(&r->out, "{\"error\":{\"code\":");
    json_str(&r->out, code);
    buf_puts(&r->out, ",\"message\":");
    json_str(&r->out, msg);
    buf_puts(&r->out, "}}");
    r->status = status;
    http_reply(r->res, status, "application/json", r->out.p, r->out.len, hdrs);
}

static void fail(struct rq *r, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void fail(struct rq *r, int status, const char *code, const char *fmt, ...)
{
    static const char *const www[] = {"WWW-Authenticate: Bearer realm=\"obentchi\"", NULL};
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    answer_error(r, status, status == 401 ? www : NULL, code, msg);
}

/* ---- body checking -------------------------------------------------------------- */

enum ftype { F_STRING, F_ANY };
struct field {
    const char *name;
    int type, required;
    size_t minlen, maxlen; /* strings */
};

/* Parses the body as a JSON object holding only the given fields, of the
 * given types.  0, or -1 after answering 400/415. */
static int parse_body(struct rq *r, const struct field *fields, int n)
{
    const char *ct = http_header(r->req, "Content-Type");
    if (!ct || strncasecmp(ct, "application/json", 16)) {
        fail(r, 415, "unsupported_media_type", "the body must be JSON (Content-Type: application/json)");
        return -1;
    }
    r->body = cJSON_ParseWithLength(r->req->body ? r->req->body : "", r->req->body_len);
    if (!cJSON_IsObject(r->body)) {
        fail(r, 400, "bad_request", r->body ? "the body must be a JSON object" : "the body is not valid JSON");
        return -1;
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, r->body)
    {
        int known = 0;
        for (int i = 0; i < n; i++)
            known |= !strcmp(it->string, fields[i].name);
        if (!known) {
            fail(r, 400, "bad_request", "unknown field '%s'", it->string);
            return -1;
        }
    }
    for (int i = 0; i < n; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(r->body, fields[i].name);
        if (!v || cJSON_IsNull(v)) {
            if (fields[i].required) {
                fail(r, 400, "bad_request", "field '%s' is required", fields[i].name);
                return -1;
            }
            continue;
        }
        if (fields[i].type == F_STRING) {
            if (!cJSON_IsString(v)) {
                fail(r, 400, "bad_request", "field '%s' must be a string", fields[i].name);
                return -1;
            }
            size_t len = strlen(v->valuestring);
            if (len < fields[i].minlen || len > fields[i].maxlen) {
                fail(r, 400, "bad_request", "field '%s' must be %zu to %zu characters", fields[i].name,
                     fields[i].minlen, fields[i].maxlen);
                return -1;
            }
        }
    }
    return 0;
}

static const char *body_str(struct rq *r, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(r->body, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int parse_uid(struct rq *r, const char *s, int64_t *uid)
{
    if (num_parse_i64(s, strlen(s), uid) < 0 || *uid == 0) {
        fail(r, 400, "bad_request", "'%s' is not a user id (a non-zero integer)", s);
        return -1;
    }
    return 0;
}

static int queue_name_ok(struct rq *r, const char *q)
{
    size_t n = strlen(q);
    int ok = n > 0 && n <= 31;
    for (size_t i = 0; ok && i < n; i++)
        ok = isalnum((unsigned char)q[i]) || q[i] == '_' || q[i] == '-' || q[i] == '.';
    if (!ok)
        fail(r, 400, "bad_request", "'%s' is not a queue name (1 to 31 of A-Z a-z 0-9 _ - .)", q);
    return ok;
}

static int64_t query_int(struct rq *r, const char *name, int64_t dflt, int64_t lo, int64_t hi, int *bad)
{
    struct buf v = BUF_INIT;
    int64_t n = dflt;
    if (http_query_param(r->req, name, &v) == 1) {
        if (!v.p || num_parse_i64(v.p, v.len, &n) < 0 || n < lo || n > hi) {
            fail(r, 400, "bad_request", "query parameter '%s' must be an integer from %lld to %lld", name,
                 (long long)lo, (long long)hi);
            *bad = 1;
        }
    }
    buf_release(&v);
    return n;
}

/* ---- users ---------------------------------------------------------------------- */

static void h_user(struct rq *r)
{
    int64_t uid;
    int bad = 0;
    if (parse_uid(r, r->arg[0], &uid) < 0)
        return;
    int64_t nl = query_int(r, "ledger", 10, 0, 100, &bad);
    if (bad)
        return;
    struct bot_ledger_entry ent[100];
    struct bot_user u;
    char tag[40];
    key_user_tag(tag, sizeof tag, uid);
    struct eng_str k = {tag, strlen(tag)};
    struct eng_ctx c;
    eng_ctx_init(&c, app_engine(r->a), 0);
    eng_lock_keys(&c, &k, 1);
    int found = bot_user_get(&c, uid, &u), n = 0;
    if (found && nl > 0)
        n = bot_ledger_history(&c, uid, ent, (int)nl);
    eng_unlock(&c);
    if (!found) {
        fail(r, 404, "not_found", "no user %lld", (long long)uid);
        return;
    }
    struct buf *o = &r->out;
    LIT(o, "{\"id\":");
    json_i64(o, u.id);
    LIT(o, ",\"lang\":");
    json_str(o, u.lang);
    LIT(o, ",\"name\":");
    json_str(o, u.name);
    LIT(o, ",\"created_ms\":");
    json_i64(o, u.created_ms);
    LIT(o, ",\"referrer\":");
    if (u.referrer)
        json_i64(o, u.referrer);
    else
        LIT(o, "null");
    if (u.active)
        LIT(o, ",\"active\":true,\"balance\":");
    else
        LIT(o, ",\"active\":false,\"balance\":");
    json_i64(o, u.balance);
    LIT(o, ",\"held\":");
    json_i64(o, u.held);
    LIT(o, ",\"ledger\":[");
    for (int i = 0; i < n; i++) {
        if (i)
            buf_putc(o, ',');
        LIT(o, "{\"amount\":");
        json_i64(o, ent[i].amount);
        LIT(o, ",\"kind\":");
        json_str(o, ent[i].kind);
        LIT(o, ",\"ref\":");
        json_str(o, ent[i].ref);
        LIT(o, ",\"time_ms\":");
        json_i64(o, ent[i].time_ms);
        LIT(o, ",\"balance\":");
        json_i64(o, ent[i].balance);
        buf_putc(o, '}');
    }
    LIT(o, "]}");
    reply(r, 200);
}

/* ---- queues and jobs ---------------------------------------------------------------- */

static void stats_json(struct buf *o, const char *q, const struct bot_queue_stats *st)
{
    const struct {
        const char *name; /* ",\"field\":" */
        size_t len;
        int64_t v;
    } f[] = {
#define F(name, v) {",\"" name "\":", sizeof(",\"" name "\":") - 1, (int64_t)(v)}
        F("waiting", st->waiting),
        F("active", st->active),
        F("delayed", st->delayed),
        F("dead", st->dead),
        F("completed", st->completed),
        F("completed_total", st->completed_total),
        F("failed_total", st->failed_total),
        F("retried_total", st->retried_total),
        F("workers", st->workers),
        F("busy", st->busy),
#undef F
    };
    LIT(o, "{\"name\":");
    json_str(o, q);
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        buf_append(o, f[i].name, f[i].len);
        json_i64(o, f[i].v);
    }
    LIT(o, ",\"oldest_wait_s\":");
    json_fixed3(o, st->oldest_wait_s);
    buf_putc(o, '}');
}

static void h_queues(struct rq *r)
{
    const char *const *names = bot_queue_names(r->a);
    buf_puts(&r->out, "{\"queues\":[");
    int first = 1;
    for (const char *const *q = names; q && *q; q++) {
        struct bot_queue_stats st;
        memset(&st, 0, sizeof st);
        if (bot_queue_stats(r->a, *q, &st) < 0)
            continue;
        if (!first)
            buf_putc(&r->out, ',');
        first = 0;
        stats_json(&r->out, *q, &st);
    }
    buf_puts(&r->out, "]}");
    reply(r, 200);
}

static void h_queue(struct rq *r)
{
    if (!queue_name_ok(r, r->arg[0]))
        return;
    struct bot_queue_stats st;
    memset(&st, 0, sizeof st);
    if (bot_queue_stats(r->a, r->arg[0], &st) < 0) {
        fail(r, 400, "bad_request", "'%s' is not a queue name", r->arg[0]);
        return;
    }
    stats_json(&r->out, r->arg[0], &st);
    reply(r, 200);
}

static void h_job(struct rq *r)
{
    if (!queue_name_ok(r, r->arg[0]))
        return;
    if (bot_queue_job_json(r->a, r->arg[0], r->arg[1], &r->out) != 1) {
        fail(r, 404, "not_found", "no job '%s' in queue '%s'", r->arg[1], r->arg[0]);
        return;
    }
    reply(r, 200);
}

static void h_dead(struct rq *r)
{
    int bad = 0;
    if (!queue_name_ok(r, r->arg[0]))
        return;
    int64_t off = query_int(r, "offset", 0, 0, INT32_MAX, &bad);
    if (bad)
        return;
    int64_t cnt = query_int(r, "count", 100, 1, 1000, &bad);
    if (bad)
        return;
    struct buf jobs = BUF_INIT;
    int n = bot_queue_dead_list(r->a, r->arg[0], off, cnt, &jobs);
    if (n < 0) {
        buf_release(&jobs);
        fail(r, 400, "bad_request", "cannot list the dead letters of '%s'", r->arg[0]);
        return;
    }
    buf_printf(&r->out, "{\"queue\":");
    json_str(&r->out, r->arg[0]);
    buf_printf(&r->out, ",\"offset\":%lld,\"jobs\":%s}", (long long)off, jobs.p ? jobs.p : "[]");
    buf_release(&jobs);
    reply(r, 200);
}

static void h_redrive(struct rq *r)
{
    if (!queue_name_ok(r, r->arg[0]))
        return;
    if (bot_queue_redrive(r->a, r->arg[0], r->arg[1]) != 1) {
        fail(r, 404, "not_found", "no dead job '%s' in queue '%s'", r->arg[1], r->arg[0]);
        return;
    }
    log_info("dead job re-driven", "queue=%s id=%s by=api", r->arg[0], r->arg[1]);
    buf_puts(&r->out, "{\"redriven\":true,\"id\":");
    json_str(&r->out, r->arg[1]);
    buf_putc(&r->out, '}');
    reply(r, 200);
}

static void h_dead_delete(struct rq *r)
{
    if (!queue_name_ok(r, r->arg[0]))
        return;
    if (bot_queue_dead_delete(r->a, r->arg[0], r->arg[1]) != 1) {
        fail(r, 404, "not_found", "no dead job '%s' in queue '%s'", r->arg[1], r->arg[0]);
        return;
    }
    log_info("dead job deleted", "queue=%s id=%s by=api", r->arg[0], r->arg[1]);
    buf_puts(&r->out, "{\"deleted\":true,\"id\":");
    json_str(&r->out, r->arg[1]);
    buf_putc(&r->out, '}');
    reply(r, 200);
}

/* ---- schedules ------------------------------------------------------------------------ */

static void h_schedules(struct rq *r)
{
    buf_puts(&r->out, "{\"schedules\":");
    bot_sched_list_json(r->a, &r->out);
    buf_putc(&r->out, '}');
    reply(r, 200);
}

static void h_schedule(struct rq *r)
{
    if (bot_sched_get_json(r->a, r->arg[0], &r->out) != 1) {
        fail(r, 404, "not_found", "no schedule '%s'", r->arg[0]);
        return;
    }
    reply(r, 200);
}

static void h_schedule_add(struct rq *r)
{
    static const struct field f[] = {
        {"name", F_STRING, 1, 1, 64},
        {"expr", F_STRING, 1, 1, 120},
        {"queue", F_STRING, 1, 1, 31},
        {"payload", F_ANY, 0, 0, 0},
    };
    if (parse_body(r, f, 4) < 0)
        return;
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(r->body, "payload");
    char *payload = p && !cJSON_IsNull(p) ? cJSON_PrintUnformatted(p) : NULL;
    char err[300];
    const char *name = body_str(r, "name");
    int rc = bot_sched_add(r->a, name, body_str(r, "expr"), body_str(r, "queue"), payload ? payload : "{}", err,
                           sizeof err);
    cJSON_free(payload);
    if (rc < 0)
        fail(r, 400, "bad_request", "%s", err);
    else if (rc == 0)
        fail(r, 409, "conflict", "schedule '%s' exists", name);
    else if (bot_sched_get_json(r->a, name, &r->out) == 1)
        reply(r, 201);
    else
        fail(r, 500, "internal", "schedule '%s' was added but cannot be read back", name);
}

static void pause_generic(struct rq *r, int paused)
{
    int rc = bot_sched_set_paused(r->a, r->arg[0], paused);
    if (rc == 0) {
        fail(r, 404, "not_found", "no schedule '%s'", r->arg[0]);
        return;
    }
    h_schedule(r);
}
static void h_schedule_pause(struct rq *r) { pause_generic(r, 1); }
static void h_schedule_resume(struct rq *r) { pause_generic(r, 0); }

static void h_schedule_delete(struct rq *r)
{
    char err[200];
    int rc = bot_sched_delete(r->a, r->arg[0], err, sizeof err);
    if (rc == 0)
        fail(r, 404, "not_found", "no schedule '%s'", r->arg[0]);
    else if (rc < 0)
        fail(r, 409, "conflict", "%s", err);
    else {
        buf_puts(&r->out, "{\"deleted\":true,\"name\":");
        json_str(&r->out, r->arg[0]);
        buf_putc(&r->out, '}');
        reply(r, 200);
    }
}

/* ---- replication and snapshots ------------------------------------------------------ */

/* INFO "field:value" lines into a JSON object (numbers as numbers). */
static void info_json(struct buf *o, const char *text)
{
    buf_putc(o, '{');
    int first = 1;
    for (const char *p = text; p && *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if (len && p[len - 1] == '\r')
            len--;
        const char *colon = memchr(p, ':', len);
        if (*p != '#' && colon && colon > p) {
            char name[96], val[512];
            snprintf(name, sizeof name, "%.*s", (int)(colon - p), p);
            snprintf(val, sizeof val, "%.*s", (int)(len - (size_t)(colon - p) - 1), colon + 1);
            buf_puts(o, first ? "" : ",");
            first = 0;
            json_str(o, name);
            buf_putc(o, ':');
            long double d;
            int64_t i;
            if (num_parse_i64(val, strlen(val), &i) == 0)
                buf_printf(o, "%lld", (long long)i);
            else if (val[0] && (isdigit((unsigned char)val[0]) || val[0] == '-') &&
                     num_parse_double(val, strlen(val), &d) == 0)
                buf_printf(o, "%.17g", (double)d);
            else
                json_str(o, val);
        }
        p = nl ? nl + 1 : p + len;
    }
    buf_putc(o, '}');
}

static void h_replication(struct rq *r)
{
    const struct app_health_env *env = app_health_env(r->a);
    struct buf status = BUF_INIT, info = BUF_INIT;
    if (env && env->replica_status)
        env->replica_status(env->ud, &status);
    if (env && env->info)
        env->info(env->ud, "replication", &info);
    buf_printf(&r->out, "{\"role\":\"%s\",\"status\":", app_is_master(r->a) ? "master" : "replica");
    json_str(&r->out, status.p ? status.p : "");
    buf_puts(&r->out, ",\"info\":");
    if (info.p)
        info_json(&r->out, info.p);
    else
        buf_puts(&r->out, "null");
    buf_putc(&r->out, '}');
    buf_release(&status);
    buf_release(&info);
    reply(r, 200);
}

static void h_snapshots(struct rq *r)
{
    const struct app_health_env *env = app_health_env(r->a);
    if (!env || !env->info) {
        fail(r, 503, "unavailable", "snapshot status is not wired into the bot (app_health_env.info)");
        return;
    }
    struct buf info = BUF_INIT;
    env->info(env->ud, "persistence", &info);
    buf_puts(&r->out, "{\"persistence\":");
    info_json(&r->out, info.p ? info.p : "");
    buf_putc(&r->out, '}');
    buf_release(&info);
    reply(r, 200);
}

/* ---- broadcasts ------------------------------------------------------------------------ */

static void h_broadcast_add(struct rq *r)
{
    static const struct field f[] = {
        {"text", F_STRING, 1, 1, BC_TEXT_MAX},
        {"language", F_STRING, 0, 2, 8},
    };
    if (parse_body(r, f, 2) < 0)
        return;
    const char *lang = body_str(r, "language");
    for (const char *p = lang; p && *p; p++)
        if (!isalpha((unsigned char)*p) && *p != '-') {
            fail(r, 400, "bad_request", "field 'language' must be a language code such as \"en\"");
            return;
        }
    struct buf id = BUF_INIT;
    if (bc_create(r->a, body_str(r, "text"), lang, &id) < 0) {
        buf_release(&id);
        fail(r, 503, "not_master", "this node is a replica: send writes to the master");
        return;
    }
    bc_get_json(r->a, id.p, &r->out);
    buf_release(&id);
    reply(r, 202);
}

static void h_broadcast(struct rq *r)
{
    if (bc_get_json(r->a, r->arg[0], &r->out) != 1) {
        fail(r, 404, "not_found", "no broadcast '%s'", r->arg[0]);
        return;
    }
    reply(r, 200);
}

static void h_broadcast_cancel(struct rq *r)
{
    int rc = bc_cancel(r->a, r->arg[0]);
    if (rc == 0) {
        fail(r, 404, "not_found", "no broadcast '%s'", r->arg[0]);
        return;
    }
    if (rc == 2) {
        fail(r, 409, "conflict", "broadcast '%s' has already finished", r->arg[0]);
        return;
    }
    h_broadcast(r);
}

/* ---- routing -------------------------------------------------------------------------- */

static const struct row rows[] = {
    {"GET", "users/:", h_user, 0},
    {"GET", "jobs/:/:", h_job, 0},
    {"GET", "queues", h_queues, 0},
    {"GET", "queues/:", h_queue, 0},
    {"GET", "queues/:/dead", h_dead, 0},
    {"POST", "queues/:/dead/:/redrive", h_redrive, 1},
    {"DELETE", "queues/:/dead/:", h_dead_delete, 1},
    {"GET", "schedules", h_schedules, 0},
    {"POST", "schedules", h_schedule_add, 1},
    {"GET", "schedules/:", h_schedule, 0},
    {"DELETE", "schedules/:", h_schedule_delete, 1},
    {"POST", "schedules/:/pause", h_schedule_pause, 1},
    {"POST", "schedules/:/resume", h_schedule_resume, 1},
    {"GET", "replication", h_replication, 0},
    {"GET", "snapshots", h_snapshots, 0},
    {"POST", "broadcasts", h_broadcast_add, 1},
    {"GET", "broadcasts/:", h_broadcast, 0},
    {"DELETE", "broadcasts/:", h_broadcast_cancel, 1},
    {"POST", "broadcasts/:/cancel", h_broadcast_cancel, 1},
};
#define NROWS ((int)(sizeof rows / sizeof rows[0]))

/* Splits path (after the prefix) into segments in place; returns the count
 * or -1 when there are too many or one is empty. */
static int split(char *path, char **seg, int max)
{
    int n = 0;
    for (char *p = path; *p;) {
        char *slash = strchr(p, '/');
        if (slash)
            *slash = '\0';
        if (!*p || n == max)
            return -1;
        seg[n++] = p;
        if (!slash)
            break;
        p = slash + 1;
        if (!*p)
            return -1; /* trailing slash */
    }
    return n;
}

static int match(const char *pattern, char **seg, int n, const char **arg)
{
    int i = 0, na = 0;
    for (const char *p = pattern; *p; i++) {
        size_t len = strcspn(p, "/");
        if (i >= n)
            return 0;
        if (len == 1 && *p == ':') {
            if (na < 4)
                arg[na++] = seg[i];
        } else if (strlen(seg[i]) != len || memcmp(seg[i], p, len)) {
            return 0;
        }
        p += len + (p[len] == '/');
    }
    return i == n;
}

static int authorized(struct rq *r)
{
    if (!ao.token || !*ao.token) {
        fail(r, 403, "api_disabled", "the operator API is off: set api-token (or api-token-file)");
        return 0;
    }
    const char *h = http_header(r->req, "Authorization");
    if (!h || strncasecmp(h, "Bearer ", 7)) {
        fail(r, 401, "unauthorized", "missing bearer token (Authorization: Bearer <api-token>)");
        return 0;
    }
    h += 7;
    while (*h == ' ')
        h++;
    if (!http_secret_eq(h, strlen(h), ao.token, strlen(ao.token))) {
        fail(r, 401, "unauthorized", "wrong token");
        return 0;
    }
    return 1;
}

static int status_class(int status) { return status >= 500 ? 3 : status >= 400 ? 2 : status >= 300 ? 1 : 0; }

static void route(struct rq *r, char **seg, int n, int *row_out)
{
    char allow[64] = "";
    for (int i = 0; i < NROWS; i++) {
        const char *arg[4] = {0};
        if (!match(rows[i].pattern, seg, n, arg))
            continue;
        if (strcmp(rows[i].method, r->req->method)) {
            if (!strstr(allow, rows[i].method))
                snprintf(allow + strlen(allow), sizeof allow - strlen(allow), "%s%s", allow[0] ? ", " : "",
                         rows[i].method);
            continue;
        }
        *row_out = i;
        memcpy(r->arg, arg, sizeof arg);
        if (rows[i].write && !app_is_master(r->a)) {
            fail(r, 503, "not_master", "this node is a replica: send writes to the master");
            return;
        }
        rows[i].fn(r);
        return;
    }
    if (allow[0]) {
        char hdr[80], msg[160];
        snprintf(hdr, sizeof hdr, "Allow: %s", allow);
        snprintf(msg, sizeof msg, "%s is not allowed here (allowed: %s)", r->req->method, allow);
        const char *const hdrs[] = {hdr, NULL};
        answer_error(r, 405, hdrs, "method_not_allowed", msg);
        return;
    }
    fail(r, 404, "not_found", "no such route: %s", r->req->path);
}

static void api_handle(void *ud, const struct http_request *req, struct http_response *res)
{
    struct api *api = ud;
    /* The answer buffer is the part's, kept between requests (handlers run
     * one at a time on the loop and http_reply copies), so a look-up makes
     * no allocation of its own once it has grown to size. */
    struct rq r = {.api = api, .a = api->a, .req = req, .res = res, .out = api->out};
    buf_reset(&r.out);
    int row = -1;
    char path[512], *seg[8];
    const char *rest = req->path + strlen("/api/v1");
    if (*rest == '/')
        rest++;
    size_t plen = strlen(rest);
    int n = plen < sizeof path ? (memcpy(path, rest, plen + 1), split(path, seg, 8)) : -1;
    if (n < 0)
        fail(&r, 404, "not_found", "no such route: %s", req->path);
    else if (authorized(&r))
        route(&r, seg, n, &row);
    if (row >= 0)
        api->counts[row * NCLASSES + status_class(r.status)]++;
    else
        api->unmatched[status_class(r.status)]++;
    metrics_hist_observe(&api->latency, (double)((int64_t)uv_hrtime() - req->start_ns) / 1e9);
    cJSON_Delete(r.body);
    if (r.out.cap > API_OUT_KEEP)
        buf_release(&r.out); /* a rare big answer (dead letters): don't keep it */
    api->out = r.out;
}

/* ---- the part -------------------------------------------------------------------------- */

static void collect(void *ud, struct buf *out)
{
    struct api *api = ud;
    static const char *const classes[NCLASSES] = {"2xx", "3xx", "4xx", "5xx"};
    metrics_family(out, "obentchi_api_requests_total", "counter", "Operator API requests, by route and status class.");
    for (int i = 0; i <= NROWS; i++)
        for (int k = 0; k < NCLASSES; k++) {
            uint64_t v = i < NROWS ? api->counts[i * NCLASSES + k] : api->unmatched[k];
            if (!v)
                continue;
            char rt[64];
            snprintf(rt, sizeof rt, "%s /api/v1/%s", i < NROWS ? rows[i].method : "*",
                     i < NROWS ? rows[i].pattern : "(none)");
            metrics_sample_int(out, "obentchi_api_requests_total", (const char *const[]){"route", rt, "code", classes[k], NULL},
                               (int64_t)v);
        }
    metrics_family(out, "obentchi_api_request_duration_seconds", "histogram",
                   "Operator API request time, first byte to answer.");
    metrics_hist_write(out, "obentchi_api_request_duration_seconds", NULL, &api->latency);
}

static int api_start(struct app *a, char *err, size_t errlen)
{
    struct api *api = xcalloc(1, sizeof *api);
    api->a = a;
    api->counts = xcalloc((size_t)NROWS * NCLASSES, sizeof *api->counts);
    metrics_hist_init_latency(&api->latency);
    app_set_part_state(a, "api", api);
    if (app_http(a)) {
        http_route(app_http(a), "*", "/api/v1/*", api_handle, api);
        http_route(app_http(a), "*", "/api/v1", api_handle, api);
    }
    app_add_collector(a, collect, api);
    bc_start(a, the_cfg);
    if (!ao.token || !*ao.token)
        log_info("operator API off", "reason=\"no api-token\"");
    return 0;
}

static void api_stop(struct app *a)
{
    struct api *api = app_part_state(a, "api");
    bc_stop(a);
    if (!api)
        return;
    xfree(api->counts);
    buf_release(&api->out);
    xfree(api);
    app_set_part_state(a, "api", NULL);
}

const struct app_part bot_part_api = {
    .name = "api",
    .options = api_options,
    .start = api_start,
    .stop = api_stop,
};
