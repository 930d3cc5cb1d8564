/* pool.c: self-scaling worker pools on the app loop.  A worker is a slot:
 * a claimed job handed to its queue's handler, which finishes it now or
 * later (a provider call through httpc); no thread per job.  What it is not:
 * the store (queue.c changes the keys) or a handler (pay.c).
 *
 * Each pool keeps between queue-<name>-min-workers and -max-workers slots
 * (queue-min-workers / queue-max-workers for queues without options of their
 * own).  Every queue-scale-interval it looks at its queue: a backlog that
 * the busy slots cannot take, or an oldest waiting job older than
 * queue-scale-wait-ms, grows the pool (to twice its size, or to what the
 * backlog needs, whichever is more); an interval in which at most half the
 * slots were ever busy and nothing waited halves it (never below what was
 * busy).  Every change is logged with its reason.
 *
 * Timers, master only: claiming (after each finished job, after an add on
 * the loop, and every queue-poll-ms for jobs added over RESP and delayed
 * jobs coming due), lease expiry (renews the leases of jobs a slot here still
 * works on, puts the others back), scaling. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/metrics.h"
#include "engine.h"
#include "parts.h"
#include "queue_int.h"
#include "set.h"

/* CLAIM_BATCH jobs claimed under one lock; up to FIN_BATCH finished jobs
 * completed in one locked step; a flush turn runs at most FLUSH_BUDGET jobs
 * before it lets the loop look at its sockets again. */
enum { MAX_POOLS = 16, CLAIM_BATCH = 128, FIN_BATCH = 256, FLUSH_BUDGET = 4096 };

struct pool;

/* A worker slot: the job is first, so a handler's job pointer is the slot. */
struct slot {
    struct bot_job job;
    struct pool *p;
    struct buf payload;       /* kept (emptied) while the slot is free */
    struct slot *prev, *next; /* running list; next links the free list */
    uv_timer_t timer;         /* the no-op handler's delay (initialised once) */
    int timer_used;
    int done;                 /* bot_job_done called: waits for the flush */
    struct slot *fin_next;
    struct buf result;
    int has_result;
};

struct pool {
    struct queue_part *qp;
    char name[QUEUE_NAME_MAX + 1];
    bot_job_fn *fn;
    void *ud;
    int min, max, workers, busy, peak_busy;
    int64_t finished_in_interval;
    struct slot running; /* list head */
    struct slot *free_slots;
    struct slot *fin_head, *fin_tail; /* done, not yet written (the flush's) */
    uv_timer_t kick;
};

struct queue_part {
    struct app *a;
    struct pool *pools[MAX_POOLS];
    int npools;
    int master;
    uv_timer_t poll, lease, scale;
    uv_idle_t flush; /* runs while pools have finished jobs to write */
    int closing, pending_closes;
};

/* Pool sizes as the JOB.STATS command (RESP threads) reads them. */
static struct {
    char name[QUEUE_NAME_MAX + 1];
    atomic_int workers, busy;
} published[MAX_POOLS];

static void publish(struct pool *p)
{
    for (int i = 0; i < MAX_POOLS; i++) {
        if (!published[i].name[0])
            snprintf(published[i].name, sizeof published[i].name, "%s", p->name);
        if (!strcmp(published[i].name, p->name)) {
            atomic_store(&published[i].workers, p->workers);
            atomic_store(&published[i].busy, p->busy);
            return;
        }
    }
}

int pool__published(const char *queue, int *workers, int *busy)
{
    for (int i = 0; i < MAX_POOLS && published[i].name[0]; i++)
        if (!strcmp(published[i].name, queue)) {
            *workers = atomic_load(&published[i].workers);
            *busy = atomic_load(&published[i].busy);
            return 1;
        }
    return 0;
}

static struct pool *pool_find(struct queue_part *qp, const char *queue)
{
    for (int i = 0; i < qp->npools; i++)
        if (!strcmp(qp->pools[i]->name, queue))
            return qp->pools[i];
    return NULL;
}

/* ---- claiming and finishing ------------------------------------------------------------ */

static void fill(struct pool *p);

static void kick_cb(uv_timer_t *t) { fill(t->data); }

