/* queue_cmd.c: the JOB.* and LEDGER.* commands, so programs in any language
 * feed and work the queues over RESP (a Python worker with redis-py claims,
 * completes and fails jobs), and operators and tests move money without the
 * bot.  What it is not: a second queue implementation; every handler is one
 * store step of queue.c (or ledger.c) under the queue's (user's) lock.
 *
 * Handlers run on RESP worker threads with their own eng_ctx and touch only
 * the engine (app.h): the engine comes bound by the queue part's start;
 * until then they answer -LOADING.  Reply shapes are in the README ("Job
 * queues", "Money"). */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cJSON.h>

#include "base/err.h"
#include "base/num.h"
#include "engine.h"
#include "hash.h"
#include "keys.h"
#include "ledger.h"
#include "list.h"
#include "queue_int.h"
#include "resp.h"
#include "server.h"
#include "set.h"

static _Atomic(struct eng *) bound;

void queue__bind_engine(struct eng *e) { atomic_store(&bound, e); }

static struct eng *engine_or_reply(const struct server_cmd_call *k)
{
    struct eng *e = atomic_load(&bound);
    if (!e)
        resp_w_error(k->out, "LOADING the bot's queues are not started yet");
    return e;
}

/* ---- arguments ------------------------------------------------------------------------- */

static int arg_is(const struct server_cmd_call *k, int i, const char *word)
{
    return i < k->argc && k->argv[i].n == strlen(word) && !strncasecmp(k->argv[i].p, word, k->argv[i].n);
}

static int arg_int(const struct server_cmd_call *k, int i, int64_t min, int64_t *out)
{
    int64_t v;
    if (i >= k->argc || num_parse_i64(k->argv[i].p, k->argv[i].n, &v) < 0 || v < min) {
        resp_w_error(k->out, "ERR value is not an integer or out of range");
        return -1;
    }
    *out = v;
    return 0;
}

/* A NUL-terminated copy of argument i (at most cap - 1 bytes, else an error). */
static int arg_str(const struct server_cmd_call *k, int i, char *dst, size_t cap, const char *what)
{
    if (i >= k->argc || k->argv[i].n >= cap || memchr(k->argv[i].p, 0, k->argv[i].n)) {
        resp_w_errorf(k->out, "ERR invalid %s (at most %zu bytes)", what, cap - 1);
        return -1;
    }
    memcpy(dst, k->argv[i].p, k->argv[i].n);
    dst[k->argv[i].n] = 0;
    return 0;
}

static int arg_queue(const struct server_cmd_call *k, int i, char *dst)
{
    if (i >= k->argc || !queue__name_ok(k->argv[i].p, k->argv[i].n)) {
        resp_w_error(k->out, "ERR invalid queue name (1 to 31 of A-Z a-z 0-9 _ - .)");
        return -1;
    }
    memcpy(dst, k->argv[i].p, k->argv[i].n);
    dst[k->argv[i].n] = 0;
    return 0;
}

static int syntax(const struct server_cmd_call *k)
{
    resp_w_error(k->out, "ERR syntax error");
    return -1;
}

/* One store step under the queue's lock (and the name registry's when
 * reg), journaled as MULTI/EXEC. */
static void step_begin(struct eng_ctx *c, struct eng *e, const char *q, int reg)
{
    char tag[48];
    queue__tag(tag, sizeof tag, q);
    struct eng_str keys[2] = {{tag, strlen(tag)}, {QUEUE_NAMES_KEY, strlen(QUEUE_NAMES_KEY)}};
    eng_ctx_init(c, e, 0);
    eng_lock_keys(c, keys, reg ? 2 : 1);
    eng_journal_multi(c, 1);
}

static void step_end(struct eng_ctx *c)
{
    eng_journal_multi(c, 0);
    eng_unlock(c);
}

static void register_name(struct eng_ctx *c, const char *q)
{
    if (queue__def(q) || eng_sismember(c, QUEUE_NAMES_KEY, strlen(QUEUE_NAMES_KEY), q, strlen(q)) == 1)
        return;
    struct eng_str m = {q, strlen(q)};
    int64_t added;
    eng_sadd(c, QUEUE_NAMES_KEY, strlen(QUEUE_NAMES_KEY), &m, 1, &added);
}

/* ---- JOB.* ------------------------------------------------------------------------------- */

