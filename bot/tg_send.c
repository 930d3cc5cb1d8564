/* tg_send.c: the outbox sender, on threads of their own (bot-api-senders),
 * each with its own libuv loop and HTTP client, beside the app's loop.  A
 * Bot API call costs more than the update that caused it (curl, and the
 * kernel's loopback or network path that a send() runs): on one thread,
 * webhook and sender together were the bot's limit; apart, each has a
 * core's worth, and with several senders the calls have every core the
 * webhook leaves idle.  Chats are split among the senders by a hash of the
 * chat id: a chat's calls always go through the same sender, in order.
 *
 * The app's loop and a sender share only what tg_send_wake() hands over
 * (chat ids, under the sender's mutex, with one uv_async wake-up for a
 * batch) and the engine (through its locks, as every thread).  While the
 * app's loop processes updates it holds the wake-ups (tg_send_hold) and
 * sends them every 64 updates: they are asked for under the chats' locks,
 * and a sender woken per reply took more turns for fewer calls (0.35
 * context switches per reply instead of 0.5-0.6 under tools/bench-webhook).
 * The senders share the bot-wide limits (the token buckets, under the
 * shared mutex; a 429's pause, an atomic) and the counters behind
 * tg_send_metrics() (atomics, and the latency histogram under the shared
 * mutex).
 *
 * Each sender keeps its chats with pending calls in a FIFO; each turn walks
 * it and sends the head call of every chat whose turn has come, within
 *   - bot-rate-global calls/s overall (a token bucket holding 1/20 s of
 *     calls, shared by the senders), and bot-broadcast-rate for calls
 *     flagged BOT_OUT_BULK (the same);
 *   - bot-rate-chat calls/s per chat, and one call in flight per chat, so a
 *     chat's calls go out in the order they were queued;
 *   - bot-api-max-inflight requests in flight in all (an equal share per
 *     sender, at least one).
 * A call leaves the outbox only once Telegram took it (2xx) or refused it
 * for good (400: logged with method and chat).  429 waits
 * parameters.retry_after (that chat, and everyone: the limit is the bot's);
 * 5xx and network errors retry with exponential backoff; 403 marks the user
 * inactive and drops their outbox.  Without bot-token (offline mode) calls
 * are logged and taken off as sent.
 *
 * Engine work is batched: a turn peeks the head calls of up to BATCH chats
 * under one taking of their shards' locks, and the heads to take off after
 * replies wait in a list that is applied, again under one taking of the
 * locks, at the end of the loop iteration (a uv_check) or before the next
 * peek, whichever comes first.  Per call, the lock rounds were the sender's
 * largest cost after the kernel's: the app's loop holds the same locks
 * while it records and processes updates, and every collision cost both
 * threads a futex sleep and a context switch.
 *
 * Not for composing messages (outbox.c, tg_flow.c). */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <uv.h>

#include "app.h"
#include "base/alloc.h"
#include "base/log.h"
#include "base/metrics.h"
#include "beat.h"
#include "engine.h"
#include "httpc.h"
#include "keys.h"
#include "tg.h"
#include "tg_int.h"
#include "tg_send.h"

#define BATCH 64 /* chats peeked, or heads taken off, per taking of the locks */

struct chat {
    int64_t id;
    int64_t next_ms;    /* not before (per-chat rate, retry_after, backoff) */
    int64_t backoff_ms; /* the last backoff (0 after a success) */
    int queued, inflight;
    struct chat *next;  /* in the FIFO */
};

enum { M_SEND, M_ANSWER, M_EDIT, M_OTHER, M__N };
static const char *const method_names[M__N] = {"sendMessage", "answerCallbackQuery", "editMessageText", "other"};
enum { ST_2XX, ST_400, ST_403, ST_429, ST_4XX, ST_5XX, ST_NET, ST_OFFLINE, ST__N };
static const char *const status_names[ST__N] = {"2xx", "400", "403", "429", "4xx", "5xx", "network", "offline"};
enum { W_GLOBAL, W_CHAT, W_BULK, W_RETRY_AFTER, W__N };
static const char *const wait_names[W__N] = {"global", "chat", "bulk", "retry_after"};

