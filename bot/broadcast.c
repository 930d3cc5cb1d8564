/* broadcast.c: broadcasts (broadcast.h).  One timer on the app loop, ten
 * turns a second, sends the oldest running broadcast forward by the
 * turn's share of bot-broadcast-rate: users come from bot_users_scan()
 * into a batch, each user of the batch is handled in one locked step over
 * {bc} and the user's tag (marker checked, message pushed to the outbox
 * with BOT_OUT_BULK, marker set, counters moved), and the scan cursor is
 * saved when the batch is empty.  The outbox sender paces bulk calls at the
 * same rate, so outboxes do not fill ahead of Telegram's limit, and a
 * cancel stops what is not yet pushed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <uv.h>

#include "base/alloc.h"
#include "base/log.h"
#include "base/num.h"
#include "broadcast.h"
#include "engine.h"
#include "hash.h"
#include "keys.h"
#include "parts.h"
#include "set.h"
#include "tg.h"
#include "zset.h"

#define S(x) (x), strlen(x)
#define BC_TAG "{bc}"
#define K_SEQ "bc:{bc}:seq"
#define K_RUNNING "bc:{bc}:running"
#define TURN_MS 100
#define MARK_TTL_MS (30LL * 86400 * 1000)

struct bc {
    struct app *a;
    uv_timer_t timer;
    char id[24];          /* the broadcast the batch belongs to ("" none) */
    int64_t *batch;       /* user ids scanned, not yet handled */
    int nbatch, at, cap;
    uint64_t next_cursor; /* where the scan goes after this batch */
    double budget;        /* sends allowed now (token bucket) */
    int64_t last_ms;
    struct cfg *cfg;
    double rate;
    int64_t rate_ms;
};

static struct bc *the_bc; /* one per process: the app's loop owns it */

static void bc_key(char *out, size_t n, const char *id) { snprintf(out, n, "bc:{bc}:%s", id); }

static void lock_bc(struct eng_ctx *c, struct app *a)
{
    struct eng_str k = {S(BC_TAG)};
    eng_ctx_init(c, app_engine(a), 0);
    eng_lock_keys(c, &k, 1);
}

static int id_ok(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > 18)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (id[i] < '0' || id[i] > '9')
            return 0;
    return 1;
}

int bc_create(struct app *a, const char *text, const char *language, struct buf *id_out)
{
    if (!app_is_master(a))
        return -1;
    struct eng_ctx c;
    lock_bc(&c, a);
    int64_t id;
    eng_journal_multi(&c, 1);
    eng_incrby(&c, S(K_SEQ), 1, &id);
    char ids[24], key[48], now[24];
    snprintf(ids, sizeof ids, "%lld", (long long)id);
    snprintf(now, sizeof now, "%lld", (long long)c.now_ms);
    bc_key(key, sizeof key, ids);
    struct eng_str fv[] = {{S("id")},      {S(ids)},  {S("text")},   {S(text)},     {S("language")},
                           {S(language ? language : "")}, {S("state")}, {S("running")}, {S("created")},
                           {S(now)},       {S("cursor")}, {S("0")},    {S("sent")},   {S("0")},
                           {S("skipped")}, {S("0")}};
    int64_t added;
    eng_hset(&c, S(key), fv, 8, &added);
    double score = (double)id;
    struct eng_str m = {S(ids)};
    struct eng_zadd_out zo;
    eng_zadd(&c, S(K_RUNNING), 0, &score, &m, 1, &zo);
    eng_journal_multi(&c, 0);
    eng_unlock(&c);
    buf_puts(id_out, ids);
    log_info("broadcast created", "id=%s language=%s length=%zu", ids, language && *language ? language : "all",
             strlen(text));
    return 0;
}

