/* tg_send.c: the outbox sender, on a thread of its own with its own libuv
 * loop and HTTP client, beside the app's loop.  A Bot API call costs more
 * than the update that caused it (curl, and the kernel's loopback or network
 * path that a send() runs): on one thread, webhook and sender together were
 * the bot's limit; apart, each has a core's worth.  The two share only what
 * tg_send_wake() hands over (chat ids, under a mutex, with one uv_async
 * wake-up for a batch), the engine (through its locks, as every thread), and
 * the counters behind tg_send_metrics() (atomics, and the latency histogram
 * under the mutex).  Chats with pending calls
 * wait in a FIFO; each turn walks it and sends the head call of every chat
 * whose turn has come, within
 *   - bot-rate-global calls/s overall (a token bucket holding 1/20 s of
 *     calls), and bot-broadcast-rate for calls flagged BOT_OUT_BULK;
 *   - bot-rate-chat calls/s per chat, and one call in flight per chat, so a
 *     chat's calls go out in the order they were queued;
 *   - bot-api-max-inflight requests in flight in all.
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
#include "base/clock.h"
#include "base/log.h"
#include "base/metrics.h"
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

struct tg_send {
    struct app *a;
    struct eng *e;
    uv_loop_t loop; /* the sender's own */
    uv_thread_t thread;
    uv_async_t async;
    struct httpc *hc;
    /* handed over by tg_send_wake(), under lock */
    pthread_mutex_t lock;
    int64_t *wq;
    size_t wlen, wcap;
    int wake_pending;
    _Atomic int stop_asked;
    uv_timer_t timer;
    uv_timer_t beat; /* the thread's heartbeat, for /healthz */
    _Atomic int64_t beat_ms;
    int timer_armed;
    int64_t timer_due;
    /* chat table: open addressing on id, rebuilt by gc */
    struct chat **tab;
    size_t cap, used;
    struct chat *head, *tail; /* FIFO of queued chats */
    _Atomic int inflight;
    double tokens, bulk_tokens;
    int64_t refill_ms;
    int64_t pause_until; /* a 429's retry_after, for everyone */
    int64_t last_gc;
    int stopping;
    _Atomic uint64_t calls[M__N][ST__N];
    _Atomic uint64_t waits[W__N];
    struct metrics_hist api_latency; /* under lock */
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

struct send_req {
    struct tg_send *s;
    int64_t chat;
    uint64_t tag; /* tg_outbox_entry_tag() of the entry sent */
    int method;
    int bulk;
};

static int method_index(const char *m)
{
    for (int i = 0; i < M_OTHER; i++)
        if (!strcmp(method_names[i], m))
            return i;
    return M_OTHER;
}

/* ---- the chat table ------------------------------------------------------- */

static size_t slot_of(size_t cap, int64_t id)
{
    uint64_t h = (uint64_t)id * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 17) & (cap - 1);
}

static void tab_insert(struct chat **tab, size_t cap, struct chat *ch)
{
    size_t i = slot_of(cap, ch->id);
    while (tab[i])
        i = (i + 1) & (cap - 1);
    tab[i] = ch;
}

/* Rebuilds the table at newcap, keeping chats that still matter. */
static void tab_rebuild(struct tg_send *s, size_t newcap, int64_t now)
{
    struct chat **nt = xcalloc(newcap, sizeof *nt);
    size_t used = 0;
    for (size_t i = 0; i < s->cap; i++) {
        struct chat *ch = s->tab[i];
        if (!ch)
            continue;
        if (now && !ch->queued && !ch->inflight && ch->next_ms <= now) {
            xfree(ch);
            continue;
        }
        tab_insert(nt, newcap, ch);
        used++;
    }
    xfree(s->tab);
    s->tab = nt;
    s->cap = newcap;
    s->used = used;
}