/* The engine, queue (argument 1) and job id (argument 2) of a command on one
 * job; NULL once the error is replied. */
static struct eng *job_args(const struct server_cmd_call *k, char *q, char *id, size_t idcap)
{
    struct eng *e = engine_or_reply(k);
    if (!e || arg_queue(k, 1, q) < 0 || arg_str(k, 2, id, idcap, "job id") < 0)
        return NULL;
    return e;
}

/* JOB.ADD queue payload [IDEM key] [DELAY ms] [MAXATTEMPTS n] -> id */
static int cmd_add(void *ud, const struct server_cmd_call *k)
{
    struct eng *e = engine_or_reply(k);
    char q[QUEUE_NAME_MAX + 1], idem[128] = "";
    int64_t delay = 0, maxa = 0;
    if (!e || arg_queue(k, 1, q) < 0)
        return -1;
    for (int i = 3; i < k->argc; i += 2) {
        if (i + 1 >= k->argc)
            return syntax(k);
        if (arg_is(k, i, "idem")) {
            if (arg_str(k, i + 1, idem, sizeof idem, "idempotency key") < 0)
                return -1;
        } else if (arg_is(k, i, "delay")) {
            if (arg_int(k, i + 1, 0, &delay) < 0)
                return -1;
        } else if (arg_is(k, i, "maxattempts")) {
            if (arg_int(k, i + 1, 1, &maxa) < 0)
                return -1;
        } else {
            return syntax(k);
        }
    }
    cJSON *json = cJSON_ParseWithLength(k->argv[2].p, k->argv[2].n);
    if (!json) {
        resp_w_error(k->out, "ERR payload is not valid JSON");
        return -1;
    }
    cJSON_Delete(json);
    struct eng_ctx c;
    struct buf id;
    buf_init(&id);
    step_begin(&c, e, q, 1);
    register_name(&c, q);
    int rc = queue__add(&c, q, k->argv[2].p, k->argv[2].n, idem, delay, maxa, &id);
    step_end(&c);
    if (rc < 0)
        resp_w_errorf(k->out, "ERR %s", err_msg(rc));
    else
        resp_w_bulk(k->out, id.p, id.len);
    buf_release(&id);
    return rc < 0 ? -1 : 0;
}

/* JOB.CLAIM queue [LEASE ms] -> map (id payload attempts max_attempts idem
 * last_error created token) or nil */
static int cmd_claim(void *ud, const struct server_cmd_call *k)
{
    struct eng *e = engine_or_reply(k);
    char q[QUEUE_NAME_MAX + 1];
    int64_t lease = queue__opts.lease_ms;
    if (!e || arg_queue(k, 1, q) < 0)
        return -1;
    if (k->argc == 4 && arg_is(k, 2, "lease")) {
        if (arg_int(k, 3, 1, &lease) < 0)
            return -1;
    } else if (k->argc != 2) {
        return syntax(k);
    }
    struct eng_ctx c;
    struct queue_claim cl;
    step_begin(&c, e, q, 0);
    int rc = queue__claim(&c, q, lease, &cl);
    step_end(&c);
    if (rc != 1) {
        resp_w_null(k->out, k->proto);
        return 0;
    }
    resp_w_map(k->out, k->proto, 8);
    resp_w_bulkstr(k->out, "id");
    resp_w_bulkstr(k->out, cl.id);
    resp_w_bulkstr(k->out, "payload");
    resp_w_bulk(k->out, cl.payload.p ? cl.payload.p : "", cl.payload.len);
    resp_w_bulkstr(k->out, "attempts");
    resp_w_int(k->out, cl.attempts);
    resp_w_bulkstr(k->out, "max_attempts");
    resp_w_int(k->out, cl.max_attempts);
    resp_w_bulkstr(k->out, "idem");
    resp_w_bulkstr(k->out, cl.idem);
    resp_w_bulkstr(k->out, "last_error");
    resp_w_bulkstr(k->out, cl.last_error);
    resp_w_bulkstr(k->out, "created");
    resp_w_int(k->out, cl.created_ms);
    resp_w_bulkstr(k->out, "token");
    resp_w_int(k->out, cl.attempts);
    buf_release(&cl.payload);
    return 0;
}