/* One sender thread and the chats it owns. */
struct sender {
    struct tg_send *s;
    int index; /* the thread is named tg-send-<index> */
    uv_loop_t loop; /* the sender's own */
    uv_thread_t thread;
    uv_async_t async;
    struct httpc *hc;
    /* handed over by tg_send_wake(), under lock: int64_t chat ids; the
     * loop takes wq whole and leaves wq_spare, its last one emptied, there */
    pthread_mutex_t lock;
    struct buf wq, wq_spare;
    int wake_pending;
    _Atomic int stop_asked;
    uv_timer_t timer;
    struct beat beat; /* the thread's heartbeat, for /healthz */
    int timer_armed;
    int64_t timer_due;
    /* chat table: open addressing on id, rebuilt by gc */
    struct chat **tab;
    size_t cap, used;
    struct chat *head, *tail; /* FIFO of queued chats */
    _Atomic int inflight;
    int64_t last_gc;
    int stopping;
    /* batched engine work (see the top of the file) */
    uv_check_t check;
    struct buf pops; /* struct pop: outbox heads to go */
    struct buf lats; /* double reply latencies not yet in api_latency */
    struct buf peeked[BATCH];
    int found[BATCH];
    /* "<api-url>/bot<token>/", rebuilt when either option changes */
    struct buf url;
    size_t url_base;
    const char *url_api, *url_token;
};

/* What the senders share. */
struct tg_send {
    struct app *a;
    struct eng *e;
    int n;
    struct sender *w; /* n of them */
    unsigned char *held_wake; /* n: a held wake-up for w[i] (tg_send_hold) */
    pthread_mutex_t lock; /* the buckets and api_latency */
    double tokens, bulk_tokens;
    int64_t refill_ms;
    _Atomic int64_t pause_until; /* a 429's retry_after, for everyone */
    _Atomic uint64_t calls[M__N][ST__N];
    _Atomic uint64_t waits[W__N];
    struct metrics_hist api_latency; /* under lock */
};

struct send_req {
    struct sender *w;
    int64_t chat;
    uint64_t tag; /* tg_outbox_entry_tag() of the entry sent */
    int method;
};

static int method_index(const char *m)
{
    for (int i = 0; i < M_OTHER; i++)
        if (!strcmp(method_names[i], m))
            return i;
    return M_OTHER;
}

static uint64_t chat_hash(int64_t id) { return (uint64_t)id * 0x9E3779B97F4A7C15ull; }

/* ---- the chat table ------------------------------------------------------- */

static size_t slot_of(size_t cap, int64_t id) { return (size_t)(chat_hash(id) >> 17) & (cap - 1); }

static void tab_insert(struct chat **tab, size_t cap, struct chat *ch)
{
    size_t i = slot_of(cap, ch->id);
    while (tab[i])
        i = (i + 1) & (cap - 1);
    tab[i] = ch;
}

/* Rebuilds the table at newcap, keeping chats that still matter. */
static void tab_rebuild(struct sender *w, size_t newcap, int64_t now)
{
    struct chat **nt = xcalloc(newcap, sizeof *nt);
    size_t used = 0;
    for (size_t i = 0; i < w->cap; i++) {
        struct chat *ch = w->tab[i];
        if (!ch)
            continue;
        if (now && !ch->queued && !ch->inflight && ch->next_ms <= now) {
            xfree(ch);
            continue;
        }
        tab_insert(nt, newcap, ch);
        used++;
    }
    xfree(w->tab);
    w->tab = nt;
    w->cap = newcap;
    w->used = used;
}

static struct chat *chat_get(struct sender *w, int64_t id)
{
    size_t i = slot_of(w->cap, id);
    for (; w->tab[i]; i = (i + 1) & (w->cap - 1))
        if (w->tab[i]->id == id)
            return w->tab[i];
    if ((w->used + 1) * 4 > w->cap * 3) {
        tab_rebuild(w, w->cap * 2, 0);
        return chat_get(w, id);
    }
    struct chat *ch = xcalloc(1, sizeof *ch);
    ch->id = id;
    w->tab[i] = ch;
    w->used++;
    return ch;
}

static void fifo_push(struct sender *w, struct chat *ch)
{
    if (ch->queued)
        return;
    ch->queued = 1;
    ch->next = NULL;
    if (w->tail)
        w->tail->next = ch;
    else
        w->head = ch;
    w->tail = ch;
}

