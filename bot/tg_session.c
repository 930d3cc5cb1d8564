/* tg_session.c: user records and conversation sessions in the engine.
 *
 *   user:{u:<uid>}     hash, no TTL: id lang name created referrer active
 *                      (balance and held are the ledger's fields, ledger.c)
 *   session:{u:<uid>}  hash, TTL bot-session-ttl refreshed on each write:
 *                      state amount address ref lang updated
 *
 * Both share the user's tag, so the caller's one lock covers them (and the
 * user's ledger and outbox).  Not for money: balances move in ledger.c. */
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/num.h"
#include "hash.h"
#include "keys.h"
#include "tg.h"
#include "tg_int.h"

const char *const tg__state_names[TG_S__COUNT] = {"idle", "withdraw_amount", "withdraw_address", "withdraw_confirm"};

#define S(x) (x), strlen(x)

static int64_t field_i64(const struct eng_str *v, int64_t dflt)
{
    int64_t n;
    if (!v->p || num_parse_i64(v->p, v->n, &n) < 0)
        return dflt;
    return n;
}

/* The longest prefix of s[0..n) of at most max bytes that does not end
 * inside a UTF-8 character (continuation bytes are 10xxxxxx). */
static size_t utf8_cut(const char *s, size_t n, size_t max)
{
    if (n <= max)
        return n;
    while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
        max--;
    return max;
}

/* Copies v into out (n bytes with the NUL), cut between characters. */
static void field_str(const struct eng_str *v, char *out, size_t n)
{
    size_t k = v->p ? utf8_cut(v->p, v->n, n - 1) : 0;
    if (k)
        memcpy(out, v->p, k);
    out[k] = '\0';
}

int bot_user_get(struct eng_ctx *c, int64_t uid, struct bot_user *out)
{
    char key[48];
    tg__key_user(key, "user", uid);
    static const char *names[] = {"lang", "name", "created", "referrer", "active", "balance", "held"};
    struct eng_str f[7], v[7];
    for (int i = 0; i < 7; i++)
        f[i] = (struct eng_str){S(names[i])};
    if (!eng_exists(c, S(key)) || eng_hmget(c, S(key), f, 7, v) < 0)
        return 0;
    memset(out, 0, sizeof *out);
    out->id = uid;
    field_str(&v[0], out->lang, sizeof out->lang);
    if (!out->lang[0])
        strcpy(out->lang, "en");
    field_str(&v[1], out->name, sizeof out->name);
    out->created_ms = field_i64(&v[2], 0);
    out->referrer = field_i64(&v[3], 0);
    out->active = (int)field_i64(&v[4], 1);
    out->balance = field_i64(&v[5], 0);
    out->held = field_i64(&v[6], 0);
    return 1;
}

int tg_user_touch(struct eng_ctx *c, int64_t uid, const char *lang, const char *name, int64_t referrer)
{
    char key[48], id[24], created[24], ref[24], nm[BOT_NAME_MAX + 1];
    tg__key_user(key, "user", uid);
    size_t nl = name ? utf8_cut(name, strlen(name), BOT_NAME_MAX) : 0;
    memcpy(nm, name ? name : "", nl);
    nm[nl] = '\0';
    int exists = eng_exists(c, S(key));
    int64_t added;
    struct eng_str cur;
    /* The ledger may have made the hash first (LEDGER.CREDIT before the
     * user's first update): registered means it has an id. */
    if (exists && eng_hget(c, S(key), S("id"), &cur) == 0) {
        struct eng_str fv[] = {{S("lang")}, {S(lang)}, {S("name")}, {S(nm)}, {S("active")}, {S("1")}};
        /* Write only what changed: every write is journaled and replicated. */
        int same = 1;
        for (int i = 0; i < 3 && same; i++)
            same = eng_hget(c, S(key), fv[2 * i].p, fv[2 * i].n, &cur) == 0 && cur.n == fv[2 * i + 1].n &&
                   !memcmp(cur.p, fv[2 * i + 1].p, cur.n);
        if (!same)
            eng_hset(c, S(key), fv, 3, &added);
        return 0;
    }
    snprintf(id, sizeof id, "%lld", (long long)uid);
    snprintf(created, sizeof created, "%lld", (long long)c->now_ms);
    snprintf(ref, sizeof ref, "%lld", (long long)(referrer > 0 && referrer != uid ? referrer : 0));
    struct eng_str fv[] = {{S("id")},      {S(id)},  {S("lang")},   {S(lang)}, {S("name")},
                           {S(nm)},        {S("created")}, {S(created)}, {S("referrer")}, {S(ref)},
                           {S("active")},  {S("1")}, {S("balance")}, {S("0")}, {S("held")},
                           {S("0")}};
    eng_hset(c, S(key), fv, exists ? 6 : 8, &added); /* never reset a balance the ledger holds */
    return 1;
}

