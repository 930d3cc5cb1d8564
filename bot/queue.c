/* queue.c: named job queues held in the engine (keys.h, {q:<name>}), and the
 * queue part (options, start, stop).  The store functions here are the only
 * code that changes a queue's keys; the pools (pool.c), the JOB.* commands
 * (queue_cmd.c) and the operator API all go through them, each inside a
 * context holding the queue's tag lock, so every step is atomic.
 *
 * Layout (redis-cli reads it; README "Job queues"):
 *   queue:{q:<name>}:waiting    list  job ids, LPUSH in, RPOP out (oldest first)
 *   queue:{q:<name>}:active     zset  job id -> lease deadline (ms)
 *   queue:{q:<name>}:delayed    zset  job id -> due time (ms): delays, retries
 *   queue:{q:<name>}:completed  list  job ids, newest first, queue-keep-completed long
 *   queue:{q:<name>}:dead       list  job ids, newest first
 *   queue:{q:<name>}:idem       hash  idempotency key -> job id
 *   queue:{q:<name>}:stats      hash  seq, completed_total, failed_total,
 *                                     retried_total, dead_total, expired_total
 *   job:{q:<name>}:<id>         hash  id queue payload idem state attempts
 *                                     max_attempts created queued started
 *                                     finished due error result
 * A job's state: waiting -> active -> done | delayed (retry) | dead.
 *
 * Every store step is journaled between MULTI and EXEC, so a replica applies
 * it whole or not at all. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/err.h"
#include "base/log.h"
#include "base/num.h"
#include "engine.h"
#include "hash.h"
#include "keys.h"
#include "list.h"
#include "parts.h"
#include "queue_int.h"
#include "zset.h"

struct queue_opts queue__opts;

static struct queue_def defs[] = {
    {.name = "withdrawal"},
    {.name = "payment"},
};
#define NDEFS ((int)(sizeof defs / sizeof defs[0]))
static const char *const known_names[] = {"withdrawal", "payment", NULL};

struct queue_def *queue__def(const char *name)
{
    for (int i = 0; i < NDEFS; i++)
        if (!strcmp(defs[i].name, name))
            return &defs[i];
    return NULL;
}

struct queue_def *queue__def_at(int i) { return i >= 0 && i < NDEFS ? &defs[i] : NULL; }

/* ---- options ---------------------------------------------------------------------------- */

/* queue-scale-interval: "30s", "500ms", "2m" or plain seconds. */
static int set_duration(const struct cfg_option *o, int argc, const char *const *argv, int append, char *err,
                        size_t errlen)
{
    const char *s = argc == 1 ? argv[0] : "";
    size_t n = strlen(s), d = 0;
    while (d < n && s[d] >= '0' && s[d] <= '9')
        d++;
    int64_t v, mul = 1000;
    const char *unit = s + d;
    if (!strcmp(unit, "ms"))
        mul = 1;
    else if (!strcmp(unit, "m"))
        mul = 60000;
    else if (*unit && strcmp(unit, "s"))
        d = 0;
    if (d == 0 || num_parse_i64(s, d, &v) < 0 || v <= 0 || v > 86400000 / mul) {
        snprintf(err, errlen, "a duration such as 30s, 500ms or 2m (up to a day) is expected, not '%s'", s);
        return -1;
    }
    *(int64_t *)o->storage = v * mul;
    return 0;
}

static void get_duration(const struct cfg_option *o, struct buf *out)
{
    int64_t ms = *(int64_t *)o->storage;
    if (ms % 1000)
        buf_printf(out, "%lldms", (long long)ms);
    else
        buf_printf(out, "%llds", (long long)(ms / 1000));
}

#define QOPT_INT(name, field, dflt, min, max) \
    {name, NULL, CFG_INT, 0, &queue__opts.field, dflt, min, max, NULL, NULL, NULL, NULL}
#define QDEF_INT(name, i, field, dflt, min, max) \
    {name, NULL, CFG_INT, 0, &defs[i].field, dflt, min, max, NULL, NULL, NULL, NULL}