static void pair_json(void *ud, const char *f, size_t fl, const char *v, size_t vl)
{
    cJSON *o = ud;
    char name[16], val[24];
    if (fl >= sizeof name)
        return;
    memcpy(name, f, fl);
    name[fl] = 0;
    int64_t n = 0;
    if (!strcmp(name, "sent") || !strcmp(name, "skipped")) {
        num_parse_i64(v, vl, &n);
        cJSON_AddNumberToObject(o, name, (double)n);
    } else if (!strcmp(name, "created") || !strcmp(name, "finished")) {
        num_parse_i64(v, vl, &n);
        snprintf(val, sizeof val, "%s_ms", name);
        cJSON_AddNumberToObject(o, val, (double)n);
    } else if (!strcmp(name, "language")) {
        /* "" (every user) becomes null: bc_get_json adds it */
    } else if (strcmp(name, "cursor")) {
        char *t = xstrndup(v, vl);
        cJSON_AddStringToObject(o, name, t);
        xfree(t);
    }
}

int bc_get_json(struct app *a, const char *id, struct buf *out)
{
    if (!id_ok(id))
        return 0;
    char key[48];
    bc_key(key, sizeof key, id);
    struct eng_ctx c;
    lock_bc(&c, a);
    int found = eng_exists(&c, S(key)) == 1;
    cJSON *o = NULL;
    if (found) {
        o = cJSON_CreateObject();
        eng_hgetall(&c, S(key), NULL, pair_json, o);
        struct eng_str v;
        if (!cJSON_GetObjectItemCaseSensitive(o, "language"))
            cJSON_AddNullToObject(o, "language");
        if (!cJSON_GetObjectItemCaseSensitive(o, "finished_ms"))
            cJSON_AddNullToObject(o, "finished_ms");
        if (eng_hget(&c, S(key), S("language"), &v) == 0 && v.n) {
            char *t = xstrndup(v.p, v.n);
            cJSON_ReplaceItemInObjectCaseSensitive(o, "language", cJSON_CreateString(t));
            xfree(t);
        }
    }
    eng_unlock(&c);
    if (!found)
        return 0;
    char *t = cJSON_PrintUnformatted(o);
    buf_puts(out, t);
    cJSON_free(t);
    cJSON_Delete(o);
    return 1;
}

/* Ends a broadcast (state done or cancelled); caller holds {bc}. */
static void finish(struct eng_ctx *c, const char *id, const char *state)
{
    char key[48], now[24];
    bc_key(key, sizeof key, id);
    snprintf(now, sizeof now, "%lld", (long long)c->now_ms);
    struct eng_str fv[] = {{S("state")}, {S(state)}, {S("finished")}, {S(now)}};
    struct eng_str m = {S(id)};
    int64_t n;
    eng_journal_multi(c, 1);
    eng_hset(c, S(key), fv, 2, &n);
    eng_zrem(c, S(K_RUNNING), &m, 1, &n);
    eng_journal_multi(c, 0);
}

int bc_cancel(struct app *a, const char *id)
{
    if (!app_is_master(a))
        return -1;
    if (!id_ok(id))
        return 0;
    char key[48];
    bc_key(key, sizeof key, id);
    struct eng_ctx c;
    struct eng_str v;
    lock_bc(&c, a);
    int rc = 0;
    if (eng_hget(&c, S(key), S("state"), &v) == 0) {
        rc = 2;
        if (v.n == 7 && !memcmp(v.p, "running", 7)) {
            finish(&c, id, "cancelled");
            rc = 1;
        }
    }
    eng_unlock(&c);
    if (rc == 1) {
        log_info("broadcast cancelled", "id=%s", id);
        if (the_bc && !strcmp(the_bc->id, id))
            the_bc->nbatch = the_bc->at = 0, the_bc->id[0] = '\0';
    }
    return rc;
}

/* ---- the sender ------------------------------------------------------------------ */

static void add_uid(void *ud, int64_t uid)
{
    struct bc *b = ud;
    if (b->nbatch == b->cap) {
        b->cap = b->cap ? 2 * b->cap : 256;
        b->batch = xrealloc(b->batch, sizeof *b->batch * (size_t)b->cap);
    }
    b->batch[b->nbatch++] = uid;
}