void pool__kick(struct queue_part *qp, const char *queue)
{
    struct pool *p = pool_find(qp, queue);
    if (p && !qp->closing && !uv_is_active((uv_handle_t *)&p->kick))
        uv_timer_start(&p->kick, kick_cb, 0, 0);
}

static void slot_link(struct pool *p, struct slot *s)
{
    s->next = p->running.next;
    s->prev = &p->running;
    p->running.next->prev = s;
    p->running.next = s;
}

static void slot_unlink(struct slot *s)
{
    s->prev->next = s->next;
    s->next->prev = s->prev;
}

static void copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = strnlen(src, cap - 1);
    memcpy(dst, src, n);
    dst[n] = 0;
}

/* A slot off the free list (or a new one), its payload buffer empty. */
static struct slot *slot_get(struct pool *p)
{
    struct slot *s = p->free_slots;
    if (s) {
        p->free_slots = s->next;
        return s;
    }
    s = xcalloc(1, sizeof *s);
    s->p = p;
    return s;
}

/* Back to the free list; big buffers are let go. */
static void slot_put(struct pool *p, struct slot *s)
{
    if (s->payload.cap > 65536)
        buf_release(&s->payload);
    if (s->result.cap > 65536)
        buf_release(&s->result);
    buf_reset(&s->payload);
    buf_reset(&s->result);
    s->done = s->has_result = 0;
    s->next = p->free_slots;
    p->free_slots = s;
}

/* A claimed job into a slot (its payload buffer already holds the payload). */
static void slot_start(struct pool *p, struct slot *s, struct queue_claim *cl)
{
    copy_str(s->job.queue, sizeof s->job.queue, p->name);
    copy_str(s->job.id, sizeof s->job.id, cl->id);
    copy_str(s->job.idem, sizeof s->job.idem, cl->idem);
    copy_str(s->job.last_error, sizeof s->job.last_error, cl->last_error);
    s->payload = cl->payload; /* the slot's own buffer, maybe grown */
    s->job.payload = s->payload.p ? s->payload.p : "";
    s->job.payload_len = s->payload.len;
    s->job.attempts = cl->attempts;
    s->job.max_attempts = cl->max_attempts;
    s->job.created_ms = cl->created_ms;
    s->job.started_ms = cl->started_ms;
    slot_link(p, s);
}

static void slot_free_cb(uv_handle_t *h) { xfree(h->data); }

/* For good (the part stops). */
static void slot_destroy(struct slot *s)
{
    buf_release(&s->payload);
    buf_release(&s->result);
    if (s->timer_used) {
        s->timer.data = s;
        uv_close((uv_handle_t *)&s->timer, slot_free_cb);
    } else {
        xfree(s);
    }
}

/* Claims up to what the free slots can take, in batches under one lock
 * (one pop, one ZADD of the leases), and hands each job to the handler. */
static void fill(struct pool *p)
{
    struct queue_part *qp = p->qp;
    if (!qp->master || qp->closing || app_is_loading(qp->a)) /* a half-loaded snapshot: wait */
        return;
    struct eng *e = app_engine(qp->a);
    while (p->busy < p->workers) {
        int want = p->workers - p->busy, got = 0;
        if (want > CLAIM_BATCH)
            want = CLAIM_BATCH;
        struct queue_claim cl[CLAIM_BATCH];
        struct slot *ss[CLAIM_BATCH];
        for (int i = 0; i < want; i++) {
            ss[i] = slot_get(p);
            cl[i].payload = ss[i]->payload;
        }
        struct eng_ctx c;
        eng_ctx_init(&c, e, 0);
        queue__lock(&c, p->name);
        eng_journal_multi(&c, 1);
        got = queue__claim_batch(&c, p->name, queue__opts.lease_ms, cl, want);
        eng_journal_multi(&c, 0);
        eng_unlock(&c);
        for (int i = got; i < want; i++) { /* not needed this time */
            ss[i]->payload = cl[i].payload;
            slot_put(p, ss[i]);
        }
        for (int i = 0; i < got; i++) {
            slot_start(p, ss[i], &cl[i]);
            p->busy++;
        }
        if (p->busy > p->peak_busy)
            p->peak_busy = p->busy;
        for (int i = 0; i < got; i++)
            p->fn(p->ud, qp->a, &ss[i]->job);
        if (got < want)
            break;
    }
    publish(p);
}