static const struct cfg_option options[] = {
    QOPT_INT("queue-keep-completed", keep_completed, "1000", 0, 100000000),
    {"queue-scale-interval", NULL, CFG_SPECIAL, 0, &queue__opts.scale_interval_ms, "30s", 0, 0, NULL, set_duration,
     get_duration, NULL},
    QOPT_INT("queue-lease-ms", lease_ms, "30000", 50, 86400000),
    QOPT_INT("queue-backoff-ms", backoff_ms, "1000", 1, 86400000),
    QOPT_INT("queue-backoff-max-ms", backoff_max_ms, "3600000", 1, 604800000),
    QOPT_INT("queue-poll-ms", poll_ms, "100", 1, 60000),
    QOPT_INT("queue-max-attempts", default_max_attempts, "5", 1, 1000),
    QOPT_INT("queue-scale-wait-ms", scale_wait_ms, "1000", 1, 86400000),
    {"queue-noop-queues", NULL, CFG_STRING, CFG_HIDDEN | CFG_IMMUTABLE, &queue__opts.noop_queues, "", 0, 0, NULL,
     NULL, NULL, NULL},
    {"queue-noop-delay-ms", NULL, CFG_INT, CFG_HIDDEN, &queue__opts.noop_delay_ms, "0", 0, 3600000, NULL, NULL,
     NULL, NULL},
    QDEF_INT("queue-withdrawal-min-workers", 0, min_workers, "5", 0, 10000),
    QDEF_INT("queue-withdrawal-max-workers", 0, max_workers, "100", 1, 10000),
    QDEF_INT("queue-withdrawal-max-attempts", 0, max_attempts, "10", 1, 1000),
    QDEF_INT("queue-payment-min-workers", 1, min_workers, "3", 0, 10000),
    QDEF_INT("queue-payment-max-workers", 1, max_workers, "50", 1, 10000),
    QDEF_INT("queue-payment-max-attempts", 1, max_attempts, "10", 1, 1000),
};

/* ---- keys and small engine helpers ------------------------------------------------------- */

enum { KEYLEN = 128 };

int queue__name_ok(const char *name, size_t n)
{
    if (n == 0 || n > QUEUE_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = name[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' ||
              ch == '-' || ch == '.'))
            return 0;
    }
    return 1;
}

void queue__tag(char *buf, size_t n, const char *queue) { key_queue_tag(buf, n, queue); }

void queue__lock(struct eng_ctx *c, const char *queue)
{
    char tag[48];
    key_queue_tag(tag, sizeof tag, queue);
    struct eng_str k = {tag, strlen(tag)};
    eng_lock_keys(c, &k, 1);
}

/* "<prefix>{q:<q>}:<tail>" into buf (KEYLEN bytes), its length returned.
 * Built with memcpy: keys are made several times per job, and snprintf
 * was a tenth of the queue's CPU time (tools/bench-queue under perf).
 * Names are at most QUEUE_NAME_MAX, ids and suffixes under ID_MAX, so
 * everything fits; longer input is cut rather than overrun. */
static size_t key_cat(char *buf, const char *prefix, size_t plen, const char *q, const char *tail)
{
    size_t ql = strnlen(q, QUEUE_NAME_MAX + 1), tl = strnlen(tail, 63), n = plen;
    memcpy(buf, prefix, plen);
    memcpy(buf + n, q, ql);
    n += ql;
    buf[n++] = '}';
    buf[n++] = ':';
    memcpy(buf + n, tail, tl);
    n += tl;
    buf[n] = 0;
    return n;
}

static size_t qkey(char *buf, const char *q, const char *suffix) { return key_cat(buf, "queue:{q:", 9, q, suffix); }

static size_t jkey(char *buf, const char *q, const char *id) { return key_cat(buf, "job:{q:", 7, q, id); }

static struct eng_str S(const char *s) { return (struct eng_str){s, strlen(s)}; }

static void hset(struct eng_ctx *c, const char *key, const struct eng_str *fv, int npairs)
{
    int64_t added;
    eng_hset(c, key, strlen(key), fv, npairs, &added);
}

static void hincr(struct eng_ctx *c, const char *key, const char *field, int64_t by, int64_t *out)
{
    int64_t v;
    eng_hincrby(c, key, strlen(key), field, strlen(field), by, out ? out : &v);
}

int64_t queue__hget_i64(struct eng_ctx *c, const char *key, const char *field)
{
    struct eng_str v;
    int64_t n = 0;
    if (eng_hget(c, key, strlen(key), field, strlen(field), &v) == 0)
        num_parse_i64(v.p, v.n, &n);
    return n;
}

static void lpush(struct eng_ctx *c, const char *key, const char *elem)
{
    struct eng_str e = S(elem);
    int64_t len;
    eng_list_push(c, key, strlen(key), ENG_LIST_HEAD, 0, &e, 1, &len);
}

static void zadd(struct eng_ctx *c, const char *key, const char *member, int64_t score)
{
    struct eng_str m = S(member);
    double s = (double)score;
    struct eng_zadd_out out;
    eng_zadd(c, key, strlen(key), 0, &s, &m, 1, &out);
}

static int zrem(struct eng_ctx *c, const char *key, const char *member)
{
    struct eng_str m = S(member);
    int64_t removed = 0;
    eng_zrem(c, key, strlen(key), &m, 1, &removed);
    return removed > 0;
}

static int64_t llen(struct eng_ctx *c, const char *key)
{
    int64_t n = 0;
    eng_list_len(c, key, strlen(key), &n);
    return n;
}

static int64_t zcard(struct eng_ctx *c, const char *key)
{
    int64_t n = 0;
    eng_zcard(c, key, strlen(key), &n);
    return n;
}

/* Ids handed out by list and zset callbacks, copied (the views die with
 * the call). */