/* Optional trailing "TOKEN n" of DONE and FAIL: *end gets where it starts. */
static int opt_token(const struct server_cmd_call *k, int *end, int64_t *token)
{
    *token = 0;
    *end = k->argc;
    if (k->argc >= 2 && arg_is(k, k->argc - 2, "token")) {
        *end = k->argc - 2;
        return arg_int(k, k->argc - 1, 1, token);
    }
    return 0;
}

/* JOB.DONE queue id [result] [TOKEN n] -> 1, or 0 when the job was not active */
static int cmd_done(void *ud, const struct server_cmd_call *k)
{
    char q[QUEUE_NAME_MAX + 1], id[64];
    int64_t token;
    int end;
    struct eng *e = job_args(k, q, id, sizeof id);
    if (!e || opt_token(k, &end, &token) < 0)
        return -1;
    if (end > 4)
        return syntax(k);
    char *result = NULL;
    if (end == 4) {
        result = malloc(k->argv[3].n + 1);
        memcpy(result, k->argv[3].p, k->argv[3].n);
        result[k->argv[3].n] = 0;
    }
    struct eng_ctx c;
    step_begin(&c, e, q, 0);
    int rc = queue__done(&c, q, id, result, (int)token);
    step_end(&c);
    free(result);
    resp_w_int(k->out, rc);
    return 0;
}

/* JOB.FAIL queue id error [PERMANENT] [RETRY ms] [TOKEN n] -> "delayed" |
 * "dead", or nil when the job was not active */
static int cmd_fail(void *ud, const struct server_cmd_call *k)
{
    char q[QUEUE_NAME_MAX + 1], id[64], error[256];
    int64_t token, retry = -1;
    int end, permanent = 0;
    struct eng *e = job_args(k, q, id, sizeof id);
    if (!e || arg_str(k, 3, error, sizeof error, "error text") < 0 || opt_token(k, &end, &token) < 0)
        return -1;
    for (int i = 4; i < end; i++) {
        if (arg_is(k, i, "permanent"))
            permanent = 1;
        else if (arg_is(k, i, "retry") && i + 1 < end) {
            if (arg_int(k, ++i, 0, &retry) < 0)
                return -1;
        } else
            return syntax(k);
    }
    struct eng_ctx c;
    step_begin(&c, e, q, 0);
    int rc = queue__fail(&c, q, id, error, permanent, retry, (int)token);
    step_end(&c);
    if (rc == QUEUE_FAIL_NOTACTIVE)
        resp_w_null(k->out, k->proto);
    else
        resp_w_bulkstr(k->out, rc == QUEUE_FAIL_DEAD ? "dead" : "delayed");
    return 0;
}

/* JOB.RENEW queue id [LEASE ms] -> 1 or 0 */
static int cmd_renew(void *ud, const struct server_cmd_call *k)
{
    char q[QUEUE_NAME_MAX + 1], id[64];
    int64_t lease = queue__opts.lease_ms;
    struct eng *e = job_args(k, q, id, sizeof id);
    if (!e)
        return -1;
    if (k->argc == 5 && arg_is(k, 3, "lease")) {
        if (arg_int(k, 4, 1, &lease) < 0)
            return -1;
    } else if (k->argc != 3) {
        return syntax(k);
    }
    struct eng_ctx c;
    step_begin(&c, e, q, 0);
    int rc = queue__renew(&c, q, id, lease);
    step_end(&c);
    resp_w_int(k->out, rc);
    return 0;
}

/* JOB.GET queue id -> the job as JSON, or nil */
static int cmd_get(void *ud, const struct server_cmd_call *k)
{
    char q[QUEUE_NAME_MAX + 1], id[64];
    struct eng *e = job_args(k, q, id, sizeof id);
    if (!e)
        return -1;
    struct eng_ctx c;
    struct buf out;
    buf_init(&out);
    eng_ctx_init(&c, e, 0);
    queue__lock(&c, q);
    int rc = queue__job_json(&c, q, id, &out);
    eng_unlock(&c);
    if (rc)
        resp_w_bulk(k->out, out.p, out.len);
    else
        resp_w_null(k->out, k->proto);
    buf_release(&out);
    return 0;
}