static struct chat *fifo_pop(struct sender *w)
{
    struct chat *ch = w->head;
    if (ch) {
        w->head = ch->next;
        if (!w->head)
            w->tail = NULL;
        ch->queued = 0;
        ch->next = NULL;
    }
    return ch;
}

/* ---- timing and the shared limits ------------------------------------------ */

static void on_timer(uv_timer_t *t);

static void arm(struct sender *w, int64_t due, int64_t now)
{
    if (w->stopping)
        return;
    if (due < now)
        due = now;
    if (w->timer_armed && w->timer_due <= due)
        return;
    w->timer_armed = 1;
    w->timer_due = due;
    uv_timer_start(&w->timer, on_timer, (uint64_t)(due - now), 0);
}

/* The global buckets hold a twentieth of a second's calls at most: any one
 * second then sees no more than rate * 1.05 calls (Telegram counts per
 * second, and a full second's burst at once would earn 429s). */
static double bucket_cap(int64_t rate) { return fmax(1.0, (double)rate / 20.0); }

/* Under s->lock. */
static void refill(struct tg_send *s, int64_t now)
{
    double dt = (double)(now - s->refill_ms) / 1000.0;
    if (dt <= 0)
        return;
    s->refill_ms = now;
    if (tg__opt.rate_global > 0)
        s->tokens = fmin(bucket_cap(tg__opt.rate_global), s->tokens + dt * (double)tg__opt.rate_global);
    if (tg__opt.rate_bulk > 0)
        s->bulk_tokens = fmin(bucket_cap(tg__opt.rate_bulk), s->bulk_tokens + dt * (double)tg__opt.rate_bulk);
}

/* ms until a bucket at rate holding `have` reaches one token. */
static int64_t wait_for_token(double have, int64_t rate)
{
    return (int64_t)ceil((1.0 - have) * 1000.0 / (double)rate);
}

/* Takes up to want whole tokens from the bucket (*tokens, at rate) and
 * returns how many; with none, *wait_ms says when the next one comes. */
static int take_tokens(struct tg_send *s, double *tokens, int64_t rate, int want, int64_t now, int64_t *wait_ms)
{
    pthread_mutex_lock(&s->lock);
    refill(s, now);
    int got = *tokens >= 1 ? (int)fmin((double)want, floor(*tokens)) : 0;
    *tokens -= got;
    if (!got)
        *wait_ms = wait_for_token(*tokens, rate);
    pthread_mutex_unlock(&s->lock);
    return got;
}

/* Gives back n tokens taken but not spent. */
static void give_tokens(struct tg_send *s, double *tokens, int64_t rate, int n)
{
    if (n <= 0)
        return;
    pthread_mutex_lock(&s->lock);
    *tokens = fmin(bucket_cap(rate), *tokens + n);
    pthread_mutex_unlock(&s->lock);
}

/* A 429: everyone waits until then (the later of two pauses wins). */
static void pause_all(struct tg_send *s, int64_t until)
{
    int64_t cur = atomic_load(&s->pause_until);
    while (until > cur && !atomic_compare_exchange_weak(&s->pause_until, &cur, until))
        ;
}

/* This sender's share of bot-api-max-inflight. */
static int inflight_cap(const struct sender *w)
{
    int64_t cap = tg__opt.max_inflight / w->s->n;
    return cap < 1 ? 1 : (int)cap;
}

/* ---- sending -------------------------------------------------------------- */

/* A head that was sent or given up: it goes only if still the head. */
struct pop {
    int64_t chat;
    uint64_t tag;
};
static void do_pop(struct eng_ctx *c, int64_t chat, void *ud) { tg_outbox_pop_head(c, chat, *(uint64_t *)ud); }
static void do_block(struct eng_ctx *c, int64_t chat, void *ud) { (void)ud, tg_user_set_active(c, chat, 0); }

/* Locks the shards of n chats at once. */
static void lock_chats(struct sender *w, struct eng_ctx *c, const int64_t *ids, size_t n)
{
    char tags[BATCH][48];
    struct eng_str keys[BATCH];
    for (size_t i = 0; i < n; i++) {
        tg__key_tag(tags[i], ids[i]);
        keys[i] = (struct eng_str){tags[i], strlen(tags[i])};
    }
    eng_ctx_init(c, w->s->e, 0);
    eng_lock_keys(c, keys, (int)n);
}