enum { IDS_MAX = 128, ID_MAX = 64 };
struct ids {
    int n, cap;
    char v[IDS_MAX][ID_MAX];
};
static void ids_add(void *ud, const char *p, size_t n)
{
    struct ids *s = ud;
    if (s->n < s->cap && n < ID_MAX) {
        memcpy(s->v[s->n], p, n);
        s->v[s->n++][n] = 0;
    }
}
static void ids_zadd(void *ud, const char *m, size_t n, double score) { ids_add(ud, m, n); }

/* Members of a zset with score <= now, lowest first, at most max. */
static void zdue(struct eng_ctx *c, const char *key, int64_t now, int64_t max, struct ids *out)
{
    struct eng_zrange r = {.by = ENG_ZBY_SCORE, .min = -INFINITY, .max = (double)now, .offset = 0, .limit = max};
    out->n = 0;
    out->cap = max < IDS_MAX ? (int)max : IDS_MAX;
    eng_zrange(c, key, strlen(key), &r, NULL, ids_zadd, out);
}

static void fmt_i64(char *buf, int64_t v) { buf[num_fmt_i64(buf, v)] = 0; }

/* A random number for jitter: a per-thread xorshift seeded from the clock. */
static uint64_t rnd(void)
{
    static __thread uint64_t x;
    if (!x)
        x = (uint64_t)clock_wall_us() ^ ((uint64_t)(uintptr_t)&x << 17) ^ 0x9e3779b97f4a7c15ull;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x;
}

/* Exponential backoff with "equal jitter": half the doubled delay fixed,
 * half random, so retries of a burst spread out but never come too soon. */
static int64_t backoff_ms(int attempts)
{
    int64_t d = queue__opts.backoff_ms;
    for (int i = 1; i < attempts && d < queue__opts.backoff_max_ms; i++)
        d *= 2;
    if (d > queue__opts.backoff_max_ms)
        d = queue__opts.backoff_max_ms;
    int64_t half = d / 2;
    return half + (half > 0 ? (int64_t)(rnd() % (uint64_t)(half + 1)) : 0);
}

static void observe(const char *q, int wait, int64_t ms)
{
    struct queue_def *d = queue__def(q);
    if (d && ms >= 0)
        metrics_hist_observe_atomic(wait ? &d->wait : &d->proc, (double)ms / 1000.0);
}

/* ---- store ---------------------------------------------------------------------------------- */

int queue__add(struct eng_ctx *c, const char *q, const char *payload, size_t len, const char *idem, int64_t delay_ms,
               int64_t max_attempts, struct buf *id_out)
{
    if (!queue__name_ok(q, strlen(q)) || (idem && strlen(idem) >= sizeof ((struct bot_job *)0)->idem))
        return ERR_SYNTAX;
    char key[KEYLEN], idkey[KEYLEN];
    qkey(idkey, q, "idem");
    if (idem && *idem) {
        struct eng_str v;
        if (eng_hget(c, idkey, strlen(idkey), idem, strlen(idem), &v) == 0) {
            if (id_out)
                buf_append(id_out, v.p, v.n);
            return 0;
        }
    }
    int64_t seq;
    qkey(key, q, "stats");
    hincr(c, key, "seq", 1, &seq);
    char id[24], maxs[24], now[24], due[24];
    fmt_i64(id, seq);
    struct queue_def *d = queue__def(q);
    fmt_i64(maxs, max_attempts > 0 ? max_attempts : d ? d->max_attempts : queue__opts.default_max_attempts);
    fmt_i64(now, c->now_ms);
    fmt_i64(due, c->now_ms + (delay_ms > 0 ? delay_ms : 0));
    struct eng_str fv[] = {S("id"),       S(id),   S("queue"),    S(q),   S("payload"), {payload, len},
                           S("idem"),     S(idem ? idem : ""),    S("state"), S(delay_ms > 0 ? "delayed" : "waiting"),
                           S("attempts"), S("0"),  S("max_attempts"), S(maxs), S("created"), S(now),
                           S("queued"),   S(due)};
    jkey(key, q, id);
    hset(c, key, fv, (int)(sizeof fv / sizeof fv[0]) / 2);
    if (delay_ms > 0) {
        qkey(key, q, "delayed");
        zadd(c, key, id, c->now_ms + delay_ms);
    } else {
        qkey(key, q, "waiting");
        lpush(c, key, id);
    }
    if (idem && *idem) {
        struct eng_str iv[2] = {S(idem), S(id)};
        hset(c, idkey, iv, 1);
    }
    if (id_out)
        buf_puts(id_out, id);
    return 1;
}

/* A delayed (or expired) job back into waiting. */
static void to_waiting(struct eng_ctx *c, const char *q, const char *id, const char *error)
{
    char key[KEYLEN], now[24];
    fmt_i64(now, c->now_ms);
    jkey(key, q, id);
    struct eng_str fv[] = {S("state"), S("waiting"), S("queued"), S(now), S("error"), S(error ? error : "")};
    hset(c, key, fv, error ? 3 : 2);
    qkey(key, q, "waiting");
    lpush(c, key, id);
}