/* One store step on a finishing job, then the slot is free. */
static void finish(struct slot *s, int rc, const char *what)
{
    struct pool *p = s->p;
    if (rc == 0)
        log_warn("job finish ignored", "queue=%s id=%s attempt=%d action=%s reason=\"not active: lease ran out\"",
                 p->name, s->job.id, s->job.attempts, what);
    slot_unlink(s);
    slot_put(p, s);
    p->busy--;
    p->finished_in_interval++;
    publish(p);
    pool__kick(p->qp, p->name);
}

/* Writes the pool's finished jobs, FIN_BATCH per locked step (one MULTI/EXEC
 * each), frees their slots and claims more.  Returns how many it wrote. */
static int flush_pool(struct pool *p)
{
    int total = 0;
    while (p->fin_head) {
        struct slot *ss[FIN_BATCH];
        struct queue_fin fj[FIN_BATCH];
        int n = 0;
        while (n < FIN_BATCH && p->fin_head) {
            struct slot *s = p->fin_head;
            p->fin_head = s->fin_next;
            ss[n] = s;
            fj[n] = (struct queue_fin){.id = s->job.id, .result = s->has_result ? s->result.p : NULL,
                                       .token = s->job.attempts};
            n++;
        }
        if (!p->fin_head)
            p->fin_tail = NULL;
        struct eng_ctx c;
        eng_ctx_init(&c, app_engine(p->qp->a), 0);
        queue__lock(&c, p->name);
        eng_journal_multi(&c, 1);
        queue__done_batch(&c, p->name, fj, n);
        eng_journal_multi(&c, 0);
        eng_unlock(&c);
        for (int i = 0; i < n; i++) {
            if (fj[i].rc == 0)
                log_warn("job finish ignored",
                         "queue=%s id=%s attempt=%d action=done reason=\"not active: lease ran out\"", p->name,
                         ss[i]->job.id, ss[i]->job.attempts);
            slot_unlink(ss[i]);
            slot_put(p, ss[i]);
        }
        p->busy -= n;
        p->finished_in_interval += n;
        total += n;
    }
    if (total) {
        publish(p);
        fill(p);
    }
    return total;
}

static int any_finished(struct queue_part *qp)
{
    for (int i = 0; i < qp->npools; i++)
        if (qp->pools[i]->fin_head)
            return 1;
    return 0;
}

/* The flush turn: finished jobs are written together, once per loop turn
 * (a handler that finishes at once, as the no-op one, gets its next jobs in
 * the same turn, up to FLUSH_BUDGET). */
static void flush_cb(uv_idle_t *h)
{
    struct queue_part *qp = h->data;
    int done = 0, n;
    do {
        n = 0;
        for (int i = 0; i < qp->npools; i++)
            n += flush_pool(qp->pools[i]);
        done += n;
    } while (n > 0 && done < FLUSH_BUDGET);
    if (!any_finished(qp))
        uv_idle_stop(h);
}

#define STEP_BEGIN(p, c)                       \
    struct eng_ctx c;                          \
    eng_ctx_init(&c, app_engine((p)->qp->a), 0); \
    queue__lock(&c, (p)->name);                \
    eng_journal_multi(&c, 1)
#define STEP_END(c)             \
    eng_journal_multi(&c, 0); \
    eng_unlock(&c)

/* Done is written by the flush turn, together with the other jobs finished
 * in this loop turn (one locked step, one MULTI/EXEC); the slot stays busy
 * (and its lease renewed) until then. */
void bot_job_done(struct app *a, struct bot_job *job, const char *result_json)
{
    struct slot *s = (struct slot *)job;
    struct pool *p = s->p;
    if (s->done)
        return;
    s->done = 1;
    buf_reset(&s->result);
    s->has_result = result_json != NULL;
    if (result_json)
        buf_puts(&s->result, result_json);
    s->fin_next = NULL;
    if (p->fin_tail)
        p->fin_tail->fin_next = s;
    else
        p->fin_head = s;
    p->fin_tail = s;
    if (!uv_is_active((uv_handle_t *)&p->qp->flush))
        uv_idle_start(&p->qp->flush, flush_cb);
}