/* JOB.STATS queue -> map of counts */
static int cmd_stats(void *ud, const struct server_cmd_call *k)
{
    struct eng *e = engine_or_reply(k);
    char q[QUEUE_NAME_MAX + 1];
    if (!e || arg_queue(k, 1, q) < 0)
        return -1;
    struct bot_queue_stats st;
    struct eng_ctx c;
    eng_ctx_init(&c, e, 0);
    queue__lock(&c, q);
    queue__stats(&c, q, &st);
    eng_unlock(&c);
    pool__published(q, &st.workers, &st.busy);
    const struct {
        const char *name;
        int64_t v;
    } rows[] = {{"waiting", st.waiting},
                {"active", st.active},
                {"delayed", st.delayed},
                {"dead", st.dead},
                {"completed", st.completed},
                {"completed_total", st.completed_total},
                {"failed_total", st.failed_total},
                {"retried_total", st.retried_total},
                {"oldest_wait_ms", (int64_t)(st.oldest_wait_s * 1000)},
                {"workers", st.workers},
                {"busy", st.busy}};
    int n = (int)(sizeof rows / sizeof rows[0]);
    resp_w_map(k->out, k->proto, n);
    for (int i = 0; i < n; i++) {
        resp_w_bulkstr(k->out, rows[i].name);
        resp_w_int(k->out, rows[i].v);
    }
    return 0;
}

/* JOB.DEAD queue [offset [count]] -> JSON array of jobs, newest first */
static int cmd_dead(void *ud, const struct server_cmd_call *k)
{
    struct eng *e = engine_or_reply(k);
    char q[QUEUE_NAME_MAX + 1];
    int64_t offset = 0, count = 100;
    if (!e || arg_queue(k, 1, q) < 0 || (k->argc > 2 && arg_int(k, 2, 0, &offset) < 0) ||
        (k->argc > 3 && arg_int(k, 3, 1, &count) < 0))
        return -1;
    if (k->argc > 4)
        return syntax(k);
    struct eng_ctx c;
    struct buf out;
    buf_init(&out);
    eng_ctx_init(&c, e, 0);
    queue__lock(&c, q);
    queue__dead_list(&c, q, offset, count, &out);
    eng_unlock(&c);
    resp_w_bulk(k->out, out.p, out.len);
    buf_release(&out);
    return 0;
}

struct idlist {
    int n;
    char v[128][64];
};
static void idlist_add(void *ud, const char *p, size_t n)
{
    struct idlist *l = ud;
    if (l->n < 128 && n < 64) {
        memcpy(l->v[l->n], p, n);
        l->v[l->n++][n] = 0;
    }
}

/* JOB.REDRIVE queue id|ALL -> how many went back to waiting */
static int cmd_redrive(void *ud, const struct server_cmd_call *k)
{
    char q[QUEUE_NAME_MAX + 1], id[64];
    struct eng *e = job_args(k, q, id, sizeof id);
    if (!e)
        return -1;
    int64_t total = 0;
    struct eng_ctx c;
    if (strcasecmp(id, "all")) {
        step_begin(&c, e, q, 0);
        total = queue__redrive(&c, q, id);
        step_end(&c);
    } else {
        char key[96];
        snprintf(key, sizeof key, "queue:{q:%s}:dead", q);
        for (int round = 0; round < 10000; round++) { /* 128 per lock */
            struct idlist l = {0};
            step_begin(&c, e, q, 0);
            eng_list_range(&c, key, strlen(key), -128, -1, NULL, idlist_add, &l);
            for (int i = 0; i < l.n; i++)
                total += queue__redrive(&c, q, l.v[i]);
            step_end(&c);
            if (l.n < 128)
                break;
        }
    }
    resp_w_int(k->out, total);
    return 0;
}

/* JOB.DELDEAD queue id -> 1 or 0 */
static int cmd_deldead(void *ud, const struct server_cmd_call *k)
{
    char q[QUEUE_NAME_MAX + 1], id[64];
    struct eng *e = job_args(k, q, id, sizeof id);
    if (!e)
        return -1;
    struct eng_ctx c;
    step_begin(&c, e, q, 0);
    int rc = queue__dead_delete(&c, q, id);
    step_end(&c);
    resp_w_int(k->out, rc);
    return 0;
}

