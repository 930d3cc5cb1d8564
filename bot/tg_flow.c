/* tg_flow.c: what the bot does with an update: the commands (a table) and
 * the withdraw conversation, a state machine kept in the session:
 *
 *   idle --/withdraw--> withdraw_amount --amount ok--> withdraw_address
 *        --address ok--> withdraw_confirm --[Confirm]--> idle (held + job)
 *                                          --[Cancel]---> idle
 *   /cancel from any state -> idle; a session that expires is idle again.
 *
 * Everything runs inside one context holding the user's tag and the tags
 * of the queues a flow adds to (tg_flow_lock_keys), so "check the balance,
 * hold the funds, enqueue the withdrawal" is one atomic step, and so is
 * "change the state, queue the reply".  Replies go to the outbox only. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "base/log.h"
#include "base/num.h"
#include "keys.h"
#include "ledger.h"
#include "queue.h"
#include "tg.h"
#include "tg_int.h"

struct flow {
    struct eng_ctx *c;
    struct app *a;
    const struct tg_update *u;
    int64_t uid;
    const char *lang;
    struct tg_session s;
};

int tg_flow_lock_keys(int64_t chat, char bufs[][48], struct eng_str *keys)
{
    tg__key_tag(bufs[0], chat);
    /* key_queue_tag()'s "{q:<name>}" of the two queues, as constants */
    memcpy(bufs[1], "{q:payment}", sizeof "{q:payment}");
    memcpy(bufs[2], "{q:withdrawal}", sizeof "{q:withdrawal}");
    for (int i = 0; i < 3; i++)
        keys[i] = (struct eng_str){bufs[i], strlen(bufs[i])};
    return 3;
}

static void say(struct flow *f, const char *key, ...)
{
    const char *fmt = tg_msg(f->lang, key);
    char text[4096];
    va_list ap;
    va_start(ap, key);
    vsnprintf(text, sizeof text, fmt ? fmt : key, ap);
    va_end(ap);
    tg__outbox_text(f->c, f->a, f->uid, text);
}

static void amount_text(int64_t minor, char *out) { bot_amount_text(minor, out, 48); }

static void session_set(struct flow *f, int state)
{
    if (state == TG_S_IDLE)
        memset(&f->s, 0, sizeof f->s);
    f->s.state = state;
    tg_session_put(f->c, f->uid, &f->s, f->lang);
}

/* A clear reply for a bad amount; 0 when the amount is good. */
static int amount_or_say(struct flow *f, const char *text, int64_t max, int64_t *out)
{
    char m[48];
    switch (tg_amount_parse(text, max, out)) {
    case TG_AMT_OK:
        return 0;
    case TG_AMT_ZERO:
        say(f, "amount_zero");
        break;
    case TG_AMT_DECIMALS:
        say(f, "amount_decimals");
        break;
    case TG_AMT_TOOBIG:
        amount_text(max, m);
        say(f, "amount_too_big", m);
        break;
    default:
        say(f, "amount_format");
    }
    return -1;
}

/* ---- commands ------------------------------------------------------------ */

static void cmd_start(struct flow *f, const char *arg)
{
    int64_t ref = 0;
    if (!strncmp(arg, "ref_", 4) && num_parse_i64(arg + 4, strlen(arg + 4), &ref) < 0)
        ref = 0;
    tg_user_touch(f->c, f->uid, f->lang, f->u->name, ref);
    session_set(f, TG_S_IDLE);
    say(f, "welcome", *f->u->name ? f->u->name : "friend");
}

static void cmd_help(struct flow *f, const char *arg)
{
    (void)arg;
    say(f, "help");
}

static void cmd_balance(struct flow *f, const char *arg)
{
    (void)arg;
    char b[48], h[48];
    amount_text(bot_ledger_balance(f->c, f->uid), b);
    amount_text(bot_ledger_held(f->c, f->uid), h);
    say(f, "balance", b, h);
}

