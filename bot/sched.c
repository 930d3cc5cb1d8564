/* sched.c: the scheduler part (scheduler.h): schedules from the configuration,
 * from the API and built in, kept in the engine under {sched}, fired by the
 * master only, exactly once per due time.
 *
 * Firing.  A timer (sched-tick-ms) re-reads the {sched} hashes (a few small
 * hashes: RESP clients and a promoted replica see and change the same
 * state), and for each schedule whose next due time has come locks {sched}
 * together with the target queue's tag and, in one journaled transaction,
 * checks that the last fired time is still the one it computed from, adds
 * the job (idempotency key "<name>:<due ms>") and records the due time.
 * Replicas receive both changes or neither; a replica promoted after a
 * missed tick computes the same due time from the same record and fires it
 * once, late.  A scheduler that was down fires the latest missed due time
 * only (cron_latest), not a burst.
 *
 * Built-in schedules add jobs {"task": ...} to the queue "sched", whose
 * handler (here) does the housekeeping: expiring withdraw conversations
 * left unconfirmed (they hold nothing: the hold happens at confirm, so only
 * the session goes back to idle), re-driving payment jobs that died
 * (invoices that never got created), pruning completed jobs past
 * sched-job-retention, and the daily summary to bot-admin-chat.  As jobs
 * they inherit the queue's leases, retries and dead letters. */
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
#define TASK_QUEUE "sched"

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

struct ent {
    char name[SCHED_NAME_MAX + 16];
    char *def;             /* the defs value it was parsed from */
    struct cron_spec spec;
    char expr[128], queue[32], source[12];
    char *payload;
    int paused, valid;
    int64_t created_ms, last_ms, next_ms, fired;
};

struct task; /* a built-in task in progress */

struct sched {
    struct app *a;
    struct cron_tz *tz;
    uv_timer_t timer;
    struct ent *v;
    int n;
    int synced;            /* config and built-ins written since we became master */
    int64_t fired_total, fire_errors, redriven_total, expired_total, pruned_total;
    struct metrics_hist late;
    struct task *task;     /* the expiry scan in progress, if any */
};

static void ent_release(struct ent *e)
{
    xfree(e->def);
    xfree(e->payload);
}

static int64_t floor_div(int64_t a, int64_t b) { return a / b - (a % b < 0); }

/* Parses a defs value into e (name set by the caller). */
static void ent_parse(struct sched *s, struct ent *e, const char *def, size_t len)
{
    e->def = xstrndup(def, len);
    e->valid = 0;
    cJSON *j = cJSON_ParseWithLength(def, len);
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(j, "expr"), *q = cJSON_GetObjectItemCaseSensitive(j, "queue"),
                *p = cJSON_GetObjectItemCaseSensitive(j, "payload");
    char why[160];
    if (cJSON_IsString(x) && cJSON_IsString(q) && cJSON_IsString(p) &&
        cron_parse(x->valuestring, &e->spec, why, sizeof why) == 0 && queue_ok(q->valuestring)) {
        snprintf(e->expr, sizeof e->expr, "%s", x->valuestring);
        snprintf(e->queue, sizeof e->queue, "%s", q->valuestring);
        e->payload = xstrdup(p->valuestring);
        e->valid = 1;
    }
    const cJSON *src = cJSON_GetObjectItemCaseSensitive(j, "source");
    snprintf(e->source, sizeof e->source, "%s", cJSON_IsString(src) ? src->valuestring : "api");
    e->paused = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "paused"));
    const cJSON *cr = cJSON_GetObjectItemCaseSensitive(j, "created");
    e->created_ms = cJSON_IsNumber(cr) ? (int64_t)cr->valuedouble : 0;
    cJSON_Delete(j);
    (void)s;
}