static void first_member(void *ud, const char *m, size_t n, double score)
{
    (void)score;
    snprintf(ud, 24, "%.*s", (int)(n < 23 ? n : 23), m);
}

struct cur {
    char id[24];
    struct buf text;
    char lang[16];
    uint64_t cursor;
};

/* The oldest running broadcast (0 when none). */
static int current(struct bc *b, struct cur *out)
{
    struct eng_ctx c;
    lock_bc(&c, b->a);
    struct eng_zrange r = {.by = ENG_ZBY_RANK, .start = 0, .stop = 0, .offset = 0, .limit = -1};
    out->id[0] = '\0';
    eng_zrange(&c, S(K_RUNNING), &r, NULL, first_member, out->id);
    int found = 0;
    if (out->id[0]) {
        char key[48];
        bc_key(key, sizeof key, out->id);
        struct eng_str f[3] = {{S("text")}, {S("language")}, {S("cursor")}}, v[3];
        if (eng_hmget(&c, S(key), f, 3, v) == 0 && v[0].p) {
            buf_append(&out->text, v[0].p, v[0].n);
            snprintf(out->lang, sizeof out->lang, "%.*s", v[1].p ? (int)(v[1].n < 15 ? v[1].n : 15) : 0,
                     v[1].p ? v[1].p : "");
            out->cursor = 0;
            if (v[2].p)
                num_parse_u64(v[2].p, v[2].n, &out->cursor);
            found = 1;
        } else { /* a running entry without its hash: drop it */
            struct eng_str m = {S(out->id)};
            int64_t n;
            eng_zrem(&c, S(K_RUNNING), &m, 1, &n);
        }
    }
    eng_unlock(&c);
    return found;
}

/* One user, in one locked step over {bc} and the user's tag: 1 sent, 0
 * skipped (marked already, inactive, other language). */
static int send_one(struct bc *b, const struct cur *cu, int64_t uid)
{
    char utag[40], mark[48], key[48];
    key_user_tag(utag, sizeof utag, uid);
    key_user(mark, sizeof mark, "bcsent", uid);
    bc_key(key, sizeof key, cu->id);
    struct eng_str keys[2] = {{S(BC_TAG)}, {S(utag)}};
    struct eng_ctx c;
    eng_ctx_init(&c, app_engine(b->a), 0);
    eng_lock_keys(&c, keys, 2);
    int sent = 0;
    struct bot_user u;
    if (eng_sismember(&c, S(mark), S(cu->id)) == 1) {
        eng_unlock(&c);
        return 0; /* sent before a restart: not again, not counted again */
    }
    eng_journal_multi(&c, 1);
    if (bot_user_get(&c, uid, &u) == 1 && u.active && (!cu->lang[0] || !strcmp(u.lang, cu->lang))) {
        cJSON *p = cJSON_CreateObject();
        cJSON_AddNumberToObject(p, "chat_id", (double)uid);
        cJSON_AddStringToObject(p, "text", cu->text.p);
        char *params = cJSON_PrintUnformatted(p);
        cJSON_Delete(p);
        sent = bot_outbox_push(&c, b->a, uid, "sendMessage", params, BOT_OUT_BULK) == 1;
        cJSON_free(params);
    }
    struct eng_str m = {S(cu->id)};
    int64_t n;
    eng_sadd(&c, S(mark), &m, 1, &n);
    eng_expire_at(&c, S(mark), c.now_ms + MARK_TTL_MS, 0);
    eng_hincrby(&c, S(key), S(sent ? "sent" : "skipped"), 1, &n);
    eng_journal_multi(&c, 0);
    eng_unlock(&c);
    return sent;
}

static void save_cursor(struct bc *b, const char *id, uint64_t cursor)
{
    char key[48], cur[24];
    bc_key(key, sizeof key, id);
    snprintf(cur, sizeof cur, "%llu", (unsigned long long)cursor);
    struct eng_ctx c;
    lock_bc(&c, b->a);
    struct eng_str v;
    /* still running? (a cancel may have come from another path) */
    if (eng_hget(&c, S(key), S("state"), &v) == 0 && v.n == 7 && !memcmp(v.p, "running", 7)) {
        if (cursor == 0) {
            finish(&c, id, "done");
            log_info("broadcast done", "id=%s", id);
        } else {
            struct eng_str fv[2] = {{S("cursor")}, {S(cur)}};
            int64_t n;
            eng_hset(&c, S(key), fv, 1, &n);
        }
    }
    eng_unlock(&c);
}

