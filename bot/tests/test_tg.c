/* test_tg.c: the Telegram part without a loop or a socket, against an
 * engine: Update decoding (what the webhook answers 400), amounts and
 * addresses, the catalogue, ingest and dedupe, and the flows end to end at
 * the engine level: /start with a referrer, /balance, /deposit (a payment
 * job), the whole withdraw conversation (bad amounts and addresses, the
 * inline keyboard, confirm holding and enqueueing in one step, a second tap
 * doing nothing, a short balance holding nothing), Arabic replies, a user
 * blocking the bot, edited messages, SCAN over users. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "base/alloc.h"
#include "hash.h"
#include "json_mem.h"
#include "keys.h"
#include "ledger.h"
#include "list.h"
#include "tg.h"
#include "tg_int.h"
#include "zset.h"

#define S(x) (x), strlen(x)

static struct eng *E;
static int64_t woken;

static void wake(void *ud, int64_t chat)
{
    (void)ud;
    woken = chat;
}

static int setup(void **st)
{
    (void)st;
    tg__opts_defaults();
    E = eng_new(&(struct eng_config){.nshards = 4, .ndb = 16, .maxmemory_samples = 5});
    tg__set_outbox_wake(wake, NULL);
    return 0;
}

static int teardown(void **st)
{
    (void)st;
    eng_free(E);
    tg__set_outbox_wake(NULL, NULL);
    return 0;
}

/* ---- helpers -------------------------------------------------------------- */

static int64_t next_update = 1000;

static char *msg_json(int64_t uid, const char *lang, const char *text)
{
    static char b[2048];
    snprintf(b, sizeof b,
             "{\"update_id\":%lld,\"message\":{\"message_id\":7,\"date\":1700000000,"
             "\"from\":{\"id\":%lld,\"is_bot\":false,\"first_name\":\"Ann\",\"language_code\":\"%s\"},"
             "\"chat\":{\"id\":%lld,\"type\":\"private\",\"first_name\":\"Ann\"},\"text\":\"%s\"}}",
             (long long)next_update++, (long long)uid, lang, (long long)uid, text);
    return b;
}

static char *cb_json(int64_t uid, const char *data)
{
    static char b[2048];
    snprintf(b, sizeof b,
             "{\"update_id\":%lld,\"callback_query\":{\"id\":\"cb%lld\",\"from\":{\"id\":%lld,\"first_name\":\"Ann\","
             "\"language_code\":\"en\"},\"message\":{\"message_id\":8,\"chat\":{\"id\":%lld,\"type\":\"private\"}},"
             "\"chat_instance\":\"1\",\"data\":\"%s\"}}",
             (long long)next_update, (long long)next_update, (long long)uid, (long long)uid, data);
    next_update++;
    return b;
}

static const char *handle(const char *json)
{
    struct tg_update u;
    char err[128];
    assert_int_equal(tg_update_decode(json, strlen(json), &u, err, sizeof err), 0);
    char bufs[3][48];
    struct eng_str keys[3];
    int n = tg_flow_lock_keys(u.chat_id, bufs, keys);
    struct eng_ctx c;
    eng_ctx_init(&c, E, 0);
    eng_lock_keys(&c, keys, n);
    const char *o = tg_flow_handle(&c, NULL, &u);
    eng_unlock(&c);
    tg_update_release(&u);
    return o;
}

static struct eng_ctx lock_user(int64_t uid)
{
    char tag[48];
    key_user_tag(tag, sizeof tag, uid);
    struct eng_str k = {S(tag)};
    struct eng_ctx c;
    eng_ctx_init(&c, E, 0);
    eng_lock_all(&c);
    (void)k;
    return c;
}

static void collect(void *ud, const char *p, size_t n)
{
    struct buf *b = ud;
    buf_append(b, p, n);
    buf_putc(b, '\n');
}

/* Every outbox entry of uid, one per line; the outbox is emptied. */
static void outbox_take(int64_t uid, struct buf *out)
{
    char key[48];
    key_user(key, sizeof key, "outbox", uid);
    struct eng_ctx c = lock_user(uid);
    buf_reset(out);
    eng_list_range(&c, S(key), 0, -1, NULL, collect, out);
    tg_outbox_drop(&c, uid);
    eng_unlock(&c);
    if (!out->p)
        buf_puts(out, "");
}

static void assert_said(int64_t uid, const char *needle)
{
    struct buf b = BUF_INIT;
    outbox_take(uid, &b);
    if (!strstr(b.p, needle))
        fail_msg("outbox of %lld lacks \"%s\":\n%s", (long long)uid, needle, b.p);
    buf_release(&b);
}

