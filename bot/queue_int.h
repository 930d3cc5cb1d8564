/* queue_int.h: what queue.c (the job store and the part), pool.c (worker
 * pools on the app loop) and queue_cmd.c (JOB.* and LEDGER.* over RESP)
 * share.  Not for other parts: they use queue.h.
 *
 * The store functions (queue__*) run inside a context holding the queue's
 * tag lock ({q:<name>}, keys.h) and touch only that queue's keys, so they
 * serve the loop (pools, lease timer) and RESP worker threads alike. */
#ifndef BOT_QUEUE_INT_H
#define BOT_QUEUE_INT_H

#include <stdint.h>

#include "base/buf.h"
#include "base/config.h"
#include "base/metrics.h"
#include "queue.h"

struct eng;
struct eng_ctx;

#define QUEUE_NAME_MAX 31
#define QUEUE_MAX_KNOWN 8

/* The options (queue.c's table). */
struct queue_opts {
    int64_t keep_completed;
    int64_t scale_interval_ms;
    int64_t lease_ms;
    int64_t backoff_ms, backoff_max_ms;
    int64_t poll_ms;
    int64_t default_max_attempts;
    int64_t scale_wait_ms; /* oldest waiting job older than this: grow */
    char *noop_queues;     /* benchmarks and tests: queues worked by a no-op handler */
    int64_t noop_delay_ms; /* how long the no-op handler takes */
};
extern struct queue_opts queue__opts;

/* A queue with options of its own (withdrawal, payment): pool bounds, max
 * attempts, and its wait and processing histograms. */
struct queue_def {
    const char *name;
    int64_t min_workers, max_workers, max_attempts;
    struct metrics_hist wait, proc;
};
/* The known queue named name, or NULL. */
struct queue_def *queue__def(const char *name);
struct queue_def *queue__def_at(int i);

/* 1 when name is a valid queue name ([A-Za-z0-9_.-], 1..31 bytes). */
int queue__name_ok(const char *name, size_t n);
/* "{q:<name>}" into buf (the lock key). */
void queue__tag(char *buf, size_t n, const char *queue);
/* Locks the queue's tag (c initialised, holding nothing). */
void queue__lock(struct eng_ctx *c, const char *queue);
/* A hash field as an integer (0 when missing or not a number); queue.c and
 * ledger.c read their counters with it. */
int64_t queue__hget_i64(struct eng_ctx *c, const char *key, const char *field);

/* A claimed job, copied out of the engine. */
struct queue_claim {
    char id[64];
    char idem[128];
    char last_error[128];
    struct buf payload; /* NUL-terminated; caller releases */
    int attempts, max_attempts;
    int64_t created_ms, started_ms;
};

/* Adds a job (max_attempts 0: the queue's).  1 added, 0 the idempotency
 * key existed (id_out gets that job's id), negative ERR_xxx. */
int queue__add(struct eng_ctx *c, const char *q, const char *payload, size_t len, const char *idem, int64_t delay_ms,
               int64_t max_attempts, struct buf *id_out);
/* Moves due delayed jobs to waiting (at most max).  Returns how many. */
int64_t queue__promote(struct eng_ctx *c, const char *q, int64_t max);
/* Claims the oldest waiting job under a lease: 1 and *out, 0 none. */
int queue__claim(struct eng_ctx *c, const char *q, int64_t lease_ms, struct queue_claim *out);
/* token: the job's attempts when it was claimed (0 = do not check): a
 * worker whose lease ran out and whose job was claimed again cannot finish
 * the new attempt.  1 done, 0 the job was not active (or not that attempt). */
int queue__done(struct eng_ctx *c, const char *q, const char *id, const char *result, int token);
/* Finishes jobs as done in one go, as queue__done on each in order, with
 * one ZREM, one LPUSH, one trim and one counter update for all of them (the
 * pools finish a loop turn's jobs so).  jobs[i].rc gets 1 done or 0 not
 * active (or not that attempt).  Returns how many were done. */
struct queue_fin {
    const char *id, *result; /* result: JSON text or NULL */
    int token;
    int rc;
};
int queue__done_batch(struct eng_ctx *c, const char *q, struct queue_fin *jobs, int n);
/* Claims up to max (<= 128) waiting jobs, oldest first, with one pop and
 * one ZADD of their leases; out[i].payload must be initialised (emptied and
 * reused).  Returns how many. */
int queue__claim_batch(struct eng_ctx *c, const char *q, int64_t lease_ms, struct queue_claim *out, int max);
enum { QUEUE_FAIL_NOTACTIVE = 0, QUEUE_FAIL_RETRY = 1, QUEUE_FAIL_DEAD = 2 };
/* Fails an active job: retried after retry_in_ms (< 0: backoff with
 * jitter) or dead (permanent, or attempts used up).  QUEUE_FAIL_*. */
int queue__fail(struct eng_ctx *c, const char *q, const char *id, const char *error, int permanent,
                int64_t retry_in_ms, int token);
/* Back to delayed without counting the attempt; 1, or 0 not active. */
int queue__later(struct eng_ctx *c, const char *q, const char *id, int64_t delay_ms, const char *note);
/* Extends an active job's lease: 1, or 0 not active. */
int queue__renew(struct eng_ctx *c, const char *q, const char *id, int64_t lease_ms);
/* Jobs whose lease ran out go back to waiting (or dead when their attempts
 * are used up), at most max; skip(ud, id) = 1 keeps a job (renewed
 * instead: a local slot still works on it).  Returns how many moved. */
int64_t queue__expire(struct eng_ctx *c, const char *q, int64_t max, int (*skip)(void *ud, const char *id),
                      void *ud);
int queue__stats(struct eng_ctx *c, const char *q, struct bot_queue_stats *out);
int queue__job_json(struct eng_ctx *c, const char *q, const char *id, struct buf *out);
int queue__dead_list(struct eng_ctx *c, const char *q, int64_t offset, int64_t count, struct buf *out);
int queue__redrive(struct eng_ctx *c, const char *q, const char *id);
int queue__dead_delete(struct eng_ctx *c, const char *q, const char *id);
int64_t queue__prune(struct eng_ctx *c, const char *q, int64_t before_ms, int64_t max);

/* The registry of queue names that JOB.ADD created (so the lease timer
 * watches them too): key "queue:names" (a set, its own shard). */
#define QUEUE_NAMES_KEY "queue:names"

/* queue_cmd.c: the RESP rows, and the engine their handlers use (bound at
 * the queue part's start; until then they answer -LOADING). */
const struct server_cmd *queue__commands(int *n);
const struct server_cmd *ledger__commands(int *n);
void queue__bind_engine(struct eng *e);

/* pool.c: the pools of the app loop. */
struct queue_part;
struct queue_part *pool__part_new(struct app *a);
void pool__part_free(struct queue_part *qp);
int pool__handle(struct queue_part *qp, const char *queue, bot_job_fn *fn, void *ud);
void pool__collect(struct queue_part *qp, struct buf *out);
/* Local pool numbers for bot_queue_stats (0 when no pool). */
void pool__numbers(struct queue_part *qp, const char *queue, int *workers, int *busy);
void pool__kick(struct queue_part *qp, const char *queue);
/* Any thread: the pool's size and busy slots as last published (1), or 0
 * when no pool works that queue here. */
int pool__published(const char *queue, int *workers, int *busy);

#endif
