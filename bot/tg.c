/* tg.c: the Telegram part (bot_part_tg): its options, the webhook route,
 * the processing turns and the part's metrics.
 *
 * POST /telegram/webhook, in order: a replica answers 503 (Telegram and
 * nginx retry, and reach the master); a wrong X-Telegram-Bot-Api-Secret-Token
 * gets 401 and nothing is stored; a body that is not JSON or not an Update
 * gets 400; a repeated update_id gets 200 and is ignored; anything else is
 * recorded in the engine (tg_ingest: seen + the chat's inbox) and answered
 * 200 at once.  Processing happens after the answer, on a zero timer: the
 * chats with recorded updates wait in a FIFO (a chat once per update), and
 * each visit processes the head of that chat's inbox, so a chat's updates
 * run in order while chats interleave.  An update leaves the inbox in the
 * same locked step as its effects, so a crash reprocesses rather than
 * loses; a new master picks up every inbox and outbox left over.
 *
 * The update the webhook decoded is kept with its FIFO entry (up to
 * KEEP_DECODED of them), so processing does not parse the same JSON again:
 * the inbox head taken off in the processing step is checked to be that
 * very update (length and hash of its text) and decoded afresh only when it
 * is not (an inbox changed behind our back, work recovered from the engine).
 *
 * Not here: what an update means (tg_flow.c), sending (tg_send.c). */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>
#include <xxhash.h>

#include "app.h"
#include "base/alloc.h"
#include "base/log.h"
#include "base/metrics.h"
#include "http.h"
#include "keys.h"
#include "list.h"
#include "parts.h"
#include "tg.h"
#include "tg_int.h"
#include "tg_send.h"

#define S(x) (x), strlen(x)