static void hfield(const char *prefix, int64_t uid, const char *field, char *out, size_t n)
{
    char key[48];
    key_user(key, sizeof key, prefix, uid);
    struct eng_ctx c = lock_user(uid);
    struct eng_str v;
    if (eng_hget(&c, S(key), S(field), &v) == 0)
        snprintf(out, n, "%.*s", (int)v.n, v.p);
    else
        snprintf(out, n, "(nil)");
    eng_unlock(&c);
}

static int64_t llen(const char *key)
{
    struct eng_ctx c;
    eng_ctx_init(&c, E, 0);
    eng_lock_all(&c);
    int64_t n = 0;
    eng_list_len(&c, S(key), &n);
    eng_unlock(&c);
    return n;
}

static void credit(int64_t uid, int64_t amount, const char *ref)
{
    struct eng_ctx c = lock_user(uid);
    assert_int_equal(bot_ledger_post(&c, uid, amount, "deposit", ref), LEDGER_OK);
    eng_unlock(&c);
}

/* ---- decoding ----------------------------------------------------------------- */

static void decode_rejects(void **st)
{
    (void)st;
    static const char *bad[] = {"", "{", "[1,2]", "42", "{\"message\":{}}", "{\"update_id\":\"5\"}",
                                "{\"update_id\":-1}", "{\"update_id\":1.5}",
                                "{\"update_id\":3,\"callback_query\":{\"from\":{\"id\":1}}}"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        struct tg_update u;
        char err[128] = "";
        if (tg_update_decode(bad[i], strlen(bad[i]), &u, err, sizeof err) == 0)
            fail_msg("accepted %s", bad[i]);
        assert_true(err[0]);
    }
}

static void decode_kinds(void **st)
{
    (void)st;
    struct tg_update u;
    char err[128];
    const char *m = msg_json(42, "ar-EG", "/start ref_7");
    assert_int_equal(tg_update_decode(m, strlen(m), &u, err, sizeof err), 0);
    assert_int_equal(u.kind, TG_K_MESSAGE);
    assert_int_equal(u.chat_id, 42);
    assert_int_equal(u.user_id, 42);
    assert_string_equal(u.text, "/start ref_7");
    assert_string_equal(tg_lang_of(u.lang), "ar");
    tg_update_release(&u);

    const char *g = "{\"update_id\":5,\"message\":{\"from\":{\"id\":4},\"chat\":{\"id\":-100,\"type\":\"group\"},"
                    "\"text\":\"hi\"}}";
    assert_int_equal(tg_update_decode(g, strlen(g), &u, err, sizeof err), 0);
    assert_int_equal(u.chat_id, 0); /* groups are not served */
    tg_update_release(&u);

    const char *k = "{\"update_id\":6,\"my_chat_member\":{\"from\":{\"id\":9},\"chat\":{\"id\":9,\"type\":\"private\"},"
                    "\"old_chat_member\":{\"status\":\"member\"},\"new_chat_member\":{\"status\":\"kicked\"}}}";
    assert_int_equal(tg_update_decode(k, strlen(k), &u, err, sizeof err), 0);
    assert_int_equal(u.kind, TG_K_MEMBER);
    assert_string_equal(u.member_status, "kicked");
    tg_update_release(&u);

    const char *o = "{\"update_id\":7,\"inline_query\":{\"id\":\"1\"}}";
    assert_int_equal(tg_update_decode(o, strlen(o), &u, err, sizeof err), 0);
    assert_int_equal(u.kind, TG_K_OTHER);
    assert_int_equal(u.chat_id, 0);
    tg_update_release(&u);
}