/* bot-broadcast-rate (tg.c's option; 0 = no limit), re-read each second
 * so that CONFIG SET applies. */
static double bulk_rate(struct bc *b, int64_t now)
{
    if (now - b->rate_ms >= 1000 || b->rate <= 0) {
        struct buf v = BUF_INIT;
        int64_t r = 30;
        if (b->cfg && cfg_get(b->cfg, "bot-broadcast-rate", &v) == 0 && v.p)
            num_parse_i64(v.p, v.len, &r);
        buf_release(&v);
        b->rate = r > 0 ? (double)r : 1e6;
        b->rate_ms = now;
    }
    return b->rate;
}

static void on_turn(uv_timer_t *t)
{
    struct bc *b = t->data;
    int64_t now = app_now_ms();
    double rate = bulk_rate(b, now);
    b->budget += rate * (double)(now - b->last_ms) / 1000.0;
    if (b->budget > rate / 2 + 1)
        b->budget = rate / 2 + 1; /* no burst past half a second's worth */
    b->last_ms = now;
    if (!app_is_master(b->a) || app_is_loading(b->a)) {
        b->nbatch = b->at = 0, b->id[0] = '\0';
        return;
    }
    struct cur cu = {.text = BUF_INIT};
    for (int guard = 0; b->budget >= 1 && guard < 64; guard++) {
        if (!current(b, &cu))
            break;
        if (strcmp(cu.id, b->id)) { /* another broadcast (or a resume): start from its saved cursor */
            snprintf(b->id, sizeof b->id, "%s", cu.id);
            b->nbatch = b->at = 0;
            b->next_cursor = cu.cursor;
            if (cu.cursor)
                log_info("broadcast resumed", "id=%s cursor=%llu", cu.id, (unsigned long long)cu.cursor);
        }
        if (b->at == b->nbatch) { /* batch handled: save where the next one starts */
            if (b->nbatch) {
                save_cursor(b, cu.id, b->next_cursor);
                b->nbatch = b->at = 0;
                if (b->next_cursor == 0) {
                    b->id[0] = '\0';
                    buf_reset(&cu.text);
                    continue;
                }
            }
            uint64_t from = b->next_cursor;
            b->next_cursor = bot_users_scan(app_engine(b->a), from, 100, add_uid, b);
            if (b->nbatch == 0 && b->next_cursor == 0) { /* nothing (left) to scan */
                save_cursor(b, cu.id, 0);
                b->id[0] = '\0';
            }
            buf_reset(&cu.text);
            continue;
        }
        while (b->at < b->nbatch && b->budget >= 1) {
            int sent = send_one(b, &cu, b->batch[b->at++]);
            if (sent)
                b->budget -= 1;
        }
        buf_reset(&cu.text);
    }
    buf_release(&cu.text);
}

void bc_start(struct app *a, struct cfg *cfg)
{
    struct bc *b = xcalloc(1, sizeof *b);
    b->a = a;
    b->cfg = cfg;
    b->last_ms = app_now_ms();
    uv_timer_init(app_loop(a), &b->timer);
    b->timer.data = b;
    uv_timer_start(&b->timer, on_turn, TURN_MS, TURN_MS);
    the_bc = b;
}

static void bc_close_cb(uv_handle_t *h)
{
    struct bc *b = h->data;
    xfree(b->batch);
    xfree(b);
}

void bc_stop(struct app *a)
{
    (void)a;
    if (!the_bc)
        return;
    uv_timer_stop(&the_bc->timer);
    uv_close((uv_handle_t *)&the_bc->timer, bc_close_cb);
    the_bc = NULL;
}