int64_t queue__promote(struct eng_ctx *c, const char *q, int64_t max)
{
    char key[KEYLEN];
    qkey(key, q, "delayed");
    struct ids due;
    zdue(c, key, c->now_ms, max, &due);
    for (int i = 0; i < due.n; i++) {
        zrem(c, key, due.v[i]);
        to_waiting(c, q, due.v[i], NULL);
    }
    return due.n;
}

static const char *const claim_fields[] = {"payload", "idem", "attempts", "max_attempts", "created", "queued", "error"};
enum { CF_PAYLOAD, CF_IDEM, CF_ATTEMPTS, CF_MAX, CF_CREATED, CF_QUEUED, CF_ERROR, CF__N };

static int64_t view_i64(struct eng_str v)
{
    int64_t n = 0;
    if (v.p)
        num_parse_i64(v.p, v.n, &n);
    return n;
}

static void view_copy(char *dst, size_t cap, struct eng_str v)
{
    size_t n = v.p ? (v.n < cap ? v.n : cap - 1) : 0;
    memcpy(dst, v.p ? v.p : "", n);
    dst[n] = 0;
}

/* Claims up to max waiting jobs (oldest first) in one go: one pop of all
 * their ids, one read and one write of each job's hash, one ZADD of all the
 * leases.  out[i].payload must be initialised (an emptied buffer is
 * reused).  A popped id whose hash is gone (deleted by hand) is dropped. */
int queue__claim_batch(struct eng_ctx *c, const char *q, int64_t lease_ms, struct queue_claim *out, int max)
{
    char wkey[KEYLEN], key[KEYLEN];
    size_t wlen = qkey(wkey, q, "waiting");
    size_t klen = qkey(key, q, "delayed");
    int64_t nd = 0;
    if (eng_zcard(c, key, klen, &nd) == 0 && nd > 0)
        queue__promote(c, q, 128);
    if (max > IDS_MAX)
        max = IDS_MAX;
    struct ids got = {.cap = max};
    if (max <= 0 || eng_list_pop(c, wkey, wlen, ENG_LIST_TAIL, max, NULL, ids_add, &got) < 0 || got.n == 0)
        return 0;
    struct eng_str f[CF__N], members[IDS_MAX];
    double leases[IDS_MAX];
    for (int i = 0; i < CF__N; i++)
        f[i] = S(claim_fields[i]);
    char att[24], now[24];
    size_t nowl = (size_t)num_fmt_i64(now, c->now_ms);
    now[nowl] = 0;
    int n = 0;
    for (int j = 0; j < got.n; j++) {
        const char *id = got.v[j];
        struct eng_str v[CF__N];
        klen = jkey(key, q, id);
        if (eng_hmget(c, key, klen, f, CF__N, v) < 0 || !v[CF_PAYLOAD].p)
            continue; /* its hash is gone (deleted by hand): nothing to run */
        struct queue_claim *o = &out[n];
        size_t idl = strlen(id);
        memcpy(o->id, id, idl + 1);
        view_copy(o->idem, sizeof o->idem, v[CF_IDEM]);
        view_copy(o->last_error, sizeof o->last_error, v[CF_ERROR]);
        buf_reset(&o->payload);
        buf_append(&o->payload, v[CF_PAYLOAD].p, v[CF_PAYLOAD].n);
        o->attempts = (int)view_i64(v[CF_ATTEMPTS]) + 1;
        o->max_attempts = (int)view_i64(v[CF_MAX]);
        o->created_ms = view_i64(v[CF_CREATED]);
        o->started_ms = c->now_ms;
        int64_t queued = view_i64(v[CF_QUEUED]);
        size_t attl = (size_t)num_fmt_i64(att, o->attempts);
        struct eng_str fv[] = {{"state", 5}, {"active", 6}, {"attempts", 8}, {att, attl}, {"started", 7}, {now, nowl}};
        int64_t added;
        eng_hset(c, key, klen, fv, 3, &added);
        members[n] = (struct eng_str){o->id, idl};
        leases[n] = (double)(c->now_ms + lease_ms);
        observe(q, 1, c->now_ms - queued);
        n++;
    }
    if (n > 0) {
        struct eng_zadd_out zo;
        klen = qkey(key, q, "active");
        eng_zadd(c, key, klen, 0, leases, members, n, &zo);
    }
    return n;
}

int queue__claim(struct eng_ctx *c, const char *q, int64_t lease_ms, struct queue_claim *out)
{
    buf_init(&out->payload);
    /* a popped id without a hash is dropped: look further, as before */
    char wkey[KEYLEN];
    size_t wlen = qkey(wkey, q, "waiting");
    for (int tries = 0; tries < 16; tries++) {
        int64_t left = 0;
        if (queue__claim_batch(c, q, lease_ms, out, 1) == 1)
            return 1;
        if (eng_list_len(c, wkey, wlen, &left) < 0 || left == 0)
            break;
    }
    buf_release(&out->payload);
    return 0;
}

