/* sched.c: the scheduler part (scheduler.h): schedules built in, from the
 * configuration and from the API, fired by the master only, exactly once
 * per due time where that matters; nothing written to the engine until
 * there is something to keep.
 *
 * What lives where.  Built-in and configured schedules come from this
 * process's configuration on every start and on every node (a promoted
 * replica has them too): they live in memory.  The engine ({sched}) keeps
 * only what must survive a restart or a failover: the API's definitions, a
 * pause override of a built-in or configured schedule (written when an
 * operator pauses it), and the last due time fired of a schedule, written
 * when it first fires, with, for a configured one, the definition that
 * time belongs to (so that a changed expression restarts from now).  A
 * fresh server has no {sched} key.
 *
 * Firing.  A timer (sched-tick-ms) rebuilds the list (the declared
 * schedules plus a few small hashes: RESP clients and a promoted replica
 * see and change the same state).  A configured or API schedule whose next
 * due time has come locks {sched} together with the target queue's tag
 * and, in one journaled transaction, checks that the last fired time is
 * still the one it computed from, adds the job (idempotency key
 * "<name>:<due ms>") and records the due time.  Replicas receive both
 * changes or neither; a replica promoted after a missed tick computes the
 * same due time from the same record and fires it once, late.  A scheduler
 * that was down fires the latest missed due time only (cron_latest), not a
 * burst.
 *
 * Built-in schedules run in process on the master, with no job and no
 * record: expiring withdraw conversations left unconfirmed (they hold
 * nothing: the hold happens at confirm, so only the session goes back to
 * idle), re-driving payment jobs that died (invoices that never got
 * created), pruning completed jobs past sched-job-retention.  They are
 * idempotent and write nothing when there is nothing to do.  The daily
 * summary to bot-admin-chat is exactly once by nature: it keeps its last
 * due time and goes through the outbox in the same locked step. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <uv.h>

#include "base/alloc.h"
#include "base/log.h"
#include "base/metrics.h"
#include "base/num.h"
#include "cron.h"
#include "engine.h"
#include "hash.h"
#include "keys.h"
#include "parts.h"
#include "queue.h"
#include "scheduler.h"
#include "tg.h"

#define S(x) (x), strlen(x)
#define TAG "{sched}"
#define K_DEFS "sched:{sched}:defs"
#define K_LAST "sched:{sched}:last"
#define K_FIRED "sched:{sched}:fired"
#define K_REDRIVES "sched:{sched}:redrives"

/* ---- options --------------------------------------------------------------- */

struct sched_conf {
    char *name, *expr, *queue, *payload;
};

static struct {
    struct sched_conf *v;
    int n;
} confs;

static struct {
    char *tz;
    int64_t tick_ms;
    char *expire_expr, *invoice_expr, *prune_expr, *summary_expr;
    int64_t wd_timeout, invoice_after, invoice_max_redrives, retention;
} so;

static struct cfg *the_cfg; /* for bot-admin-chat, owned by tg.c */

static int name_ok(const char *s, int allow_colon)
{
    size_t n = strlen(s);
    if (n == 0 || n > SCHED_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-' && s[i] != '.' &&
            !(allow_colon && s[i] == ':'))
            return 0;
    return 1;
}

static int queue_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 31)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-' && s[i] != '.')
            return 0;
    return 1;
}

/* Checks one schedule's parts; -1 with err. */
static int check_def(const char *name, const char *expr, const char *queue, const char *payload, int allow_colon,
                     char *err, size_t errlen)
{
    struct cron_spec sp;
    char why[200];
    if (!name_ok(name, allow_colon)) {
        snprintf(err, errlen, "schedule name '%s': 1 to %d of A-Z a-z 0-9 _ - .", name, SCHED_NAME_MAX);
        return -1;
    }
    if (cron_parse(expr, &sp, why, sizeof why) < 0) {
        snprintf(err, errlen, "schedule '%s': %s", name, why);
        return -1;
    }
    if (!queue_ok(queue)) {
        snprintf(err, errlen, "schedule '%s': queue '%s': 1 to 31 of A-Z a-z 0-9 _ - .", name, queue);
        return -1;
    }
    cJSON *j = cJSON_Parse(payload);
    if (!j) {
        snprintf(err, errlen, "schedule '%s': the payload is not JSON", name);
        return -1;
    }
    cJSON_Delete(j);
    return 0;
}

static void confs_clear(void)
{
    for (int i = 0; i < confs.n; i++) {
        xfree(confs.v[i].name), xfree(confs.v[i].expr);
        xfree(confs.v[i].queue), xfree(confs.v[i].payload);
    }
    xfree(confs.v);
    confs.v = NULL, confs.n = 0;
}

static int is_unit(const char *s)
{
    static const char *const units[] = {"s", "sec", "seconds", "m", "min", "minutes", "h", "hours", NULL};
    for (int i = 0; units[i]; i++)
        if (!strcasecmp(s, units[i]))
            return 1;
    return 0;
}

/* How many arguments the expression at argv[0] takes (see set_schedule). */
static int expr_args(int argc, const char *const *argv)
{
    if (!strcasecmp(argv[0], "every"))
        return argc >= 3 && isdigit((unsigned char)argv[1][0]) && !isalpha((unsigned char)argv[1][strlen(argv[1]) - 1]) &&
                       is_unit(argv[2])
                   ? 3
                   : 2;
    if (strchr(argv[0], ' ') || argv[0][0] == '@' || !strncasecmp(argv[0], "every", 5))
        return 1;
    return 5;
}

/* schedule <name> <expr> <queue> <payload> [<name> <expr> ...]: the
 * expression quoted ("*\/5 * * * *", "every 10 s") or as its own words.
 * Several per line (CONFIG REWRITE writes them so), several lines append. */