static void cmd_deposit(struct flow *f, const char *arg)
{
    int64_t amount;
    if (!*arg) {
        say(f, "deposit_usage");
        return;
    }
    if (amount_or_say(f, arg, tg__opt.max_deposit, &amount) < 0)
        return;
    char inv[64], m[48];
    snprintf(inv, sizeof inv, "inv-%lld-%lld", (long long)f->uid, (long long)f->u->update_id);
    cJSON *p = cJSON_CreateObject();
    cJSON_AddNumberToObject(p, "user_id", (double)f->uid);
    cJSON_AddNumberToObject(p, "amount", (double)amount);
    cJSON_AddStringToObject(p, "invoice_id", inv);
    char *js = cJSON_PrintUnformatted(p);
    int rc = bot_queue_add_ctx(f->c, "payment", js, strlen(js), inv, 0, NULL);
    cJSON_free(js);
    cJSON_Delete(p);
    if (rc < 0) {
        log_warn("deposit not queued", "user=%lld rc=%d", (long long)f->uid, rc);
        say(f, "try_later");
        return;
    }
    amount_text(amount, m);
    say(f, "deposit_pending", m);
}

static void cmd_withdraw(struct flow *f, const char *arg)
{
    (void)arg;
    char b[48];
    amount_text(bot_ledger_balance(f->c, f->uid), b);
    session_set(f, TG_S_WD_AMOUNT);
    say(f, "withdraw_ask_amount", b);
}

static const char *history_kind(const char *lang, const char *kind);

static void cmd_history(struct flow *f, const char *arg)
{
    (void)arg;
    struct bot_ledger_entry e[10];
    int n = bot_ledger_history(f->c, f->uid, e, 10);
    if (n <= 0) {
        say(f, "history_empty");
        return;
    }
    struct buf t = BUF_INIT;
    buf_puts(&t, tg_msg(f->lang, "history_head"));
    for (int i = 0; i < n; i++) {
        char when[32], amt[48], bal[48];
        time_t s = (time_t)(e[i].time_ms / 1000);
        struct tm tm;
        gmtime_r(&s, &tm);
        strftime(when, sizeof when, "%Y-%m-%d %H:%M", &tm);
        amount_text(e[i].amount, amt);
        amount_text(e[i].balance, bal);
        buf_putc(&t, '\n');
        buf_printf(&t, tg_msg(f->lang, "history_line"), when, history_kind(f->lang, e[i].kind), amt, bal);
    }
    say(f, "%s", t.p); /* unknown key: the text itself is the format */
    buf_release(&t);
}

static const char *history_kind(const char *lang, const char *kind)
{
    static const char *const ar[][2] = {{"deposit", "إيداع"}, {"hold", "حجز"},      {"release", "إرجاع"},
                                        {"settle", "سحب"},    {"adjust", "تسوية"}};
    if (strcmp(lang, "ar"))
        return kind;
    for (size_t i = 0; i < sizeof ar / sizeof *ar; i++)
        if (!strcmp(ar[i][0], kind))
            return ar[i][1];
    return kind;
}

static void cmd_cancel(struct flow *f, const char *arg)
{
    (void)arg;
    if (f->s.state == TG_S_IDLE) {
        say(f, "nothing_to_cancel");
        return;
    }
    session_set(f, TG_S_IDLE);
    say(f, "cancelled");
}

static const struct {
    const char *name;
    void (*fn)(struct flow *f, const char *arg);
} commands[] = {
    {"start", cmd_start},     {"help", cmd_help},       {"balance", cmd_balance}, {"deposit", cmd_deposit},
    {"withdraw", cmd_withdraw}, {"history", cmd_history}, {"cancel", cmd_cancel},
};

static void on_command(struct flow *f, const char *text)
{
    char name[32];
    size_t n = strcspn(text + 1, " @\n\t");
    const char *arg = text + 1 + n;
    if (*arg == '@') /* /cmd@botname */
        arg += strcspn(arg, " \n\t");
    arg += strspn(arg, " \n\t");
    snprintf(name, sizeof name, "%.*s", (int)(n < sizeof name ? n : sizeof name - 1), text + 1);
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        if (!strcmp(commands[i].name, name)) {
            commands[i].fn(f, arg);
            return;
        }
    say(f, "unknown_command");
}

/* ---- the withdraw conversation ------------------------------------------- */