/* fn on one chat, under its shard's lock. */
static void with_chat_lock(struct sender *w, int64_t chat, void (*fn)(struct eng_ctx *c, int64_t chat, void *ud),
                           void *ud)
{
    struct eng_ctx c;
    lock_chats(w, &c, &chat, 1);
    fn(&c, chat, ud);
    eng_unlock(&c);
}

/* The head calls of n chats into w->peeked[i] (w->found[i]: one there). */
static void peek_batch(struct sender *w, struct chat *const *chs, size_t n)
{
    int64_t ids[BATCH];
    for (size_t i = 0; i < n; i++)
        ids[i] = chs[i]->id;
    struct eng_ctx c;
    lock_chats(w, &c, ids, n);
    for (size_t i = 0; i < n; i++)
        w->found[i] = tg_outbox_peek(&c, ids[i], &w->peeked[i]);
    eng_unlock(&c);
}

/* Takes off the heads that replies finished, and records their latencies:
 * before any peek, and once per loop iteration. */
static void flush_pops(struct sender *w)
{
    const struct pop *pops = (const struct pop *)w->pops.p;
    size_t npops = w->pops.len / sizeof *pops;
    for (size_t at = 0; at < npops;) {
        size_t n = npops - at < BATCH ? npops - at : BATCH;
        int64_t ids[BATCH];
        for (size_t i = 0; i < n; i++)
            ids[i] = pops[at + i].chat;
        struct eng_ctx c;
        lock_chats(w, &c, ids, n);
        for (size_t i = 0; i < n; i++)
            tg_outbox_pop_head(&c, pops[at + i].chat, pops[at + i].tag);
        eng_unlock(&c);
        at += n;
    }
    buf_reset(&w->pops);
    const double *lats = (const double *)w->lats.p;
    size_t nlats = w->lats.len / sizeof *lats;
    if (nlats) {
        pthread_mutex_lock(&w->s->lock);
        for (size_t i = 0; i < nlats; i++)
            metrics_hist_observe(&w->s->api_latency, lats[i]);
        pthread_mutex_unlock(&w->s->lock);
        buf_reset(&w->lats);
    }
}

static void on_check(uv_check_t *h) { flush_pops(h->data); }

/* The head call of chat, tagged tag, goes at the next flush_pops(). */
static void pop_later(struct sender *w, int64_t chat, uint64_t tag)
{
    struct pop p = {chat, tag};
    buf_append(&w->pops, &p, sizeof p);
}

static void finish(struct sender *w, struct chat *ch, int64_t now);