static void amounts_and_addresses(void **st)
{
    (void)st;
    int64_t v = 0;
    assert_int_equal(tg_amount_parse("12", 0, &v), 0);
    assert_int_equal(v, 1200);
    assert_int_equal(tg_amount_parse("12.5", 0, &v), 0);
    assert_int_equal(v, 1250);
    assert_int_equal(tg_amount_parse("0.01", 0, &v), 0);
    assert_int_equal(v, 1);
    assert_int_equal(tg_amount_parse("3,75", 0, &v), 0);
    assert_int_equal(v, 375);
    assert_int_equal(tg_amount_parse("12.345", 0, &v), TG_AMT_DECIMALS);
    assert_int_equal(tg_amount_parse("0", 0, &v), TG_AMT_ZERO);
    assert_int_equal(tg_amount_parse("0.00", 0, &v), TG_AMT_ZERO);
    static const char *fmt[] = {"", "-5", "abc", "1e3", "1.", ".5", "1.2.3", " 5", "5 "};
    for (size_t i = 0; i < sizeof fmt / sizeof *fmt; i++)
        assert_int_equal(tg_amount_parse(fmt[i], 0, &v), TG_AMT_FORMAT);
    assert_int_equal(tg_amount_parse("99999999999999999999", 0, &v), TG_AMT_TOOBIG);
    assert_int_equal(tg_amount_parse("100.01", 10000, &v), TG_AMT_TOOBIG);
    assert_int_equal(tg_amount_parse("100", 10000, &v), 0);
    char t[48];
    bot_amount_text(1234, t, sizeof t);
    assert_string_equal(t, "12.34 USDT");
    bot_amount_text(-5, t, sizeof t);
    assert_string_equal(t, "-0.05 USDT");

    assert_int_equal(tg_address_check("TQn9Y2khEsLJW1ChVWFMSMeRDow5KcbLSE"), 0);
    assert_int_equal(tg_address_check("short"), -1);
    assert_int_equal(tg_address_check("TQn9Y2khEsLJW1ChVWFMSMeRDow5Kcb!SE"), -2);
    assert_int_equal(tg_address_check("TQn9Y2khEsLJW1ChVWFM SMeRDow5KcbLSE"), -2);
}

static void catalogue(void **st)
{
    (void)st;
    static const char *keys[] = {"deposit_link", "deposit_credited", "withdraw_done", "withdraw_refused",
                                 "withdraw_expired", "welcome", "help", "balance"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        const char *en = tg_msg("en", keys[i]), *ar = tg_msg("ar", keys[i]);
        assert_non_null(en);
        assert_non_null(ar);
        assert_string_not_equal(en, ar);
        /* the same number of arguments in both languages */
        int ne = 0, na = 0;
        for (const char *p = en; (p = strstr(p, "%s")); p++)
            ne++;
        for (const char *p = ar; (p = strstr(p, "%s")); p++)
            na++;
        assert_int_equal(ne, na);
    }
    assert_null(tg_msg("en", "no_such_key"));
    assert_string_equal(tg_lang_of("ar"), "ar");
    assert_string_equal(tg_lang_of("en-US"), "en");
    assert_string_equal(tg_lang_of(""), "en");
    assert_string_equal(tg_lang_of("arn"), "en");
}

/* ---- ingest ------------------------------------------------------------------- */

static void ingest_dedupes(void **st)
{
    (void)st;
    const char *m = msg_json(77, "en", "hello");
    struct tg_update u;
    char err[128];
    assert_int_equal(tg_update_decode(m, strlen(m), &u, err, sizeof err), 0);
    assert_int_equal(tg_ingest(E, &u, m, strlen(m), 1000), 1);
    assert_int_equal(tg_ingest(E, &u, m, strlen(m), 2000), 0);
    assert_int_equal(llen("inbox:{u:77}"), 1);
    tg_update_release(&u);
    /* ids older than the window go; a repeat after that is new again */
    tg__opt.dedupe_window = 10;
    assert_int_equal(tg_seen_prune(E, 1000 + 11000), 1);
    tg__opt.dedupe_window = 86400;
    /* the cap keeps the newest ids */
    tg__opt.dedupe_max = 3;
    for (int i = 0; i < 5; i++) {
        const char *x = msg_json(78, "en", "x");
        assert_int_equal(tg_update_decode(x, strlen(x), &u, err, sizeof err), 0);
        assert_int_equal(tg_ingest(E, &u, x, strlen(x), 5000 + i), 1);
        tg_update_release(&u);
    }
    assert_int_equal(tg_seen_prune(E, 6000), 2);
    tg__opt.dedupe_max = 1000000;
}

/* ---- flows ---------------------------------------------------------------------- */

static void start_and_balance(void **st)
{
    (void)st;
    handle(msg_json(101, "en", "/start ref_55"));
    char v[64];
    hfield("user", 101, "referrer", v, sizeof v);
    assert_string_equal(v, "55");
    hfield("user", 101, "active", v, sizeof v);
    assert_string_equal(v, "1");
    hfield("user", 101, "lang", v, sizeof v);
    assert_string_equal(v, "en");
    assert_int_equal(woken, 101);
    assert_said(101, "Welcome, Ann");
    /* a second /start keeps the first referrer */
    handle(msg_json(101, "en", "/start ref_66"));
    hfield("user", 101, "referrer", v, sizeof v);
    assert_string_equal(v, "55");
    assert_said(101, "Welcome");
    /* a self-referral is not recorded */
    handle(msg_json(102, "en", "/start ref_102"));
    hfield("user", 102, "referrer", v, sizeof v);
    assert_string_equal(v, "0");
    credit(101, 4250, "dep-1");
    handle(msg_json(101, "en", "/balance"));
    assert_said(101, "Your balance: 42.50 USDT (on hold: 0.00 USDT)");
    handle(msg_json(101, "en", "/help"));
    assert_said(101, "/withdraw");
    handle(msg_json(101, "en", "/nope"));
    assert_said(101, "do not know that command");
    handle(msg_json(101, "en", "/balance@obentchi_bot"));
    assert_said(101, "42.50 USDT");
}

