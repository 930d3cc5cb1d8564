/* tg_update.c: what arrives at the webhook.  Decoding checks that a body is
 * an Update (a JSON object with a non-negative integer update_id) and pulls
 * out what the flows need; ingest records it in the engine exactly once:
 *
 *   tg:seen:{tg}       zset  update_id -> ms when first seen.  Telegram
 *                      delivers at least once and keeps undelivered updates
 *                      24 h, so ids are kept bot-dedupe-window seconds
 *                      (and at most bot-dedupe-max of them).
 *   inbox:{u:<chat>}   list  the raw update, waiting to be processed in
 *                      arrival order (RPUSH; tg.c takes the head)
 *
 * Both are written under one eng_lock_keys() over {tg} and the chat's tag,
 * so an update is either seen and queued, or neither.  Not for processing:
 * tg_flow.c does that, after the webhook has answered. */
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "json_mem.h"
#include "keys.h"
#include "list.h"
#include "tg_int.h"
#include "zset.h"

#define S(x) (x), strlen(x)
#define SEEN_KEY "tg:seen:{tg}"

const char *const tg__kind_names[TG_K__COUNT] = {"message", "edited_message", "callback_query", "my_chat_member",
                                                 "other"};

static const char *str_at(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) && v->valuestring ? v->valuestring : "";
}

/* An integer JSON number (Telegram ids fit in 52 bits: doubles hold them). */
static int int_at(const cJSON *o, const char *name, int64_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    /* range first: converting inf, NaN or 1e300 to int64_t is undefined (fuzz_tg_update) */
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= -9007199254740992.0 && v->valuedouble <= 9007199254740992.0) ||
        v->valuedouble != (double)(int64_t)v->valuedouble)
        return -1;
    *out = (int64_t)v->valuedouble;
    return 0;
}

static void take_user(struct tg_update *u, const cJSON *from)
{
    if (!cJSON_IsObject(from))
        return;
    int_at(from, "id", &u->user_id);
    u->lang = str_at(from, "language_code");
    u->name = str_at(from, "first_name");
}

static void take_chat(struct tg_update *u, const cJSON *chat)
{
    int64_t id;
    if (!cJSON_IsObject(chat) || int_at(chat, "id", &id) < 0)
        return;
    u->is_private = !strcmp(str_at(chat, "type"), "private");
    u->chat_id = u->is_private ? id : 0; /* groups and channels: not served */
}

int tg_update_decode(const char *json, size_t len, struct tg_update *u, char *err, size_t errlen)
{
    memset(u, 0, sizeof *u);
    u->lang = u->name = u->text = u->cb_id = u->cb_data = u->member_status = "";
    u->arena = json_arena_open(len);
    u->root = cJSON_ParseWithLength(json, len);
    json_arena_close(u->arena);
    if (!u->root) {
        snprintf(err, errlen, "invalid JSON");
        goto bad;
    }
    if (!cJSON_IsObject(u->root)) {
        snprintf(err, errlen, "not an Update: not a JSON object");
        goto bad;
    }
    if (int_at(u->root, "update_id", &u->update_id) < 0 || u->update_id < 0) {
        snprintf(err, errlen, "not an Update: no integer update_id");
        goto bad;
    }
    const cJSON *o;
    if ((o = cJSON_GetObjectItemCaseSensitive(u->root, "message")) && cJSON_IsObject(o)) {
        u->kind = TG_K_MESSAGE;
        take_user(u, cJSON_GetObjectItemCaseSensitive(o, "from"));
        take_chat(u, cJSON_GetObjectItemCaseSensitive(o, "chat"));
        u->text = str_at(o, "text");
    } else if ((o = cJSON_GetObjectItemCaseSensitive(u->root, "edited_message")) && cJSON_IsObject(o)) {
        u->kind = TG_K_EDITED;
        take_user(u, cJSON_GetObjectItemCaseSensitive(o, "from"));
        take_chat(u, cJSON_GetObjectItemCaseSensitive(o, "chat"));
    } else if ((o = cJSON_GetObjectItemCaseSensitive(u->root, "callback_query")) && cJSON_IsObject(o)) {
        u->kind = TG_K_CALLBACK;
        take_user(u, cJSON_GetObjectItemCaseSensitive(o, "from"));
        const cJSON *msg = cJSON_GetObjectItemCaseSensitive(o, "message");
        if (cJSON_IsObject(msg))
            take_chat(u, cJSON_GetObjectItemCaseSensitive(msg, "chat"));
        else if (u->user_id > 0) /* inline-mode message: answer the user */
            u->chat_id = u->user_id, u->is_private = 1;
        u->cb_id = str_at(o, "id");
        u->cb_data = str_at(o, "data");
        if (!*u->cb_id) {
            snprintf(err, errlen, "not an Update: callback_query without id");
            goto bad;
        }
    } else if ((o = cJSON_GetObjectItemCaseSensitive(u->root, "my_chat_member")) && cJSON_IsObject(o)) {
        u->kind = TG_K_MEMBER;
        take_user(u, cJSON_GetObjectItemCaseSensitive(o, "from"));
        take_chat(u, cJSON_GetObjectItemCaseSensitive(o, "chat"));
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, "new_chat_member");
        if (cJSON_IsObject(m))
            u->member_status = str_at(m, "status");
    } else {
        u->kind = TG_K_OTHER;
    }
    if (u->chat_id && u->user_id <= 0)
        u->chat_id = 0; /* no sender: nothing to answer */
    return 0;