static void on_reply(void *ud, const struct httpc_result *r)
{
    struct send_req *q = ud;
    struct sender *w = q->w;
    struct tg_send *s = w->s;
    w->inflight--;
    int64_t now = app_now_ms();
    if (w->stopping) { /* httpc_free() cancelling what was in flight */
        xfree(q);
        return;
    }
    struct chat *ch = chat_get(w, q->chat);
    ch->inflight = 0;
    buf_append(&w->lats, &r->total_s, sizeof r->total_s);
    /* A success needs nothing from the answer; the rest read it for their
     * description and retry_after. */
    int ok = r->status >= 200 && r->status < 300;
    cJSON *root = !ok && r->body ? cJSON_ParseWithLength(r->body, r->body_len) : NULL;
    const cJSON *desc = cJSON_GetObjectItemCaseSensitive(root, "description");
    const char *d = cJSON_IsString(desc) ? desc->valuestring : "";
    int st;
    if (ok) {
        st = ST_2XX;
        pop_later(w, q->chat, q->tag);
        ch->backoff_ms = 0;
        if (tg__opt.rate_chat > 0 && q->method != M_ANSWER)
            ch->next_ms = now + 1000 / tg__opt.rate_chat;
    } else if (r->status == 429) {
        st = ST_429;
        const cJSON *params = cJSON_GetObjectItemCaseSensitive(root, "parameters");
        const cJSON *ra = cJSON_GetObjectItemCaseSensitive(params, "retry_after");
        int64_t wait = cJSON_IsNumber(ra) && ra->valuedouble > 0 ? (int64_t)(ra->valuedouble * 1000) : 1000;
        ch->next_ms = now + wait;
        pause_all(s, now + wait);
        s->waits[W_RETRY_AFTER]++;
        log_info("bot api rate limited", "method=%s chat=%lld retry_after_ms=%lld", method_names[q->method],
                 (long long)q->chat, (long long)wait);
    } else if (r->status == 403) {
        st = ST_403;
        log_info("bot api forbidden: user inactive", "method=%s chat=%lld description=\"%s\"",
                 method_names[q->method], (long long)q->chat, d);
        with_chat_lock(w, q->chat, do_block, NULL);
    } else if (r->status == 400) {
        st = ST_400;
        log_warn("bot api bad request", "method=%s chat=%lld description=\"%s\"", method_names[q->method],
                 (long long)q->chat, d);
        pop_later(w, q->chat, q->tag);
    } else {
        st = r->status == 0 ? ST_NET : r->status >= 500 ? ST_5XX : ST_4XX;
        ch->backoff_ms = ch->backoff_ms ? ch->backoff_ms * 2 : 500;
        if (ch->backoff_ms > 60000)
            ch->backoff_ms = 60000;
        ch->next_ms = now + ch->backoff_ms;
        log_warn("bot api call failed, will retry", "method=%s chat=%lld status=%d error=\"%s\" retry_in_ms=%lld",
                 method_names[q->method], (long long)q->chat, r->status, r->status ? d : r->error ? r->error : "",
                 (long long)ch->backoff_ms);
    }
    s->calls[q->method][st]++;
    cJSON_Delete(root);
    xfree(q);
    finish(w, ch, now);
}

/* After a call: the chat goes back in line when it has more. */
static void finish(struct sender *w, struct chat *ch, int64_t now)
{
    fifo_push(w, ch);
    arm(w, ch->next_ms > now ? ch->next_ms : now, now);
}

/* The URL of method: the "<api-url>/bot<token>/" part is kept. */
static const char *method_url(struct sender *w, const char *method)
{
    if (w->url_api != tg__opt.api_url || w->url_token != tg__opt.token || !w->url.p) {
        buf_reset(&w->url);
        buf_printf(&w->url, "%s/bot%s/", tg__opt.api_url, tg__opt.token);
        w->url_base = w->url.len;
        w->url_api = tg__opt.api_url, w->url_token = tg__opt.token;
    }
    w->url.len = w->url_base;
    buf_puts(&w->url, method);
    return w->url.p;
}

/* Offline mode (no bot-token): calls are logged and taken off as sent. */
static int offline(const struct sender *w) { return !tg__opt.token || !*tg__opt.token || !w->hc; }

/* Sends ch's head call (its turn has come), peeked into entry (found: one
 * was there).  0 sent (or dropped), 1 it must wait (*wait_ms: for the bulk
 * bucket, or a failed start), -1 nothing left. */
static int send_head(struct sender *w, struct chat *ch, int found, struct buf *entry, struct buf *scratch,
                     int64_t now, int64_t *wait_ms)
{
    struct tg_send *s = w->s;
    if (!found)
        return -1;
    struct tg_outbox_entry e;
    uint64_t tag = tg_outbox_entry_tag(entry->p, entry->len);
    if (tg_outbox_entry_read(entry->p, entry->len, &e, scratch) < 0) {
        log_warn("outbox entry unreadable, dropped", "chat=%lld", (long long)ch->id);
        with_chat_lock(w, ch->id, do_pop, &tag);
        return 0;
    }
    int bulk = (e.flags & BOT_OUT_BULK) != 0;
    int method = method_index(e.method);
    if (offline(w)) {
        log_info("bot api call (offline)", "method=%s chat=%lld", e.method, (long long)ch->id);
        with_chat_lock(w, ch->id, do_pop, &tag);
        s->calls[method][ST_OFFLINE]++;
        return 0;
    }
    int64_t rate_bulk = tg__opt.rate_bulk;
    if (bulk && rate_bulk > 0 && !take_tokens(s, &s->bulk_tokens, rate_bulk, 1, now, wait_ms)) {
        s->waits[W_BULK]++;
        return 1;
    }
    struct send_req *q = xmalloc(sizeof *q);
    *q = (struct send_req){.w = w, .chat = ch->id, .tag = tag, .method = method};
    static const char *const headers[] = {"Content-Type: application/json", NULL};
    /* httpc copies the URL and the body: both may be reused right away */
    struct httpc_request req = {.method = "POST", .url = method_url(w, e.method), .headers = headers,
                                .body = e.params, .body_len = e.params_len, .timeout_ms = 30000};
    if (httpc_send(w->hc, &req, on_reply, q) < 0) {
        xfree(q);
        if (bulk && rate_bulk > 0)
            give_tokens(s, &s->bulk_tokens, rate_bulk, 1);
        ch->next_ms = now + 1000;
        *wait_ms = 1000;
        s->calls[method][ST_NET]++;
        return 1;
    }
    ch->inflight = 1;
    w->inflight++;
    return 0;
}