/* JOB.PRUNE queue before_ms -> completed jobs removed */
static int cmd_prune(void *ud, const struct server_cmd_call *k)
{
    struct eng *e = engine_or_reply(k);
    char q[QUEUE_NAME_MAX + 1];
    int64_t before, total = 0, n;
    if (!e || arg_queue(k, 1, q) < 0 || arg_int(k, 2, 0, &before) < 0)
        return -1;
    do {
        struct eng_ctx c;
        step_begin(&c, e, q, 0);
        n = queue__prune(&c, q, before, 1000);
        step_end(&c);
        total += n;
    } while (n == 1000);
    resp_w_int(k->out, total);
    return 0;
}

struct names_out {
    int n;
    char v[64][QUEUE_NAME_MAX + 1];
};
static void names_add(void *ud, const char *p, size_t n)
{
    struct names_out *o = ud;
    if (o->n < 64 && n <= QUEUE_NAME_MAX) {
        memcpy(o->v[o->n], p, n);
        o->v[o->n++][n] = 0;
    }
}

/* JOB.QUEUES -> the queue names (with options, then added over RESP) */
static int cmd_queues(void *ud, const struct server_cmd_call *k)
{
    struct eng *e = engine_or_reply(k);
    if (!e)
        return -1;
    struct names_out o = {0};
    for (int i = 0; queue__def_at(i); i++)
        names_add(&o, queue__def_at(i)->name, strlen(queue__def_at(i)->name));
    int known = o.n;
    struct eng_ctx c;
    eng_ctx_init(&c, e, 0);
    struct eng_str key = {QUEUE_NAMES_KEY, strlen(QUEUE_NAMES_KEY)};
    eng_lock_keys(&c, &key, 1);
    eng_smembers(&c, key.p, key.n, NULL, names_add, &o);
    eng_unlock(&c);
    (void)known;
    resp_w_array(k->out, o.n);
    for (int i = 0; i < o.n; i++)
        resp_w_bulkstr(k->out, o.v[i]);
    return 0;
}

/* JOB.BENCHADD queue n -> n: adds n jobs with payload {} in-process, 1000
 * per lock (tools/bench-queue: adds without the network in the way). */
static int cmd_benchadd(void *ud, const struct server_cmd_call *k)
{
    struct eng *e = engine_or_reply(k);
    char q[QUEUE_NAME_MAX + 1];
    int64_t n;
    if (!e || arg_queue(k, 1, q) < 0 || arg_int(k, 2, 1, &n) < 0)
        return -1;
    if (n > 10000000) {
        resp_w_error(k->out, "ERR at most 10000000 jobs");
        return -1;
    }
    for (int64_t done = 0; done < n;) {
        struct eng_ctx c;
        step_begin(&c, e, q, 1);
        if (done == 0)
            register_name(&c, q);
        for (int i = 0; i < 1000 && done < n; i++, done++)
            queue__add(&c, q, "{}", 2, NULL, 0, 0, NULL);
        step_end(&c);
    }
    resp_w_int(k->out, n);
    return 0;
}

/* ---- LEDGER.* ------------------------------------------------------------------------------ */

static void lock_user(struct eng_ctx *c, struct eng *e, int64_t uid)
{
    char tag[32];
    key_user_tag(tag, sizeof tag, uid);
    struct eng_str k = {tag, strlen(tag)};
    eng_ctx_init(c, e, 0);
    eng_lock_keys(c, &k, 1);
    eng_journal_multi(c, 1);
}

static int ledger_reply(const struct server_cmd_call *k, int rc)
{
    switch (rc) {
    case LEDGER_OK:
        resp_w_simple(k->out, "OK");
        return 0;
    case LEDGER_DUP:
        resp_w_simple(k->out, "DUP");
        return 0;
    case LEDGER_SHORT:
        resp_w_error(k->out, "SHORT balance too low");
        return -1;
    case LEDGER_NOHOLD:
        resp_w_error(k->out, "NOHOLD no open hold with that reference");
        return -1;
    default:
        resp_w_errorf(k->out, "ERR %s", err_msg(rc));
        return -1;
    }
}