void bot_job_fail(struct app *a, struct bot_job *job, const char *error, int permanent, int64_t retry_in_ms)
{
    struct slot *s = (struct slot *)job;
    if (s->done)
        return; /* finished already: done waits for the flush */
    STEP_BEGIN(s->p, c);
    int rc = queue__fail(&c, job->queue, job->id, error, permanent, retry_in_ms, job->attempts);
    STEP_END(c);
    if (rc == QUEUE_FAIL_DEAD)
        log_warn("job dead", "queue=%s id=%s attempts=%d error=\"%s\"", job->queue, job->id, job->attempts,
                 error ? error : "");
    else if (rc == QUEUE_FAIL_RETRY)
        log_verbose("job retry", "queue=%s id=%s attempts=%d error=\"%s\"", job->queue, job->id, job->attempts,
                    error ? error : "");
    finish(s, rc != QUEUE_FAIL_NOTACTIVE, "fail");
}

void bot_job_later(struct app *a, struct bot_job *job, int64_t delay_ms, const char *note)
{
    struct slot *s = (struct slot *)job;
    if (s->done)
        return; /* finished already: done waits for the flush */
    STEP_BEGIN(s->p, c);
    int rc = queue__later(&c, job->queue, job->id, delay_ms, note);
    STEP_END(c);
    finish(s, rc, "later");
}

/* ---- the no-op handler (benchmarks, tests) --------------------------------------------- */

static void noop_timer_cb(uv_timer_t *t)
{
    struct slot *s = t->data;
    bot_job_done(s->p->qp->a, &s->job, NULL);
}

static void noop_handler(void *ud, struct app *a, struct bot_job *job)
{
    struct slot *s = (struct slot *)job;
    if (queue__opts.noop_delay_ms <= 0) {
        bot_job_done(a, job, NULL);
        return;
    }
    if (!s->timer_used)
        uv_timer_init(app_loop(a), &s->timer);
    s->timer_used = 1;
    s->timer.data = s;
    uv_timer_start(&s->timer, noop_timer_cb, (uint64_t)queue__opts.noop_delay_ms, 0);
}

/* ---- pools ------------------------------------------------------------------------------- */

int pool__handle(struct queue_part *qp, const char *queue, bot_job_fn *fn, void *ud)
{
    if (!queue__name_ok(queue, strlen(queue)) || pool_find(qp, queue) || qp->npools == MAX_POOLS)
        return -1;
    struct pool *p = xcalloc(1, sizeof *p);
    p->qp = qp;
    snprintf(p->name, sizeof p->name, "%s", queue);
    p->fn = fn;
    p->ud = ud;
    struct queue_def *d = queue__def(queue);
    p->min = d ? (int)d->min_workers : 1;
    p->max = d ? (int)d->max_workers : 100;
    if (p->min > p->max)
        p->min = p->max;
    p->workers = p->min > 0 ? p->min : 1;
    p->running.next = p->running.prev = &p->running;
    uv_timer_init(app_loop(qp->a), &p->kick);
    p->kick.data = p;
    qp->pools[qp->npools++] = p;
    publish(p);
    log_info("pool started", "queue=%s workers=%d min=%d max=%d", p->name, p->workers, p->min, p->max);
    pool__kick(qp, queue);
    return 0;
}

int bot_queue_handle(struct app *a, const char *queue, bot_job_fn *fn, void *ud)
{
    struct queue_part *qp = app_part_state(a, "queue");
    return qp ? pool__handle(qp, queue, fn, ud) : -1;
}

void pool__numbers(struct queue_part *qp, const char *queue, int *workers, int *busy)
{
    struct pool *p = pool_find(qp, queue);
    *workers = p ? p->workers : 0;
    *busy = p ? p->busy : 0;
}