static struct chat *chat_get(struct tg_send *s, int64_t id)
{
    size_t i = slot_of(s->cap, id);
    for (; s->tab[i]; i = (i + 1) & (s->cap - 1))
        if (s->tab[i]->id == id)
            return s->tab[i];
    if ((s->used + 1) * 4 > s->cap * 3) {
        tab_rebuild(s, s->cap * 2, 0);
        return chat_get(s, id);
    }
    struct chat *ch = xcalloc(1, sizeof *ch);
    ch->id = id;
    s->tab[i] = ch;
    s->used++;
    return ch;
}

static void fifo_push(struct tg_send *s, struct chat *ch)
{
    if (ch->queued)
        return;
    ch->queued = 1;
    ch->next = NULL;
    if (s->tail)
        s->tail->next = ch;
    else
        s->head = ch;
    s->tail = ch;
}

static struct chat *fifo_pop(struct tg_send *s)
{
    struct chat *ch = s->head;
    if (ch) {
        s->head = ch->next;
        if (!s->head)
            s->tail = NULL;
        ch->queued = 0;
        ch->next = NULL;
    }
    return ch;
}

/* ---- timing ------------------------------------------------------------- */

static void on_timer(uv_timer_t *t);

static void arm(struct tg_send *s, int64_t due, int64_t now)
{
    if (s->stopping)
        return;
    if (due < now)
        due = now;
    if (s->timer_armed && s->timer_due <= due)
        return;
    s->timer_armed = 1;
    s->timer_due = due;
    uv_timer_start(&s->timer, on_timer, (uint64_t)(due - now), 0);
}

/* The global buckets hold a twentieth of a second's calls at most: any one
 * second then sees no more than rate * 1.05 calls (Telegram counts per
 * second, and a full second's burst at once would earn 429s). */
static double bucket_cap(int64_t rate) { return fmax(1.0, (double)rate / 20.0); }