static void arabic(void **st)
{
    (void)st;
    handle(msg_json(201, "ar", "/start"));
    assert_said(201, "أهلاً Ann");
    handle(msg_json(201, "ar", "/balance"));
    assert_said(201, "رصيدك: 0.00 USDT");
    char v[16];
    hfield("user", 201, "lang", v, sizeof v);
    assert_string_equal(v, "ar");
}

static void deposit(void **st)
{
    (void)st;
    handle(msg_json(301, "en", "/start"));
    assert_said(301, "Welcome");
    handle(msg_json(301, "en", "/deposit"));
    assert_said(301, "/deposit 25.50");
    handle(msg_json(301, "en", "/deposit 1.234"));
    assert_said(301, "At most 2 decimals");
    assert_int_equal(llen("queue:{q:payment}:waiting"), 0);
    handle(msg_json(301, "en", "/deposit 25.50"));
    assert_said(301, "Creating your payment link for 25.50 USDT");
    assert_int_equal(llen("queue:{q:payment}:waiting"), 1);
}

static void withdraw_conversation(void **st)
{
    (void)st;
    const int64_t uid = 401;
    char v[128];
    handle(msg_json(uid, "en", "/start"));
    credit(uid, 10000, "dep-401");
    struct buf b = BUF_INIT;
    outbox_take(uid, &b); /* the welcome */
    handle(msg_json(uid, "en", "/withdraw"));
    assert_said(uid, "How much do you want to withdraw? Your balance is 100.00 USDT");
    hfield("session", uid, "state", v, sizeof v);
    assert_string_equal(v, "withdraw_amount");
    handle(msg_json(uid, "en", "lots"));
    assert_said(uid, "not an amount");
    handle(msg_json(uid, "en", "0"));
    assert_said(uid, "more than zero");
    handle(msg_json(uid, "en", "150"));
    assert_said(uid, "too low");
    handle(msg_json(uid, "en", "20000"));
    assert_said(uid, "The most you can use at once is 10000.00 USDT");
    hfield("session", uid, "state", v, sizeof v);
    assert_string_equal(v, "withdraw_amount");
    handle(msg_json(uid, "en", "60.25"));
    assert_said(uid, "Withdrawing 60.25 USDT. Send the wallet address.");
    handle(msg_json(uid, "en", "abc"));
    assert_said(uid, "26 to 64 characters");
    handle(msg_json(uid, "en", "TQn9Y2khEsLJW1ChVWFMSMeRDow5Kcb-SE"));
    assert_said(uid, "characters a wallet address cannot have");
    int64_t confirm_id = next_update;
    handle(msg_json(uid, "en", "TQn9Y2khEsLJW1ChVWFMSMeRDow5KcbLSE"));
    char data[64];
    snprintf(data, sizeof data, "\"callback_data\":\"wd:ok:%lld\"", (long long)confirm_id);
    outbox_take(uid, &b);
    assert_non_null(strstr(b.p, "Withdraw 60.25 USDT to TQn9Y2khEsLJW1ChVWFMSMeRDow5KcbLSE?"));
    assert_non_null(strstr(b.p, "inline_keyboard"));
    assert_non_null(strstr(b.p, data));
    buf_release(&b);
    hfield("session", uid, "state", v, sizeof v);
    assert_string_equal(v, "withdraw_confirm");
    /* a text while the keyboard waits */
    handle(msg_json(uid, "en", "hello?"));
    assert_said(uid, "finish or /cancel");
    /* a stale keyboard's button does nothing but answer */
    handle(cb_json(uid, "wd:ok:1"));
    assert_said(uid, "answerCallbackQuery");
    struct eng_ctx c = lock_user(uid);
    assert_int_equal(bot_ledger_held(&c, uid), 0);
    eng_unlock(&c);
    /* confirm: held and enqueued together */
    snprintf(data, sizeof data, "wd:ok:%lld", (long long)confirm_id);
    handle(cb_json(uid, data));
    outbox_take(uid, &b);
    assert_non_null(strstr(b.p, "answerCallbackQuery"));
    assert_non_null(strstr(b.p, "Withdrawal of 60.25 USDT requested"));
    buf_release(&b);
    c = lock_user(uid);
    assert_int_equal(bot_ledger_held(&c, uid), 6025);
    assert_int_equal(bot_ledger_balance(&c, uid), 3975);
    assert_int_equal(bot_ledger_check(&c, uid), 1);
    eng_unlock(&c);
    assert_int_equal(llen("queue:{q:withdrawal}:waiting"), 1);
    hfield("session", uid, "state", v, sizeof v);
    assert_string_equal(v, "idle");
    /* a second tap: nothing more */
    handle(cb_json(uid, data));
    assert_said(uid, "no withdrawal waiting");
    c = lock_user(uid);
    assert_int_equal(bot_ledger_held(&c, uid), 6025);
    eng_unlock(&c);
    assert_int_equal(llen("queue:{q:withdrawal}:waiting"), 1);
}

