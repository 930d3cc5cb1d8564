/* ledger.c: balances in integer minor units, every movement a ledger entry
 * (ledger.h).  What it is not: it takes no lock and knows no provider; the
 * callers (Telegram flows, payout and payment handlers, LEDGER.* commands)
 * lock the user's tag together with whatever else changes with it.
 *
 * Keys (keys.h, all under the user's tag {u:<uid>}):
 *   user:{u:<uid>}          hash  "balance" and "held" (other fields: tg.c)
 *   ledger:{u:<uid>}        list  entries as JSON, newest first:
 *                                 {"amount":-500,"kind":"hold","ref":"wd:7",
 *                                  "time":1700000000000,"balance":1500}
 *   ledger:refs:{u:<uid>}   set   references posted (post and hold)
 *   ledger:holds:{u:<uid>}  hash  open holds: ref -> amount
 *
 * The balance moves only together with an entry in the same locked step, so
 * it always equals the sum of the entries; every debit checks it first, so it
 * never goes below zero. */
#include <stdio.h>
#include <string.h>

#include <cJSON.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/num.h"
#include "engine.h"
#include "hash.h"
#include "keys.h"
#include "ledger.h"
#include "list.h"
#include "parts.h"
#include "queue_int.h"
#include "set.h"

enum { KEYLEN = 64 };

/* The user's keys, written once per call. */
struct ukeys {
    char user[KEYLEN], ledger[KEYLEN], refs[KEYLEN], holds[KEYLEN];
};

static void ukeys_init(struct ukeys *k, int64_t uid)
{
    key_user(k->user, sizeof k->user, "user", uid);
    key_user(k->ledger, sizeof k->ledger, "ledger", uid);
    key_user(k->refs, sizeof k->refs, "ledger:refs", uid);
    key_user(k->holds, sizeof k->holds, "ledger:holds", uid);
}

int64_t bot_ledger_balance(struct eng_ctx *c, int64_t uid)
{
    char key[KEYLEN];
    key_user(key, sizeof key, "user", uid);
    return queue__hget_i64(c, key, "balance");
}

int64_t bot_ledger_held(struct eng_ctx *c, int64_t uid)
{
    char key[KEYLEN];
    key_user(key, sizeof key, "user", uid);
    return queue__hget_i64(c, key, "held");
}

static int ref_seen(struct eng_ctx *c, const struct ukeys *k, const char *ref)
{
    return eng_sismember(c, k->refs, strlen(k->refs), ref, strlen(ref)) == 1;
}

static void ref_mark(struct eng_ctx *c, const struct ukeys *k, const char *ref)
{
    struct eng_str m = {ref, strlen(ref)};
    int64_t added;
    eng_sadd(c, k->refs, strlen(k->refs), &m, 1, &added);
}

/* Moves balance and held by the deltas and appends the entry: the one place
 * the balance changes, always with its entry. */
static void apply(struct eng_ctx *c, const struct ukeys *k, int64_t amount, int64_t held_delta, const char *kind,
                  const char *ref)
{
    int64_t balance = 0, held, len;
    eng_hincrby(c, k->user, strlen(k->user), "balance", 7, amount, &balance);
    if (held_delta)
        eng_hincrby(c, k->user, strlen(k->user), "held", 4, held_delta, &held);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "amount", (double)amount);
    cJSON_AddStringToObject(o, "kind", kind);
    cJSON_AddStringToObject(o, "ref", ref);
    cJSON_AddNumberToObject(o, "time", (double)c->now_ms);
    cJSON_AddNumberToObject(o, "balance", (double)balance);
    char *text = cJSON_PrintUnformatted(o);
    struct eng_str e = {text, strlen(text)};
    eng_list_push(c, k->ledger, strlen(k->ledger), ENG_LIST_HEAD, 0, &e, 1, &len);
    cJSON_free(text);
    cJSON_Delete(o);
}

static int ref_ok(const char *ref)
{
    size_t n = ref ? strlen(ref) : 0;
    return n > 0 && n < sizeof ((struct bot_ledger_entry *)0)->ref;
}

int bot_ledger_post(struct eng_ctx *c, int64_t uid, int64_t amount, const char *kind, const char *ref)
{
    if (!ref_ok(ref) || !kind || !*kind || strlen(kind) >= sizeof ((struct bot_ledger_entry *)0)->kind)
        return ERR_SYNTAX;
    struct ukeys k;
    ukeys_init(&k, uid);
    if (ref_seen(c, &k, ref))
        return LEDGER_DUP;
    int64_t balance = queue__hget_i64(c, k.user, "balance");
    if (amount < 0 && balance + amount < 0)
        return LEDGER_SHORT;
    ref_mark(c, &k, ref);
    apply(c, &k, amount, 0, kind, ref);
    return LEDGER_OK;
}