static int set_schedule(const struct cfg_option *o, int argc, const char *const *argv, int append, char *err,
                        size_t errlen)
{
    struct sched_conf *v = NULL;
    int n = 0;
    for (int i = 0; i < argc;) {
        const char *name = argv[i++];
        int ne = i < argc ? expr_args(argc - i, argv + i) : 0;
        if (ne == 0 || i + ne + 2 > argc) {
            snprintf(err, errlen, "schedule '%s': expected <name> <cron or every N s> <queue> <payload>", name);
            goto fail;
        }
        struct buf e = BUF_INIT;
        for (int k = 0; k < ne; k++)
            buf_printf(&e, "%s%s", k ? " " : "", argv[i + k]);
        i += ne;
        const char *queue = argv[i++], *payload = argv[i++];
        int bad = check_def(name, e.p, queue, payload, 0, err, errlen) < 0;
        for (int k = 0; !bad && k < n; k++)
            if (!strcmp(v[k].name, name)) {
                snprintf(err, errlen, "schedule '%s' is declared twice", name);
                bad = 1;
            }
        for (int k = 0; !bad && append && k < confs.n; k++)
            if (!strcmp(confs.v[k].name, name)) {
                snprintf(err, errlen, "schedule '%s' is declared twice", name);
                bad = 1;
            }
        if (bad) {
            buf_release(&e);
            goto fail;
        }
        v = xrealloc(v, sizeof *v * (size_t)(n + 1));
        v[n++] = (struct sched_conf){xstrdup(name), buf_detach(&e, NULL), xstrdup(queue), xstrdup(payload)};
    }
    if (!append)
        confs_clear();
    confs.v = xrealloc(confs.v, sizeof *v * (size_t)(confs.n + n + 1));
    if (n)
        memcpy(confs.v + confs.n, v, sizeof *v * (size_t)n);
    confs.n += n;
    xfree(v);
    return 0;
fail:
    for (int k = 0; k < n; k++)
        xfree(v[k].name), xfree(v[k].expr), xfree(v[k].queue), xfree(v[k].payload);
    xfree(v);
    return -1;
}

static void put_quoted(struct buf *b, const char *s)
{
    buf_putc(b, '"');
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            buf_printf(b, "\\%c", ch);
        else if (ch < 0x20 || ch == 0x7f)
            buf_printf(b, "\\x%02x", ch);
        else
            buf_putc(b, (char)ch);
    }
    buf_putc(b, '"');
}

static void get_schedule(const struct cfg_option *o, struct buf *out)
{
    for (int i = 0; i < confs.n; i++) {
        if (i)
            buf_putc(out, ' ');
        buf_printf(out, "%s ", confs.v[i].name);
        put_quoted(out, confs.v[i].expr);
        buf_printf(out, " %s ", confs.v[i].queue);
        put_quoted(out, confs.v[i].payload);
    }
}

#define SO_STR(n, f, d) {.name = n, .type = CFG_STRING, .flags = CFG_IMMUTABLE, .storage = &so.f, .dflt = d}
#define SO_INT(n, f, d, lo, hi) \
    {.name = n, .type = CFG_INT, .flags = CFG_IMMUTABLE, .storage = &so.f, .dflt = d, .min = lo, .max = hi}

static const struct cfg_option options_table[] = {
    {.name = "schedule", .type = CFG_SPECIAL, .flags = CFG_MULTIARG | CFG_IMMUTABLE, .storage = &confs,
     .dflt = "", .set = set_schedule, .get = get_schedule},
    SO_STR("schedule-timezone", tz, "UTC"),
    SO_INT("sched-tick-ms", tick_ms, "250", 10, 60000),
    SO_STR("sched-expire-withdrawals", expire_expr, "every 60 s"),
    SO_INT("sched-withdraw-timeout", wd_timeout, "900", 1, INT32_MAX),
    SO_STR("sched-retry-invoices", invoice_expr, "every 300 s"),
    SO_INT("sched-invoice-stuck-after", invoice_after, "600", 0, INT32_MAX),
    SO_INT("sched-invoice-max-redrives", invoice_max_redrives, "3", 0, 1000),
    SO_STR("sched-prune-jobs", prune_expr, "17 * * * *"),
    SO_INT("sched-job-retention", retention, "604800", 0, INT32_MAX),
    SO_STR("sched-daily-summary", summary_expr, "0 9 * * *"),
};

static void sched_options(struct cfg *c)
{
    the_cfg = c;
    cfg_register(c, options_table, sizeof options_table / sizeof options_table[0]);
}

/* ---- state ------------------------------------------------------------------ */

enum { SRC_BUILTIN, SRC_CONFIG, SRC_API };
static const char *const src_names[] = {"builtin", "config", "api"};

enum { T_EXPIRE, T_INVOICES, T_PRUNE, T_SUMMARY };

static const struct {
    const char *name, *task;
    char **expr;
    int once; /* exactly once per due time: keeps its last-fired time */
} builtins[] = {
    [T_EXPIRE] = {"builtin:expire-withdrawals", "expire-withdrawals", &so.expire_expr, 0},
    [T_INVOICES] = {"builtin:retry-invoices", "retry-invoices", &so.invoice_expr, 0},
    [T_PRUNE] = {"builtin:prune-jobs", "prune-jobs", &so.prune_expr, 0},
    [T_SUMMARY] = {"builtin:daily-summary", "daily-summary", &so.summary_expr, 1},
};
#define NBUILTINS ((int)(sizeof builtins / sizeof builtins[0]))

struct ent {
    char name[SCHED_NAME_MAX + 16];
    char *def;             /* the defs record it was read with ("" none) */
    struct cron_spec spec;
    char expr[128], queue[32];
    char *payload;
    int src, task;         /* task: builtins[] index (SRC_BUILTIN) or -1 */
    int paused, valid;
    int recorded;          /* its last-fired time lives in the engine */
    int64_t created_ms, base_ms, last_ms, next_ms, fired;
};

struct task; /* the expiry scan in progress */

struct sched {
    struct app *a;
    struct cron_tz *tz;
    uv_timer_t timer;
    struct ent *v;
    int n;
    int64_t started_ms;    /* where configured and built-in schedules count from */
    int64_t fired_total, fire_errors, redriven_total, expired_total, pruned_total;
    struct metrics_hist late;
    struct task *task;
};

static void ent_release(struct ent *e)
{
    xfree(e->def);
    xfree(e->payload);
}

static int64_t floor_div(int64_t a, int64_t b) { return a / b - (a % b < 0); }

static int64_t ent_next(struct sched *s, const struct ent *e, int64_t after_ms)
{
    int64_t n = cron_next(&e->spec, s->tz, floor_div(after_ms, 1000));
    return n < 0 ? -1 : n * 1000;
}

/* Sets e's definition (name, source and def set by the caller). */
static void ent_define(struct ent *e, const char *expr, const char *queue, const char *payload)
{
    char why[160];
    snprintf(e->expr, sizeof e->expr, "%s", expr);
    snprintf(e->queue, sizeof e->queue, "%s", queue);
    e->payload = xstrdup(payload);
    e->valid = cron_parse(expr, &e->spec, why, sizeof why) == 0 && (!*queue ? e->src == SRC_BUILTIN : queue_ok(queue));
}

