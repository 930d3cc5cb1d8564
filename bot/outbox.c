/* outbox.c: the engine side of outgoing Bot API calls.  A call is queued in
 * the chat's outbox (outbox:{u:<chat>}, a list, RPUSH in, head sent first)
 * as one JSON entry {"m":method,"f":flags,"p":{params}}, under the lock of
 * the chat's user tag, in the same step as whatever state change it
 * reports; the sender (tg_send.c) is then woken and takes it from there.
 * Keeping the calls in the engine means a restart or failover loses no
 * answer already promised.  No I/O here. */
#include <assert.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <xxhash.h>

#include "base/alloc.h"
#include "base/log.h"
#include "base/num.h"
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
    tg__key_user(key, "user", chat);
    struct eng_str v;
    return !(eng_hget(c, S(key), S("active"), &v) == 0 && v.n == 1 && v.p[0] == '0');
}

void tg__json_string(struct buf *out, const char *s)
{
    /* A string item on the stack, printed by cJSON (its escaping, no
     * allocation) into a stack buffer when the worst case fits: \u00XX for
     * each byte, plus quotes and the room cJSON asks for. */
    size_t n = strlen(s);
    char tmp[4096];
    if (n > (INT32_MAX - 16) / 6) {
        buf_puts(out, "\"\"");
        return;
    }
    int room = (int)(6 * n + 16);
    char *dst = tmp;
    if ((size_t)room > sizeof tmp) {
        buf_grow(out, (size_t)room);
        dst = out->p + out->len;
    }
    cJSON item = {.type = cJSON_String | cJSON_IsReference, .valuestring = (char *)s};
    if (!cJSON_PrintPreallocated(&item, dst, room, 0)) {
        if (out->p)
            out->p[out->len] = '\0';
        buf_puts(out, "\"\"");
        return;
    }
    if (dst == tmp)
        buf_puts(out, tmp);
    else
        out->len += strlen(dst);
}

void tg__json_int(struct buf *out, int64_t v)
{
    char d[24];
    buf_append(out, d, num_fmt_i64(d, v));
}

/* 1 when m needs no JSON escaping (every Bot API method name). */
static int plain_name(const char *m)
{
    if (!*m)
        return 0;
    for (; *m; m++)
        if (!((*m >= 'a' && *m <= 'z') || (*m >= 'A' && *m <= 'Z') || (*m >= '0' && *m <= '9') || *m == '_'))
            return 0;
    return 1;
}

/* Appends n bytes at *w (the caller sized the destination). */
static char *put(char *w, const char *p, size_t n)
{
    memcpy(w, p, n);
    return w + n;
}

/* Pushes the entry text onto chat's outbox and wakes the sender. */
static int push_entry(struct eng_ctx *c, int64_t chat_id, const char *p, size_t n)
{
    char key[48];
    tg__key_user(key, "outbox", chat_id);
    struct eng_str el = {p, n};
    int64_t len;
    int rc = eng_list_push(c, S(key), ENG_LIST_TAIL, 0, &el, 1, &len);
    if (rc < 0)
        return rc;
    tg__outbox_depth_add(1);
    if (wake_fn)
        wake_fn(wake_ud, chat_id);
    return 1;
}

int bot_outbox_push(struct eng_ctx *c, struct app *a, int64_t chat_id, const char *method, const char *params_json,
                    unsigned flags)
{
    (void)a;
    if (!chat_active(c, chat_id))
        return 0; /* blocked us: a send would only earn a 403 */
    /* {"m":method,"f":flags,"t":ms,"p":params}: the sender reads this
     * exact shape back without a JSON parse (tg_send.c).  A plain method
     * name needs no escaping, so the length is known up front and the
     * usual entry is built on the stack (no heap block per reply). */
    const char *params = params_json && *params_json ? params_json : "{}";
    if (!plain_name(method)) {
        struct buf b = BUF_INIT;
        buf_puts(&b, "{\"m\":");
        tg__json_string(&b, method);
        buf_puts(&b, ",\"f\":");
        tg__json_int(&b, flags);
        buf_puts(&b, ",\"t\":");
        tg__json_int(&b, c->now_ms);
        buf_puts(&b, ",\"p\":");
        buf_puts(&b, params);
        buf_putc(&b, '}');
        int rc = push_entry(c, chat_id, b.p, b.len);
        buf_release(&b);
        return rc;
    }
    char fl[24], ts[24], stack[4096];
    size_t ml = strlen(method), pl = strlen(params), fn = num_fmt_i64(fl, flags), tn = num_fmt_i64(ts, c->now_ms);
    size_t n = 6 + ml + 6 + fn + 5 + tn + 5 + pl + 1;
    char *e = n <= sizeof stack ? stack : xmalloc(n), *w = e;
    w = put(w, "{\"m\":\"", 6);
    w = put(w, method, ml);
    w = put(w, "\",\"f\":", 6);
    w = put(w, fl, fn);
    w = put(w, ",\"t\":", 5);
    w = put(w, ts, tn);
    w = put(w, ",\"p\":", 5);
    w = put(w, params, pl);
    *w++ = '}';
    assert((size_t)(w - e) == n);
    int rc = push_entry(c, chat_id, e, n);
    if (e != stack)
        xfree(e);
    return rc;
}