#define I(n, f, d, lo, hi) {.name = n, .type = CFG_INT, .storage = &tg__opt.f, .dflt = d, .min = lo, .max = hi}
#define STR(n, f, d, fl) {.name = n, .type = CFG_STRING, .flags = fl, .storage = &tg__opt.f, .dflt = d}
static const struct cfg_option options[] = {
    STR("bot-token", token, "", CFG_SECRET | CFG_FILE_OK),
    STR("bot-api-url", api_url, "https://api.telegram.org", 0),
    STR("bot-webhook-secret", secret, "", CFG_SECRET | CFG_FILE_OK),
    I("bot-session-ttl", session_ttl, "86400", 1, 365 * 86400),
    I("bot-rate-global", rate_global, "30", 0, 1000000),
    I("bot-rate-chat", rate_chat, "1", 0, 1000000),
    I("bot-broadcast-rate", rate_bulk, "30", 0, 1000000),
    I("bot-admin-chat", admin_chat, "0", INT64_MIN, INT64_MAX),
    STR("currency", currency, "USDT", 0),
    I("bot-max-withdrawal", max_withdrawal, "1000000", 1, INT64_MAX),
    I("bot-max-deposit", max_deposit, "10000000", 1, INT64_MAX),
    I("bot-address-min-length", addr_min, "26", 1, 127),
    I("bot-address-max-length", addr_max, "64", 1, 127),
    STR("bot-address-charset", addr_charset, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", 0),
    I("bot-dedupe-window", dedupe_window, "86400", 1, 30 * 86400),
    I("bot-dedupe-max", dedupe_max, "1000000", 0, INT64_MAX),
    I("bot-api-max-inflight", max_inflight, "64", 1, 10000),
    {.name = "bot-api-senders", .type = CFG_INT, .flags = CFG_IMMUTABLE, .storage = &tg__opt.senders, .dflt = "0",
     .min = 0, .max = 64},
};

static void tg_options(struct cfg *c) { cfg_register(c, options, sizeof options / sizeof *options); }

/* ---- state ----------------------------------------------------------------- */

enum { O_PROCESSED, O_IGNORED, O_DUPLICATE, O_REJECTED, O_ERROR, O__N };
static const char *const outcome_names[O__N] = {"processed", "ignored", "duplicate", "rejected", "error"};

/* Decoded updates kept for processing at most (each holds a JSON tree of
 * about 2 KB); past it the FIFO holds only chat ids and processing decodes
 * from the engine. */
#define KEEP_DECODED 8192
#define SENDER_STALL_MS 5000 /* as /healthz allows the bot loop */
#define PROC_WAKE_EVERY 64 /* updates processed between wake-ups of the senders */

/* One recorded update waiting: its chat, and the webhook's decoding of it
 * when kept (has_u), with the length and hash of the text it came from. */
struct pending {
    int64_t chat;
    int has_u;
    size_t len;
    uint64_t hash;
    struct tg_update u;
};

struct tg {
    struct app *a;
    struct eng *e;
    struct tg_send *send;
    uv_timer_t proc_timer, prune_timer;
    int proc_armed;
    /* FIFO of recorded updates, one per update (a ring) */
    struct pending *ring;
    size_t rcap, rhead, rlen;
    size_t ndecoded; /* entries with has_u */
    uint64_t updates[TG_K__COUNT][O__N];
    uint64_t webhook_status[6]; /* 200 400 401 413 503 other */
    struct metrics_hist latency;
    int closing;
};

/* XXH3 of the update's text: tells the kept decoding belongs to the
 * inbox head taken off (not a security check: the inbox is ours). */
static uint64_t text_hash(const char *p, size_t n) { return XXH3_64bits(p, n); }

/* Queues an update of chat; u (may be NULL) is taken when kept, released
 * otherwise. */
static void ring_push(struct tg *t, int64_t chat, struct tg_update *u, const char *raw, size_t len)
{
    if (t->rlen == t->rcap) {
        size_t ncap = t->rcap ? t->rcap * 2 : 1024;
        struct pending *n = xmalloc(ncap * sizeof *n);
        for (size_t i = 0; i < t->rlen; i++)
            n[i] = t->ring[(t->rhead + i) % t->rcap];
        xfree(t->ring);
        t->ring = n, t->rcap = ncap, t->rhead = 0;
    }
    struct pending *p = &t->ring[(t->rhead + t->rlen++) % t->rcap];
    p->chat = chat;
    p->has_u = 0;
    if (u && t->ndecoded < KEEP_DECODED) {
        p->has_u = 1;
        p->u = *u;
        p->len = len;
        p->hash = text_hash(raw, len);
        t->ndecoded++;
    } else if (u) {
        tg_update_release(u);
    }
}

static struct pending ring_pop(struct tg *t)
{
    struct pending p = t->ring[t->rhead];
    t->rhead = (t->rhead + 1) % t->rcap;
    t->rlen--;
    if (p.has_u)
        t->ndecoded--;
    return p;
}

/* Empties the FIFO (recovery rebuilds it from the engine; stop). */
static void ring_clear(struct tg *t)
{
    while (t->rlen) {
        struct pending p = ring_pop(t);
        if (p.has_u)
            tg_update_release(&p.u);
    }
    t->rhead = 0;
}

static void on_proc(uv_timer_t *h);

static void proc_arm(struct tg *t)
{
    if (!t->proc_armed && !t->closing) {
        t->proc_armed = 1;
        uv_timer_start(&t->proc_timer, on_proc, 0, 0);
    }
}

static void outbox_wake(void *ud, int64_t chat)
{
    struct tg *t = ud;
    if (t->send)
        tg_send_wake(t->send, chat);
}

/* ---- processing ------------------------------------------------------------- */

static void head_elem(void *ud, const char *p, size_t n) { buf_append(ud, p, n); }
static void drop_elem(void *ud, const char *p, size_t n) { (void)ud, (void)p, (void)n; }

/* Processes the oldest recorded update of p's chat: does what it asks and
 * takes it off the inbox, in one locked step. */
static void process_one(struct tg *t, struct pending *p, struct buf *raw)
{
    char bufs[3][48], inbox[48];
    struct eng_str keys[3];
    int64_t chat = p->chat;
    int n = tg_flow_lock_keys(chat, bufs, keys);
    tg__key_user(inbox, "inbox", chat);
    struct eng_ctx c;
    eng_ctx_init(&c, t->e, 0);
    eng_lock_keys(&c, keys, n);
    buf_reset(raw);
    if (eng_list_range(&c, S(inbox), 0, 0, NULL, head_elem, raw) < 0 || !raw->len) {
        eng_unlock(&c);
        if (p->has_u)
            tg_update_release(&p->u);
        return;
    }
    struct tg_update u;
    char err[128];
    int kind = TG_K_OTHER, outcome = O_ERROR, have = 0;
    if (p->has_u && p->len == raw->len && p->hash == text_hash(raw->p, raw->len)) {
        u = p->u, have = 1;
    } else {
        if (p->has_u)
            tg_update_release(&p->u);
        if (tg_update_decode(raw->p, raw->len, &u, err, sizeof err) == 0)
            have = 1;
        else
            log_warn("recorded update unreadable, dropped", "chat=%lld error=\"%s\"", (long long)chat, err);
    }
    if (have) {
        kind = u.kind;
        const char *o = tg_flow_handle(&c, t->a, &u);
        outcome = !strcmp(o, "processed") ? O_PROCESSED : O_IGNORED;
        tg_update_release(&u);
    }
    /* taken off after its effects: whatever sees part of this step (a
     * snapshot, a replica) sees the update still waiting, so a crash
     * reprocesses it rather than losing it */
    eng_list_pop(&c, S(inbox), ENG_LIST_HEAD, 1, NULL, drop_elem, NULL);
    eng_unlock(&c);
    t->updates[kind][outcome]++;
}

static void on_proc(uv_timer_t *h)
{
    struct tg *t = h->data;
    t->proc_armed = 0;
    if (!app_is_master(t->a))
        return;
    struct buf raw = BUF_INIT;
    /* Bounded per turn so the listener keeps answering under a burst.  The
     * senders are woken once per PROC_WAKE_EVERY updates, not per reply. */
    if (t->send)
        tg_send_hold(t->send);
    for (int i = 0; i < 1024 && t->rlen; i++) {
        struct pending p = ring_pop(t);
        process_one(t, &p, &raw);
        if (t->send && i % PROC_WAKE_EVERY == PROC_WAKE_EVERY - 1) {
            tg_send_release(t->send);
            tg_send_hold(t->send);
        }
    }
    if (t->send)
        tg_send_release(t->send);
    buf_release(&raw);
    if (t->rlen)
        proc_arm(t);
}

/* ---- recovery: a master takes over inboxes and outboxes left in the engine -- */

struct found {
    int64_t *ids;
    size_t n, cap;
    size_t plen;
};
static void found_key(void *ud, const char *k, size_t n)
{
    struct found *f = ud;
    int64_t id = 0;
    /* "<prefix>:{u:<digits>}" */
    if (n < f->plen + 5 || k[n - 1] != '}')
        return;
    for (size_t i = f->plen + 4; i < n - 1; i++) {
        if (k[i] < '0' || k[i] > '9')
            return;
        id = id * 10 + (k[i] - '0');
    }
    if (f->n == f->cap) {
        f->cap = f->cap ? f->cap * 2 : 64;
        f->ids = xrealloc(f->ids, f->cap * sizeof *f->ids);
    }
    f->ids[f->n++] = id;
}

static void scan_prefix(struct tg *t, const char *prefix, struct found *f)
{
    char pat[32];
    snprintf(pat, sizeof pat, "%s:{u:*}", prefix);
    f->plen = strlen(prefix);
    uint64_t cur = 0;
    do
        cur = eng_scan(t->e, 0, cur, S(pat), ENG_T_LIST, 1000, found_key, f);
    while (cur);
}

static int64_t list_len(struct tg *t, const char *prefix, int64_t chat)
{
    char key[48];
    tg__key_user(key, prefix, chat);
    struct eng_str k = {S(key)};
    struct eng_ctx c;
    eng_ctx_init(&c, t->e, 0);
    eng_lock_keys(&c, &k, 1);
    int64_t n = 0;
    eng_list_len(&c, S(key), &n);
    eng_unlock(&c);
    return n;
}

static void recover(struct tg *t)
{
    struct found in = {0}, out = {0};
    scan_prefix(t, "inbox", &in);
    ring_clear(t);
    for (size_t i = 0; i < in.n; i++)
        for (int64_t k = list_len(t, "inbox", in.ids[i]); k > 0; k--)
            ring_push(t, in.ids[i], NULL, NULL, 0);
    scan_prefix(t, "outbox", &out);
    int64_t depth = 0;
    for (size_t i = 0; i < out.n; i++)
        depth += list_len(t, "outbox", out.ids[i]);
    tg__outbox_depth_add(depth - bot_outbox_depth(t->a));
    for (size_t i = 0; i < out.n; i++)
        outbox_wake(t, out.ids[i]);
    if (in.n || out.n)
        log_info("bot recovered pending work", "updates=%zu outbox_chats=%zu outbox_calls=%lld", t->rlen, out.n,
                 (long long)depth);
    xfree(in.ids);
    xfree(out.ids);
    proc_arm(t);
}

static void on_role(void *ud, int is_master)
{
    struct tg *t = ud;
    if (is_master)
        recover(t);
}

static void on_prune(uv_timer_t *h)
{
    struct tg *t = h->data;
    if (app_is_master(t->a))
        tg_seen_prune(t->e, app_now_ms());
}

/* ---- the webhook -------------------------------------------------------------- */

static void answer(struct tg *t, const struct http_request *req, struct http_response *res, int status,
                   const char *json)
{
    http_reply_json(res, status, json, strlen(json));
    int i = status == 200 ? 0 : status == 400 ? 1 : status == 401 ? 2 : status == 413 ? 3 : status == 503 ? 4 : 5;
    t->webhook_status[i]++;
    metrics_hist_observe(&t->latency, (double)((int64_t)uv_hrtime() - req->start_ns) / 1e9);
}

static void on_webhook(void *ud, const struct http_request *req, struct http_response *res)
{
    struct tg *t = ud;
    if (!app_is_master(t->a)) {
        answer(t, req, res, 503, "{\"ok\":false,\"description\":\"not the master\"}");
        return;
    }
    if (tg__opt.secret && *tg__opt.secret) {
        const char *got = http_header(req, "X-Telegram-Bot-Api-Secret-Token");
        if (!got || !http_secret_eq(got, strlen(got), tg__opt.secret, strlen(tg__opt.secret))) {
            answer(t, req, res, 401, "{\"ok\":false,\"description\":\"bad secret token\"}");
            return;
        }
    }
    struct tg_update u;
    char err[128], js[192];
    if (tg_update_decode(req->body, req->body_len, &u, err, sizeof err) < 0) {
        t->updates[TG_K_OTHER][O_REJECTED]++;
        snprintf(js, sizeof js, "{\"ok\":false,\"description\":\"%s\"}", err);
        answer(t, req, res, 400, js);
        return;
    }
    int fresh = tg_ingest(t->e, &u, req->body, req->body_len, app_now_ms());
    if (!fresh)
        t->updates[u.kind][O_DUPLICATE]++;
    else if (!u.chat_id)
        t->updates[u.kind][O_IGNORED]++;
    answer(t, req, res, 200, "{\"ok\":true}");
    if (fresh && u.chat_id) {
        ring_push(t, u.chat_id, &u, req->body, req->body_len); /* takes u */
        proc_arm(t);
    } else {
        tg_update_release(&u);
    }
}

/* ---- metrics ---------------------------------------------------------------------- */

static void collect(void *ud, struct buf *out)
{
    struct tg *t = ud;
    metrics_family(out, "obentchi_bot_updates_total", "counter", "Telegram updates by kind and outcome");
    for (int k = 0; k < TG_K__COUNT; k++)
        for (int o = 0; o < O__N; o++)
            if (t->updates[k][o])
                metrics_sample_int(out, "obentchi_bot_updates_total",
                                   (const char *const[]){"kind", tg__kind_names[k], "outcome", outcome_names[o], NULL},
                                   (int64_t)t->updates[k][o]);
    static const char *const codes[6] = {"200", "400", "401", "413", "503", "other"};
    metrics_family(out, "obentchi_bot_webhook_requests_total", "counter", "Webhook answers by status");
    for (int i = 0; i < 6; i++)
        metrics_sample_int(out, "obentchi_bot_webhook_requests_total", (const char *const[]){"status", codes[i], NULL},
                           (int64_t)t->webhook_status[i]);
    metrics_family(out, "obentchi_bot_webhook_duration_seconds", "histogram",
                   "Time from a webhook request's first byte to its answer");
    metrics_hist_write(out, "obentchi_bot_webhook_duration_seconds", NULL, &t->latency);
    metrics_family(out, "obentchi_bot_updates_pending", "gauge", "Recorded updates not processed yet");
    metrics_sample_int(out, "obentchi_bot_updates_pending", NULL, (int64_t)t->rlen);
    if (t->send)
        tg_send_metrics(t->send, out);
}

/* ---- the part ------------------------------------------------------------------------ */

/* /healthz: the sender thread turns (its loop ran its heartbeat lately). */
static const char *sender_stalled(void *ud)
{
    struct tg *t = ud;
    return t->send && tg_send_beat_age_ms(t->send) > SENDER_STALL_MS ? "bot api sender stalled" : NULL;
}

/* bot-api-senders, or one per core (at most 8) when 0: the option then
 * shows the number chosen (CONFIG GET). */
static int sender_count(void)
{
    if (tg__opt.senders <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        tg__opt.senders = n < 1 ? 1 : n > 8 ? 8 : n;
    }
    return (int)tg__opt.senders;
}

static int tg_start(struct app *a, char *err, size_t errlen)
{
    (void)err, (void)errlen;
    struct tg *t = xcalloc(1, sizeof *t);
    t->a = a;
    t->e = app_engine(a);
    metrics_hist_init_latency(&t->latency);
    uv_timer_init(app_loop(a), &t->proc_timer);
    uv_timer_init(app_loop(a), &t->prune_timer);
    t->proc_timer.data = t->prune_timer.data = t;
    uv_timer_start(&t->prune_timer, on_prune, 10000, 10000);
    t->send = tg_send_new(a, sender_count());
    tg__set_outbox_wake(outbox_wake, t);
    if (app_http(a))
        http_route(app_http(a), "POST", "/telegram/webhook", on_webhook, t);
    app_add_collector(a, collect, t);
    app_add_live_check(a, sender_stalled, t);
    app_on_role(a, on_role, t);
    app_set_part_state(a, "tg", t);
    if (!tg__opt.token || !*tg__opt.token)
        log_info("bot offline mode: no bot-token, Bot API calls are logged and marked sent", "%s", "");
    if (!tg__opt.secret || !*tg__opt.secret)
        log_warn("bot-webhook-secret is not set: the webhook accepts any caller", "%s", "");
    if (app_is_master(a))
        recover(t);
    return 0;
}

static void tg_closed(uv_handle_t *h)
{
    struct tg *t = h->data;
    if (--t->closing == 0) {
        ring_clear(t);
        xfree(t->ring);
        xfree(t);
    }
}

static void tg_stop(struct app *a)
{
    struct tg *t = app_part_state(a, "tg");
    if (!t)
        return;
    tg__set_outbox_wake(NULL, NULL);
    tg_send_free(t->send);
    t->send = NULL;
    t->closing = 2;
    uv_timer_stop(&t->proc_timer);
    uv_timer_stop(&t->prune_timer);
    uv_close((uv_handle_t *)&t->proc_timer, tg_closed);
    uv_close((uv_handle_t *)&t->prune_timer, tg_closed);
    app_set_part_state(a, "tg", NULL);
}

const struct app_part bot_part_tg = {
    .name = "tg",
    .options = tg_options,
    .start = tg_start,
    .stop = tg_stop,
};