/* Appends ch to a turn's line of chats that must wait (queued: they go
 * back to the FIFO's front at the turn's end); returns the new tail. */
static struct chat **wait_line(struct chat **tail, struct chat *ch)
{
    ch->queued = 1;
    ch->next = NULL;
    *tail = ch;
    return &ch->next;
}

/* One turn over the chats in line. */
static void on_timer(uv_timer_t *t)
{
    struct sender *w = t->data;
    struct tg_send *s = w->s;
    w->timer_armed = 0;
    if (!app_is_master(s->a))
        return; /* a replica sends nothing; app_on_role rewakes us */
    int64_t now = app_now_ms();
    if (now - w->last_gc > 10000) {
        w->last_gc = now;
        tab_rebuild(w, w->cap, now);
    }
    int off = offline(w);
    int64_t rate = tg__opt.rate_global;
    flush_pops(w); /* a head a reply finished must not be peeked again */
    struct buf scratch = BUF_INIT;
    struct chat *waiting = NULL, **wtail = &waiting;
    int64_t due = INT64_MAX;
    int budget = 4096; /* bounded work per turn; the rest in the next */
    while (budget > 0 && w->head) {
        /* Up to BATCH chats whose turn has come, as many as the limits
         * allow now: global tokens are taken for the whole batch, and
         * those its calls did not spend go back. */
        int limit = BATCH, granted = 0;
        if (!off) {
            int64_t pause = atomic_load(&s->pause_until);
            if (now < pause) {
                due = pause < due ? pause : due;
                break;
            }
            int room = inflight_cap(w) - w->inflight;
            if (room <= 0)
                break; /* a reply re-arms */
            limit = room < BATCH ? room : BATCH;
            if (rate > 0) {
                int64_t wait = 0;
                if (!(granted = take_tokens(s, &s->tokens, rate, limit, now, &wait))) {
                    s->waits[W_GLOBAL]++;
                    due = now + wait < due ? now + wait : due;
                    break;
                }
                limit = granted;
            }
        }
        struct chat *batch[BATCH], *ch;
        int nb = 0, sent = 0;
        while (nb < limit && budget > 0 && (ch = w->head)) {
            budget--;
            fifo_pop(w);
            if (ch->inflight)
                continue; /* its reply puts it back */
            if (!off && ch->next_ms > now) {
                s->waits[W_CHAT]++;
                due = ch->next_ms < due ? ch->next_ms : due;
                wtail = wait_line(wtail, ch);
                continue;
            }
            batch[nb++] = ch;
        }
        if (nb)
            peek_batch(w, batch, (size_t)nb);
        for (int i = 0; i < nb; i++) {
            ch = batch[i];
            int64_t wait = 0;
            int rc = send_head(w, ch, w->found[i], &w->peeked[i], &scratch, now, &wait);
            if (rc == 1) {
                due = now + wait < due ? now + wait : due;
                wtail = wait_line(wtail, ch);
            } else if (rc == 0 && !ch->inflight) {
                fifo_push(w, ch); /* offline or dropped: next call in a later round */
            }
            sent += ch->inflight;
        }
        if (granted)
            give_tokens(s, &s->tokens, rate, granted - sent);
        if (!nb)
            break;
    }
    buf_release(&scratch);
    /* Chats that must wait go to the front, in their order. */
    if (waiting) {
        *wtail = w->head;
        w->head = waiting;
        if (!w->tail)
            for (w->tail = waiting; w->tail->next; w->tail = w->tail->next)
                ;
    }
    if (budget <= 0 && w->head)
        due = now;
    else if (w->head && due == INT64_MAX && w->inflight < inflight_cap(w) && off)
        due = now;
    if (due != INT64_MAX)
        arm(w, due, now);
}

