/* tg.h: what the Telegram part offers the other parts: users, telling a user
 * something (localised, through the outbox), and the outbox itself.
 *
 * The outbox: pending Bot API calls live in the engine (outbox:{u:<chat>},
 * keys.h) so a restart or failover loses nothing promised; the sender on the
 * app loop sends them at Telegram's rates (bot-rate-global msgs/s overall,
 * bot-rate-chat per chat, bot-broadcast-rate for bulk), honouring 429
 * retry_after, retrying 5xx, dropping a chat's queue on 403 (user inactive).
 * Offline mode (no bot-token): calls are logged and marked sent. */
#ifndef BOT_TG_H
#define BOT_TG_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

struct app;
struct eng;
struct eng_ctx;

/* Telegram's first_name is 1 to 64 characters: 256 bytes of UTF-8 at most.
 * A longer one (not from Telegram) is cut, between characters. */
#define BOT_NAME_MAX 256

struct bot_user {
    int64_t id;
    char lang[8];        /* "en", "ar" */
    char name[BOT_NAME_MAX + 1]; /* first name as Telegram gave it */
    int64_t created_ms;
    int64_t referrer;    /* 0 when none */
    int active;          /* 0 once the user blocked the bot */
    int64_t balance, held;
};

/* 1 found (out filled), 0 not.  Caller holds the user's tag lock. */
int bot_user_get(struct eng_ctx *c, int64_t uid, struct bot_user *out);
/* SCAN over user records (locks by itself): fn for each user id; returns
 * the next cursor, 0 when done. */
uint64_t bot_users_scan(struct eng *e, uint64_t cursor, int64_t count, void (*fn)(void *ud, int64_t uid), void *ud);

enum bot_out_flags { BOT_OUT_BULK = 1 << 0 };

/* Queues a Bot API call (method, JSON params object text) for chat.  Caller
 * holds the chat's user tag lock; loop thread only. */
int bot_outbox_push(struct eng_ctx *c, struct app *a, int64_t chat_id, const char *method, const char *params_json,
                    unsigned flags);
/* Queues a localised message from the catalogue (message key, printf-style
 * arguments as the catalogue's format for that key expects) in the user's
 * language.  Caller holds the user's tag lock.  Keys other parts use:
 *   deposit_link(amount text, url)   deposit_credited(amount text)
 *   withdraw_done(amount text)       withdraw_refused(amount text, reason)
 *   withdraw_expired()
 */
int bot_tell(struct eng_ctx *c, struct app *a, int64_t uid, const char *msg_key, ...);
/* Formats minor units as text ("12.34 USDT") by the currency option. */
void bot_amount_text(int64_t minor, char *out, size_t n);
/* Pending calls in every outbox (metrics). */
int64_t bot_outbox_depth(struct app *a);

#endif