static void withdraw_short_and_cancel(void **st)
{
    (void)st;
    const int64_t uid = 501;
    handle(msg_json(uid, "en", "/start"));
    credit(uid, 5000, "dep-501");
    handle(msg_json(uid, "en", "/withdraw"));
    handle(msg_json(uid, "en", "40"));
    int64_t confirm_id = next_update;
    handle(msg_json(uid, "en", "TQn9Y2khEsLJW1ChVWFMSMeRDow5KcbLSE"));
    /* the balance drops below the amount before the confirm */
    struct eng_ctx c = lock_user(uid);
    assert_int_equal(bot_ledger_post(&c, uid, -2000, "adjust", "adj-501"), LEDGER_OK);
    eng_unlock(&c);
    char data[64];
    snprintf(data, sizeof data, "wd:ok:%lld", (long long)confirm_id);
    handle(cb_json(uid, data));
    assert_said(uid, "Your balance (30.00 USDT) is too low");
    c = lock_user(uid);
    assert_int_equal(bot_ledger_held(&c, uid), 0);
    assert_int_equal(bot_ledger_balance(&c, uid), 3000);
    eng_unlock(&c);
    assert_int_equal(llen("queue:{q:withdrawal}:waiting"), 1); /* only the previous test's job */
    /* cancel by button, then /cancel with nothing going on */
    handle(msg_json(uid, "en", "/withdraw"));
    handle(msg_json(uid, "en", "10"));
    confirm_id = next_update;
    handle(msg_json(uid, "en", "TQn9Y2khEsLJW1ChVWFMSMeRDow5KcbLSE"));
    snprintf(data, sizeof data, "wd:no:%lld", (long long)confirm_id);
    handle(cb_json(uid, data));
    assert_said(uid, "Withdrawal cancelled.");
    handle(msg_json(uid, "en", "/cancel"));
    assert_said(uid, "Nothing to cancel.");
    handle(msg_json(uid, "en", "/withdraw"));
    handle(msg_json(uid, "en", "/cancel"));
    assert_said(uid, "Cancelled.");
    char v[32];
    hfield("session", uid, "state", v, sizeof v);
    assert_string_equal(v, "idle");
    /* the session has a TTL, the user none */
    c = lock_user(uid);
    int64_t ttl = eng_pttl(&c, S("session:{u:501}"));
    assert_true(ttl > 86000 * 1000 && ttl <= 86400 * 1000);
    assert_int_equal(eng_pttl(&c, S("user:{u:501}")), -1);
    eng_unlock(&c);
}

static void blocked_and_edited(void **st)
{
    (void)st;
    const int64_t uid = 601;
    handle(msg_json(uid, "en", "/start"));
    handle(msg_json(uid, "en", "/help"));
    assert_int_equal(llen("outbox:{u:601}"), 2);
    const char *k = "{\"update_id\":99001,\"my_chat_member\":{\"from\":{\"id\":601},\"chat\":{\"id\":601,\"type\":"
                    "\"private\"},\"new_chat_member\":{\"status\":\"kicked\"}}}";
    handle(k);
    char v[16];
    hfield("user", uid, "active", v, sizeof v);
    assert_string_equal(v, "0");
    assert_int_equal(llen("outbox:{u:601}"), 0);
    struct eng_ctx c = lock_user(uid);
    assert_int_equal(bot_tell(&c, NULL, uid, "withdraw_done", "1.00 USDT"), 0); /* not queued */
    eng_unlock(&c);
    assert_int_equal(llen("outbox:{u:601}"), 0);
    /* writing again means they unblocked */
    handle(msg_json(uid, "en", "/balance"));
    hfield("user", uid, "active", v, sizeof v);
    assert_string_equal(v, "1");
    assert_said(uid, "Your balance");
    const char *ed = "{\"update_id\":99002,\"edited_message\":{\"message_id\":3,\"from\":{\"id\":601},\"chat\":{\"id\":"
                     "601,\"type\":\"private\"},\"text\":\"/withdraw\"}}";
    assert_string_equal(handle(ed), "ignored");
    assert_said(uid, "only read new messages");
    c = lock_user(uid);
    assert_int_equal(bot_tell(&c, NULL, uid, "deposit_link", "5.00 USDT", "https://pay.example/i/1"), 1);
    eng_unlock(&c);
    assert_said(uid, "Pay 5.00 USDT here: https://pay.example/i/1");
}