static void scale_one(struct pool *p)
{
    struct bot_queue_stats st;
    struct eng_ctx c;
    eng_ctx_init(&c, app_engine(p->qp->a), 0);
    queue__lock(&c, p->name);
    queue__stats(&c, p->name, &st);
    eng_unlock(&c);
    int from = p->workers, to = from;
    char reason[160];
    int64_t oldest_ms = (int64_t)(st.oldest_wait_s * 1000);
    /* all slots busy at some time in the interval (peak_busy: a handler that
     * finishes within a loop turn is never busy when this timer runs) */
    if (st.waiting > 0 && (p->peak_busy >= p->workers || oldest_ms >= queue__opts.scale_wait_ms)) {
        int64_t need = p->busy + st.waiting;
        to = (int)(need > 2 * (int64_t)from ? (need > p->max ? p->max : need) : 2 * from);
        if (to > p->max)
            to = p->max;
        snprintf(reason, sizeof reason, "backlog: %lld waiting, oldest %.3f s, %d of %d busy", (long long)st.waiting,
                 st.oldest_wait_s, p->peak_busy, from);
    } else if (st.waiting == 0 && p->peak_busy <= from / 2) {
        to = from / 2 > p->peak_busy ? from / 2 : p->peak_busy;
        if (to < p->min)
            to = p->min;
        if (to < 1)
            to = 1;
        snprintf(reason, sizeof reason, "idle: at most %d of %d busy, nothing waiting", p->peak_busy, from);
    }
    if (to != from) {
        p->workers = to;
        log_info("pool scaled", "queue=%s from=%d to=%d reason=\"%s\" finished=%lld", p->name, from, to, reason,
                 (long long)p->finished_in_interval);
        publish(p);
        if (to > from)
            fill(p);
    }
    p->peak_busy = p->busy;
    p->finished_in_interval = 0;
}

static void scale_cb(uv_timer_t *t)
{
    struct queue_part *qp = t->data;
    if (!qp->master || app_is_loading(qp->a))
        return;
    for (int i = 0; i < qp->npools; i++)
        scale_one(qp->pools[i]);
}

static void poll_cb(uv_timer_t *t)
{
    struct queue_part *qp = t->data;
    for (int i = 0; i < qp->npools; i++)
        fill(qp->pools[i]);
}

/* ---- leases ------------------------------------------------------------------------------ */

static int held_here(void *ud, const char *id)
{
    struct pool *p = ud;
    for (struct slot *s = p->running.next; s != &p->running; s = s->next)
        if (!strcmp(s->job.id, id))
            return 1;
    return 0;
}

static void expire_queue(struct queue_part *qp, const char *queue)
{
    struct pool *p = pool_find(qp, queue);
    int64_t moved = 0, n;
    do {
        struct eng_ctx c;
        eng_ctx_init(&c, app_engine(qp->a), 0);
        queue__lock(&c, queue);
        eng_journal_multi(&c, 1);
        n = queue__expire(&c, queue, 128, p ? held_here : NULL, p);
        eng_journal_multi(&c, 0);
        eng_unlock(&c);
        moved += n;
    } while (n == 128);
    if (moved > 0) {
        log_info("leases expired", "queue=%s jobs=%lld", queue, (long long)moved);
        pool__kick(qp, queue);
    }
}

struct names {
    int n;
    char v[64][QUEUE_NAME_MAX + 1];
};
static void names_add(void *ud, const char *m, size_t n)
{
    struct names *s = ud;
    if (s->n < 64 && n <= QUEUE_NAME_MAX) {
        memcpy(s->v[s->n], m, n);
        s->v[s->n++][n] = 0;
    }
}

static int names_has(const struct names *s, const char *name)
{
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->v[i], name))
            return 1;
    return 0;
}

static void lease_cb(uv_timer_t *t)
{
    struct queue_part *qp = t->data;
    if (!qp->master || app_is_loading(qp->a))
        return;
    struct names all = {0}, reg = {0};
    for (int i = 0; queue__def_at(i); i++)
        names_add(&all, queue__def_at(i)->name, strlen(queue__def_at(i)->name));
    for (int i = 0; i < qp->npools; i++)
        if (!names_has(&all, qp->pools[i]->name))
            names_add(&all, qp->pools[i]->name, strlen(qp->pools[i]->name));
    struct eng_ctx c;
    eng_ctx_init(&c, app_engine(qp->a), 0);
    struct eng_str k = {QUEUE_NAMES_KEY, strlen(QUEUE_NAMES_KEY)};
    eng_lock_keys(&c, &k, 1);
    eng_smembers(&c, k.p, k.n, NULL, names_add, &reg);
    eng_unlock(&c);
    for (int i = 0; i < reg.n; i++)
        if (!names_has(&all, reg.v[i]) && queue__name_ok(reg.v[i], strlen(reg.v[i])))
            names_add(&all, reg.v[i], strlen(reg.v[i]));
    for (int i = 0; i < all.n; i++)
        expire_queue(qp, all.v[i]);
}

