/* tg_int.h: the Telegram part's own interfaces, shared by its files and
 * nothing else (tg.h is what other parts see).
 *
 *   tg.c          the part: options, webhook route, processing turns, metrics
 *   tg_update.c   Update JSON -> struct tg_update; ingest (dedupe + inbox)
 *   tg_session.c  users (no TTL) and sessions (TTL bot-session-ttl)
 *   tg_flow.c     commands and the withdraw conversation (a state machine)
 *   tg_catalog.c  the message catalogue, English and Arabic
 *   tg_amount.c   amounts (text <-> minor units) and wallet addresses
 *   outbox.c      bot_outbox_push / bot_tell (engine side, no I/O)
 *   tg_send.c     the sender: rate limits, Bot API calls through httpc
 *
 * Keys of this part (keys.h has the whole layout):
 *   tg:seen:{tg}          zset  update_id -> time seen (ms); dedupe window
 *   inbox:{u:<chat>}      list  raw updates recorded, not yet processed (RPUSH in, LPOP out)
 *   outbox:{u:<chat>}     list  pending Bot API calls {"m":method,"f":flags,"p":{params}}
 *   session:{u:<uid>}     hash  state amount address ref lang updated (TTL)
 *   user:{u:<uid>}        hash  id lang name created referrer active (balance held: ledger.c)
 *
 * Threads: everything here runs on the app loop, except what unit tests
 * drive directly with an engine (decode, ingest, flows, outbox). */
#ifndef BOT_TG_INT_H
#define BOT_TG_INT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base/buf.h"
#include "base/num.h"
#include "engine.h"

struct app;
struct cJSON;
struct json_arena;

/* ---- keys ------------------------------------------------------------------ */

/* keys.h's key_user / key_user_tag, the same text without printf (the hot
 * path names several keys per update).  buf holds at least 48 bytes and
 * prefix is a short literal ("inbox", "outbox", "user", "session"). */
static inline int tg__key_user(char *buf, const char *prefix, int64_t uid)
{
    size_t n = strlen(prefix);
    memcpy(buf, prefix, n);
    memcpy(buf + n, ":{u:", 4);
    n += 4 + num_fmt_i64(buf + n + 4, uid);
    buf[n++] = '}';
    buf[n] = '\0';
    return (int)n;
}
static inline int tg__key_tag(char *buf, int64_t uid)
{
    memcpy(buf, "{u:", 3);
    size_t n = 3 + num_fmt_i64(buf + 3, uid);
    buf[n++] = '}';
    buf[n] = '\0';
    return (int)n;
}

/* ---- options (tg.c owns the table; storage here) ------------------------ */

struct tg_opts {
    char *token;          /* bot-token (secret) */
    char *api_url;        /* bot-api-url */
    char *secret;         /* bot-webhook-secret (secret) */
    int64_t session_ttl;  /* bot-session-ttl, seconds */
    int64_t rate_global;  /* bot-rate-global, calls/s (0 = no limit) */
    int64_t rate_chat;    /* bot-rate-chat, calls/s per chat (0 = no limit) */
    int64_t rate_bulk;    /* bot-broadcast-rate, calls/s for BOT_OUT_BULK */
    int64_t admin_chat;   /* bot-admin-chat (0 = none) */
    char *currency;       /* currency */
    int64_t max_withdrawal, max_deposit; /* minor units */
    int64_t addr_min, addr_max;          /* bot-address-min-length, -max-length */
    char *addr_charset;                  /* bot-address-charset */
    int64_t dedupe_window;               /* bot-dedupe-window, seconds */
    int64_t dedupe_max;                  /* bot-dedupe-max, update ids kept */
    int64_t max_inflight;                /* bot-api-max-inflight */
    int64_t senders;                     /* bot-api-senders (0: one per core) */
};
extern struct tg_opts tg__opt;
/* Sets defaults usable without a configuration (unit tests). */
void tg__opts_defaults(void);

/* ---- updates (tg_update.c) ---------------------------------------------- */

enum tg_kind { TG_K_MESSAGE, TG_K_EDITED, TG_K_CALLBACK, TG_K_MEMBER, TG_K_OTHER, TG_K__COUNT };
extern const char *const tg__kind_names[TG_K__COUNT];

/* A decoded update.  Strings borrow the cJSON tree (root), valid until
 * tg_update_release(). */
struct tg_update {
    int64_t update_id;
    int kind;            /* enum tg_kind */
    int64_t chat_id;     /* 0 when the update has no chat we serve */
    int64_t user_id;
    int is_private;      /* private chat (chat id == user id) */
    const char *lang;    /* language_code or "" */
    const char *name;    /* first_name or "" */
    const char *text;    /* message text or "" */
    const char *cb_id;   /* callback_query id or "" */
    const char *cb_data; /* callback_query data or "" */
    const char *member_status; /* my_chat_member new status or "" */
    struct cJSON *root;        /* in arena (json_mem.h): the strings above point into it */
    struct json_arena *arena;
};

/* Parses and checks an Update.  0, or -1 with a reason in err (not JSON, not
 * an object, no integer update_id...): the webhook's 400. */
int tg_update_decode(const char *json, size_t len, struct tg_update *u, char *err, size_t errlen);
void tg_update_release(struct tg_update *u);