/* An API record's definition into e. */
static void ent_parse_api(struct ent *e, const char *def, size_t len)
{
    cJSON *j = cJSON_ParseWithLength(def, len);
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(j, "expr"), *q = cJSON_GetObjectItemCaseSensitive(j, "queue"),
                *p = cJSON_GetObjectItemCaseSensitive(j, "payload");
    if (cJSON_IsString(x) && cJSON_IsString(q) && cJSON_IsString(p))
        ent_define(e, x->valuestring, q->valuestring, p->valuestring);
    else
        e->valid = 0, e->payload = NULL;
    const cJSON *cr = cJSON_GetObjectItemCaseSensitive(j, "created");
    e->created_ms = e->base_ms = cJSON_IsNumber(cr) ? (int64_t)cr->valuedouble : 0;
    e->paused = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "paused"));
    cJSON_Delete(j);
}

struct pairs {
    char **f, **v;
    size_t *vl;
    int n;
};

static void pairs_add(void *ud, const char *f, size_t fl, const char *v, size_t vl)
{
    struct pairs *p = ud;
    p->f = xrealloc(p->f, sizeof *p->f * (size_t)(p->n + 1));
    p->v = xrealloc(p->v, sizeof *p->v * (size_t)(p->n + 1));
    p->vl = xrealloc(p->vl, sizeof *p->vl * (size_t)(p->n + 1));
    p->f[p->n] = xstrndup(f, fl);
    p->v[p->n] = xstrndup(v, vl);
    p->vl[p->n++] = vl;
}

static void pairs_free(struct pairs *p)
{
    for (int i = 0; i < p->n; i++)
        xfree(p->f[i]), xfree(p->v[i]);
    xfree(p->f), xfree(p->v), xfree(p->vl);
    memset(p, 0, sizeof *p);
}

static int pairs_find(const struct pairs *p, const char *name)
{
    for (int k = 0; k < p->n; k++)
        if (!strcmp(p->f[k], name))
            return k;
    return -1;
}

static int64_t hget_i64(struct eng_ctx *c, const char *key, const char *field, int64_t dflt)
{
    struct eng_str v;
    int64_t n;
    if (eng_hget(c, S(key), S(field), &v) < 0 || num_parse_i64(v.p, v.n, &n) < 0)
        return dflt;
    return n;
}

/* A record's source ("api" when it has none: the first API schedules). */
static int record_src(const char *def, size_t len)
{
    cJSON *j = cJSON_ParseWithLength(def, len);
    const cJSON *src = cJSON_GetObjectItemCaseSensitive(j, "source");
    int r = SRC_API;
    if (cJSON_IsString(src))
        r = !strcmp(src->valuestring, "config") ? SRC_CONFIG : !strcmp(src->valuestring, "builtin") ? SRC_BUILTIN : SRC_API;
    cJSON_Delete(j);
    return r;
}

static int record_int(const char *def, size_t len, const char *field, int64_t *out)
{
    cJSON *j = cJSON_ParseWithLength(def, len);
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(j, field);
    int ok = cJSON_IsNumber(x) || cJSON_IsBool(x);
    if (ok)
        *out = cJSON_IsBool(x) ? cJSON_IsTrue(x) : (int64_t)x->valuedouble;
    cJSON_Delete(j);
    return ok ? 0 : -1;
}

/* Same definition apart from paused and created? */
static int same_def(const char *stored, size_t len, const char *expr, const char *queue, const char *payload)
{
    cJSON *j = cJSON_ParseWithLength(stored, len);
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(j, "expr"), *q = cJSON_GetObjectItemCaseSensitive(j, "queue"),
                *p = cJSON_GetObjectItemCaseSensitive(j, "payload");
    int same = cJSON_IsString(x) && cJSON_IsString(q) && cJSON_IsString(p) && !strcmp(x->valuestring, expr) &&
               !strcmp(q->valuestring, queue) && !strcmp(p->valuestring, payload);
    cJSON_Delete(j);
    return same;
}

static int find_conf(const char *name)
{
    for (int i = 0; i < confs.n; i++)
        if (!strcmp(confs.v[i].name, name))
            return i;
    return -1;
}

/* The built-in of that name, if it is switched on. */
static int find_builtin(const char *name)
{
    for (int i = 0; i < NBUILTINS; i++)
        if (!strcmp(builtins[i].name, name) && *builtins[i].expr && **builtins[i].expr)
            return i;
    return -1;
}

static void task_payload(char *out, size_t len, int task)
{
    snprintf(out, len, "{\"task\":\"%s\"}", builtins[task].task);
}

static int cmp_ent(const void *a, const void *b) { return strcmp(((const struct ent *)a)->name, ((const struct ent *)b)->name); }

/* Entry i of what this process declares (built-ins switched on, then the
 * schedule option) into e; 0 past the end. */
static int declared(struct sched *s, int i, struct ent *e)
{
    char payload[64];
    memset(e, 0, sizeof *e);
    e->created_ms = e->base_ms = s->started_ms;
    for (int k = 0; k < NBUILTINS; k++) {
        if (!*builtins[k].expr || !**builtins[k].expr || i-- > 0)
            continue;
        snprintf(e->name, sizeof e->name, "%s", builtins[k].name);
        e->src = SRC_BUILTIN, e->task = k, e->recorded = builtins[k].once;
        task_payload(payload, sizeof payload, k);
        ent_define(e, *builtins[k].expr, "", payload);
        return 1;
    }
    if (i >= confs.n)
        return 0;
    snprintf(e->name, sizeof e->name, "%s", confs.v[i].name);
    e->src = SRC_CONFIG, e->task = -1;
    ent_define(e, confs.v[i].expr, confs.v[i].queue, confs.v[i].payload);
    return 1;
}

/* The entry as it was before this reload, when its definition is the same. */
static struct ent *old_ent(struct sched *s, const struct ent *e)
{
    for (int k = 0; k < s->n; k++) {
        struct ent *o = &s->v[k];
        if (!strcmp(o->name, e->name) && o->src == e->src && !strcmp(o->expr, e->expr) &&
            !strcmp(o->queue, e->queue) && o->payload && e->payload && !strcmp(o->payload, e->payload))
            return o;
    }
    return NULL;
}

/* The times of e: last fired (from the engine when it keeps them), next. */
static void ent_times(struct sched *s, struct eng_ctx *c, struct ent *e, struct ent *old)
{
    int64_t last = old ? old->last_ms : e->base_ms;
    if (e->recorded) {
        int64_t stored = hget_i64(c, K_LAST, e->name, e->base_ms);
        /* the summary skipped without bot-admin-chat keeps its place in memory */
        last = e->src == SRC_BUILTIN && old && old->last_ms > stored ? old->last_ms : stored;
        e->fired = hget_i64(c, K_FIRED, e->name, 0);
    } else if (old) {
        e->fired = old->fired;
    }
    if (!old || last != old->last_ms || old->next_ms == 0 || !e->valid)
        e->next_ms = e->valid ? ent_next(s, e, last) : -1;
    else
        e->next_ms = old->next_ms;
    e->last_ms = last;
}