/* ---- metrics ----------------------------------------------------------------------------- */

void pool__collect(struct queue_part *qp, struct buf *out)
{
    struct row {
        const char *name;
        struct bot_queue_stats st;
        struct queue_def *def;
    } rows[MAX_POOLS + QUEUE_MAX_KNOWN];
    int n = 0;
    for (int i = 0; queue__def_at(i); i++)
        rows[n++] = (struct row){.name = queue__def_at(i)->name, .def = queue__def_at(i)};
    for (int i = 0; i < qp->npools; i++)
        if (!queue__def(qp->pools[i]->name))
            rows[n++] = (struct row){.name = qp->pools[i]->name};
    for (int i = 0; i < n; i++) {
        struct eng_ctx c;
        eng_ctx_init(&c, app_engine(qp->a), 0);
        queue__lock(&c, rows[i].name);
        queue__stats(&c, rows[i].name, &rows[i].st);
        eng_unlock(&c);
        pool__numbers(qp, rows[i].name, &rows[i].st.workers, &rows[i].st.busy);
    }
    static const char *const states[] = {"waiting", "active", "delayed", "dead", "completed"};
    metrics_family(out, "obentchi_queue_jobs", "gauge", "Jobs in each state of a queue.");
    for (int i = 0; i < n; i++) {
        const int64_t v[] = {rows[i].st.waiting, rows[i].st.active, rows[i].st.delayed, rows[i].st.dead,
                             rows[i].st.completed};
        for (int j = 0; j < 5; j++) {
            const char *labels[] = {"queue", rows[i].name, "state", states[j], NULL};
            metrics_sample_int(out, "obentchi_queue_jobs", labels, v[j]);
        }
    }
#define COUNTER(fam, help, field)                                           \
    metrics_family(out, fam, "counter", help);                              \
    for (int i = 0; i < n; i++) {                                           \
        const char *labels[] = {"queue", rows[i].name, NULL};               \
        metrics_sample_int(out, fam, labels, rows[i].st.field);             \
    }
    COUNTER("obentchi_queue_completed_total", "Jobs completed.", completed_total)
    COUNTER("obentchi_queue_failed_total", "Job attempts that failed.", failed_total)
    COUNTER("obentchi_queue_retried_total", "Failed attempts scheduled for a retry.", retried_total)
#undef COUNTER
    metrics_family(out, "obentchi_queue_workers", "gauge", "Worker slots of a queue's pool.");
    for (int i = 0; i < n; i++) {
        const char *labels[] = {"queue", rows[i].name, NULL};
        metrics_sample_int(out, "obentchi_queue_workers", labels, rows[i].st.workers);
    }
    metrics_family(out, "obentchi_queue_busy_workers", "gauge", "Worker slots running a job.");
    for (int i = 0; i < n; i++) {
        const char *labels[] = {"queue", rows[i].name, NULL};
        metrics_sample_int(out, "obentchi_queue_busy_workers", labels, rows[i].st.busy);
    }
    metrics_family(out, "obentchi_queue_oldest_wait_seconds", "gauge", "Age of the oldest waiting job.");
    for (int i = 0; i < n; i++) {
        const char *labels[] = {"queue", rows[i].name, NULL};
        metrics_sample(out, "obentchi_queue_oldest_wait_seconds", labels, rows[i].st.oldest_wait_s);
    }
    metrics_family(out, "obentchi_queue_wait_seconds", "histogram", "Time from waiting to claimed.");
    for (int i = 0; i < n; i++)
        if (rows[i].def) {
            const char *labels[] = {"queue", rows[i].name, NULL};
            metrics_hist_write(out, "obentchi_queue_wait_seconds", labels, &rows[i].def->wait);
        }
    metrics_family(out, "obentchi_queue_processing_seconds", "histogram", "Time from claimed to done.");
    for (int i = 0; i < n; i++)
        if (rows[i].def) {
            const char *labels[] = {"queue", rows[i].name, NULL};
            metrics_hist_write(out, "obentchi_queue_processing_seconds", labels, &rows[i].def->proc);
        }
}