/* Removes a job from active when token (its attempts when claimed; 0 = any)
 * still matches: a worker whose lease ran out cannot finish the next one's. */
static int take_active(struct eng_ctx *c, const char *q, const char *id, int token)
{
    char key[KEYLEN];
    qkey(key, q, "active");
    double score;
    if (eng_zscore(c, key, strlen(key), id, strlen(id), &score) < 0)
        return 0;
    if (token > 0) {
        char jk[KEYLEN];
        jkey(jk, q, id);
        if (queue__hget_i64(c, jk, "attempts") != token)
            return 0;
    }
    return zrem(c, key, id);
}

/* Deletes a job's hash and its idempotency entry. */
static void job_delete(struct eng_ctx *c, const char *q, const char *id)
{
    char key[KEYLEN], ikey[KEYLEN], idem[160];
    jkey(key, q, id);
    struct eng_str v;
    idem[0] = 0;
    if (eng_hget(c, key, strlen(key), "idem", 4, &v) == 0)
        view_copy(idem, sizeof idem, v);
    eng_del(c, key, strlen(key));
    if (idem[0]) {
        qkey(ikey, q, "idem");
        struct eng_str f = S(idem);
        int64_t deleted;
        eng_hdel(c, ikey, strlen(ikey), &f, 1, &deleted);
    }
}

/* Keeps the completed list at queue-keep-completed: the oldest beyond it
 * go, their hashes with them, popped in bulk. */
static void trim_completed(struct eng_ctx *c, const char *q, const char *ckey, size_t clen)
{
    int64_t over = llen(c, ckey) - queue__opts.keep_completed;
    while (over > 0) {
        struct ids old = {.cap = over < IDS_MAX ? (int)over : IDS_MAX};
        if (eng_list_pop(c, ckey, clen, ENG_LIST_TAIL, old.cap, NULL, ids_add, &old) < 0 || !old.n)
            break;
        for (int i = 0; i < old.n; i++)
            job_delete(c, q, old.v[i]);
        over -= old.n;
    }
}

static const struct eng_str done_fields[] = {{"attempts", 8}, {"started", 7}};

int queue__done_batch(struct eng_ctx *c, const char *q, struct queue_fin *jobs, int n)
{
    char akey[KEYLEN], key[KEYLEN], now[24];
    size_t alen = qkey(akey, q, "active"), nowl = (size_t)num_fmt_i64(now, c->now_ms);
    now[nowl] = 0;
    int total = 0;
    for (int base = 0; base < n; base += IDS_MAX) {
        int m = n - base < IDS_MAX ? n - base : IDS_MAX, k = 0;
        struct queue_fin *js = jobs + base;
        struct eng_str members[IDS_MAX];
        double scores[IDS_MAX];
        int found[IDS_MAX];
        for (int i = 0; i < m; i++) {
            members[i] = S(js[i].id);
            js[i].rc = 0;
        }
        if (eng_zmscore(c, akey, alen, members, m, scores, found) < 0)
            continue; /* no active set: none of them is active */
        /* still theirs (token: the attempt they claimed), then done */
        for (int i = 0; i < m; i++) {
            if (!found[i])
                continue;
            struct eng_str v[2];
            size_t klen = jkey(key, q, js[i].id);
            if (eng_hmget(c, key, klen, done_fields, 2, v) < 0 || (js[i].token > 0 && view_i64(v[0]) != js[i].token))
                continue;
            int64_t started = view_i64(v[1]);
            const char *res = js[i].result;
            struct eng_str fv[] = {{"state", 5}, {"done", 4}, {"finished", 8}, {now, nowl}, {"result", 6},
                                   S(res ? res : "")};
            int64_t added;
            eng_hset(c, key, klen, fv, res ? 3 : 2, &added);
            observe(q, 0, c->now_ms - started);
            js[i].rc = 1;
            members[k++] = members[i];
        }
        if (k == 0)
            continue;
        int64_t removed;
        eng_zrem(c, akey, alen, members, k, &removed);
        total += k;
        if (queue__opts.keep_completed == 0) {
            for (int i = 0; i < k; i++)
                job_delete(c, q, members[i].p);
            continue;
        }
        int64_t len;
        size_t clen = qkey(key, q, "completed");
        eng_list_push(c, key, clen, ENG_LIST_HEAD, 0, members, k, &len);
        if (len > queue__opts.keep_completed)
            trim_completed(c, q, key, clen);
    }
    if (total > 0) {
        size_t slen = qkey(key, q, "stats");
        int64_t v;
        eng_hincrby(c, key, slen, "completed_total", 15, total, &v);
    }
    return total;
}

int queue__done(struct eng_ctx *c, const char *q, const char *id, const char *result, int token)
{
    struct queue_fin f = {.id = id, .result = result, .token = token};
    return queue__done_batch(c, q, &f, 1);
}