/* Applies an override record (paused; for a configured schedule, the
 * definition its last-fired time belongs to) to a declared entry. */
static void ent_override(struct ent *e, const char *def, size_t len)
{
    int64_t v;
    e->def = xstrndup(def, len);
    e->paused = record_int(def, len, "paused", &v) == 0 && v;
    if (e->src == SRC_CONFIG && same_def(def, len, e->expr, e->queue, e->payload)) {
        e->recorded = 1; /* the record's last time is this definition's */
        if (record_int(def, len, "created", &v) == 0)
            e->created_ms = v;
    }
}

/* Rebuilds the list: what this process declares, with the engine's
 * overrides, and the API's schedules from the engine. */
static void reload(struct sched *s)
{
    struct eng_ctx c;
    struct eng_str tag = {S(TAG)};
    struct pairs defs = {0};
    eng_ctx_init(&c, app_engine(s->a), 0);
    eng_lock_keys(&c, &tag, 1);
    eng_hgetall(&c, S(K_DEFS), NULL, pairs_add, &defs);
    struct ent *v = xcalloc((size_t)(NBUILTINS + confs.n + defs.n) + 1, sizeof *v);
    int n = 0;
    while (declared(s, n, &v[n])) {
        int k = pairs_find(&defs, v[n].name);
        if (k >= 0)
            ent_override(&v[n], defs.v[k], defs.vl[k]);
        n++;
    }
    int ndeclared = n;
    for (int k = 0; k < defs.n; k++) {
        int dup = 0;
        for (int i = 0; i < ndeclared && !dup; i++)
            dup = !strcmp(v[i].name, defs.f[k]);
        /* stale config or built-in records are ignored (the master removes them) */
        if (dup || record_src(defs.v[k], defs.vl[k]) != SRC_API)
            continue;
        struct ent *e = &v[n++];
        snprintf(e->name, sizeof e->name, "%s", defs.f[k]);
        e->src = SRC_API, e->task = -1, e->recorded = 1;
        e->def = xstrndup(defs.v[k], defs.vl[k]);
        ent_parse_api(e, defs.v[k], defs.vl[k]);
    }
    for (int i = 0; i < n; i++)
        ent_times(s, &c, &v[i], old_ent(s, &v[i]));
    eng_unlock(&c);
    for (int k = 0; k < s->n; k++)
        ent_release(&s->v[k]);
    xfree(s->v);
    s->v = v;
    s->n = n;
    qsort(s->v, (size_t)s->n, sizeof *s->v, cmp_ent);
    pairs_free(&defs);
}

static struct ent *find_ent(struct sched *s, const char *name)
{
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->v[i].name, name))
            return &s->v[i];
    return NULL;
}

static char *def_json(const char *expr, const char *queue, const char *payload, int paused, const char *source,
                      int64_t created)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "expr", expr);
    cJSON_AddStringToObject(j, "queue", queue);
    cJSON_AddStringToObject(j, "payload", payload);
    cJSON_AddBoolToObject(j, "paused", paused);
    cJSON_AddStringToObject(j, "source", source);
    cJSON_AddNumberToObject(j, "created", (double)created);
    char *t = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return t;
}

static void hset1(struct eng_ctx *c, const char *key, const char *field, const char *value)
{
    struct eng_str fv[2] = {{S(field)}, {S(value)}};
    int64_t added;
    eng_hset(c, S(key), fv, 1, &added);
}

static void hset_ms(struct eng_ctx *c, const char *key, const char *field, int64_t ms)
{
    char t[24];
    snprintf(t, sizeof t, "%lld", (long long)ms);
    hset1(c, key, field, t);
}

/* Writes (or rewrites) a record; a new or changed definition starts from
 * now, so that nothing missed under the old one fires. */
static void put_def(struct eng_ctx *c, const char *name, const char *expr, const char *queue, const char *payload,
                    int paused, const char *source)
{
    char *t = def_json(expr, queue, payload, paused, source, c->now_ms);
    hset1(c, K_DEFS, name, t);
    hset_ms(c, K_LAST, name, c->now_ms);
    cJSON_free(t);
}

static void hdel1(struct eng_ctx *c, const char *key, const char *name)
{
    struct eng_str f = {S(name)};
    int64_t d;
    eng_hdel(c, S(key), &f, 1, &d);
}

static void del_def(struct eng_ctx *c, const char *name)
{
    hdel1(c, K_DEFS, name);
    hdel1(c, K_LAST, name);
    hdel1(c, K_FIRED, name);
}

/* On the master, each tick: records this process's configuration
 * contradicts are set right (a configured schedule gone, or changed: it
 * restarts from now; an override of a built-in that is off or no longer
 * paused).  Writes nothing when every record agrees (the usual case: a
 * few small reads). */
static void sync_config(struct sched *s)
{
    struct eng_ctx c;
    struct eng_str tag = {S(TAG)};
    struct pairs defs = {0};
    eng_ctx_init(&c, app_engine(s->a), 0);
    eng_lock_keys(&c, &tag, 1);
    eng_journal_multi(&c, 1); /* MULTI only if something is written */
    eng_hgetall(&c, S(K_DEFS), NULL, pairs_add, &defs);
    for (int k = 0; k < defs.n; k++) {
        const char *name = defs.f[k];
        int src = record_src(defs.v[k], defs.vl[k]), ci = find_conf(name), bi = find_builtin(name);
        int64_t paused = 0;
        record_int(defs.v[k], defs.vl[k], "paused", &paused);
        if (ci >= 0 && (src != SRC_CONFIG ||
                        !same_def(defs.v[k], defs.vl[k], confs.v[ci].expr, confs.v[ci].queue, confs.v[ci].payload))) {
            put_def(&c, name, confs.v[ci].expr, confs.v[ci].queue, confs.v[ci].payload, (int)paused, "config");
            log_info("schedule set", "name=%s expr=\"%s\" queue=%s source=config reason=\"%s\"", name,
                     confs.v[ci].expr, confs.v[ci].queue,
                     src == SRC_CONFIG ? "the configuration changed it: restarts from now"
                                       : "the configuration declares it");
        } else if (src == SRC_CONFIG && ci < 0) {
            del_def(&c, name);
            log_info("schedule removed", "name=%s reason=\"no longer in the configuration\"", name);
        } else if (src == SRC_BUILTIN && (bi < 0 || !paused)) {
            hdel1(&c, K_DEFS, name);
            if (bi < 0 || !builtins[bi].once)
                hdel1(&c, K_LAST, name), hdel1(&c, K_FIRED, name);
        }
    }
    eng_journal_multi(&c, 0);
    eng_unlock(&c);
    pairs_free(&defs);
}