static void on_amount(struct flow *f, const char *text)
{
    int64_t amount;
    if (amount_or_say(f, text, tg__opt.max_withdrawal, &amount) < 0)
        return;
    int64_t bal = bot_ledger_balance(f->c, f->uid);
    char m[48];
    if (amount > bal) {
        amount_text(bal, m);
        say(f, "balance_short", m);
        return;
    }
    f->s.amount = amount;
    session_set(f, TG_S_WD_ADDRESS);
    amount_text(amount, m);
    say(f, "withdraw_ask_address", m);
}

static void on_address(struct flow *f, const char *text)
{
    char lo[24], hi[24];
    switch (tg_address_check(text)) {
    case -1:
        snprintf(lo, sizeof lo, "%lld", (long long)tg__opt.addr_min);
        snprintf(hi, sizeof hi, "%lld", (long long)tg__opt.addr_max);
        say(f, "address_length", lo, hi);
        return;
    case -2:
        say(f, "address_charset");
        return;
    }
    snprintf(f->s.address, sizeof f->s.address, "%s", text);
    snprintf(f->s.ref, sizeof f->s.ref, "wd-%lld-%lld", (long long)f->uid, (long long)f->u->update_id);
    session_set(f, TG_S_WD_CONFIRM);
    char m[48], text_[512], ok[48], no[48];
    amount_text(f->s.amount, m);
    snprintf(text_, sizeof text_, tg_msg(f->lang, "withdraw_confirm"), m, f->s.address);
    snprintf(ok, sizeof ok, "wd:ok:%lld", (long long)f->u->update_id);
    snprintf(no, sizeof no, "wd:no:%lld", (long long)f->u->update_id);
    cJSON *p = cJSON_CreateObject();
    cJSON_AddNumberToObject(p, "chat_id", (double)f->uid);
    cJSON_AddStringToObject(p, "text", text_);
    cJSON *row = cJSON_CreateArray();
    cJSON *b1 = cJSON_CreateObject(), *b2 = cJSON_CreateObject();
    cJSON_AddStringToObject(b1, "text", tg_msg(f->lang, "btn_confirm"));
    cJSON_AddStringToObject(b1, "callback_data", ok);
    cJSON_AddStringToObject(b2, "text", tg_msg(f->lang, "btn_cancel"));
    cJSON_AddStringToObject(b2, "callback_data", no);
    cJSON_AddItemToArray(row, b1);
    cJSON_AddItemToArray(row, b2);
    cJSON *kb = cJSON_CreateArray();
    cJSON_AddItemToArray(kb, row);
    cJSON *markup = cJSON_AddObjectToObject(p, "reply_markup");
    cJSON_AddItemToObject(markup, "inline_keyboard", kb);
    char *js = cJSON_PrintUnformatted(p);
    bot_outbox_push(f->c, f->a, f->uid, "sendMessage", js, 0);
    cJSON_free(js);
    cJSON_Delete(p);
}

/* Confirmed: hold and enqueue in this one locked step, or neither. */
static void withdraw_confirmed(struct flow *f)
{
    char m[48];
    int rc = bot_ledger_hold(f->c, f->uid, f->s.amount, f->s.ref);
    if (rc == LEDGER_SHORT) {
        amount_text(bot_ledger_balance(f->c, f->uid), m);
        session_set(f, TG_S_IDLE);
        say(f, "balance_short", m);
        return;
    }
    if (rc < 0) {
        log_warn("withdrawal hold failed", "user=%lld ref=%s rc=%d", (long long)f->uid, f->s.ref, rc);
        say(f, "try_later");
        return;
    }
    if (rc == LEDGER_OK) {
        cJSON *p = cJSON_CreateObject();
        cJSON_AddNumberToObject(p, "user_id", (double)f->uid);
        cJSON_AddNumberToObject(p, "amount", (double)f->s.amount);
        cJSON_AddStringToObject(p, "address", f->s.address);
        cJSON_AddStringToObject(p, "ref", f->s.ref);
        char *js = cJSON_PrintUnformatted(p);
        int q = bot_queue_add_ctx(f->c, "withdrawal", js, strlen(js), f->s.ref, 0, NULL);
        cJSON_free(js);
        cJSON_Delete(p);
        if (q < 0) {
            bot_ledger_release(f->c, f->uid, f->s.ref);
            log_warn("withdrawal not queued", "user=%lld ref=%s rc=%d", (long long)f->uid, f->s.ref, q);
            say(f, "try_later");
            return;
        }
        log_info("withdrawal requested", "user=%lld ref=%s amount=%lld", (long long)f->uid, f->s.ref,
                 (long long)f->s.amount);
    }
    amount_text(f->s.amount, m);
    session_set(f, TG_S_IDLE);
    say(f, "withdraw_requested", m);
}

