/* scheduler.h: repeatable jobs (the scheduler part, sched.c), as the operator
 * API (api.c) sees them.
 *
 * A schedule is a name, an expression (cron.h: five-field cron or
 * "every N s", read in schedule-timezone), a queue and a JSON payload.  At
 * each due time the master adds one job to the queue with the idempotency
 * key "<name>:<due ms>", in the same locked step that records the due time
 * as fired, so a due time is fired once even across failovers; a scheduler
 * that was down fires only the latest missed due time, once, late.
 *
 * source is "builtin" (the bot's own housekeeping: run in process, no job,
 * queue NULL in JSON), "config" (the schedule option) or "api".  Built-in
 * and configured schedules live in memory (every node declares them); the
 * engine keeps only what must survive a restart or failover ({sched} tag,
 * one lock for all of them):
 *   sched:{sched}:defs    hash  name -> {"expr","queue","payload","paused","source","created"}:
 *                               API schedules; overrides of paused built-in or
 *                               configured ones; a configured one's definition
 *                               from its first fire
 *   sched:{sched}:last    hash  name -> last due time fired (ms), from the first fire
 *   sched:{sched}:fired   hash  name -> times fired
 * A fresh server writes none of them.
 *
 * Loop thread only.  The writing calls refuse on a replica (-1, "not the
 * master"). */
#ifndef BOT_SCHEDULER_H
#define BOT_SCHEDULER_H

#include <stddef.h>

#include "base/buf.h"

struct app;

#define SCHED_NAME_MAX 64

/* Every schedule as a JSON array (name order), or one by name as an object:
 * {"name","expr","queue","payload","paused","source","timezone","created_ms",
 *  "last_due_ms","next_due_ms","fired"}.  get: 1 found, 0 not. */
void bot_sched_list_json(struct app *a, struct buf *out);
int bot_sched_get_json(struct app *a, const char *name, struct buf *out);
/* Adds a schedule (source "api").  payload: JSON text.  1 added, 0 the name
 * exists, -1 invalid (err says why: name, expression, queue or payload). */
int bot_sched_add(struct app *a, const char *name, const char *expr, const char *queue, const char *payload,
                  char *err, size_t errlen);
/* Pauses (1) or resumes (0) any schedule; a resumed schedule fires from the
 * next due time on, not the ones it missed while paused.  Already in that
 * state: nothing written.  1 done, 0 no such name, -1 not the master. */
int bot_sched_set_paused(struct app *a, const char *name, int paused);
/* Deletes an "api" schedule: 1 deleted, 0 no such name, -1 declared in the
 * configuration or built in (pause it instead; err says so). */
int bot_sched_delete(struct app *a, const char *name, char *err, size_t errlen);

#endif