static void collect_cb(void *ud, struct buf *out) { pool__collect(ud, out); }

/* ---- life -------------------------------------------------------------------------------- */

static void on_role(void *ud, int is_master)
{
    struct queue_part *qp = ud;
    qp->master = is_master;
    log_info("queues", "role=%s workers=%s", is_master ? "master" : "replica", is_master ? "running" : "standing by");
    if (is_master)
        for (int i = 0; i < qp->npools; i++)
            fill(qp->pools[i]);
}

static void noop_queues(struct queue_part *qp)
{
    const char *s = queue__opts.noop_queues ? queue__opts.noop_queues : "";
    while (*s) {
        while (*s == ' ' || *s == ',')
            s++;
        size_t n = strcspn(s, " ,");
        if (n && n <= QUEUE_NAME_MAX) {
            char name[QUEUE_NAME_MAX + 1];
            memcpy(name, s, n);
            name[n] = 0;
            if (pool__handle(qp, name, noop_handler, NULL) < 0)
                log_warn("queue-noop-queues", "queue=%s error=\"invalid or already handled\"", name);
        }
        s += n;
    }
}

struct queue_part *pool__part_new(struct app *a)
{
    struct queue_part *qp = xcalloc(1, sizeof *qp);
    qp->a = a;
    qp->master = app_is_master(a);
    uv_loop_t *loop = app_loop(a);
    uv_timer_init(loop, &qp->poll);
    uv_timer_init(loop, &qp->lease);
    uv_timer_init(loop, &qp->scale);
    uv_idle_init(loop, &qp->flush);
    qp->poll.data = qp->lease.data = qp->scale.data = qp->flush.data = qp;
    uint64_t lease_every = (uint64_t)(queue__opts.lease_ms / 4 > 1000 ? 1000 : queue__opts.lease_ms / 4);
    if (lease_every < 10)
        lease_every = 10;
    uv_timer_start(&qp->poll, poll_cb, (uint64_t)queue__opts.poll_ms, (uint64_t)queue__opts.poll_ms);
    uv_timer_start(&qp->lease, lease_cb, lease_every, lease_every);
    uv_timer_start(&qp->scale, scale_cb, (uint64_t)queue__opts.scale_interval_ms,
                   (uint64_t)queue__opts.scale_interval_ms);
    app_on_role(a, on_role, qp);
    app_add_collector(a, collect_cb, qp);
    noop_queues(qp);
    return qp;
}

static void part_closed(uv_handle_t *h)
{
    struct queue_part *qp = h->data;
    if (--qp->pending_closes == 0)
        xfree(qp);
}

static void pool_closed(uv_handle_t *h)
{
    struct pool *p = h->data;
    struct queue_part *qp = p->qp;
    xfree(p);
    if (--qp->pending_closes == 0)
        xfree(qp);
}

/* Jobs still running are left active in the engine: their leases run out
 * and they are retried (a handler in flight is told nothing more). */
void pool__part_free(struct queue_part *qp)
{
    qp->closing = 1; /* fill claims nothing more */
    qp->pending_closes = 4 + qp->npools;
    for (int i = 0; i < qp->npools; i++) {
        struct pool *p = qp->pools[i];
        flush_pool(p); /* jobs done are written, not left to their leases */
        while (p->running.next != &p->running) {
            struct slot *s = p->running.next;
            slot_unlink(s);
            slot_destroy(s);
        }
        while (p->free_slots) {
            struct slot *s = p->free_slots;
            p->free_slots = s->next;
            slot_destroy(s);
        }
        uv_close((uv_handle_t *)&p->kick, pool_closed);
    }
    uv_close((uv_handle_t *)&qp->flush, part_closed);
    uv_close((uv_handle_t *)&qp->poll, part_closed);
    uv_close((uv_handle_t *)&qp->lease, part_closed);
    uv_close((uv_handle_t *)&qp->scale, part_closed);
}