/* Records a decoded update (raw: its text) under the {tg} and chat locks:
 * 1 new (seen + queued in the chat's inbox, or only seen when chat_id is
 * 0), 0 a repeat (nothing changed). */
int tg_ingest(struct eng *e, const struct tg_update *u, const char *raw, size_t len, int64_t now_ms);
/* Forgets update ids older than the window or past the cap; returns how
 * many went. */
int64_t tg_seen_prune(struct eng *e, int64_t now_ms);

/* ---- users and sessions (tg_session.c) ---------------------------------- */

/* Creates the user record when absent (lang, name, referrer), refreshes
 * lang and name and reactivates otherwise.  Returns 1 created, 0 existed. */
int tg_user_touch(struct eng_ctx *c, int64_t uid, const char *lang, const char *name, int64_t referrer);
/* Sets the active flag (0: blocked the bot; its outbox goes too). */
void tg_user_set_active(struct eng_ctx *c, int64_t uid, int active);
/* "en" or "ar" for the user ("en" when unknown). */
const char *tg_user_lang(struct eng_ctx *c, int64_t uid);

enum tg_state { TG_S_IDLE, TG_S_WD_AMOUNT, TG_S_WD_ADDRESS, TG_S_WD_CONFIRM, TG_S__COUNT };
extern const char *const tg__state_names[TG_S__COUNT];

struct tg_session {
    int state;           /* enum tg_state */
    int64_t amount;      /* minor units */
    char address[128];
    char ref[96];        /* the pending withdrawal's reference */
};
/* Reads the session (an idle one when absent). */
void tg_session_get(struct eng_ctx *c, int64_t uid, struct tg_session *s);
/* Writes it and refreshes its TTL. */
void tg_session_put(struct eng_ctx *c, int64_t uid, const struct tg_session *s, const char *lang);

/* ---- amounts and addresses (tg_amount.c) --------------------------------- */

#define TG_DECIMALS 2
enum tg_amount_err { TG_AMT_OK = 0, TG_AMT_FORMAT = -1, TG_AMT_ZERO = -2, TG_AMT_DECIMALS = -3, TG_AMT_TOOBIG = -4 };
/* "12", "12.5", "12.50" -> 1250 (at most TG_DECIMALS decimals, > 0, <= max). */
int tg_amount_parse(const char *s, int64_t max, int64_t *out);
/* 0 valid, -1 length, -2 a character outside the charset. */
int tg_address_check(const char *s);

/* ---- catalogue (tg_catalog.c) -------------------------------------------- */

/* The printf format of key in lang ("en" fallback); NULL for an unknown key. */
const char *tg_msg(const char *lang, const char *key);
/* Language from Telegram's language_code: "ar..." -> "ar", else "en". */
const char *tg_lang_of(const char *language_code);

/* ---- flows (tg_flow.c) ---------------------------------------------------- */

/* The locks tg_flow_handle() needs for chat: the user tag and the queue tags
 * a flow may enqueue into (keys[3] of bufs[3][48]). */
int tg_flow_lock_keys(int64_t chat, char bufs[][48], struct eng_str *keys);
/* Handles one update inside a context holding tg_flow_lock_keys(); replies
 * go to the outbox.  Returns the outcome name for metrics ("processed",
 * "ignored"). */
const char *tg_flow_handle(struct eng_ctx *c, struct app *a, const struct tg_update *u);

/* ---- outbox (outbox.c) ---------------------------------------------------- */

/* Who to tell when a chat's outbox gets something (the sender). */
void tg__set_outbox_wake(void (*fn)(void *ud, int64_t chat), void *ud);
/* Outbox entry encoding/decoding. */
/* The identity of an entry's bytes (a 64-bit hash). */
uint64_t tg_outbox_entry_tag(const char *p, size_t n);
/* Takes chat's head entry off when it is still the one whose tag is given
 * (1), else leaves the outbox as it is (0). */
int tg_outbox_pop_head(struct eng_ctx *c, int64_t chat, uint64_t tag);
/* Copies the head entry into out: 1, or 0 when the outbox is empty. */
int tg_outbox_peek(struct eng_ctx *c, int64_t chat, struct buf *out);
/* Drops the whole outbox of chat; returns how many entries went. */
int64_t tg_outbox_drop(struct eng_ctx *c, int64_t chat);
/* The running depth counter (entries pushed minus removed). */
void tg__outbox_depth_add(int64_t n);
/* An outbox entry's parts: the method (copied), flags, and the params
 * object's text (a view into the entry, or into scratch). */
struct tg_outbox_entry {
    char method[64];
    unsigned flags;
    const char *params;
    size_t params_len;
};
/* Reads an entry ({"m":method,"f":flags,"t":ms,"p":{params}}): the shape
 * bot_outbox_push writes is read by position, any other as JSON.  0, or -1
 * unreadable (no string m, no object p, a method of 64 bytes or more). */
int tg_outbox_entry_read(const char *p, size_t n, struct tg_outbox_entry *e, struct buf *scratch);
/* Queues sendMessage {"chat_id":chat,"text":text} (bot_outbox_push's rules). */
int tg__outbox_text(struct eng_ctx *c, struct app *a, int64_t chat_id, const char *text);
/* JSON writing without a tree: s as a quoted, escaped JSON string (cJSON's
 * escaping); v as a JSON integer. */
void tg__json_string(struct buf *out, const char *s);
void tg__json_int(struct buf *out, int64_t v);

#endif