void tg_user_set_active(struct eng_ctx *c, int64_t uid, int active)
{
    char key[48];
    tg__key_user(key, "user", uid);
    if (eng_exists(c, S(key))) {
        struct eng_str fv[] = {{S("active")}, {S(active ? "1" : "0")}};
        int64_t added;
        eng_hset(c, S(key), fv, 1, &added);
    }
    if (!active)
        tg_outbox_drop(c, uid);
}

const char *tg_user_lang(struct eng_ctx *c, int64_t uid)
{
    char key[48];
    tg__key_user(key, "user", uid);
    struct eng_str v;
    if (eng_hget(c, S(key), S("lang"), &v) == 0 && v.n == 2 && !memcmp(v.p, "ar", 2))
        return "ar";
    return "en";
}

void tg_session_get(struct eng_ctx *c, int64_t uid, struct tg_session *s)
{
    char key[48];
    tg__key_user(key, "session", uid);
    memset(s, 0, sizeof *s);
    static const char *names[] = {"state", "amount", "address", "ref"};
    struct eng_str f[4], v[4];
    for (int i = 0; i < 4; i++)
        f[i] = (struct eng_str){S(names[i])};
    if (eng_hmget(c, S(key), f, 4, v) < 0)
        return;
    for (int i = 0; i < TG_S__COUNT; i++)
        if (v[0].p && v[0].n == strlen(tg__state_names[i]) && !memcmp(v[0].p, tg__state_names[i], v[0].n))
            s->state = i;
    s->amount = field_i64(&v[1], 0);
    field_str(&v[2], s->address, sizeof s->address);
    field_str(&v[3], s->ref, sizeof s->ref);
}

void tg_session_put(struct eng_ctx *c, int64_t uid, const struct tg_session *s, const char *lang)
{
    char key[48], amount[24], updated[24];
    tg__key_user(key, "session", uid);
    snprintf(amount, sizeof amount, "%lld", (long long)s->amount);
    snprintf(updated, sizeof updated, "%lld", (long long)c->now_ms);
    struct eng_str fv[] = {{S("state")},   {S(tg__state_names[s->state])}, {S("amount")}, {S(amount)},
                           {S("address")}, {S(s->address)},               {S("ref")},    {S(s->ref)},
                           {S("lang")},    {S(lang)},                     {S("updated")}, {S(updated)}};
    int64_t added;
    eng_hset(c, S(key), fv, 6, &added);
    eng_expire_at(c, S(key), c->now_ms + tg__opt.session_ttl * 1000, 0);
}

/* ---- SCAN over users --------------------------------------------------- */

struct scan_ids {
    int64_t *ids;
    size_t n, cap;
};

static void scan_one(void *ud, const char *k, size_t n)
{
    struct scan_ids *s = ud;
    /* "user:{u:<digits>}" */
    if (n < 10 || memcmp(k, "user:{u:", 8) || k[n - 1] != '}')
        return;
    int64_t uid;
    if (num_parse_i64(k + 8, n - 9, &uid) < 0)
        return;
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 64;
        s->ids = xrealloc(s->ids, s->cap * sizeof *s->ids);
    }
    s->ids[s->n++] = uid;
}

uint64_t bot_users_scan(struct eng *e, uint64_t cursor, int64_t count, void (*fn)(void *ud, int64_t uid), void *ud)
{
    struct scan_ids s = {0};
    /* eng_scan calls back under a shard lock: collect first, call fn after,
     * so fn may lock the user. */
    uint64_t next = eng_scan(e, 0, cursor, S("user:{u:*}"), ENG_T_HASH, count, scan_one, &s);
    for (size_t i = 0; i < s.n; i++)
        fn(ud, s.ids[i]);
    xfree(s.ids);
    return next;
}