/* ---- the threads ------------------------------------------------------------ */

/* On the sender's loop: a chat has new calls. */
static void wake_one(struct sender *w, int64_t chat)
{
    struct chat *ch = chat_get(w, chat);
    if (!ch->inflight)
        fifo_push(w, ch);
    int64_t now = app_now_ms();
    arm(w, ch->next_ms > now ? ch->next_ms : now, now);
}

static void on_async(uv_async_t *h)
{
    struct sender *w = h->data;
    if (w->stopping)
        return;
    if (atomic_load(&w->stop_asked)) {
        /* httpc_free() answers what is in flight ("cancelled", on_reply
         * drops it); the loop ends when the last handle has closed */
        flush_pops(w); /* what Telegram took must not go again */
        w->stopping = 1;
        uv_timer_stop(&w->timer);
        uv_close((uv_handle_t *)&w->timer, NULL);
        uv_check_stop(&w->check);
        uv_close((uv_handle_t *)&w->check, NULL);
        beat_close(&w->beat);
        httpc_free(w->hc);
        w->hc = NULL;
        uv_close((uv_handle_t *)&w->async, NULL);
        return;
    }
    pthread_mutex_lock(&w->lock);
    struct buf q = w->wq;
    w->wq = w->wq_spare;
    w->wake_pending = 0;
    pthread_mutex_unlock(&w->lock);
    const int64_t *chats = (const int64_t *)q.p;
    for (size_t i = 0; i < q.len / sizeof *chats; i++)
        wake_one(w, chats[i]);
    buf_recycle(&q);
    w->wq_spare = q; /* only this thread reads it, under the lock above */
}

static void sender_main(void *arg)
{
    struct sender *w = arg;
    char name[16];
    snprintf(name, sizeof name, "tg-send-%d", w->index);
    pthread_setname_np(pthread_self(), name); /* top -H, /proc/<pid>/task/<tid>/comm */
    uv_run(&w->loop, UV_RUN_DEFAULT);
}

static void sender_init(struct tg_send *s, struct sender *w, int index)
{
    w->s = s;
    w->index = index;
    w->cap = 1024;
    w->tab = xcalloc(w->cap, sizeof *w->tab);
    w->last_gc = app_now_ms();
    pthread_mutex_init(&w->lock, NULL);
    uv_loop_init(&w->loop);
    uv_timer_init(&w->loop, &w->timer);
    w->timer.data = w;
    uv_async_init(&w->loop, &w->async, on_async);
    w->async.data = w;
    uv_check_init(&w->loop, &w->check);
    w->check.data = w;
    uv_check_start(&w->check, on_check);
    beat_init(&w->beat, &w->loop);
    beat_now(&w->beat);
    w->hc = httpc_new(&w->loop);
}

/* From the app's loop: the thread stops, and everything of w goes. */
static void sender_free(struct sender *w)
{
    atomic_store(&w->stop_asked, 1);
    uv_async_send(&w->async);
    uv_thread_join(&w->thread);
    uv_loop_close(&w->loop);
    for (size_t i = 0; i < w->cap; i++)
        xfree(w->tab[i]);
    xfree(w->tab);
    buf_release(&w->wq);
    buf_release(&w->wq_spare);
    buf_release(&w->pops);
    buf_release(&w->lats);
    for (int i = 0; i < BATCH; i++)
        buf_release(&w->peeked[i]);
    buf_release(&w->url);
    pthread_mutex_destroy(&w->lock);
}

/* ---- the interface ---------------------------------------------------------- */

/* The tg_send whose wake-ups this thread holds (tg_send_hold), if any. */
static _Thread_local struct tg_send *held;

