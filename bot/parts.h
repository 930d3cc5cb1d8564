/* parts.h: the parts of the bot, in start order (app.c's table).  Each is
 * defined in the file named beside it. */
#ifndef BOT_PARTS_H
#define BOT_PARTS_H

#include "app.h"

extern const struct app_part bot_part_health; /* health.c: /healthz, /readyz, /metrics */
extern const struct app_part bot_part_ledger; /* ledger.c: balances, holds, ledger entries */
extern const struct app_part bot_part_queue;  /* queue.c, pool.c: job queues, worker pools, JOB.* */
extern const struct app_part bot_part_pay;    /* payout.c, payment.c: providers, /payments/callback */
extern const struct app_part bot_part_tg;     /* tg_*.c, outbox.c: webhook, sessions, flows, Bot API */
extern const struct app_part bot_part_sched;  /* cron.c, sched.c: repeatable jobs, built-in schedules */
extern const struct app_part bot_part_api;    /* api.c, broadcast.c: /api/v1/ */

#endif