static int64_t ent_next(struct sched *s, const struct ent *e, int64_t after_ms)
{
    int64_t n = cron_next(&e->spec, s->tz, floor_div(after_ms, 1000));
    return n < 0 ? -1 : n * 1000;
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

static int64_t hget_i64(struct eng_ctx *c, const char *key, const char *field, int64_t dflt)
{
    struct eng_str v;
    int64_t n;
    if (eng_hget(c, S(key), S(field), &v) < 0 || num_parse_i64(v.p, v.n, &n) < 0)
        return dflt;
    return n;
}

static int cmp_ent(const void *a, const void *b) { return strcmp(((const struct ent *)a)->name, ((const struct ent *)b)->name); }

/* Re-reads every schedule from the engine, keeping parsed entries whose
 * definition did not change. */
static void reload(struct sched *s)
{
    struct eng_ctx c;
    struct eng_str tag = {S(TAG)};
    struct pairs defs = {0};
    eng_ctx_init(&c, app_engine(s->a), 0);
    eng_lock_keys(&c, &tag, 1);
    eng_hgetall(&c, S(K_DEFS), NULL, pairs_add, &defs);
    struct ent *v = xcalloc((size_t)defs.n + 1, sizeof *v);
    for (int i = 0; i < defs.n; i++) {
        struct ent *e = &v[i];
        snprintf(e->name, sizeof e->name, "%s", defs.f[i]);
        struct ent *old = NULL;
        for (int k = 0; k < s->n && !old; k++)
            if (!strcmp(s->v[k].name, e->name) && !strcmp(s->v[k].def, defs.v[i]))
                old = &s->v[k];
        if (old) {
            *e = *old;
            old->def = old->payload = NULL;
        } else {
            ent_parse(s, e, defs.v[i], defs.vl[i]);
        }
        int64_t last = hget_i64(&c, K_LAST, e->name, e->created_ms);
        if (!old || last != e->last_ms || e->next_ms == 0) {
            e->last_ms = last;
            e->next_ms = e->valid ? ent_next(s, e, last) : -1;
        }
        e->fired = hget_i64(&c, K_FIRED, e->name, 0);
    }
    eng_unlock(&c);
    for (int k = 0; k < s->n; k++)
        ent_release(&s->v[k]);
    xfree(s->v);
    s->v = v;
    s->n = defs.n;
    qsort(s->v, (size_t)s->n, sizeof *s->v, cmp_ent);
    pairs_free(&defs);
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

/* Writes (or rewrites) a definition; a new or changed expression starts
 * from now, so that nothing missed under the old one fires. */
static void put_def(struct eng_ctx *c, const char *name, const char *expr, const char *queue, const char *payload,
                    int paused, const char *source)
{
    char now[24];
    snprintf(now, sizeof now, "%lld", (long long)c->now_ms);
    char *t = def_json(expr, queue, payload, paused, source, c->now_ms);
    struct eng_str fv[2] = {{S(name)}, {S(t)}};
    int64_t added;
    eng_hset(c, S(K_DEFS), fv, 1, &added);
    fv[1] = (struct eng_str){S(now)};
    eng_hset(c, S(K_LAST), fv, 1, &added);
    cJSON_free(t);
}

static void del_def(struct eng_ctx *c, const char *name)
{
    struct eng_str f = {S(name)};
    int64_t d;
    eng_hdel(c, S(K_DEFS), &f, 1, &d);
    eng_hdel(c, S(K_LAST), &f, 1, &d);
    eng_hdel(c, S(K_FIRED), &f, 1, &d);
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

static const struct {
    const char *name, *task;
    char **expr;
} builtins[] = {
    {"builtin:expire-withdrawals", "expire-withdrawals", &so.expire_expr},
    {"builtin:retry-invoices", "retry-invoices", &so.invoice_expr},
    {"builtin:prune-jobs", "prune-jobs", &so.prune_expr},
    {"builtin:daily-summary", "daily-summary", &so.summary_expr},
};
#define NBUILTINS ((int)(sizeof builtins / sizeof builtins[0]))

/* What the configuration wants: the schedule option and the built-ins. */
static int wanted(int i, const char **name, const char **expr, const char **queue, char *payload, size_t plen,
                  const char **source)
{
    if (i < confs.n) {
        *name = confs.v[i].name, *expr = confs.v[i].expr, *queue = confs.v[i].queue;
        snprintf(payload, plen, "%s", confs.v[i].payload);
        *source = "config";
        return 1;
    }
    i -= confs.n;
    if (i >= NBUILTINS)
        return -1;
    *name = builtins[i].name, *expr = *builtins[i].expr, *queue = TASK_QUEUE;
    snprintf(payload, plen, "{\"task\":\"%s\"}", builtins[i].task);
    *source = "builtin";
    return *expr && **expr ? 1 : 0;
}

/* On becoming master: the engine's config and built-in schedules are made
 * to match this process's configuration (API ones are left alone). */
static void sync_config(struct sched *s)
{
    struct eng_ctx c;
    struct eng_str tag = {S(TAG)};
    struct pairs defs = {0};
    eng_ctx_init(&c, app_engine(s->a), 0);
    eng_lock_keys(&c, &tag, 1);
    eng_journal_multi(&c, 1);
    eng_hgetall(&c, S(K_DEFS), NULL, pairs_add, &defs);
    char payload[4096];
    for (int i = 0;; i++) {
        const char *name, *expr, *queue, *source;
        int w = wanted(i, &name, &expr, &queue, payload, sizeof payload, &source);
        if (w < 0)
            break;
        int at = -1;
        for (int k = 0; k < defs.n; k++)
            if (!strcmp(defs.f[k], name))
                at = k;
        if (!w) {
            if (at >= 0)
                del_def(&c, name);
            continue;
        }
        if (at >= 0 && same_def(defs.v[at], defs.vl[at], expr, queue, payload))
            continue;
        int paused = 0;
        if (at >= 0) {
            cJSON *j = cJSON_ParseWithLength(defs.v[at], defs.vl[at]);
            paused = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "paused"));
            cJSON_Delete(j);
        }
        put_def(&c, name, expr, queue, payload, paused, source);
        log_info("schedule set", "name=%s expr=\"%s\" queue=%s source=%s", name, expr, queue, source);
    }
    /* config ones no longer configured go */
    for (int k = 0; k < defs.n; k++) {
        cJSON *j = cJSON_ParseWithLength(defs.v[k], defs.vl[k]);
        const cJSON *src = cJSON_GetObjectItemCaseSensitive(j, "source");
        int from_config = cJSON_IsString(src) && !strcmp(src->valuestring, "config");
        cJSON_Delete(j);
        int still = 0;
        for (int i = 0; i < confs.n; i++)
            still |= !strcmp(confs.v[i].name, defs.f[k]);
        if (from_config && !still) {
            del_def(&c, defs.f[k]);
            log_info("schedule removed", "name=%s reason=\"no longer in the configuration\"", defs.f[k]);
        }
    }
    eng_journal_multi(&c, 0);
    eng_unlock(&c);
    pairs_free(&defs);
    s->synced = 1;
}

/* Fires e's latest due time, if it is still unfired: one locked, journaled
 * step over {sched} and the queue's tag. */
static void fire(struct sched *s, struct ent *e, int64_t now_ms)
{
    int64_t due_s = cron_latest(&e->spec, s->tz, floor_div(e->last_ms, 1000), floor_div(now_ms, 1000));
    if (due_s < 0) {
        e->next_ms = ent_next(s, e, now_ms);
        return;
    }
    int64_t due = due_s * 1000;
    char qtag[48], idem[SCHED_NAME_MAX + 32], dues[24];
    key_queue_tag(qtag, sizeof qtag, e->queue);
    struct eng_str keys[2] = {{S(TAG)}, {S(qtag)}};
    struct eng_ctx c;
    eng_ctx_init(&c, app_engine(s->a), 0);
    eng_lock_keys(&c, keys, 2);
    int64_t last = hget_i64(&c, K_LAST, e->name, e->created_ms);
    int rc = 1;
    if (last == e->last_ms && eng_hexists(&c, S(K_DEFS), S(e->name)) == 1) {
        snprintf(idem, sizeof idem, "%s:%lld", e->name, (long long)due);
        snprintf(dues, sizeof dues, "%lld", (long long)due);
        eng_journal_multi(&c, 1);
        rc = bot_queue_add_ctx(&c, e->queue, e->payload, strlen(e->payload), idem, 0, NULL);
        if (rc >= 0) {
            struct eng_str fv[2] = {{S(e->name)}, {S(dues)}};
            int64_t added, fired;
            eng_hset(&c, S(K_LAST), fv, 1, &added);
            eng_hincrby(&c, S(K_FIRED), S(e->name), 1, &fired);
            e->fired = fired;
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
    if (last != e->last_ms) { /* changed under us: the next reload tells */
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

static void on_tick(uv_timer_t *t)
{
    struct sched *s = t->data;
    /* Not while a snapshot loads: what we would read is not there yet, and
     * what we wrote would be overwritten by the load. */
    if (!app_is_master(s->a) || app_is_loading(s->a))
        return;
    if (!s->synced)
        sync_config(s);
    reload(s);
    int64_t now = app_now_ms();
    for (int i = 0; i < s->n; i++) {
        struct ent *e = &s->v[i];
        if (e->valid && !e->paused && e->next_ms >= 0 && e->next_ms <= now)
            fire(s, e, now);
    }
}

static void on_role(void *ud, int is_master)
{
    struct sched *s = ud;
    if (is_master)
        s->synced = 0; /* write this process's configuration on the next tick */
}

/* ---- built-in tasks -------------------------------------------------------------- */

struct task {
    struct sched *s;
    struct bot_job *job;
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
        eng_hset(&c, S(key), fv, 1, &n);
        eng_hdel(&c, S(key), gone, 3, &n);
        bot_tell(&c, t->s->a, uid, "withdraw_expired");
        t->expired++;
        log_info("withdrawal conversation expired", "user=%lld idle_s=%lld", (long long)uid,
                 (long long)((c.now_ms - updated) / 1000));
    }
    eng_unlock(&c);
}

static void task_close_cb(uv_handle_t *h) { xfree(h->data); }

static void expire_step(uv_timer_t *h)
{
    struct task *t = h->data;
    t->nuids = 0;
    t->cursor = eng_scan(app_engine(t->s->a), 0, t->cursor, S("session:{u:*}"), ENG_T_HASH, 256, collect_uid, t);
    for (int i = 0; i < t->nuids; i++)
        expire_one(t, t->uids[i]);
    t->seen += t->nuids;
    if (t->cursor != 0 && app_is_master(t->s->a)) {
        uv_timer_start(&t->step, expire_step, 0, 0); /* next slice on the next loop turn */
        return;
    }
    char res[96];
    snprintf(res, sizeof res, "{\"expired\":%lld,\"sessions\":%lld}", (long long)t->expired, (long long)t->seen);
    t->s->expired_total += t->expired;
    t->s->task = NULL;
    bot_job_done(t->s->a, t->job, res);
    uv_close((uv_handle_t *)&t->step, task_close_cb);
}

static void task_expire(struct sched *s, struct bot_job *job)
{
    if (s->task) { /* one scan at a time */
        bot_job_done(s->a, job, "{\"skipped\":\"a scan is running\"}");
        return;
    }
    struct task *t = xcalloc(1, sizeof *t);
    t->s = s, t->job = job;
    uv_timer_init(app_loop(s->a), &t->step);
    t->step.data = t;
    s->task = t;
    uv_timer_start(&t->step, expire_step, 0, 0);
}

/* Dead payment jobs (the invoice was never created) older than
 * sched-invoice-stuck-after go back to waiting, at most
 * sched-invoice-max-redrives times each; waiting ones that old are only
 * reported (the pool is behind: re-driving would not help). */
static void task_invoices(struct sched *s, struct bot_job *job)
{
    struct buf out = BUF_INIT;
    int64_t now = app_now_ms(), redriven = 0, stuck_waiting = 0;
    bot_queue_dead_list(s->a, "payment", 0, 1000, &out);
    cJSON *arr = cJSON_Parse(out.p ? out.p : "[]");
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
            redriven++;
            log_info("invoice job re-driven", "queue=payment id=%s redrives=%lld", id->valuestring, (long long)n);
        }
    }
    cJSON_Delete(arr);
    struct bot_queue_stats st;
    if (bot_queue_stats(s->a, "payment", &st) == 0 && st.waiting > 0 && st.oldest_wait_s > (double)so.invoice_after) {
        stuck_waiting = st.waiting;
        log_warn("invoice jobs waiting too long", "queue=payment waiting=%lld oldest_s=%.0f", (long long)st.waiting,
                 st.oldest_wait_s);
    }
    s->redriven_total += redriven;
    buf_reset(&out);
    buf_printf(&out, "{\"redriven\":%lld,\"stuck_waiting\":%lld}", (long long)redriven, (long long)stuck_waiting);
    bot_job_done(s->a, job, out.p);
    buf_release(&out);
}

/* Every queue we know of: the queue part's, ours, and the schedules'. */
static int queue_list(struct sched *s, const char **out, int max)
{
    int n = 0;
    const char *const *names = bot_queue_names(s->a);
    for (int i = 0; names && names[i] && n < max; i++)
        out[n++] = names[i];
    for (int i = -1; i < s->n && n < max; i++) {
        const char *q = i < 0 ? TASK_QUEUE : s->v[i].queue;
        int dup = !*q;
        for (int k = 0; k < n && !dup; k++)
            dup = !strcmp(out[k], q);
        if (!dup)
            out[n++] = q;
    }
    return n;
}

static void task_prune(struct sched *s, struct bot_job *job)
{
    const char *qs[64];
    int n = queue_list(s, qs, 64);
    int64_t before = app_now_ms() - so.retention * 1000, total = 0;
    for (int i = 0; i < n; i++) {
        int64_t k = bot_queue_prune(s->a, qs[i], before);
        total += k > 0 ? k : 0;
    }
    s->pruned_total += total;
    char res[64];
    snprintf(res, sizeof res, "{\"pruned\":%lld}", (long long)total);
    log_info("completed jobs pruned", "count=%lld retention_s=%lld", (long long)total, (long long)so.retention);
    bot_job_done(s->a, job, res);
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

static void task_summary(struct sched *s, struct bot_job *job)
{
    int64_t chat = admin_chat();
    if (!chat) {
        bot_job_done(s->a, job, "{\"skipped\":\"no bot-admin-chat\"}");
        return;
    }
    struct buf text = BUF_INIT;
    char day[32];
    time_t now = (time_t)(app_now_ms() / 1000);
    struct tm tm;
    gmtime_r(&now, &tm);
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
    char tag[40];
    key_user_tag(tag, sizeof tag, chat);
    struct eng_str k = {S(tag)};
    struct eng_ctx c;
    eng_ctx_init(&c, app_engine(s->a), 0);
    eng_lock_keys(&c, &k, 1);
    int rc = bot_outbox_push(&c, s->a, chat, "sendMessage", params, 0);
    eng_unlock(&c);
    cJSON_free(params);
    cJSON_Delete(p);
    buf_release(&text);
    if (rc < 0)
        bot_job_fail(s->a, job, "outbox push failed", 0, -1);
    else
        bot_job_done(s->a, job, "{\"sent\":true}");
}

static void run_task(void *ud, struct app *a, struct bot_job *job)
{
    struct sched *s = ud;
    cJSON *j = cJSON_ParseWithLength(job->payload, job->payload_len);
    const cJSON *task = cJSON_GetObjectItemCaseSensitive(j, "task");
    char name[32] = "";
    if (cJSON_IsString(task))
        snprintf(name, sizeof name, "%s", task->valuestring);
    cJSON_Delete(j);
    if (!strcmp(name, "expire-withdrawals"))
        task_expire(s, job);
    else if (!strcmp(name, "retry-invoices"))
        task_invoices(s, job);
    else if (!strcmp(name, "prune-jobs"))
        task_prune(s, job);
    else if (!strcmp(name, "daily-summary"))
        task_summary(s, job);
    else
        bot_job_fail(a, job, "unknown task", 1, 0);
}

/* ---- the API's calls (scheduler.h) ----------------------------------------------------- */

static struct sched *state_of(struct app *a) { return app_part_state(a, "sched"); }

static cJSON *ent_object(struct sched *s, const struct ent *e)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", e->name);
    cJSON_AddStringToObject(o, "expr", e->expr);
    cJSON_AddStringToObject(o, "queue", e->queue);
    cJSON *p = e->payload ? cJSON_Parse(e->payload) : NULL;
    cJSON_AddItemToObject(o, "payload", p ? p : cJSON_CreateNull());
    cJSON_AddBoolToObject(o, "paused", e->paused);
    cJSON_AddStringToObject(o, "source", e->source);
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
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->v[i].name, name)) {
            put_json(ent_object(s, &s->v[i]), out);
            return 1;
        }
    return 0;
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

int bot_sched_set_paused(struct app *a, const char *name, int paused)
{
    if (!app_is_master(a))
        return -1;
    struct eng_ctx c;
    struct eng_str v;
    lock_sched(&c, a);
    int rc = 0;
    if (eng_hget(&c, S(K_DEFS), S(name), &v) == 0) {
        cJSON *j = cJSON_ParseWithLength(v.p, v.n);
        cJSON_ReplaceItemInObjectCaseSensitive(j, "paused", cJSON_CreateBool(paused));
        char *t = cJSON_PrintUnformatted(j);
        cJSON_Delete(j);
        char now[24];
        snprintf(now, sizeof now, "%lld", (long long)c.now_ms);
        struct eng_str fv[2] = {{S(name)}, {S(t)}};
        int64_t added;
        eng_journal_multi(&c, 1);
        eng_hset(&c, S(K_DEFS), fv, 1, &added);
        if (!paused) { /* resume from now: what was missed while paused stays missed */
            fv[1] = (struct eng_str){S(now)};
            eng_hset(&c, S(K_LAST), fv, 1, &added);
        }
        eng_journal_multi(&c, 0);
        cJSON_free(t);
        rc = 1;
    }
    eng_unlock(&c);
    if (rc)
        log_info(paused ? "schedule paused" : "schedule resumed", "name=%s", name);
    return rc;
}

int bot_sched_delete(struct app *a, const char *name, char *err, size_t errlen)
{
    if (!app_is_master(a)) {
        snprintf(err, errlen, "not the master");
        return -1;
    }
    struct eng_ctx c;
    struct eng_str v;
    lock_sched(&c, a);
    int rc = 0;
    if (eng_hget(&c, S(K_DEFS), S(name), &v) == 0) {
        cJSON *j = cJSON_ParseWithLength(v.p, v.n);
        const cJSON *src = cJSON_GetObjectItemCaseSensitive(j, "source");
        if (cJSON_IsString(src) && strcmp(src->valuestring, "api")) {
            snprintf(err, errlen, "schedule '%s' comes from the %s: pause it instead", name,
                     !strcmp(src->valuestring, "config") ? "configuration" : "bot itself");
            rc = -1;
        } else {
            eng_journal_multi(&c, 1);
            del_def(&c, name);
            eng_journal_multi(&c, 0);
            rc = 1;
        }
        cJSON_Delete(j);
    }
    eng_unlock(&c);
    if (rc == 1)
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
    metrics_hist_init_latency(&s->late);
    app_set_part_state(a, "sched", s);
    if (bot_queue_handle(a, TASK_QUEUE, run_task, s) < 0)
        log_warn("scheduler tasks not handled", "queue=%s reason=\"the queue part refused\"", TASK_QUEUE);
    app_on_role(a, on_role, s);
    app_add_collector(a, collect, s);
    uv_timer_init(app_loop(a), &s->timer);
    s->timer.data = s;
    uv_timer_start(&s->timer, on_tick, 0, (uint64_t)so.tick_ms);
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
    if (s->task) { /* the job stays active; its lease brings it back */
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