/* Fires a configured or API schedule's latest due time, if it is still
 * unfired: one locked, journaled step over {sched} and the queue's tag
 * adds the job and records the due time (and, on a configured schedule's
 * first fire, the definition that time belongs to). */
static void fire(struct sched *s, struct ent *e, int64_t now_ms)
{
    int64_t due_s = cron_latest(&e->spec, s->tz, floor_div(e->last_ms, 1000), floor_div(now_ms, 1000));
    if (due_s < 0) {
        e->next_ms = ent_next(s, e, now_ms);
        return;
    }
    int64_t due = due_s * 1000;
    char qtag[48], idem[sizeof e->name + 24];
    key_queue_tag(qtag, sizeof qtag, e->queue);
    struct eng_str keys[2] = {{S(TAG)}, {S(qtag)}};
    struct eng_ctx c;
    eng_ctx_init(&c, app_engine(s->a), 0);
    eng_lock_keys(&c, keys, 2);
    int64_t last = hget_i64(&c, K_LAST, e->name, e->base_ms);
    int has_def = eng_hexists(&c, S(K_DEFS), S(e->name)) == 1;
    int rc = 1;
    if (last == e->last_ms && (has_def || e->src == SRC_CONFIG)) {
        snprintf(idem, sizeof idem, "%s:%lld", e->name, (long long)due);
        eng_journal_multi(&c, 1);
        rc = bot_queue_add_ctx(&c, e->queue, e->payload, strlen(e->payload), idem, 0, NULL);
        if (rc >= 0) {
            if (!has_def) {
                char *t = def_json(e->expr, e->queue, e->payload, 0, "config", e->created_ms);
                hset1(&c, K_DEFS, e->name, t);
                cJSON_free(t);
            }
            hset_ms(&c, K_LAST, e->name, due);
            eng_hincrby(&c, S(K_FIRED), S(e->name), 1, &e->fired);
        }
        eng_journal_multi(&c, 0);
    }
    eng_unlock(&c);
    if (rc < 0) {
        s->fire_errors++;
        log_warn("schedule not fired", "name=%s queue=%s due=%lld rc=%d", e->name, e->queue, (long long)due, rc);
        e->next_ms = now_ms + 1000; /* try again soon */
        return;
    }
    if (last != e->last_ms || (!has_def && e->src != SRC_CONFIG)) { /* changed under us: the next reload tells */
        e->next_ms = 0;
        return;
    }
    s->fired_total++;
    metrics_hist_observe(&s->late, (double)(now_ms - due) / 1000.0);
    log_info("schedule fired", "name=%s queue=%s due=%lld late_ms=%lld new=%d", e->name, e->queue, (long long)due,
             (long long)(now_ms - due), rc);
    e->last_ms = due;
    e->next_ms = ent_next(s, e, due);
}

static void run_builtin(struct sched *s, struct ent *e, int64_t now_ms);

static void on_tick(uv_timer_t *t)
{
    struct sched *s = t->data;
    /* Not while a snapshot loads: what we would read is not there yet, and
     * what we wrote would be overwritten by the load. */
    if (!app_is_master(s->a) || app_is_loading(s->a))
        return;
    sync_config(s); /* every tick: a snapshot loaded after our first look brings old records back */
    reload(s);
    int64_t now = app_now_ms();
    for (int i = 0; i < s->n; i++) {
        struct ent *e = &s->v[i];
        if (!e->valid || e->paused || e->next_ms < 0 || e->next_ms > now)
            continue;
        if (e->src == SRC_BUILTIN)
            run_builtin(s, e, now);
        else
            fire(s, e, now);
    }
}

/* ---- built-in tasks (in process, on the master) ------------------------------------ */

struct task {
    struct sched *s;
    uv_timer_t step;
    uint64_t cursor;
    int64_t expired, seen;
    int64_t uids[512];
    int nuids;
};

static void collect_uid(void *ud, const char *k, size_t n)
{
    struct task *t = ud;
    /* session:{u:<uid>} */
    int64_t uid;
    if (n < 13 || memcmp(k, "session:{u:", 11) || k[n - 1] != '}' ||
        t->nuids == (int)(sizeof t->uids / sizeof t->uids[0]) ||
        num_parse_i64(k + 11, n - 12, &uid) < 0)
        return;
    t->uids[t->nuids++] = uid;
}

/* One user: an unconfirmed withdraw conversation older than the timeout
 * goes back to idle.  Nothing was held (the hold happens at confirm). */
static void expire_one(struct task *t, int64_t uid)
{
    char tag[40], key[48];
    key_user_tag(tag, sizeof tag, uid);
    key_user(key, sizeof key, "session", uid);
    struct eng_str k = {S(tag)};
    struct eng_ctx c;
    eng_ctx_init(&c, app_engine(t->s->a), 0);
    eng_lock_keys(&c, &k, 1);
    struct eng_str f[2] = {{S("state")}, {S("updated")}}, v[2];
    int64_t updated;
    if (eng_hmget(&c, S(key), f, 2, v) == 0 && v[0].p && v[0].n > 9 && !memcmp(v[0].p, "withdraw_", 9) &&
        v[1].p && num_parse_i64(v[1].p, v[1].n, &updated) == 0 && c.now_ms - updated > so.wd_timeout * 1000) {
        struct eng_str fv[2] = {{S("state")}, {S("idle")}};
        struct eng_str gone[3] = {{S("amount")}, {S("address")}, {S("ref")}};
        int64_t n;
        eng_journal_multi(&c, 1);
        eng_hset(&c, S(key), fv, 1, &n);
        eng_hdel(&c, S(key), gone, 3, &n);
        bot_tell(&c, t->s->a, uid, "withdraw_expired");
        eng_journal_multi(&c, 0);
        t->expired++;
        log_info("withdrawal conversation expired", "user=%lld idle_s=%lld", (long long)uid,
                 (long long)((c.now_ms - updated) / 1000));
    }
    eng_unlock(&c);
}

#define SCAN_BUSY_RETRY_MS 50 /* a sweep meeting a busy shard looks again after */

static void task_close_cb(uv_handle_t *h) { xfree(h->data); }