int bot_ledger_hold(struct eng_ctx *c, int64_t uid, int64_t amount, const char *ref)
{
    if (!ref_ok(ref) || amount <= 0)
        return ERR_SYNTAX;
    struct ukeys k;
    ukeys_init(&k, uid);
    if (ref_seen(c, &k, ref))
        return LEDGER_DUP;
    if (queue__hget_i64(c, k.user, "balance") < amount)
        return LEDGER_SHORT;
    char num[24];
    size_t nn = num_fmt_i64(num, amount);
    struct eng_str fv[2] = {{ref, strlen(ref)}, {num, nn}};
    int64_t added;
    eng_hset(c, k.holds, strlen(k.holds), fv, 1, &added);
    ref_mark(c, &k, ref);
    apply(c, &k, -amount, amount, "hold", ref);
    return LEDGER_OK;
}

/* Closes the hold ref: its amount comes back to the balance when refund. */
static int close_hold(struct eng_ctx *c, int64_t uid, const char *ref, int refund)
{
    if (!ref_ok(ref))
        return ERR_SYNTAX;
    struct ukeys k;
    ukeys_init(&k, uid);
    struct eng_str v;
    int64_t amount = 0, deleted;
    if (eng_hget(c, k.holds, strlen(k.holds), ref, strlen(ref), &v) < 0 || num_parse_i64(v.p, v.n, &amount) < 0)
        return LEDGER_NOHOLD;
    struct eng_str f = {ref, strlen(ref)};
    eng_hdel(c, k.holds, strlen(k.holds), &f, 1, &deleted);
    if (refund)
        apply(c, &k, amount, -amount, "release", ref);
    else
        apply(c, &k, 0, -amount, "settle", ref);
    return LEDGER_OK;
}

int bot_ledger_settle(struct eng_ctx *c, int64_t uid, const char *ref) { return close_hold(c, uid, ref, 0); }
int bot_ledger_release(struct eng_ctx *c, int64_t uid, const char *ref) { return close_hold(c, uid, ref, 1); }

/* ---- reading ------------------------------------------------------------ */

static int entry_parse(const char *p, size_t n, struct bot_ledger_entry *e)
{
    cJSON *o = cJSON_ParseWithLength(p, n);
    if (!o)
        return -1;
    const cJSON *amount = cJSON_GetObjectItemCaseSensitive(o, "amount");
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(o, "kind");
    const cJSON *ref = cJSON_GetObjectItemCaseSensitive(o, "ref");
    const cJSON *time = cJSON_GetObjectItemCaseSensitive(o, "time");
    const cJSON *bal = cJSON_GetObjectItemCaseSensitive(o, "balance");
    int ok = cJSON_IsNumber(amount) && cJSON_IsString(kind) && cJSON_IsString(ref);
    if (ok) {
        memset(e, 0, sizeof *e);
        e->amount = (int64_t)amount->valuedouble;
        snprintf(e->kind, sizeof e->kind, "%s", kind->valuestring);
        snprintf(e->ref, sizeof e->ref, "%s", ref->valuestring);
        e->time_ms = cJSON_IsNumber(time) ? (int64_t)time->valuedouble : 0;
        e->balance = cJSON_IsNumber(bal) ? (int64_t)bal->valuedouble : 0;
    }
    cJSON_Delete(o);
    return ok ? 0 : -1;
}

struct hist_walk {
    struct bot_ledger_entry *out;
    int n, got;
    int64_t sum;
    int bad;
};

static void hist_elem(void *ud, const char *p, size_t n)
{
    struct hist_walk *w = ud;
    struct bot_ledger_entry e;
    if (entry_parse(p, n, &e) < 0) {
        w->bad++;
        return;
    }
    w->sum += e.amount;
    if (w->out && w->got < w->n)
        w->out[w->got++] = e;
}

int bot_ledger_history(struct eng_ctx *c, int64_t uid, struct bot_ledger_entry *out, int n)
{
    if (n <= 0)
        return 0;
    char key[KEYLEN];
    key_user(key, sizeof key, "ledger", uid);
    struct hist_walk w = {.out = out, .n = n};
    eng_list_range(c, key, strlen(key), 0, n - 1, NULL, hist_elem, &w);
    return w.got;
}

int bot_ledger_check(struct eng_ctx *c, int64_t uid)
{
    struct ukeys k;
    ukeys_init(&k, uid);
    struct hist_walk w = {0};
    eng_list_range(c, k.ledger, strlen(k.ledger), 0, -1, NULL, hist_elem, &w);
    int64_t balance = queue__hget_i64(c, k.user, "balance");
    return !w.bad && w.sum == balance && balance >= 0;
}

/* The ledger's part: no options or routes, only the LEDGER.* commands
 * (queue_cmd.c, beside JOB.*: the same engine binding). */
static const struct server_cmd *ledger_commands(int *n) { return ledger__commands(n); }

const struct app_part bot_part_ledger = {.name = "ledger", .commands = ledger_commands};
