/* outbox.c: the engine side of outgoing Bot API calls.  A call is queued in
 * the chat's outbox (outbox:{u:<chat>}, a list, RPUSH in, head sent first)
 * as one JSON entry {"m":method,"f":flags,"p":{params}}, under the lock of
 * the chat's user tag, in the same step as whatever state change it
 * reports; the sender (tg_send.c) is then woken and takes it from there.
 * Keeping the calls in the engine means a restart or failover loses no
 * answer already promised.  No I/O here. */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "base/alloc.h"
#include "base/log.h"
#include "hash.h"
#include "keys.h"
#include "list.h"
#include "tg.h"
#include "tg_int.h"

#define S(x) (x), strlen(x)

static void (*wake_fn)(void *ud, int64_t chat);
static void *wake_ud;
static _Atomic int64_t depth;

void tg__set_outbox_wake(void (*fn)(void *ud, int64_t chat), void *ud)
{
    wake_fn = fn;
    wake_ud = ud;
}

void tg__outbox_depth_add(int64_t n) { atomic_fetch_add(&depth, n); }

int64_t bot_outbox_depth(struct app *a)
{
    (void)a;
    int64_t d = atomic_load(&depth);
    return d < 0 ? 0 : d;
}

/* 0 when the user record says they blocked the bot. */
static int chat_active(struct eng_ctx *c, int64_t chat)
{
    char key[48];
    key_user(key, sizeof key, "user", chat);
    struct eng_str v;
    return !(eng_hget(c, S(key), S("active"), &v) == 0 && v.n == 1 && v.p[0] == '0');
}

int bot_outbox_push(struct eng_ctx *c, struct app *a, int64_t chat_id, const char *method, const char *params_json,
                    unsigned flags)
{
    (void)a;
    if (!chat_active(c, chat_id))
        return 0; /* blocked us: a send would only earn a 403 */
    struct buf b = BUF_INIT;
    cJSON *ms = cJSON_CreateString(method);
    char *m = cJSON_PrintUnformatted(ms); /* the method name, escaped */
    cJSON_Delete(ms);
    buf_printf(&b, "{\"m\":%s,\"f\":%u,\"t\":%lld,\"p\":%s}", m ? m : "\"\"", flags, (long long)c->now_ms,
               params_json && *params_json ? params_json : "{}");
    cJSON_free(m);
    char key[48];
    key_user(key, sizeof key, "outbox", chat_id);
    struct eng_str el = {b.p, b.len};
    int64_t len;
    int rc = eng_list_push(c, S(key), ENG_LIST_TAIL, 0, &el, 1, &len);
    buf_release(&b);
    if (rc < 0)
        return rc;
    tg__outbox_depth_add(1);
    if (wake_fn)
        wake_fn(wake_ud, chat_id);
    return 1;
}

int bot_tell(struct eng_ctx *c, struct app *a, int64_t uid, const char *msg_key, ...)
{
    const char *fmt = tg_msg(tg_user_lang(c, uid), msg_key);
    if (!fmt) {
        log_warn("unknown message key", "key=%s", msg_key);
        return -1;
    }
    char text[4096];
    va_list ap;
    va_start(ap, msg_key);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    cJSON *p = cJSON_CreateObject();
    cJSON_AddNumberToObject(p, "chat_id", (double)uid);
    cJSON_AddStringToObject(p, "text", text);
    char *js = cJSON_PrintUnformatted(p);
    int rc = bot_outbox_push(c, a, uid, "sendMessage", js, 0);
    cJSON_free(js);
    cJSON_Delete(p);
    return rc;
}

struct peek {
    struct buf *out;
    int found;
};
static void peek_elem(void *ud, const char *p, size_t n)
{
    struct peek *pk = ud;
    buf_append(pk->out, p, n);
    pk->found = 1;
}

int tg_outbox_peek(struct eng_ctx *c, int64_t chat, struct buf *out)
{
    char key[48];
    key_user(key, sizeof key, "outbox", chat);
    struct peek pk = {out, 0};
    buf_reset(out);
    if (eng_list_range(c, S(key), 0, 0, NULL, peek_elem, &pk) < 0)
        return 0;
    return pk.found;
}

static void drop_elem(void *ud, const char *p, size_t n) { (void)ud, (void)p, (void)n; }

int tg_outbox_pop_head(struct eng_ctx *c, int64_t chat)
{
    char key[48];
    key_user(key, sizeof key, "outbox", chat);
    if (eng_list_pop(c, S(key), ENG_LIST_HEAD, 1, NULL, drop_elem, NULL) < 0)
        return 0;
    tg__outbox_depth_add(-1);
    return 1;
}

int64_t tg_outbox_drop(struct eng_ctx *c, int64_t chat)
{
    char key[48];
    key_user(key, sizeof key, "outbox", chat);
    int64_t n = 0;
    eng_list_len(c, S(key), &n);
    if (n > 0) {
        eng_del(c, S(key));
        tg__outbox_depth_add(-n);
    }
    return n;
}