int queue__fail(struct eng_ctx *c, const char *q, const char *id, const char *error, int permanent,
                int64_t retry_in_ms, int token)
{
    if (!take_active(c, q, id, token))
        return QUEUE_FAIL_NOTACTIVE;
    char key[KEYLEN], skey[KEYLEN], now[24], due[24];
    jkey(key, q, id);
    qkey(skey, q, "stats");
    int64_t attempts = queue__hget_i64(c, key, "attempts"), max = queue__hget_i64(c, key, "max_attempts");
    hincr(c, skey, "failed_total", 1, NULL);
    fmt_i64(now, c->now_ms);
    if (permanent || attempts >= max) {
        struct eng_str fv[] = {S("state"), S("dead"), S("finished"), S(now), S("error"), S(error ? error : "")};
        hset(c, key, fv, 3);
        hincr(c, skey, "dead_total", 1, NULL);
        qkey(key, q, "dead");
        lpush(c, key, id);
        return QUEUE_FAIL_DEAD;
    }
    int64_t delay = retry_in_ms >= 0 ? retry_in_ms : backoff_ms((int)attempts);
    fmt_i64(due, c->now_ms + delay);
    struct eng_str fv[] = {S("state"), S("delayed"), S("due"), S(due), S("error"), S(error ? error : "")};
    hset(c, key, fv, 3);
    hincr(c, skey, "retried_total", 1, NULL);
    qkey(key, q, "delayed");
    zadd(c, key, id, c->now_ms + delay);
    return QUEUE_FAIL_RETRY;
}

int queue__later(struct eng_ctx *c, const char *q, const char *id, int64_t delay_ms, const char *note)
{
    if (!take_active(c, q, id, 0))
        return 0;
    char key[KEYLEN], due[24];
    jkey(key, q, id);
    hincr(c, key, "attempts", -1, NULL);
    fmt_i64(due, c->now_ms + delay_ms);
    struct eng_str fv[] = {S("state"), S("delayed"), S("due"), S(due), S("error"), S(note ? note : "")};
    hset(c, key, fv, 3);
    qkey(key, q, "delayed");
    zadd(c, key, id, c->now_ms + delay_ms);
    return 1;
}

int queue__renew(struct eng_ctx *c, const char *q, const char *id, int64_t lease_ms)
{
    char key[KEYLEN];
    qkey(key, q, "active");
    double score;
    if (eng_zscore(c, key, strlen(key), id, strlen(id), &score) < 0)
        return 0;
    zadd(c, key, id, c->now_ms + lease_ms);
    return 1;
}

int64_t queue__expire(struct eng_ctx *c, const char *q, int64_t max, int (*skip)(void *ud, const char *id), void *ud)
{
    char akey[KEYLEN], key[KEYLEN];
    qkey(akey, q, "active");
    struct ids due;
    zdue(c, akey, c->now_ms, max, &due);
    int64_t moved = 0;
    for (int i = 0; i < due.n; i++) {
        const char *id = due.v[i];
        if (skip && skip(ud, id)) {
            zadd(c, akey, id, c->now_ms + queue__opts.lease_ms);
            continue;
        }
        zrem(c, akey, id);
        jkey(key, q, id);
        int64_t attempts = queue__hget_i64(c, key, "attempts"), maxa = queue__hget_i64(c, key, "max_attempts");
        qkey(key, q, "stats");
        hincr(c, key, "expired_total", 1, NULL);
        if (attempts >= maxa) {
            char now[24];
            fmt_i64(now, c->now_ms);
            jkey(key, q, id);
            struct eng_str fv[] = {S("state"), S("dead"), S("finished"), S(now), S("error"), S("lease expired")};
            hset(c, key, fv, 3);
            qkey(key, q, "stats");
            hincr(c, key, "dead_total", 1, NULL);
            qkey(key, q, "dead");
            lpush(c, key, id);
        } else {
            to_waiting(c, q, id, "lease expired");
        }
        moved++;
    }
    return moved;
}

int queue__stats(struct eng_ctx *c, const char *q, struct bot_queue_stats *out)
{
    char key[KEYLEN];
    memset(out, 0, sizeof *out);
    qkey(key, q, "waiting");
    out->waiting = llen(c, key);
    if (out->waiting > 0) {
        struct eng_str id;
        if (eng_list_index(c, key, strlen(key), -1, &id) == 0) {
            char idb[ID_MAX], jk[KEYLEN];
            view_copy(idb, sizeof idb, id);
            jkey(jk, q, idb);
            int64_t queued = queue__hget_i64(c, jk, "queued");
            out->oldest_wait_s = queued > 0 && c->now_ms > queued ? (double)(c->now_ms - queued) / 1000.0 : 0;
        }
    }
    qkey(key, q, "active");
    out->active = zcard(c, key);
    qkey(key, q, "delayed");
    out->delayed = zcard(c, key);
    qkey(key, q, "dead");
    out->dead = llen(c, key);
    qkey(key, q, "completed");
    out->completed = llen(c, key);
    qkey(key, q, "stats");
    out->completed_total = queue__hget_i64(c, key, "completed_total");
    out->failed_total = queue__hget_i64(c, key, "failed_total");
    out->retried_total = queue__hget_i64(c, key, "retried_total");
    return 0;
}