bad:
    tg_update_release(u);
    return -1;
}

void tg_update_release(struct tg_update *u)
{
    json_arena_free(u->arena); /* the tree, whole */
    u->arena = NULL;
    u->root = NULL;
}

int tg_ingest(struct eng *e, const struct tg_update *u, const char *raw, size_t len, int64_t now_ms)
{
    char tag[48], inbox[48], id[24];
    tg__key_tag(tag, u->chat_id);
    tg__key_user(inbox, "inbox", u->chat_id);
    id[num_fmt_i64(id, u->update_id)] = '\0';
    struct eng_str keys[2] = {{S(SEEN_KEY)}, {S(tag)}};
    struct eng_ctx c;
    eng_ctx_init(&c, e, 0);
    eng_lock_keys(&c, keys, u->chat_id ? 2 : 1);
    double score = (double)now_ms;
    struct eng_str m = {S(id)};
    struct eng_zadd_out out = {0};
    int rc = eng_zadd(&c, S(SEEN_KEY), ENG_ZADD_NX, &score, &m, 1, &out);
    int fresh = rc == 0 && out.added == 1;
    if (fresh && u->chat_id) {
        struct eng_str el = {raw, len};
        int64_t n;
        eng_list_push(&c, S(inbox), ENG_LIST_TAIL, 0, &el, 1, &n);
    }
    eng_unlock(&c);
    return fresh;
}

int64_t tg_seen_prune(struct eng *e, int64_t now_ms)
{
    struct eng_ctx c;
    eng_ctx_init(&c, e, 0);
    struct eng_str k = {S(SEEN_KEY)};
    eng_lock_keys(&c, &k, 1);
    int64_t gone = 0, n = 0, card = 0;
    struct eng_zrange r = {.by = ENG_ZBY_SCORE, .min = -1, .max = (double)(now_ms - tg__opt.dedupe_window * 1000),
                           .maxex = 1, .limit = -1};
    eng_zremrange(&c, S(SEEN_KEY), &r, &gone);
    if (eng_zcard(&c, S(SEEN_KEY), &card) == 0 && tg__opt.dedupe_max > 0 && card > tg__opt.dedupe_max) {
        struct eng_zrange rr = {.by = ENG_ZBY_RANK, .start = 0, .stop = card - tg__opt.dedupe_max - 1, .limit = -1};
        eng_zremrange(&c, S(SEEN_KEY), &rr, &n);
        gone += n;
    }
    eng_unlock(&c);
    return gone;
}
