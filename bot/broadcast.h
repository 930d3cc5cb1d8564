/* broadcast.h: messages to every active user (optionally of one language),
 * sent through the outbox at bot-broadcast-rate, resumable after a restart
 * or a failover without sending anyone the same broadcast twice.  Started
 * and driven by the API part (api.c); implemented in broadcast.c.
 *
 * Keys:
 *   bc:{bc}:seq          string  last broadcast id
 *   bc:{bc}:<id>         hash    id text language state created finished
 *                                cursor sent skipped (state: running, done, cancelled)
 *   bc:{bc}:running      zset    running ids by id (oldest first)
 *   bcsent:{u:<uid>}     set     broadcast ids this user was sent (the
 *                                user's tag: the push to the outbox, this
 *                                marker and the counters change in one
 *                                locked step with {bc}); TTL 30 days
 * The scan cursor (bot_users_scan) is saved only once every user before it
 * was handled, so a resume repeats at most one batch, whose users the
 * markers skip.
 *
 * Loop thread only; the sender runs on the master only. */
#ifndef BOT_BROADCAST_H
#define BOT_BROADCAST_H

#include "base/buf.h"

struct app;
struct cfg;

#define BC_TEXT_MAX 4096

/* Creates a running broadcast; its id (decimal) goes to id_out.  language:
 * NULL or "" for every user.  0, or -1 when not the master. */
int bc_create(struct app *a, const char *text, const char *language, struct buf *id_out);
/* {"id","text","language","state","sent","skipped","created_ms","finished_ms"}: 1, or 0 unknown. */
int bc_get_json(struct app *a, const char *id, struct buf *out);
/* 1 cancelled, 0 unknown id, 2 already finished (nothing changed), -1 not the master. */
int bc_cancel(struct app *a, const char *id);

/* The sender's timer (api.c's start and stop); cfg gives bot-broadcast-rate. */
void bc_start(struct app *a, struct cfg *cfg);
void bc_stop(struct app *a);

#endif