/* LEDGER.CREDIT uid amount ref [kind] -> OK | DUP (ref seen) | -SHORT */
static int cmd_credit(void *ud, const struct server_cmd_call *k)
{
    struct eng *e = engine_or_reply(k);
    int64_t uid, amount;
    char ref[96], kind[16];
    if (!e || arg_int(k, 1, 1, &uid) < 0 || arg_int(k, 2, INT64_MIN + 1, &amount) < 0 ||
        arg_str(k, 3, ref, sizeof ref, "reference") < 0)
        return -1;
    if (amount == 0) {
        resp_w_error(k->out, "ERR amount must not be 0");
        return -1;
    }
    snprintf(kind, sizeof kind, "%s", amount > 0 ? "deposit" : "adjust");
    if (k->argc == 5 && arg_str(k, 4, kind, sizeof kind, "kind") < 0)
        return -1;
    struct eng_ctx c;
    lock_user(&c, e, uid);
    int rc = bot_ledger_post(&c, uid, amount, kind, ref);
    step_end(&c);
    return ledger_reply(k, rc);
}

/* LEDGER.BALANCE uid -> [balance, held] */
static int cmd_balance(void *ud, const struct server_cmd_call *k)
{
    struct eng *e = engine_or_reply(k);
    int64_t uid;
    if (!e || arg_int(k, 1, 1, &uid) < 0)
        return -1;
    struct eng_ctx c;
    lock_user(&c, e, uid);
    int64_t bal = bot_ledger_balance(&c, uid), held = bot_ledger_held(&c, uid);
    step_end(&c);
    resp_w_array(k->out, 2);
    resp_w_int(k->out, bal);
    resp_w_int(k->out, held);
    return 0;
}

static void hist_head(void *ud, int64_t n) { resp_w_array(ud, n); }
static void hist_elem(void *ud, const char *p, size_t n) { resp_w_bulk(ud, p, n); }

/* LEDGER.HISTORY uid [count] -> entries as JSON, newest first */
static int cmd_history(void *ud, const struct server_cmd_call *k)
{
    struct eng *e = engine_or_reply(k);
    int64_t uid, count = 10;
    if (!e || arg_int(k, 1, 1, &uid) < 0 || (k->argc > 2 && arg_int(k, 2, 1, &count) < 0))
        return -1;
    char key[64];
    key_user(key, sizeof key, "ledger", uid);
    struct eng_ctx c;
    lock_user(&c, e, uid);
    if (eng_list_range(&c, key, strlen(key), 0, count - 1, hist_head, hist_elem, k->out) < 0)
        resp_w_array(k->out, 0);
    step_end(&c);
    return 0;
}

/* LEDGER.CHECK uid -> 1 when the balance equals the sum of the ledger */
static int cmd_check(void *ud, const struct server_cmd_call *k)
{
    struct eng *e = engine_or_reply(k);
    int64_t uid;
    if (!e || arg_int(k, 1, 1, &uid) < 0)
        return -1;
    struct eng_ctx c;
    lock_user(&c, e, uid);
    int ok = bot_ledger_check(&c, uid);
    step_end(&c);
    resp_w_int(k->out, ok);
    return 0;
}

/* LEDGER.WITHDRAW uid amount address ref -> job id: holds the amount and
 * enqueues the withdrawal job in one atomic step (what the bot's confirm
 * does), or -SHORT.  A repeated ref returns the existing job's id. */
static int cmd_withdraw(void *ud, const struct server_cmd_call *k)
{
    struct eng *e = engine_or_reply(k);
    int64_t uid, amount;
    char address[128], ref[96];
    if (!e || arg_int(k, 1, 1, &uid) < 0 || arg_int(k, 2, 1, &amount) < 0 ||
        arg_str(k, 3, address, sizeof address, "address") < 0 || arg_str(k, 4, ref, sizeof ref, "reference") < 0)
        return -1;
    char utag[32], qtag[48];
    key_user_tag(utag, sizeof utag, uid);
    queue__tag(qtag, sizeof qtag, "withdrawal");
    struct eng_str keys[2] = {{utag, strlen(utag)}, {qtag, strlen(qtag)}};
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "user_id", (double)uid);
    cJSON_AddNumberToObject(o, "amount", (double)amount);
    cJSON_AddStringToObject(o, "address", address);
    cJSON_AddStringToObject(o, "ref", ref);
    char *payload = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    struct eng_ctx c;
    struct buf id;
    buf_init(&id);
    eng_ctx_init(&c, e, 0);
    eng_lock_keys(&c, keys, 2);
    eng_journal_multi(&c, 1);
    int rc = bot_ledger_hold(&c, uid, amount, ref);
    if (rc == LEDGER_OK) {
        rc = bot_queue_add_ctx(&c, "withdrawal", payload, strlen(payload), ref, 0, &id) < 0 ? ERR_SYNTAX : 0;
    } else if (rc == LEDGER_DUP) { /* the same request again: its job, if it is still there */
        char ikey[64];
        struct eng_str v;
        snprintf(ikey, sizeof ikey, "queue:{q:withdrawal}:idem");
        if (eng_hget(&c, ikey, strlen(ikey), ref, strlen(ref), &v) == 0) {
            buf_append(&id, v.p, v.n);
            rc = 0;
        }
    }
    step_end(&c);
    cJSON_free(payload);
    if (rc == 0)
        resp_w_bulk(k->out, id.p, id.len);
    buf_release(&id);
    return rc == 0 ? 0 : ledger_reply(k, rc);
}