static void expire_step(uv_timer_t *h)
{
    struct task *t = h->data;
    t->nuids = 0;
    /* a shard another thread holds is tried again a little later: the
     * bot's loop (webhook, /healthz) never waits behind a sweep */
    int busy;
    t->cursor = eng_scan_nowait(app_engine(t->s->a), 0, t->cursor, S("session:{u:*}"), ENG_T_HASH, 256, collect_uid,
                                t, &busy);
    for (int i = 0; i < t->nuids; i++)
        expire_one(t, t->uids[i]);
    t->seen += t->nuids;
    if ((busy || t->cursor != 0) && app_is_master(t->s->a)) {
        /* the next slice on the next loop turn */
        uv_timer_start(&t->step, expire_step, busy ? SCAN_BUSY_RETRY_MS : 0, 0);
        return;
    }
    log_debug("withdrawal conversations scanned", "expired=%lld sessions=%lld", (long long)t->expired,
              (long long)t->seen);
    t->s->expired_total += t->expired;
    t->s->task = NULL;
    uv_close((uv_handle_t *)&t->step, task_close_cb);
}

/* Scans the sessions in slices, one loop turn each; one scan at a time. */
static void task_expire(struct sched *s)
{
    if (s->task)
        return;
    struct task *t = xcalloc(1, sizeof *t);
    t->s = s;
    uv_timer_init(app_loop(s->a), &t->step);
    t->step.data = t;
    s->task = t;
    uv_timer_start(&t->step, expire_step, 0, 0);
}

/* Dead payment jobs (the invoice was never created) older than
 * sched-invoice-stuck-after go back to waiting, at most
 * sched-invoice-max-redrives times each (counted in sched:{sched}:redrives);
 * waiting ones that old are only reported (the pool is behind: re-driving
 * would not help). */
static void task_invoices(struct sched *s)
{
    struct buf out = BUF_INIT;
    int64_t now = app_now_ms();
    bot_queue_dead_list(s->a, "payment", 0, 1000, &out);
    cJSON *arr = cJSON_Parse(out.p ? out.p : "[]");
    buf_release(&out);
    const cJSON *j;
    cJSON_ArrayForEach(j, arr)
    {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(j, "id"), *fin = cJSON_GetObjectItemCaseSensitive(j, "finished");
        if (!cJSON_IsString(id) || (cJSON_IsNumber(fin) && now - (int64_t)fin->valuedouble < so.invoice_after * 1000))
            continue;
        struct eng_ctx c;
        struct eng_str tag = {S(TAG)};
        eng_ctx_init(&c, app_engine(s->a), 0);
        eng_lock_keys(&c, &tag, 1);
        int64_t n = hget_i64(&c, K_REDRIVES, id->valuestring, 0);
        int go = n < so.invoice_max_redrives;
        if (go)
            eng_hincrby(&c, S(K_REDRIVES), S(id->valuestring), 1, &n);
        eng_unlock(&c);
        if (go && bot_queue_redrive(s->a, "payment", id->valuestring) == 1) {
            s->redriven_total++;
            log_info("invoice job re-driven", "queue=payment id=%s redrives=%lld", id->valuestring, (long long)n);
        }
    }
    cJSON_Delete(arr);
    struct bot_queue_stats st;
    if (bot_queue_stats(s->a, "payment", &st) == 0 && st.waiting > 0 && st.oldest_wait_s > (double)so.invoice_after)
        log_warn("invoice jobs waiting too long", "queue=payment waiting=%lld oldest_s=%.0f", (long long)st.waiting,
                 st.oldest_wait_s);
}

/* Every queue we know of: the queue part's and the schedules'. */
static int queue_list(struct sched *s, const char **out, int max)
{
    int n = 0;
    const char *const *names = bot_queue_names(s->a);
    for (int i = 0; names && names[i] && n < max; i++)
        out[n++] = names[i];
    for (int i = 0; i < s->n && n < max; i++) {
        const char *q = s->v[i].queue;
        int dup = !*q;
        for (int k = 0; k < n && !dup; k++)
            dup = !strcmp(out[k], q);
        if (!dup)
            out[n++] = q;
    }
    return n;
}

static void task_prune(struct sched *s)
{
    const char *qs[64];
    int n = queue_list(s, qs, 64);
    int64_t before = app_now_ms() - so.retention * 1000, total = 0;
    for (int i = 0; i < n; i++) {
        int64_t k = bot_queue_prune(s->a, qs[i], before);
        total += k > 0 ? k : 0;
    }
    s->pruned_total += total;
    if (total)
        log_info("completed jobs pruned", "count=%lld retention_s=%lld", (long long)total, (long long)so.retention);
}

static int64_t admin_chat(void)
{
    struct buf v = BUF_INIT;
    int64_t id = 0;
    if (the_cfg && cfg_get(the_cfg, "bot-admin-chat", &v) == 0 && v.p)
        num_parse_i64(v.p, v.len, &id);
    buf_release(&v);
    return id;
}