/* ---- JSON views --------------------------------------------------------------------------- */

static int is_num_field(const char *f, size_t n)
{
    static const char *const nums[] = {"attempts", "max_attempts", "created", "queued", "started", "finished", "due"};
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++)
        if (strlen(nums[i]) == n && !memcmp(nums[i], f, n))
            return 1;
    return 0;
}

static void json_pair(void *ud, const char *f, size_t fl, const char *v, size_t vl)
{
    cJSON *o = ud;
    char name[64];
    if (fl >= sizeof name)
        return;
    memcpy(name, f, fl);
    name[fl] = 0;
    if (is_num_field(f, fl)) {
        int64_t n = 0;
        num_parse_i64(v, vl, &n);
        cJSON_AddNumberToObject(o, name, (double)n);
        return;
    }
    if ((!strcmp(name, "payload") || !strcmp(name, "result")) && vl) {
        cJSON *raw = cJSON_ParseWithLength(v, vl);
        if (raw) {
            cJSON_AddItemToObject(o, name, raw);
            return;
        }
    }
    char *s = xstrndup(v, vl);
    cJSON_AddStringToObject(o, name, s);
    xfree(s);
}

/* The job as a cJSON object, or NULL when there is none. */
static cJSON *job_object(struct eng_ctx *c, const char *q, const char *id)
{
    char key[KEYLEN];
    jkey(key, q, id);
    if (eng_exists(c, key, strlen(key)) != 1)
        return NULL;
    cJSON *o = cJSON_CreateObject();
    eng_hgetall(c, key, strlen(key), NULL, json_pair, o);
    return o;
}

static void json_out(cJSON *o, struct buf *out)
{
    char *text = cJSON_PrintUnformatted(o);
    buf_puts(out, text);
    cJSON_free(text);
    cJSON_Delete(o);
}

int queue__job_json(struct eng_ctx *c, const char *q, const char *id, struct buf *out)
{
    cJSON *o = job_object(c, q, id);
    if (!o)
        return 0;
    json_out(o, out);
    return 1;
}

int queue__dead_list(struct eng_ctx *c, const char *q, int64_t offset, int64_t count, struct buf *out)
{
    char key[KEYLEN];
    qkey(key, q, "dead");
    if (offset < 0)
        offset = 0;
    if (count <= 0 || count > IDS_MAX)
        count = IDS_MAX;
    struct ids got = {.cap = IDS_MAX};
    eng_list_range(c, key, strlen(key), offset, offset + count - 1, NULL, ids_add, &got);
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; i < got.n; i++) {
        cJSON *o = job_object(c, q, got.v[i]);
        if (o)
            cJSON_AddItemToArray(arr, o);
    }
    json_out(arr, out);
    return got.n;
}

static int lrem1(struct eng_ctx *c, const char *key, const char *id)
{
    int64_t removed = 0;
    eng_list_rem(c, key, strlen(key), 1, id, strlen(id), &removed);
    return removed > 0;
}

int queue__redrive(struct eng_ctx *c, const char *q, const char *id)
{
    char key[KEYLEN];
    qkey(key, q, "dead");
    if (!lrem1(c, key, id))
        return 0;
    jkey(key, q, id);
    struct eng_str fv[] = {S("attempts"), S("0"), S("finished"), S("")};
    hset(c, key, fv, 2);
    to_waiting(c, q, id, NULL);
    return 1;
}

int queue__dead_delete(struct eng_ctx *c, const char *q, const char *id)
{
    char key[KEYLEN];
    qkey(key, q, "dead");
    if (!lrem1(c, key, id))
        return 0;
    job_delete(c, q, id);
    return 1;
}

int64_t queue__prune(struct eng_ctx *c, const char *q, int64_t before_ms, int64_t max)
{
    char key[KEYLEN], jk[KEYLEN];
    qkey(key, q, "completed");
    int64_t n = 0;
    while (n < max) {
        struct eng_str v;
        char id[ID_MAX];
        if (eng_list_index(c, key, strlen(key), -1, &v) < 0)
            break;
        view_copy(id, sizeof id, v);
        jkey(jk, q, id);
        int64_t finished = queue__hget_i64(c, jk, "finished");
        if (finished >= before_ms)
            break;
        struct ids old = {.cap = 1};
        eng_list_pop(c, key, strlen(key), ENG_LIST_TAIL, 1, NULL, ids_add, &old);
        job_delete(c, q, id);
        n++;
    }
    return n;
}

/* ---- the API of queue.h (loop thread) ------------------------------------------------------ */

static struct queue_part *part_of(struct app *a) { return app_part_state(a, "queue"); }

/* A store step in its own context: the queue's lock, journaled as one
 * MULTI/EXEC. */