/* ---- rows ---------------------------------------------------------------------------------- */

#define W "write deny-oom no-multi"
static const struct server_cmd job_rows[] = {
    {"job.add", cmd_add, NULL, -3, W, "bot", "Adds a job to a queue.", "0.1.0",
     "queue payload [IDEM key] [DELAY ms] [MAXATTEMPTS n]"},
    {"job.claim", cmd_claim, NULL, -2, W, "bot", "Claims the oldest waiting job under a lease.", "0.1.0",
     "queue [LEASE ms]"},
    {"job.done", cmd_done, NULL, -3, W, "bot", "Completes a claimed job.", "0.1.0", "queue id [result] [TOKEN n]"},
    {"job.fail", cmd_fail, NULL, -4, W, "bot", "Fails a claimed job (retried with backoff, or dead).", "0.1.0",
     "queue id error [PERMANENT] [RETRY ms] [TOKEN n]"},
    {"job.renew", cmd_renew, NULL, -3, W, "bot", "Extends a claimed job's lease.", "0.1.0", "queue id [LEASE ms]"},
    {"job.get", cmd_get, NULL, 3, "readonly fast", "bot", "A job's fields as JSON.", "0.1.0", "queue id"},
    {"job.stats", cmd_stats, NULL, 2, "readonly fast", "bot", "A queue's counts.", "0.1.0", "queue"},
    {"job.dead", cmd_dead, NULL, -2, "readonly", "bot", "Dead jobs as a JSON array, newest first.", "0.1.0",
     "queue [offset [count]]"},
    {"job.redrive", cmd_redrive, NULL, 3, W " admin", "bot", "Puts dead jobs back to waiting.", "0.1.0",
     "queue id|ALL"},
    {"job.deldead", cmd_deldead, NULL, 3, W " admin", "bot", "Deletes a dead job.", "0.1.0", "queue id"},
    {"job.prune", cmd_prune, NULL, 3, W " admin", "bot", "Removes completed jobs finished before a time.", "0.1.0",
     "queue before-ms"},
    {"job.queues", cmd_queues, NULL, 1, "readonly", "bot", "The queue names.", "0.1.0", ""},
    {"job.benchadd", cmd_benchadd, NULL, 3, W " admin", "bot", "Adds n empty jobs in-process (benchmarks).",
     "0.1.0", "queue n"},
};

static const struct server_cmd ledger_rows[] = {
    {"ledger.credit", cmd_credit, NULL, -4, W " admin", "bot", "Posts a ledger entry (operator path).", "0.1.0",
     "uid amount ref [kind]"},
    {"ledger.balance", cmd_balance, NULL, 2, "readonly fast", "bot", "A user's balance and held amount.", "0.1.0",
     "uid"},
    {"ledger.history", cmd_history, NULL, -2, "readonly", "bot", "A user's ledger entries, newest first.", "0.1.0",
     "uid [count]"},
    {"ledger.check", cmd_check, NULL, 2, "readonly", "bot", "1 when the balance equals the sum of the ledger.",
     "0.1.0", "uid"},
    {"ledger.withdraw", cmd_withdraw, NULL, 5, W " admin", "bot",
     "Holds an amount and enqueues its withdrawal job atomically.", "0.1.0", "uid amount address ref"},
};
#undef W

const struct server_cmd *queue__commands(int *n)
{
    *n = (int)(sizeof job_rows / sizeof job_rows[0]);
    return job_rows;
}

const struct server_cmd *ledger__commands(int *n)
{
    *n = (int)(sizeof ledger_rows / sizeof ledger_rows[0]);
    return ledger_rows;
}