/* The summary's sendMessage parameters (JSON; the caller frees). */
static char *summary_params(struct sched *s, int64_t chat, int64_t due)
{
    struct buf text = BUF_INIT;
    char day[32];
    time_t t = (time_t)(due / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(day, sizeof day, "%Y-%m-%d %H:%M UTC", &tm);
    buf_printf(&text, "Daily summary, %s\n", day);
    const char *qs[64];
    int n = queue_list(s, qs, 64);
    for (int i = 0; i < n; i++) {
        struct bot_queue_stats st;
        if (bot_queue_stats(s->a, qs[i], &st) < 0)
            continue;
        buf_printf(&text, "%s: %lld done, %lld failed, %lld waiting, %lld dead\n", qs[i],
                   (long long)st.completed_total, (long long)st.failed_total, (long long)st.waiting,
                   (long long)st.dead);
    }
    buf_printf(&text, "schedules: %d, fired %lld since start; outbox pending %lld; keys %llu\n", s->n,
               (long long)s->fired_total, (long long)bot_outbox_depth(s->a),
               (unsigned long long)eng_dbsize(app_engine(s->a), 0));
    cJSON *p = cJSON_CreateObject();
    cJSON_AddNumberToObject(p, "chat_id", (double)chat);
    cJSON_AddStringToObject(p, "text", text.p);
    char *params = cJSON_PrintUnformatted(p);
    cJSON_Delete(p);
    buf_release(&text);
    return params;
}

/* The daily summary, once per due time across failovers: {sched} and the
 * chat's tag locked together, the due time checked, the message pushed to
 * the outbox and the due time recorded in one journaled step.  No
 * bot-admin-chat: nothing to send, nothing written. */
static int task_summary(struct sched *s, struct ent *e, int64_t due)
{
    int64_t chat = admin_chat();
    if (!chat)
        return 0;
    char *params = summary_params(s, chat, due);
    char utag[40];
    key_user_tag(utag, sizeof utag, chat);
    struct eng_str keys[2] = {{S(TAG)}, {S(utag)}};
    struct eng_ctx c;
    eng_ctx_init(&c, app_engine(s->a), 0);
    eng_lock_keys(&c, keys, 2);
    int rc = 0;
    if (hget_i64(&c, K_LAST, e->name, e->base_ms) < due) {
        eng_journal_multi(&c, 1);
        rc = bot_outbox_push(&c, s->a, chat, "sendMessage", params, 0);
        if (rc >= 0) {
            hset_ms(&c, K_LAST, e->name, due);
            eng_hincrby(&c, S(K_FIRED), S(e->name), 1, &e->fired);
            rc = 1;
        }
        eng_journal_multi(&c, 0);
    }
    eng_unlock(&c);
    cJSON_free(params);
    if (rc < 0)
        log_warn("daily summary not sent", "chat=%lld rc=%d", (long long)chat, rc);
    return rc;
}

/* Runs a built-in's latest due time in process.  The housekeeping ones are
 * idempotent: nothing is recorded (a new master may run one again early). */
static void run_builtin(struct sched *s, struct ent *e, int64_t now_ms)
{
    int64_t due_s = cron_latest(&e->spec, s->tz, floor_div(e->last_ms, 1000), floor_div(now_ms, 1000));
    if (due_s < 0) {
        e->next_ms = ent_next(s, e, now_ms);
        return;
    }
    int64_t due = due_s * 1000;
    switch (e->task) {
    case T_EXPIRE: task_expire(s); break;
    case T_INVOICES: task_invoices(s); break;
    case T_PRUNE: task_prune(s); break;
    case T_SUMMARY:
        if (task_summary(s, e, due) < 0) {
            s->fire_errors++;
            e->next_ms = now_ms + 1000; /* try again soon */
            return;
        }
        break;
    }
    if (!e->recorded)
        e->fired++;
    s->fired_total++;
    metrics_hist_observe(&s->late, (double)(now_ms - due) / 1000.0);
    log_debug("built-in schedule ran", "name=%s due=%lld late_ms=%lld", e->name, (long long)due,
              (long long)(now_ms - due));
    e->last_ms = due;
    e->next_ms = ent_next(s, e, due);
}

/* ---- the API's calls (scheduler.h) ----------------------------------------------------- */

static struct sched *state_of(struct app *a) { return app_part_state(a, "sched"); }

static cJSON *ent_object(struct sched *s, const struct ent *e)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", e->name);
    cJSON_AddStringToObject(o, "expr", e->expr);
    if (e->src == SRC_BUILTIN)
        cJSON_AddNullToObject(o, "queue"); /* run in process */
    else
        cJSON_AddStringToObject(o, "queue", e->queue);
    cJSON *p = e->payload ? cJSON_Parse(e->payload) : NULL;
    cJSON_AddItemToObject(o, "payload", p ? p : cJSON_CreateNull());
    cJSON_AddBoolToObject(o, "paused", e->paused);
    cJSON_AddStringToObject(o, "source", src_names[e->src]);
    cJSON_AddStringToObject(o, "timezone", cron_tz_name(s->tz));
    cJSON_AddNumberToObject(o, "created_ms", (double)e->created_ms);
    cJSON_AddNumberToObject(o, "last_due_ms", (double)e->last_ms);
    if (e->valid && !e->paused && e->next_ms >= 0)
        cJSON_AddNumberToObject(o, "next_due_ms", (double)e->next_ms);
    else
        cJSON_AddNullToObject(o, "next_due_ms");
    cJSON_AddNumberToObject(o, "fired", (double)e->fired);
    return o;
}

static void put_json(cJSON *o, struct buf *out)
{
    char *t = cJSON_PrintUnformatted(o);
    buf_puts(out, t);
    cJSON_free(t);
    cJSON_Delete(o);
}

void bot_sched_list_json(struct app *a, struct buf *out)
{
    struct sched *s = state_of(a);
    cJSON *arr = cJSON_CreateArray();
    if (s) {
        reload(s);
        for (int i = 0; i < s->n; i++)
            cJSON_AddItemToArray(arr, ent_object(s, &s->v[i]));
    }
    put_json(arr, out);
}

int bot_sched_get_json(struct app *a, const char *name, struct buf *out)
{
    struct sched *s = state_of(a);
    if (!s)
        return 0;
    reload(s);
    struct ent *e = find_ent(s, name);
    if (!e)
        return 0;
    put_json(ent_object(s, e), out);
    return 1;
}

static void lock_sched(struct eng_ctx *c, struct app *a)
{
    struct eng_str tag = {S(TAG)};
    eng_ctx_init(c, app_engine(a), 0);
    eng_lock_keys(c, &tag, 1);
}

int bot_sched_add(struct app *a, const char *name, const char *expr, const char *queue, const char *payload,
                  char *err, size_t errlen)
{
    if (!app_is_master(a)) {
        snprintf(err, errlen, "not the master");
        return -1;
    }
    if (check_def(name, expr, queue, payload, 0, err, errlen) < 0)
        return -1;
    if (find_conf(name) >= 0 || find_builtin(name) >= 0)
        return 0;
    /* the payload is stored compact, as jobs carry it */
    cJSON *pj = cJSON_Parse(payload);
    char *compact = cJSON_PrintUnformatted(pj);
    cJSON_Delete(pj);
    struct eng_ctx c;
    lock_sched(&c, a);
    int exists = eng_hexists(&c, S(K_DEFS), S(name)) == 1;
    if (!exists) {
        eng_journal_multi(&c, 1);
        put_def(&c, name, expr, queue, compact, 0, "api");
        eng_journal_multi(&c, 0);
    }
    eng_unlock(&c);
    cJSON_free(compact);
    if (!exists)
        log_info("schedule added", "name=%s expr=\"%s\" queue=%s source=api", name, expr, queue);
    return !exists;
}

/* The record of a paused (or resumed) schedule declared by this process. */
static void put_override(struct eng_ctx *c, const struct ent *e, int paused)
{
    char *t = def_json(e->expr, e->queue, e->payload ? e->payload : "{}", paused, src_names[e->src], e->created_ms);
    hset1(c, K_DEFS, e->name, t);
    cJSON_free(t);
}