static void scan_ids(void *ud, int64_t uid)
{
    int *seen = ud;
    if (uid == 101 || uid == 201 || uid == 601)
        (*seen)++;
    struct eng_ctx c = lock_user(uid); /* fn may lock: called outside the scan's locks */
    struct bot_user u;
    assert_int_equal(bot_user_get(&c, uid, &u), 1);
    assert_int_equal(u.id, uid);
    eng_unlock(&c);
}

static void users_scan(void **st)
{
    (void)st;
    int seen = 0;
    uint64_t cur = 0;
    do
        cur = bot_users_scan(E, cur, 10, scan_ids, &seen);
    while (cur);
    assert_int_equal(seen, 3);
    struct eng_ctx c = lock_user(201);
    struct bot_user u;
    assert_int_equal(bot_user_get(&c, 201, &u), 1);
    assert_string_equal(u.lang, "ar");
    assert_string_equal(u.name, "Ann");
    assert_int_equal(u.active, 1);
    assert_int_equal(bot_user_get(&c, 999999, &u), 0);
    eng_unlock(&c);
}

/* A first name is kept whole up to Telegram's 64 characters of any width
 * (it was cut at 63 bytes, through a character); a longer one is cut
 * between characters. */
static void user_names_whole(void **st)
{
    (void)st;
    static const struct {
        const char *ch; /* one character */
        int reps;
        size_t want; /* bytes kept */
    } cases[] = {
        {"\xd9\x85", 64, 128},        /* Arabic meem: 64 characters, 2 bytes each */
        {"\xf0\x9f\x92\xb0", 64, 256}, /* money bag: 64 characters, 4 bytes each */
        {"\xe2\x82\xac", 90, 255},    /* euro sign x 90 (270 bytes): 85 whole ones */
        {"\xf0\x9f\x92\xb0", 70, 256}, /* 280 bytes: 64 whole ones */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char name[400] = "";
        for (int r = 0; r < cases[i].reps; r++)
            strcat(name, cases[i].ch);
        int64_t uid = 7100 + (int64_t)i;
        struct eng_ctx c = lock_user(uid);
        assert_int_equal(tg_user_touch(&c, uid, "ar", name, 0), 1);
        struct bot_user u;
        assert_int_equal(bot_user_get(&c, uid, &u), 1);
        eng_unlock(&c);
        assert_int_equal(strlen(u.name), cases[i].want);
        assert_memory_equal(u.name, name, cases[i].want);
    }
}

/* The sender takes off only the head it sent: when the outbox was dropped
 * (the user blocked the bot) and refilled while a call was in flight, the
 * call's answer must not take the new head, which was never sent. */
static void outbox_pop_only_what_was_sent(void **st)
{
    (void)st;
    const int64_t uid = 702;
    struct eng_ctx c = lock_user(uid);
    struct buf a = BUF_INIT, b = BUF_INIT, head = BUF_INIT;
    assert_int_equal(bot_outbox_push(&c, NULL, uid, "sendMessage", "{\"chat_id\":702,\"text\":\"one\"}", 0), 1);
    assert_int_equal(bot_outbox_push(&c, NULL, uid, "sendMessage", "{\"chat_id\":702,\"text\":\"two\"}", 0), 1);
    assert_int_equal(tg_outbox_peek(&c, uid, &a), 1); /* "one" goes out */
    uint64_t sent = tg_outbox_entry_tag(a.p, a.len);
    int64_t before = bot_outbox_depth(NULL);
    assert_int_equal(tg_outbox_drop(&c, uid), 2);     /* meanwhile: blocked, then back */
    assert_int_equal(bot_outbox_push(&c, NULL, uid, "sendMessage", "{\"chat_id\":702,\"text\":\"three\"}", 0), 1);
    assert_int_equal(tg_outbox_pop_head(&c, uid, sent), 0); /* "one" answered: "three" stays */
    assert_int_equal(tg_outbox_peek(&c, uid, &head), 1);
    assert_non_null(strstr(head.p, "three"));
    assert_int_equal(bot_outbox_depth(NULL), before - 2 + 1);
    /* the head it sent goes, once */
    assert_int_equal(tg_outbox_peek(&c, uid, &b), 1);
    uint64_t t3 = tg_outbox_entry_tag(b.p, b.len);
    assert_true(t3 != sent);
    assert_int_equal(tg_outbox_pop_head(&c, uid, t3), 1);
    assert_int_equal(tg_outbox_pop_head(&c, uid, t3), 0); /* empty now */
    assert_int_equal(tg_outbox_peek(&c, uid, &head), 0);
    assert_int_equal(bot_outbox_depth(NULL), before - 2);
    eng_unlock(&c);
    buf_release(&a);
    buf_release(&b);
    buf_release(&head);
}