struct step {
    struct eng_ctx c;
};
static struct eng_ctx *step_begin(struct step *s, struct eng *e, const char *q)
{
    eng_ctx_init(&s->c, e, 0);
    queue__lock(&s->c, q);
    eng_journal_multi(&s->c, 1);
    return &s->c;
}
static void step_end(struct step *s)
{
    eng_journal_multi(&s->c, 0);
    eng_unlock(&s->c);
}

int bot_queue_add(struct app *a, const char *queue, const char *payload, size_t len, const char *idem,
                  int64_t delay_ms, struct buf *id_out)
{
    struct step s;
    struct eng_ctx *c = step_begin(&s, app_engine(a), queue);
    int rc = queue__add(c, queue, payload, len, idem, delay_ms, 0, id_out);
    step_end(&s);
    if (rc == 1 && part_of(a))
        pool__kick(part_of(a), queue);
    return rc;
}

int bot_queue_add_ctx(struct eng_ctx *c, const char *queue, const char *payload, size_t len, const char *idem,
                      int64_t delay_ms, struct buf *id_out)
{
    return queue__add(c, queue, payload, len, idem, delay_ms, 0, id_out);
}

int bot_queue_stats(struct app *a, const char *queue, struct bot_queue_stats *out)
{
    if (!queue__name_ok(queue, strlen(queue)))
        return ERR_SYNTAX;
    struct eng_ctx c;
    eng_ctx_init(&c, app_engine(a), 0);
    queue__lock(&c, queue);
    queue__stats(&c, queue, out);
    eng_unlock(&c);
    if (part_of(a))
        pool__numbers(part_of(a), queue, &out->workers, &out->busy);
    return 0;
}

const char *const *bot_queue_names(struct app *a) { return known_names; }

int bot_queue_job_json(struct app *a, const char *queue, const char *id, struct buf *out)
{
    if (!queue__name_ok(queue, strlen(queue)))
        return 0;
    struct eng_ctx c;
    eng_ctx_init(&c, app_engine(a), 0);
    queue__lock(&c, queue);
    int rc = queue__job_json(&c, queue, id, out);
    eng_unlock(&c);
    return rc;
}

int bot_queue_dead_list(struct app *a, const char *queue, int64_t offset, int64_t count, struct buf *out)
{
    if (!queue__name_ok(queue, strlen(queue)))
        return ERR_SYNTAX;
    struct eng_ctx c;
    eng_ctx_init(&c, app_engine(a), 0);
    queue__lock(&c, queue);
    int rc = queue__dead_list(&c, queue, offset, count, out);
    eng_unlock(&c);
    return rc;
}

int bot_queue_redrive(struct app *a, const char *queue, const char *id)
{
    if (!queue__name_ok(queue, strlen(queue)))
        return 0;
    struct step s;
    int rc = queue__redrive(step_begin(&s, app_engine(a), queue), queue, id);
    step_end(&s);
    if (rc && part_of(a))
        pool__kick(part_of(a), queue);
    return rc;
}

int bot_queue_dead_delete(struct app *a, const char *queue, const char *id)
{
    if (!queue__name_ok(queue, strlen(queue)))
        return 0;
    struct step s;
    int rc = queue__dead_delete(step_begin(&s, app_engine(a), queue), queue, id);
    step_end(&s);
    return rc;
}

int64_t bot_queue_prune(struct app *a, const char *queue, int64_t before_ms)
{
    if (!queue__name_ok(queue, strlen(queue)))
        return 0;
    int64_t total = 0, n;
    do { /* bounded steps, so the lock is never held long */
        struct step s;
        n = queue__prune(step_begin(&s, app_engine(a), queue), queue, before_ms, 1000);
        step_end(&s);
        total += n;
    } while (n == 1000);
    return total;
}

/* ---- the part -------------------------------------------------------------------------------- */

static void queue_options(struct cfg *c)
{
    for (int i = 0; i < NDEFS; i++) {
        metrics_hist_init_latency(&defs[i].wait);
        metrics_hist_init_latency(&defs[i].proc);
    }
    cfg_register(c, options, sizeof options / sizeof options[0]);
}

static const struct server_cmd *queue_commands(int *n) { return queue__commands(n); }

static int queue_start(struct app *a, char *err, size_t errlen)
{
    for (int i = 0; i < NDEFS; i++)
        if (defs[i].min_workers > defs[i].max_workers) {
            snprintf(err, errlen, "queue-%s-min-workers (%lld) is above queue-%s-max-workers (%lld)", defs[i].name,
                     (long long)defs[i].min_workers, defs[i].name, (long long)defs[i].max_workers);
            return -1;
        }
    queue__bind_engine(app_engine(a));
    struct queue_part *qp = pool__part_new(a);
    app_set_part_state(a, "queue", qp);
    return 0;
}

static void queue_stop(struct app *a)
{
    struct queue_part *qp = part_of(a);
    if (qp)
        pool__part_free(qp);
    app_set_part_state(a, "queue", NULL);
}

const struct app_part bot_part_queue = {
    .name = "queue",
    .options = queue_options,
    .commands = queue_commands,
    .start = queue_start,
    .stop = queue_stop,
};