/* Pausing writes the override; resuming a schedule that keeps its last
 * fired time records now as fired (what was missed while paused stays
 * missed); a built-in's override goes when it resumes.  Already in that
 * state: nothing written. */
int bot_sched_set_paused(struct app *a, const char *name, int paused)
{
    struct sched *s = state_of(a);
    if (!app_is_master(a) || !s)
        return -1;
    reload(s);
    struct ent *e = find_ent(s, name);
    if (!e)
        return 0;
    if (e->paused == paused)
        return 1;
    struct eng_ctx c;
    lock_sched(&c, a);
    eng_journal_multi(&c, 1);
    if (e->src == SRC_API && e->def) {
        cJSON *j = cJSON_Parse(e->def);
        cJSON_ReplaceItemInObjectCaseSensitive(j, "paused", cJSON_CreateBool(paused));
        char *t = cJSON_PrintUnformatted(j);
        cJSON_Delete(j);
        hset1(&c, K_DEFS, name, t);
        cJSON_free(t);
    } else if (e->src == SRC_CONFIG || paused) {
        put_override(&c, e, paused);
    } else {
        hdel1(&c, K_DEFS, name);
    }
    if (!paused && (e->src != SRC_BUILTIN || e->recorded))
        hset_ms(&c, K_LAST, name, c.now_ms);
    eng_journal_multi(&c, 0);
    int64_t now = c.now_ms;
    eng_unlock(&c);
    if (!paused && !e->recorded) { /* in memory only */
        e->last_ms = now;
        e->next_ms = ent_next(s, e, now);
    }
    log_info(paused ? "schedule paused" : "schedule resumed", "name=%s source=%s", name, src_names[e->src]);
    return 1;
}

int bot_sched_delete(struct app *a, const char *name, char *err, size_t errlen)
{
    struct sched *s = state_of(a);
    if (!app_is_master(a) || !s) {
        snprintf(err, errlen, "not the master");
        return -1;
    }
    reload(s);
    struct ent *e = find_ent(s, name);
    if (!e)
        return 0;
    if (e->src != SRC_API) {
        snprintf(err, errlen, "schedule '%s' comes from the %s: pause it instead", name,
                 e->src == SRC_CONFIG ? "configuration" : "bot itself");
        return -1;
    }
    struct eng_ctx c;
    lock_sched(&c, a);
    int rc = eng_hexists(&c, S(K_DEFS), S(name)) == 1;
    if (rc) {
        eng_journal_multi(&c, 1);
        del_def(&c, name);
        eng_journal_multi(&c, 0);
    }
    eng_unlock(&c);
    if (rc)
        log_info("schedule deleted", "name=%s", name);
    return rc;
}

/* ---- the part ----------------------------------------------------------------------- */

static void collect(void *ud, struct buf *out)
{
    struct sched *s = ud;
    int paused = 0;
    for (int i = 0; i < s->n; i++)
        paused += s->v[i].paused;
    metrics_family(out, "obentchi_sched_schedules", "gauge", "Schedules known, by state.");
    metrics_sample_int(out, "obentchi_sched_schedules", (const char *const[]){"state", "active", NULL}, s->n - paused);
    metrics_sample_int(out, "obentchi_sched_schedules", (const char *const[]){"state", "paused", NULL}, paused);
    metrics_family(out, "obentchi_sched_fired_total", "counter", "Due times fired by this process.");
    metrics_sample_int(out, "obentchi_sched_fired_total", NULL, s->fired_total);
    metrics_family(out, "obentchi_sched_fire_errors_total", "counter", "Due times that could not be enqueued.");
    metrics_sample_int(out, "obentchi_sched_fire_errors_total", NULL, s->fire_errors);
    metrics_family(out, "obentchi_sched_late_seconds", "histogram", "How late after its due time a job was added.");
    metrics_hist_write(out, "obentchi_sched_late_seconds", NULL, &s->late);
    metrics_family(out, "obentchi_sched_housekeeping_total", "counter", "Built-in schedules' work done.");
    metrics_sample_int(out, "obentchi_sched_housekeeping_total", (const char *const[]){"what", "expired", NULL},
                       s->expired_total);
    metrics_sample_int(out, "obentchi_sched_housekeeping_total", (const char *const[]){"what", "redriven", NULL},
                       s->redriven_total);
    metrics_sample_int(out, "obentchi_sched_housekeeping_total", (const char *const[]){"what", "pruned", NULL},
                       s->pruned_total);
}

static int sched_start(struct app *a, char *err, size_t errlen)
{
    char why[200];
    struct cron_tz *tz = cron_tz_load(so.tz, why, sizeof why);
    if (!tz) {
        snprintf(err, errlen, "schedule-timezone: %s", why);
        return -1;
    }
    for (int i = 0; i < NBUILTINS; i++) {
        struct cron_spec sp;
        const char *x = *builtins[i].expr;
        if (x && *x && cron_parse(x, &sp, why, sizeof why) < 0) {
            snprintf(err, errlen, "sched-%s: %s", builtins[i].task, why);
            cron_tz_free(tz);
            return -1;
        }
    }
    struct sched *s = xcalloc(1, sizeof *s);
    s->a = a;
    s->tz = tz;
    s->started_ms = app_now_ms();
    metrics_hist_init_latency(&s->late);
    app_set_part_state(a, "sched", s);
    app_add_collector(a, collect, s);
    uv_timer_init(app_loop(a), &s->timer);
    s->timer.data = s;
    uv_timer_start(&s->timer, on_tick, (uint64_t)so.tick_ms, (uint64_t)so.tick_ms);
    log_info("scheduler started", "timezone=%s schedules_configured=%d tick_ms=%lld", so.tz, confs.n,
             (long long)so.tick_ms);
    return 0;
}

static void sched_close_cb(uv_handle_t *h)
{
    struct sched *s = h->data;
    for (int i = 0; i < s->n; i++)
        ent_release(&s->v[i]);
    xfree(s->v);
    cron_tz_free(s->tz);
    xfree(s);
}

static void sched_stop(struct app *a)
{
    struct sched *s = state_of(a);
    if (!s)
        return;
    if (s->task) { /* a scan cut short: the next one starts over */
        uv_timer_stop(&s->task->step);
        uv_close((uv_handle_t *)&s->task->step, task_close_cb);
        s->task = NULL;
    }
    uv_timer_stop(&s->timer);
    uv_close((uv_handle_t *)&s->timer, sched_close_cb);
    app_set_part_state(a, "sched", NULL);
}

const struct app_part bot_part_sched = {
    .name = "sched",
    .options = sched_options,
    .start = sched_start,
    .stop = sched_stop,
};
