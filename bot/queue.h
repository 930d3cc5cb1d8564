/* queue.h: named job queues in the engine (keys.h: {q:<name>}) with leases,
 * retries with exponential backoff and jitter, dead letters, idempotent adds,
 * and self-scaling worker pools whose workers are concurrency slots on the
 * app loop (a handler that calls a provider does so through httpc and
 * finishes later; no thread per job).
 *
 * Jobs: id, queue, payload (JSON text), idempotency key, attempts, max
 * attempts, created/started/finished times, last error.  Adding a job whose
 * idempotency key was seen returns the existing job's id.
 *
 * Loop thread only, except bot_queue_add_ctx(), which any thread holding the
 * queue's tag lock may call (the JOB.ADD command does, on a RESP worker). */
#ifndef BOT_QUEUE_H
#define BOT_QUEUE_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

struct app;
struct eng_ctx;

/* A claimed job, owned by its pool until it is finished. */
struct bot_job {
    char queue[32];
    char id[64];
    char idem[128];      /* "" when none */
    const char *payload; /* JSON text, NUL-terminated, valid until finished */
    size_t payload_len;
    int attempts;        /* this attempt included */
    int max_attempts;
    int64_t created_ms, started_ms;
    char last_error[128]; /* the previous attempt's error or note ("" when none) */
};

/* A handler: runs the job and finishes it with exactly one of
 * bot_job_done() or bot_job_fail(), now or later (on the loop). */
typedef void bot_job_fn(void *ud, struct app *a, struct bot_job *job);

/* Registers the handler of a queue (at start).  The pool of that queue then
 * claims and runs its jobs between queue-<name>-min-workers and
 * queue-<name>-max-workers slots. */
int bot_queue_handle(struct app *a, const char *queue, bot_job_fn *fn, void *ud);

/* Adds a job; locks what it needs.  delay_ms > 0 puts it in delayed.
 * Returns 1 added, 0 the idempotency key existed (id_out gets the existing
 * id), or a negative ERR_xxx.  id_out may be NULL. */
int bot_queue_add(struct app *a, const char *queue, const char *payload, size_t len, const char *idem,
                  int64_t delay_ms, struct buf *id_out);
/* The same inside a context already holding the queue's tag lock (and
 * whatever else must change with it: "hold and enqueue" in one step). */
int bot_queue_add_ctx(struct eng_ctx *c, const char *queue, const char *payload, size_t len, const char *idem,
                      int64_t delay_ms, struct buf *id_out);

/* Finishing a job (the handler's job pointer is invalid afterwards). */
void bot_job_done(struct app *a, struct bot_job *job, const char *result_json);
/* permanent = 1: straight to dead.  Otherwise retried after retry_in_ms, or
 * after exponential backoff with jitter when retry_in_ms < 0, until
 * max_attempts, then dead. */
void bot_job_fail(struct app *a, struct bot_job *job, const char *error, int permanent, int64_t retry_in_ms);

/* Puts the job back to delayed for delay_ms without counting this attempt
 * (a payout still "pending" at the provider: poll again later); note is
 * stored as the job's last error and handed to the next attempt. */
void bot_job_later(struct app *a, struct bot_job *job, int64_t delay_ms, const char *note);

/* Counts for metrics and the API. */
struct bot_queue_stats {
    int64_t waiting, active, delayed, dead, completed;
    int64_t completed_total, failed_total, retried_total;
    int workers, busy;
    double oldest_wait_s;
};
int bot_queue_stats(struct app *a, const char *queue, struct bot_queue_stats *out);
/* Names of the queues known (NULL-terminated, static). */
const char *const *bot_queue_names(struct app *a);
/* A job's fields as a JSON object (into out): 1 found, 0 not. */
int bot_queue_job_json(struct app *a, const char *queue, const char *id, struct buf *out);
/* Dead letters: list (JSON array of jobs, newest first), re-drive (back to
 * waiting, attempts reset) and delete; return counts or 0/1. */
int bot_queue_dead_list(struct app *a, const char *queue, int64_t offset, int64_t count, struct buf *out);
int bot_queue_redrive(struct app *a, const char *queue, const char *id);
int bot_queue_dead_delete(struct app *a, const char *queue, const char *id);
/* Removes completed jobs finished before before_ms (the scheduler's pruning). */
int64_t bot_queue_prune(struct app *a, const char *queue, int64_t before_ms);

#endif