static void refill(struct tg_send *s, int64_t now)
{
    double dt = (double)(now - s->refill_ms) / 1000.0;
    s->refill_ms = now;
    if (dt <= 0)
        return;
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

/* ---- sending -------------------------------------------------------------- */

/* A head that was sent or given up: it goes only if still the head. */
struct pop {
    int64_t chat;
    uint64_t tag;
};
static void do_pop(struct eng_ctx *c, int64_t chat, void *ud) { tg_outbox_pop_head(c, chat, *(uint64_t *)ud); }
static void do_block(struct eng_ctx *c, int64_t chat, void *ud) { (void)ud, tg_user_set_active(c, chat, 0); }

/* Locks the shards of n chats at once. */
static void lock_chats(struct tg_send *s, struct eng_ctx *c, const int64_t *ids, size_t n)
{
    char tags[BATCH][48];
    struct eng_str keys[BATCH];
    for (size_t i = 0; i < n; i++) {
        tg__key_tag(tags[i], ids[i]);
        keys[i] = (struct eng_str){tags[i], strlen(tags[i])};
    }
    eng_ctx_init(c, s->e, 0);
    eng_lock_keys(c, keys, (int)n);
}

/* fn on one chat, under its shard's lock. */
static void with_chat_lock(struct tg_send *s, int64_t chat, void (*fn)(struct eng_ctx *c, int64_t chat, void *ud),
                           void *ud)
{
    struct eng_ctx c;
    lock_chats(s, &c, &chat, 1);
    fn(&c, chat, ud);
    eng_unlock(&c);
}

/* The head calls of n chats into s->peeked[i] (s->found[i]: one there). */
static void peek_batch(struct tg_send *s, struct chat *const *chs, size_t n)
{
    int64_t ids[BATCH];
    for (size_t i = 0; i < n; i++)
        ids[i] = chs[i]->id;
    struct eng_ctx c;
    lock_chats(s, &c, ids, n);
    for (size_t i = 0; i < n; i++)
        s->found[i] = tg_outbox_peek(&c, ids[i], &s->peeked[i]);
    eng_unlock(&c);
}

/* Takes off the heads that replies finished, and records their latencies:
 * before any peek, and once per loop iteration. */
static void flush_pops(struct tg_send *s)
{
    const struct pop *pops = (const struct pop *)s->pops.p;
    size_t npops = s->pops.len / sizeof *pops;
    for (size_t at = 0; at < npops;) {
        size_t n = npops - at < BATCH ? npops - at : BATCH;
        int64_t ids[BATCH];
        for (size_t i = 0; i < n; i++)
            ids[i] = pops[at + i].chat;
        struct eng_ctx c;
        lock_chats(s, &c, ids, n);
        for (size_t i = 0; i < n; i++)
            tg_outbox_pop_head(&c, pops[at + i].chat, pops[at + i].tag);
        eng_unlock(&c);
        at += n;
    }
    buf_reset(&s->pops);
    const double *lats = (const double *)s->lats.p;
    size_t nlats = s->lats.len / sizeof *lats;
    if (nlats) {
        pthread_mutex_lock(&s->lock);
        for (size_t i = 0; i < nlats; i++)
            metrics_hist_observe(&s->api_latency, lats[i]);
        pthread_mutex_unlock(&s->lock);
        buf_reset(&s->lats);
    }
}

static void on_check(uv_check_t *h) { flush_pops(h->data); }

/* The head call of chat, tagged tag, goes at the next flush_pops(). */
static void pop_later(struct tg_send *s, int64_t chat, uint64_t tag)
{
    struct pop p = {chat, tag};
    buf_append(&s->pops, &p, sizeof p);
}

static void finish(struct tg_send *s, struct chat *ch, int64_t now);

static void on_reply(void *ud, const struct httpc_result *r)
{
    struct send_req *q = ud;
    struct tg_send *s = q->s;
    s->inflight--;
    int64_t now = app_now_ms();
    if (s->stopping) { /* httpc_free() cancelling what was in flight */
        xfree(q);
        return;
    }
    struct chat *ch = chat_get(s, q->chat);
    ch->inflight = 0;
    buf_append(&s->lats, &r->total_s, sizeof r->total_s);
    /* A success needs nothing from the answer; the rest read it for their
     * description and retry_after. */
    int ok = r->status >= 200 && r->status < 300;
    cJSON *root = !ok && r->body ? cJSON_ParseWithLength(r->body, r->body_len) : NULL;
    const cJSON *desc = cJSON_GetObjectItemCaseSensitive(root, "description");
    const char *d = cJSON_IsString(desc) ? desc->valuestring : "";
    int st;
    if (ok) {
        st = ST_2XX;
        pop_later(s, q->chat, q->tag);
        ch->backoff_ms = 0;
        if (tg__opt.rate_chat > 0 && q->method != M_ANSWER)
            ch->next_ms = now + 1000 / tg__opt.rate_chat;
    } else if (r->status == 429) {
        st = ST_429;
        const cJSON *params = cJSON_GetObjectItemCaseSensitive(root, "parameters");
        const cJSON *ra = cJSON_GetObjectItemCaseSensitive(params, "retry_after");
        int64_t wait = cJSON_IsNumber(ra) && ra->valuedouble > 0 ? (int64_t)(ra->valuedouble * 1000) : 1000;
        ch->next_ms = now + wait;
        if (now + wait > s->pause_until)
            s->pause_until = now + wait;
        s->waits[W_RETRY_AFTER]++;
        log_info("bot api rate limited", "method=%s chat=%lld retry_after_ms=%lld", method_names[q->method],
                 (long long)q->chat, (long long)wait);
    } else if (r->status == 403) {
        st = ST_403;
        log_info("bot api forbidden: user inactive", "method=%s chat=%lld description=\"%s\"",
                 method_names[q->method], (long long)q->chat, d);
        with_chat_lock(s, q->chat, do_block, NULL);
    } else if (r->status == 400) {
        st = ST_400;
        log_warn("bot api bad request", "method=%s chat=%lld description=\"%s\"", method_names[q->method],
                 (long long)q->chat, d);
        pop_later(s, q->chat, q->tag);
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
    finish(s, ch, now);
}

/* After a call: the chat goes back in line when it has more. */
static void finish(struct tg_send *s, struct chat *ch, int64_t now)
{
    fifo_push(s, ch);
    arm(s, ch->next_ms > now ? ch->next_ms : now, now);
}

/* The URL of method: the "<api-url>/bot<token>/" part is kept. */
static const char *method_url(struct tg_send *s, const char *method)
{
    if (s->url_api != tg__opt.api_url || s->url_token != tg__opt.token || !s->url.p) {
        buf_reset(&s->url);
        buf_printf(&s->url, "%s/bot%s/", tg__opt.api_url, tg__opt.token);
        s->url_base = s->url.len;
        s->url_api = tg__opt.api_url, s->url_token = tg__opt.token;
    }
    s->url.len = s->url_base;
    buf_puts(&s->url, method);
    return s->url.p;
}

/* Sends ch's head call (its turn has come), peeked into entry (found: one
 * was there).  0 sent (or dropped), 1 it must wait for the bulk bucket, -1
 * nothing left. */
static int send_head(struct tg_send *s, struct chat *ch, int found, struct buf *entry, struct buf *scratch)
{
    if (!found)
        return -1;
    struct tg_outbox_entry e;
    uint64_t tag = tg_outbox_entry_tag(entry->p, entry->len);
    if (tg_outbox_entry_read(entry->p, entry->len, &e, scratch) < 0) {
        log_warn("outbox entry unreadable, dropped", "chat=%lld", (long long)ch->id);
        with_chat_lock(s, ch->id, do_pop, &tag);
        return 0;
    }
    int bulk = (e.flags & BOT_OUT_BULK) != 0;
    int method = method_index(e.method);
    if (!tg__opt.token || !*tg__opt.token || !s->hc) {
        log_info("bot api call (offline)", "method=%s chat=%lld", e.method, (long long)ch->id);
        with_chat_lock(s, ch->id, do_pop, &tag);
        s->calls[method][ST_OFFLINE]++;
        return 0;
    }
    if (bulk && tg__opt.rate_bulk > 0) {
        if (s->bulk_tokens < 1)
            return 1;
        s->bulk_tokens -= 1;
    }
    struct send_req *q = xmalloc(sizeof *q);
    *q = (struct send_req){.s = s, .chat = ch->id, .tag = tag, .method = method, .bulk = bulk};
    static const char *const headers[] = {"Content-Type: application/json", NULL};
    /* httpc copies the URL and the body: both may be reused right away */
    struct httpc_request req = {.method = "POST", .url = method_url(s, e.method), .headers = headers,
                                .body = e.params, .body_len = e.params_len, .timeout_ms = 30000};
    if (httpc_send(s->hc, &req, on_reply, q) < 0) {
        xfree(q);
        ch->next_ms = app_now_ms() + 1000;
        s->calls[method][ST_NET]++;
        return 1;
    }
    if (tg__opt.rate_global > 0)
        s->tokens -= 1;
    ch->inflight = 1;
    s->inflight++;
    return 0;
}

/* One turn over the chats in line. */
static void on_timer(uv_timer_t *t)
{
    struct tg_send *s = t->data;
    s->timer_armed = 0;
    if (!app_is_master(s->a))
        return; /* a replica sends nothing; app_on_role rewakes us */
    int64_t now = app_now_ms();
    refill(s, now);
    if (now - s->last_gc > 10000) {
        s->last_gc = now;
        tab_rebuild(s, s->cap, now);
    }
    int offline = !tg__opt.token || !*tg__opt.token || !s->hc;
    flush_pops(s); /* a head a reply finished must not be peeked again */
    struct buf scratch = BUF_INIT;
    struct chat *waiting = NULL, **wtail = &waiting;
    int64_t due = INT64_MAX;
    int budget = 4096; /* bounded work per turn; the rest in the next */
    int stop = 0;
    while (!stop && budget > 0 && s->head) {
        /* Up to BATCH chats whose turn has come, their planned calls
         * counted against the limits as if made; a limit reached with
         * some picked ends the batch, and the next one looks again at what
         * was really sent. */
        struct chat *batch[BATCH], *ch;
        size_t nb = 0;
        while (nb < BATCH && budget > 0 && (ch = s->head)) {
            if (!offline) {
                if (now < s->pause_until) {
                    if (!nb)
                        due = s->pause_until, stop = 1;
                    break;
                }
                if (s->inflight + (int)nb >= tg__opt.max_inflight) {
                    if (!nb)
                        due = INT64_MAX, stop = 1; /* a reply re-arms */
                    break;
                }
                if (tg__opt.rate_global > 0 && s->tokens - (double)nb < 1) {
                    if (!nb) {
                        s->waits[W_GLOBAL]++;
                        int64_t w = now + wait_for_token(s->tokens, tg__opt.rate_global);
                        due = w < due ? w : due;
                        stop = 1;
                    }
                    break;
                }
            }
            budget--;
            fifo_pop(s);
            if (ch->inflight)
                continue; /* its reply puts it back */
            if (!offline && ch->next_ms > now) {
                s->waits[W_CHAT]++;
                due = ch->next_ms < due ? ch->next_ms : due;
                ch->queued = 1, ch->next = NULL, *wtail = ch, wtail = &ch->next;
                continue;
            }
            batch[nb++] = ch;
        }
        if (!nb)
            break;
        peek_batch(s, batch, nb);
        for (size_t i = 0; i < nb; i++) {
            ch = batch[i];
            int rc = send_head(s, ch, s->found[i], &s->peeked[i], &scratch);
            if (rc == 1) {
                s->waits[W_BULK]++;
                int64_t w = now + (tg__opt.rate_bulk > 0 ? wait_for_token(s->bulk_tokens, tg__opt.rate_bulk) : 1000);
                due = w < due ? w : due;
                ch->queued = 1, ch->next = NULL, *wtail = ch, wtail = &ch->next;
            } else if (rc == 0 && !ch->inflight) {
                fifo_push(s, ch); /* offline or dropped: next call in a later round */
            }
        }
    }
    buf_release(&scratch);
    /* Chats that must wait go to the front, in their order. */
    if (waiting) {
        *wtail = s->head;
        s->head = waiting;
        if (!s->tail)
            for (s->tail = waiting; s->tail->next; s->tail = s->tail->next)
                ;
    }
    if (budget <= 0 && s->head)
        due = now;
    else if (s->head && due == INT64_MAX && s->inflight < tg__opt.max_inflight && offline)
        due = now;
    if (due != INT64_MAX)
        arm(s, due, now);
}

/* ---- the thread ------------------------------------------------------------ */

/* On the sender's loop: a chat has new calls. */
static void wake_one(struct tg_send *s, int64_t chat)
{
    struct chat *ch = chat_get(s, chat);
    if (!ch->inflight)
        fifo_push(s, ch);
    int64_t now = app_now_ms();
    arm(s, ch->next_ms > now ? ch->next_ms : now, now);
}

static void on_async(uv_async_t *h)
{
    struct tg_send *s = h->data;
    if (s->stopping)
        return;
    if (atomic_load(&s->stop_asked)) {
        /* httpc_free() answers what is in flight ("cancelled", on_reply
         * drops it); the loop ends when the last handle has closed */
        flush_pops(s); /* what Telegram took must not go again */
        s->stopping = 1;
        uv_timer_stop(&s->timer);
        uv_close((uv_handle_t *)&s->timer, NULL);
        uv_check_stop(&s->check);
        uv_close((uv_handle_t *)&s->check, NULL);
        uv_timer_stop(&s->beat);
        uv_close((uv_handle_t *)&s->beat, NULL);
        httpc_free(s->hc);
        s->hc = NULL;
        uv_close((uv_handle_t *)&s->async, NULL);
        return;
    }
    pthread_mutex_lock(&s->lock);
    int64_t *q = s->wq;
    size_t n = s->wlen;
    s->wq = NULL, s->wlen = s->wcap = 0;
    s->wake_pending = 0;
    pthread_mutex_unlock(&s->lock);
    for (size_t i = 0; i < n; i++)
        wake_one(s, q[i]);
    xfree(q);
}

static void on_beat(uv_timer_t *h)
{
    struct tg_send *s = h->data;
    atomic_store(&s->beat_ms, clock_mono_ms());
}

static void sender_main(void *arg)
{
    struct tg_send *s = arg;
    uv_run(&s->loop, UV_RUN_DEFAULT);
}

/* ---- the interface ---------------------------------------------------------- */

void tg_send_wake(struct tg_send *s, int64_t chat)
{
    pthread_mutex_lock(&s->lock);
    if (s->wlen == s->wcap) {
        s->wcap = s->wcap ? s->wcap * 2 : 256;
        s->wq = xrealloc(s->wq, s->wcap * sizeof *s->wq);
    }
    s->wq[s->wlen++] = chat;
    int send = !s->wake_pending;
    s->wake_pending = 1;
    pthread_mutex_unlock(&s->lock);
    if (send)
        uv_async_send(&s->async);
}

struct tg_send *tg_send_new(struct app *a)
{
    struct tg_send *s = xcalloc(1, sizeof *s);
    s->a = a;
    s->e = app_engine(a);
    s->cap = 1024;
    s->tab = xcalloc(s->cap, sizeof *s->tab);
    s->tokens = bucket_cap(tg__opt.rate_global);
    s->bulk_tokens = bucket_cap(tg__opt.rate_bulk);
    s->refill_ms = s->last_gc = app_now_ms();
    metrics_hist_init_latency(&s->api_latency);
    pthread_mutex_init(&s->lock, NULL);
    uv_loop_init(&s->loop);
    uv_timer_init(&s->loop, &s->timer);
    s->timer.data = s;
    uv_async_init(&s->loop, &s->async, on_async);
    s->async.data = s;
    uv_check_init(&s->loop, &s->check);
    s->check.data = s;
    uv_check_start(&s->check, on_check);
    atomic_store(&s->beat_ms, clock_mono_ms());
    uv_timer_init(&s->loop, &s->beat);
    s->beat.data = s;
    uv_timer_start(&s->beat, on_beat, 1000, 1000);
    s->hc = httpc_new(&s->loop);
    if (uv_thread_create(&s->thread, sender_main, s) != 0) {
        log_warn("bot api sender thread not started", "%s", "");
        abort();
    }
    return s;
}

int64_t tg_send_beat_age_ms(struct tg_send *s) { return clock_mono_ms() - atomic_load(&s->beat_ms); }

/* From the app's loop: the thread stops, and everything goes. */
void tg_send_free(struct tg_send *s)
{
    if (!s)
        return;
    atomic_store(&s->stop_asked, 1);
    uv_async_send(&s->async);
    uv_thread_join(&s->thread);
    uv_loop_close(&s->loop);
    for (size_t i = 0; i < s->cap; i++)
        xfree(s->tab[i]);
    xfree(s->tab);
    xfree(s->wq);
    buf_release(&s->pops);
    buf_release(&s->lats);
    for (int i = 0; i < BATCH; i++)
        buf_release(&s->peeked[i]);
    buf_release(&s->url);
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
    metrics_family(out, "obentchi_bot_api_inflight", "gauge", "Bot API calls in flight");
    metrics_sample_int(out, "obentchi_bot_api_inflight", NULL, s->inflight);
}