/* The outbox entry format: what bot_outbox_push writes is read back by
 * position (params byte for byte), other shapes as JSON, junk refused; the
 * JSON writers escape as cJSON does and keys match keys.h's. */
static void outbox_entries(void **st)
{
    (void)st;
    const int64_t uid = 701;
    struct eng_ctx c = lock_user(uid);
    const char *params = "{\"chat_id\":701,\"text\":\"a }} \\\"q\\\" \u00e9\",\"x\":{\"y\":[1,{}]}}";
    assert_int_equal(bot_outbox_push(&c, NULL, uid, "sendMessage", params, BOT_OUT_BULK), 1);
    assert_int_equal(bot_outbox_push(&c, NULL, uid, "odd\"name", "{}", 0), 1);
    struct buf entry = BUF_INIT, scratch = BUF_INIT;
    struct tg_outbox_entry e;
    assert_int_equal(tg_outbox_peek(&c, uid, &entry), 1);
    assert_int_equal(tg_outbox_entry_read(entry.p, entry.len, &e, &scratch), 0);
    assert_string_equal(e.method, "sendMessage");
    assert_int_equal(e.flags, BOT_OUT_BULK);
    assert_int_equal(e.params_len, strlen(params));
    assert_memory_equal(e.params, params, strlen(params));
    assert_true(e.params >= entry.p && e.params < entry.p + entry.len); /* read in place */
    assert_int_equal(tg_outbox_pop_head(&c, uid, tg_outbox_entry_tag(entry.p, entry.len)), 1);
    /* a method that needed escaping: written by cJSON, read as JSON */
    assert_int_equal(tg_outbox_peek(&c, uid, &entry), 1);
    assert_non_null(strstr(entry.p, "\"odd\\\"name\""));
    assert_int_equal(tg_outbox_entry_read(entry.p, entry.len, &e, &scratch), 0);
    assert_string_equal(e.method, "odd\"name");
    assert_int_equal(e.params_len, 2);
    assert_int_equal(tg_outbox_pop_head(&c, uid, tg_outbox_entry_tag(entry.p, entry.len)), 1);
    eng_unlock(&c);
    /* other shapes: spaces, another key order, no flags; junk */
    const char *other = "{ \"p\": {\"chat_id\": 5, \"text\": \"hi\"}, \"m\": \"sendMessage\" }";
    assert_int_equal(tg_outbox_entry_read(other, strlen(other), &e, &scratch), 0);
    assert_string_equal(e.method, "sendMessage");
    assert_int_equal(e.flags, 0);
    assert_int_equal(e.params_len, strlen("{\"chat_id\":5,\"text\":\"hi\"}"));
    assert_memory_equal(e.params, "{\"chat_id\":5,\"text\":\"hi\"}", e.params_len);
    const char *bad[] = {"", "{}", "not json", "{\"m\":\"sendMessage\",\"f\":0,\"t\":1,\"p\":[1]}",
                         "{\"m\":5,\"p\":{}}", "{\"m\":\"sendMessage\",\"f\":0,\"t\":1,\"p\":{\"a\":1}"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(tg_outbox_entry_read(bad[i], strlen(bad[i]), &e, &scratch), -1);
    /* JSON writers */
    struct buf j = BUF_INIT;
    tg__json_string(&j, "a\"b\\c\n\x01\xd8\xb1");
    assert_string_equal(j.p, "\"a\\\"b\\\\c\\n\\u0001\xd8\xb1\"");
    buf_reset(&j);
    char big[9000];
    memset(big, '"', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    tg__json_string(&j, big); /* past the stack buffer: written in place */
    assert_int_equal(j.len, 2 * (sizeof big - 1) + 2);
    buf_reset(&j);
    tg__json_int(&j, -9007199254740993LL);
    assert_string_equal(j.p, "-9007199254740993");
    buf_release(&j);
    char k1[48], k2[48];
    key_user(k1, sizeof k1, "outbox", -1001234567890LL);
    tg__key_user(k2, "outbox", -1001234567890LL);
    assert_string_equal(k1, k2);
    key_user_tag(k1, sizeof k1, 42);
    tg__key_tag(k2, 42);
    assert_string_equal(k1, k2);
    buf_release(&entry);
    buf_release(&scratch);
}

/* ---- json_mem: cJSON from the heap, or from a thread's arena --------------- */

static void *parse_on_thread(void *arg)
{
    /* another thread while an arena is open here: its blocks are the heap's */
    cJSON *j = cJSON_Parse((const char *)arg);
    char *t = cJSON_PrintUnformatted(j);
    cJSON_Delete(j); /* a leak or a bad free here shows under the sanitizers */
    return t;
}

static void json_arenas(void **state)
{
    (void)state;
    /* heap blocks: parse, print, free one by one, as everywhere else */
    cJSON *h = cJSON_Parse("{\"a\":[1,2,\"x\"]}");
    assert_non_null(h);
    char *ht = cJSON_PrintUnformatted(h);
    assert_string_equal(ht, "{\"a\":[1,2,\"x\"]}");
    cJSON_free(ht);
    cJSON_Delete(h);

    /* an arena far smaller than the document: blocks chain */
    struct buf doc = BUF_INIT;
    buf_puts(&doc, "{\"items\":[");
    for (int i = 0; i < 2000; i++)
        buf_printf(&doc, "%s{\"id\":%d,\"name\":\"item number %d\"}", i ? "," : "", i, i);
    buf_puts(&doc, "]}");
    struct json_arena *a = json_arena_open(16);
    size_t first = json_arena_bytes(a);
    cJSON *t = cJSON_ParseWithLength(doc.p, doc.len);
    pthread_t th;
    void *other = NULL;
    assert_int_equal(pthread_create(&th, NULL, parse_on_thread, "{\"b\":true}"), 0);
    assert_int_equal(pthread_join(th, &other), 0);
    assert_string_equal(other, "{\"b\":true}");
    cJSON_free(other);
    json_arena_close(a);
    assert_non_null(t);
    assert_true(json_arena_bytes(a) > first); /* more blocks were taken */
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(t, "items");
    assert_int_equal(cJSON_GetArraySize(items), 2000);
    const cJSON *last = cJSON_GetArrayItem(items, 1999);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(last, "name")->valuestring, "item number 1999");
    /* closed: what cJSON allocates now is the heap's again */
    cJSON *after = cJSON_Parse("[3]");
    cJSON_Delete(after);
    json_arena_free(a); /* the whole tree at once */
    buf_release(&doc);

    /* a decoded update lives in its arena; release frees it whole */
    struct tg_update u;
    char err[128];
    const char *js = "{\"update_id\":7,\"message\":{\"message_id\":1,\"date\":1,\"from\":{\"id\":5,\"is_bot\":false,"
                     "\"first_name\":\"Rana\",\"language_code\":\"ar\"},\"chat\":{\"id\":5,\"type\":\"private\"},"
                     "\"text\":\"/help\"}}";
    assert_int_equal(tg_update_decode(js, strlen(js), &u, err, sizeof err), 0);
    assert_non_null(u.arena);
    assert_string_equal(u.text, "/help");
    assert_string_equal(u.name, "Rana");
    tg_update_release(&u);
    assert_null(u.arena);
    /* a rejected one leaves nothing behind */
    assert_int_equal(tg_update_decode("[1,2", 4, &u, err, sizeof err), -1);
    assert_null(u.arena);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(decode_rejects),       cmocka_unit_test(decode_kinds),
        cmocka_unit_test(amounts_and_addresses), cmocka_unit_test(catalogue),
        cmocka_unit_test(ingest_dedupes),       cmocka_unit_test(start_and_balance),
        cmocka_unit_test(arabic),               cmocka_unit_test(deposit),
        cmocka_unit_test(withdraw_conversation), cmocka_unit_test(withdraw_short_and_cancel),
        cmocka_unit_test(blocked_and_edited),   cmocka_unit_test(users_scan),
        cmocka_unit_test(outbox_pop_only_what_was_sent), cmocka_unit_test(outbox_entries),
        cmocka_unit_test(json_arenas),          cmocka_unit_test(user_names_whole),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