int tg__outbox_text(struct eng_ctx *c, struct app *a, int64_t chat_id, const char *text)
{
    /* {"chat_id":N,"text":"..."}: on the stack when the worst-case
     * escaping fits, cJSON escaping straight into it */
    char stack[8192];
    size_t tl = strlen(text);
    if (tl < (sizeof stack - 64) / 6) {
        char *w = put(stack, "{\"chat_id\":", 11);
        w += num_fmt_i64(w, chat_id);
        w = put(w, ",\"text\":", 8);
        cJSON item = {.type = cJSON_String | cJSON_IsReference, .valuestring = (char *)text};
        int room = (int)(sizeof stack - (size_t)(w - stack) - 2);
        if (cJSON_PrintPreallocated(&item, w, room, 0)) {
            w += strlen(w);
            *w++ = '}';
            *w = '\0';
            return bot_outbox_push(c, a, chat_id, "sendMessage", stack, 0);
        }
    }
    struct buf p = BUF_INIT;
    buf_puts(&p, "{\"chat_id\":");
    tg__json_int(&p, chat_id);
    buf_puts(&p, ",\"text\":");
    tg__json_string(&p, text);
    buf_putc(&p, '}');
    int rc = bot_outbox_push(c, a, chat_id, "sendMessage", p.p, 0);
    buf_release(&p);
    return rc;
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
    return tg__outbox_text(c, a, uid, text);
}

/* Reads an entry as bot_outbox_push writes it, by position: no JSON tree
 * for the one shape we write ourselves.  0, or -1 for another shape. */
static int entry_fast(const char *p, size_t n, struct tg_outbox_entry *e)
{
    const char *end = p + n;
    if (n < 22 || memcmp(p, "{\"m\":\"", 6) || end[-1] != '}' || end[-2] != '}')
        return -1;
    const char *q = p + 6;
    size_t k = 0;
    while (q < end && ((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') || (*q >= '0' && *q <= '9') || *q == '_') &&
           k < sizeof e->method - 1)
        e->method[k++] = *q++;
    if (!k || end - q < 6 || memcmp(q, "\",\"f\":", 6))
        return -1;
    e->method[k] = '\0';
    q += 6;
    unsigned f = 0;
    if (q >= end || *q < '0' || *q > '9')
        return -1;
    for (; q < end && *q >= '0' && *q <= '9'; q++)
        f = f * 10 + (unsigned)(*q - '0');
    if (end - q < 5 || memcmp(q, ",\"t\":", 5))
        return -1;
    for (q += 5; q < end && ((*q >= '0' && *q <= '9') || *q == '-'); q++)
        ;
    if (end - q < 6 || memcmp(q, ",\"p\":{", 6))
        return -1;
    q += 5;
    e->flags = f;
    e->params = q;
    e->params_len = (size_t)(end - 1 - q);
    return 0;
}

/* Any other shape (an entry left by another version, or written by hand):
 * read as JSON, the params printed into scratch. */
static int entry_slow(const char *p, size_t n, struct tg_outbox_entry *e, struct buf *scratch)
{
    cJSON *root = cJSON_ParseWithLength(p, n);
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(root, "m");
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(root, "f");
    const cJSON *pp = cJSON_GetObjectItemCaseSensitive(root, "p");
    char *body = NULL;
    int rc = -1;
    if (cJSON_IsString(m) && strlen(m->valuestring) < sizeof e->method && cJSON_IsObject(pp) &&
        (body = cJSON_PrintUnformatted(pp))) {
        strcpy(e->method, m->valuestring);
        e->flags = cJSON_IsNumber(f) && f->valuedouble >= 0 ? (unsigned)f->valuedouble : 0;
        buf_reset(scratch);
        buf_puts(scratch, body);
        e->params = scratch->p;
        e->params_len = scratch->len;
        rc = 0;
    }
    cJSON_free(body);
    cJSON_Delete(root);
    return rc;
}

int tg_outbox_entry_read(const char *p, size_t n, struct tg_outbox_entry *e, struct buf *scratch)
{
    if (entry_fast(p, n, e) == 0)
        return 0;
    return entry_slow(p, n, e, scratch);
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
    tg__key_user(key, "outbox", chat);
    struct peek pk = {out, 0};
    buf_reset(out);
    if (eng_list_range(c, S(key), 0, 0, NULL, peek_elem, &pk) < 0)
        return 0;
    return pk.found;
}

static void drop_elem(void *ud, const char *p, size_t n) { (void)ud, (void)p, (void)n; }

uint64_t tg_outbox_entry_tag(const char *p, size_t n) { return XXH3_64bits(p, n); }

struct head_tag {
    uint64_t tag;
    int found;
};
static void tag_elem(void *ud, const char *p, size_t n)
{
    struct head_tag *h = ud;
    h->tag = tg_outbox_entry_tag(p, n);
    h->found = 1;
}

int tg_outbox_pop_head(struct eng_ctx *c, int64_t chat, uint64_t tag)
{
    char key[48];
    tg__key_user(key, "outbox", chat);
    /* The head may have changed since it was peeked: the outbox dropped
     * (the user blocked us) and refilled.  Only the entry sent goes. */
    struct head_tag h = {0, 0};
    if (eng_list_range(c, S(key), 0, 0, NULL, tag_elem, &h) < 0 || !h.found || h.tag != tag)
        return 0;
    if (eng_list_pop(c, S(key), ENG_LIST_HEAD, 1, NULL, drop_elem, NULL) < 0)
        return 0;
    tg__outbox_depth_add(-1);
    return 1;
}

int64_t tg_outbox_drop(struct eng_ctx *c, int64_t chat)
{
    char key[48];
    tg__key_user(key, "outbox", chat);
    int64_t n = 0;
    eng_list_len(c, S(key), &n);
    if (n > 0) {
        eng_del(c, S(key));
        tg__outbox_depth_add(-n);
    }
    return n;
}