static void answer_callback(struct flow *f, const char *text)
{
    struct buf p = BUF_INIT;
    buf_puts(&p, "{\"callback_query_id\":");
    tg__json_string(&p, f->u->cb_id);
    if (text) {
        buf_puts(&p, ",\"text\":");
        tg__json_string(&p, text);
    }
    buf_putc(&p, '}');
    bot_outbox_push(f->c, f->a, f->uid, "answerCallbackQuery", p.p, 0);
    buf_release(&p);
}

static void on_callback(struct flow *f)
{
    const char *d = f->u->cb_data;
    int ok = !strncmp(d, "wd:ok:", 6), no = !strncmp(d, "wd:no:", 6);
    char want[96];
    snprintf(want, sizeof want, "wd-%lld-%s", (long long)f->uid, d + (ok || no ? 6 : 0));
    if ((ok || no) && f->s.state == TG_S_WD_CONFIRM && !strcmp(want, f->s.ref)) {
        answer_callback(f, NULL);
        if (ok) {
            withdraw_confirmed(f);
        } else {
            session_set(f, TG_S_IDLE);
            say(f, "withdraw_cancelled");
        }
        return;
    }
    /* An old keyboard, a second tap, an expired session: say so in the
     * callback answer only (Telegram shows it as a toast). */
    answer_callback(f, tg_msg(f->lang, "withdraw_nothing"));
}

static void on_text(struct flow *f, const char *text)
{
    if (text[0] == '/') {
        on_command(f, text);
        return;
    }
    switch (f->s.state) {
    case TG_S_WD_AMOUNT:
        on_amount(f, text);
        break;
    case TG_S_WD_ADDRESS:
        on_address(f, text);
        break;
    case TG_S_WD_CONFIRM:
        say(f, "busy");
        break;
    default:
        say(f, "help");
    }
}

const char *tg_flow_handle(struct eng_ctx *c, struct app *a, const struct tg_update *u)
{
    if (!u->chat_id)
        return "ignored";
    struct flow f = {.c = c, .a = a, .u = u, .uid = u->chat_id, .lang = tg_lang_of(u->lang)};
    switch (u->kind) {
    case TG_K_MEMBER:
        if (!strcmp(u->member_status, "kicked") || !strcmp(u->member_status, "left")) {
            tg_user_set_active(c, f.uid, 0);
            log_info("user blocked the bot", "user=%lld", (long long)f.uid);
        } else if (!strcmp(u->member_status, "member")) {
            tg_user_touch(c, f.uid, f.lang, u->name, 0);
        }
        return "processed";
    case TG_K_EDITED:
        tg_user_touch(c, f.uid, f.lang, u->name, 0);
        say(&f, "edited_ignored");
        return "ignored";
    case TG_K_CALLBACK:
        tg_user_touch(c, f.uid, f.lang, u->name, 0);
        tg_session_get(c, f.uid, &f.s);
        on_callback(&f);
        return "processed";
    case TG_K_MESSAGE:
        if (!*u->text) { /* a sticker, a photo: nothing to read */
            tg_user_touch(c, f.uid, f.lang, u->name, 0);
            say(&f, "help");
            return "ignored";
        }
        if (strncmp(u->text, "/start", 6)) /* /start registers with its referrer */
            tg_user_touch(c, f.uid, f.lang, u->name, 0);
        tg_session_get(c, f.uid, &f.s);
        on_text(&f, u->text);
        return "processed";
    default:
        return "ignored";
    }
}