void tg_send_wake(struct tg_send *s, int64_t chat)
{
    /* the hash's top bits: the chat table's slots take its middle ones */
    struct sender *w = &s->w[s->n > 1 ? (chat_hash(chat) >> 48) % (uint64_t)s->n : 0];
    pthread_mutex_lock(&w->lock);
    buf_append(&w->wq, &chat, sizeof chat);
    int send = !w->wake_pending;
    w->wake_pending = 1;
    pthread_mutex_unlock(&w->lock);
    if (!send)
        return;
    if (held == s)
        s->held_wake[w->index] = 1; /* tg_send_release() sends it */
    else
        uv_async_send(&w->async);
}

void tg_send_hold(struct tg_send *s) { held = s; }

void tg_send_release(struct tg_send *s)
{
    if (held != s)
        return;
    held = NULL;
    for (int i = 0; i < s->n; i++)
        if (s->held_wake[i]) {
            s->held_wake[i] = 0;
            uv_async_send(&s->w[i].async);
        }
}

struct tg_send *tg_send_new(struct app *a, int nsenders)
{
    struct tg_send *s = xcalloc(1, sizeof *s);
    s->a = a;
    s->e = app_engine(a);
    s->n = nsenders < 1 ? 1 : nsenders;
    s->tokens = bucket_cap(tg__opt.rate_global);
    s->bulk_tokens = bucket_cap(tg__opt.rate_bulk);
    s->refill_ms = app_now_ms();
    metrics_hist_init_latency(&s->api_latency);
    pthread_mutex_init(&s->lock, NULL);
    s->w = xcalloc((size_t)s->n, sizeof *s->w);
    s->held_wake = xcalloc((size_t)s->n, 1);
    for (int i = 0; i < s->n; i++)
        sender_init(s, &s->w[i], i);
    for (int i = 0; i < s->n; i++)
        if (uv_thread_create(&s->w[i].thread, sender_main, &s->w[i]) != 0) {
            log_warn("bot api sender thread not started", "%s", "");
            abort();
        }
    return s;
}

/* The stalest sender's. */
int64_t tg_send_beat_age_ms(struct tg_send *s)
{
    int64_t age = 0;
    for (int i = 0; i < s->n; i++) {
        int64_t a = beat_age_ms(&s->w[i].beat);
        age = a > age ? a : age;
    }
    return age;
}

/* From the app's loop: the threads stop, and everything goes. */
void tg_send_free(struct tg_send *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->n; i++)
        sender_free(&s->w[i]);
    xfree(s->w);
    xfree(s->held_wake);
    pthread_mutex_destroy(&s->lock);
    xfree(s);
}

void tg_send_metrics(struct tg_send *s, struct buf *out)
{
    metrics_family(out, "obentchi_bot_api_calls_total", "counter", "Bot API calls by method and outcome");
    for (int m = 0; m < M__N; m++)
        for (int st = 0; st < ST__N; st++)
            if (s->calls[m][st])
                metrics_sample_int(out, "obentchi_bot_api_calls_total",
                                   (const char *const[]){"method", method_names[m], "status", status_names[st], NULL},
                                   (int64_t)s->calls[m][st]);
    metrics_family(out, "obentchi_bot_api_call_duration_seconds", "histogram", "Bot API call latency");
    pthread_mutex_lock(&s->lock);
    metrics_hist_write(out, "obentchi_bot_api_call_duration_seconds", NULL, &s->api_latency);
    pthread_mutex_unlock(&s->lock);
    metrics_family(out, "obentchi_bot_ratelimit_waits_total", "counter",
                   "Times the sender held a call back for a rate limit, by limit");
    for (int w = 0; w < W__N; w++)
        metrics_sample_int(out, "obentchi_bot_ratelimit_waits_total", (const char *const[]){"limit", wait_names[w], NULL},
                           (int64_t)s->waits[w]);
    metrics_family(out, "obentchi_bot_outbox_depth", "gauge", "Bot API calls waiting in outboxes");
    metrics_sample_int(out, "obentchi_bot_outbox_depth", NULL, bot_outbox_depth(s->a));
    int64_t inflight = 0;
    for (int i = 0; i < s->n; i++)
        inflight += atomic_load(&s->w[i].inflight);
    metrics_family(out, "obentchi_bot_api_inflight", "gauge", "Bot API calls in flight");
    metrics_sample_int(out, "obentchi_bot_api_inflight", NULL, inflight);
}
